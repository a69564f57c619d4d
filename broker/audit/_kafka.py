"""Reading audit topics and writing anchors: the Kafka side of :mod:`broker.audit`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from broker.audit.chain import Entry
from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import TransportError
from broker.provisioning.topics import ensure_topics
from broker.topics import AUDIT_ANCHOR_TOPIC, AUDIT_PREFIX, ROOT_AUDIT_TOPIC
from broker.transport import map_kafka_errors

__all__ = ["publish_anchor", "read_audit", "read_topics"]

_ANCHOR_KEY = b"anchor"
_ROOTS = (AUDIT_ANCHOR_TOPIC, ROOT_AUDIT_TOPIC)


async def read_topics(
    settings: KafkaSettings,
    topics: Iterable[str] | None = None,
    *,
    last: int | None = None,
    deadline_s: float = 60.0,
) -> dict[str, list[Entry]]:
    """Every value of ``topics`` (default: every audit topic, the root's and the anchors') up
    to its current end, in log order; with ``last``, only the last ``last``. A topic that
    does not exist is left out. The audit topics have one partition: a chain is what
    partition 0 holds, whatever else anyone adds."""
    consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings, "consumer"))
    with map_kafka_errors("reading the audit topics"):
        await consumer.start()
    try:
        with map_kafka_errors("reading the audit topics"):
            existing = await consumer.topics()
            wanted = (
                sorted(t for t in existing if t.startswith(AUDIT_PREFIX) or t in _ROOTS)
                if topics is None
                else sorted(set(topics) & existing)
            )
            parts = [TopicPartition(t, 0) for t in wanted]  # one partition each, by design
            found: dict[str, list[Entry]] = {t: [] for t in wanted}
            if not parts:
                return found
            consumer.assign(parts)
            ends = await consumer.end_offsets(parts)
            starts = await consumer.beginning_offsets(parts)
            for tp in parts:
                first = starts[tp] if last is None else max(starts[tp], ends[tp] - last)
                consumer.seek(tp, first)
            try:
                await asyncio.wait_for(_read(consumer, ends, found), deadline_s)
            except TimeoutError:
                raise TransportError(
                    f"could not read the audit topics to their end within {deadline_s:.0f} s",
                    retriable=True,
                ) from None
            return found
    finally:
        await consumer.stop()


async def _read(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], found: dict[str, list[Entry]]
) -> None:
    owed = {tp for tp, end in ends.items() if await consumer.position(tp) < end}
    while owed:
        batch = await consumer.getmany(*owed, timeout_ms=500, max_records=5_000)
        for tp, records in batch.items():
            for record in records:
                if record.offset < ends[tp] and record.value is not None:
                    found[tp.topic].append(Entry(record.offset, bytes(record.value)))
        owed = {tp for tp in owed if await consumer.position(tp) < ends[tp]}


async def read_audit(settings: KafkaSettings) -> tuple[dict[str, list[Entry]], list[Entry]]:
    """(values by audit topic, anchors): everything :func:`read_topics` finds by default."""
    found = await read_topics(settings)
    anchors = found.pop(AUDIT_ANCHOR_TOPIC, [])
    return found, anchors


async def publish_anchor(settings: KafkaSettings, token: bytes) -> int:
    """Append a root-signed anchor to the anchors' topic (created if missing, kept for
    ever, one partition); its offset once Kafka acknowledged it."""
    await ensure_topics(settings, [AUDIT_ANCHOR_TOPIC], partitions=1, retained=True)
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
    with map_kafka_errors("writing the audit anchor"):
        await producer.start()
        try:
            meta = await producer.send_and_wait(AUDIT_ANCHOR_TOPIC, key=_ANCHOR_KEY, value=token)
        finally:
            await producer.stop()
    return int(meta.offset)
