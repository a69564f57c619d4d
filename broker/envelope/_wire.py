"""The wire format of an envelope: constants, limits, base64url, and the shape parser.

:func:`parse_envelope` turns untrusted bytes into a :class:`ParsedEnvelope` or raises
:class:`VerificationError`; it does no cryptography. Size limits come first, on the raw
bytes, before any JSON is parsed. See ``docs/envelope.md`` for the format.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from broker.envelope.reasons import Reason
from broker.errors import VerificationError
from schemas.envelope import ENVELOPE_VERSION, RoutingHeader

__all__ = [
    "ALG_KEY_WRAP",
    "ALG_SIG",
    "CTY",
    "ENC",
    "HEADER_MEMBER",
    "INNER_TYP",
    "OUTER_SIG_MEMBER",
    "OUTER_TYP",
    "TYP",
    "Limits",
    "ParsedEnvelope",
    "RecipientEntry",
    "b64d",
    "b64e",
    "check_times",
    "outer_digest_input",
    "parse_envelope",
]

ENC = "A256GCM"
ALG_KEY_WRAP = "ECDH-ES+A256KW"
ALG_SIG = "Ed25519"
TYP = "fusionbus-envelope+jwe"
CTY = "JOSE"
INNER_TYP = "fusionbus-report+jws"
OUTER_TYP = "fusionbus-envelope-sig+jws"
HEADER_MEMBER = "fusionbus"
OUTER_SIG_MEMBER = "fusionbus_sig"

_TOP_KEYS = frozenset({"protected", "unprotected", "recipients", "iv", "ciphertext", "tag"})
_PROTECTED_REQUIRED = frozenset({"enc", "typ", "cty", HEADER_MEMBER})
_PER_RECIPIENT = frozenset({"alg", "kid", "epk"})
_B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STD = str.maketrans("-_", "+/")


@dataclass(frozen=True, slots=True)
class Limits:
    """What open and verify accept before doing any expensive work."""

    max_envelope_bytes: int = 1_048_576
    """Whole envelope; Kafka's default message size limit is 1 MiB."""
    max_header_chars: int = 16_384
    """Base64url characters of the JWE protected header or the inner JWS header."""
    max_recipients: int = 64
    clock_skew: timedelta = timedelta(minutes=5)
    """How far in the future ``created_at`` may be."""
    max_lifetime: timedelta = timedelta(days=31)
    """``expires_at - created_at``; bounds how long a replay guard must remember an id."""

    @property
    def max_containers(self) -> int:
        """Upper bound on ``{``/``[`` bytes: top, unprotected, recipients, 3 per recipient."""
        return 8 + 3 * self.max_recipients


