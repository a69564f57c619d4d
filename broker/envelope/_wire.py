"""The wire format of an envelope: constants, limits, base64url, and the shape parser.

:func:`parse_envelope` turns untrusted bytes into a :class:`ParsedEnvelope` or raises
:class:`VerificationError`; it does no cryptography. Size limits come first, on the raw
bytes, before any JSON is parsed. See ``docs/envelope.md`` for the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from broker._jose import b64d, b64d_hashes, b64e
from broker.envelope._json import json_object, same_json, too_many_containers
from broker.envelope._merkle import proof_length
from broker.errors import Reason, VerificationError
from schemas.envelope import ENVELOPE_VERSIONS, RoutingHeader

__all__ = [
    "ALG_KEY_WRAP",
    "ALG_SIG",
    "BATCH_MEMBER",
    "BATCH_TYP",
    "CTY",
    "ENC",
    "HEADER_MEMBER",
    "INNER_TYP",
    "MAX_BATCH",
    "OUTER_SIG_MEMBER",
    "OUTER_TYP",
    "TYP",
    "BatchProof",
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
BATCH_MEMBER = "fusionbus_batch"
"""Version 2: the batch signature, the inclusion proof and the content commitment."""
BATCH_TYP = "fusionbus-batch+jws"
MAX_BATCH = 256
"""Leaves in one version-2 tree: a proof is at most 8 hashes."""
_BATCH_KEYS = frozenset({"sig", "size", "index", "path", "commit"})
_HASH_CHARS = 43  # 32 bytes in unpadded base64url

_TOP_KEYS = frozenset({"protected", "unprotected", "recipients", "iv", "ciphertext", "tag"})
_PROTECTED_REQUIRED = frozenset({"enc", "typ", "cty", HEADER_MEMBER})
_PROTECTED_REQUIRED_V2 = frozenset({"enc", "typ", HEADER_MEMBER})
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


@dataclass(frozen=True, slots=True)
class RecipientEntry:
    kid: str
    epk_x: str
    encrypted_key: str


@dataclass(frozen=True, slots=True)
class BatchProof:
    """Version 2's ``fusionbus_batch`` member, shape-checked (base64url strings as sent)."""

    sig: str
    """The detached JWS over the batch's tree head."""
    size: int
    index: int
    path: tuple[bytes, ...]
    """The inclusion proof, decoded: 32-byte hashes, exactly as many as the tree needs."""
    commit: bytes
    """The content commitment, decoded (32 bytes)."""


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
    """Version 1's detached outer JWS (empty in version 2)."""
    recipient_entries: tuple[RecipientEntry, ...]
    batch: BatchProof | None = None
    """Version 2's batch proof, shape-checked and decoded (``None`` in version 1)."""

    @property
    def version(self) -> int:
        return self.header.version

    def digest_input(self) -> bytes:
        """``D``: protected, iv, ciphertext, tag and every recipient's kid, epk and wrapped
        key, as sent (version 1's outer signature covers its SHA-256; version 2's leaf)."""
        return outer_digest_input(
            self.protected.encode(),
            self.iv.encode(),
            self.ciphertext.encode(),
            self.tag.encode(),
            recipients_tail(self.recipient_entries),
        )

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
    return json_object(raw, what)


def routing_header(obj: object, what: str) -> RoutingHeader:
    """Validate the ``fusionbus`` member: version first, then every field, then the
    spelling: the header must be exactly what ``RoutingHeader.model_dump(mode="json")``
    writes (one spelling of every value: ``"version": 1``, not ``1.0`` or ``true``; UTC
    times with ``Z``; lower-case UUIDs), so no two byte strings mean the same header."""
    if not isinstance(obj, dict):
        raise _fail(Reason.MALFORMED, f"{what} has no '{HEADER_MEMBER}' object")
    version = obj.get("version")
    if type(version) is not int or version not in ENVELOPE_VERSIONS:
        raise _fail(
            Reason.UNSUPPORTED_VERSION,
            f"{what} is envelope version {str(version)[:20]!r}; this code reads "
            f"{' and '.join(map(str, ENVELOPE_VERSIONS))} (a JSON integer)",
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
    doc = json_object(data, "envelope")
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
    required = _PROTECTED_REQUIRED if header.version == 1 else _PROTECTED_REQUIRED_V2
    if (
        not protected.keys() >= required
        or not protected.keys() - required <= _PER_RECIPIENT
        or (protected["enc"], protected["typ"], protected.get("cty", CTY)) != (ENC, TYP, CTY)
    ):
        cty = f", cty={CTY}" if header.version == 1 else " (no cty: the payload is the report)"
        raise _fail(
            Reason.MALFORMED,
            f"protected header needs enc={ENC}, typ={TYP}{cty} and no other "
            f"parameters than {sorted(_PER_RECIPIENT)}; got {sorted(protected)}",
        )
    outer_sig, batch = _unprotected(doc.get("unprotected"), header.version)
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
        outer_sig,
        entries,
        batch,
    )


def _unprotected(unprotected: object, version: int) -> tuple[str, BatchProof | None]:
    """Version 1's outer signature, or version 2's batch proof."""
    if version == 1:
        if (
            not isinstance(unprotected, dict)
            or unprotected.keys() != {OUTER_SIG_MEMBER}
            or not isinstance(unprotected[OUTER_SIG_MEMBER], str)
            or not unprotected[OUTER_SIG_MEMBER].isascii()
        ):
            raise _fail(
                Reason.MALFORMED, f"unprotected header must be {{{OUTER_SIG_MEMBER!r}: str}}"
            )
        return unprotected[OUTER_SIG_MEMBER], None
    if not isinstance(unprotected, dict) or unprotected.keys() != {BATCH_MEMBER}:
        raise _fail(Reason.MALFORMED, f"unprotected header must be {{{BATCH_MEMBER!r}: {{...}}}}")
    return "", _batch_proof(unprotected[BATCH_MEMBER])


def _batch_proof(member: object) -> BatchProof:
    """Version 2's batch member: its five members, of the right types and sizes."""
    if not isinstance(member, dict) or member.keys() != _BATCH_KEYS:
        raise _fail(Reason.MALFORMED, f"{BATCH_MEMBER} must have exactly {sorted(_BATCH_KEYS)}")
    sig, size, index, path, commit = (member[k] for k in ("sig", "size", "index", "path", "commit"))
    if not (
        isinstance(sig, str)
        and sig.isascii()
        and type(size) is int
        and 1 <= size <= MAX_BATCH
        and type(index) is int
        and 0 <= index < size
        and isinstance(path, list)
        and len(path) == proof_length(index, size)
        and all(isinstance(p, str) and len(p) == _HASH_CHARS for p in path)
        and isinstance(commit, str)
        and len(commit) == _HASH_CHARS
    ):
        raise _fail(
            Reason.MALFORMED,
            f"{BATCH_MEMBER}: sig a string, 1 <= size <= {MAX_BATCH}, 0 <= index < size, path "
            "the tree's number of 32-byte hashes for that leaf and commit one, in base64url",
        )
    hashes = b64d_hashes([*path, commit])  # one decode for all of them
    if hashes is None:
        bad = next((p for p in [*path, commit] if b64d_hashes([p]) is None), "")
        raise _fail(
            Reason.MALFORMED,
            f"{BATCH_MEMBER}: {str(bad)[:43]!r} is not a 32-byte hash in canonical base64url",
        )
    return BatchProof(sig, size, index, hashes[:-1], hashes[-1])


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
