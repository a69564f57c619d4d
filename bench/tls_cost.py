"""What mutual TLS costs: produce and consume N 1 KB records against a plaintext and a secured
embedded Kafka in one run, and print the throughput of each and the ratio.

    python -m bench.tls_cost [--records 20000] [--size 1024]

Both clusters are 1 node on this machine, started side by side (the secured one with a
throw-away PKI), so the figures compare within one run; absolute numbers drift on shared
machines. The producer uses the platform's settings (acks=all, idempotence, linger 5 ms);
the consumer reads the topic from the beginning with getmany batches.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.kafka import EmbeddedKafka, ensure_distribution
from broker.logs import configure_logging
from broker.provisioning.pki import ClusterPki
from broker.provisioning.topics import ensure_topics


async def _produce(settings: KafkaSettings, topic: str, count: int, value: bytes) -> float:
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value) for _ in range(count)]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def _consume(settings: KafkaSettings, topic: str, count: int) -> float:
    consumer = AIOKafkaConsumer(topic, **aiokafka_kwargs(settings, "consumer"))
    await consumer.start()
    try:
        started = time.perf_counter()
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            seen += sum(len(records) for records in batch.values())
        return time.perf_counter() - started
    finally:
        await consumer.stop()


async def _measure(settings: KafkaSettings, count: int, size: int) -> tuple[float, float]:
    topic = f"bench.tls.{time.time_ns()}"
    await ensure_topics(settings, [topic])
    value = b"x" * size
    await _produce(settings, topic, min(1000, count), value)  # warm up connections and JIT
    produce_s = await _produce(settings, topic, count, value)
    consume_s = await _consume(settings, topic, count + min(1000, count))
    return count / produce_s, (count + min(1000, count)) / consume_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    configure_logging("ERROR")
    dist = ensure_distribution()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pki = ClusterPki(root / "home")
        plain = EmbeddedKafka(root / "plain", port=0, heap_mb=512)
        secure = EmbeddedKafka(root / "secure", port=0, heap_mb=512, secure=pki.cluster_tls(1))
        try:
            plain_state, secure_state = plain.start(dist), secure.start(dist)
            runs = {
                "plaintext": KafkaSettings(bootstrap=plain_state.bootstrap),
                "mTLS": secure.client_settings(secure_state),
            }
            results = {
                name: asyncio.run(_measure(settings, args.records, args.size))
                for name, settings in runs.items()
            }
        finally:
            plain.stop()
            secure.stop()
    print(f"{args.records} records of {args.size} B, 1 node, acks=all, idempotent producer")
    for name, (produced, consumed) in results.items():
        print(f"  {name:<10} produce {produced:>9,.0f} rec/s   consume {consumed:>9,.0f} rec/s")
    (p_plain, c_plain), (p_tls, c_tls) = results["plaintext"], results["mTLS"]
    print(f"  mTLS / plaintext: produce {p_tls / p_plain:.2f}x, consume {c_tls / c_plain:.2f}x")


if __name__ == "__main__":
    main()
