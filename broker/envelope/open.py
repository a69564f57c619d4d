"""Opening and verifying envelopes: a verified object, or one :class:`VerificationError`.

Two entry points:

* :func:`open_envelope` / :meth:`Opener.open` — for a **recipient**: decrypt, verify the
  sender's inner signature, check that the clear routing header equals the signed copy,
  check freshness and replay, then parse the payload.
* :func:`verify_envelope` — for a **non-recipient** (platform, audit, quarantine): verify
  the sender's signature over the whole envelope without decrypting it (version 2: the
  batch signature over the root its inclusion proof leads to; version 1: the outer JWS).

Version 2 (``_v2.py``) replaces the inner signature by a content commitment checked against
the recipient's own content key and a batch signature verified once per batch.

Recipients skip the outer signature: the inner signature already binds the routing
header, the recipient list and the payload, and AES-GCM binds the clear protected header
to the ciphertext — so a third party's tampering shows as ``decrypt_failed``, a
recipient's re-labelling or re-encryption as ``header_mismatch``. Every third-party error
is translated here, the one boundary, and re-raised ``from`` the original.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from pydantic import ValidationError

from broker._crypto import ContentKey, content_commitment, ecdh_es_a256kw_unwrap, sha256
from broker._jose import signing_input, split_compact
from broker.envelope._checks import b64_field, jws_header, sender_key, split_detached
from broker.envelope._v2 import (
    SALT_LABEL,
    VerifiedBatches,
    check_batch,
    is_evidence_v2,
    verify_evidence,
)
from broker.envelope._wire import (
    HEADER_MEMBER,
    INNER_TYP,
    OUTER_TYP,
    Limits,
    ParsedEnvelope,
    RecipientEntry,
    b64e,
    check_times,
    decode_header,
    parse_envelope,
    routing_header,
    same_json,
)
from broker.envelope.replay import ReplayGuard
from broker.errors import Reason, SchemaValidationError, VerificationError
from broker.keys import Identity
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation.snapshot import Directory, SigningKeyRecord

__all__ = ["DEFAULT_LIMITS", "Opener", "VerifiedMessage", "open_envelope", "verify_envelope"]

T = TypeVar("T")
DEFAULT_LIMITS = Limits()
_CacheKey = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class VerifiedMessage(Generic[T]):
    """An envelope that passed every check: its header, raw payload and parsed content."""

    header: RoutingHeader
    payload: bytes
    content: T
    sender_key: SigningKeyRecord
    signed: bytes = b""
    """Evidence of what the sender signed, compact and ASCII: in version 1 its inner JWS;
    in version 2 ``B64(envelope) "." B64(payload) "." B64(salt)``. It proves to anyone
    holding the directory what the sender said (:func:`verify_signed`), and opens nothing
    else: no key travels with it."""


def verify_envelope(
    data: bytes,
    directory: Directory,
    now: datetime,
    *,
    limits: Limits = DEFAULT_LIMITS,
    replay_guard: ReplayGuard | None = None,
) -> RoutingHeader:
    """Check the sender's outer signature without decrypting; returns the routing header."""
    parsed = parse_envelope(data, limits)
    header = parsed.header
    check_times(header, now, limits)
    record = sender_key(header, directory, now)
    if parsed.batch is not None:
        check_batch(parsed, record, limits, parsed.batch.commit)
    else:
        _check_outer(parsed, record, limits)
    if replay_guard is not None and replay_guard.seen(
        header.sender, header.message_id, header.expires_at, now
    ):
        raise VerificationError(
            Reason.REPLAY, f"message {header.message_id} of {header.sender} was seen before"
        )
    return header


def _check_outer(parsed: ParsedEnvelope, record: SigningKeyRecord, limits: Limits) -> None:
    """Version 1: the sender's detached outer signature over the whole envelope."""
    header = parsed.header
    outer_header, signature = split_detached(parsed.outer_sig, "outer signature")
    jws_header(outer_header.decode("ascii"), header.sender_kid, OUTER_TYP, limits)
    digest = sha256(parsed.digest_input())
    signed = signing_input(outer_header, b64e(digest))
    if not record.key.verify(b64_field(signature, "outer signature"), signed):
        raise VerificationError(Reason.BAD_SIGNATURE, "outer envelope signature does not verify")


