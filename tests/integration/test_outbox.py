"""The durable outbox on real Kafka: a border post offline accepts reports, keeps them through
``kill -9``, and delivers them in order, once each, when the link returns.

Figures are printed (``-s``): the accept rate while offline and the drain rate after, from
one run. ``FUSIONBUS_LONG=1`` accepts 20,000 reports instead of 2,000.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.config import KafkaSettings
from broker.errors import FusionbusError
from broker.federation import DirectorySnapshot, EncryptionKeyRecord, SigningKeyRecord, agency_keys
from broker.kafka import ClusterState
from broker.keys import Identity
from consumers import Delivery, Subscriber
from producers import ExpiredError, Outbox, OutboxFullError, Published, Publisher, Queued
from schemas import Relations, Report, example_report
from tests.integration.cli_helpers import CLI, Fusionbus, as_json_lines, failed, json_lines
from tests.integration.history import History
from tests.integration.test_pubsub import Fixed

LONG = os.environ.get("FUSIONBUS_LONG") == "1"
REPORTS = 20_000 if LONG else 2_000
BATCH = 100


def dead_bootstrap() -> str:
    """A loopback address where nothing listens (a cluster out of reach)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"127.0.0.1:{port}"


class Post:
    """A border post (a sender of its own, so its topic holds only this test's reports) and
    its counterpart."""

    def __init__(self, kafka: ClusterState, outbox: Path) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.sender = Identity.generate(f"post-{suffix}")
        self.reader = Identity.generate(f"anf-{suffix}")
        since = datetime.now(UTC) - timedelta(days=1)
        keys: list[SigningKeyRecord | EncryptionKeyRecord] = []
        for ident in (self.sender, self.reader):
            keys += agency_keys(
                ident.agency, ident.signing_key.public, ident.encryption_key, valid_from=since
            )
        self.trust = DirectorySnapshot.of_keys(keys)
        self.policy = Fixed(self.trust, [self.reader.encryption_kid])
        self.online = KafkaSettings(bootstrap=kafka.bootstrap)
        self.offline = KafkaSettings(bootstrap=dead_bootstrap(), request_timeout_ms=2_000)
        self.outbox = outbox

    def publisher(self, settings: KafkaSettings, box: Outbox, **kwargs: object) -> Publisher:
        return Publisher(
            self.sender, self.trust, self.policy, settings, outbox=box,
            **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip

    def reports(self, count: int, *, thread_every: int = 5) -> list[Report]:
        """``count`` reports of this post; every ``thread_every`` in a row form one thread
        (each follows up the one before it), so order within a thread is checked."""
        made: list[Report] = []
        for n in range(count):
            report = example_report("narcotics", "PKKHI").model_copy(
                update={"sender": self.sender.agency, "title": f"report {n}"}
            )
            if n % thread_every and made:
                relations = Relations(follows_up=(made[-1].message_id,))
                report = report.model_copy(update={"relations": relations})
            made.append(Report.model_validate(report.model_dump()))
        return made

    def thread_of(self, reports: list[Report]) -> dict[uuid.UUID, uuid.UUID]:
        threads: dict[uuid.UUID, uuid.UUID] = {}
        for report in reports:
            parent = report.relations.follows_up
            threads[report.message_id] = threads[parent[0]] if parent else report.message_id
        return threads

    async def read(
        self, wanted: set[uuid.UUID], history: History, reader: str
    ) -> dict[uuid.UUID, Delivery]:
        """Read this post's topic from the start until every wanted report arrived, and a
        second more (anything later would be a duplicate)."""
        complete = asyncio.Event()
        got: dict[uuid.UUID, Delivery] = {}

        async def handler(delivery: Delivery) -> None:
            message_id = delivery.report.message_id
            if message_id in wanted:
                history.delivered(message_id, reader=reader)
                got[message_id] = delivery
                if got.keys() == wanted:
                    complete.set()

        subscriber = Subscriber(
            self.reader, self.trust, self.online, categories=["narcotics"],
            jurisdictions=["PKKHI"],
        )  # fmt: skip
        task = asyncio.create_task(subscriber.run(handler))
        try:
            await asyncio.wait_for(complete.wait(), 180)
            await asyncio.sleep(1.0)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return got


@pytest.mark.asyncio
async def test_reports_accepted_offline_are_delivered_in_order_once_when_the_link_returns(
    kafka: ClusterState, tmp_path: Path
) -> None:
    post = Post(kafka, tmp_path / "outbox.sqlite")
    reports = post.reports(REPORTS)
    threads = post.thread_of(reports)
    history = History()

    # Offline: every report is accepted (sealed, on disk) and none is sent.
    box = Outbox(post.outbox)
    started = time.monotonic()
    async with post.publisher(post.offline, box, ack_wait_s=0) as publisher:
        for at in range(0, len(reports), BATCH):
            chunk = reports[at : at + BATCH]
            results = await publisher.publish_many(chunk)
            assert all(isinstance(r, Queued) for r in results), results[:3]
            for report in chunk:
                history.sent(report.message_id, thread=threads[report.message_id])
        accepted_s = time.monotonic() - started
        backlog = publisher.backlog()
        assert backlog is not None
        assert backlog.queued == len(reports)
    box.close()
    history.mark("link restored")

    # Online, in a new publisher (a restarted process): the outbox drains by itself.
    box = Outbox(post.outbox)
    acked: list[uuid.UUID] = []

    def settled(message_id: uuid.UUID, result: Published | FusionbusError) -> None:
        assert isinstance(result, Published), result
        acked.append(message_id)
        history.acked(message_id)

    restored = time.monotonic()
    async with post.publisher(post.online, box, on_settled=settled) as publisher:
        assert await publisher.wait_sent(300), f"{box.backlog()} left after 300 s"
    drained_s = time.monotonic() - restored
    assert box.backlog().queued == 0
    box.close()
    assert len(acked) == len(set(acked)) == len(reports)

    await post.read({r.message_id for r in reports}, history, "anf")
    verdict = history.check(readers=["anf"])
    print(
        f"\noutbox: accepted {len(reports)} offline in {accepted_s:.2f} s "
        f"({len(reports) / accepted_s:,.0f} reports/s); drained in {drained_s:.2f} s "
        f"({len(reports) / drained_s:,.0f} reports/s); {verdict.explain()}"
    )
    assert verdict.ok, verdict.explain()
    assert verdict.delivered == {"anf": len(reports)}


@pytest.mark.asyncio
async def test_a_full_outbox_refuses_the_batch_and_an_expired_report_is_kept_aside(
    kafka: ClusterState, tmp_path: Path
) -> None:
    post = Post(kafka, tmp_path / "outbox.sqlite")
    box = Outbox(post.outbox, capacity=3)
    now = datetime.now(UTC)
    soon = example_report("narcotics", "PKKHI", now=now).model_copy(
        update={"sender": post.sender.agency, "valid_until": now + timedelta(seconds=4)}
    )
    written = now - timedelta(minutes=10)  # before the link went down
    later = post.reports(1)[0].model_copy(update={"created_at": written})
    async with post.publisher(post.offline, box, ack_wait_s=0) as publisher:
        assert [type(r) for r in await publisher.publish_many([soon, later])] == [Queued] * 2
        with pytest.raises(OutboxFullError, match="capacity is 3: none of these 2"):
            await publisher.publish_many(post.reports(2))
        assert box.backlog().queued == 2
    await asyncio.sleep(4.5)  # the border post stays offline past the first one's validity

    told: dict[uuid.UUID, Published | FusionbusError] = {}
    async with post.publisher(post.online, box, on_settled=told.__setitem__) as publisher:
        assert await publisher.wait_sent(60)
    assert isinstance(told[soon.message_id], ExpiredError)
    assert isinstance(told[later.message_id], Published)
    [stuck] = box.stuck()
    assert (stuck.message_id, stuck.state) == (str(soon.message_id), "expired")
    box.close()
    # Delivered late, and said so; the expired one never reached Kafka.
    got = await post.read({later.message_id}, History(), "anf")
    late = got[later.message_id].late_by_s
    assert late is not None
    assert late >= 600


def _rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as db:
        try:
            return int(db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def test_the_cli_keeps_reports_through_kill_9_offline_and_sends_them_later(
    kafka: ClusterState, tmp_path: Path
) -> None:
    online = Fusionbus(tmp_path / "home", kafka.bootstrap)
    online.federation({"anf": [("narcotics", "PK")]})
    offline = Fusionbus(online.home, dead_bootstrap())
    outbox = online.home / "state" / "customs" / "outbox.sqlite"
    history = History()

    # A publish waiting for an unreachable Kafka is killed -9 once its reports are accepted.
    first = []
    for n in range(20):
        report = online.example("narcotics", "PKKHI")
        report["title"] = f"offline report {n}"
        first.append(report)
    source = tmp_path / "reports.jsonl"
    source.write_text(as_json_lines(first))
    errors = tmp_path / "publish.stderr"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [*CLI, "publish", "--agency", "customs", "--wait", "600", str(source)],
            stdout=subprocess.DEVNULL, stderr=stderr, env=offline.env,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while _rows(outbox) < len(first) and time.monotonic() < deadline:
            assert process.poll() is None, errors.read_text()
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert _rows(outbox) == len(first)
    for report in first:
        history.sent(report["message_id"])

    # Another publish while still offline: accepted, exit 0, says it is queued.
    second = [online.example("narcotics", "PKKHI") for _ in range(5)]
    queued = offline.run(
        "publish", "--agency", "customs", "--wait", "1", stdin=as_json_lines(second)
    )
    assert queued.returncode == 0, failed(queued)
    assert queued.stdout.split() == [r["message_id"] for r in second]
    assert "5 of 5 reports are queued in the outbox" in queued.stderr
    for report in second:
        history.sent(report["message_id"])
    [shown] = json_lines(offline.ok("outbox", "--agency", "customs", "--json"))
    assert shown["queued"] == 25
    assert shown["oldest_age_s"] > 0

    # The link is back: `outbox --send` empties it, and anf gets each report once, in order.
    sent = online.run("outbox", "--agency", "customs", "--send", "--wait", "120")
    assert sent.returncode == 0, failed(sent)
    assert "the outbox is empty" in sent.stderr
    assert "Nothing queued" in sent.stdout
    for report in first + second:
        history.acked(report["message_id"])
    wanted = {r["message_id"] for r in first + second}
    for line in online.tail("anf"):
        message_id = line.get("report", {}).get("message_id")
        if message_id in wanted:
            history.delivered(message_id, reader="anf")
    verdict = history.check(readers=["anf"])
    assert verdict.ok, verdict.explain()
    assert verdict.delivered == {"anf": 25}
