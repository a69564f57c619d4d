"""Round trips through the real embedded Kafka: ours (aiokafka) and a standard client's."""

from __future__ import annotations

import time

import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka import Consumer, Producer

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.kafka import ClusterState
from tests.integration.kafka_helpers import by_partition, consume_all, create_topic

COUNT = 10_000


@pytest.mark.asyncio
async def test_ten_thousand_records_arrive_exactly_once_in_order(
    kafka: ClusterState, topic: str
) -> None:
    await create_topic(kafka.bootstrap, topic, partitions=3, replication=1)
    producer = AIOKafkaProducer(
        **aiokafka_kwargs(KafkaSettings(bootstrap=kafka.bootstrap), "producer")
    )
    assert producer._sender._acks == -1  # acks=all reached the client
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [
            await producer.send(topic, key=f"key-{i % 37}".encode(), value=str(i).encode())
            for i in range(COUNT)
        ]
        acked = [await f for f in futures]
    finally:
        await producer.stop()
    produced_s = time.perf_counter() - started

    # What the broker acknowledged, per partition, in offset order.
    sent: dict[int, list[int]] = {}
    for i, meta in sorted(enumerate(acked), key=lambda pair: (pair[1].partition, pair[1].offset)):
        sent.setdefault(meta.partition, []).append(i)

    records = await consume_all(kafka.bootstrap, topic, COUNT)
    total_s = time.perf_counter() - started
    received = by_partition(records)

    values = [int(r.value or b"-1") for r in records]
    assert len(values) == COUNT, f"expected {COUNT} records, got {len(values)}"
    assert sorted(values) == list(range(COUNT)), "a record is missing or duplicated"
    assert received == sent, "a partition's records came back in a different order"
    for part in received.values():  # one key maps to one partition: its values rise
        per_key: dict[int, int] = {}
        for value in part:
            assert per_key.get(value % 37, -1) < value
            per_key[value % 37] = value
    print(
        f"\nsmoke: produced {COUNT} in {produced_s:.2f} s ({COUNT / produced_s:,.0f}/s), "
        f"round trip {total_s:.2f} s ({COUNT / total_s:,.0f}/s)"
    )


def test_a_standard_client_produces_and_consumes(kafka: ClusterState, topic: str) -> None:
    """librdkafka (confluent-kafka), not our code, uses the embedded broker as any Kafka."""
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "acks": "all"})
    delivered: list[str] = []
    for i in range(100):
        producer.produce(
            topic,
            value=f"hello-{i}".encode(),
            on_delivery=lambda err, msg: delivered.append("ok" if err is None else str(err)),
        )
    assert producer.flush(30) == 0
    assert delivered == ["ok"] * 100

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap,
            "group.id": f"g-{topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while len(seen) < 100 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                seen.append((msg.value() or b"").decode())
    finally:
        consumer.close()
    assert sorted(seen) == sorted(f"hello-{i}" for i in range(100))
