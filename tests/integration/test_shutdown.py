"""Graceful shutdown of the long-running processes, run as an operator runs them.

``fusionbus tail`` and ``fusionbus gateway`` as subprocesses on real Kafka: SIGTERM drains
(what was shown is committed, the feeds are closed) and the process exits 0; a second
SIGTERM or SIGINT during a slow drain — Kafka cut off by a real partition
(``tests/integration/netns.py``) — exits at once with 128 + the signal's number.
``docs/reliability.md`` (``## Graceful shutdown``) describes the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import orjson
import pytest
from aiokafka import ConsumerRecord

from broker.federation import Federation
from broker.home import write_config
from broker.kafka import ClusterState
from broker.topics import Header, report_topic
from gateway._files import GatewayFiles
from producers.outbox import Outbox
from tests.integration.cli_helpers import (
    CLI,
    Fusionbus,
    clean_env,
    delivered_ids,
    header,
    read_topic,
    run_cli,
)
from tests.integration.conftest import Remote
from tests.integration.netns import NetNamespace
from tests.integration.test_gateway import PLACE, Running, report, start_gateway
from tests.integration.test_gateway import stop as stop_gateway

EXIT_ON_SECOND = {signal.SIGTERM: 128 + signal.SIGTERM, signal.SIGINT: 128 + signal.SIGINT}
"""The exit code of a process stopped at once by a second signal (as a shell reports it)."""


# -- fusionbus tail ---------------------------------------------------------------------------


@dataclass
class Tail:
    """A ``fusionbus tail --json`` subprocess and the lines it printed so far."""

    process: subprocess.Popen[bytes]
    lines: list[bytes]
    log: Path
    _reader: threading.Thread
    _err: IO[bytes]

    @classmethod
    def start(cls, fb: Fusionbus, group: str, log: Path, *extra: str) -> Tail:
        args = ["tail", "--agency", "anf", "--group", group, "--json", "--from-beginning"]
        err = log.open("ab")
        process = subprocess.Popen(
            [*CLI, *args, *extra], stdout=subprocess.PIPE, stderr=err, env=fb.env
        )
        lines: list[bytes] = []

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        return cls(process, lines, log, reader, err)

    def shown(self) -> list[str]:
        whole = [orjson.loads(line) for line in self.lines if line.endswith(b"\n")]
        return delivered_ids(whole)

    def wait_for(self, predicate: object, deadline_s: float, what: str) -> None:
        assert callable(predicate)
        deadline = time.monotonic() + deadline_s
        while not predicate():
            if self.process.poll() is not None:
                pytest.fail(f"tail exited early ({self.process.returncode}) while {what}:\n"
                            f"{self.log.read_text()[-3000:]}")  # fmt: skip
            if time.monotonic() > deadline:
                pytest.fail(f"timed out while {what}:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def exit_code(self, timeout_s: float) -> int | None:
        """The exit code within ``timeout_s``, else ``None`` (still running)."""
        try:
            code = self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._err.close()
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.exit_code(30)


@contextlib.contextmanager
def tailing(fb: Fusionbus, group: str, log: Path, *extra: str) -> Iterator[Tail]:
    tail = Tail.start(fb, group, log, *extra)
    try:
        yield tail
    finally:
        tail.kill()


def test_sigterm_stops_a_live_tail_promptly_and_committed(
    kafka: ClusterState, tmp_path: Path
) -> None:
    """Reports keep arriving while tail shows them; SIGTERM mid-stream exits 0, and the next
    run of the same group shows every report once: none twice, none missed."""
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("wildlife", "PK-SD")]})
    template = fb.example("wildlife", "PK-SD")
    del template["message_id"]
    ids: list[str] = []
    stop_publishing = threading.Event()

    def publish() -> None:
        while not stop_publishing.is_set():
            ids.extend(fb.publish("customs", [template] * 25))

    publisher = threading.Thread(target=publish, daemon=True)
    group = f"desk-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "tail.err"
    with tailing(fb, group, log) as tail:
        publisher.start()
        tail.wait_for(lambda: len(tail.shown()) >= 60, 120, "waiting for 60 reports")
        signalled = time.monotonic()
        tail.process.send_signal(signal.SIGTERM)
        code = tail.exit_code(60)
        stopped_s = time.monotonic() - signalled
        first = tail.shown()
    published_at_stop = len(ids)
    while len(ids) < published_at_stop + 25:  # the stream goes on without it
        time.sleep(0.1)
    stop_publishing.set()
    publisher.join(120)
    assert code == 0, f"tail exited {code} after SIGTERM:\n{log.read_text()[-3000:]}"

    rest = Fusionbus(fb.home, fb.bootstrap).ok(
        "tail", "--agency", "anf", "--group", group, "--json", "--from-beginning", "--exit-at-end"
    )
    mine = set(ids)
    shown = [i for i in first if i in mine]
    again = [i for i in delivered_ids([orjson.loads(x) for x in rest.splitlines()]) if i in mine]
    assert set(shown) | set(again) == mine, f"{len(mine - set(shown) - set(again))} missed"
    assert len(shown) + len(again) == len(mine), (
        f"{len(shown) + len(again) - len(mine)} reports shown twice across the restart"
    )
    print(
        f"\ntail: SIGTERM after {len(shown)} of {len(mine)} reports, exit 0 in "
        f"{stopped_s:.2f} s; the restart showed the other {len(again)}"
    )


# -- fusionbus gateway ------------------------------------------------------------------------


def _gateway_home(base: Path, bootstrap: str) -> tuple[Path, str]:
    """A home with one receiving agency (narcotics in PK granted); its id."""
    home = base / "home"
    agency = f"sd{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).replace(microsecond=0)
    federation = Federation.init(home, now=now)
    federation.add_agency(agency, "Receiving agency", now=now)
    federation.grant(agency, categories=["narcotics"], jurisdictions=["PK"], now=now)
    write_config(home, bootstrap, secure=False, by="tests/integration/test_shutdown.py")
    return home, agency


def _token(home: Path, agency: str, env: dict[str, str], *, role: str = "viewer") -> str:
    made = run_cli(
        "gateway", "token", "create", "--agency", agency, "--role", role, "--home",
        str(home), env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    return made.stdout.splitlines()[-1]


async def _ready(url: str, deadline_s: float = 90) -> None:
    async with httpx.AsyncClient() as client:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    pytest.fail(f"{url} never became ready")


def _exit_code(running: Running, timeout_s: float) -> int | None:
    try:
        return running.process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None


@contextlib.contextmanager
def gateway(home: Path, agency: str, env: dict[str, str], log: Path) -> Iterator[Running]:
    running = start_gateway(home, agency, env, log)
    try:
        yield running
    finally:
        stop_gateway(running)  # SIGTERM, then SIGKILL; closes its pipes


@pytest.mark.asyncio
async def test_sigterm_closes_the_gateway_feed_and_exits_after_draining(
    kafka: ClusterState, tmp_path: Path
) -> None:
    """An open ``/v1/feed`` ends cleanly (the chunked body is complete, not cut) soon after
    SIGTERM, and the gateway then stops its Kafka side and exits 0."""
    home, agency = _gateway_home(tmp_path, kafka.bootstrap)
    env = clean_env(FUSIONBUS_GATEWAY_FEED_HEARTBEAT_S="1")
    token = _token(home, agency, env)
    log = tmp_path / "gateway.log"
    with gateway(home, agency, env, log) as running:
        await _ready(running.url)
        events: list[str] = []
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(30)) as client,
            client.stream(
                "GET", f"{running.url}/v1/feed", headers={"Authorization": f"Bearer {token}"}
            ) as feed,
        ):
            assert feed.status_code == 200
            lines = feed.aiter_lines()
            async for line in lines:
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                    break  # the feed is open and live
            signalled = time.monotonic()
            running.process.send_signal(signal.SIGTERM)
            try:
                async for line in lines:
                    if line.startswith("event:"):
                        events.append(line.split(":", 1)[1].strip())
            except httpx.HTTPError as exc:
                pytest.fail(f"the feed was cut, not closed ({exc!r}):\n{log.read_text()[-3000:]}")
            closed_s = time.monotonic() - signalled
        code = await asyncio.to_thread(_exit_code, running, 60)
        exited_s = time.monotonic() - signalled
    text = log.read_text()
    assert code == 0, f"the gateway exited {code} after SIGTERM:\n{text[-3000:]}"
    assert "timeout graceful shutdown exceeded" not in text, "uvicorn had to cancel the feed"
    assert "gateway.stopped" in text, f"the gateway did not log its stop:\n{text[-3000:]}"
    print(
        f"\ngateway: SIGTERM with a feed open ({len(events)} events): the feed ended "
        f"{closed_s:.2f} s later, the process exited 0 {exited_s:.2f} s after the signal"
    )


async def _post_until_refused(
    url: str, token: str, accepted: list[str], enough: asyncio.Event
) -> int:
    """POST reports one after another until the gateway stops answering (``enough`` set
    after 20 accepted); how many got an answer other than 202 (refused while stopping)."""
    other = 0
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(30)) as client:
        while True:
            try:
                answer = await client.post(
                    f"{url}/v1/reports", content=orjson.dumps(report()), headers=headers
                )
            except httpx.TransportError:
                return other
            if answer.status_code == 202:
                accepted.append(answer.json()["message_id"])
                if len(accepted) >= 20:
                    enough.set()
            else:
                other += 1


@pytest.mark.asyncio
async def test_sigterm_while_reports_are_posted_loses_no_accepted_report(
    kafka: ClusterState, tmp_path: Path
) -> None:
    """Reports are POSTed while SIGTERM arrives: every one the gateway accepted (202) is on
    Kafka once it exited 0, or still queued in its outbox for the next start."""
    home = tmp_path / "home"
    tag = uuid.uuid4().hex[:6]
    sender, receiver = f"sdout{tag}", f"sdin{tag}"
    now = datetime.now(UTC).replace(microsecond=0)
    federation = Federation.init(home, now=now)
    federation.add_agency(sender, "Sending agency", now=now)
    federation.add_agency(receiver, "Receiving agency", now=now)
    federation.grant(receiver, categories=["narcotics"], jurisdictions=["PK-BA"], now=now)
    write_config(home, kafka.bootstrap, secure=False, by="tests/integration/test_shutdown.py")
    env = clean_env()
    token = _token(home, sender, env, role="system")
    log = tmp_path / "gateway.log"
    accepted: list[str] = []
    with gateway(home, sender, env, log) as running:
        await _ready(running.url)
        enough = asyncio.Event()
        posting = asyncio.create_task(_post_until_refused(running.url, token, accepted, enough))
        await asyncio.wait_for(enough.wait(), 60)
        signalled = time.monotonic()
        running.process.send_signal(signal.SIGTERM)
        at_signal = len(accepted)
        refused = await asyncio.wait_for(posting, 60)
        code = await asyncio.to_thread(_exit_code, running, 60)
        exited_s = time.monotonic() - signalled
    assert code == 0, f"the gateway exited {code} after SIGTERM:\n{log.read_text()[-3000:]}"
    outbox = Outbox(GatewayFiles(home, sender).outbox)
    try:
        queued = {str(row.item.message_id) for row in outbox.next(100_000)}
    finally:
        outbox.close()
    want = set(accepted) - queued

    def all_there(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return want <= {header(r, Header.MESSAGE_ID) for r in records}

    topic = report_topic(sender, PLACE, "narcotics")
    records = await read_topic(kafka.bootstrap, topic, all_there, deadline_s=30)
    on_kafka = {header(r, Header.MESSAGE_ID) for r in records}
    missing = want - on_kafka
    assert not missing, f"{len(missing)} accepted reports are neither on Kafka nor queued"
    print(
        f"\ngateway: SIGTERM after {at_signal} reports accepted; {len(accepted)} accepted in "
        f"all ({refused} refused while stopping), {len(accepted) - len(queued)} on Kafka, "
        f"{len(queued)} left queued in the outbox; exit 0 {exited_s:.2f} s after the signal"
    )


# -- a second signal during a slow drain ------------------------------------------------------


def _second_signal(
    process: subprocess.Popen[bytes] | subprocess.Popen[str],
    host: NetNamespace,
    second: signal.Signals,
    log: Path,
) -> tuple[int, float]:
    """Cut the link, SIGTERM, check the drain is still going 3 s on, send ``second``; the
    exit code and how long the process took to exit after ``second``."""
    host.cut()
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=3)
    if process.returncode is not None:
        pytest.fail(
            f"the process exited {process.returncode} within 3 s of SIGTERM with Kafka cut "
            f"off: no slow drain to interrupt:\n{log.read_text()[-3000:]}"
        )
    sent = time.monotonic()
    process.send_signal(second)
    try:
        code = process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 30 s after a second {second.name}:\n{log.read_text()[-3000:]}")
    return code, time.monotonic() - sent


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_second_signal_stops_a_tail_at_once_during_a_slow_drain(
    remote_home: Fusionbus, healed: NetNamespace, tmp_path: Path, second: signal.Signals
) -> None:
    log = tmp_path / "tail.err"
    with tailing(remote_home, f"desk-{uuid.uuid4().hex[:8]}", log) as tail:
        tail.wait_for(lambda: len(tail.shown()) >= 1, 120, "waiting for the first report")
        code, took = _second_signal(tail.process, healed, second, log)
    assert code == EXIT_ON_SECOND[second], f"exit {code}:\n{log.read_text()[-3000:]}"
    print(f"\ntail: a second {second.name} during the drain: exit {code} in {took:.2f} s")


@pytest.mark.asyncio
@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_second_signal_stops_a_gateway_at_once_during_a_slow_drain(
    remote_kafka: Remote, healed: NetNamespace, tmp_path: Path, second: signal.Signals
) -> None:
    home, agency = _gateway_home(tmp_path, remote_kafka.bootstrap)
    env = clean_env()
    log = tmp_path / "gateway.log"
    with gateway(home, agency, env, log) as running:
        await _ready(running.url)
        code, took = await asyncio.to_thread(_second_signal, running.process, healed, second, log)
    assert code == EXIT_ON_SECOND[second], f"exit {code}:\n{log.read_text()[-3000:]}"
    print(f"\ngateway: a second {second.name} during the drain: exit {code} in {took:.2f} s")