class Opener:
    """Opens envelopes for ``identity``, caching unwrapped content keys per epoch.

    Every open looks the sender's key up in ``directory.snapshot``
    (:class:`~broker.federation.snapshot.Directory`), so a revocation a live directory
    accepts applies to the next envelope.
    """

    def __init__(
        self,
        identity: Identity,
        directory: Directory,
        *,
        limits: Limits = DEFAULT_LIMITS,
        replay_guard: ReplayGuard | None = None,
        cache_size: int = 256,
    ) -> None:
        self._identity = identity
        self._directory = directory
        self._limits = limits
        self._replay_guard = replay_guard
        self._cache: OrderedDict[_CacheKey, ContentKey] = OrderedDict()
        self._cache_size = cache_size
        self._verified: VerifiedBatches = OrderedDict()
        self._verified_in: object = None

    @property
    def directory(self) -> Directory:
        """The directory the opener checks senders' keys against."""
        return self._directory

    @property
    def limits(self) -> Limits:
        return self._limits

    @overload
    def open(self, data: bytes, now: datetime) -> VerifiedMessage[bytes]: ...
    @overload
    def open(
        self, data: bytes, now: datetime, *, parse: Callable[[bytes], T]
    ) -> VerifiedMessage[T]: ...
    def open(
        self, data: bytes, now: datetime, *, parse: Callable[[bytes], Any] = bytes
    ) -> VerifiedMessage[Any]:
        """Decrypt and verify ``data``; raises only :class:`VerificationError`."""
        snapshot = self._directory.snapshot
        if snapshot is not self._verified_in:  # a new directory: verify every batch afresh
            self._verified.clear()
            self._verified_in = snapshot
        parsed = parse_envelope(data, self._limits)
        header = parsed.header
        check_times(header, now, self._limits)
        mine = self._my_entry(parsed)
        record = sender_key(header, self._directory, now)
        key = self._content_key(mine)
        iv = b64_field(parsed.iv, "iv")
        plaintext = key.decrypt(
            iv, b64_field(parsed.ciphertext, "ciphertext"), b64_field(parsed.tag, "tag"),
            parsed.protected.encode(),
        )  # fmt: skip
        if plaintext is None:
            raise VerificationError(Reason.DECRYPT_FAILED, "AES-GCM authentication failed")
        if parsed.batch is None:
            payload = self._verify_inner(plaintext, parsed, record)
            evidence = plaintext
        else:
            payload = plaintext
            evidence = self._verify_batch(data, parsed, record, key=key, iv=iv, payload=payload)
        guard = self._replay_guard
        if guard is not None and guard.seen(
            header.sender, header.message_id, header.expires_at, now
        ):
            raise VerificationError(
                Reason.REPLAY, f"message {header.message_id} of {header.sender} was seen before"
            )
        try:
            content = parse(payload)
        except (ValidationError, SchemaValidationError, ValueError, TypeError) as exc:
            raise VerificationError(Reason.INVALID_REPORT, str(exc)) from exc
        return VerifiedMessage(header, payload, content, record, evidence)

    def _my_entry(self, parsed: ParsedEnvelope) -> RecipientEntry:
        keys = self._identity.decryption_keys
        mine = next((i for i, kid in enumerate(parsed.kids) if kid in keys), None)
        if mine is None:
            raise VerificationError(
                Reason.NOT_RECIPIENT,
                f"{self._identity.agency} holds none of the recipient keys "
                f"{list(parsed.header.recipients)}",
            )
        return parsed.entry(mine)

    def _content_key(self, mine: RecipientEntry) -> ContentKey:
        keys = self._identity.decryption_keys
        cache_key = (mine.kid, mine.epk_x, mine.encrypted_key)
        cached = self._cache.get(cache_key)
        if cached is not None:
            self._cache.move_to_end(cache_key)
            return cached
        epk = b64_field(mine.epk_x, "epk")
        if len(epk) != 32 or epk[31] & 0x80:  # RFC 7748 keys are < 2**255: no malleable bit
            raise VerificationError(Reason.MALFORMED, "epk is not a canonical X25519 key")
        cek = ecdh_es_a256kw_unwrap(
            keys[mine.kid], epk, b64_field(mine.encrypted_key, "encrypted_key")
        )
        if cek is None:
            raise VerificationError(Reason.DECRYPT_FAILED, "content key does not unwrap")
        key = ContentKey(cek)
        self._cache[cache_key] = key
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return key

    def _verify_batch(
        self,
        data: bytes,
        parsed: ParsedEnvelope,
        record: SigningKeyRecord,
        *,
        key: ContentKey,
        iv: bytes,
        payload: bytes,
    ) -> bytes:
        """Version 2: the payload is what the sender committed to under this very content
        key, and the envelope is in a batch the sender signed. Returns the evidence."""
        batch = parsed.batch
        assert batch is not None  # noqa: S101 - only called for version 2
        salt, commit = content_commitment(key.raw, iv, payload, SALT_LABEL)
        if commit != batch.commit:
            raise VerificationError(
                Reason.BAD_SIGNATURE,
                "the content decrypted with my key is not what the sender committed to (a "
                "content key the other recipients do not share, or a tampered commitment)",
            )
        check_batch(parsed, record, self._limits, commit, self._verified)
        return b".".join((b64e(data), b64e(payload), b64e(salt)))

    def _verify_inner(self, jws: bytes, parsed: ParsedEnvelope, record: SigningKeyRecord) -> bytes:
        try:
            protected, body, signature = split_compact(jws)
        except ValueError as exc:
            raise VerificationError(Reason.MALFORMED, f"inner content: {exc}") from exc
        if not protected:
            raise VerificationError(Reason.MALFORMED, "inner content has an empty JWS header")
        header = jws_header(
            protected.decode("latin-1"), parsed.header.sender_kid, INNER_TYP, self._limits
        )
        if not record.key.verify(
            b64_field(signature, "inner signature"), signing_input(protected, body)
        ):
            raise VerificationError(Reason.BAD_SIGNATURE, "inner report signature does not verify")
        if not same_json(header.get(HEADER_MEMBER), parsed.header_json):
            raise VerificationError(
                Reason.HEADER_MISMATCH,
                "the clear routing header differs from the copy the sender signed",
            )
        return b64_field(body, "payload")