def b64e(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def b64d(text: object) -> bytes:
    """Strict, canonical base64url without padding; ``ValueError`` otherwise."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("expected a base64url string")
    tail = len(text) % 4
    if tail == 1:
        raise ValueError("base64url length is impossible")
    if tail:
        last = _B64_ALPHABET.find(text[-1])
        if last < 0 or last & (0b1111 if tail == 2 else 0b11):
            raise ValueError("base64url is not canonical")
    try:
        return binascii.a2b_base64(
            text.translate(_TO_STD) + "=" * (-len(text) % 4), strict_mode=True
        )
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc


@dataclass(frozen=True, slots=True)
class RecipientEntry:
    kid: str
    epk_x: str
    encrypted_key: str


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    header: RoutingHeader
    header_json: dict[str, Any]
    protected: str
    recipients: tuple[RecipientEntry, ...]
    iv: str
    ciphertext: str
    tag: str
    outer_sig: str


def _fail(reason: Reason, detail: str) -> VerificationError:
    return VerificationError(reason, detail)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(Reason.MALFORMED, f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _fail(Reason.MALFORMED, f"{what} must be a JSON object")
    return value


def decode_header(text: object, limits: Limits, what: str) -> dict[str, Any]:
    """A base64url JSON header, size-checked before decoding."""
    if not isinstance(text, str):
        raise _fail(Reason.MALFORMED, f"{what} must be a base64url string")
    if len(text) > limits.max_header_chars:
        raise _fail(
            Reason.OVERSIZED, f"{what} is {len(text)} chars; at most {limits.max_header_chars}"
        )
    try:
        raw = b64d(text)
    except ValueError as exc:
        raise _fail(Reason.MALFORMED, f"{what}: {exc}") from exc
    if raw.count(b"{") + raw.count(b"[") > 8:
        raise _fail(Reason.OVERSIZED, f"{what} nests more JSON containers than a header has")
    return _json_object(raw, what)


def routing_header(obj: object, what: str) -> RoutingHeader:
    """Validate the ``fusionbus`` member: version first, then every field."""
    if not isinstance(obj, dict):
        raise _fail(Reason.MALFORMED, f"{what} has no '{HEADER_MEMBER}' object")
    version = obj.get("version")
    if version != ENVELOPE_VERSION:
        raise _fail(
            Reason.UNSUPPORTED_VERSION,
            f"{what} is envelope version {version!r}; this code reads {ENVELOPE_VERSION}",
        )
    try:
        return RoutingHeader.model_validate(obj)
    except ValidationError as exc:
        raise _fail(Reason.MALFORMED, f"{what} routing header: {exc}") from exc


def parse_envelope(data: bytes, limits: Limits) -> ParsedEnvelope:  # noqa: PLR0912
    """Check the size, the JSON shape and the routing header; no cryptography."""
    if len(data) > limits.max_envelope_bytes:
        raise _fail(
            Reason.OVERSIZED, f"{len(data)} bytes; at most {limits.max_envelope_bytes} accepted"
        )
    if data.count(b"{") + data.count(b"[") > limits.max_containers:
        raise _fail(Reason.OVERSIZED, "more JSON objects/arrays (nesting) than an envelope has")
    doc = _json_object(data, "envelope")
    if not doc.keys() <= _TOP_KEYS or not {"protected", "recipients"} <= doc.keys():
        raise _fail(
            Reason.MALFORMED,
            f"JWE members {sorted(doc)}; expected general JSON with {sorted(_TOP_KEYS)}",
        )
    recipients = doc["recipients"]
    if not isinstance(recipients, list) or not recipients:
        raise _fail(Reason.MALFORMED, "'recipients' must be a non-empty array")
    if len(recipients) > limits.max_recipients:
        raise _fail(
            Reason.OVERSIZED, f"{len(recipients)} recipients; at most {limits.max_recipients}"
        )
    protected_b64 = doc["protected"]
    protected = decode_header(protected_b64, limits, "protected header")
    header = routing_header(protected.get(HEADER_MEMBER), "protected header")
    shared = protected.keys() - _PROTECTED_REQUIRED
    if (
        not protected.keys() >= _PROTECTED_REQUIRED
        or not shared <= _PER_RECIPIENT
        or (protected["enc"], protected["typ"], protected["cty"]) != (ENC, TYP, CTY)
    ):
        raise _fail(
            Reason.MALFORMED,
            f"protected header needs enc={ENC}, typ={TYP}, cty={CTY} and no other "
            f"parameters than {sorted(_PER_RECIPIENT)}; got {sorted(protected)}",
        )
    unprotected = doc.get("unprotected")
    if (
        not isinstance(unprotected, dict)
        or unprotected.keys() != {OUTER_SIG_MEMBER}
        or not isinstance(unprotected[OUTER_SIG_MEMBER], str)
        or not unprotected[OUTER_SIG_MEMBER].isascii()
    ):
        raise _fail(Reason.MALFORMED, f"unprotected header must be {{{OUTER_SIG_MEMBER!r}: str}}")
    entries = []
    for index, entry in enumerate(recipients):
        if not isinstance(entry, dict) or not entry.keys() <= {"header", "encrypted_key"}:
            raise _fail(Reason.MALFORMED, f"recipient {index} is not a JWE recipient object")
        own = entry.get("header", {})
        if not isinstance(own, dict) or not own.keys() <= _PER_RECIPIENT or own.keys() & shared:
            raise _fail(Reason.MALFORMED, f"recipient {index} header has bad or duplicate members")
        merged = {**protected, **own}
        epk = merged.get("epk")
        kid, key = merged.get("kid"), entry.get("encrypted_key")
        if (
            merged.get("alg") != ALG_KEY_WRAP
            or not isinstance(epk, dict)
            or epk.keys() != {"kty", "crv", "x"}
            or (epk["kty"], epk["crv"]) != ("OKP", "X25519")
            or not isinstance(epk["x"], str)
            or not epk["x"].isascii()
            or not isinstance(kid, str)
            or not isinstance(key, str)
            or not key.isascii()
        ):
            raise _fail(
                Reason.MALFORMED,
                f"recipient {index} needs alg={ALG_KEY_WRAP}, a kid, an X25519 epk and an "
                "encrypted_key",
            )
        entries.append(RecipientEntry(kid, epk["x"], key))
    if tuple(e.kid for e in entries) != header.recipients:
        raise _fail(
            Reason.HEADER_MISMATCH,
            f"routing header lists recipients {list(header.recipients)} but the JWE is "
            f"encrypted to {[e.kid for e in entries]}",
        )
    iv, ciphertext, tag = doc.get("iv"), doc.get("ciphertext"), doc.get("tag")
    if not (
        isinstance(iv, str)
        and isinstance(ciphertext, str)
        and isinstance(tag, str)
        and iv.isascii()
        and ciphertext.isascii()
        and tag.isascii()
    ):
        raise _fail(Reason.MALFORMED, "iv, ciphertext and tag must be base64url strings")
    return ParsedEnvelope(
        header,
        protected[HEADER_MEMBER],
        protected_b64,
        tuple(entries),
        iv,
        ciphertext,
        tag,
        unprotected[OUTER_SIG_MEMBER],
    )


def check_times(header: RoutingHeader, now: datetime, limits: Limits) -> None:
    """Reject expired, far-future and over-long-lived messages."""
    if header.expires_at - header.created_at > limits.max_lifetime:
        raise _fail(
            Reason.MALFORMED,
            f"lives {header.expires_at - header.created_at}; at most {limits.max_lifetime}",
        )
    if now >= header.expires_at:
        raise _fail(Reason.EXPIRED, f"expired at {header.expires_at.isoformat()}")
    if header.created_at > now + limits.clock_skew:
        raise _fail(
            Reason.NOT_YET_VALID,
            f"created_at {header.created_at.isoformat()} is after now {now.isoformat()} "
            f"plus the allowed skew {limits.clock_skew}",
        )


def outer_digest_input(
    protected: bytes, iv: bytes, ciphertext: bytes, tag: bytes, recipients_tail: bytes
) -> bytes:
    """What the outer signature's SHA-256 covers (all members are dot-free ASCII)."""
    return b".".join((protected, iv, ciphertext, tag)) + recipients_tail


def recipients_tail(entries: tuple[RecipientEntry, ...] | list[RecipientEntry]) -> bytes:
    """``.kid.epk_x.encrypted_key`` for each recipient, in order."""
    return "".join(f".{e.kid}.{e.epk_x}.{e.encrypted_key}" for e in entries).encode("ascii")
