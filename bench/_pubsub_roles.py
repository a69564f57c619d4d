"""The four processes of ``bench.pubsub``: fusionbus and raw aiokafka, publisher and consumer.

Each runs :func:`child_main` in its own OS process (``multiprocessing``, spawn) and works
through the same list of :class:`Stage` s. A publisher waits for the parent's go before each
stage, sends the stage's records and reports when the last was acknowledged; a consumer
counts what it handles and reports each stage once all of its records arrived. Stages never
overlap: the parent starts the next one only when both sides finished the current one.
Times are ``time.monotonic()`` (one system-wide clock on Linux, so comparable between the
processes); latencies are wall-clock handler time minus the record's send time: the report's
``created_at`` (fusionbus) or the first 8 bytes of the value (raw), stamped per batch in a
burst and per record when paced.
"""

from __future__ import annotations

import asyncio
import os
import resource
import struct
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
from broker.federation import DisseminationPolicy, Federation
from broker.logs import configure_logging
from consumers import Delivery, Subscriber
from producers import Publisher
from schemas import Report, example_report

__all__ = [
    "JURISDICTION",
    "RoleConfig",
    "Stage",
    "child_main",
    "sized_report",
    "template_report",
]

JURISDICTION = "PKKHI"
CATEGORY = "narcotics"
_STAMP = struct.Struct("<d")  # a raw record's first bytes: its wall-clock send time

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
    jurisdiction: str = JURISDICTION
    report_bytes: int = 0
    envelope_version: int = 2


def template_report(jurisdiction: str = JURISDICTION, report_bytes: int = 0) -> Report:
    """The report every benchmark message is a copy of (with its own id and time)."""
    report = example_report(CATEGORY, jurisdiction)
    return sized_report(report, report_bytes) if report_bytes else report


def sized_report(report: Report, size: int) -> Report:
    """``report`` without subjects, its narrative cut or repeated so its JSON is ``size`` bytes
    (give or take the few bytes a timestamp's digits vary by). Validated like any report."""
    lean = report.model_copy(update={"subjects": ()})
    base = len(lean.model_dump_json()) - len(lean.narrative)
    want = size - base
    if want < 1:
        raise ValueError(f"a report needs at least {base + 1} bytes, not {size}")
    text = (lean.narrative + " ") * (want // (len(lean.narrative) + 1) + 1)
    narrative = text[:want].rstrip() or "x"
    narrative += "." * (want - len(narrative))
    return Report.model_validate_json(
        lean.model_copy(update={"narrative": narrative}).model_dump_json()
    )


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
        self._first = 0.0
        # CPU is counted from the end of the previous stage, so fetching and decoding the
        # first batch of a stage (before its first record is handled) is included.
        self._first_cpu = time.process_time()
        self._latencies: list[float] = []
        self.total = sum(stage.count for stage in config.stages)

    def handled(self, sent_at: float) -> None:
        """One record handled; ``sent_at`` is its wall-clock send (or creation) time."""
        wall, now = time.time(), time.monotonic()
        stage = self._config.stages[self._stage]
        if self._count == 0:
            self._first = now
        self._count += 1
        self._progress.value += 1
        self._latencies.append((wall - sent_at) * 1000)
        if self._count == stage.count:
            figures: dict[str, Any] = {
                "first": self._first,
                "last": now,
                "count": self._count,
                "cpu": time.process_time() - self._first_cpu,
                "latencies_ms": self._latencies,
            }
            self._events.put((self._config.name, "sub", self._stage, figures))
            self._first_cpu = time.process_time()
            self._stage, self._count, self._latencies = self._stage + 1, 0, []


async def _wait_go(commands: Queue[int], expected: int) -> None:
    index = await asyncio.to_thread(commands.get)
    if index != expected:
        raise RuntimeError(f"expected the go for stage {expected}, got {index}")


async def _fusionbus_pub(config: RoleConfig, commands: Queue[int], events: Queue[Event]) -> None:
    federation = Federation.load(Path(config.home))
    directory = federation.snapshot
    settings = KafkaSettings(bootstrap=config.bootstrap)
    template = template_report(config.jurisdiction, config.report_bytes)
    async with Publisher(
        federation.identity("customs"), directory, DisseminationPolicy(directory), settings,
        envelope_version=config.envelope_version,
    ) as publisher:  # fmt: skip
        for index, stage in enumerate(config.stages):
            await _wait_go(commands, index)
            if stage.rate is None:
                figures = await _burst_fusionbus(publisher, template, stage.count, config.batch)
            else:
                figures = await _paced_fusionbus(publisher, template, stage.count, stage.rate)
            events.put((config.name, "pub", index, figures))
    events.put((config.name, "end", -1, _peak_rss()))


def _peak_rss() -> dict[str, Any]:
    """This process's peak resident set size (Linux reports ru_maxrss in KiB)."""
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


async def _burst_fusionbus(
    publisher: Publisher, template: Report, count: int, batch: int
) -> dict[str, Any]:
    errors = 0
    first, cpu = time.monotonic(), time.process_time()
    for size in _batches(count, batch):
        now = datetime.now(UTC)  # the batch's send time: latency at saturation
        results = await publisher.publish_many([_copy(template, now) for _ in range(size)])
        errors += sum(isinstance(result, Exception) for result in results)
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
        federation.snapshot,
        KafkaSettings(bootstrap=config.bootstrap),
        categories=[CATEGORY],
        jurisdictions=[config.jurisdiction],
        group_id=config.group_id,
        since=config.since,
        metadata_refresh_ms=1_000,
    )
    tracker = _Tracker(config, events, progress)

    async def handler(delivery: Delivery) -> None:
        tracker.handled(delivery.report.created_at.timestamp())

    await subscriber.run(handler, limit=tracker.total)
    figures = {
        "quarantined": subscriber.quarantined,
        "skipped": subscriber.skipped,
        **_peak_rss(),
    }
    events.put((config.name, "end", -1, figures))


