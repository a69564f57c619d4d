"""The asyncio ``Subscriber``: reports by jurisdiction and category, verified, at least once
(exactly once into a :mod:`consumers.sink`).

::

    subscriber = Subscriber(identity, directory, KafkaSettings(), categories=["narcotics"],
                            jurisdictions=["PK"], group_id="anf.case-system", delivered=store)
    await subscriber.run(handler)          # handler(delivery) is awaited once per report
    await subscriber.run(sink)             # or: sink.take(...) commits the write and the mark

Each record of the subscribed topics gets a verdict from the sans-IO
:class:`consumers.intake.Intake` (open, verify, validate, check topic and scope, deduplicate):
an accepted report is handed to the handler and then remembered as delivered; a rejected
record is written to the agency's quarantine topic with its reason code; a skipped one (not
addressed to this agency, outside the subscription, a redelivery) is passed over. Offsets
are committed per batch once every record in it is done; a commit that fails for a
transient reason (the group rebalanced meanwhile, as after a partition, or Kafka is out of
reach) is logged (``subscriber.commit_failed``) and the loop goes on: its reports are marked
delivered, so reading them again skips them.
No record can stop the loop: the intake is total, records the Kafka client cannot decode
are stepped over and quarantined (:mod:`consumers._stream`), and every quarantine write
fits. A handler that raises stops the subscriber after committing what was handled before
it, so the report is handed over again after a restart.

**How many reports a kill hands over twice** (``docs/reliability.md``). A plain handler is
awaited, then the report is receipted, audited and marked delivered, one report at a time:
with a store that survives the process (:class:`~consumers.delivered.SqliteDelivered`) a
kill -9 hands over again at most the one report between its handler's start and its mark;
with :class:`~consumers.delivered.MemoryDelivered`, everything since the last offset commit
(at most one batch). A :class:`~consumers.sink.Sink` commits the application's write and the
mark in one transaction: none twice.

**A slow handler** (:mod:`consumers._pace`). aiokafka drops a consumer from its group once
``max_poll_interval_ms`` pass without a fetch; each batch therefore gets half of it as a time
budget, after which the subscriber commits what it handled, seeks the rest back and fetches
again. It holds at most one batch (:attr:`Subscriber.in_flight`, at most 500 records)
whatever the backlog. A single handler call must still return within
``max_poll_interval_ms``. With ``group_instance_id`` the subscriber is a static member of
its group (KIP-345): restarted under the same id it gets its partitions back at once instead
of waiting for the dead member's session to expire (10 s). One id per running subscriber.

While it runs, :meth:`Subscriber.lag` says how many records of its assigned partitions are
not processed yet, from what the Kafka client already knows (the highwater of each
partition's last fetch answer): reading it costs no round trip. ``quarantined_by_reason``
counts the rejections by reason code.

Given ``receipts`` (a :class:`producers.FeedbackSender`), it tells the originator of each
report handed over that it was received — ``received`` feedback sealed to the originator
alone, sent once the handler returned and acknowledged by Kafka before the batch's offsets
are committed (``docs/cycle.md``). It is enqueued before the report is marked delivered,
so a subscriber killed before the mark hands the report over and receipts it again after a
restart (the originator keeps the latest); one killed after the mark but before Kafka took
the receipt sends none for that report (the redelivery is a duplicate). A receipt Kafka
refuses is logged (``subscriber.receipt_failed``) and not retried; it never stops the
subscriber.

For a sink the order is: the write, the audit record and the mark in the sink's
transaction, then the receipt once it committed. A kill before the commit leaves nothing
written and the report is handed over (and audited) again; a kill after it, before Kafka
took the receipt, sends none for that report (the redelivery is a duplicate): receipts of a
sink are sent at most once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.audit import Act, AuditWriter, sha256_hex
from broker.config import KafkaSettings, aiokafka_kwargs
from broker.envelope import Opener
from broker.errors import AuthorizationError, ConfigError, FusionbusError, Reason, TransportError
from broker.keys import Identity
from broker.topics import subscription_pattern
from broker.transport import map_kafka_errors, start_client
from consumers._catchup import CatchUp
from consumers._pace import Pace
from consumers._stream import RecordStream, Undecodable
from consumers.delivered import Delivered, MemoryDelivered
from consumers.intake import Accepted, Delivery, Intake, Record, Rejected, SkipReason, Source
from consumers.quarantine import Quarantine
from consumers.sink import Sink
from schemas import Feedback, Outcome
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation import Directory

__all__ = ["Delivery", "Handler", "RejectHook", "SkipHook", "Subscriber", "new_group_id"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
_SWEEP_EVERY_S = 60.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


Handler = Callable[[Delivery], Awaitable[None]]
RejectHook = Callable[[Source, str, str], Awaitable[None]]
"""Told of each quarantined record: (where it was read, reason code, detail)."""
SkipHook = Callable[[Source, SkipReason], Awaitable[None]]
"""Told of each record passed over: (where it was read, why)."""


_HandOver = Callable[[Accepted, bytes | None], Awaitable[None]]


class ReceiptSender(Protocol):
    """What sends the ``received`` feedback (:class:`producers.FeedbackSender`)."""

    async def enqueue(self, feedback: Feedback, about: RoutingHeader) -> asyncio.Future[object]: ...


class Subscriber:
    """Consumes the reports one agency may read; one per task, not thread-safe."""

    def __init__(
        self,
        identity: Identity,
        directory: Directory,
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
        max_poll_interval_ms: int = 300_000,
        group_instance_id: str | None = None,
        on_reject: RejectHook | None = None,
        on_skip: SkipHook | None = None,
        receipts: ReceiptSender | None = None,
        audit: AuditWriter | None = None,
    ) -> None:
        self._identity = identity
        self._directory = directory
        self._settings = settings
        self._pattern = subscription_pattern(jurisdictions, categories)
        self._group_id = group_id
        self._from_beginning = from_beginning or since is not None
        self._delivered = delivered if delivered is not None else MemoryDelivered()
        self._clock = clock
        self._metadata_refresh_ms = metadata_refresh_ms
        self._max_poll_interval_ms = max_poll_interval_ms
        self._group_instance_id = group_instance_id
        self._pace = Pace(max_poll_interval_ms / 2000)
        self.intake = Intake(
            Opener(identity, directory), categories=categories, jurisdictions=jurisdictions,
            delivered=self._delivered, clock=clock,
            since_ms=int(since.timestamp() * 1000) if since is not None else None,
        )  # fmt: skip
        self._audit = audit
        self._quarantine = Quarantine(identity.agency, settings, audit=audit)
        self._on_reject = on_reject
        self._unacked: list[asyncio.Future[object]] = []
        self._on_skip = on_skip
        self._receipts = receipts
        self._receipts_unacked: list[tuple[uuid.UUID, asyncio.Future[object]]] = []
        self.handed_over = 0
        self.quarantined = 0
        self.quarantined_by_reason: Counter[str] = Counter()
        """Rejections by reason code (the values of :class:`broker.errors.Reason`)."""
        self.skipped = 0
        self._consumer: AIOKafkaConsumer | None = None
        self._stream: RecordStream | None = None
        self._in_flight = 0
        """Records of the current batch not processed yet."""

    @property
    def consuming(self) -> bool:
        """Whether the consumer is started and reading (not before, not after ``run``)."""
        return self._stream is not None

    @property
    def in_flight(self) -> int:
        """Records of the current batch taken from Kafka and not processed yet: what the
        subscriber holds in memory beyond the Kafka client's own fetch buffer."""
        return self._in_flight

    def lag(self) -> int | None:
        """Records on the assigned partitions not processed yet: per partition, the
        highwater of its last fetch answer minus the offset of the next record owed, plus the
        records of the batch being processed. ``None`` while not consuming, or while no
        partition has been fetched yet; ``0`` with nothing assigned. No Kafka round trip."""
        consumer, stream = self._consumer, self._stream
        if consumer is None or stream is None:
            return None
        assigned = consumer.assignment()
        if not assigned:
            return 0
        behind: int | None = None
        for tp in assigned:
            highwater, owed = consumer.highwater(tp), stream.owed(tp)
            if highwater is not None and owed is not None:
                behind = (behind or 0) + max(0, highwater - owed)
        return None if behind is None else behind + self._in_flight

    async def run(
        self, handler: Handler | Sink, *, limit: int | None = None, exit_at_end: bool = False
    ) -> None:
        """Consume until cancelled, until ``limit`` reports were handed over, or — with
        ``exit_at_end`` — once caught up with what the topics held when it started.

        On a secured cluster, fetching a topic this agency's principal may not READ (no grant
        covers it) raises :class:`AuthorizationError` with Kafka's refusal and the topic; an
        agency whose keys are all revoked is told so before anything is fetched.

        Given a :class:`consumers.sink.Sink` instead of a handler, each report is written and
        marked in one transaction: the subscriber must have been built with
        ``delivered=sink.delivered``, or this raises :class:`ConfigError`."""
        if isinstance(handler, Sink) and handler.delivered is not self._delivered:
            raise ConfigError(
                "a sink keeps the delivery marks in its own database: build the Subscriber "
                "with delivered=sink.delivered, so that a report the sink committed is "
                "recognised as a duplicate when it is read again"
            )
        self._refuse_if_revoked()
        kwargs = aiokafka_kwargs(self._settings, "consumer")
        kwargs["auto_offset_reset"] = "earliest" if self._from_beginning else "latest"
        kwargs["metadata_max_age_ms"] = self._metadata_refresh_ms
        kwargs["max_poll_interval_ms"] = self._max_poll_interval_ms
        if self._group_instance_id is not None:
            kwargs["group_instance_id"] = self._group_instance_id
        consumer = AIOKafkaConsumer(group_id=self._group_id, **kwargs)
        try:
            await start_client(consumer, self._settings, "starting the subscriber")
            consumer.subscribe(pattern=self._pattern)
            await self._quarantine.start()
            self._consumer = consumer
            await self._loop(consumer, handler, limit, exit_at_end)
        finally:
            self._consumer = self._stream = None
            self._in_flight = 0
            await self._quarantine.stop()
            await consumer.stop()

    def _refuse_if_revoked(self) -> None:
        now = self._clock()
        usable = [
            kid
            for kid in self._identity.decryption_keys
            if (record := self._directory.snapshot.encryption_key(kid)) is not None
            and (record.revoked_at is None or record.revoked_at > now)
        ]
        if not usable:
            agency = self._identity.agency
            raise AuthorizationError(
                f"agency {agency} is revoked: the directory marks every encryption key of "
                f"{agency} revoked (or does not list them), so no report is sealed to it and "
                "the cluster gives it no access. Ask the federation admin to enrol new keys "
                f"(`fusionbus agency rotate-keys {agency}` on the admin's machine)."
            )

    async def _loop(
        self,
        consumer: AIOKafkaConsumer,
        handler: Handler | Sink,
        limit: int | None,
        exit_at_end: bool,
    ) -> None:
        catch_up = CatchUp() if exit_at_end else None
        hand_over = self._hand_over(handler)
        stream = self._stream = RecordStream(
            consumer, grouped=self._group_id is not None, from_beginning=self._from_beginning
        )
        next_sweep = 0.0
        while limit is None or self.handed_over < limit:
            if time.monotonic() >= next_sweep:  # forget ids whose envelopes have expired
                self._delivered.forget_expired(self._clock())
                next_sweep = time.monotonic() + _SWEEP_EVERY_S
            pace = self._pace
            try:
                items = await stream.batch(max_records=pace.max_records)
            except AuthorizationError as exc:
                raise self._refused(exc) from exc
            pace.begin()  # aiokafka's idle clock started when the fetch returned
            done: dict[TopicPartition, int] = {}
            self._in_flight = len(items)
            handled = 0
            try:
                for item in items:
                    if limit is not None and self.handed_over >= limit:
                        break
                    if handled and pace.spent():  # fetch again before the group drops us
                        stream.give_back(items[handled:])
                        self._in_flight = 0
                        break
                    await self._process(item, hand_over)
                    self._in_flight -= 1
                    handled += 1
                    source = item.source
                    done[TopicPartition(source.topic, source.partition)] = source.offset + 1
            finally:
                await self._commit(consumer, done)
            pace.end(handled, len(items))
            if catch_up is not None and await catch_up.done(consumer):
                return

    async def _process(self, item: Record | Undecodable, hand_over: _HandOver) -> None:
        if isinstance(item, Undecodable):
            await self._reject(item.source, None, None, Rejected(Reason.UNDECODABLE, item.error))
            return
        verdict = self.intake.process(item)
        if isinstance(verdict, Accepted):
            await hand_over(verdict, item.value)
            self.handed_over += 1
        elif isinstance(verdict, Rejected):
            await self._reject(item.source, item.key, item.value, verdict)
        else:
            self.skipped += 1
            if self._on_skip is not None:
                await self._on_skip(item.source, verdict.reason)

    def _hand_over(self, handler: Handler | Sink) -> _HandOver:
        """How an accepted report is handed over, marked, receipted and audited."""
        if isinstance(handler, Sink):
            sink = handler

            async def take(verdict: Accepted, envelope: bytes | None) -> None:
                def mark() -> None:  # inside the sink's transaction, after its write
                    self._audit_delivery(verdict.delivery, envelope)  # a local append
                    self.intake.mark(verdict)

                sink.take(verdict.delivery, mark)  # the write and the mark: one transaction
                await self._receipt(verdict.delivery)  # after the commit: sent at most once

            return take

        async def call(verdict: Accepted, envelope: bytes | None) -> None:
            await handler(verdict.delivery)
            await self._receipt(verdict.delivery)  # before the mark: a crash here resends it
            self._audit_delivery(verdict.delivery, envelope)  # a local append: no await
            self.intake.mark(verdict)

        return call

    async def _receipt(self, delivery: Delivery) -> None:
        """Tell the originator the report was taken (``received`` feedback). Kafka's answer
        is awaited before the offsets are committed; a failure is logged, never stops the
        subscriber (the report was handed over: that is what counts)."""
        header = delivery.header
        if self._receipts is None or header.sender == self._identity.agency:
            return
        feedback = Feedback(
            message_id=uuid.uuid4(), report_id=header.message_id, originator=header.sender,
            sender=self._identity.agency, created_at=self._clock(), outcome=Outcome.RECEIVED,
        )  # fmt: skip
        try:
            pending = await self._receipts.enqueue(feedback, header)
        except FusionbusError as exc:  # the originator cannot be told (revoked, unreachable)
            log.warning("subscriber.receipt_failed", report=str(header.message_id), error=str(exc))
            return
        self._receipts_unacked.append((header.message_id, pending))

    def _audit_delivery(self, delivery: Delivery, envelope: bytes | None) -> None:
        """Put the hand-over on this agency's audit trail (never raises, never waits)."""
        if self._audit is not None:
            header = delivery.header
            self._audit.record(
                Act.DELIVERY, message_id=header.message_id, report_id=header.message_id,
                digests={"envelope": sha256_hex(envelope or b"")}, parties=[header.sender],
            )  # fmt: skip

    def _refused(self, exc: AuthorizationError) -> AuthorizationError:
        agency = self._identity.agency
        return AuthorizationError(
            f"{exc} The principal User:{agency} of this certificate has no READ ACL on a "
            f"subscribed topic, because no grant of {agency} covers it. Tail only what is "
            "granted (leave out --category and --jurisdiction), or ask the federation admin "
            f"for a grant: `fusionbus agency grant {agency} --category CATEGORY "
            "--jurisdiction JURISDICTION`."
        )

    async def _reject(
        self, source: Source, key: bytes | None, value: bytes | None, verdict: Rejected
    ) -> None:
        self.quarantined += 1
        reason = str(verdict.reason)
        self.quarantined_by_reason[reason] += 1
        log.warning(
            "subscriber.quarantined",
            reason=reason,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
        )
        self._unacked.append(
            await self._quarantine.send(source, key, value, reason, verdict.detail)
        )
        if self._on_reject is not None:
            await self._on_reject(source, reason, verdict.detail)

    async def _commit(self, consumer: AIOKafkaConsumer, done: dict[TopicPartition, int]) -> None:
        """Commit ``done`` once every quarantine copy of the batch is acknowledged (nothing
        rejected is lost: a failed copy raises before the offset moves past its record)."""
        unacked, self._unacked = self._unacked, []
        with map_kafka_errors("quarantining rejected records"):
            for acknowledged in unacked:
                await acknowledged
        receipts, self._receipts_unacked = self._receipts_unacked, []
        for report_id, pending in receipts:
            try:
                await pending
            except Exception as exc:  # noqa: BLE001 - a lost receipt is logged, not fatal
                log.warning(
                    "subscriber.receipt_failed", report=str(report_id), error=type(exc).__name__
                )
        if done and self._group_id is not None:
            try:
                with map_kafka_errors("committing offsets"):
                    await consumer.commit(done)
            except TransportError as exc:
                if not exc.retriable:
                    raise
                # Handed-over reports are marked delivered: read again, they are skipped.
                log.warning("subscriber.commit_failed", error=str(exc))


def new_group_id(agency: str, name: str | None = None) -> str:
    """A consumer group of ``agency`` (its ACLs allow only groups with this prefix)."""
    return f"fusionbus.{agency}.{name or uuid.uuid4().hex[:12]}"
