"""The exactly-once SQLite sink: the application's write and the delivery mark commit
together or not at all, alone and under the subscriber's loop (over a fake Kafka consumer)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from broker.config import KafkaSettings
from broker.envelope import Opener
from broker.errors import ConfigError
from broker.topics import report_topic
from consumers import Delivery, MemoryDelivered, Seen, SqliteDelivered, SqliteSink, Subscriber
from consumers.intake import Accepted, Intake, Record, Source
from schemas import Report
from tests.unit.consumers.test_intake import IDS, NOW, TRUST, _report, _sealed

TP = TopicPartition(report_topic("customs", "PKKHI", "narcotics"), 0)
_TABLE = "CREATE TABLE IF NOT EXISTS cases (report_id TEXT PRIMARY KEY, title TEXT NOT NULL)"


def _write(db: sqlite3.Connection, delivery: Delivery) -> None:
    report = delivery.report
    db.execute("INSERT INTO cases VALUES (?, ?)", (str(report.message_id), report.title))


def _setup(db: sqlite3.Connection) -> None:
    db.execute(_TABLE)


def _cases(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [row[0] for row in db.execute("SELECT report_id FROM cases ORDER BY rowid")]
    finally:
        db.close()


def _delivery(report: Report) -> Delivery:
    """A real delivery of ``report`` to anf (what the subscriber hands a sink)."""
    intake = Intake(
        Opener(IDS["anf"], TRUST), categories=["narcotics"], jurisdictions=["PK"],
        delivered=MemoryDelivered(), clock=lambda: NOW,
    )  # fmt: skip
    verdict = intake.process(Record(Source(TP.topic, 0, 0, 1), _sealed(report)))
    assert isinstance(verdict, Accepted)
    return verdict.delivery


def test_the_write_and_the_mark_commit_together_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    report = _report()
    with SqliteSink(path, _write, setup=_setup) as sink:
        sink.take(
            _delivery(report),
            lambda: sink.delivered.mark("customs", report.message_id, b"d", report.created_at),
        )
        assert sink.taken == 1
    with SqliteSink(path, _write, setup=_setup) as reopened:
        assert reopened.delivered.check("customs", report.message_id, b"d") is Seen.DUPLICATE
    assert _cases(path) == [str(report.message_id)]


def test_a_write_that_raises_rolls_back_and_marks_nothing(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"
    report = _report()
    marked: list[bool] = []

    def failing(db: sqlite3.Connection, delivery: Delivery) -> None:
        _write(db, delivery)
        raise RuntimeError("the application refuses it")

    with SqliteSink(path, failing, setup=_setup) as sink:
        with pytest.raises(RuntimeError, match="refuses"):
            sink.take(_delivery(report), lambda: marked.append(True))
        assert not sink.connection.in_transaction
        assert sink.delivered.check("customs", report.message_id, b"d") is Seen.NEW
        assert sink.taken == 0
    assert marked == []
    assert _cases(path) == []


def test_a_mark_that_raises_undoes_the_write(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"

    def mark() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with (
        SqliteSink(path, _write, setup=_setup) as sink,
        pytest.raises(sqlite3.OperationalError),
    ):
        sink.take(_delivery(_report()), mark)
    assert _cases(path) == []


def test_a_write_that_commits_by_itself_is_refused(tmp_path: Path) -> None:
    def committing(db: sqlite3.Connection, delivery: Delivery) -> None:
        _write(db, delivery)
        db.execute("COMMIT")

    marked: list[bool] = []
    with (
        SqliteSink(tmp_path / "app.sqlite", committing, setup=_setup) as sink,
        pytest.raises(ConfigError, match="must only execute statements"),
    ):
        sink.take(_delivery(_report()), lambda: marked.append(True))
    assert marked == []


def test_a_setup_that_fails_leaves_no_half_made_schema(tmp_path: Path) -> None:
    path = tmp_path / "app.sqlite"

    def setup(db: sqlite3.Connection) -> None:
        db.execute(_TABLE)
        db.execute("CREATE TABLE broken (")

    with pytest.raises(sqlite3.OperationalError):
        SqliteSink(path, _write, setup=setup)
    db = sqlite3.connect(path)
    try:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        db.close()
    assert "cases" not in names


class _Raw:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.timestamp = TP.topic, TP.partition, offset, 0
        self.key: bytes | None = None
        self.value = value
        self.headers: list[tuple[str, bytes]] = []


class Replaying:
    """One partition holding ``values``; each fetch returns what follows the last commit
    (as a consumer restarted in its group would), then waits forever."""

    def __init__(self, values: list[bytes], committed: int = 0) -> None:
        self.values = values
        self.committed = committed
        self._fetched = False

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.values)

    async def position(self, tp: TopicPartition) -> int:
        return self.committed

    async def getmany(self, *_: Any, **__: Any) -> dict[TopicPartition, list[Any]]:
        if self._fetched:
            await asyncio.Event().wait()
        self._fetched = True
        return {TP: [_Raw(n, v) for n, v in enumerate(self.values) if n >= self.committed]}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed = offsets[TP]


def _subscriber(sink: SqliteSink) -> Subscriber:
    return Subscriber(
        IDS["anf"], TRUST, KafkaSettings(), categories=["narcotics"], jurisdictions=["PK"],
        group_id="fusionbus.anf.sink", delivered=sink.delivered, clock=lambda: NOW,
    )  # fmt: skip


@pytest.mark.asyncio
async def test_a_failing_write_stops_the_subscriber_and_the_restart_writes_each_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.sqlite"
    reports = [_report() for _ in range(4)]
    values = [_sealed(r) for r in reports]
    refuse = {reports[2].message_id}

    def picky(db: sqlite3.Connection, delivery: Delivery) -> None:
        if delivery.report.message_id in refuse:
            raise RuntimeError("not now")
        _write(db, delivery)

    consumer = Replaying(values)
    with SqliteSink(path, picky, setup=_setup) as sink:
        with pytest.raises(RuntimeError, match="not now"):
            await _subscriber(sink)._loop(consumer, sink, None, False)
        assert consumer.committed == 2  # what was written before the failure
    assert _cases(path) == [str(r.message_id) for r in reports[:2]]

    # A restart that is handed the whole partition again (offsets lost): nothing twice.
    refuse.clear()
    consumer = Replaying(values, committed=0)
    with SqliteSink(path, picky, setup=_setup) as sink:
        subscriber = _subscriber(sink)
        task = asyncio.create_task(subscriber._loop(consumer, sink, None, False))
        async with asyncio.timeout(30):
            while consumer.committed < 4:  # noqa: ASYNC110 - the fake has no event to await
                await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert (subscriber.handed_over, subscriber.skipped, sink.taken) == (2, 2, 2)
    assert _cases(path) == [str(r.message_id) for r in reports]


@pytest.mark.asyncio
async def test_a_sink_needs_the_subscriber_to_use_its_delivered_store(tmp_path: Path) -> None:
    with SqliteSink(tmp_path / "app.sqlite", _write, setup=_setup) as sink:
        subscriber = Subscriber(
            IDS["anf"], TRUST, KafkaSettings(), categories=["narcotics"], jurisdictions=["PK"],
            group_id=f"fusionbus.anf.{uuid.uuid4().hex[:6]}",
        )  # fmt: skip
        with pytest.raises(ConfigError, match=r"delivered=sink\.delivered"):
            await subscriber.run(sink)


def test_a_shared_store_needs_an_autocommit_connection(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "app.sqlite")  # the default: implicit transactions
    try:
        with pytest.raises(ConfigError, match="isolation_level=None"):
            SqliteDelivered.on(db)
    finally:
        db.close()
