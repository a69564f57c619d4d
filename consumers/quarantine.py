"""Kept aside for inspection: what an agency's consumers rejected, and why.

A quarantine record keeps the original envelope bytes (so it can be examined or re-verified
later) and says in its headers why it was rejected and where it came from. The detail is the
verifier's sentence, which names fields and key ids but never report plaintext. The record
is acknowledged by Kafka (``acks=all``) before the source offset is committed: nothing
rejected is lost.

Every write fits: a copy that would not (a near-1-MiB value plus the headers is over the
producer's request limit) is stored truncated, with the SHA-256 and the size of the original
in ``fb-original-sha256`` and ``fb-original-size``, and ``fb-truncated: value`` (or ``key``).
"""

from __future__ import annotations

import asyncio
import hashlib

from aiokafka import AIOKafkaProducer

from broker.audit import Act, AuditWriter
from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import ConfigError
from broker.provisioning.topics import ensure_topics
from broker.topics import Header, quarantine_topic
from broker.transport import map_kafka_errors
from consumers.intake import Source

__all__ = ["MAX_COPY_BYTES", "Quarantine", "quarantine_record"]

_MAX_DETAIL = 500
MAX_COPY_BYTES = 900_000
"""The largest value kept whole: with the key and headers (each bounded below) a record stays
well under aiokafka's 1 MiB ``max_request_size`` and Kafka's default ``message.max.bytes``."""
_MAX_KEY_BYTES = 4_096


def quarantine_record(
    source: Source, key: bytes | None, value: bytes | None, reason: str, detail: str
) -> tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]:
    """(key, value, headers) of the quarantine copy: pure, and always small enough to send."""
    headers = [
        (Header.REASON, reason.encode()),
        (Header.DETAIL, detail[:_MAX_DETAIL].encode("utf-8", "replace")),
        (Header.SOURCE_TOPIC, source.topic.encode("utf-8", "replace")[:300]),
        (Header.SOURCE_PARTITION, str(source.partition).encode()),
        (Header.SOURCE_OFFSET, str(source.offset).encode()),
    ]
    truncated = []
    if value is not None and len(value) > MAX_COPY_BYTES:
        headers.append((Header.ORIGINAL_SHA256, hashlib.sha256(value).hexdigest().encode()))
        headers.append((Header.ORIGINAL_SIZE, str(len(value)).encode()))
        value = value[:MAX_COPY_BYTES]
        truncated.append("value")
    if key is not None and len(key) > _MAX_KEY_BYTES:
        headers.append((Header.ORIGINAL_KEY_SHA256, hashlib.sha256(key).hexdigest().encode()))
        key = key[:_MAX_KEY_BYTES]
        truncated.append("key")
    if truncated:
        headers.append((Header.TRUNCATED, ",".join(truncated).encode()))
    if key is None and value is None:  # nothing known (undecodable): Kafka needs one of them
        value = b""
    return key, value, headers


class Quarantine:
    """Writes rejected records to ``fusionbus.quarantine.<agency>``."""

    def __init__(
        self, agency: str, settings: KafkaSettings, *, audit: AuditWriter | None = None
    ) -> None:
        self.topic = quarantine_topic(agency)
        self._settings = settings
        self._audit = audit
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        await ensure_topics(self._settings, [self.topic], partitions=1)
        producer = AIOKafkaProducer(**aiokafka_kwargs(self._settings, "producer"))
        try:
            with map_kafka_errors("connecting the quarantine producer"):
                await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()

    async def put(
        self, source: Source, key: bytes | None, value: bytes | None, reason: str, detail: str
    ) -> None:
        """Store the record read at ``source`` with ``reason``; returns once Kafka acked it."""
        sent = await self.send(source, key, value, reason, detail)
        with map_kafka_errors("quarantining a rejected record"):
            await sent

    async def send(
        self, source: Source, key: bytes | None, value: bytes | None, reason: str, detail: str
    ) -> asyncio.Future[object]:
        """Queue the record read at ``source`` with ``reason``; the returned future
        completes once Kafka acknowledged it (so a batch of rejections costs one round trip,
        not one each)."""
        if self._producer is None:
            raise ConfigError("the quarantine is not started")
        if self._audit is not None:  # the digest of the original, as fb-original-sha256
            digest = hashlib.sha256(value or b"").hexdigest()
            self._audit.record(Act.QUARANTINE, digests={"envelope": digest}, code=reason)
        key, value, headers = quarantine_record(source, key, value, reason, detail)
        with map_kafka_errors("quarantining a rejected record"):
            sent: asyncio.Future[object] = await self._producer.send(
                self.topic, value=value, key=key, headers=headers
            )
        return sent
