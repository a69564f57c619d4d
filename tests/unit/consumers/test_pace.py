"""The batch pace: a time budget per batch, the rest of a cut batch handed back to Kafka, and
the next request sized to what fits (pure, and under the subscriber over a fake consumer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.config import KafkaSettings
from broker.topics import report_topic
from consumers import Delivery, Subscriber
from consumers._pace import Pace
from tests.unit.consumers.test_intake import IDS, NOW, TRUST, _report, _sealed

TP = TopicPartition(report_topic("customs", "PKKHI", "narcotics"), 0)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_is_spent_once_its_time_has_passed() -> None:
    clock = Clock()
    pace = Pace(3.0, clock=clock)
    pace.begin()
    clock.now += 2.9
    assert not pace.spent()
    clock.now += 0.1
    assert pace.spent()


def test_a_cut_batch_shrinks_the_next_request_and_fast_full_batches_grow_it() -> None:
    clock = Clock()
    pace = Pace(3.0, most=500, clock=clock)
    assert pace.max_records == 500
    pace.begin()
    clock.now += 3.0
    pace.end(handled=3, fetched=500)
    assert pace.max_records == 3
    pace.begin()
    clock.now += 3.0  # a full batch that took the whole budget: stays
    pace.end(handled=3, fetched=3)
    assert pace.max_records == 3
    for expected in (6, 12, 24):  # full batches in under half the budget: doubles
        pace.begin()
        clock.now += 1.0
        pace.end(handled=pace.max_records, fetched=pace.max_records)
        assert pace.max_records == expected
    pace.begin()
    pace.end(handled=5, fetched=5)  # fewer records than asked for, none cut: stays
    assert pace.max_records == 24
    pace.begin()
    pace.end(handled=0, fetched=24)  # nothing handled (a limit reached): at least one
    assert pace.max_records == 1


def test_a_pace_needs_a_budget_and_a_record() -> None:
    with pytest.raises(ValueError, match="positive budget"):
        Pace(0.0)
    with pytest.raises(ValueError, match="at least one record"):
        Pace(1.0, most=0)


class _Raw:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.timestamp = TP.topic, TP.partition, offset, 0
        self.key: bytes | None = None
        self.value = value
        self.headers: list[tuple[str, bytes]] = []


class Partition:
    """One partition: each fetch returns up to ``max_records`` from the position, which a
    seek moves back; commits and seeks are recorded."""

    def __init__(self, values: list[bytes]) -> None:
        self.values = values
        self.position_ = 0
        self.seeks: list[int] = []
        self.commits: list[int] = []
        self.asked: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.values)

    async def position(self, tp: TopicPartition) -> int:
        return self.position_

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)
        self.position_ = offset

    async def getmany(self, *_: Any, max_records: int, **__: Any) -> dict[TopicPartition, Any]:
        if self.position_ >= len(self.values):
            await asyncio.Event().wait()
        self.asked.append(max_records)
        start, self.position_ = (
            self.position_, min(len(self.values), self.position_ + max_records),
        )  # fmt: skip
        return {TP: [_Raw(n, self.values[n]) for n in range(start, self.position_)]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])


@pytest.mark.asyncio
async def test_a_slow_handler_gets_short_batches_and_every_report_once() -> None:
    reports = [_report() for _ in range(8)]
    consumer = Partition([_sealed(r) for r in reports])
    clock = Clock()
    subscriber = Subscriber(
        IDS["anf"], TRUST, KafkaSettings(), categories=["narcotics"], jurisdictions=["PK"],
        group_id="fusionbus.anf.slow", clock=lambda: NOW, max_poll_interval_ms=5_000,
    )  # fmt: skip
    subscriber._pace = Pace(2.5, clock=clock)  # the budget of 5 s / 2, on a fake clock
    handed: list[Delivery] = []
    held: list[int] = []

    async def slow(delivery: Delivery) -> None:
        held.append(subscriber.in_flight)
        clock.now += 1.0  # a handler taking a second
        handed.append(delivery)

    task = asyncio.create_task(subscriber._loop(consumer, slow, None, False))
    async with asyncio.timeout(30):
        while len(consumer.commits) < 3 or consumer.commits[-1] < 8:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [d.report.message_id for d in handed] == [r.message_id for r in reports]
    assert consumer.asked == [500, 3, 3]  # the whole backlog first, then what fits
    assert consumer.seeks == [3]  # the five not handled in the first budget, given back
    assert consumer.commits == [3, 6, 8]
    assert held == [8, 7, 6, 3, 2, 1, 2, 1]
