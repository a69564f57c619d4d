"""Kept aside for inspection: what an agency's consumers rejected, and why.

A quarantine record keeps the original envelope bytes untouched (so it can be examined or
re-verified later) and says in its headers why it was rejected and where it came from. The
detail is the verifier's sentence, which names fields and key ids but never report
plaintext. The record is acknowledged by Kafka (``acks=all``) before the source offset is
committed: nothing rejected is lost.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer, ConsumerRecord

from broker.admin import ensure_topics
from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import ConfigError
from broker.topics import quarantine_topic
from broker.transport import map_kafka_errors

__all__ = ["QUARANTINE_HEADERS", "Quarantine"]

QUARANTINE_HEADERS = (
    "fb-reason",
    "fb-detail",
    "fb-source-topic",
    "fb-source-partition",
    "fb-source-offset",
)
_MAX_DETAIL = 500


class Quarantine:
    """Writes rejected records to ``fusionbus.quarantine.<agency>``."""

    def __init__(self, agency: str, settings: KafkaSettings) -> None:
        self.topic = quarantine_topic(agency)
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await ensure_topics(self._settings, [self.topic], partitions=1)
        producer = AIOKafkaProducer(**aiokafka_kwargs(self._settings, "producer"))
        with map_kafka_errors("connecting the quarantine producer"):
            await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def put(self, record: ConsumerRecord[bytes, bytes], reason: str, detail: str) -> None:
        """Store ``record`` with ``reason``; returns once Kafka acknowledged it."""
        if self._producer is None:
            raise ConfigError("the quarantine is not started")
        headers = [
            ("fb-reason", reason.encode()),
            ("fb-detail", detail[:_MAX_DETAIL].encode("utf-8", "replace")),
            ("fb-source-topic", record.topic.encode()),
            ("fb-source-partition", str(record.partition).encode()),
            ("fb-source-offset", str(record.offset).encode()),
        ]
        with map_kafka_errors("quarantining a rejected record"):
            await self._producer.send_and_wait(
                self.topic, value=record.value, key=record.key, headers=headers
            )
