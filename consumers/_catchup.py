"""Knowing when a consumer has caught up with what its topics held when it started."""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from broker.transport import map_kafka_errors

__all__ = ["CatchUp"]


class CatchUp:
    """Snapshots each assigned partition's end offset the first time it is assigned; caught
    up once every position reached its snapshot. With no matching topic at all, gives up
    after ``grace_s`` (there is nothing to catch up with)."""

    def __init__(self, *, grace_s: float = 10.0) -> None:
        self._ends: dict[TopicPartition, int] = {}
        self._started = time.monotonic()
        self._grace_s = grace_s

    async def done(self, consumer: AIOKafkaConsumer) -> bool:
        assigned = consumer.assignment()
        if not assigned:
            return time.monotonic() - self._started > self._grace_s
        new = [tp for tp in assigned if tp not in self._ends]
        with map_kafka_errors("reading end offsets"):
            if new:
                self._ends.update(await consumer.end_offsets(new))
            for tp in assigned:
                if await consumer.position(tp) < self._ends[tp]:
                    return False
        return True
