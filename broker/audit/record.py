"""One audit record: what an agency did, when, to which message, with whom — never what.

The wire form of a record on ``fusionbus.audit.<writer>`` is a compact JWS (RFC 7515)
signed by the writer's Ed25519 signing key::

    BASE64URL({"alg":"Ed25519","kid":<writer's signing kid>,"typ":"fusionbus-audit+jws"})
    . BASE64URL(RFC 8785 JCS of the record)
    . BASE64URL(Ed25519 signature)

The record's **hash** is SHA-256 over its JCS bytes (the JWS payload), in lower-case hex;
the next record of the same writer carries it as ``prev``, the first one carries
:data:`GENESIS`. A record has exactly one byte form: :func:`inspect` refuses a payload that
is not the JCS of the record it parses to. Sealing is :func:`sign_audit_record`, and
:func:`inspect` is the one way back: pure functions over bytes and keys, no I/O.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
import rfc8785
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from broker._crypto import SigningKey
from broker._jose import b64d, sign_compact, signing_input, split_compact
from broker.federation.records import validation_problems
from broker.federation.snapshot import DirectorySnapshot
from broker.keys import kid_of
from schemas import AgencyId, UtcDatetime

__all__ = [
    "AUDIT_TYP",
    "GENESIS",
    "MAX_AUDIT_RECORD_BYTES",
    "ROOT_WRITER",
    "Act",
    "AuditRecord",
    "Inspected",
    "Writer",
    "canonical",
    "inspect",
    "record_hash",
    "sha256_hex",
    "sign_audit_record",
]

AUDIT_TYP = "fusionbus-audit+jws"
"""Keeps an audit signature from being taken for an envelope's or the directory's."""
ROOT_WRITER = "_root"
"""The writer id of the federation root's own chain (the admin's acts): no agency id can be
it, since agency ids start with a letter."""
GENESIS = "0" * 64
"""What the first record of every chain names as its previous record's hash."""
MAX_AUDIT_RECORD_BYTES = 16_384
"""No honest record comes near this (ids, digests and up to 64 parties)."""
_ALG = "Ed25519"

Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Code = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")]
Writer = AgencyId | Literal["_root"]
"""An agency, or the federation root (:data:`ROOT_WRITER`)."""


class Act(StrEnum):
    """What a record says happened. A record's ``act`` is any :data:`Code`, so a verifier
    reads the records of a newer writer whose acts it does not know yet."""

    PUBLISH = "publish"
    """The writer published a report (``parties``: the agencies it was sealed to)."""
    DELIVERY = "delivery"
    """A report was handed over to the writer's handler (``parties``: its sender)."""
    RECEIPT = "receipt"
    """The writer told a report's originator it was received (automatic)."""
    FEEDBACK = "feedback"
    """The writer sent other feedback on a report (acknowledged, actioned, an outcome)."""
    QUARANTINE = "quarantine"
    """The writer's consumer rejected a record (``code``: the reason)."""
    RETRACTION = "retraction"
    """The originator told the report's recipients it is withdrawn (``parties``: those the
    notice reached)."""
    PURGE = "purge"
    """The originator told them to delete every copy (``parties``: those it reached)."""
    SUPERSESSION = "supersession"
    """The originator told them a corrected report replaces it (``parties``: reached)."""
    APPLIED = "applied"
    """The writer applied an originator's notice to its copies (``code``: the action)."""
    FORWARD = "forward"
    """The writer forwarded a report it received (``parties``: the agency it went to and
    the originator; ``code``: ``with_consent`` when the originator's consent went along)."""
    CONSENT = "consent"
    """The originator answered a request to forward a report (``code``: ``consent`` or
    ``decline``; ``parties``: the asking recipient and the agency named)."""
    GRANT_CHANGE = "grant_change"
    """The root re-signed an agency's record with other grants (``digests.record``: the
    SHA-256 of the signed directory record)."""
    KEY_ROTATION = "key_rotation"
    """The root re-signed an agency's record with new keys."""
    REVOCATION = "revocation"
    """The root revoked keys of an agency (``code``: ``revoked``; the reason stays in the
    admin's home)."""


