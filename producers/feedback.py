"""Send feedback on a received report to its originator, sealed to it alone; and, as an
originator, notices on a report to each of its recipients.

::

    async with FeedbackSender(identity, directory, settings) as sender:
        sent = await sender.send(feedback, about=delivery.header)
        results = await sender.notify(notice, routing, ["anf", "fia"])   # agency -> result

The feedback (:class:`schemas.Feedback`) is sealed to the originator's current encryption
key and written to the originator's inbox topic from this agency,
``fusionbus.inbox.<originator>.<agency>`` (:func:`broker.topics.inbox_topic`), which only
this agency may write and only the originator read, whatever either is granted. ``about``
is the verified routing header of the report (what the subscriber handed over), whose
category, jurisdiction, precedence and TLP the feedback's header repeats.

A notice (:class:`schemas.Notice`: supersede, retract, purge) goes the other way: sealed
to one recipient's current encryption key and written to ``fusionbus.inbox.<recipient>.
<agency>``, once per agency the report was sealed to, whatever that agency is granted now.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from broker.audit import Act, AuditWriter, sha256_hex
from broker.config import KafkaSettings
from broker.envelope import Routing, Sealer, seal_feedback, seal_notice
from broker.envelope.forward import seal_forward
from broker.errors import AuthorizationError, FusionbusError
from broker.keys import Identity
from broker.provisioning.topics import ensure_topics
from broker.topics import INBOX_RETENTION_MS, inbox_topic
from broker.transport import kafka_error, map_kafka_errors
from producers._client import ProducerClient
from producers.publisher import Published
from schemas import Feedback, Forward, Notice, NoticeAction, Outcome
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation import Directory

__all__ = ["FeedbackSender"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FeedbackSender(ProducerClient):
    """Seals and sends this agency's feedback. One per process; not thread-safe."""

    _role = "the feedback sender"

    def __init__(
        self,
        identity: Identity,
        directory: Directory,
        settings: KafkaSettings,
        *,
        clock: Clock = _utcnow,
        audit: AuditWriter | None = None,
    ) -> None:
        super().__init__(settings)
        self._identity = identity
        self._directory = directory
        self._audit = audit
        self._clock = clock
        self._sealer = Sealer(identity, directory, clock=clock)
        self._topics: set[str] = set()

    async def send(self, feedback: Feedback, about: RoutingHeader) -> Published:
        """Seal and send ``feedback``; return once Kafka acknowledged it."""
        pending = await self.enqueue(feedback, about)
        return await self.settle(feedback, pending)

    async def enqueue(self, feedback: Feedback, about: RoutingHeader) -> asyncio.Future[object]:
        """Seal ``feedback`` and hand it to the producer; the future Kafka's answer resolves
        (give it to :meth:`settle`). Raises at once what no retry fixes: feedback not from
        this agency, an originator with no usable key."""
        producer = self._require_started()
        if feedback.sender != self._identity.agency:
            raise AuthorizationError(
                f"feedback {feedback.message_id} names sender {feedback.sender!r}, but this "
                f"agency is {self._identity.agency!r}"
            )
        now = self._clock()
        originator = self._directory.snapshot.agency(about.sender)
        key = originator.encryption_key_at(now)
        if key is None:
            raise AuthorizationError(
                f"the originator {about.sender} of report {about.message_id} has no encryption "
                f"key valid at {now.isoformat()} (revoked or ended), so no feedback can reach it"
            )
        envelope = seal_feedback(self._sealer, feedback, about, [key.kid])
        topic = inbox_topic(about.sender, self._identity.agency)
        await self._ensure_inbox(topic)
        with map_kafka_errors("sending feedback"):
            future: asyncio.Future[object] = await producer.send(
                topic, value=envelope, key=str(feedback.report_id).encode()
            )
        log.debug("feedback.sent", message_id=str(feedback.message_id), outcome=feedback.outcome)
        if self._audit is not None:  # the act, not what it says: the outcome stays sealed
            act = Act.RECEIPT if feedback.outcome == Outcome.RECEIVED else Act.FEEDBACK
            self._audit.record(
                act, message_id=feedback.message_id, report_id=feedback.report_id,
                digests={"envelope": sha256_hex(envelope)}, parties=[about.sender],
            )  # fmt: skip
        return future

    async def notify(
        self, notice: Notice, about: Routing | RoutingHeader, recipients: Sequence[str]
    ) -> dict[str, Published | FusionbusError]:
        """Seal ``notice`` to each agency in ``recipients`` and send it to its inbox; per
        agency, where Kafka stored it, or why it could not be sent (no usable key, Kafka's
        error). Raises at once for a notice not from this agency."""
        producer = self._require_started()
        if notice.sender != self._identity.agency:
            raise AuthorizationError(
                f"notice {notice.message_id} names sender {notice.sender!r}, but this agency "
                f"is {self._identity.agency!r}: only a report's originator sends notices on it"
            )
        now = self._clock()
        results: dict[str, Published | FusionbusError] = {}
        pending: dict[str, asyncio.Future[object]] = {}
        for agency in sorted(set(recipients)):
            record = self._directory.snapshot.records.get(agency)
            key = record.encryption_key_at(now) if record is not None else None
            if key is None:
                results[agency] = AuthorizationError(
                    f"{agency} has no encryption key valid at {now.isoformat()} (revoked, "
                    f"ended or removed), so the {notice.action} notice cannot reach it"
                )
                continue
            envelope = seal_notice(self._sealer, notice, about, [key.kid])
            topic = inbox_topic(agency, self._identity.agency)
            await self._ensure_inbox(topic)
            with map_kafka_errors("sending a notice"):
                pending[agency] = await producer.send(
                    topic, value=envelope, key=str(notice.report_id).encode()
                )
        for agency, future in pending.items():
            try:
                outcome = await future
            except Exception as exc:  # noqa: BLE001 - each recipient gets its own answer
                results[agency] = kafka_error(exc, f"sending notice {notice.message_id}")
                continue
            results[agency] = Published(
                notice.message_id, getattr(outcome, "topic", ""),
                getattr(outcome, "partition", -1), getattr(outcome, "offset", -1), (),
            )  # fmt: skip
        reached = sum(isinstance(r, Published) for r in results.values())
        if self._audit is not None and reached:
            acts = {
                NoticeAction.RETRACT: Act.RETRACTION, NoticeAction.PURGE: Act.PURGE,
                NoticeAction.SUPERSEDE: Act.SUPERSESSION,
            }  # fmt: skip
            act = acts.get(notice.action, Act.CONSENT)
            told = [a for a, r in results.items() if isinstance(r, Published)]
            self._audit.record(
                act, message_id=notice.message_id, report_id=notice.report_id,
                parties=[*told, *([notice.forward_to] if notice.forward_to else [])],
                code=None if act is not Act.CONSENT else str(notice.action),
            )  # fmt: skip
        log.info(
            "notice.sent", notice=str(notice.message_id), report=str(notice.report_id),
            action=str(notice.action), reached=reached, recipients=len(results),
        )  # fmt: skip
        return dict(sorted(results.items()))

    async def forward(
        self, forward: Forward, original: RoutingHeader, *, note_originator: bool = True
    ) -> Published:
        """Seal ``forward`` (of the report whose verified header is ``original``) to its
        recipient's current key, send it to that agency's inbox, and (unless told not to)
        tell the originator with ``forwarded`` feedback. Raises at once what no retry fixes:
        a forward not from this agency, a recipient with no usable key."""
        producer = self._require_started()
        if forward.sender != self._identity.agency:
            raise AuthorizationError(
                f"forward {forward.message_id} names sender {forward.sender!r}, but this agency "
                f"is {self._identity.agency!r}"
            )
        now = self._clock()
        record = self._directory.snapshot.records.get(forward.to)
        key = record.encryption_key_at(now) if record is not None else None
        if key is None:
            raise AuthorizationError(
                f"{forward.to} has no encryption key valid at {now.isoformat()} (revoked, "
                "ended or not in the directory), so nothing can be forwarded to it"
            )
        envelope = seal_forward(self._sealer, forward, original, [key.kid])
        topic = inbox_topic(forward.to, self._identity.agency)
        await self._ensure_inbox(topic)
        with map_kafka_errors("forwarding a report"):
            pending = await producer.send(
                topic, value=envelope, key=str(forward.report_id).encode()
            )
        try:
            outcome = await pending
        except Exception as exc:
            error: FusionbusError = kafka_error(exc, f"forwarding report {forward.report_id}")
            raise error from exc
        if self._audit is not None:
            self._audit.record(
                Act.FORWARD, message_id=forward.message_id, report_id=forward.report_id,
                digests={"envelope": sha256_hex(envelope)},
                parties=[forward.to, forward.originator],
                code="with_consent" if forward.consent is not None else None,
            )  # fmt: skip
        log.info(
            "forward.sent", report=str(forward.report_id), to=forward.to,
            consent=forward.consent is not None,
        )  # fmt: skip
        if note_originator:
            told = Feedback(
                message_id=uuid.uuid4(), report_id=forward.report_id,
                originator=forward.originator, sender=self._identity.agency,
                created_at=self._clock(), outcome=Outcome.FORWARDED, forward_to=forward.to,
            )  # fmt: skip
            await self.send(told, original)
        return Published(
            forward.message_id, getattr(outcome, "topic", ""),
            getattr(outcome, "partition", -1), getattr(outcome, "offset", -1), (key.kid,),
        )  # fmt: skip

    async def _ensure_inbox(self, topic: str) -> None:
        if topic not in self._topics:
            await ensure_topics(
                self._settings, [topic], partitions=1, retention_ms=INBOX_RETENTION_MS
            )
            self._topics.add(topic)

    async def settle(self, feedback: Feedback, pending: asyncio.Future[object]) -> Published:
        """Kafka's answer to a feedback :meth:`enqueue` sent: where it is, or the error."""
        try:
            outcome = await pending
        except Exception as exc:
            error: FusionbusError = kafka_error(exc, f"sending feedback {feedback.message_id}")
            raise error from exc
        partition, offset = getattr(outcome, "partition", -1), getattr(outcome, "offset", -1)
        topic = getattr(outcome, "topic", "")
        return Published(feedback.message_id, topic, partition, offset, ())
