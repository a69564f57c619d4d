"""The Kafka producer a sending class holds: started and stopped with it, or used as an
``async with`` block. Shared by :class:`producers.Publisher` and
:class:`producers.FeedbackSender`."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import ConfigError
from broker.transport import map_kafka_errors, start_client

__all__ = ["ProducerClient"]


class ProducerClient:
    """Holds one ``AIOKafkaProducer`` with fusionbus's settings (``acks=all``, idempotent)."""

    _role = "the publisher"
    """How errors name the client: "connecting {role}", "flushing {role}"."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._connect()

    async def _connect(self) -> None:
        """Create and start the Kafka producer (raises, holding none, when it cannot)."""
        producer = AIOKafkaProducer(**aiokafka_kwargs(self._settings, "producer"))
        try:
            await start_client(producer, self._settings, f"connecting {self._role}")
        except BaseException:
            await producer.stop()  # a failed start must not leave a producer behind
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            with map_kafka_errors(f"flushing {self._role}"):
                await producer.stop()

    async def _renew(self, broken: AIOKafkaProducer) -> None:
        """Replace ``broken`` (if it is still the current producer) by a new one: an idempotent
        producer can stay stuck after a broker fault until it is recreated (aiokafka#1017).
        The old one is stopped without waiting on what it still holds; raises when the new one
        cannot connect, and then holds none."""
        current = self._producer
        if current is not broken:
            return  # another task renewed it already
        self._producer = None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(current.stop(), timeout=5)
        await self._connect()

    def _require_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            name = type(self).__name__
            raise ConfigError(f"{self._role} is not started; use `async with {name}(...)`")
        return self._producer
