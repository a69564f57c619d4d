"""An agency's inbox: feedback on its reports, notices and forwards of reports it received.

::

    inbox = Inbox(identity, directory, settings)
    await inbox.run(handler, exit_at_end=True)   # handler(InboxDelivery): one of the three
    states = recipient_states(feedbacks)         # per recipient: received ... outcome, applied

An agency's inbox is every topic ``fusionbus.inbox.<agency>.<sender>`` (one per other
agency, :func:`broker.topics.inbox_topic`). It carries three kinds of message, each sealed to
the agency alone: **feedback** (:class:`schemas.Feedback`) from the recipients of the
agency's reports, **notices** (:class:`schemas.Notice`: supersede, retract, purge; consent,
decline) from the originators of reports the agency received, and **forwards**
(:class:`schemas.Forward`) of reports other recipients passed on to it, the originator's
signature (and consent, where the handling needs it) checked.

:class:`InboxIntake` is its total, sans-IO verdict on each record, as
:class:`consumers.intake.Intake` is for reports: the envelope opened with the agency's keys,
its header's ``kind`` one of those three, its signer the inbox topic's sender (only that
sender's certificate can write the topic; a copy on another inbox is ``wrong_topic``),
feedback about a report of this agency, a notice about a report of its own signer
(``not_originator`` when the agency knows the report came from another), a forward to this
agency (``not_permitted`` without a consent the handling needs). Anything else is rejected
with a reason code and quarantined; nothing stalls the inbox.
"""

from __future__ import annotations

import hashlib
import re
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.envelope import Opener, open_inbox_message
from broker.envelope.forward import OpenedForward
from broker.errors import Reason, VerificationError
from broker.keys import Identity
from broker.topics import inbox_prefix, parties_of_inbox
from broker.transport import map_kafka_errors, start_client
from consumers._catchup import CatchUp
from consumers._stream import RecordStream, Undecodable
from consumers.delivered import Delivered, MemoryDelivered, Seen
from consumers.intake import Delivery, Record, Rejected, Skipped, SkipReason, Source
from consumers.quarantine import Quarantine
from schemas import Feedback, Forward, Notice, Outcome
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation import Directory
    from consumers.subscriber import RejectHook

__all__ = [
    "FeedbackAccepted",
    "FeedbackDelivery",
    "ForwardAccepted",
    "ForwardDelivery",
    "Inbox",
    "InboxDelivery",
    "InboxIntake",
    "NoticeAccepted",
    "NoticeDelivery",
    "RecipientState",
    "outsiders",
    "recipient_states",
]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedbackDelivery:
    """Verified feedback and where it came from."""

    feedback: Feedback
    header: RoutingHeader
    source: Source


@dataclass(frozen=True, slots=True)
class NoticeDelivery:
    """A verified notice from the originator of a report, and where it came from."""

    notice: Notice
    header: RoutingHeader
    source: Source
    signed: bytes = b""
    """The originator's inner JWS of the notice: a ``consent`` travels on in the forward it
    permits, for the new recipient to check."""


@dataclass(frozen=True, slots=True)
class ForwardDelivery:
    """A report another recipient forwarded to this agency, every signature checked: the
    forward, and the report as a :class:`consumers.Delivery` of the originator's (its
    signed header, ``forwarded_by`` the forwarder)."""

    forward: Forward
    delivery: Delivery
    header: RoutingHeader
    """The forward's own routing header (signed by the forwarder)."""
    source: Source


InboxDelivery = FeedbackDelivery | NoticeDelivery | ForwardDelivery


@dataclass(frozen=True, slots=True)
class FeedbackAccepted:
    delivery: FeedbackDelivery
    digest: bytes


@dataclass(frozen=True, slots=True)
class NoticeAccepted:
    delivery: NoticeDelivery
    digest: bytes


@dataclass(frozen=True, slots=True)
class ForwardAccepted:
    delivery: ForwardDelivery
    digest: bytes


Accepted = FeedbackAccepted | NoticeAccepted | ForwardAccepted
InboxVerdict = Accepted | Rejected | Skipped
OriginatorOf = Callable[[uuid.UUID], Collection[str]]
"""The senders of the reports with this message id the agency holds (none if unknown)."""


