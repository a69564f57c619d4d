"""The enrolment request: what an agency asks the federation admin to sign.

A compact JWS (``typ`` ``fusionbus-enrolment-request+jws``) over the canonical JSON of
:class:`RequestClaims`, signed by the agency's new Ed25519 key, which the claims carry: the
signature proves the agency holds that key, the CSR's own signature proves its TLS key. A
rotation request (``fusionbus-rotation-request+jws``) is a compact JWS whose payload is
such a request (naming in ``rotates`` the key it replaces), signed by that current key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Self

import orjson
from cryptography import x509
from cryptography.x509.oid import NameOID
from pydantic import Field, model_validator

from broker._crypto import (
    EncryptionKey,
    SigningKey,
    VerifyKey,
    certificate_pem,
    tls_key_sha256,
)
from broker._jose import b64d, sign_compact, split_compact
from broker.errors import ConfigError
from broker.federation.enrolment._shared import (
    Fingerprints,
    Frozen,
    check_crv,
    self_signed,
    verify_key,
)
from broker.federation.records import (
    AgencyName,
    PublicJwk,
    SignedBy,
    open_signed,
    parse_signed,
    sign_document,
)
from broker.keys import kid_of
from broker.provisioning.pki import refuse_reserved
from schemas import AgencyId, UtcDatetime

__all__ = [
    "MAX_REQUEST_BYTES",
    "REQUEST_MAX_AGE",
    "REQUEST_TYP",
    "ROTATION_TYP",
    "EnrolmentRequest",
    "RequestClaims",
    "make_request",
    "read_request",
]

REQUEST_TYP = "fusionbus-enrolment-request+jws"
ROTATION_TYP = "fusionbus-rotation-request+jws"
MAX_REQUEST_BYTES = 16_384
"""An honest request is about 2 KB (a rotation request about 3 KB)."""
REQUEST_MAX_AGE = timedelta(days=30)
"""An older request is refused as stale: make a fresh one (``fusionbus agency init``)."""
_SKEW = timedelta(minutes=5)
_MAX_PEM = 8_192


class RequestClaims(Frozen):
    """What an agency asks the admin to sign (the payload of an enrolment request)."""

    v: Literal[1] = 1
    kind: Literal["enrolment-request"] = "enrolment-request"
    id: AgencyId
    name: AgencyName
    signing_key: PublicJwk
    encryption_key: PublicJwk
    csr: str = Field(min_length=1, max_length=_MAX_PEM)
    created_at: UtcDatetime
    rotates: PublicJwk | None = None
    """For a rotation: the current signing key, which endorses the request."""

    @model_validator(mode="after")
    def _kinds(self) -> Self:
        check_crv(self.signing_key, "Ed25519", "signing_key")
        check_crv(self.encryption_key, "X25519", "encryption_key")
        check_crv(self.rotates, "Ed25519", "rotates")
        return self


@dataclass(frozen=True, slots=True)
class EnrolmentRequest:
    """A request whose signatures (and its CSR's) verified; see :func:`read_request`."""

    claims: RequestClaims
    csr: x509.CertificateSigningRequest
    endorsed: bool = False
    """A rotation request whose outer JWS the key in ``claims.rotates`` signed."""

    @property
    def id(self) -> str:
        return self.claims.id

    @property
    def signing_key(self) -> VerifyKey:
        return verify_key(self.claims.signing_key)

    @property
    def encryption_key(self) -> EncryptionKey:
        key = self.claims.encryption_key.key()
        if not isinstance(key, EncryptionKey):
            raise ConfigError("unreachable: RequestClaims checks the encryption key's curve")
        return key

    def fingerprints(self) -> Fingerprints:
        return Fingerprints(
            self.id,
            self.claims.signing_key.kid,
            self.claims.encryption_key.kid,
            tls_key_sha256(self.csr),
        )


def make_request(
    claims: RequestClaims, signing: SigningKey, *, endorse: SigningKey | None = None
) -> bytes:
    """The request for ``claims`` signed by the new ``signing`` key; with ``endorse`` (the
    current key, which ``claims.rotates`` must name) a rotation request wrapping it."""
    inner = sign_document(claims, signing, typ=REQUEST_TYP)
    if endorse is None:
        return inner
    if claims.rotates is None or claims.rotates.kid != kid_of(endorse):
        raise ConfigError("a rotation request's claims must name the endorsing key in rotates")
    header = {"alg": "Ed25519", "kid": kid_of(endorse), "typ": ROTATION_TYP}
    return sign_compact(header, inner, endorse, sort_keys=True)


def _typ(token: bytes) -> object:
    """The ``typ`` a compact JWS claims (unverified), or ``None``: only to choose a reader."""
    try:
        header = orjson.loads(b64d(split_compact(token.strip())[0]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    return header.get("typ") if isinstance(header, dict) else None


def read_request(
    data: bytes, *, source: str, now: datetime, max_age: timedelta | None = REQUEST_MAX_AGE
) -> EnrolmentRequest:
    """The enrolment or rotation request in ``data``, every signature verified: the JWS by
    the signing JWK it carries (and a rotation's endorsement by the key in ``rotates``),
    the CSR by its own key, its CN equal to the agency id, ``created_at`` not in the future
    and, unless ``max_age`` is ``None``, no older than that."""
    if _typ(data) != ROTATION_TYP:
        request = _read_inner(data, source=source, now=now, max_age=max_age)
        if request.claims.rotates is not None:
            raise ConfigError(
                f"{source}: the request names a key it rotates but is not endorsed by it; a "
                f"rotation request is a {ROTATION_TYP} (`fusionbus agency init ID --rotate`)"
            )
        return request
    inner: list[EnrolmentRequest] = []

    def endorser(kid: str, payload: bytes) -> VerifyKey:
        request = _read_inner(payload, source="the endorsed request", now=now, max_age=max_age)
        previous = request.claims.rotates
        if previous is None or previous.kid != kid:
            raise ConfigError(
                f"endorsed by key {kid!r}, but the request inside says it rotates "
                f"{previous.kid if previous else 'no key'}; refusing it"
            )
        inner.append(request)
        return verify_key(previous)

    signed_by = SignedBy(
        typ=ROTATION_TYP, what="rotation request", signer="the agency's current signing key",
        role="endorsement", key=endorser, limit=MAX_REQUEST_BYTES,
    )  # fmt: skip
    open_signed(data, signed_by, source=source)
    return replace(inner[0], endorsed=True)


def _read_inner(
    data: bytes, *, source: str, now: datetime, max_age: timedelta | None
) -> EnrolmentRequest:
    signed_by = SignedBy(
        typ=REQUEST_TYP, what="enrolment request", signer="the signing key it carries",
        role="request", key=self_signed("signing_key", "request"), limit=MAX_REQUEST_BYTES,
    )  # fmt: skip
    payload = open_signed(data, signed_by, source=source)
    claims = parse_signed(payload, RequestClaims, what="enrolment request", source=source)
    try:
        refuse_reserved(claims.id)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    if claims.created_at > now + _SKEW:
        raise ConfigError(
            f"{source}: created at {claims.created_at.isoformat()}, in the future; check "
            "the clock of the machine that made it"
        )
    if max_age is not None and claims.created_at < now - max_age:
        raise ConfigError(
            f"{source}: created at {claims.created_at.isoformat()}, more than "
            f"{max_age.days} days ago; make a fresh one with `fusionbus agency init "
            f"{claims.id}` on the agency's machine"
        )
    return EnrolmentRequest(claims, _csr(claims, source))


def _csr(claims: RequestClaims, source: str) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_pem_x509_csr(claims.csr.encode("ascii"))
        fingerprint = tls_key_sha256(csr)
    except (ValueError, UnicodeEncodeError) as exc:
        raise ConfigError(
            f"{source}: csr is not a usable PEM certificate request for an ECDSA P-256 key ({exc})"
        ) from None
    if certificate_pem(csr).decode("ascii") != claims.csr:
        raise ConfigError(f"{source}: csr must be exactly one PEM certificate request")
    if not csr.is_signature_valid:
        raise ConfigError(
            f"{source}: the CSR's signature does not verify, so it does not prove possession "
            f"of its TLS key ({fingerprint}); refusing it"
        )
    names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [claims.id]:
        raise ConfigError(
            f"{source}: the CSR asks for CN={', '.join(map(str, names)) or '(none)'}, but the "
            f"request is for agency {claims.id!r}; the CN must be the agency id"
        )
    return csr
