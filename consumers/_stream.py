"""Batches of records from an aiokafka consumer, in our own types, never stuck on one record.

aiokafka decodes each record while handing it over (header keys as UTF-8, for instance). A
record it cannot decode makes ``getmany`` raise: the records it decoded before it in the
same call are dropped — though the positions of the partitions they came from have already
moved past them — and the partition is left pointing at the culprit, so every later call
raises again (across restarts too, with a consumer group). :class:`RecordStream` remembers
the next offset it owes the caller for every assigned partition; on such a failure it
rewinds every partition there (nothing is lost), reads the partitions one record at a time
until the culprit raises again, yields an :class:`Undecodable` in its place with what is
known of it (topic, partition, offset) and moves past it.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from broker.errors import FusionbusError, TransportError
from broker.transport import map_kafka_errors
from consumers.intake import Record, Source

__all__ = ["RecordStream", "Undecodable"]

log = structlog.get_logger(__name__)

_PROBE_TIMEOUT_MS = 1_000
_PROBE_BULK = 500
_MAX_UNLOCATED = 3
"""Decoding failures in a row whose record could not be found before giving up."""


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A record the Kafka client could not decode: only its position is known."""

    source: Source
    error: str


Item = Record | Undecodable


def _record(raw: ConsumerRecord[bytes, bytes]) -> Record:
    return Record(
        Source(raw.topic, raw.partition, raw.offset, raw.timestamp),
        raw.value,
        raw.key,
        tuple(raw.headers or ()),
    )


class RecordStream:
    """Reads batches of :class:`Record` (and :class:`Undecodable`) from ``consumer``."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        grouped: bool,
        from_beginning: bool,
        action: str = "fetching reports",
    ) -> None:
        self._consumer = consumer
        self._grouped = grouped
        self._from_beginning = from_beginning
        self._action = action
        self._unlocated = 0
        self._next: dict[TopicPartition, int] = {}
        """Per assigned partition, the offset of the next record owed to the caller."""

    def owed(self, tp: TopicPartition) -> int | None:
        """The offset of the next record of ``tp`` owed to the caller (``None`` before the
        first batch since ``tp`` was assigned)."""
        return self._next.get(tp)

    async def batch(self, *, timeout_ms: int = 500, max_records: int = 500) -> list[Item]:
        """The next records, in partition order; empty when nothing arrived in time."""
        consumer = self._consumer
        assigned = consumer.assignment()
        with map_kafka_errors(self._action):
            for tp in assigned - self._next.keys():  # newly assigned: where it starts
                self._next[tp] = await consumer.position(tp)
        for tp in self._next.keys() - assigned:  # revoked
            del self._next[tp]
        try:
            with map_kafka_errors(self._action):
                fetched = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except FusionbusError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client could not decode a record
            return await self._step_over(exc)
        self._unlocated = 0
        items: list[Item] = []
        for tp, records in fetched.items():
            items.extend(_record(r) for r in records)
            if records:
                self._next[tp] = records[-1].offset + 1
        return items

    def give_back(self, items: list[Item]) -> None:
        """Return ``items`` (the unprocessed tail of the last batch): each partition still
        assigned is sought back to its first record among them, which the next batches
        hand over again. A partition revoked meanwhile is left to its new owner, which
        resumes from the committed offset."""
        first: dict[TopicPartition, int] = {}
        for item in items:
            tp = TopicPartition(item.source.topic, item.source.partition)
            first[tp] = min(first.get(tp, item.source.offset), item.source.offset)
        assigned = self._consumer.assignment()
        for tp, offset in first.items():
            if tp in assigned:
                self._consumer.seek(tp, offset)
                self._next[tp] = offset

    async def _start_of(self, tp: TopicPartition) -> int:
        """Where a partition assigned during the failed call started: its committed offset,
        else where the reset policy puts a new consumer (the records drained for it before
        the failure moved its position on, but were never handed over)."""
        consumer = self._consumer
        with map_kafka_errors(self._action):
            committed = await consumer.committed(tp) if self._grouped else None
            if committed is not None:
                return int(committed)
            if self._from_beginning:
                return int((await consumer.beginning_offsets([tp]))[tp])
            return int(await consumer.position(tp))  # "latest": nothing earlier was owed

    async def _step_over(self, error: Exception) -> list[Item]:
        consumer = self._consumer
        assigned = sorted(consumer.assignment())
        for tp in assigned:
            if tp not in self._next:
                self._next[tp] = await self._start_of(tp)
        positions = {tp: self._next[tp] for tp in assigned}
        for tp, position in positions.items():
            consumer.seek(tp, position)  # drop the fetcher's broken state, resume where owed
        items: list[Item] = []
        for tp in assigned:
            culprit = await self._probe(tp, positions[tp], items)
            if culprit is not None:
                self._unlocated = 0
                log.warning(
                    "stream.undecodable", source=str(culprit.source), error=type(error).__name__
                )
                items.append(culprit)
                return items
        self._unlocated = 0 if items else self._unlocated + 1  # progress, or none at all
        if self._unlocated >= _MAX_UNLOCATED:
            raise TransportError(
                f"the Kafka client failed {_MAX_UNLOCATED} times in a row while {self._action} "
                f"({type(error).__name__}: {str(error)[:200]}) and no single record could be "
                "blamed; see the log."
            ) from error
        return items

    async def _probe(
        self, tp: TopicPartition, position: int, items: list[Item]
    ) -> Undecodable | None:
        """Look for the culprit in ``tp`` from ``position``: read the next records in bulk
        (appending them to ``items``: the culprit is not among them) and, if that fails,
        again one at a time from ``position`` to find it. A partition known to be caught up
        is passed over without waiting."""
        consumer = self._consumer
        highwater = consumer.highwater(tp)
        if highwater is not None and position >= highwater:
            return None
        try:
            got = await self._read(tp, _PROBE_BULK)
        except _Undecodable:
            consumer.seek(tp, position)
        else:
            self._keep(tp, got, items)
            return None
        for _ in range(_PROBE_BULK + 1):
            try:
                got = await self._read(tp, 1)
            except _Undecodable as failure:
                consumer.seek(tp, position + 1)
                self._next[tp] = position + 1
                detail = f"the Kafka client cannot decode it: {failure.reason}"
                return Undecodable(Source(tp.topic, tp.partition, position), detail[:300])
            if not got:
                return None
            self._keep(tp, got, items)
            position = got[-1].offset + 1
        return None  # pragma: no cover - the bulk read failed within _PROBE_BULK records

    async def _read(self, tp: TopicPartition, count: int) -> list[ConsumerRecord[bytes, bytes]]:
        try:
            with map_kafka_errors(self._action):
                got = await self._consumer.getmany(
                    tp, timeout_ms=_PROBE_TIMEOUT_MS, max_records=count
                )
        except FusionbusError:
            raise
        except Exception as exc:
            raise _Undecodable(f"{type(exc).__name__}: {exc}") from exc
        return list(got.get(tp, []))

    def _keep(
        self, tp: TopicPartition, got: list[ConsumerRecord[bytes, bytes]], items: list[Item]
    ) -> None:
        if got:
            items.extend(_record(r) for r in got)
            self._next[tp] = got[-1].offset + 1


class _Undecodable(Exception):  # noqa: N818 - an internal signal, never raised to callers
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