class InboxIntake:
    """The originator's verdict on each record of its inbox; never raises."""

    def __init__(
        self,
        opener: Opener,
        agency: str,
        *,
        delivered: Delivered,
        clock: Clock = _utcnow,
        originator_of: OriginatorOf | None = None,
    ) -> None:
        self._opener = opener
        self._agency = agency
        self._delivered = delivered
        self._clock = clock
        self._originator_of = originator_of
        self.counts: Counter[str] = Counter()

    def process(self, record: Record) -> InboxVerdict:
        try:
            verdict = self._verdict(record)
        except Exception as exc:  # noqa: BLE001 - the one boundary: every record gets a verdict
            frame = traceback.extract_tb(exc.__traceback__)[-1:]
            site = f"{Path(frame[0].filename).name}:{frame[0].lineno}" if frame else "unknown"
            log.error(  # noqa: TRY400 - type and site only: a traceback could hold report text
                "inbox.internal_error", error=type(exc).__name__, site=site
            )
            verdict = Rejected(Reason.INTERNAL_ERROR, f"{type(exc).__name__} at {site}")
        if isinstance(verdict, FeedbackAccepted | NoticeAccepted | ForwardAccepted):
            self.counts["accepted"] += 1
        else:
            self.counts[str(verdict.reason)] += 1
        return verdict

    def _verdict(self, record: Record) -> InboxVerdict:  # noqa: PLR0911 - one per verdict
        source = record.source
        parties = parties_of_inbox(source.topic)
        if parties is None or parties[0] != self._agency or parties[1] == self._agency:
            return Rejected(
                Reason.WRONG_TOPIC, f"{source.topic} is not an inbox topic of {self._agency}"
            )
        data = record.value or b""
        try:
            message = open_inbox_message(self._opener, data, self._clock())
        except VerificationError as exc:
            if exc.reason == Reason.NOT_RECIPIENT:
                return Skipped(SkipReason.NOT_RECIPIENT)
            return Rejected(exc.reason, exc.detail)
        header, content = message.header, message.content
        if header.sender != parties[1]:
            return Rejected(
                Reason.WRONG_TOPIC,
                f"{header.kind} signed by {header.sender} but read from {source.topic}, which "
                f"only {parties[1]} can write",
            )
        if isinstance(content, Feedback) and content.originator != self._agency:
            return Rejected(
                Reason.HEADER_MISMATCH,
                f"feedback on a report of {content.originator}, in the inbox of {self._agency}",
            )
        if isinstance(content, OpenedForward) and content.forward.to != self._agency:
            return Rejected(
                Reason.HEADER_MISMATCH,
                f"a forward to {content.forward.to}, sealed to {self._agency}",
            )
        if isinstance(content, Notice):
            known = self._originator_of(content.report_id) if self._originator_of else ()
            if known and content.sender not in known:
                return Rejected(
                    Reason.NOT_ORIGINATOR,
                    f"{content.sender} sent a {content.action} notice about report "
                    f"{content.report_id}, which {', '.join(sorted(known))} originated",
                )
        digest = hashlib.sha256(data).digest()
        seen = self._delivered.check(header.sender, header.message_id, digest)
        if seen is Seen.DUPLICATE:
            return Skipped(SkipReason.DUPLICATE)
        if seen is Seen.REPLAY:
            return Rejected(
                Reason.REPLAY,
                f"{header.kind} {header.message_id} of {header.sender} was read before, in "
                "another envelope",
            )
        if isinstance(content, Notice):
            return NoticeAccepted(NoticeDelivery(content, header, source, message.signed), digest)
        if isinstance(content, OpenedForward):
            forward = content.forward
            report = Delivery(
                content.report, content.original, source, forward.original.encode("ascii"),
                forwarded_by=forward.sender,
            )  # fmt: skip
            return ForwardAccepted(ForwardDelivery(forward, report, header, source), digest)
        return FeedbackAccepted(FeedbackDelivery(content, header, source), digest)

    def mark(self, accepted: Accepted) -> None:
        header = accepted.delivery.header
        self._delivered.mark(header.sender, header.message_id, accepted.digest, header.expires_at)