def verify_signed(
    signed: bytes, directory: Directory, now: datetime, *, limits: Limits = DEFAULT_LIMITS
) -> VerifiedMessage[bytes]:
    """Check a sender's evidence on its own (what :attr:`VerifiedMessage.signed` holds, as
    a forward carries it): version 1's inner JWS, or version 2's envelope, payload and salt
    (the commitment, the leaf, the proof, the batch signature). The routing header in the
    one accepted spelling, its signer's key in the directory and valid when it was made.
    Raises only :class:`VerificationError`; the envelope's expiry is the caller's to judge.
    Version-2 evidence base64url-encodes an envelope and its payload: it may be up to three
    times ``max_envelope_bytes``."""
    limit = 3 * limits.max_envelope_bytes
    if len(signed) > limit:
        raise VerificationError(
            Reason.OVERSIZED, f"signed content is {len(signed)} bytes; at most {limit}"
        )
    if is_evidence_v2(signed):
        parsed, record, payload = verify_evidence(signed, directory, now, limits)
        return VerifiedMessage(parsed.header, payload, payload, record, signed)
    try:
        protected, body, signature = split_compact(signed)
    except ValueError as exc:
        raise VerificationError(Reason.MALFORMED, f"signed content: {exc}") from exc
    raw = decode_header(protected.decode("latin-1"), limits, f"{INNER_TYP} header")
    header = routing_header(raw.get(HEADER_MEMBER), "signed content")
    jws_header(protected.decode("latin-1"), header.sender_kid, INNER_TYP, limits)
    record = sender_key(header, directory, now)
    if not record.key.verify(b64_field(signature, "signature"), signing_input(protected, body)):
        raise VerificationError(Reason.BAD_SIGNATURE, "the signed content does not verify")
    payload = b64_field(body, "payload")
    return VerifiedMessage(header, payload, payload, record, signed)


@overload
def open_envelope(
    data: bytes,
    identity: Identity,
    directory: Directory,
    now: datetime,
    *,
    replay_guard: ReplayGuard | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedMessage[bytes]: ...
@overload
def open_envelope(
    data: bytes,
    identity: Identity,
    directory: Directory,
    now: datetime,
    *,
    replay_guard: ReplayGuard | None = None,
    parse: Callable[[bytes], T],
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedMessage[T]: ...
def open_envelope(
    data: bytes,
    identity: Identity,
    directory: Directory,
    now: datetime,
    *,
    replay_guard: ReplayGuard | None = None,
    parse: Callable[[bytes], Any] = bytes,
    limits: Limits = DEFAULT_LIMITS,
) -> VerifiedMessage[Any]:
    """One-shot :meth:`Opener.open` (no content-key cache); see :class:`Opener`."""
    opener = Opener(identity, directory, limits=limits, replay_guard=replay_guard, cache_size=0)
    return opener.open(data, now, parse=parse)
