"""An action moto does not implement is a clear error, not an HTTP 500 with a traceback.

moto 5.2.5 raises NotImplementedError for such an action (ECS ListServiceDeployments, for one); its server
turns that into HTTP 500, which clients retry as a transient fault and the server prints as a traceback.
Here it is an HTTP 400 ``UnknownOperationException`` (what an AWS JSON endpoint answers for an operation it
lacks) whose message says the local emulator does not implement it: the emulator fails loudly and says so.
"""

from __future__ import annotations

import warnings

from moto.core.exceptions import ServiceException

CODE = "UnknownOperationException"


class NotInEmulator(ServiceException):
    code = CODE


def apply() -> None:
    from moto.core.responses import ActionResult, BaseResponse

    original = BaseResponse.call_action

    def call_action(self):
        try:
            return original(self)
        except NotImplementedError:
            action = self._get_action()
            error = NotInEmulator(f"The local emulator (moto) does not implement {self.service_name} {action}")
            with warnings.catch_warnings():  # moto warns that the code is not in the service's error shapes
                warnings.simplefilter("ignore", UserWarning)
                return self.serialized(ActionResult(error))

    BaseResponse.call_action = call_action