class AuditRecord(BaseModel):
    """One act of ``writer``, number ``seq`` of its chain (0, 1, 2, ...).

    ``digests`` name SHA-256 digests (hex) of what the act was about, e.g. ``envelope``:
    the exact bytes on Kafka, so a party holding the envelope can show it is the one meant.
    ``parties`` are the other agencies involved. Nothing in a record is report content.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    v: Literal[1] = 1
    kind: Literal["audit"] = "audit"
    writer: Writer
    seq: int = Field(ge=0, le=2**53 - 1)
    prev: Sha256Hex
    at: UtcDatetime
    act: Code
    message_id: uuid.UUID | None = None
    report_id: uuid.UUID | None = None
    digests: dict[Code, Sha256Hex] = Field(default_factory=dict, max_length=8)
    parties: tuple[AgencyId, ...] = Field(default=(), max_length=64)
    code: Code | None = None
    """A stable reason code for the act, when it has one (a quarantine's reason)."""

    @field_validator("parties")
    @classmethod
    def _sorted_parties(cls, parties: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(set(parties)))


def canonical(record: AuditRecord) -> bytes:
    """The record's RFC 8785 (JCS) bytes: what is hashed and signed. Absent optional
    members are left out."""
    return rfc8785.dumps(record.model_dump(mode="json", exclude_none=True))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_hash(record: AuditRecord) -> str:
    """SHA-256 (hex) of :func:`canonical`: what the next record's ``prev`` names."""
    return sha256_hex(canonical(record))


def sign_audit_record(record: AuditRecord, key: SigningKey) -> bytes:
    """The compact JWS of ``record`` signed by ``key`` (the writer's signing key)."""
    header = {"alg": _ALG, "kid": kid_of(key), "typ": AUDIT_TYP}
    return sign_compact(header, canonical(record), key, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Inspected:
    """What one value read from a writer's audit topic is.

    ``record`` and ``hash`` are set when it is a well-formed record (authentic or not);
    ``authentic`` when, in addition, a signing key of the topic's writer, usable at the
    record's time, signed exactly these bytes. ``problem`` says why not, in a sentence
    (``forged`` says whether the signer was someone other than the writer)."""

    record: AuditRecord | None
    hash: str | None
    authentic: bool
    problem: str | None = None
    forged: bool = False


def _parse_json(raw: bytes) -> Any:
    return orjson.loads(raw)


def inspect(token: bytes, *, writer: str, directory: DirectorySnapshot) -> Inspected:  # noqa: PLR0911 - one early return per way a record can fail
    """Check one value of ``writer``'s audit topic against ``directory``; never raises.

    The key must be one ``directory`` lists as ``writer``'s signing key, valid and not
    revoked at the record's ``at`` (a record made before a revocation stays valid)."""
    if len(token) > MAX_AUDIT_RECORD_BYTES:
        return Inspected(None, None, False, f"over {MAX_AUDIT_RECORD_BYTES} bytes")
    try:
        header_b64, payload_b64, signature_b64 = split_compact(token.strip())
        header = _parse_json(b64d(header_b64))
        payload = b64d(payload_b64)
        signature = b64d(signature_b64)
        document = _parse_json(payload)
    except (ValueError, orjson.JSONDecodeError):
        return Inspected(None, None, False, "not a compact JWS of JSON")
    if (
        not isinstance(header, dict)
        or set(header) != {"alg", "kid", "typ"}
        or header["alg"] != _ALG
        or header["typ"] != AUDIT_TYP
        or not isinstance(header["kid"], str)
    ):
        return Inspected(None, None, False, f'not an audit record (typ "{AUDIT_TYP}")')
    try:
        record = AuditRecord.model_validate(document)
    except ValidationError as exc:
        return Inspected(None, None, False, f"not a valid audit record: {validation_problems(exc)}")
    if canonical(record) != payload:
        return Inspected(None, None, False, "the payload is not the record's RFC 8785 form")
    digest = sha256_hex(payload)
    kid = header["kid"]
    key = directory.signing_key(kid)
    if record.writer != writer:
        return Inspected(record, digest, False, f"names writer {record.writer!r}", forged=True)
    if key is None or key.agency != writer:
        whose = f"{key.agency}'s" if key is not None else "an unknown"
        return Inspected(
            record, digest, False, f"signed by {whose} key {kid}, not {writer}'s", forged=True
        )
    problem = key.problem(now=record.at, made_at=record.at)
    if problem is not None:
        return Inspected(
            record, digest, False, f"key {kid} was not valid at {record.at.isoformat()}: "
            f"{problem[1]}", forged=True,
        )  # fmt: skip
    if not key.key.verify(signature, signing_input(header_b64, payload_b64)):
        return Inspected(record, digest, False, f"the signature by {writer}'s key does not verify")
    return Inspected(record, digest, True)
