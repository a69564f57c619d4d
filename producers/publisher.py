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
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from broker.audit import Act, AuditWriter, sha256_hex
from broker.config import KafkaSettings
from broker.envelope import Sealer, expiry_of, report_item
from broker.errors import AuthorizationError, ConfigError, FusionbusError
from broker.keys import Identity
from broker.provisioning.topics import ensure_topics
from broker.topics import Header, report_topic
from broker.transport import kafka_error, send_fault
from producers._client import ProducerClient
from producers._signer import BatchSigner
from producers.outbox import Backlog, ExpiredError, Outbox, Queued, Sealed
from schemas import Report

if TYPE_CHECKING:
    from aiokafka import AIOKafkaProducer

    from broker.federation import Directory, DisseminationPolicy

__all__ = ["Published", "Publisher", "Queued", "Result", "Settled", "routing_headers"]

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


Result = Published | Queued | FusionbusError
"""What became of one report given to :meth:`Publisher.publish_many`."""

Settled = Callable[[uuid.UUID, "Published | FusionbusError"], None]
"""Told of each report the outbox delivered (or gave up on), whoever accepted it."""

_DRAIN_BATCH = 500
_BACKOFF_S = (0.5, 10.0)
"""The outbox's wait after a failed round: doubles from the first to at most the second."""
_UNSENT_KEPT = 10_000


