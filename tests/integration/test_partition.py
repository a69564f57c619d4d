"""A real network partition: Kafka on a "host" of its own (a network namespace), the agency's
publisher and subscriber out here, the link between them cut and restored.

The cut lasts ``FUSIONBUS_PARTITION_S`` seconds (default 60; ``FUSIONBUS_LONG=1`` makes it
300), and ``FUSIONBUS_TAIL_PARTITION_S`` under ``fusionbus tail`` (default 20; long: 120).
See ``tests/integration/netns.py`` for how the cut works and ``docs/reliability.md``
(``## A real partition``) for what this shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.config import KafkaSettings
from broker.errors import FusionbusError
from broker.federation import (
    DirectorySnapshot,
    EncryptionKeyRecord,
    SigningKeyRecord,
    agency_keys,
)
from broker.keys import Identity
from consumers import Delivery, Subscriber, new_group_id
from producers import Published, Publisher
from producers.outbox import Outbox
from schemas import Report, example_report
from tests.integration import netns
from tests.integration.cli_helpers import Fusionbus
from tests.integration.conftest import Remote
from tests.integration.history import History
from tests.integration.netns import NetNamespace
from tests.integration.test_pubsub import Fixed
from tests.integration.test_shutdown import tailing

LONG = os.environ.get("FUSIONBUS_LONG") == "1"
PARTITION_S = float(os.environ.get("FUSIONBUS_PARTITION_S", "300" if LONG else "60"))
PUBLISH_TIMEOUT_MS = 5_000
"""The clients' ``request_timeout_ms``: short, so that timeouts fall well within the cut (a
direct publish still waits longer: ``docs/reliability.md``)."""
PUBLISH_GIVE_UP_S = 30.0
"""How long the test waits for one publish before it counts it failed (a timeout of ours)."""
THREADS = 4


_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], 0))
print(server.getsockname()[1], flush=True)
conn, _ = server.accept()
while data := conn.recv(100):
    conn.sendall(b"ack:" + data)
"""


