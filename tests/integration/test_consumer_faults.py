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
"""

from __future__ import annotations

import asyncio
import os
import random
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

from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy
from broker.kafka import ClusterState
from producers import Publisher
from schemas import Report, example_report
from tests.integration.history import History
from tests.integration.sink_worker import CATEGORY, JURISDICTION, World, world

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


def _numbered(sender: str, count: int, threads: int) -> list[tuple[Report, int]]:
    """``count`` reports numbered in their titles; report ``i`` is in thread ``i % threads``
    and follows up the thread's first report (so the publisher keys them alike and Kafka
    keeps their order)."""
    base = example_report(CATEGORY, JURISDICTION).model_dump()
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
    reports = _numbered(w.sender.agency, count, THREADS)
    policy = Fixed(w.directory, [w.recipient.encryption_kid])
    async with Publisher(w.sender, w.directory, policy, settings) as publisher:
        for report, thread in reports:
            history.sent(report.message_id, thread=thread)
        results = await publisher.publish_many([r for r, _ in reports])
    for (report, _), result in zip(reports, results, strict=True):
        if not isinstance(result, Exception):
            history.acked(report.message_id)


@dataclass
class Run:
    """One kill test: the worker processes, the table they write, what was seen of it."""

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
            self.bootstrap, "--seed", self.seed, "--db", str(self.db), "--group",
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
        assert self.process is not None
        try:
            code = self.process.wait(deadline_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"the last worker did not reach the end of the topic:\n{self.tail()}")
        assert code == 0, f"the last worker failed ({code}):\n{self.tail()}"
        self.poll()


def _kill_run(kafka: ClusterState, tmp_path: Path, mode: str, kills: int) -> Run:
    seed = uuid.uuid4().hex[:8]
    w = world(seed)
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    history = History()
    asyncio.run(_publish(w, settings, REPORTS, history))
    run = Run(seed, kafka.bootstrap, tmp_path / "app.sqlite", mode, tmp_path / "worker.log",
              history)  # fmt: skip
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
    run = _kill_run(kafka, tmp_path, "sink", SINK_KILLS)
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
    run = _kill_run(kafka, tmp_path, "plain", PLAIN_KILLS)
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
