"""The intake: the one place a Kafka record becomes a verdict. Sans-IO and total.

::

    intake = Intake(opener, categories=["narcotics"], jurisdictions=["PK"], delivered=store)
    verdict = intake.process(record)       # Accepted | Rejected | Skipped, never an exception

:class:`Intake` is the recipient's path (open, verify, validate, check the arrival topic and
the subscription, deduplicate); :class:`RawIntake` is the non-recipient's (verify the outer
signature of the clear routing header, check the topic and scope). Both are pure functions
of the record, the keys, the delivery store and an injected clock: no Kafka, no I/O, so a
test or a fuzzer can feed them anything.

*Total* means whatever the bytes, headers, sizes or nesting, the answer is a verdict. Every
expected failure is a :class:`broker.errors.VerificationError` with a :class:`Reason`; an
unexpected exception is caught at the single boundary in :meth:`Intake.process`, turned
into ``Rejected(internal_error)``, counted, and logged with its type and code location —
never its message, which might quote report content. The Kafka loop around the intake
stays thin: it quarantines what is rejected and goes on.

Records carry our own :class:`Source` (topic, partition, offset, timestamp), so callers of
the consumers never import the Kafka client's record type.
"""

from __future__ import annotations

import hashlib
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import structlog

from broker.envelope import Opener, open_report, verify_envelope
from broker.errors import Reason, VerificationError
from broker.topics import Header, expected_topic
from consumers.delivered import Delivered, Seen
from schemas import Report, covers, normalise_jurisdiction
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation import Directory

__all__ = [
    "Accepted",
    "Delivery",
    "Intake",
    "RawIntake",
    "Record",
    "Rejected",
    "SkipReason",
    "Skipped",
    "Source",
    "Verdict",
    "Verified",
]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


