"""The world ``bench.gateway`` runs in: a federation, and gateways as operators run them.

:func:`build_site` makes one home with fresh agency ids (so fresh topics on a shared Kafka):
a sender, three readers granted narcotics in Sindh (the ingest reports' recipients, as in
``bench.pubsub``'s target case) and a feed agency granted cash smuggling in Gilgit-Baltistan
(the fan-out reports go to it alone). :class:`GatewayProcess` is ``fusionbus gateway --agency
ID --listen 127.0.0.1:0`` in a subprocess, its CPU time and resident set read from
``/proc/<pid>``; :func:`create_token` is ``fusionbus gateway token create``.
"""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx

from bench._pubsub_roles import sized_report
from broker.config import KafkaSettings
from broker.federation import Federation
from broker.home import write_config
from broker.provisioning.topics import ensure_topics
from broker.topics import report_topic
from schemas import Report, example_report

__all__ = [
    "FEED",
    "INGEST",
    "BenchError",
    "GatewayProcess",
    "Site",
    "build_site",
    "create_token",
    "note",
    "wait_ready",
]

CLI = [sys.executable, "-m", "fusionbus"]
INGEST = ("narcotics", "PK-SD")
"""Category and area of the ingest reports (three recipients)."""
FEED = ("cash_smuggling", "PK-GB")
"""Category and area of the fan-out reports (the feed agency alone)."""
_TICK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark could not produce figures (a process failed, stalled or lost reports)."""


def note(text: str) -> None:
    """A progress line on stderr."""
    print(f"[bench.gateway] {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Site:
    home: Path
    sender: str
    receiver: str

    def template(self, kind: tuple[str, str], size: int) -> Report:
        """A ``size``-byte report of ``kind`` (category, area) from the sender."""
        example = example_report(*kind)
        handling = example.handling.model_copy(update={"named_recipients": ()})  # no demo ids
        report = example.model_copy(update={"sender": self.sender, "handling": handling})
        return sized_report(report, size)


def build_site(home: Path, bootstrap: str, *, partitions: int = 3) -> Site:
    tag = uuid.uuid4().hex[:6]
    site = Site(home, f"bsend{tag}", f"bfeed{tag}")
    now = datetime.now(UTC) - timedelta(minutes=5)
    federation = Federation.init(home, now=now)
    federation.add_agency(site.sender, "Benchmark sender", now=now)
    for k in range(3):
        reader = f"bread{k}{tag}"
        federation.add_agency(reader, f"Benchmark reader {k}", now=now)
        federation.grant(reader, categories=[INGEST[0]], jurisdictions=[INGEST[1]], now=now)
    federation.add_agency(site.receiver, "Benchmark feed agency", now=now)
    federation.grant(site.receiver, categories=[FEED[0]], jurisdictions=[FEED[1]], now=now)
    write_config(home, bootstrap, secure=False, by="bench/gateway.py")
    topics = [report_topic(site.sender, area, category) for category, area in (INGEST, FEED)]
    asyncio.run(ensure_topics(KafkaSettings(bootstrap=bootstrap), topics, partitions=partitions))
    return site


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FUSIONBUS_")}


def create_token(home: Path, agency: str, role: str) -> str:
    """``fusionbus gateway token create``; the token (its last line of output)."""
    done = subprocess.run(
        [*CLI, "gateway", "token", "create", "--agency", agency, "--role", role,
         "--home", str(home)],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"token create for {agency} failed:\n{done.stderr[-2000:]}")
    return done.stdout.splitlines()[-1]


class GatewayProcess:
    """One agency's ``fusionbus gateway`` subprocess, logging to ``log``."""

    def __init__(self, home: Path, agency: str, log: Path) -> None:
        self.log = log
        self._err: IO[str] = log.open("w")
        self.process = subprocess.Popen(
            [*CLI, "gateway", "--agency", agency, "--home", str(home), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self._err, text=True, env=_env(),
        )  # fmt: skip
        self.url = self._await_url(agency)

    def _await_url(self, agency: str) -> str:
        stdout = self.process.stdout
        assert stdout is not None  # noqa: S101 - Popen(stdout=PIPE)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            ready, _, _ = select.select([stdout], [], [], 0.5)
            if ready:
                line = stdout.readline()
                if line.startswith("http://"):
                    return line.strip()
                if not line:
                    break
        self.stop()
        raise BenchError(f"the gateway of {agency} did not start:\n{self.tail()}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_s(self) -> float:
        """User + system CPU seconds the gateway process used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK

    def rss_mb(self) -> float:
        """The gateway process's resident set now (VmRSS)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def tail(self) -> str:
        self._err.flush()
        return self.log.read_text()[-3000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._err.close()


async def wait_ready(client: httpx.AsyncClient, gateway: GatewayProcess) -> None:
    """Until ``GET /readyz`` answers 200 (publisher and subscriber running)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            break
        with_status = await client.get(f"{gateway.url}/readyz")
        if with_status.status_code == 200:
            return
        await asyncio.sleep(0.2)
    raise BenchError(f"the gateway at {gateway.url} never became ready:\n{gateway.tail()}")
