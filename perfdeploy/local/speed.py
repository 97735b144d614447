"""Work moto does on every request or resource that nothing asked for, deferred or done once. Answers stay
as they were but one, which becomes right (a KMS key's pair); bench/ measures the gain (a dev deploy on the
emulator, make demo) and tests/test_local_emulator.py guards each.

- Every request: moto's dispatcher lists its package directory (a listdir and ~180 stats) to ask whether
  the host names a service; the list is the installed package's and does not change while it runs.
- Every KMS key: moto generates a 2048-bit RSA key pair (~40 ms) even for a symmetric key, which has no
  public key to give; here the pair is made on first use (Sign, Verify, GetPublicKey), from the key's
  spec as the template set it (moto made it before applying the template's KeySpec, so an RSA_4096 or
  ECC key created by CloudFormation signed with RSA-2048).
- Every account and region's EC2 backend: moto loads its default AMIs (~1,300 in us-east-1), a volume and
  a snapshot each (~0.2 s), on the first EC2 call of an emulator; here on the first read of images.
"""

from __future__ import annotations

from typing import Any

from moto import backends
from moto.ec2.models.amis import AmiBackend
from moto.kms import models as kms_models
from moto.moto_server import werkzeug_app


def module_list_once() -> None:
    modules = tuple(backends.list_of_moto_modules())
    werkzeug_app.backends.list_of_moto_modules = lambda: modules


def key_pair_on_first_use() -> None:
    generate = kms_models.generate_private_key  # Key.__init__ is its only caller

    def get(self: kms_models.Key) -> Any:
        if self.__dict__.get("_key_pair") is None:
            self.__dict__["_key_pair"] = generate(self.key_spec)
        return self.__dict__["_key_pair"]

    def set_(self: kms_models.Key, value: Any) -> None:
        self.__dict__["_key_pair"] = value

    kms_models.generate_private_key = lambda key_spec: None  # Key.__init__ stores None: made on first read
    kms_models.Key.private_key = property(get, set_)


def images_on_first_read() -> None:
    load = AmiBackend._load_amis

    def get(self: AmiBackend) -> dict:
        if self.__dict__.pop("_amis_pending", False):
            load(self)  # fills self.amis: through this getter, no longer pending
        return self.__dict__["_amis"]

    def set_(self: AmiBackend, value: dict) -> None:
        self.__dict__["_amis"] = value

    AmiBackend.amis = property(get, set_)
    AmiBackend._load_amis = lambda self: self.__dict__.__setitem__("_amis_pending", True)


def apply() -> None:
    module_list_once()
    key_pair_on_first_use()
    images_on_first_read()
