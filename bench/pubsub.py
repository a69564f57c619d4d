"""End-to-end figures: Publisher -> Kafka -> Subscriber, against raw aiokafka in the same run.

    python -m bench.pubsub [--bootstrap B] [--count N] [--rate R] [--seconds S]
                           [--repeats K] [--quick] [--json FILE]

Without ``--bootstrap`` a 1-node embedded Kafka is started in a temporary directory and
stopped at the end. A throw-away federation (customs, anf, fia; anf granted narcotics in
PK) lives in another temporary directory. Four OS processes (spawned): a fusionbus
``Publisher`` (customs) and ``Subscriber`` (anf, own consumer group), and a raw aiokafka
producer and consumer (``acks=all``, idempotence, the same client settings, a fresh topic
with the same topic settings, values as large as a sealed report, no headers).

1. **Warm-up**: each pair sends ``--warmup`` records and waits until they all arrived.
2. **Throughput**, ``--repeats`` rounds, fusionbus and raw alternating: ``--count``
   copies of ``schemas.example_report("narcotics", "PKKHI")`` (fresh ids) sealed and sent
   with ``publish_many`` in batches of ``--batch`` (raw: the same batches of ``send``);
   the consumer counts what it handles. end to end = N / (first send -> last handled);
   publisher = N / (first send -> last ack); subscriber = N / (first -> last handled).
   ``ratio`` = fusionbus / raw end-to-end rate, per round; the median is the headline.
   Each process also measures its CPU time per report (publisher: first send to last ack;
   consumer: first to last handled); CPU cost drifts far less than rates when other work
   competes for the cores, so ``CPU fusionbus/raw`` is the steadier comparison.
3. **Latency**: ``publish()`` per report on a ``--rate`` schedule for ``--seconds``, the
   report's ``created_at`` stamped just before; the subscriber's handler records wall
   clock minus ``created_at`` (one host, one clock).

Figures are medians over the rounds (min and max beside). The machine may be shared:
compare the ratio rather than absolute rates across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import platform
import queue
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import orjson

from bench._pubsub_roles import Event, RoleConfig, Stage, child_main, template_report
from broker.admin import ensure_topics
from broker.config import KafkaSettings
from broker.envelope import Sealer, seal_report
from broker.federation import Federation
from broker.kafka import EmbeddedKafka
from broker.logs import configure_logging
from broker.topics import report_topic
from fusionbus.cli._common import recipient_policy

STALL_SECONDS = 120.0


class BenchError(RuntimeError):
    """The benchmark could not produce figures (a process failed or stalled)."""


@dataclass(frozen=True)
class Options:
    count: int = 20_000
    repeats: int = 3
    warmup: int = 1_000
    batch: int = 500
    rate: float = 500.0
    seconds: float = 20.0


QUICK = Options(count=1_000, repeats=1, warmup=100, seconds=3.0)


@dataclass
class Round:
    e2e: float
    pub: float
    sub: float
    pub_cpu_us: float
    sub_cpu_us: float


@dataclass
class Results:
    options: Options
    report_bytes: int
    envelope_bytes: int
    fusionbus: list[Round] = field(default_factory=list)
    raw: list[Round] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    latency_rate: float = 0.0
    behind_max_ms: float = 0.0
    quarantined: int = 0


# -- set-up ---------------------------------------------------------------------------------


def _own_kafka(stack: contextlib.ExitStack) -> str:
    data = Path(tempfile.mkdtemp(prefix="fusionbus-bench-kafka-"))
    stack.callback(shutil.rmtree, data, ignore_errors=True)
    cluster = EmbeddedKafka(data, nodes=1, port=0)
    stack.callback(cluster.stop)
    _progress("starting the embedded Kafka (1 node)")
    return cluster.start().bootstrap


def _federation(home: Path) -> Federation:
    now = datetime.now(UTC) - timedelta(minutes=5)
    federation = Federation.init(home, now=now)
    federation.add_agency("customs", "Pakistan Customs", now=now)
    federation.add_agency("anf", "Anti Narcotics Force", now=now)
    federation.add_agency("fia", "Federal Investigation Agency", now=now)
    federation.grant("anf", categories=["narcotics"], jurisdictions=["PK"], now=now)
    return federation


def _sizes(federation: Federation) -> tuple[int, int]:
    """Bytes of one report's JSON and of its sealed envelope."""
    report = template_report()
    kids = recipient_policy(federation)(report, datetime.now(UTC))
    sealer = Sealer(federation.identity("customs"), federation.trust_store(), clock=_utcnow)
    return len(report.model_dump_json()), len(seal_report(sealer, report, kids))


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _progress(message: str) -> None:
    print(f"[bench.pubsub] {message}", file=sys.stderr, flush=True)


