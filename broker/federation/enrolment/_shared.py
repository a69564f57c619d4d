"""What the enrolment documents share: strict models, fingerprints, self-carried keys."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson
from pydantic import BaseModel, ConfigDict

from broker._crypto import VerifyKey
from broker.errors import ConfigError
from broker.federation.records import PublicJwk
from broker.keys import kid_of, public_key_from_jwk

__all__ = ["Fingerprints"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


def check_crv(jwk: PublicJwk | None, crv: str, field: str) -> None:
    if jwk is not None and jwk.crv != crv:
        raise ValueError(f"{field} must be an {crv} key, not {jwk.crv}")


@dataclass(frozen=True, slots=True)
class Fingerprints:
    """What both ends read out to each other to compare, out of band."""

    agency: str
    signing_kid: str
    encryption_kid: str
    tls_key: str
    certificate: str | None = None
    root_kid: str | None = None

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order to read them out."""
        rows = [
            ("agency", self.agency),
            ("signing key (kid)", self.signing_kid),
            ("encryption key (kid)", self.encryption_kid),
            ("TLS key (SHA-256)", self.tls_key),
            ("certificate (SHA-256)", self.certificate),
            ("federation root (kid)", self.root_kid),
        ]
        return [(label, value) for label, value in rows if value is not None]


def verify_key(jwk: PublicJwk) -> VerifyKey:
    key = jwk.key()
    if not isinstance(key, VerifyKey):
        raise ConfigError(f"key {jwk.kid} is not an Ed25519 key")
    return key


def unverified(payload: bytes) -> dict[str, object]:
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"the JWS payload is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError("the JWS payload is not a JSON object")
    return value


def self_signed(member: str, what: str) -> Callable[[str, bytes], VerifyKey]:
    """The key a document carries in ``member`` and names in its header ``kid``."""

    def key(kid: str, payload: bytes) -> VerifyKey:
        jwk = unverified(payload).get(member)
        if not isinstance(jwk, dict):
            raise ConfigError(f"the {what} carries no {member} JWK to verify it with")
        found = public_key_from_jwk(jwk)
        if not isinstance(found, VerifyKey) or kid != kid_of(found):
            raise ConfigError(
                f"signed by key {kid!r}, not by the Ed25519 key its {member} names; refusing it"
            )
        return found

    return key
