"""The response bundle: what the federation admin hands back to an enrolled agency.

A compact JWS (``typ`` ``fusionbus-enrolment-bundle+jws``) signed by the federation root,
over the canonical JSON of :class:`BundleClaims`: the agency's root-signed record, the other
records of the directory, its client certificate, the cluster CA certificate, the root
public key and where Kafka is. :func:`read_bundle` verifies all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal, Self

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID
from pydantic import Field, model_validator

from broker._crypto import (
    SigningKey,
    VerifyKey,
    certificate_pem,
    certificate_sha256,
    tls_key_sha256,
)
from broker.errors import ConfigError
from broker.federation.enrolment._shared import (
    Fingerprints,
    Frozen,
    check_crv,
    self_signed,
    verify_key,
)
from broker.federation.records import (
    MAX_RECORD_BYTES,
    AgencyRecord,
    PublicJwk,
    SignedBy,
    open_signed,
    parse_signed,
    sign_document,
    verify_record,
)
from broker.keys import kid_of
from schemas import AgencyId, UtcDatetime

__all__ = [
    "BUNDLE_TYP",
    "MAX_BUNDLE_BYTES",
    "Bundle",
    "BundleClaims",
    "KafkaHint",
    "read_bundle",
    "sign_bundle",
]

BUNDLE_TYP = "fusionbus-enrolment-bundle+jws"
MAX_BUNDLE_BYTES = 1_048_576
"""A bundle carries the directory: about 1.5 KB per agency."""
_MAX_PEM = 8_192

Token = Annotated[
    str,
    Field(
        min_length=5,
        max_length=MAX_RECORD_BYTES,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
    ),
]
"""A root-signed directory record (compact JWS), as ``directory/<id>.jws`` holds it."""


class KafkaHint(Frozen):
    """Where the cluster is and how to talk to it: the agency's ``config.toml``."""

    bootstrap: str = Field(max_length=1_000, pattern=r"^[^,\s]+:\d{1,5}(,[^,\s]+:\d{1,5})*$")
    security: Literal["mtls", "plaintext"]


class BundleClaims(Frozen):
    """What the admin hands back (the payload of a response bundle)."""

    #: 2: the certificate is signed by the agency's own issuing CA, carried beside the root.
    v: Literal[2] = 2
    kind: Literal["enrolment-bundle"] = "enrolment-bundle"
    id: AgencyId
    issued_at: UtcDatetime
    record: Token
    directory: tuple[Token, ...] = Field(default=(), max_length=1_000)
    certificate: str = Field(min_length=1, max_length=_MAX_PEM)
    issuer_certificate: str = Field(min_length=1, max_length=_MAX_PEM)
    ca_certificate: str = Field(min_length=1, max_length=_MAX_PEM)
    root_key: PublicJwk
    kafka: KafkaHint | None = None

    @model_validator(mode="after")
    def _kinds(self) -> Self:
        check_crv(self.root_key, "Ed25519", "root_key")
        return self


@dataclass(frozen=True, slots=True)
class Bundle:
    """A response bundle whose root signature, record, directory and certificates verified."""

    claims: BundleClaims
    root: VerifyKey
    record: AgencyRecord
    directory: tuple[tuple[AgencyRecord, bytes], ...]
    certificate: x509.Certificate
    ca: x509.Certificate

    @property
    def id(self) -> str:
        return self.claims.id

    @property
    def record_token(self) -> bytes:
        return self.claims.record.encode("ascii")

    def fingerprints(self) -> Fingerprints:
        return Fingerprints(
            self.id,
            self.record.signing_kid,
            self.record.encryption_kid,
            tls_key_sha256(self.certificate),
            certificate_sha256(self.certificate),
            kid_of(self.root),
        )


def sign_bundle(claims: BundleClaims, root: SigningKey) -> bytes:
    """The response bundle ``claims`` signed by the federation ``root``."""
    return sign_document(claims, root, typ=BUNDLE_TYP)


def read_bundle(
    data: bytes, *, source: str, now: datetime, trusted_root: VerifyKey | None = None
) -> Bundle:
    """The bundle in ``data``, verified by the root key it carries (which must be
    ``trusted_root`` when the home already trusts one), with every record root-signed and
    the certificate issued by the CA it carries, for the agency, and valid at ``now``."""
    carried = self_signed("root_key", "bundle")

    def root_key(kid: str, payload: bytes) -> VerifyKey:
        key = carried(kid, payload)
        if trusted_root is not None and key != trusted_root:
            raise ConfigError(
                f"signed by the root {kid_of(key)}, but this home trusts the federation root "
                f"{kid_of(trusted_root)} (federation/root.pub.jwk); refusing it"
            )
        return key

    signed_by = SignedBy(
        typ=BUNDLE_TYP, what="response bundle", signer="the federation root", role="root",
        key=root_key, limit=MAX_BUNDLE_BYTES,
    )  # fmt: skip
    claims = parse_signed(
        open_signed(data, signed_by, source=source), BundleClaims, what="response bundle",
        source=source,
    )  # fmt: skip
    root = verify_key(claims.root_key)
    record = verify_record(claims.record.encode("ascii"), root, source=f"{source} (record)")
    if record.id != claims.id:
        raise ConfigError(f"{source}: holds the record of {record.id!r}, not of {claims.id!r}")
    directory: dict[str, tuple[AgencyRecord, bytes]] = {}
    for number, token in enumerate(claims.directory, start=1):
        raw = token.encode("ascii")
        other = verify_record(raw, root, source=f"{source} (directory record {number})")
        if other.id == claims.id or other.id in directory:
            raise ConfigError(f"{source}: lists the record of {other.id!r} twice")
        directory[other.id] = (other, raw)
    certificate, ca = _certificates(claims, source, now)
    return Bundle(claims, root, record, tuple(directory.values()), certificate, ca)


def _pem_certificate(text: str, what: str, source: str) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ConfigError(f"{source}: {what} is not a PEM certificate ({exc})") from None
    if certificate_pem(cert).decode("ascii") != text:
        raise ConfigError(f"{source}: {what} must be exactly one PEM certificate")
    return cert


def _certificates(
    claims: BundleClaims, source: str, now: datetime
) -> tuple[x509.Certificate, x509.Certificate]:
    cert = _pem_certificate(claims.certificate, "certificate", source)
    issuer = _pem_certificate(claims.issuer_certificate, "issuer_certificate", source)
    ca = _pem_certificate(claims.ca_certificate, "ca_certificate", source)
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
        issuing = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        ca.verify_directly_issued_by(ca)
        issuer.verify_directly_issued_by(ca)
        cert.verify_directly_issued_by(issuer)
        tls_key_sha256(cert)
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound) as exc:
        raise ConfigError(
            f"{source}: the certificate is not an ECDSA P-256 certificate issued by the "
            "agency CA in the bundle under the self-signed cluster CA in the bundle "
            f"({exc or type(exc).__name__})"
        ) from None
    if not constraints.ca:
        raise ConfigError(f"{source}: ca_certificate is not a CA certificate")
    if not issuing.ca or issuing.path_length != 0:
        raise ConfigError(f"{source}: issuer_certificate is not an issuing CA (path length 0)")
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [claims.id]:
        raise ConfigError(f"{source}: the certificate names CN={names!r}, not {claims.id!r}")
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise ConfigError(
            f"{source}: the certificate is valid from {cert.not_valid_before_utc.isoformat()} "
            f"until {cert.not_valid_after_utc.isoformat()}, not now; ask the admin for a new "
            "bundle"
        )
    return cert, ca
