"""Batches of records from an aiokafka consumer, in our own types, never stuck on one record.

aiokafka decodes each record while handing it over (header keys as UTF-8, for instance). A
record it cannot decode makes ``getmany`` raise, and its fetcher is left pointing at that
record (and drops the records it decoded before it in the same call): every later call
raises again, so the partition is stuck there — across restarts too. :class:`RecordStream`
steps over such a record: it rewinds every assigned partition to its position (nothing
decoded before the culprit is lost), then reads the partitions one record at a time until
the culprit raises again, and yields an :class:`Undecodable` in its place with what is
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

    def __init__(self, consumer: AIOKafkaConsumer, *, action: str = "fetching reports") -> None:
        self._consumer = consumer
        self._action = action
        self._unlocated = 0

    async def batch(self, *, timeout_ms: int = 500, max_records: int = 500) -> list[Item]:
        """The next records, in partition order; empty when nothing arrived in time."""
        try:
            with map_kafka_errors(self._action):
                fetched = await self._consumer.getmany(
                    timeout_ms=timeout_ms, max_records=max_records
                )
        except FusionbusError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client could not decode a record
            return await self._step_over(exc)
        self._unlocated = 0
        return [_record(r) for records in fetched.values() for r in records]

    async def _step_over(self, error: Exception) -> list[Item]:
        consumer = self._consumer
        assigned = sorted(consumer.assignment())
        with map_kafka_errors(self._action):
            positions = {tp: await consumer.position(tp) for tp in assigned}
        for tp, position in positions.items():
            consumer.seek(tp, position)  # drop the fetcher's broken state, keep our place
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
        self._unlocated += 1
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
        """Read ``tp`` one record at a time from ``position`` (appending what decodes to
        ``items``) until a record fails to decode (returned) or nothing more is buffered."""
        consumer = self._consumer
        while True:
            try:
                with map_kafka_errors(self._action):
                    got = await consumer.getmany(tp, timeout_ms=_PROBE_TIMEOUT_MS, max_records=1)
            except FusionbusError:
                raise
            except Exception as exc:  # noqa: BLE001 - found it: the record at `position`
                consumer.seek(tp, position + 1)
                detail = f"the Kafka client cannot decode it: {type(exc).__name__}: {exc}"
                return Undecodable(Source(tp.topic, tp.partition, position), detail[:300])
            records = got.get(tp, [])
            if not records:
                return None
            items.extend(_record(r) for r in records)
            position = records[-1].offset + 1
