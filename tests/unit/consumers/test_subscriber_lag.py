"""The subscriber's lag and its quarantine counts by reason, over a fake Kafka consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.config import KafkaSettings
from broker.errors import Reason
from broker.federation import DirectorySnapshot
from broker.keys import Identity
from consumers import Delivery, Source, Subscriber

pytestmark = pytest.mark.asyncio

TP = TopicPartition("fusionbus.reports.pk.narcotics", 0)


class FakeConsumer:
    """What the subscriber's loop asks of an aiokafka consumer: one partition, one batch of
    records, then nothing (a fetch that waits until cancelled)."""

    def __init__(self, values: list[bytes], highwater: int, start: int) -> None:
        self.values = values
        self.start = start
        self.known_highwater: int | None = None
        self._highwater = highwater
        self._fetched = False

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        assert tp == TP
        return self.known_highwater

    async def position(self, tp: TopicPartition) -> int:
        return self.start

    async def getmany(self, *_: Any, **__: Any) -> dict[TopicPartition, list[Any]]:
        if self._fetched:
            await asyncio.Event().wait()
        self._fetched = True
        self.known_highwater = self._highwater  # as a fetch answer sets it
        records = [_Raw(self.start + n, value) for n, value in enumerate(self.values)]
        return {TP: records}


class _Raw:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.timestamp = TP.topic, TP.partition, offset, 0
        self.key: bytes | None = None
        self.value = value
        self.headers: list[tuple[str, bytes]] = []


class FakeQuarantine:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def send(self, _s: Source, _k: object, _v: object, reason: str, _d: str) -> Any:
        self.reasons.append(reason)
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


async def test_lag_counts_what_is_not_processed_and_rejections_count_by_reason() -> None:
    seen: list[int | None] = []
    all_told = asyncio.Event()

    async def on_reject(_source: Source, _reason: str, _detail: str) -> None:
        seen.append(subscriber.lag())
        if len(seen) == 3:
            all_told.set()

    subscriber = Subscriber(
        Identity.generate("anf"), DirectorySnapshot(), KafkaSettings(),
        categories=["narcotics"], jurisdictions=["PK"], on_reject=on_reject,
    )  # fmt: skip
    quarantine = FakeQuarantine()
    subscriber._quarantine = quarantine  # type: ignore[assignment]
    consumer = FakeConsumer([b"not json", b"{}", b"\x00"], highwater=110, start=100)
    assert subscriber.lag() is None
    assert not subscriber.consuming
    subscriber._consumer = consumer

    async def handler(_: Delivery) -> None:
        raise AssertionError("nothing here is a report")

    task = asyncio.create_task(subscriber._loop(consumer, handler, None, False))
    async with asyncio.timeout(30):
        await all_told.wait()
    assert subscriber.consuming
    # 110 - 103 left behind the batch, plus the batch's records not done when each was told
    assert seen == [10, 9, 8]
    assert subscriber.lag() == 7
    assert subscriber.quarantined == 3
    assert subscriber.quarantined_by_reason == {Reason.MALFORMED: 3}
    assert set(subscriber.quarantined_by_reason) <= {str(r) for r in Reason}
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
