"""Consumer faults on the real Kafka: a subscriber process killed with SIGKILL mid-batch and
restarted, again and again; a handler slow enough to outlast ``max_poll_interval_ms``.

The kill tests run the subscriber in a subprocess (:mod:`tests.integration.sink_worker`),
watch its application table grow, kill it at a random moment after it grew, restart it, and
finally let a last one run to the end of the topic. The table is then checked with the
fault-test :class:`~tests.integration.history.History`: through the exactly-once sink every
acknowledged report is there exactly once and in order within its thread; through a plain
handler nothing is lost and at most one report per kill is there twice (the documented
bound, ``docs/reliability.md``). ``FUSIONBUS_LONG=1`` publishes 10,000 reports instead of
2,000 and kills the plain handler 20 times instead of 8.

The backpressure test gives a subscriber ``max_poll_interval_ms`` of 6 s and a handler that
takes 1 s per report, with 2,000 reports waiting: the member must stay in its group (one
member id, sampled from the broker throughout), offsets must be committed again and again,
no report handed over twice, and the records the subscriber holds must stay few.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.federation import DisseminationPolicy
from broker.kafka import ClusterState
from consumers import Delivery, Subscriber
from producers import Published, Publisher
from schemas import Report, example_report
from tests.integration.history import History
from tests.integration.sink_worker import World, world

LONG = os.environ.get("FUSIONBUS_LONG") == "1"
REPORTS = 10_000 if LONG else 2_000
THREADS = 20
SINK_KILLS = 20
PLAIN_KILLS = 20 if LONG else 8
_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Fixed(DisseminationPolicy):
    """A policy naming the same recipients for every report."""

    kids: Sequence[str] = ()

    def recipients(self, report: Report, now: datetime) -> list[str]:
        return list(self.kids)


def _numbered(w: World, count: int, threads: int) -> list[tuple[Report, int]]:
    """``count`` reports numbered in their titles; report ``i`` is in thread ``i % threads``
    and follows up the thread's first report (so the publisher keys them alike and Kafka
    keeps their order)."""
    base = example_report(w.category, w.jurisdiction).model_dump()
    sender = w.sender.agency
    heads: list[uuid.UUID] = []
    out: list[tuple[Report, int]] = []
    for i in range(count):
        thread = i % threads
        fields: dict[str, Any] = {**base, "message_id": uuid.uuid4(), "sender": sender}
        fields["title"] = f"Numbered report {i}"
        if i < threads:
            heads.append(fields["message_id"])
        else:
            fields["relations"] = {"follows_up": [heads[thread]]}
        out.append((Report.model_validate(fields), thread))
    return out


async def _publish(w: World, settings: KafkaSettings, count: int, history: History) -> None:
    reports = _numbered(w, count, THREADS)
    policy = Fixed(w.directory, [w.recipient.encryption_kid])
    async with Publisher(w.sender, w.directory, policy, settings) as publisher:
        for report, thread in reports:
            history.sent(report.message_id, thread=thread)
        results = await publisher.publish_many([r for r, _ in reports])
    for (report, _), result in zip(reports, results, strict=True):
        if isinstance(result, Published):  # Kafka acknowledged it
            history.acked(report.message_id)


@dataclass
class Run:
    """One kill test: the worker processes, the table they write, what was seen of it."""

    world: World
    seed: str
    bootstrap: str
    db: Path
    mode: str
    log: Path
    history: History
    seen_rows: int = 0
    rows: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    def start(self, *, exit_at_end: bool = False) -> None:
        argv = [
            sys.executable, "-m", "tests.integration.sink_worker", "--bootstrap",
            self.bootstrap, "--seed", self.seed, "--category", self.world.category,
            "--jurisdiction", self.world.jurisdiction, "--db", str(self.db), "--group",
            f"fusionbus.anf-{self.seed}.{self.mode}", "--mode", self.mode, "--work-ms", "2",
        ]  # fmt: skip
        if exit_at_end:
            argv.append("--exit-at-end")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(argv, cwd=_ROOT, stdout=log, stderr=log)

    def poll(self) -> int:
        """Read rows committed since the last poll into the history; the new count."""
        if not self.db.exists():
            return 0
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            new = db.execute(
                "SELECT report_id FROM received WHERE rowid > ? ORDER BY rowid", (self.seen_rows,)
            ).fetchall()
        except sqlite3.OperationalError:  # the worker has not created the table yet
            return 0
        finally:
            db.close()
        for (report_id,) in new:
            self.history.delivered(report_id, reader=self.mode)
            self.rows.append(report_id)
        self.seen_rows += len(new)
        return len(new)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_for_growth(self, deadline_s: float = 90.0) -> None:
        start = len(self.rows)
        deadline = time.monotonic() + deadline_s
        while len(self.rows) == start:
            assert self.alive(), f"the worker died on its own:\n{self.tail()}"
            assert time.monotonic() < deadline, f"the table did not grow:\n{self.tail()}"
            time.sleep(0.01)
            self.poll()

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.history.mark("kill")
        self.poll()  # what the killed process committed before it died

    def finish(self, deadline_s: float = 180.0) -> None:
        """Wait for the last worker to reach the end of the topic, reading rows meanwhile."""
        assert self.process is not None
        deadline = time.monotonic() + deadline_s
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"the last worker did not reach the end of the topic:\n{self.tail()}")
            time.sleep(0.01)
            self.poll()
        assert code == 0, f"the last worker failed ({code}):\n{self.tail()}"
        self.poll()


def _kill_run(
    kafka: ClusterState, tmp_path: Path, mode: str, kills: int, area: tuple[str, str]
) -> Run:
    seed = uuid.uuid4().hex[:8]
    w = world(seed, *area)
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    history = History()
    asyncio.run(_publish(w, settings, REPORTS, history))
    db, log = tmp_path / "app.sqlite", tmp_path / "worker.log"
    run = Run(w, seed, kafka.bootstrap, db, mode, log, history)
    rng = random.Random(seed)
    run.start()
    for n in range(kills):
        run.wait_for_growth()
        moment = time.monotonic() + rng.uniform(0.0, 0.3)  # a random moment mid-batch
        while time.monotonic() < moment:
            time.sleep(0.005)
            run.poll()
        assert len(set(run.rows)) < REPORTS, "the worker finished before it was killed"
        run.kill()
        run.start(exit_at_end=n == kills - 1)  # the last one runs to the end of the topic
        history.mark("restarted")
    run.finish()
    return run


def _resume_times(history: History) -> list[float]:
    """Per kill: from the kill to the first row a restarted worker committed."""
    return [
        at - kill
        for kill, restarted in zip(history.marks("kill"), history.marks("restarted"), strict=True)
        if (at := history.first_after("delivered", restarted)) is not None
    ]


def _figures(run: Run, kills: int, duplicates: int) -> str:
    resume = _resume_times(run.history)
    return (
        f"{run.mode}: reports {REPORTS}, kills {kills}, rows {len(run.rows)}, "
        f"duplicates {duplicates}, resume after a kill: median "
        f"{statistics.median(resume):.2f} s, max {max(resume):.2f} s (n={len(resume)}; "
        f"each: {' '.join(f'{t:.1f}' for t in resume)})"
    )


@pytest.mark.timeout(900 if LONG else 300)
def test_the_sink_holds_every_report_exactly_once_across_kill_9(
    kafka: ClusterState, tmp_path: Path
) -> None:
    run = _kill_run(kafka, tmp_path, "sink", SINK_KILLS, ("counterfeit_goods", "PK-KP"))
    verdict = run.history.check(readers=["sink"])
    duplicates = len(run.rows) - len(set(run.rows))
    print(verdict.explain())
    print(_figures(run, SINK_KILLS, duplicates))
    assert len(run.history.marks("kill")) == SINK_KILLS
    assert verdict.acked == REPORTS
    assert verdict.ok, verdict.explain()
    assert duplicates == 0


@pytest.mark.timeout(900 if LONG else 300)
def test_a_plain_handler_repeats_at_most_one_report_per_kill(
    kafka: ClusterState, tmp_path: Path
) -> None:
    run = _kill_run(kafka, tmp_path, "plain", PLAIN_KILLS, ("counterfeit_goods", "PK-BA"))
    verdict = run.history.check(readers=["plain"])
    duplicates = len(run.rows) - len(set(run.rows))
    print(verdict.explain())
    print(_figures(run, PLAIN_KILLS, duplicates))
    assert verdict.acked == REPORTS
    assert not verdict.lost["plain"], verdict.explain()
    assert not verdict.out_of_order["plain"], verdict.explain()
    assert not verdict.unknown["plain"], verdict.explain()
    assert duplicates <= PLAIN_KILLS, f"{duplicates} rows twice after {PLAIN_KILLS} kills"
    assert all(run.rows.count(r) <= 2 for r in verdict.duplicates["plain"])


SLOW_HANDLED = 60 if LONG else 15
"""Reports a 1 s handler takes in the backpressure test (each costs a second)."""


@dataclass(frozen=True, slots=True)
class GroupState:
    state: str
    members: tuple[str, ...]
    committed: int
    """The sum of the group's committed offsets (0 before the first commit)."""


