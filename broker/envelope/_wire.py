"""The wire format of an envelope: constants, limits, base64url, and the shape parser.

:func:`parse_envelope` turns untrusted bytes into a :class:`ParsedEnvelope` or raises
:class:`VerificationError`; it does no cryptography. Size limits come first, on the raw
bytes, before any JSON is parsed. See ``docs/envelope.md`` for the format.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError

from broker._jose import b64d, b64e
from broker.errors import Reason, VerificationError
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
    "same_json",
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


def too_many_containers(data: bytes, limit: int) -> bool:
    """Whether ``data`` has more than ``limit`` ``{``/``[`` bytes, a bound on JSON nesting.

    Uses ``find`` (memchr) rather than ``count``: an envelope's brackets are few and its
    bulk is base64, so this costs a few µs even for a large envelope.
    """
    seen = 0
    for opener in (b"{", b"["):
        at = data.find(opener)
        while at >= 0:
            seen += 1
            if seen > limit:
                return True
            at = data.find(opener, at + 1)
    return False


@dataclass(frozen=True, slots=True)
class RecipientEntry:
    kid: str
    epk_x: str
    encrypted_key: str


@dataclass(frozen=True, slots=True)
class ParsedEnvelope:
    """A well-shaped envelope: every recipient entry checked, none decrypted."""

    header: RoutingHeader
    header_json: dict[str, Any]
    protected: str
    kids: tuple[str, ...]
    iv: str
    ciphertext: str
    tag: str
    outer_sig: str
    recipient_entries: tuple[RecipientEntry, ...]

    def entry(self, index: int) -> RecipientEntry:
        return self.recipient_entries[index]

    def entries(self) -> tuple[RecipientEntry, ...]:
        return self.recipient_entries


def _entry(index: int, kid: str, entry: object, protected: dict[str, Any]) -> RecipientEntry:
    """Recipient ``index``, checked: alg, kid, an X25519 epk and an encrypted key."""
    if not isinstance(entry, dict):
        raise _fail(Reason.MALFORMED, f"recipient {index} is not a JSON object")
    own = entry.get("header", {})
    if (
        not entry.keys() <= {"header", "encrypted_key"}
        or not isinstance(own, dict)
        or not own.keys() <= _PER_RECIPIENT
        or own.keys() & protected.keys()
    ):
        raise _fail(Reason.MALFORMED, f"recipient {index} has bad or duplicate members")
    merged = {**protected, **own}
    epk, key = merged.get("epk"), entry.get("encrypted_key")
    if (
        merged.get("alg") != ALG_KEY_WRAP
        or not isinstance(epk, dict)
        or epk.keys() != {"kty", "crv", "x"}
        or (epk["kty"], epk["crv"]) != ("OKP", "X25519")
        or not isinstance(epk["x"], str)
        or not epk["x"].isascii()
        or not isinstance(key, str)
        or not key.isascii()
    ):
        raise _fail(
            Reason.MALFORMED,
            f"recipient {index} needs alg={ALG_KEY_WRAP}, an X25519 epk and an encrypted_key",
        )
    return RecipientEntry(kid, epk["x"], key)


def _fail(reason: Reason, detail: str) -> VerificationError:
    return VerificationError(reason, detail)


def _strings(value: object) -> int:
    """How many JSON strings (member names and string values) ``value`` holds."""
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return len(value) + sum(_strings(v) for v in value.values())
    if isinstance(value, list):
        return sum(_strings(v) for v in value)
    return 0


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        raise ValueError(f"member {twice[:40]!r} appears more than once")
    return value


_STRICT = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object, refusing duplicate member names anywhere in it.

    JSON parsers disagree on duplicates (orjson keeps the last, others the first), so
    accepting them would let two readers see two different envelopes. The fast check: when
    the text has no escapes, every quote delimits a string, so a duplicate-free document has
    exactly twice as many quotes as the parsed value has strings; only a mismatch (an escape,
    or a duplicate) pays for the strict parser.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(Reason.MALFORMED, f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _fail(Reason.MALFORMED, f"{what} must be a JSON object")
    if raw.count(b'"') != 2 * _strings(value):
        try:
            _STRICT.decode(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise _fail(Reason.MALFORMED, f"{what}: {exc}") from exc
    return value


def same_json(a: object, b: object) -> bool:
    """Equal as JSON, spelling included (``1``, ``1.0`` and ``true`` are three values)."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS
    )


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
    if too_many_containers(raw, 8):
        raise _fail(Reason.OVERSIZED, f"{what} nests more JSON containers than a header has")
    return _json_object(raw, what)


def routing_header(obj: object, what: str) -> RoutingHeader:
    """Validate the ``fusionbus`` member: version first, then every field, then the
    spelling: the header must be exactly what ``RoutingHeader.model_dump(mode="json")``
    writes (one spelling of every value: ``"version": 1``, not ``1.0`` or ``true``; UTC
    times with ``Z``; lower-case UUIDs), so no two byte strings mean the same header."""
    if not isinstance(obj, dict):
        raise _fail(Reason.MALFORMED, f"{what} has no '{HEADER_MEMBER}' object")
    version = obj.get("version")
    if type(version) is not int or version != ENVELOPE_VERSION:
        raise _fail(
            Reason.UNSUPPORTED_VERSION,
            f"{what} is envelope version {str(version)[:20]!r}; this code reads "
            f"{ENVELOPE_VERSION} (a JSON integer)",
        )
    try:
        header = RoutingHeader.model_validate(obj)
    except ValidationError as exc:
        raise _fail(Reason.MALFORMED, f"{what} routing header: {exc}") from exc
    canonical = header.model_dump(mode="json")
    if not same_json(canonical, obj):
        names = sorted(canonical.keys() | obj.keys())
        field = next((k for k in names if not same_json(canonical.get(k), obj.get(k))), "?")
        accepted = "(left out)" if field not in canonical else str(canonical[field])[:60]
        raise _fail(
            Reason.MALFORMED,
            f"{what} routing header spells {field} {str(obj.get(field))[:60]!r}; the one "
            f"accepted spelling is {accepted!r}",
        )
    return header


def parse_envelope(data: bytes, limits: Limits) -> ParsedEnvelope:
    """Check the size, the JSON shape and the routing header; no cryptography."""
    if len(data) > limits.max_envelope_bytes:
        raise _fail(
            Reason.OVERSIZED, f"{len(data)} bytes; at most {limits.max_envelope_bytes} accepted"
        )
    if too_many_containers(data, limits.max_containers):
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
    if (
        not protected.keys() >= _PROTECTED_REQUIRED
        or not protected.keys() - _PROTECTED_REQUIRED <= _PER_RECIPIENT
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
    shared = {k: v for k, v in protected.items() if k in _PER_RECIPIENT}
    try:  # the common shape first: a kid in every recipient's own header
        kids = tuple(entry["header"]["kid"] for entry in recipients)
    except (TypeError, KeyError):
        kids = ()
    if kids != header.recipients:
        kids = tuple(_kid(index, entry, shared) for index, entry in enumerate(recipients))
    if kids != header.recipients:
        raise _fail(
            Reason.HEADER_MISMATCH,
            f"routing header lists recipients {list(header.recipients)} but the JWE is "
            f"encrypted to {list(kids)}",
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
    # every recipient entry well-shaped, not only the reader's own
    entries = tuple(_entry(i, kids[i], entry, shared) for i, entry in enumerate(recipients))
    return ParsedEnvelope(
        header,
        protected[HEADER_MEMBER],
        protected_b64,
        kids,
        iv,
        ciphertext,
        tag,
        unprotected[OUTER_SIG_MEMBER],
        entries,
    )


def _kid(index: int, entry: object, shared: dict[str, Any]) -> str:
    """The kid of a recipient entry (its own header, or the protected one)."""
    own = entry.get("header") if isinstance(entry, dict) else None
    kid = own.get("kid", shared.get("kid")) if isinstance(own, dict) else shared.get("kid")
    if not isinstance(kid, str):
        raise _fail(Reason.MALFORMED, f"recipient {index} has no kid")
    return kid


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


def recipients_tail(entries: Sequence[RecipientEntry]) -> bytes:
    """``.kid.epk_x.encrypted_key`` for each recipient, in order."""
    return "".join(f".{e.kid}.{e.epk_x}.{e.encrypted_key}" for e in entries).encode("ascii")
