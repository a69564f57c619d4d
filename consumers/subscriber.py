"""The asyncio ``Subscriber``: reports by jurisdiction and category, verified, at least once.

::

    subscriber = Subscriber(identity, trust, KafkaSettings(), categories=["narcotics"],
                            jurisdictions=["PK"], group_id="anf.case-system", delivered=store)
    await subscriber.run(handler)          # handler(delivery) is awaited once per report

For every record of the subscribed topics: open the envelope as a recipient (decrypt,
verify, validate), keep only reports the subscription covers (on the *signed* routing
header), skip what was already handed over, await the handler, remember it, and commit the
offsets of a batch once every record in it is done. A record that fails verification is
written to the agency's quarantine topic with its reason code and consumption goes on; a
record the agency is not a recipient of is skipped quietly. A handler that raises stops the
subscriber after committing what was handled before it, so the report is handed over again
after a restart.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka import errors as kafka_errors

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.envelope import Opener, Reason, open_report
from broker.errors import AuthorizationError, VerificationError
from broker.keys import Identity
from broker.topics import subscription_pattern
from broker.transport import kafka_error, map_kafka_errors
from broker.trust import TrustStore
from consumers._catchup import CatchUp
from consumers.delivered import Delivered, MemoryDelivered, Seen
from consumers.quarantine import Quarantine
from schemas import Report, covers, normalise_jurisdiction
from schemas.envelope import RoutingHeader

__all__ = ["Delivery", "Handler", "RejectHook", "Subscriber", "new_group_id"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
_SWEEP_EVERY_S = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified report and where it came from."""

    report: Report
    header: RoutingHeader
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


Handler = Callable[[Delivery], Awaitable[None]]
RejectHook = Callable[[ConsumerRecord[bytes, bytes], str, str], Awaitable[None]]
"""Told of each quarantined record: (record, reason code, detail)."""


