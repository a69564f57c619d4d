"""The asyncio ``Publisher``: validate, seal to the entitled recipients, produce, await the ack.

::

    policy = DisseminationPolicy(directory)
    async with Publisher(identity, directory, policy, KafkaSettings()) as publisher:
        receipt = await publisher.publish(report)          # returns once Kafka acknowledged
        results = await publisher.publish_many(reports)    # one result or error per report

``directory`` yields the directory snapshot whose keys a report is sealed with; ``policy``
(:class:`~broker.federation.DisseminationPolicy`) names the encryption key ids a report must
be sealed to (the directory's grants, narrowed by the handling label). Records go
to the topic of the report's area and category (``broker.topics``), keyed by the report's
thread so related reports stay ordered, with ``acks=all`` and idempotence.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from broker.audit import Act, AuditWriter, sha256_hex
from broker.config import KafkaSettings
from broker.envelope import Sealer, seal_report
from broker.errors import AuthorizationError, ConfigError, FusionbusError
from broker.keys import Identity
from broker.provisioning.topics import ensure_topics
from broker.topics import Header, report_topic
from broker.transport import kafka_error, map_kafka_errors
from producers._client import ProducerClient
from schemas import Report

if TYPE_CHECKING:
    from broker.federation import Directory, DisseminationPolicy

__all__ = ["Published", "Publisher", "routing_headers"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Published:
    """Kafka acknowledged the sealed report: where it is stored."""

    message_id: uuid.UUID
    topic: str
    partition: int
    offset: int
    recipients: tuple[str, ...]


def routing_headers(report: Report) -> list[tuple[str, bytes]]:
    """Kafka record headers: clear copies of routing fields for cheap filtering.

    They are *not* trusted: consumers use them only to skip records early, and decide on the
    signed routing header inside the envelope.
    """
    return [
        (Header.MESSAGE_ID, str(report.message_id).encode()),
        (Header.SENDER, report.sender.encode()),
        (Header.CATEGORY, report.category.encode()),
        (Header.JURISDICTION, report.jurisdiction.encode()),
        (Header.PRECEDENCE, str(report.precedence).encode()),
        (Header.TLP, str(report.handling.tlp).encode()),
    ]


class Publisher(ProducerClient):
    """Publishes reports of one agency (``identity``). One per process; not thread-safe."""

    def __init__(
        self,
        identity: Identity,
        directory: Directory,
        policy: DisseminationPolicy,
        settings: KafkaSettings,
        *,
        clock: Clock = _utcnow,
        topic_partitions: int = 3,
        audit: AuditWriter | None = None,
    ) -> None:
        super().__init__(settings)
        self._identity = identity
        self._directory = directory
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._partitions = topic_partitions
        self._sealer = Sealer(identity, directory, clock=clock)
        self._topics: set[str] = set()
        self._threads: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()

    async def publish(self, report: Report) -> Published:
        """Seal and send one report; return once Kafka has acknowledged it."""
        [result] = await self.publish_many([report])
        if isinstance(result, FusionbusError):
            raise result
        return result

    async def publish_many(self, reports: Sequence[Report]) -> list[Published | FusionbusError]:
        """Send many reports efficiently; one :class:`Published` or error per report, in order.

        Every report is checked and sealed before anything is sent: a report this agency may
        not send (another sender, no recipient) raises at once and nothing is published.
        """
        producer = self._require_started()
        sealed = [self._seal(report) for report in reports]
        await self._ensure_topics({topic for _, topic, _, _ in sealed})
        futures: list[asyncio.Future[object]] = []
        with map_kafka_errors("publishing"):
            for report, topic, envelope, _ in sealed:
                futures.append(
                    await producer.send(
                        topic,
                        value=envelope,
                        key=str(self._thread_of(report)).encode(),
                        headers=routing_headers(report),
                    )
                )
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        results: list[Published | FusionbusError] = []
        for (report, topic, envelope, kids), outcome in zip(sealed, outcomes, strict=True):
            results.append(result := self._result(report, topic, kids, outcome))
            if self._audit is not None and isinstance(result, Published):
                self._audit.record(
                    Act.PUBLISH, message_id=report.message_id, report_id=report.message_id,
                    digests={"envelope": sha256_hex(envelope)}, parties=self._agencies(kids),
                )  # fmt: skip
        return results

    def _agencies(self, kids: Sequence[str]) -> list[str]:
        """The agencies other than this one whose encryption keys ``kids`` are."""
        snapshot = self._directory.snapshot
        found = {k.agency for kid in kids if (k := snapshot.encryption_key(kid)) is not None}
        return sorted(found - {self._identity.agency})

    def _seal(self, report: Report) -> tuple[Report, str, bytes, tuple[str, ...]]:
        if report.sender != self._identity.agency:
            raise AuthorizationError(
                f"report {report.message_id} names sender {report.sender!r}, but this publisher "
                f'signs as {self._identity.agency!r}; set "sender": '
                f'"{self._identity.agency}" or publish with --agency {report.sender}.'
            )
        kids = tuple(self._policy.recipients(report, self._clock()))
        if not kids:
            raise ConfigError(
                f"no agency is entitled to receive report {report.message_id} "
                f"({report.category} in {report.jurisdiction}); grant one with "
                "`fusionbus agency grant`."
            )
        envelope = seal_report(self._sealer, report, kids)
        return (
            report,
            report_topic(report.sender, report.jurisdiction, report.category),
            envelope,
            kids,
        )

    def _result(
        self, report: Report, topic: str, kids: tuple[str, ...], outcome: object
    ) -> Published | FusionbusError:
        if isinstance(outcome, BaseException):
            error = kafka_error(outcome, f"publishing report {report.message_id}")
            error.__cause__ = outcome
            log.warning("publish.failed", message_id=str(report.message_id), error=str(error))
            return error
        partition, offset = getattr(outcome, "partition", -1), getattr(outcome, "offset", -1)
        log.debug(
            "publish.acked",
            message_id=str(report.message_id),
            topic=topic,
            partition=partition,
            offset=offset,
            recipients=len(kids),
        )
        return Published(report.message_id, topic, partition, offset, kids)

    async def _ensure_topics(self, topics: set[str]) -> None:
        missing = topics - self._topics
        if missing:
            await ensure_topics(self._settings, missing, partitions=self._partitions)
            self._topics |= missing

    def _thread_of(self, report: Report) -> uuid.UUID:
        """The partition key: the first report of the chain this one relates to."""
        related = (
            report.relations.retracts or report.relations.supersedes or report.relations.follows_up
        )
        thread = self._threads.get(related[0], related[0]) if related else report.message_id
        self._threads[report.message_id] = thread
        if len(self._threads) > 100_000:
            self._threads.popitem(last=False)
        return thread
