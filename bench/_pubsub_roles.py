"""The four processes of ``bench.pubsub``: fusionbus and raw aiokafka, publisher and consumer.

Each runs :func:`child_main` in its own OS process (``multiprocessing``, spawn) and works
through the same list of :class:`Stage` s. A publisher waits for the parent's go before each
stage, sends the stage's records and reports when the last was acknowledged; a consumer
counts what it handles and reports each stage once all of its records arrived. Stages never
overlap: the parent starts the next one only when both sides finished the current one.
Times are ``time.monotonic()`` (one system-wide clock on Linux, so comparable between the
processes); latencies are wall-clock handler time minus the report's ``created_at``.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.federation import Federation
from broker.logs import configure_logging
from consumers import Delivery, Subscriber
from fusionbus.cli._common import recipient_policy
from producers import Publisher
from schemas import Report, example_report

__all__ = ["JURISDICTION", "RoleConfig", "Stage", "child_main", "template_report"]

JURISDICTION = "PKKHI"
CATEGORY = "narcotics"

Event = tuple[str, str, int, dict[str, Any]]
"""(process name, kind, stage index, figures); kinds: ready, pub, sub, end, error."""


@dataclass(frozen=True)
class Stage:
    """``count`` records, as fast as possible (``rate`` None) or paced at ``rate`` per second."""

    count: int
    rate: float | None = None


@dataclass(frozen=True)
class RoleConfig:
    name: str
    role: Literal["fusionbus-pub", "fusionbus-sub", "raw-pub", "raw-sub"]
    bootstrap: str
    stages: tuple[Stage, ...]
    batch: int
    home: str = ""
    topic: str = ""
    group_id: str = ""
    payload_bytes: int = 0
    since: datetime | None = None


def template_report() -> Report:
    """The report every benchmark message is a copy of (with its own id and time)."""
    return example_report(CATEGORY, JURISDICTION)


def _copy(template: Report, created_at: datetime) -> Report:
    # model_copy does not validate: the subscriber's Report.model_validate_json checks
    # every copy, and the parent fails the run if any was quarantined.
    return template.model_copy(update={"message_id": uuid.uuid4(), "created_at": created_at})


def _batches(count: int, size: int) -> list[int]:
    return [min(size, count - start) for start in range(0, count, size)]


class _Tracker:
    """Counts handled records per stage and reports each completed stage to the parent."""

    def __init__(
        self, config: RoleConfig, events: Queue[Event], progress: Synchronized[int]
    ) -> None:
        self._config = config
        self._events = events
        self._progress = progress
        self._stage = 0
        self._count = 0
        self._first = self._first_cpu = 0.0
        self._latencies: list[float] = []
        self.total = sum(stage.count for stage in config.stages)

    def handled(self, created_at: datetime | None) -> None:
        wall, now = time.time(), time.monotonic()
        stage = self._config.stages[self._stage]
        if self._count == 0:
            self._first, self._first_cpu = now, time.process_time()
        self._count += 1
        self._progress.value = self._count
        if stage.rate is not None and created_at is not None:
            self._latencies.append((wall - created_at.timestamp()) * 1000)
        if self._count == stage.count:
            figures: dict[str, Any] = {
                "first": self._first,
                "last": now,
                "count": self._count,
                "cpu": time.process_time() - self._first_cpu,
            }
            if stage.rate is not None:
                figures["latencies_ms"] = self._latencies
            self._events.put((self._config.name, "sub", self._stage, figures))
            self._stage, self._count, self._latencies = self._stage + 1, 0, []


async def _wait_go(commands: Queue[int], expected: int) -> None:
    index = await asyncio.to_thread(commands.get)
    if index != expected:
        raise RuntimeError(f"expected the go for stage {expected}, got {index}")


async def _fusionbus_pub(config: RoleConfig, commands: Queue[int], events: Queue[Event]) -> None:
    federation = Federation.load(Path(config.home))
    policy = recipient_policy(federation)
    settings = KafkaSettings(bootstrap=config.bootstrap)
    template = template_report()
    Report.model_validate_json(_copy(template, datetime.now(UTC)).model_dump_json())
    async with Publisher(
        federation.identity("customs"), federation.trust_store(), policy, settings
    ) as publisher:
        for index, stage in enumerate(config.stages):
            await _wait_go(commands, index)
            if stage.rate is None:
                figures = await _burst_fusionbus(publisher, template, stage.count, config.batch)
            else:
                figures = await _paced_fusionbus(publisher, template, stage.count, stage.rate)
            events.put((config.name, "pub", index, figures))


async def _burst_fusionbus(
    publisher: Publisher, template: Report, count: int, batch: int
) -> dict[str, Any]:
    now = datetime.now(UTC)
    reports = [_copy(template, now) for _ in range(count)]
    errors, start = 0, 0
    first, cpu = time.monotonic(), time.process_time()
    for size in _batches(count, batch):
        results = await publisher.publish_many(reports[start : start + size])
        errors += sum(isinstance(result, Exception) for result in results)
        start += size
    return {
        "first": first,
        "last": time.monotonic(),
        "count": count,
        "errors": errors,
        "cpu": time.process_time() - cpu,
    }


async def _paced_fusionbus(
    publisher: Publisher, template: Report, count: int, rate: float
) -> dict[str, Any]:
    """publish() one report per tick of the schedule, without waiting for earlier acks."""
    sends: list[asyncio.Task[object]] = []
    first = time.monotonic()
    behind = 0.0
    for k in range(count):
        delay = first + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind = max(behind, -delay)
        report = _copy(template, datetime.now(UTC))
        sends.append(asyncio.create_task(publisher.publish(report)))
    outcomes = await asyncio.gather(*sends, return_exceptions=True)
    return {
        "first": first,
        "last": time.monotonic(),
        "count": count,
        "errors": sum(isinstance(outcome, BaseException) for outcome in outcomes),
        "behind_max_ms": behind * 1000,
    }


async def _fusionbus_sub(
    config: RoleConfig, events: Queue[Event], progress: Synchronized[int]
) -> None:
    federation = Federation.load(Path(config.home))
    subscriber = Subscriber(
        federation.identity("anf"),
        federation.trust_store(),
        KafkaSettings(bootstrap=config.bootstrap),
        categories=[CATEGORY],
        jurisdictions=["PK"],
        group_id=config.group_id,
        since=config.since,
        metadata_refresh_ms=1_000,
    )
    tracker = _Tracker(config, events, progress)

    async def handler(delivery: Delivery) -> None:
        tracker.handled(delivery.report.created_at)

    await subscriber.run(handler, limit=tracker.total)
    figures = {"quarantined": subscriber.quarantined, "skipped": subscriber.skipped}
    events.put((config.name, "end", -1, figures))


async def _raw_pub(config: RoleConfig, commands: Queue[int], events: Queue[Event]) -> None:
    producer = AIOKafkaProducer(
        **aiokafka_kwargs(KafkaSettings(bootstrap=config.bootstrap), "producer")
    )
    payload = os.urandom(config.payload_bytes)
    await producer.start()
    try:
        for index, stage in enumerate(config.stages):
            await _wait_go(commands, index)
            errors, first, cpu = 0, time.monotonic(), time.process_time()
            for size in _batches(stage.count, config.batch):
                futures = [
                    await producer.send(config.topic, value=payload, key=str(uuid.uuid4()).encode())
                    for _ in range(size)
                ]
                outcomes = await asyncio.gather(*futures, return_exceptions=True)
                errors += sum(isinstance(outcome, BaseException) for outcome in outcomes)
            figures = {
                "first": first,
                "last": time.monotonic(),
                "count": stage.count,
                "errors": errors,
                "cpu": time.process_time() - cpu,
            }
            events.put((config.name, "pub", index, figures))
    finally:
        await producer.stop()


async def _raw_sub(config: RoleConfig, events: Queue[Event], progress: Synchronized[int]) -> None:
    """What the Subscriber does minus fusionbus: getmany, one call per record, commit."""
    consumer = AIOKafkaConsumer(
        config.topic,
        group_id=config.group_id,
        **aiokafka_kwargs(KafkaSettings(bootstrap=config.bootstrap), "consumer"),
    )
    tracker = _Tracker(config, events, progress)
    handled = 0
    await consumer.start()
    try:
        while handled < tracker.total:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            done: dict[TopicPartition, int] = {}
            for tp, records in batch.items():
                for record in records:
                    tracker.handled(None)
                    handled += 1
                    done[tp] = record.offset + 1
            if done:
                await consumer.commit(done)
    finally:
        await consumer.stop()
    events.put((config.name, "end", -1, {}))


def child_main(
    config: RoleConfig,
    commands: Queue[int],
    events: Queue[Event],
    progress: Synchronized[int],
) -> None:
    """The body of one benchmark process; failures go to the parent as an ``error`` event."""
    configure_logging("WARNING")
    try:
        if config.role == "fusionbus-pub":
            asyncio.run(_fusionbus_pub(config, commands, events))
        elif config.role == "fusionbus-sub":
            asyncio.run(_fusionbus_sub(config, events, progress))
        elif config.role == "raw-pub":
            asyncio.run(_raw_pub(config, commands, events))
        else:
            asyncio.run(_raw_sub(config, events, progress))
    except KeyboardInterrupt:
        return
    except BaseException:
        events.put((config.name, "error", -1, {"traceback": traceback.format_exc()}))
        raise
