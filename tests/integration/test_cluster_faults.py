"""The 3-node cluster keeps every acknowledged message when a partition leader dies."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.kafka import EmbeddedKafka
from tests.integration.kafka_helpers import consume_all, create_topic

TOTAL = 30_000
KILL_AFTER = 10_000
CHUNK = 1_000


async def _send_chunk(
    producer: AIOKafkaProducer, topic: str, numbers: list[int]
) -> tuple[list[int], list[int]]:
    """Send ``numbers``; return (acknowledged, failed)."""
    futures = []
    for n in numbers:
        futures.append(await producer.send(topic, key=str(n % 97).encode(), value=str(n).encode()))
    results = await asyncio.gather(*futures, return_exceptions=True)
    acked = [n for n, r in zip(numbers, results, strict=True) if not isinstance(r, BaseException)]
    failed = [n for n, r in zip(numbers, results, strict=True) if isinstance(r, BaseException)]
    return acked, failed


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_acknowledged_messages_survive_a_leader_kill(
    kafka_cluster: EmbeddedKafka, topic: str
) -> None:
    state = kafka_cluster.state()
    assert state is not None
    assert len(state.nodes) == 3
    await create_topic(state.bootstrap, topic, partitions=3, replication=3, min_isr=2)
    settings = KafkaSettings(bootstrap=state.bootstrap, request_timeout_ms=15_000)

    producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
    await producer.start()
    acked: set[int] = set()
    pending = list(range(TOTAL))
    killed: int | None = None
    recreated = 0
    deadline = time.monotonic() + 240
    try:
        while pending and time.monotonic() < deadline:
            chunk, pending = pending[:CHUNK], pending[CHUNK:]
            try:
                ok, failed = await _send_chunk(producer, topic, chunk)
            except KafkaError:
                ok, failed = [], chunk
            acked.update(ok)
            if failed:
                # aiokafka#1017: an idempotent producer can stay stuck after a broker blip;
                # recreate it and resend what was not acknowledged (duplicates are allowed).
                pending = failed + pending
                await producer.stop()
                await asyncio.sleep(1)
                producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
                await producer.start()
                recreated += 1
            if killed is None and len(acked) >= KILL_AFTER:
                leader = producer.client.cluster.leader_for_partition(TopicPartition(topic, 0))
                assert leader is not None
                kafka_cluster.kill_node(leader)
                killed = leader
    finally:
        await producer.stop()

    assert killed is not None, "the leader was never killed"
    assert not pending, f"{len(pending)} messages were never acknowledged within the deadline"
    records = await consume_all(state.bootstrap, topic, len(acked))
    seen = {int(r.value or b"-1") for r in records}
    lost = acked - seen
    assert not lost, f"{len(lost)} acknowledged messages were lost, e.g. {sorted(lost)[:10]}"
    print(
        f"\nfault: killed node {killed} after {KILL_AFTER} acks; {len(acked)} acknowledged, "
        f"{len(records)} read back ({len(records) - len(seen)} duplicates), "
        f"producer recreated {recreated}x, 0 lost"
    )
    await asyncio.to_thread(kafka_cluster.restart_node, killed)
    assert len(kafka_cluster.running_nodes()) == 3