async def _group_state(admin: AIOKafkaAdminClient, group: str) -> GroupState | None:
    """The group as its coordinator sees it; ``None`` while there is no coordinator yet (a
    fresh cluster creates its offsets topic on the first group's demand)."""
    try:
        [response] = await admin.describe_consumer_groups([group])
        offsets = await admin.list_consumer_group_offsets(group)
    except GroupCoordinatorNotAvailableError:
        return None
    [described] = response.groups  # (error, group, state, protocol_type, protocol, members)
    return GroupState(
        described[2],
        tuple(sorted(member[0] for member in described[5])),
        sum(max(0, meta.offset) for meta in offsets.values()),
    )


@pytest.mark.asyncio
@pytest.mark.timeout(600 if LONG else 240)
async def test_a_slow_handler_stays_in_its_group_commits_steadily_and_holds_few_records(
    kafka: ClusterState,
) -> None:
    w = world(uuid.uuid4().hex[:8], "wildlife", "PK-KP")
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    history = History()
    await _publish(w, settings, REPORTS, history)
    group = f"fusionbus.{w.recipient.agency}.slow"
    subscriber = Subscriber(
        w.recipient, w.directory, settings, categories=[w.category], jurisdictions=[w.jurisdiction],
        group_id=group, max_poll_interval_ms=6_000,
    )  # fmt: skip
    held: list[int] = []
    fetched: list[int] = []

    async def slow(delivery: Delivery) -> None:
        held.append(subscriber.in_flight)
        consumer = subscriber._consumer  # white-box: how many fetch results aiokafka buffers
        fetched.append(len(consumer._fetcher._records) if consumer is not None else 0)
        await asyncio.sleep(1.0)
        history.delivered(delivery.report.message_id, reader="slow")

    samples: list[GroupState] = []
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings, "admin"))
    await admin.start()
    task = asyncio.create_task(subscriber.run(slow))
    try:
        async with asyncio.timeout(180 if not LONG else 480):
            while subscriber.handed_over < SLOW_HANDLED:
                assert not task.done(), task.exception()
                if (state := await _group_state(admin, group)) is not None:
                    samples.append(state)
                await asyncio.sleep(0.5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await admin.close()

    verdict = history.check(readers=["slow"])
    joined = [s for s in samples if s.members]
    since_joined = samples[samples.index(joined[0]) :] if joined else []
    member_ids = {m for s in samples for m in s.members}
    commits = len({s.committed for s in samples if s.committed})
    after_first_cut = held[5:]
    print(
        f"slow handler: {subscriber.handed_over} handed over of {REPORTS} waiting, "
        f"{len(samples)} group samples, states {sorted({s.state for s in samples})}, "
        f"member ids {len(member_ids)}, distinct committed totals {commits} "
        f"(last {samples[-1].committed if samples else 0}), records held per hand-over: "
        f"max {max(held)}, after the first batch max {max(after_first_cut, default=0)}; "
        f"fetch results buffered by aiokafka: max {max(fetched)}"
    )
    assert since_joined, "the subscriber never joined its group"
    assert all(len(s.members) == 1 for s in since_joined), "the member left its group"
    assert len(member_ids) == 1, f"the member rejoined under new ids: {sorted(member_ids)}"
    assert commits >= 3, "offsets were not committed while the slow handler ran"
    assert not verdict.duplicates["slow"], verdict.explain()
    assert not verdict.out_of_order["slow"], verdict.explain()
    assert max(held) <= 500  # never the whole backlog
    assert max(after_first_cut) <= 4  # once paced: what fits in one budget (3 s at 1 s each)
    assert max(fetched) <= 3  # aiokafka keeps at most one fetch result per partition


def _documented_sink() -> dict[str, Any]:
    """The sink example of ``docs/reliability.md``, executed as written."""
    doc = (_ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```python\n(.*?)```", doc, re.DOTALL)
    namespace: dict[str, Any] = {"__name__": "reliability_doc"}
    exec(compile(block, "docs/reliability.md", "exec"), namespace)  # noqa: S102 - our own doc
    return namespace


@pytest.mark.asyncio
async def test_the_documented_sink_writes_each_report_once(
    kafka: ClusterState, tmp_path: Path
) -> None:
    w = world(uuid.uuid4().hex[:8], "wildlife", "PK-BA")
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    history = History()
    doc = _documented_sink()
    path = tmp_path / "cases.sqlite"
    expected = 0
    for count in (40, 10):  # then a restart, with more reports waiting
        await _publish(w, settings, count, history)
        expected += count
        task = asyncio.create_task(
            doc["run_cases"](
                w.recipient, w.directory, settings, path,
                category=w.category, jurisdiction=w.jurisdiction,
            )
        )  # fmt: skip
        try:
            async with asyncio.timeout(60):
                while _count(path, "cases") < expected:
                    assert not task.done(), task.exception()
                    await asyncio.sleep(0.05)
            await asyncio.sleep(1.0)  # anything more would be a duplicate
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    db = sqlite3.connect(path)
    try:
        for report_id, sender in db.execute("SELECT report_id, sender FROM cases"):
            assert sender == w.sender.agency
            history.delivered(report_id, reader="cases")
    finally:
        db.close()
    verdict = history.check(readers=["cases"])
    print(verdict.explain())
    assert verdict.ok, verdict.explain()


def _count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        db.close()