LATE_AFTER_S = 300.0
"""A report sent more than this long after it was written is shown as late."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record was read: its topic, partition, offset and Kafka timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int = -1

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class Record:
    """A Kafka record as the intake sees it: our type, not the client library's."""

    source: Source
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified report and where it came from."""

    report: Report
    header: RoutingHeader
    source: Source
    signed: bytes = b""
    """The originator's inner JWS of this report (:attr:`broker.envelope.VerifiedMessage.
    signed`): what a forward carries so the next agency can check the originator's
    signature itself."""
    forwarded_by: str | None = None
    """The agency that forwarded it, for a report that came as a forward."""

    @property
    def topic(self) -> str:
        return self.source.topic

    @property
    def partition(self) -> int:
        return self.source.partition

    @property
    def offset(self) -> int:
        return self.source.offset

    @property
    def timestamp_ms(self) -> int:
        return self.source.timestamp_ms

    @property
    def late_by_s(self) -> float | None:
        """How long after it was written (``created_at``) Kafka stored it (its record
        timestamp, set when it was sent), when that is more than :data:`LATE_AFTER_S`: a
        report that waited in an outbox while its border post was offline. ``None`` when on
        time, or when the record carries no timestamp."""
        if self.source.timestamp_ms < 0:
            return None
        late = self.source.timestamp_ms / 1000 - self.header.created_at.timestamp()
        return late if late > LATE_AFTER_S else None


class SkipReason(StrEnum):
    """Why a record was passed over quietly (it is nobody's fault)."""

    NOT_RECIPIENT = "not_recipient"
    """Sealed to other agencies: this one cannot and need not read it."""
    OUTSIDE_SUBSCRIPTION = "outside_subscription"
    """Readable, but about a category or jurisdiction the subscription does not cover."""
    DUPLICATE = "duplicate"
    """The same envelope was handed over before (a redelivery after a restart or retry)."""
    BEFORE_START = "before_start"
    """Written before the subscription's ``since`` time."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """Hand ``delivery`` to the application, then remember ``digest`` as delivered."""

    delivery: Delivery
    digest: bytes


@dataclass(frozen=True, slots=True)
class Verified:
    """The clear routing header verified against the sender's outer signature (raw tail)."""

    header: RoutingHeader
    source: Source


@dataclass(frozen=True, slots=True)
class Rejected:
    """Quarantine the record: ``reason`` is the stable code, ``detail`` a sentence for
    the operator that names fields and key ids but never report plaintext."""

    reason: Reason
    detail: str


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: SkipReason


Verdict = Accepted | Rejected | Skipped
RawVerdict = Verified | Rejected | Skipped
V = TypeVar("V", Verdict, RawVerdict)


class _Scope:
    """A subscription: categories x jurisdiction subtrees."""

    def __init__(self, categories: Sequence[str], jurisdictions: Sequence[str]) -> None:
        self.categories = frozenset(categories)
        self.jurisdictions = tuple(normalise_jurisdiction(j) for j in jurisdictions)

    def covers(self, category: str, jurisdiction: str) -> bool:
        try:
            return category in self.categories and any(
                covers(scope, jurisdiction) for scope in self.jurisdictions
            )
        except ValueError:  # a jurisdiction this node does not know (an unregistered place)
            return False

    def outside_by_headers(self, headers: tuple[tuple[str, bytes], ...]) -> bool:
        """True when the record's clear (unauthenticated) Kafka headers say it is outside.

        Forging them can only make a record skipped, which anyone able to write the topic
        could achieve anyway; they never make a record accepted."""
        category = jurisdiction = None
        for name, value in headers:
            if name == Header.CATEGORY:
                category = value
            elif name == Header.JURISDICTION:
                jurisdiction = value
        if not isinstance(category, bytes) or not isinstance(jurisdiction, bytes):
            return False
        return not self.covers(
            category.decode(errors="replace"), jurisdiction.decode(errors="replace")
        )


def _wrong_topic(source: Source, header: RoutingHeader) -> Rejected | None:
    """The topic a record arrives on must be the one its signed header maps to: an envelope
    copied onto another topic (say, to readers granted another category) is refused."""
    expected = expected_topic(header.sender, header.jurisdiction, header.category)
    if source.topic == expected:
        return None
    return Rejected(
        Reason.WRONG_TOPIC,
        f"signed for topic {expected or '(none: no topic maps to it here)'} ({header.sender}, "
        f"{header.category} in {header.jurisdiction}) but read from {source.topic}",
    )


def _site(exc: BaseException) -> str:
    """Where ``exc`` was raised, as ``file:line in function`` (no message, no values)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


class _Total(Generic[V]):
    """The single boundary: counts verdicts and turns a surprise into internal_error."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        """Verdicts so far, by reason (``accepted``, ``verified``, a Reason, a SkipReason)."""

    def process(self, record: Record) -> V | Rejected:
        """The verdict on ``record``; never raises (a surprise is ``internal_error``)."""
        try:
            verdict: V | Rejected = self._verdict(record)
        except Exception as exc:  # noqa: BLE001 - the one boundary: every record gets a verdict
            verdict = self._internal_error(exc, record)
        self._count(verdict)
        return verdict

    def _verdict(self, record: Record) -> V:
        raise NotImplementedError

    def _internal_error(self, exc: Exception, record: Record) -> Rejected:
        site = _site(exc)
        log.error(
            "intake.internal_error", error=type(exc).__name__, site=site, source=str(record.source)
        )
        return Rejected(Reason.INTERNAL_ERROR, f"{type(exc).__name__} at {site}")

    def _count(self, verdict: Accepted | Verified | Rejected | Skipped) -> None:
        if isinstance(verdict, Accepted):
            self.counts["accepted"] += 1
        elif isinstance(verdict, Verified):
            self.counts["verified"] += 1
        else:
            self.counts[str(verdict.reason)] += 1


class Intake(_Total[Verdict]):
    """The recipient's verdict on each record of its subscription (see the module doc)."""

    def __init__(
        self,
        opener: Opener,
        *,
        categories: Sequence[str],
        jurisdictions: Sequence[str],
        delivered: Delivered,
        clock: Clock = _utcnow,
        since_ms: int | None = None,
    ) -> None:
        super().__init__()
        self._opener = opener
        self._scope = _Scope(categories, jurisdictions)
        self._delivered = delivered
        self._clock = clock
        self._since_ms = since_ms

    def _verdict(self, record: Record) -> Verdict:  # noqa: PLR0911 - one return per verdict
        if self._since_ms is not None and record.source.timestamp_ms < self._since_ms:
            return Skipped(SkipReason.BEFORE_START)
        if self._scope.outside_by_headers(record.headers):
            return Skipped(SkipReason.OUTSIDE_SUBSCRIPTION)  # cheap; the signed header decides
        data = record.value or b""
        try:
            message = open_report(
                self._opener, data, self._clock(), parse=Report.model_validate_json
            )
        except VerificationError as exc:
            if exc.reason == Reason.NOT_RECIPIENT:
                return Skipped(SkipReason.NOT_RECIPIENT)
            return Rejected(exc.reason, exc.detail)
        header = message.header
        wrong = _wrong_topic(record.source, header)
        if wrong is not None:
            return wrong
        if not self._scope.covers(header.category, header.jurisdiction):
            return Skipped(SkipReason.OUTSIDE_SUBSCRIPTION)
        digest = hashlib.sha256(data).digest()
        seen = self._delivered.check(header.sender, header.message_id, digest)
        if seen is Seen.DUPLICATE:
            return Skipped(SkipReason.DUPLICATE)
        if seen is Seen.REPLAY:
            return Rejected(
                Reason.REPLAY,
                f"message {header.message_id} of {header.sender} was handed over before, "
                "in another envelope",
            )
        return Accepted(Delivery(message.content, header, record.source, message.signed), digest)

    def mark(self, accepted: Accepted) -> None:
        """Remember ``accepted`` as handed over (call once the handler returned)."""
        header = accepted.delivery.header
        self._delivered.mark(header.sender, header.message_id, accepted.digest, header.expires_at)


class RawIntake(_Total[RawVerdict]):
    """The non-recipient's verdict: the routing header checked against the outer signature,
    the arrival topic and the scope; the report stays sealed."""

    def __init__(
        self,
        directory: Directory,
        *,
        categories: Sequence[str],
        jurisdictions: Sequence[str],
        clock: Clock = _utcnow,
    ) -> None:
        super().__init__()
        self._directory = directory
        self._scope = _Scope(categories, jurisdictions)
        self._clock = clock

    def _verdict(self, record: Record) -> RawVerdict:
        try:
            header = verify_envelope(record.value or b"", self._directory, self._clock())
        except VerificationError as exc:
            return Rejected(exc.reason, exc.detail)
        wrong = _wrong_topic(record.source, header)
        if wrong is not None:
            return wrong
        if not self._scope.covers(header.category, header.jurisdiction):
            return Skipped(SkipReason.OUTSIDE_SUBSCRIPTION)
        return Verified(header, record.source)
