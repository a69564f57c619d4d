"""The Kafka producer a sending class holds: started and stopped with it, or used as an
``async with`` block. Shared by :class:`producers.Publisher` and
:class:`producers.FeedbackSender`."""

from __future__ import annotations

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

    def _require_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            name = type(self).__name__
            raise ConfigError(f"{self._role} is not started; use `async with {name}(...)`")
        return self._producer
