"""Small aiokafka helpers shared by the integration tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.config import KafkaSettings, aiokafka_kwargs


async def create_topic(
    bootstrap: str, name: str, *, partitions: int, replication: int, min_isr: int = 1
) -> None:
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(KafkaSettings(bootstrap=bootstrap), "admin"))
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name,
                    num_partitions=partitions,
                    replication_factor=replication,
                    topic_configs={"min.insync.replicas": str(min_isr)},
                )
            ]
        )
    finally:
        await admin.close()


async def consume_all(
    bootstrap: str, topic: str, expected: int, *, deadline_s: float = 120.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``expected`` records arrived (or time is up)."""
    consumer = AIOKafkaConsumer(
        topic, **aiokafka_kwargs(KafkaSettings(bootstrap=bootstrap), "consumer")
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for part in batch.values():
                records.extend(part)
        # Linger briefly: anything beyond `expected` would be a duplicate.
        extra = await consumer.getmany(timeout_ms=500)
        for part in extra.values():
            records.extend(part)
    finally:
        await consumer.stop()
    return records


def by_partition(records: Sequence[ConsumerRecord[bytes, bytes]]) -> dict[int, list[int]]:
    """Decoded integer values per partition, in the order they were consumed."""
    out: dict[int, list[int]] = {}
    for record in records:
        assert record.value is not None
        out.setdefault(record.partition, []).append(int(record.value))
    return out


async def gather_results(futures: Sequence[asyncio.Future[object]]) -> list[object]:
    return list(await asyncio.gather(*futures, return_exceptions=True))
