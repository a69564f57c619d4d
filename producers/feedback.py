"""Send feedback on a received report to its originator, sealed to it alone.

::

    async with FeedbackSender(identity, directory, settings) as sender:
        sent = await sender.send(feedback, about=delivery.header)

The feedback (:class:`schemas.Feedback`) is sealed to the originator's current encryption
key and written to the originator's inbox topic from this agency,
``fusionbus.inbox.<originator>.<agency>`` (:func:`broker.topics.inbox_topic`), which only
this agency may write and only the originator read, whatever either is granted. ``about``
is the verified routing header of the report (what the subscriber handed over), whose
category, jurisdiction, precedence and TLP the feedback's header repeats.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from broker.audit import Act, AuditWriter, sha256_hex
from broker.config import KafkaSettings
from broker.envelope import Sealer, seal_feedback
from broker.errors import AuthorizationError, FusionbusError
from broker.keys import Identity
from broker.provisioning.topics import ensure_topics
from broker.topics import inbox_topic
from broker.transport import kafka_error, map_kafka_errors
from producers._client import ProducerClient
from producers.publisher import Published
from schemas import Feedback, Outcome
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
        if topic not in self._topics:
            await ensure_topics(self._settings, [topic], partitions=1)
            self._topics.add(topic)
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