def test_a_cut_stalls_an_established_connection_until_restored(healed: NetNamespace) -> None:
    host = healed
    """The cut is a partition for TCP already connected, not only for new connections."""
    server = subprocess.Popen(
        host.command(sys.executable, "-c", _SERVER, host.inside),
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with socket.create_connection((host.inside, port), timeout=5) as conn:
            conn.sendall(b"before")
            assert conn.recv(100) == b"ack:before"
            host.cut()
            conn.sendall(b"during")
            conn.settimeout(2)
            with pytest.raises(TimeoutError):
                conn.recv(100)  # the data sits unacknowledged on the cut link
            with pytest.raises(OSError, match=r"No route to host|timed out"):
                socket.create_connection((host.inside, port), timeout=5).close()
            host.restore()
            conn.settimeout(30)
            started = time.monotonic()
            assert conn.recv(100) == b"ack:during"  # retransmitted on the same connection
            print(f"\nstalled data arrived {time.monotonic() - started:.2f} s after the restore")
    finally:
        server.kill()
        server.communicate()


_KILLED_RUN = """
import os, signal, subprocess, sys
from tests.integration.netns import NetNamespace
with NetNamespace.create() as host:
    sleeper = subprocess.Popen(host.command("sleep", "600"), start_new_session=True)
    print(host.name, host.veth_outside, sleeper.pid, flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)  # no clean-up runs
"""


def test_what_a_killed_run_left_behind_is_removed_by_the_next() -> None:
    """A run killed inside its namespace leaves it, its veth and a process in it; the next
    :meth:`NetNamespace.create` (through :func:`netns.remove_stale`) removes all three."""
    run = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert run.stdin is not None
    assert run.stdout is not None
    name, veth, sleeper = run.stdout.readline().split()
    run.stdin.write("\n")
    run.stdin.close()
    assert run.wait(30) == -signal.SIGKILL
    run.stdout.close()
    try:
        assert netns.exists(name), "the killed run's namespace should still be there"
        assert Path(f"/proc/{sleeper}").exists()
    finally:
        removed = netns.remove_stale()
    assert name in removed
    assert not netns.exists(name)
    assert not Path(f"/sys/class/net/{veth}").exists()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{sleeper}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # killed; its parent (gone) cannot reap it, init does
    assert not Path(f"/proc/{sleeper}").exists(), "a process in the namespace survived"


@dataclass
class Agencies:
    trust: DirectorySnapshot
    customs: Identity
    anf: Identity


def _agencies() -> Agencies:
    keys: list[SigningKeyRecord | EncryptionKeyRecord] = []
    since = datetime.now(UTC) - timedelta(days=1)
    suffix = uuid.uuid4().hex[:6]
    customs, anf = Identity.generate("customs"), Identity.generate(f"anf-{suffix}")
    for ident in (customs, anf):
        keys += agency_keys(
            ident.agency, ident.signing_key.public, ident.encryption_key, valid_from=since
        )
    return Agencies(DirectorySnapshot.of_keys(keys), customs, anf)


class Threads:
    """Reports in ``THREADS`` threads: each thread's first report, then follow-ups of it
    (the publisher keys a thread's reports alike, so Kafka keeps them in order)."""

    def __init__(self) -> None:
        self.roots: list[Report | None] = [None] * THREADS
        self.count = 0

    def next(self) -> tuple[Report, str]:
        i = self.count % THREADS
        self.count += 1
        report = example_report("narcotics", "PKKHI")
        root = self.roots[i]
        if root is None:
            self.roots[i] = report
            return report, str(report.message_id)
        related = report.model_dump() | {"relations": {"follows_up": [str(root.message_id)]}}
        return Report.model_validate(related), str(root.message_id)


@dataclass
class Sender:
    """One publisher of the test and what became of its reports."""

    name: str
    publisher: Publisher
    history: History
    threads: Threads = field(default_factory=Threads)
    accepted: set[str] = field(default_factory=set)
    failed: Counter[str] = field(default_factory=Counter)
    """Failed publishes per phase (``before``, ``cut``, ``after``)."""
    failures: list[tuple[str, str, float]] = field(default_factory=list)
    """(phase, error, seconds until it failed) of each failed publish."""

    async def publish(self, phase: str) -> None:
        """Publish the next report; it is sent, and acknowledged once Kafka said so (the
        outbox's acknowledgements arrive through ``on_settled``)."""
        report, thread = self.threads.next()
        self.history.sent(report.message_id, thread=thread)
        started = time.monotonic()
        try:
            async with asyncio.timeout(PUBLISH_GIVE_UP_S):
                result = await self.publisher.publish(report)
        except (FusionbusError, TimeoutError) as exc:
            self.failed[phase] += 1
            self.failures.append((phase, type(exc).__name__, time.monotonic() - started))
            return
        self.accepted.add(str(report.message_id))
        if isinstance(result, Published):
            self.history.acked(report.message_id)

    async def keep_publishing(self, phase: str, until: float) -> None:
        while time.monotonic() < until:
            await self.publish(phase)
            await asyncio.sleep(1.0)


async def _until(condition: Callable[[], bool], deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {deadline_s:.0f} s waiting: {what}"
        await asyncio.sleep(0.2)


@pytest.mark.asyncio
async def test_publishers_and_subscriber_ride_out_a_partition(
    remote_kafka: Remote, healed: NetNamespace, tmp_path: Path
) -> None:
    """A subscriber and two publishers of customs — one sending at once, one through its
    outbox — across a cut of ``PARTITION_S``: the subscriber resumes by itself, every
    acknowledged report is delivered once and in thread order, the outbox drains."""
    host = remote_kafka.host
    world = _agencies()
    settings = KafkaSettings(
        bootstrap=remote_kafka.state.bootstrap, request_timeout_ms=PUBLISH_TIMEOUT_MS
    )
    history = History()
    delivered: set[str] = set()

    async def handler(delivery: Delivery) -> None:
        history.delivered(delivery.report.message_id, reader="anf")
        delivered.add(str(delivery.report.message_id))

    def settled(message_id: uuid.UUID, result: Published | FusionbusError) -> None:
        if isinstance(result, Published):
            history.acked(message_id)

    subscriber = Subscriber(
        world.anf, world.trust, settings, categories=["narcotics"], jurisdictions=["PK"],
        group_id=new_group_id(world.anf.agency, "partition"),
    )  # fmt: skip
    policy = Fixed(world.trust, [world.customs.encryption_kid, world.anf.encryption_kid])
    outbox = Outbox(tmp_path / "outbox.sqlite")
    async with (
        Publisher(world.customs, world.trust, policy, settings) as direct,
        Publisher(
            world.customs, world.trust, policy, settings, outbox=outbox, ack_wait_s=0.5,
            on_settled=settled,
        ) as queued,
    ):  # fmt: skip
        senders = [Sender("direct", direct, history), Sender("outbox", queued, history)]
        consuming = asyncio.create_task(subscriber.run(handler))
        try:
            for _ in range(8):
                for sender in senders:
                    await sender.publish("before")
            assert not any(s.failed for s in senders), "a publish failed before the cut"
            await _until(lambda: _acked(history) <= delivered, 90, "the reports before the cut")

            cut_at = history.mark("cut")
            host.cut()
            until = cut_at + PARTITION_S
            await asyncio.gather(*(s.keep_publishing("cut", until) for s in senders))
            assert not consuming.done(), f"the subscriber stopped during the cut: {consuming}"
            queued_at_restore = outbox.backlog().queued
            restored_at = history.mark("restored")
            host.restore()

            for _ in range(8):
                for sender in senders:
                    await sender.publish("after")
            assert await queued.wait_sent(180), f"the outbox did not drain: {outbox.backlog()}"
            drained_at = time.monotonic()
            await _until(lambda: _acked(history) <= delivered, 180, "the acknowledged reports")
            await asyncio.sleep(2.0)  # anything more would be a duplicate
            assert not consuming.done(), f"the subscriber stopped: {consuming}"
        finally:
            consuming.cancel()
            with pytest.raises(asyncio.CancelledError):
                await consuming
    outbox.close()

    verdict = history.check(["anf"])
    assert verdict.ok, verdict.explain()
    outboxed = senders[1]
    assert outboxed.accepted <= _acked(history), "a report the outbox accepted was never sent"
    assert not outboxed.failed, f"the outbox refused reports: {outboxed.failed}"
    _print_figures(history, senders, restored_at, drained_at, queued_at_restore)


def _print_figures(
    history: History, senders: list[Sender], restored_at: float, drained_at: float, held: int
) -> None:
    first_ack = next(
        (e.at for e in history.events if e.kind == "acked" and e.at > restored_at), None
    )
    first_delivery = history.first_after("delivered", restored_at)
    assert first_ack is not None, "no publish was acknowledged after the restore"
    assert first_delivery is not None, "nothing was delivered after the restore"
    direct = senders[0]
    print(
        f"\npartition of {PARTITION_S:.0f} s: {history.check(['anf']).explain()}\n"
        f"direct publishes failed: during the cut {direct.failed['cut']}, after the restore "
        f"{direct.failed['after']}; (phase, error, seconds): {direct.failures}\n"
        f"the outbox held {held} at the restore and drained {drained_at - restored_at:.2f} s "
        f"after it; after the restore the first acknowledgement came in "
        f"{first_ack - restored_at:.2f} s, the first delivery in "
        f"{first_delivery - restored_at:.2f} s"
    )


def _acked(history: History) -> set[str]:
    return {e.report for e in history.events if e.kind == "acked"}


TAIL_CUT_S = float(os.environ.get("FUSIONBUS_TAIL_PARTITION_S", "120" if LONG else "20"))
"""The cut under ``fusionbus tail``: longer than a consumer group's session (10 s)."""


def test_a_tail_rides_out_a_partition(
    remote_home: Fusionbus, healed: NetNamespace, tmp_path: Path
) -> None:
    """``fusionbus tail --group`` (a subprocess, with its inbox reader and audit writer)
    across a cut of ``TAIL_CUT_S``: still running, it shows what is published after the
    restore, nothing twice, and SIGTERM still stops it with exit 0."""
    fb = remote_home
    template = fb.example("narcotics", "PKKHI")
    del template["message_id"]
    log = tmp_path / "tail.err"
    with tailing(fb, f"desk-{uuid.uuid4().hex[:8]}", log) as tail:
        before = fb.publish("customs", [template] * 5)
        tail.wait_for(lambda: set(before) <= set(tail.shown()), 120, "waiting for the first 5")
        healed.cut()
        time.sleep(TAIL_CUT_S)
        assert tail.process.poll() is None, f"tail stopped during the cut:\n{log.read_text()}"
        restored = time.monotonic()
        healed.restore()
        after = fb.publish("customs", [template] * 5)
        published_s = time.monotonic() - restored
        tail.wait_for(lambda: set(after) <= set(tail.shown()), 180, "waiting for the last 5")
        resumed_s = time.monotonic() - restored
        tail.process.send_signal(signal.SIGTERM)
        code = tail.exit_code(60)
        shown = tail.shown()
    assert code == 0, f"tail exited {code} after SIGTERM:\n{log.read_text()[-3000:]}"
    assert len(shown) == len(set(shown)), "a report was shown twice"
    print(
        f"\ntail across a {TAIL_CUT_S:.0f} s cut: after the restore, publishing 5 took "
        f"{published_s:.2f} s and tail showed them {resumed_s:.2f} s after the restore"
    )