class Publisher(ProducerClient):
    """Publishes reports of one agency (``identity``). One per process; not thread-safe.

    Without ``outbox``, :meth:`publish_many` sends at once and returns once Kafka answered:
    :class:`Published`, or an error per report. A report that failed for a transient reason
    keeps its envelope: published again (the same report), the same bytes are sent, so a
    first attempt Kafka did store after all is a redelivery the receivers skip, never a
    replay. The Kafka producer is recreated after such a failure (aiokafka's idempotent
    producer can stay stuck on ``OutOfOrderSequenceNumber``).

    With ``outbox`` (:class:`producers.outbox.Outbox`), a report is sealed and written to the
    outbox when it is accepted, and a background task sends the outbox in order, through
    every fault, until it is empty (``docs/reliability.md``). :meth:`publish_many` then waits
    up to ``ack_wait_s`` for Kafka and returns :class:`Queued` for what is still waiting;
    starting needs no Kafka at all. ``on_settled`` hears of every report the outbox sent or
    gave up on (expired, refused), including reports a previous process accepted.
    """

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
        outbox: Outbox | None = None,
        ack_wait_s: float = 10.0,
        on_settled: Settled | None = None,
        envelope_version: int = 2,
    ) -> None:
        super().__init__(settings)
        self._identity = identity
        self._directory = directory
        self._audit = audit
        self._policy = policy
        self._clock = clock
        self._partitions = topic_partitions
        self._sealer = Sealer(identity, directory, clock=clock, version=envelope_version)
        self._signer = BatchSigner(self._sealer)
        self._topics: set[str] = set()
        self._threads: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._unsent: OrderedDict[uuid.UUID, tuple[Report, Sealed]] = OrderedDict()
        self.outbox = outbox
        self._ack_wait_s = ack_wait_s
        self._on_settled = on_settled
        self._waiting: dict[uuid.UUID, asyncio.Future[Published | FusionbusError]] = {}
        self._drainer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._stopping = False
        self.renewals = 0
        """How many times the Kafka producer was recreated after a fault."""

    async def start(self) -> None:
        if self.outbox is None:
            await super().start()
            return
        self._stopping = False
        self._drainer = asyncio.create_task(self._drain(), name="fusionbus.outbox")

    async def stop(self) -> None:
        """Stop; with an outbox, once the round being sent got Kafka's answer (what is still
        queued stays in the outbox for the next start)."""
        drainer, self._drainer = self._drainer, None
        if drainer is not None:
            self._stopping = True
            self._wake.set()
            try:
                await asyncio.wait_for(
                    asyncio.shield(drainer), self._settings.request_timeout_ms / 1000 + 5
                )
            except TimeoutError:
                drainer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await drainer
        await super().stop()

    async def publish(self, report: Report) -> Published | Queued:
        """Seal and send one report; return once Kafka has acknowledged it (with an outbox:
        or once it is safely queued and Kafka did not answer within ``ack_wait_s``)."""
        [result] = await self.publish_many([report])
        if isinstance(result, FusionbusError):
            raise result
        return result

    async def publish_many(self, reports: Sequence[Report]) -> list[Result]:
        """Send many reports efficiently; one result per report, in order.

        Every report is checked and sealed before anything is sent: a report this agency may
        not send (another sender, no recipient) raises at once and nothing is published. With
        an outbox, a batch that does not fit raises :class:`OutboxFullError` and nothing is taken.
        """
        sealed = await self._seal_all(reports)
        if self.outbox is not None:
            return await self._accept(sealed)
        if self._producer is None and self.renewals:  # a renewal failed: try once more
            await self._connect()
        producer = self._require_started()
        await self._ensure_topics({item.topic for _, item in sealed})
        outcomes = await self._send(producer, [item for _, item in sealed])
        results: list[Result] = []
        renew = False
        for (report, item), outcome in zip(sealed, outcomes, strict=True):
            result = self._settle(item, outcome)
            results.append(result)
            if isinstance(outcome, BaseException) and send_fault(outcome) == "transient":
                renew = True
                self._keep_unsent(report, item)
            elif not isinstance(outcome, BaseException):
                self._unsent.pop(report.message_id, None)
        if renew:
            await self._renew_after_fault(producer)
        return results

    def backlog(self) -> Backlog | None:
        """The outbox's backlog (``None`` without an outbox)."""
        return None if self.outbox is None else self.outbox.backlog()

    async def wait_sent(self, timeout_s: float) -> bool:
        """With an outbox: wait until it holds nothing queued (``True``), or ``timeout_s``."""
        if self.outbox is None or self._drainer is None:
            return True
        try:
            await asyncio.wait_for(self._emptied(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def _emptied(self) -> None:
        outbox = self.outbox
        assert outbox is not None  # noqa: S101 - only called with an outbox
        while outbox.backlog().queued:
            self._idle.clear()
            self._wake.set()
            await self._idle.wait()

    # -- sending -------------------------------------------------------------------------

    async def _send(self, producer: AIOKafkaProducer, items: Sequence[Sealed]) -> list[object]:
        """Send ``items``; Kafka's answer (record metadata or an exception) for each."""
        futures: list[asyncio.Future[object]] = []
        try:
            for item in items:
                futures.append(
                    await producer.send(
                        item.topic, value=item.envelope, key=item.key, headers=list(item.headers)
                    )
                )
        except Exception as exc:  # noqa: BLE001 - the producer failed before taking them all
            answered = await asyncio.gather(*futures, return_exceptions=True)
            return [*answered, *([exc] * (len(items) - len(futures)))]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    def _settle(self, item: Sealed, outcome: object) -> Published | FusionbusError:
        if isinstance(outcome, BaseException):
            error = kafka_error(outcome, f"publishing report {item.message_id}")
            if error is not outcome:
                error.__cause__ = outcome
            log.warning("publish.failed", message_id=str(item.message_id), error=str(error))
            return error
        partition, offset = getattr(outcome, "partition", -1), getattr(outcome, "offset", -1)
        log.debug(
            "publish.acked", message_id=str(item.message_id), topic=item.topic,
            partition=partition, offset=offset, recipients=len(item.kids),
        )  # fmt: skip
        if self._audit is not None:
            self._audit.record(
                Act.PUBLISH, message_id=item.message_id, report_id=item.message_id,
                digests={"envelope": sha256_hex(item.envelope)}, parties=self._agencies(item.kids),
            )  # fmt: skip
        return Published(item.message_id, item.topic, partition, offset, item.kids)

    async def _renew_after_fault(self, producer: AIOKafkaProducer) -> None:
        self.renewals += 1
        log.info("publish.producer_renewed", renewals=self.renewals)
        try:
            await self._renew(producer)
        except FusionbusError as exc:  # the next round (or publish) starts one again
            log.info("publish.producer_unavailable", error=str(exc))

    def _keep_unsent(self, report: Report, item: Sealed) -> None:
        self._unsent[report.message_id] = (report, item)
        self._unsent.move_to_end(report.message_id)
        while len(self._unsent) > _UNSENT_KEPT:
            self._unsent.popitem(last=False)

    # -- the outbox ----------------------------------------------------------------------

    async def _accept(self, sealed: Sequence[tuple[Report, Sealed]]) -> list[Result]:
        outbox = self.outbox
        assert outbox is not None  # noqa: S101 - only called with an outbox
        loop = asyncio.get_running_loop()
        items = [item for _, item in sealed]
        outbox.put(items)  # on disk (fsync) before anyone hears "accepted"
        futures = []
        for item in items:
            future = self._waiting.get(item.message_id)
            if future is None or future.done():
                future = self._waiting[item.message_id] = loop.create_future()
            futures.append(future)
        self._wake.set()
        if self._ack_wait_s > 0:
            await asyncio.wait(futures, timeout=self._ack_wait_s)
        results: list[Result] = []
        for item, future in zip(items, futures, strict=True):
            if future.done():
                results.append(future.result())
            else:
                results.append(Queued(item.message_id, item.topic, item.kids, item.accepted_at))
        return results

    async def _drain(self) -> None:
        """Send the outbox, oldest first, until stopped; wait and retry through faults. One
        round that fails unexpectedly is logged and tried again: the task never dies."""
        backoff = _BACKOFF_S[0]
        while not self._stopping:
            try:
                done = await self._drain_round()
            except Exception:  # logged; the rows stay queued for the next round
                log.exception("outbox.round_failed")
                done = False
            if done:
                backoff = _BACKOFF_S[0]
            else:
                await self._pause(backoff)
                backoff = min(backoff * 2, _BACKOFF_S[1])
        self._idle.set()

    async def _drain_round(self) -> bool:
        """Send the next rows; ``False`` when Kafka could not take them all (back off)."""
        outbox = self.outbox
        assert outbox is not None  # noqa: S101 - only started with an outbox
        self._wake.clear()  # reports accepted from here on end the pause after this round
        for message_id in outbox.expire(self._clock()):
            self._told(message_id, ExpiredError(message_id))
        rows = outbox.next(_DRAIN_BATCH)
        if not rows:
            self._idle.set()
            await self._pause(1.0)
            return True
        try:
            producer = self._producer
            if producer is None:
                await self._connect()
                producer = self._require_started()
            refused = await self._refused_topics({row.item.topic for row in rows})
        except FusionbusError as exc:
            log.info("outbox.waiting", queued=outbox.backlog().queued, error=str(exc))
            return False
        for row in [row for row in rows if row.item.topic in refused]:
            refusal = refused[row.item.topic]
            log.warning("publish.failed", message_id=str(row.item.message_id), error=str(refusal))
            outbox.fail(row.seq, str(refusal))
            self._told(row.item.message_id, refusal)
        rows = [row for row in rows if row.item.topic not in refused]
        outcomes = await self._send(producer, [row.item for row in rows])
        sent: list[int] = []
        faults = 0
        for row, outcome in zip(rows, outcomes, strict=True):
            if not isinstance(outcome, BaseException):
                sent.append(row.seq)
                self._told(row.item.message_id, self._settle(row.item, outcome))
            elif send_fault(outcome) == "permanent":
                error = self._settle(row.item, outcome)
                outbox.fail(row.seq, str(error))
                self._told(row.item.message_id, error)
            else:
                faults += 1
        outbox.sent(sent)
        if faults:
            log.info("outbox.retrying", failed=faults, sent=len(sent))
            await self._renew_after_fault(producer)
        return not faults

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when woken (reports accepted since the round began,
        or stop)."""
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    def _told(self, message_id: uuid.UUID, result: Published | FusionbusError) -> None:
        future = self._waiting.pop(message_id, None)
        if future is not None and not future.done():
            future.set_result(result)
        if self._on_settled is not None:
            self._on_settled(message_id, result)

    async def _seal_all(self, reports: Sequence[Report]) -> list[tuple[Report, Sealed]]:
        """Check every report, then seal the new ones in one batch (a report sent again
        after a transient failure keeps the bytes of its first attempt)."""
        kept: dict[int, tuple[Report, Sealed]] = {}
        todo: list[tuple[int, Report, tuple[str, ...]]] = []
        for at, report in enumerate(reports):
            if report.sender != self._identity.agency:
                raise AuthorizationError(
                    f"report {report.message_id} names sender {report.sender!r}, but this "
                    f'publisher signs as {self._identity.agency!r}; set "sender": '
                    f'"{self._identity.agency}" or publish with --agency {report.sender}.'
                )
            previous = self._unsent.get(report.message_id)
            if previous is not None and previous[0] == report:
                kept[at] = previous
                continue
            kids = tuple(self._policy.recipients(report, self._clock()))
            if not kids:
                raise ConfigError(
                    f"no agency is entitled to receive report {report.message_id} "
                    f"({report.category} in {report.jurisdiction}); grant one with "
                    "`fusionbus agency grant`."
                )
            todo.append((at, report, kids))
        items = [report_item(self._sealer, report, kids) for _, report, kids in todo]
        envelopes = await self._signer.seal(items) if items else []
        accepted_at = self._clock()
        for (at, report, kids), envelope in zip(todo, envelopes, strict=True):
            kept[at] = (
                report,
                Sealed(
                    message_id=report.message_id,
                    topic=report_topic(report.sender, report.jurisdiction, report.category),
                    key=str(self._thread_of(report)).encode(),
                    envelope=envelope,
                    headers=tuple(routing_headers(report)),
                    kids=kids,
                    accepted_at=accepted_at,
                    expires_at=expiry_of(report),
                ),
            )
        return [kept[at] for at in range(len(reports))]

    def _agencies(self, kids: Sequence[str]) -> list[str]:
        """The agencies other than this one whose encryption keys ``kids`` are."""
        snapshot = self._directory.snapshot
        found = {k.agency for kid in kids if (k := snapshot.encryption_key(kid)) is not None}
        return sorted(found - {self._identity.agency})

    async def _ensure_topics(self, topics: set[str]) -> None:
        missing = topics - self._topics
        if missing:
            await ensure_topics(self._settings, missing, partitions=self._partitions)
            self._topics |= missing

    async def _refused_topics(self, topics: set[str]) -> dict[str, FusionbusError]:
        """Make sure ``topics`` exist; the ones Kafka will never let this agency create (not
        granted), each with its error. A fault that may pass (the cluster unreachable) raises."""
        try:
            await self._ensure_topics(topics)
        except AuthorizationError:
            pass
        else:
            return {}
        refused: dict[str, FusionbusError] = {}
        for topic in sorted(topics - self._topics):
            try:
                await self._ensure_topics({topic})
            except AuthorizationError as exc:
                refused[topic] = exc
        return refused

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