async def _raw_pub(config: RoleConfig, commands: Queue[int], events: Queue[Event]) -> None:
    producer = AIOKafkaProducer(
        **aiokafka_kwargs(KafkaSettings(bootstrap=config.bootstrap), "producer")
    )
    body = os.urandom(max(0, config.payload_bytes - _STAMP.size))
    await producer.start()
    try:
        for index, stage in enumerate(config.stages):
            await _wait_go(commands, index)
            if stage.rate is None:
                figures = await _burst_raw(producer, config, stage.count, body)
            else:
                figures = await _paced_raw(producer, config, stage, body)
            events.put((config.name, "pub", index, figures))
    finally:
        await producer.stop()
    events.put((config.name, "end", -1, _peak_rss()))


async def _burst_raw(
    producer: AIOKafkaProducer, config: RoleConfig, count: int, body: bytes
) -> dict[str, Any]:
    errors, first, cpu = 0, time.monotonic(), time.process_time()
    for size in _batches(count, config.batch):
        payload = _STAMP.pack(time.time()) + body  # the batch's send time, as fusionbus
        futures = [
            await producer.send(config.topic, value=payload, key=str(uuid.uuid4()).encode())
            for _ in range(size)
        ]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        errors += sum(isinstance(outcome, BaseException) for outcome in outcomes)
    return {
        "first": first,
        "last": time.monotonic(),
        "count": count,
        "errors": errors,
        "cpu": time.process_time() - cpu,
    }


async def _paced_raw(
    producer: AIOKafkaProducer, config: RoleConfig, stage: Stage, body: bytes
) -> dict[str, Any]:
    """send() one record per tick of the schedule, without waiting for earlier acks."""
    rate = stage.rate or 1.0
    futures: list[asyncio.Future[object]] = []
    first = time.monotonic()
    behind = 0.0
    for k in range(stage.count):
        delay = first + k / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            behind = max(behind, -delay)
        payload = _STAMP.pack(time.time()) + body
        futures.append(
            await producer.send(config.topic, value=payload, key=str(uuid.uuid4()).encode())
        )
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    return {
        "first": first,
        "last": time.monotonic(),
        "count": stage.count,
        "errors": sum(isinstance(outcome, BaseException) for outcome in outcomes),
        "behind_max_ms": behind * 1000,
    }


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
                    tracker.handled(_STAMP.unpack_from(record.value or bytes(8))[0])
                    handled += 1
                    done[tp] = record.offset + 1
            if done:
                await consumer.commit(done)
    finally:
        await consumer.stop()
    events.put((config.name, "end", -1, _peak_rss()))


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
