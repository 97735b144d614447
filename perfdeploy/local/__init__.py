"""The local AWS emulator: moto's server with the gaps perfdeploy relies on filled (see docs/local-emulator.md).

``Emulator`` and ``serve`` are imported on first use: moto is an optional dependency (the ``local`` extra)
and slow to import, and every perfdeploy command imports the CLI, which imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perfdeploy.local.server import Emulator, serve

__all__ = ["Emulator", "serve"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from perfdeploy.local import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
