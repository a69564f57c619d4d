"""Gateway figures: HTTP ingest against the Python ``Publisher``, and SSE fan-out, in one run.

    python -m bench.gateway [--bootstrap B] [--count N] [--singles N] [--repeats K]
                            [--batch B] [--concurrency C] [--clients M] [--reports R]
                            [--rate X] [--bursts J] [--paced-reports R] [--paced-rate X]
                            [--quick]

Without ``--bootstrap`` a 1-node embedded Kafka is started in a temporary directory and
stopped at the end. One throw-away home (:mod:`bench._gateway_site`): a sender, three
readers (narcotics in PK-SD) and a feed agency (cash smuggling in PK-GB). Each gateway is
``fusionbus gateway`` in its own process, so its CPU time and resident set are its own.

1. **Ingest** (the sender's gateway). ``--repeats`` rounds, after ``--warmup`` reports per
   path, of 1 KB reports (fresh ids, three recipients), every one of which must come back
   ``published`` (Kafka acknowledged it; a 202 over HTTP). Batched: ``--count`` reports
   through ``Publisher.publish_many`` in this process in batches of ``--batch``, one batch
   at a time, then the same batches as ``POST /v1/reports:batch``, one request at a time.
   One report per call: ``--singles`` reports through ``publish_many([report])`` from
   ``--concurrency`` tasks, then as ``POST /v1/reports`` from as many HTTP clients.
   reports/s = N / (first send -> last answer); *vs Publisher* is each round's HTTP rate
   over the Publisher's rate with the same batching in that round, median shown. CPU ms per
   report: the gateway process (``/proc/<pid>/stat``), and this process (the Publisher, or
   the HTTP clients).
2. **SSE fan-out** (the feed agency's gateway). ``--clients`` readers of ``GET /v1/feed`` in
   one other process (:mod:`bench._gateway_feed`). After a 20-report warm-up, ``--bursts``
   bursts of ``--reports`` reports published to the feed agency by the ``Publisher`` at
   ``--rate`` reports/s (0: as fast as it goes: latency is then queueing), and a paced
   phase of ``--paced-reports`` at ``--paced-rate`` (latency at a rate the gateway keeps
   up with). Per phase: reports the readers got, ids missing or received twice (by message
   id), reconnects (a reader that fell behind is told to reconnect and catches up from the
   store), events/s (reader deliveries over first publish -> last delivery), delivery
   latency (the report's ``created_at`` -> a reader parsed its event), and the gateway's
   and the readers' CPU per delivered event. The gateway's ``VmRSS`` is read before any
   reader connects, with every reader idle, every 0.2 s during each phase (its peak) and
   after each: equal bursts show whether memory grows with the number of reports.

The machine may be shared: compare the ratios, not absolute rates, across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import queue
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import httpx

from bench._gateway_feed import FeedEvent, feed_main
from bench._gateway_ingest import REPORT_BYTES, measure_ingest
from bench._gateway_output import render
from bench._gateway_site import (
    FEED,
    BenchError,
    GatewayProcess,
    Site,
    build_site,
    create_token,
    note,
    wait_ready,
)
from bench.pubsub import _own_kafka
from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy, Federation
from broker.logs import configure_logging
from producers import Publisher
from schemas import Report

FEED_WARMUP = 20
STALL_SECONDS = 180.0


@dataclass(frozen=True)
class Options:
    count: int = 2_000
    singles: int = 400
    repeats: int = 3
    warmup: int = 100
    batch: int = 50
    concurrency: int = 4
    clients: int = 100
    reports: int = 1_000
    rate: float = 0.0
    bursts: int = 2
    paced_reports: int = 200
    paced_rate: float = 10.0


QUICK = Options(
    count=100, singles=20, repeats=1, warmup=20, clients=10, reports=50, paced_reports=20,
    paced_rate=20.0,
)  # fmt: skip


@dataclass
class Measured:
    """What a run measured; :func:`bench._gateway_output.render` prints it."""

    options: Options
    ingest: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    bursts: list[dict[str, Any]] = field(default_factory=list)
    rss: list[tuple[str, float]] = field(default_factory=list)
    ingest_rss_mb: float = 0.0


# -- SSE fan-out ----------------------------------------------------------------------------


class _Feeds:
    """The feed-client process and its two queues."""

    def __init__(self, url: str, token: str, clients: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.commands: Queue[tuple[Any, ...]] = ctx.Queue()
        self.events: Queue[FeedEvent] = ctx.Queue()
        self.process: SpawnProcess = ctx.Process(
            target=feed_main,
            args=(url, token, clients, self.commands, self.events),
            name="feed-clients",
            daemon=True,
        )
        self.process.start()

    def _take(self, kind: str) -> dict[str, Any]:
        deadline = time.monotonic() + STALL_SECONDS
        while True:
            try:
                got, _, figures = self.events.get(timeout=0.5)
            except queue.Empty:
                if self.process.exitcode not in (None, 0):
                    raise BenchError(
                        f"the feed clients exited with {self.process.exitcode}"
                    ) from None
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"no {kind} from the feed clients in {STALL_SECONDS:.0f} s"
                    ) from None
                continue
            if got == "error":
                raise BenchError(f"the feed clients failed:\n{figures['traceback']}")
            if got == kind:
                return figures

    async def take(self, kind: str) -> dict[str, Any]:
        return await asyncio.to_thread(self._take, kind)

    def stop(self) -> None:
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)


async def _publish_feed(
    publisher: Publisher, template: Report, count: int, rate: float
) -> list[str]:
    """``count`` reports, each stamped just before it is sent; their message ids."""
    ids: list[str] = []
    sends: list[asyncio.Task[list[Any]]] = []
    size = max(1, round(rate * 0.05)) if rate > 0 else 500  # a batch every ~50 ms
    tick = size / rate if rate > 0 else 0.0
    first = time.monotonic()
    for k, start in enumerate(range(0, count, size)):
        delay = first + k * tick - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = datetime.now(UTC)
        batch = [
            template.model_copy(update={"message_id": uuid.uuid4(), "created_at": now})
            for _ in range(min(size, count - start))
        ]
        ids += [str(report.message_id) for report in batch]
        sends.append(asyncio.create_task(publisher.publish_many(batch)))
        if rate <= 0:
            await sends[-1]
    results = [result for done in await asyncio.gather(*sends) for result in done]
    failed = sum(isinstance(result, Exception) for result in results)
    if failed:
        raise BenchError(f"{failed} fan-out reports were not published")
    return ids


async def _sample_peak(gateway: GatewayProcess, peak: list[float]) -> None:
    while True:
        peak[0] = max(peak[0], gateway.rss_mb())
        await asyncio.sleep(0.2)


async def _burst(
    feeds: _Feeds, publisher: Publisher, gateway: GatewayProcess, template: Report,
    *, burst: int, count: int, rate: float,
) -> dict[str, Any]:  # fmt: skip
    peak = [gateway.rss_mb()]
    sampler = asyncio.create_task(_sample_peak(gateway, peak))
    cpu, started = gateway.cpu_s(), time.monotonic()
    try:
        ids = await _publish_feed(publisher, template, count, rate)
        published = time.monotonic()
        feeds.commands.put(("burst", burst, ids, STALL_SECONDS - 10))
        figures = await feeds.take("burst")
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    events = figures["clients"] * count
    figures |= {
        "burst": burst,
        "publish_s": published - started,
        "deliver_s": figures["last_at"] - started,
        "gateway_cpu_us": (gateway.cpu_s() - cpu) * 1e6 / events,
        "peak_rss_mb": peak[0],
    }
    if figures["missing"] or figures["duplicates"]:
        raise BenchError(
            f"burst {burst}: {figures['missing']} reports missing and {figures['duplicates']} "
            "received twice across the readers"
        )
    return figures


async def _fanout(site: Site, bootstrap: str, token: str, measured: Measured) -> None:
    options = measured.options
    federation = Federation.load(site.home)
    directory = federation.snapshot
    template = site.template(FEED, REPORT_BYTES)
    gateway = GatewayProcess(site.home, site.receiver, site.home / "gateway-feed.log")
    feeds: _Feeds | None = None
    try:
        async with (
            Publisher(
                federation.identity(site.sender), directory, DisseminationPolicy(directory),
                KafkaSettings(bootstrap=bootstrap),
            ) as publisher,
            httpx.AsyncClient(timeout=30) as http,
        ):  # fmt: skip
            await wait_ready(http, gateway)
            await asyncio.sleep(1.0)
            measured.rss.append(("ready, no feed clients", gateway.rss_mb()))
            feeds = _Feeds(gateway.url, token, options.clients)
            await feeds.take("connected")
            await asyncio.sleep(2.0)
            stats = (await http.get(f"{gateway.url}/v1/stats", headers=_bearer(token))).json()
            if stats["feed_clients"] != options.clients:
                raise BenchError(f"the gateway counts {stats['feed_clients']} feed clients")
            measured.rss.append((f"{options.clients} clients connected, idle", gateway.rss_mb()))
            warm = await _burst(
                feeds, publisher, gateway, template, burst=0, count=FEED_WARMUP, rate=0.0
            )
            measured.bursts.append(warm)
            for burst in range(1, options.bursts + 1):
                figures = await _burst(
                    feeds,
                    publisher,
                    gateway,
                    template,
                    burst=burst,
                    count=options.reports,
                    rate=options.rate,
                )
                measured.bursts.append(figures)
                await asyncio.sleep(1.0)
                measured.rss.append((f"after burst {burst}", gateway.rss_mb()))
                note(f"fan-out burst {burst}: {figures['received']:,} reports delivered")
            paced = await _burst(
                feeds, publisher, gateway, template,
                burst=options.bursts + 1, count=options.paced_reports, rate=options.paced_rate,
            )  # fmt: skip
            measured.bursts.append(paced | {"paced": True})
            measured.rss.append(("after the paced phase", gateway.rss_mb()))
            feeds.commands.put(("stop",))
            await feeds.take("end")
            await asyncio.sleep(1.0)
            measured.rss.append(("clients gone", gateway.rss_mb()))
    finally:
        if feeds is not None:
            feeds.stop()
        gateway.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- command line ---------------------------------------------------------------------------


def run(bootstrap: str, options: Options) -> Measured:
    measured = Measured(options)
    with tempfile.TemporaryDirectory(prefix="fusionbus-bench-gateway-") as home:
        site = build_site(Path(home), bootstrap)
        system = create_token(site.home, site.sender, "system")
        viewer = create_token(site.home, site.receiver, "viewer")
        measured.ingest, measured.ingest_rss_mb = asyncio.run(
            measure_ingest(site, bootstrap, system, options)
        )
        asyncio.run(_fanout(site, bootstrap, viewer, measured))
    return measured


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    helps = {
        "count": "reports per ingest round, batched paths",
        "singles": "reports per ingest round, one-report paths",
        "repeats": "ingest rounds",
        "warmup": "warm-up reports per ingest path",
        "batch": "reports per publish_many call and per batch POST",
        "concurrency": "clients sending single POSTs",
        "clients": "concurrent feed readers",
        "reports": "reports per fan-out burst",
        "rate": "offered rate of the fan-out bursts, reports/s (0: as fast as it goes)",
        "bursts": "fan-out bursts",
        "paced_reports": "reports of the paced fan-out phase (latency)",
        "paced_rate": "offered rate of the paced phase, reports/s",
    }
    defaults = Options()
    for option in fields(Options):
        kind = float if option.name.endswith("rate") else int
        parser.add_argument(
            f"--{option.name.replace('_', '-')}",
            type=kind,
            help=f"{helps[option.name]} [{getattr(defaults, option.name)}]",
        )
    parser.add_argument("--quick", action="store_true", help="a smoke run: small counts")
    args = parser.parse_args(argv)
    chosen = {
        o.name: getattr(args, o.name) for o in fields(Options) if getattr(args, o.name) is not None
    }
    if any(value < 0 if name == "rate" else value <= 0 for name, value in chosen.items()):
        parser.error("every count and --paced-rate must be > 0, and --rate >= 0")
    options = replace(QUICK if args.quick else defaults, **chosen)
    configure_logging("WARNING")
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            bootstrap = args.bootstrap or _own_kafka(stack, name="bench.gateway")
            measured = run(bootstrap, options)
    except BenchError as exc:
        print(f"bench.gateway: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.gateway: interrupted; Kafka and the processes were stopped", file=sys.stderr)
        return 130
    print(render(measured, seconds=time.monotonic() - started))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