Handler = Callable[[InboxDelivery], Awaitable[None]]


class Inbox:
    """Reads one agency's inbox: feedback on its reports and notices on reports it received,
    verified."""

    def __init__(
        self,
        identity: Identity,
        directory: Directory,
        settings: KafkaSettings,
        *,
        group_id: str | None = None,
        delivered: Delivered | None = None,
        clock: Clock = _utcnow,
        metadata_refresh_ms: int = 5_000,
        originator_of: OriginatorOf | None = None,
        on_reject: RejectHook | None = None,
    ) -> None:
        self._agency = identity.agency
        self._on_reject = on_reject
        self._settings = settings
        self._group_id = group_id
        self._metadata_refresh_ms = metadata_refresh_ms
        self.intake = InboxIntake(
            Opener(identity, directory),
            identity.agency,
            delivered=delivered if delivered is not None else MemoryDelivered(),
            clock=clock,
            originator_of=originator_of,
        )
        self._quarantine = Quarantine(identity.agency, settings)
        self.handed_over = 0
        self.quarantined = 0

    async def run(self, handler: Handler, *, exit_at_end: bool = False) -> None:
        """Read from the beginning until cancelled or, with ``exit_at_end``, caught up."""
        kwargs = aiokafka_kwargs(self._settings, "consumer")
        kwargs["auto_offset_reset"] = "earliest"
        kwargs["metadata_max_age_ms"] = self._metadata_refresh_ms
        consumer = AIOKafkaConsumer(group_id=self._group_id, **kwargs)
        try:
            await start_client(consumer, self._settings, "starting the inbox reader")
            prefix = inbox_prefix(self._agency)
            if exit_at_end:
                with map_kafka_errors("listing the inbox topics"):
                    topics = await consumer.topics()
                if not any(t.startswith(prefix) for t in topics):
                    return  # nothing ever came: nothing to catch up with (a pattern with no
                    # topic would wait for an assignment that never comes)
            consumer.subscribe(pattern=f"^{re.escape(prefix)}.*$")
            await self._quarantine.start()
            await self._loop(consumer, handler, exit_at_end)
        finally:
            await self._quarantine.stop()
            await consumer.stop()

    async def _loop(self, consumer: AIOKafkaConsumer, handler: Handler, exit_at_end: bool) -> None:
        catch_up = CatchUp(grace_s=3.0) if exit_at_end else None
        stream = RecordStream(
            consumer, grouped=self._group_id is not None, from_beginning=True,
            action="fetching feedback",
        )  # fmt: skip
        while True:
            items = await stream.batch()
            done: dict[TopicPartition, int] = {}
            pending = []
            for item in items:
                if isinstance(item, Undecodable):
                    verdict: InboxVerdict = Rejected(Reason.UNDECODABLE, item.error)
                    key = value = None
                else:
                    verdict = self.intake.process(item)
                    key, value = item.key, item.value
                if isinstance(verdict, FeedbackAccepted | NoticeAccepted | ForwardAccepted):
                    await handler(verdict.delivery)
                    self.intake.mark(verdict)
                    self.handed_over += 1
                elif isinstance(verdict, Rejected):
                    self.quarantined += 1
                    if self._on_reject is not None:
                        await self._on_reject(item.source, str(verdict.reason), verdict.detail)
                    log.warning(
                        "inbox.quarantined", reason=str(verdict.reason), source=str(item.source)
                    )
                    pending.append(
                        await self._quarantine.send(
                            item.source, key, value, str(verdict.reason), verdict.detail
                        )
                    )
                done[TopicPartition(item.source.topic, item.source.partition)] = (
                    item.source.offset + 1
                )
            with map_kafka_errors("quarantining rejected feedback"):
                for acknowledged in pending:
                    await acknowledged
            if done and self._group_id is not None:
                with map_kafka_errors("committing inbox offsets"):
                    await consumer.commit(done)
            if catch_up is not None and await catch_up.done(consumer):
                return