# -- the processes --------------------------------------------------------------------------


class _Pair:
    """A publisher process and a consumer process working through the same stages."""

    def __init__(
        self, name: str, configs: tuple[RoleConfig, RoleConfig], events: Queue[Event]
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.name = name
        self.commands: Queue[int] = ctx.Queue()
        self.handled: Synchronized[int] = ctx.Value("q", 0, lock=False)
        self.procs: list[SpawnProcess] = [
            ctx.Process(
                target=child_main,
                args=(config, self.commands, events, self.handled),
                name=config.name,
                daemon=True,
            )
            for config in configs
        ]

    def start(self) -> None:
        for proc in self.procs:
            proc.start()

    def stop(self, *, wait: float) -> None:
        """Join the processes, terminating any still running after ``wait`` seconds."""
        for proc in self.procs:
            proc.join(timeout=wait)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


class _Runner:
    def __init__(self, events: Queue[Event]) -> None:
        self._events = events
        self._seen: dict[tuple[str, str, int], dict[str, Any]] = {}

    def stage(
        self, pair: _Pair, index: int, count: int, label: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start stage ``index`` of ``pair``; return (publisher, consumer) figures."""
        pair.commands.put(index)
        pub, sub = (f"{pair.name}-pub", "pub", index), (f"{pair.name}-sub", "sub", index)
        last_note = time.monotonic()
        while pub not in self._seen or sub not in self._seen:
            self.wait([pair])
            if time.monotonic() - last_note >= 2.0:
                last_note = time.monotonic()
                _progress(f"  {label}: {pair.handled.value}/{count} handled")
        return self._seen.pop(pub), self._seen.pop(sub)

    def wait(self, pairs: Sequence[_Pair], *, timeout: float = 1.0) -> None:
        """Take one event (or time out quietly); raise if a process failed or stalled."""
        deadline = time.monotonic() + STALL_SECONDS
        while True:
            try:
                name, kind, index, figures = self._events.get(timeout=timeout)
            except queue.Empty:
                for proc in (p for pair in pairs for p in pair.procs):
                    if proc.exitcode not in (None, 0):
                        raise BenchError(f"{proc.name} exited with {proc.exitcode}") from None
                if time.monotonic() < deadline:
                    return
                raise BenchError(f"no progress for {STALL_SECONDS:.0f} s") from None
            if kind == "error":
                raise BenchError(f"{name} failed:\n{figures['traceback']}")
            self._seen[(name, kind, index)] = figures
            return

    def final(self, name: str, pairs: Sequence[_Pair]) -> dict[str, Any]:
        while (name, "end", -1) not in self._seen:
            self.wait(pairs)
        return self._seen.pop((name, "end", -1))


def _rates(pub: dict[str, Any], sub: dict[str, Any]) -> Round:
    count = sub["count"]
    if pub["errors"]:
        raise BenchError(f"{pub['errors']} of {pub['count']} sends failed")
    return Round(
        e2e=count / (sub["last"] - pub["first"]),
        pub=count / (pub["last"] - pub["first"]),
        sub=count / max(sub["last"] - sub["first"], 1e-9),
        pub_cpu_us=pub["cpu"] / count * 1e6,
        sub_cpu_us=sub["cpu"] / count * 1e6,
    )


def run(bootstrap: str, options: Options) -> Results:
    settings = KafkaSettings(bootstrap=bootstrap)
    run_id = uuid.uuid4().hex[:10]
    raw_topic = f"bench.raw.{run_id}"
    since = datetime.now(UTC) - timedelta(seconds=1)
    with tempfile.TemporaryDirectory(prefix="fusionbus-bench-home-") as home:
        federation = _federation(Path(home))
        report_bytes, envelope_bytes = _sizes(federation)
        results = Results(options, report_bytes, envelope_bytes)
        topics = [report_topic("PKKHI", "narcotics"), raw_topic]
        asyncio.run(ensure_topics(settings, topics, partitions=3))
        bursts = (Stage(options.warmup),) + (Stage(options.count),) * options.repeats
        paced = Stage(max(1, round(options.rate * options.seconds)), options.rate)
        base = RoleConfig("", "raw-pub", bootstrap, bursts, options.batch, home=home)
        ctx = multiprocessing.get_context("spawn")
        events: Queue[Event] = ctx.Queue()
        fb = _Pair(
            "fusionbus",
            (
                replace(base, name="fusionbus-pub", role="fusionbus-pub", stages=(*bursts, paced)),
                replace(
                    base,
                    name="fusionbus-sub",
                    role="fusionbus-sub",
                    stages=(*bursts, paced),
                    group_id=f"fusionbus.anf.bench-{run_id}",
                    since=since,
                ),
            ),
            events,
        )
        raw = _Pair(
            "raw",
            (
                replace(base, name="raw-pub", topic=raw_topic, payload_bytes=envelope_bytes),
                replace(
                    base, name="raw-sub", role="raw-sub", topic=raw_topic,
                    group_id=f"bench.raw.{run_id}",
                ),
            ),
            events,
        )  # fmt: skip
        pairs = (fb, raw)
        wait = 0.0  # on an error or Ctrl-C, terminate the processes at once
        try:
            _progress(f"starting 4 processes (Kafka at {bootstrap})")
            for pair in pairs:
                pair.start()
            runner = _Runner(events)
            for pair in pairs:
                runner.stage(pair, 0, options.warmup, f"{pair.name} warm-up")
            for index in range(1, options.repeats + 1):
                for pair, rounds in ((fb, results.fusionbus), (raw, results.raw)):
                    _progress(f"{pair.name} throughput, round {index}/{options.repeats}")
                    label = f"{pair.name} round {index}"
                    rounds.append(_rates(*runner.stage(pair, index, options.count, label)))
            _progress(f"fusionbus latency: {options.rate:g}/s for {options.seconds:g} s")
            pub, sub = runner.stage(fb, options.repeats + 1, paced.count, "latency")
            if pub["errors"]:
                raise BenchError(f"{pub['errors']} of {pub['count']} paced sends failed")
            results.latencies_ms = sub["latencies_ms"]
            results.latency_rate = paced.count / (pub["last"] - pub["first"])
            results.behind_max_ms = pub["behind_max_ms"]
            results.quarantined = runner.final("fusionbus-sub", pairs)["quarantined"]
            runner.final("raw-sub", pairs)
            if results.quarantined:
                raise BenchError(f"the subscriber quarantined {results.quarantined} reports")
            wait = 10.0
        finally:
            for pair in pairs:
                pair.stop(wait=wait)
    return results


# -- output ---------------------------------------------------------------------------------


def _percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(results: Results) -> dict[str, Any]:
    def spread(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 1),
            "min": round(min(values), 1),
            "max": round(max(values), 1),
        }

    pairs = list(zip(results.fusionbus, results.raw, strict=True))
    ratios = [f.e2e / r.e2e for f, r in pairs]
    cpu_ratios = [(f.pub_cpu_us + f.sub_cpu_us) / (r.pub_cpu_us + r.sub_cpu_us) for f, r in pairs]
    lat = results.latencies_ms
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "options": vars(results.options),
        "report_bytes": results.report_bytes,
        "envelope_bytes": results.envelope_bytes,
        "throughput_per_s": {
            f"{system}_{side}": spread([getattr(r, side) for r in rounds])
            for system, rounds in (("fusionbus", results.fusionbus), ("raw", results.raw))
            for side in ("e2e", "pub", "sub")
        },
        "ratio_e2e": {"median": round(statistics.median(ratios), 3), "rounds": ratios},
        "cpu_us_per_report": {
            f"{system}_{side}": spread([getattr(r, f"{side}_cpu_us") for r in rounds])
            for system, rounds in (("fusionbus", results.fusionbus), ("raw", results.raw))
            for side in ("pub", "sub")
        },
        "cpu_ratio": {"median": round(statistics.median(cpu_ratios), 2), "rounds": cpu_ratios},
        "latency_ms": {
            "offered_per_s": results.options.rate,
            "achieved_per_s": round(results.latency_rate, 1),
            "reports": len(lat),
            "p50": round(_percentile(lat, 50), 2),
            "p95": round(_percentile(lat, 95), 2),
            "p99": round(_percentile(lat, 99), 2),
            "max": round(max(lat), 2),
            "publisher_behind_max_ms": round(results.behind_max_ms, 2),
        },
        "quarantined": results.quarantined,
    }


def render(figures: dict[str, Any]) -> str:
    opts = figures["options"]
    lines = [
        (
            f"# bench.pubsub: 1 publisher + 1 subscriber process; {opts['repeats']} round(s) "
            f"of {opts['count']} reports, batches of {opts['batch']}; report "
            f"{figures['report_bytes']} B, envelope {figures['envelope_bytes']} B; "
            f"{figures['machine']['cpus']} cpus, python {figures['machine']['python']}"
        ),
        f"{'throughput (reports/s)':<28}{'median':>10}{'min':>10}{'max':>10}",
    ]
    names = {"e2e": "end to end", "pub": "publisher", "sub": "subscriber"}
    for key, spread in figures["throughput_per_s"].items():
        system, side = key.rsplit("_", 1)
        title = f"{'fusionbus' if system == 'fusionbus' else 'raw aiokafka'} {names[side]}"
        lines.append(
            f"{title:<28}{spread['median']:>10,.0f}{spread['min']:>10,.0f}{spread['max']:>10,.0f}"
        )
    ratio = figures["ratio_e2e"]
    rounds = ", ".join(f"{r:.3f}" for r in ratio["rounds"])
    lines.append(f"{'ratio fusionbus/raw (e2e)':<28}{ratio['median']:>10.3f}   rounds: {rounds}")
    lines.append(f"{'CPU per report (µs)':<28}{'median':>10}{'min':>10}{'max':>10}")
    for key, spread in figures["cpu_us_per_report"].items():
        system, side = key.rsplit("_", 1)
        title = f"{'fusionbus' if system == 'fusionbus' else 'raw aiokafka'} {names[side]}"
        lines.append(
            f"{title:<28}{spread['median']:>10,.0f}{spread['min']:>10,.0f}{spread['max']:>10,.0f}"
        )
    cpu = figures["cpu_ratio"]
    rounds = ", ".join(f"{r:.1f}" for r in cpu["rounds"])
    lines.append(f"{'CPU fusionbus/raw (pub+sub)':<28}{cpu['median']:>10.1f}   rounds: {rounds}")
    lat = figures["latency_ms"]
    lines += [
        (
            f"latency at {lat['offered_per_s']:g}/s offered ({lat['achieved_per_s']:g}/s "
            f"achieved, {lat['reports']} reports; publisher at most "
            f"{lat['publisher_behind_max_ms']:.1f} ms behind schedule)"
        ),
        f"{'':<28}{'p50':>10}{'p95':>10}{'p99':>10}{'max':>10}",
        (
            f"{'created_at -> handler (ms)':<28}{lat['p50']:>10.2f}{lat['p95']:>10.2f}"
            f"{lat['p99']:>10.2f}{lat['max']:>10.2f}"
        ),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--count", type=int, help="reports per throughput round [20000]")
    parser.add_argument("--repeats", type=int, help="throughput rounds per system [3]")
    parser.add_argument("--warmup", type=int, help="warm-up records per system [1000]")
    parser.add_argument("--batch", type=int, help="reports per publish_many call [500]")
    parser.add_argument("--rate", type=float, help="offered rate of the latency phase [500]")
    parser.add_argument("--seconds", type=float, help="length of the latency phase [20]")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small N, short phase")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    chosen = {
        name: getattr(args, name)
        for name in ("count", "repeats", "warmup", "batch", "rate", "seconds")
        if getattr(args, name) is not None
    }
    if any(value <= 0 for value in chosen.values()):
        parser.error("--count, --repeats, --warmup, --batch, --rate and --seconds must be > 0")
    options = replace(options, **chosen)
    configure_logging("WARNING")
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            bootstrap = args.bootstrap or _own_kafka(stack)
            figures = summary(run(bootstrap, options))
    except BenchError as exc:
        print(f"bench.pubsub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.pubsub: interrupted; Kafka and the processes were stopped", file=sys.stderr)
        return 130
    _progress(f"done in {time.monotonic() - started:.0f} s")
    print(render(figures))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