class Subscriber:
    """Consumes the reports one agency may read; one per task, not thread-safe."""

    def __init__(
        self,
        identity: Identity,
        trust: TrustStore,
        settings: KafkaSettings,
        *,
        categories: Sequence[str],
        jurisdictions: Sequence[str],
        group_id: str | None = None,
        from_beginning: bool = True,
        since: datetime | None = None,
        delivered: Delivered | None = None,
        clock: Clock = _utcnow,
        metadata_refresh_ms: int = 5_000,
        on_reject: RejectHook | None = None,
    ) -> None:
        self._identity = identity
        self._settings = settings
        self._categories = frozenset(categories)
        self._jurisdictions = tuple(normalise_jurisdiction(j) for j in jurisdictions)
        self._pattern = subscription_pattern(self._jurisdictions, self._categories)
        self._group_id = group_id
        self._from_beginning = from_beginning or since is not None
        self._since_ms = int(since.timestamp() * 1000) if since is not None else None
        self._delivered = delivered if delivered is not None else MemoryDelivered()
        self._clock = clock
        self._metadata_refresh_ms = metadata_refresh_ms
        self._opener = Opener(identity, trust)
        self._quarantine = Quarantine(identity.agency, settings)
        self._on_reject = on_reject
        self.handed_over = 0
        self.quarantined = 0
        self.skipped = 0

    async def run(
        self, handler: Handler, *, limit: int | None = None, exit_at_end: bool = False
    ) -> None:
        """Consume until cancelled, until ``limit`` reports were handed over, or — with
        ``exit_at_end`` — once caught up with what the topics held when it started.

        On a secured cluster, fetching a topic this agency's principal may not READ (no grant
        covers it) raises :class:`AuthorizationError` with Kafka's refusal and the topic."""
        kwargs = aiokafka_kwargs(self._settings, "consumer")
        kwargs["auto_offset_reset"] = "earliest" if self._from_beginning else "latest"
        kwargs["metadata_max_age_ms"] = self._metadata_refresh_ms
        consumer = AIOKafkaConsumer(group_id=self._group_id, **kwargs)
        with map_kafka_errors("starting the subscriber"):
            await consumer.start()
        try:
            consumer.subscribe(pattern=self._pattern)
            await self._quarantine.start()
            await self._loop(consumer, handler, limit, exit_at_end)
        finally:
            await self._quarantine.stop()
            await consumer.stop()

    async def _loop(
        self, consumer: AIOKafkaConsumer, handler: Handler, limit: int | None, exit_at_end: bool
    ) -> None:
        catch_up = CatchUp() if exit_at_end else None
        next_sweep = 0.0
        while limit is None or self.handed_over < limit:
            if time.monotonic() >= next_sweep:  # forget ids whose envelopes have expired
                self._delivered.forget_expired(self._clock())
                next_sweep = time.monotonic() + _SWEEP_EVERY_S
            try:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
            except kafka_errors.TopicAuthorizationFailedError as exc:
                raise self._refused(exc) from exc
            except kafka_errors.KafkaError as exc:
                raise kafka_error(exc, "fetching reports") from exc
            if self._since_ms is not None and batch:
                batch = {
                    tp: [r for r in rs if r.timestamp >= self._since_ms] for tp, rs in batch.items()
                }
            done: dict[TopicPartition, int] = {}
            try:
                for tp, records in batch.items():
                    for record in records:
                        if limit is not None and self.handed_over >= limit:
                            break
                        await self._process(record, handler)
                        done[tp] = record.offset + 1
            finally:
                await self._commit(consumer, done)
            if catch_up is not None and await catch_up.done(consumer):
                return

    async def _process(self, record: ConsumerRecord[bytes, bytes], handler: Handler) -> None:
        if self._outside_by_headers(record):
            self.skipped += 1  # cheap early skip; the signed header decides what is handed over
            return
        data = record.value or b""
        try:
            message = open_report(
                self._opener, data, self._clock(), parse=Report.model_validate_json
            )
        except VerificationError as exc:
            if exc.reason == Reason.NOT_RECIPIENT:
                self.skipped += 1
                return
            await self._reject(record, exc.reason, exc.detail)
            return
        header = message.header
        if not self._covers(header.category, header.jurisdiction):
            self.skipped += 1  # readable, but outside this subscription
            return
        digest = hashlib.sha256(data).digest()
        seen = self._delivered.check(header.message_id, digest)
        if seen is Seen.DUPLICATE:
            self.skipped += 1
            return
        if seen is Seen.REPLAY:
            await self._reject(record, Reason.REPLAY, f"message {header.message_id} seen before")
            return
        await handler(
            Delivery(
                message.content, header, record.topic, record.partition, record.offset,
                record.timestamp,
            )
        )  # fmt: skip
        self._delivered.mark(header.message_id, digest, header.expires_at)
        self.handed_over += 1

    def _refused(self, exc: kafka_errors.TopicAuthorizationFailedError) -> AuthorizationError:
        topics = ", ".join(str(a) for a in exc.args) or "a subscribed topic"
        agency = self._identity.agency
        return AuthorizationError(
            f"Kafka refused to let {agency} read {topics}: TopicAuthorizationFailedError "
            f"(error {kafka_errors.TopicAuthorizationFailedError.errno}). The principal "
            f"User:{agency} of this certificate has no READ ACL there, because no grant of "
            f"{agency} covers it. Tail only what is granted (leave out --category and "
            "--jurisdiction), or ask the federation admin for a grant: `fusionbus agency "
            f"grant {agency} --category CATEGORY --jurisdiction JURISDICTION`."
        )

    def _covers(self, category: str, jurisdiction: str) -> bool:
        try:
            return category in self._categories and any(
                covers(scope, jurisdiction) for scope in self._jurisdictions
            )
        except ValueError:  # a jurisdiction this node does not know (an unregistered place)
            return False

    def _outside_by_headers(self, record: ConsumerRecord[bytes, bytes]) -> bool:
        """True when the record's clear (unauthenticated) Kafka headers say it is outside the
        subscription. Forging them can only make a record skipped, which anyone able to
        write the topic could achieve anyway; they never make a record accepted."""
        headers = dict(record.headers or ())
        category, jurisdiction = headers.get("fb-category"), headers.get("fb-jurisdiction")
        if category is None or jurisdiction is None:
            return False
        return not self._covers(
            category.decode(errors="replace"), jurisdiction.decode(errors="replace")
        )

    async def _reject(self, record: ConsumerRecord[bytes, bytes], reason: str, detail: str) -> None:
        self.quarantined += 1
        log.warning(
            "subscriber.quarantined",
            reason=str(reason),
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        await self._quarantine.put(record, str(reason), detail)
        if self._on_reject is not None:
            await self._on_reject(record, str(reason), detail)

    async def _commit(self, consumer: AIOKafkaConsumer, done: dict[TopicPartition, int]) -> None:
        if done and self._group_id is not None:
            with map_kafka_errors("committing offsets"):
                await consumer.commit(done)


def new_group_id(agency: str, name: str | None = None) -> str:
    """A consumer group of ``agency`` (ACLs in a later issue allow only the agency's own)."""
    return f"fusionbus.{agency}.{name or uuid.uuid4().hex[:12]}"