@dataclass(frozen=True, slots=True)
class RecipientState:
    """What one recipient said about one report, each stage's latest feedback in force."""

    agency: str
    received: Feedback | None = None
    acknowledged: Feedback | None = None
    actioned: Feedback | None = None
    outcome: Feedback | None = None
    applied: tuple[Feedback, ...] = ()
    """Each ``applied`` answer in force, one per notice the recipient applied (oldest first)."""
    forwards: tuple[Feedback, ...] = ()
    """Its requests to forward the report (``forward_requested``) and forwards made
    (``forwarded``), oldest first, each naming ``forward_to``."""

    def document(self) -> dict[str, object]:
        def stage(feedback: Feedback | None) -> dict[str, object] | None:
            if feedback is None:
                return None
            body: dict[str, object] = {
                "at": feedback.created_at.isoformat(),
                "message_id": str(feedback.message_id),
            }
            if feedback.outcome.is_result:
                body["outcome"] = str(feedback.outcome)
            if feedback.quantity is not None:
                body |= {"quantity": str(feedback.quantity), "unit": feedback.unit}
            if feedback.note is not None:
                body["note"] = feedback.note
            if feedback.notice_id is not None:
                body["notice_id"] = str(feedback.notice_id)
            if feedback.forward_to is not None:
                body |= {"kind": str(feedback.outcome), "forward_to": feedback.forward_to}
            return body

        return {
            "agency": self.agency,
            "received": stage(self.received),
            "acknowledged": stage(self.acknowledged),
            "actioned": stage(self.actioned),
            "outcome": stage(self.outcome),
            "applied": [stage(f) for f in self.applied],
            "forwards": [stage(f) for f in self.forwards],
        }


def recipient_states(
    feedbacks: Iterable[Feedback], *, sealed_to: Collection[str] | None = None
) -> dict[str, RecipientState]:
    """Each recipient's state from its feedback on one report (any order): a feedback
    another one of the same sender ``replaces`` is out of force (another agency's
    ``replaces`` changes nothing), and a withdrawal leaves its stage empty.

    Given ``sealed_to`` (the agencies the report was sealed to, when the originator kept
    them), every one of them is listed, silent ones too, and feedback from any other agency
    is left out (:func:`outsiders` names them): only a recipient can have read the report.
    """
    every = sorted(feedbacks, key=lambda f: (f.created_at, str(f.message_id)))
    if sealed_to is not None:
        every = [f for f in every if f.sender in sealed_to]
    replaced = {(f.sender, f.replaces) for f in every if f.replaces is not None}
    stages: dict[str, dict[str, Feedback]] = {}
    applied: dict[str, dict[uuid.UUID, Feedback]] = {}
    forwards: dict[str, list[Feedback]] = {}
    for feedback in every:  # only its own sender can replace or withdraw a feedback message
        if (feedback.sender, feedback.message_id) in replaced or feedback.withdrawn:
            continue
        if feedback.notice_id is not None:  # one answer per notice, the latest
            applied.setdefault(feedback.sender, {})[feedback.notice_id] = feedback
            continue
        if feedback.forward_to is not None:
            forwards.setdefault(feedback.sender, []).append(feedback)
            continue
        stage = "outcome" if feedback.outcome.is_result else str(feedback.outcome)
        stages.setdefault(feedback.sender, {})[stage] = feedback
    for feedback in every:  # a recipient whose every feedback was withdrawn is still listed
        stages.setdefault(feedback.sender, {})
    for agency in sealed_to or ():
        stages.setdefault(agency, {})
    return {
        agency: RecipientState(
            agency,
            received=found.get(str(Outcome.RECEIVED)),
            acknowledged=found.get(str(Outcome.ACKNOWLEDGED)),
            actioned=found.get(str(Outcome.ACTIONED)),
            outcome=found.get("outcome"),
            applied=tuple(applied.get(agency, {}).values()),
            forwards=tuple(forwards.get(agency, ())),
        )
        for agency, found in sorted(stages.items())
    }


def outsiders(feedbacks: Iterable[Feedback], sealed_to: Collection[str]) -> list[str]:
    """The agencies that sent feedback on a report not sealed to them, sorted."""
    return sorted({f.sender for f in feedbacks if f.sender not in sealed_to})
