"""Sealing: sign a payload, encrypt it to every recipient, sign the whole envelope.

The :class:`Sealer` keeps a content-key **epoch** per recipient set, so the X25519 key
agreement per recipient happens once per epoch instead of once per message. An epoch ends
after ``epoch_messages`` messages or ``epoch_age``, and at once when any recipient key
record changes (rotation, revocation, new validity) — see ``docs/envelope.md`` for why
these bounds are safe. Every message still carries the full ``recipients`` array and a
fresh random 96-bit IV, so it opens alone with any standard JOSE library.

Sealing is sans-IO: bytes and keys in, bytes out; time and randomness are injected.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import orjson

from broker._crypto import (
    CEK_BYTES,
    IV_BYTES,
    ContentKey,
    RandomBytes,
    content_commitment,
    ecdh_es_a256kw_wrap,
    sha256,
)
from broker._jose import sign_compact
from broker.envelope._merkle import tree
from broker.envelope._v2 import SALT_LABEL, PendingEnvelope, leaf_of, tree_head
from broker.envelope._wire import (
    ALG_KEY_WRAP,
    ALG_SIG,
    BATCH_TYP,
    CTY,
    ENC,
    HEADER_MEMBER,
    INNER_TYP,
    MAX_BATCH,
    OUTER_SIG_MEMBER,
    OUTER_TYP,
    TYP,
    RecipientEntry,
    b64e,
    outer_digest_input,
    recipients_tail,
)
from broker.errors import AuthorizationError, ConfigError
from broker.keys import Identity
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation.snapshot import Directory, EncryptionKeyRecord

__all__ = ["Sealer", "seal_envelope"]

Clock = Callable[[], datetime]


_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(slots=True)
class _Epoch:
    records: tuple[EncryptionKeyRecord, ...]
    key: ContentKey
    recipients_json: bytes
    digest_tail: bytes
    started: datetime
    count: int = 0
    # When all recipient keys are usable: made_at in [not_before, not_after), now < revoked.
    not_before: datetime = _NEVER
    not_after: datetime = _NEVER
    revoked: datetime = _NEVER

    def __post_init__(self) -> None:
        self.not_before = max(r.valid_from for r in self.records)
        self.not_after = min(r.valid_until or _NEVER for r in self.records)
        self.revoked = min(r.revoked_at or _NEVER for r in self.records)

    def usable(
        self, records: tuple[EncryptionKeyRecord | None, ...], now: datetime, made_at: datetime
    ) -> bool:
        return (
            records == self.records
            and self.not_before <= made_at < self.not_after
            and now < self.revoked
        )


class Sealer:
    """Seals envelopes from ``identity``; one per producer, not thread-safe.

    Every seal looks the sender's and the recipients' keys up in ``directory.snapshot``
    (:class:`~broker.federation.snapshot.Directory`), so a live directory's rotations and
    revocations apply to the next envelope.

    ``epoch_messages`` (default 2**20) keeps the chance of a random 96-bit IV repeating
    under one content key below 2**-57; ``epoch_age`` (default 15 minutes) bounds what one
    leaked content key exposes. Both are capped at safe maxima.

    ``version`` 1 signs every envelope twice (inside and outside the JWE); version 2 signs
    a batch once (:meth:`seal_batch`), each envelope carrying its inclusion proof.
    """

    MAX_EPOCH_MESSAGES = 2**32 // 1024
    MAX_EPOCH_AGE = timedelta(hours=24)

    def __init__(
        self,
        identity: Identity,
        directory: Directory,
        *,
        clock: Clock,
        random: RandomBytes = os.urandom,
        epoch_messages: int = 2**20,
        epoch_age: timedelta = timedelta(minutes=15),
        max_epochs: int = 64,
        version: int = 2,
    ) -> None:
        if version not in (1, 2):
            raise ConfigError(f"envelope version must be 1 or 2, not {version!r}")
        if not 1 <= epoch_messages <= self.MAX_EPOCH_MESSAGES:
            raise ConfigError(f"epoch_messages must be 1..{self.MAX_EPOCH_MESSAGES}")
        if not timedelta(0) < epoch_age <= self.MAX_EPOCH_AGE:
            raise ConfigError(f"epoch_age must be positive and at most {self.MAX_EPOCH_AGE}")
        self._identity = identity
        self._directory = directory
        self._clock = clock
        self._random = random
        self._epoch_messages = epoch_messages
        self._epoch_age = epoch_age
        self._max_epochs = max_epochs
        self._epochs: OrderedDict[tuple[str, ...], _Epoch] = OrderedDict()
        self.epochs_started = 0
        self.version = version
        self._outer_header = b64e(
            orjson.dumps({"alg": ALG_SIG, "kid": identity.signing_kid, "typ": OUTER_TYP})
        )
        self._batch_header = b64e(
            orjson.dumps({"alg": ALG_SIG, "kid": identity.signing_kid, "typ": BATCH_TYP})
        )

    @property
    def signing_kid(self) -> str:
        return self._identity.signing_kid

    def now(self) -> datetime:
        """The sealer's clock (injected, so tests are deterministic)."""
        return self._clock()

    def seal(self, header: RoutingHeader, payload: bytes) -> bytes:
        """The envelope (UTF-8 JSON bytes) carrying ``payload`` under ``header``.

        Raises :class:`ConfigError` if ``header`` names another sender or key, and
        :class:`AuthorizationError` if a key involved is unknown, revoked or expired.
        """
        if self.version == 2:
            [envelope] = self.seal_batch([(header, payload)])
            return envelope
        self._check_sender(header)
        identity = self._identity
        now = self._clock()
        self._check_own_key(now, header.created_at)
        epoch = self._epoch(header, now)
        routing = header.model_dump(mode="json")
        routing["version"] = 1
        inner_header = {
            "alg": ALG_SIG,
            "kid": identity.signing_kid,
            "typ": INNER_TYP,
            HEADER_MEMBER: routing,
        }
        jws = sign_compact(inner_header, payload, identity.signing_key)
        protected = b64e(orjson.dumps({"enc": ENC, "typ": TYP, "cty": CTY, HEADER_MEMBER: routing}))
        iv = self._random(IV_BYTES)
        ciphertext, tag = epoch.key.encrypt(iv, jws, protected)
        epoch.count += 1
        iv_b, ct_b, tag_b = b64e(iv), b64e(ciphertext), b64e(tag)
        digest = sha256(outer_digest_input(protected, iv_b, ct_b, tag_b, epoch.digest_tail))
        outer = sign_compact(self._outer_header, digest, identity.signing_key, detached=True)
        return b"".join(
            (
                b'{"protected":"',
                protected,
                b'","unprotected":{"',
                OUTER_SIG_MEMBER.encode(),
                b'":"',
                outer,
                b'"},"recipients":',
                epoch.recipients_json,
                b',"iv":"',
                iv_b,
                b'","ciphertext":"',
                ct_b,
                b'","tag":"',
                tag_b,
                b'"}',
            )
        )

    def seal_batch(self, items: Sequence[tuple[RoutingHeader, bytes]]) -> list[bytes]:
        """The envelopes of ``items`` (header, payload), in order, as one or more batches.

        Version 2: envelopes with the same recipients share a tree of at most
        :data:`MAX_BATCH` leaves and one signature over its head; a recipient therefore sees
        proofs only of envelopes it could open anyway. Every check :meth:`seal` makes is
        made for every item before anything is signed. Version 1 seals them one by one.
        """
        if self.version == 1:
            return [self.seal(header, payload) for header, payload in items]
        now = self._clock()
        leaves = [self._leaf(header, payload, now) for header, payload in items]
        groups: dict[tuple[str, ...], list[int]] = {}
        for at, leaf in enumerate(leaves):
            groups.setdefault(leaf.kids, []).append(at)
        envelopes: list[bytes] = [b""] * len(leaves)
        for members in groups.values():
            for start in range(0, len(members), MAX_BATCH):
                chunk = members[start : start + MAX_BATCH]
                root, proofs = tree([leaves[at].hash for at in chunk])
                head = tree_head(root, len(chunk))
                sig = sign_compact(
                    self._batch_header, head, self._identity.signing_key, detached=True
                )
                size = str(len(chunk)).encode()
                for index, (at, proof) in enumerate(zip(chunk, proofs, strict=True)):
                    envelopes[at] = leaves[at].envelope(sig, size, index, proof)
        return envelopes

    def _leaf(self, header: RoutingHeader, payload: bytes, now: datetime) -> PendingEnvelope:
        """Encrypt one payload (version 2) and hash it as a leaf of its batch's tree."""
        self._check_sender(header)
        self._check_own_key(now, header.created_at)
        epoch = self._epoch(header, now)
        routing = header.model_dump(mode="json")
        routing["version"] = 2
        protected = b64e(orjson.dumps({"enc": ENC, "typ": TYP, HEADER_MEMBER: routing}))
        iv = self._random(IV_BYTES)
        ciphertext, tag = epoch.key.encrypt(iv, payload, protected)
        epoch.count += 1
        _, commit = content_commitment(epoch.key.raw, iv, payload, SALT_LABEL)
        iv_b, ct_b, tag_b = b64e(iv), b64e(ciphertext), b64e(tag)
        digest_input = outer_digest_input(protected, iv_b, ct_b, tag_b, epoch.digest_tail)
        return PendingEnvelope(
            header.recipients,
            leaf_of(digest_input, commit),
            protected,
            b64e(commit),
            epoch.recipients_json,
            iv_b,
            ct_b,
            tag_b,
        )

    def _check_sender(self, header: RoutingHeader) -> None:
        identity = self._identity
        if header.sender != identity.agency or header.sender_kid != identity.signing_kid:
            raise ConfigError(
                f"header names sender {header.sender!r} key {header.sender_kid!r}; this sealer "
                f"is {identity.agency!r} key {identity.signing_kid!r}"
            )

    def _check_own_key(self, now: datetime, made_at: datetime) -> None:
        record = self._directory.snapshot.signing_key(self._identity.signing_kid)
        if record is None or record.agency != self._identity.agency:
            raise AuthorizationError(
                f"signing key {self._identity.signing_kid} of {self._identity.agency!r} is not "
                "enrolled in the directory; recipients would reject the envelope"
            )
        problem = record.problem(now=now, made_at=made_at)
        if problem is not None:
            raise AuthorizationError(f"cannot sign: {problem[1]}; enrol a new signing key")

    def _epoch(self, header: RoutingHeader, now: datetime) -> _Epoch:
        kids = header.recipients
        lookup = self._directory.snapshot.encryption_key
        current = tuple(lookup(kid) for kid in kids)
        epoch = self._epochs.get(kids)
        if epoch is not None and epoch.usable(current, now, header.created_at):
            records = epoch.records
        else:
            records = self._check_recipients(kids, current, now, header.created_at)
            if epoch is not None and records != epoch.records:
                epoch = None
        if (
            epoch is None
            or epoch.count >= self._epoch_messages
            or now - epoch.started >= self._epoch_age
            or now < epoch.started
        ):
            epoch = self._new_epoch(records, now)
            self._epochs[kids] = epoch
            if len(self._epochs) > self._max_epochs:
                self._epochs.popitem(last=False)
        self._epochs.move_to_end(kids)
        return epoch

    @staticmethod
    def _check_recipients(
        kids: tuple[str, ...],
        records: tuple[EncryptionKeyRecord | None, ...],
        now: datetime,
        made_at: datetime,
    ) -> tuple[EncryptionKeyRecord, ...]:
        checked = []
        for kid, record in zip(kids, records, strict=True):
            if record is None:
                raise AuthorizationError(f"recipient key {kid} is not in the directory")
            problem = record.problem(now=now, made_at=made_at)
            if problem is not None:
                raise AuthorizationError(f"cannot encrypt to recipient: {problem[1]}")
            checked.append(record)
        return tuple(checked)

    def _new_epoch(self, records: tuple[EncryptionKeyRecord, ...], now: datetime) -> _Epoch:
        cek = self._random(CEK_BYTES)
        entries, jsonable = [], []
        for record in records:
            epk, wrapped = ecdh_es_a256kw_wrap(record.key, cek, self._random)
            entry = RecipientEntry(record.kid, b64e(epk).decode(), b64e(wrapped).decode())
            entries.append(entry)
            jsonable.append(
                {
                    "header": {
                        "alg": ALG_KEY_WRAP,
                        "kid": entry.kid,
                        "epk": {"kty": "OKP", "crv": "X25519", "x": entry.epk_x},
                    },
                    "encrypted_key": entry.encrypted_key,
                }
            )
        self.epochs_started += 1
        return _Epoch(
            records, ContentKey(cek), orjson.dumps(jsonable), recipients_tail(entries), now
        )


def seal_envelope(
    header: RoutingHeader,
    payload: bytes,
    identity: Identity,
    directory: Directory,
    now: datetime,
    *,
    random: RandomBytes = os.urandom,
) -> bytes:
    """One-shot sealing with a fresh epoch (no reuse); prefer a :class:`Sealer` for streams."""
    return Sealer(identity, directory, clock=lambda: now, random=random).seal(header, payload)
