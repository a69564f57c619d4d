"""End-to-end figures: Publisher -> Kafka -> Subscriber, against raw aiokafka in the same run.

    python -m bench.pubsub [--bootstrap B] [--count N] [--repeats K] [--seconds S]
                           [--only NAME ...] [--envelope-version 1|2] [--quick]
                           [--json FILE] [--chart FILE]

Without ``--bootstrap`` a 1-node embedded Kafka is started in a temporary directory and
stopped at the end. Each **variation** (report size, recipients, partitions; see
:data:`VARIATIONS`) gets its own throw-away federation (customs sends; anf and
``recipients - 1`` more agencies granted narcotics in PK, so an envelope carries
``recipients + 1`` keys: the sender keeps one), a fresh report topic with the variation's
partition count (one PK subdivision per variation), and four fresh OS processes (spawned):
a fusionbus ``Publisher`` and ``Subscriber`` and a raw aiokafka producer and consumer
(``acks=all``, idempotence, the same client settings, a fresh topic with the same topic
settings and partitions, values as large as a sealed envelope, no headers).

Per variation:

1. **Warm-up**: each pair sends ``--warmup`` records and waits until they all arrived.
2. **Throughput**, ``--repeats`` rounds, fusionbus and raw alternating: ``--count`` copies of
   the report (fresh ids) sent in batches of ``--batch`` (``publish_many``; raw: the same
   batches of ``send``). end to end = N / (first send -> last handled). ``ratio`` =
   fusionbus / raw end-to-end rate per round; the median is the headline. CPU seconds per
   1,000 reports are measured in each process (publisher: first send to last ack;
   consumer: end of its previous stage to last handled, so fetching is included) and
   drift far less than rates on a shared machine.
   Every record carries its batch's send time, so the rounds also give the
   **latency at saturation** (send -> handler, all rounds pooled).
3. **Latency at offered rates** (``--rates``, first variation only unless ``--all-rates``):
   one ``publish()`` (raw: ``send``) per tick for ``--seconds``, the send time stamped just
   before; the handler records wall clock minus it (one host, one clock).

Peak RSS is each process's ``ru_maxrss`` at its end. Output: a table on the terminal, and
optionally ``--json`` and a PNG ``--chart`` (matplotlib). Figures are medians over the
rounds. The machine may be shared: compare ratios rather than absolute rates across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import queue
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.context import SpawnProcess
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench._pubsub_output import render, summary, write_chart
from bench._pubsub_roles import Event, RoleConfig, Stage, child_main, template_report
from broker.config import KafkaSettings
from broker.envelope import Sealer, seal_report
from broker.federation import DisseminationPolicy, Federation
from broker.kafka import EmbeddedKafka
from broker.logs import configure_logging
from broker.provisioning.topics import ensure_topics
from broker.topics import report_topic

STALL_SECONDS = 120.0


class BenchError(RuntimeError):
    """The benchmark could not produce figures (a process failed or stalled)."""


@dataclass(frozen=True)
class Variation:
    name: str
    report_bytes: int
    recipients: int
    partitions: int
    jurisdiction: str


VARIATIONS = (
    Variation("1KB-3r-3p", 1024, 3, 3, "PK-SD"),
    Variation("16KB-3r-3p", 16384, 3, 3, "PK-PB"),
    Variation("1KB-1r-3p", 1024, 1, 3, "PK-KP"),
    Variation("1KB-10r-3p", 1024, 10, 3, "PK-BA"),
    Variation("1KB-3r-1p", 1024, 3, 1, "PK-IS"),
)
"""One factor at a time around the first (the target case: 1 KB, 3 recipients, 3 partitions)."""


@dataclass(frozen=True)
class Options:
    count: int = 10_000
    repeats: int = 3
    warmup: int = 1_000
    batch: int = 500
    rates: tuple[float, ...] = (500.0, 2000.0)
    seconds: float = 10.0
    all_rates: bool = False
    envelope_version: int = 2


QUICK = Options(count=300, repeats=1, warmup=50, seconds=1.0)


@dataclass
class Measured:
    """What the processes of one system reported for one variation."""

    rounds: list[tuple[dict[str, Any], dict[str, Any]]]
    paced: dict[float, tuple[dict[str, Any], dict[str, Any]]]
    ends: dict[str, dict[str, Any]]


# -- set-up ---------------------------------------------------------------------------------


def _own_kafka(stack: contextlib.ExitStack, *, name: str = "bench.pubsub") -> str:
    data = Path(tempfile.mkdtemp(prefix="fusionbus-bench-kafka-"))
    stack.callback(shutil.rmtree, data, ignore_errors=True)
    cluster = EmbeddedKafka(data, nodes=1, port=0)
    stack.callback(cluster.stop)
    print(f"[{name}] starting the embedded Kafka (1 node)", file=sys.stderr, flush=True)
    return cluster.start().bootstrap


def _federation(home: Path, recipients: int) -> Federation:
    """customs sends; anf and ``recipients - 1`` others may read narcotics in PK."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    federation = Federation.init(home, now=now)
    federation.add_agency("customs", "Pakistan Customs", now=now)
    readers = ["anf", *(f"agency{k:02d}" for k in range(1, recipients))]
    for agency in readers:
        federation.add_agency(agency, f"Reader {agency}", now=now)
        federation.grant(agency, categories=["narcotics"], jurisdictions=["PK"], now=now)
    return federation


def _sizes(federation: Federation, variation: Variation, version: int) -> tuple[int, int, int]:
    """Bytes of one report's JSON, of its sealed envelope, and the envelope's key count."""
    report = template_report(variation.jurisdiction, variation.report_bytes)
    directory = federation.snapshot
    kids = DisseminationPolicy(directory).recipients(report, datetime.now(UTC))
    sealer = Sealer(federation.identity("customs"), directory, clock=_utcnow, version=version)
    return len(report.model_dump_json()), len(seal_report(sealer, report, kids)), len(kids)


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
    def __init__(self, events: Queue[Event], progress: Progress, task: Any) -> None:
        self.events = events
        self._seen: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._progress = progress
        self._task = task
        self._done_before = 0
        self.pairs: Sequence[_Pair] = ()

    def stage(self, pair: _Pair, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start stage ``index`` of ``pair``; return (publisher, consumer) figures."""
        pair.commands.put(index)
        pub, sub = (f"{pair.name}-pub", "pub", index), (f"{pair.name}-sub", "sub", index)
        while pub not in self._seen or sub not in self._seen:
            self.wait()
        return self._seen.pop(pub), self._seen.pop(sub)

    def wait(self, *, timeout: float = 0.25) -> None:
        """Take one event (or time out quietly); raise if a process failed or stalled."""
        deadline = time.monotonic() + STALL_SECONDS
        while True:
            handled = sum(pair.handled.value for pair in self.pairs)
            self._progress.update(self._task, completed=self._done_before + handled)
            try:
                name, kind, index, figures = self.events.get(timeout=timeout)
            except queue.Empty:
                for proc in (p for pair in self.pairs for p in pair.procs):
                    if proc.exitcode not in (None, 0):
                        raise BenchError(f"{proc.name} exited with {proc.exitcode}") from None
                if time.monotonic() < deadline:
                    continue
                raise BenchError(f"no progress for {STALL_SECONDS:.0f} s") from None
            if kind == "error":
                raise BenchError(f"{name} failed:\n{figures['traceback']}")
            self._seen[(name, kind, index)] = figures
            return

    def final(self, name: str) -> dict[str, Any]:
        while (name, "end", -1) not in self._seen:
            self.wait()
        return self._seen.pop((name, "end", -1))

    def finish_pairs(self) -> None:
        self._done_before += sum(pair.handled.value for pair in self.pairs)
        self.pairs = ()


def _stages(options: Options, paced: bool) -> tuple[tuple[Stage, ...], tuple[float, ...]]:
    rates = options.rates if paced else ()
    bursts = (Stage(options.warmup),) + (Stage(options.count),) * options.repeats
    return bursts + tuple(Stage(max(1, round(r * options.seconds)), r) for r in rates), rates


def records_per_variation(options: Options, paced: bool) -> int:
    stages, _ = _stages(options, paced)
    return 2 * sum(stage.count for stage in stages)


def run_variation(
    bootstrap: str, variation: Variation, options: Options, paced: bool, runner: _Runner
) -> dict[str, Any]:
    """Measure one variation; its figures as :func:`summary` reads them."""
    settings = KafkaSettings(bootstrap=bootstrap)
    run_id = uuid.uuid4().hex[:10]
    raw_topic = f"bench.raw.{run_id}"
    since = datetime.now(UTC) - timedelta(seconds=1)
    stages, rates = _stages(options, paced)
    with tempfile.TemporaryDirectory(prefix="fusionbus-bench-home-") as home:
        federation = _federation(Path(home), variation.recipients)
        report_bytes, envelope_bytes, keys = _sizes(federation, variation, options.envelope_version)
        topics = [report_topic("customs", variation.jurisdiction, "narcotics"), raw_topic]
        asyncio.run(ensure_topics(settings, topics, partitions=variation.partitions))
        base = RoleConfig(
            "", "raw-pub", bootstrap, stages, options.batch, home=home,
            jurisdiction=variation.jurisdiction, report_bytes=variation.report_bytes,
            envelope_version=options.envelope_version,
        )  # fmt: skip
        events = runner.events
        fb = _Pair(
            "fusionbus",
            (
                replace(base, name="fusionbus-pub", role="fusionbus-pub"),
                replace(
                    base, name="fusionbus-sub", role="fusionbus-sub",
                    group_id=f"fusionbus.anf.bench-{run_id}", since=since,
                ),
            ),
            events,
        )  # fmt: skip
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
        measured = {"fusionbus": Measured([], {}, {}), "raw": Measured([], {}, {})}
        pairs = (fb, raw)
        runner.pairs = pairs
        wait = 0.0  # on an error or Ctrl-C, terminate the processes at once
        try:
            for pair in pairs:
                pair.start()
            for pair in pairs:
                runner.stage(pair, 0)
            for index in range(1, options.repeats + 1):
                for pair in pairs:
                    measured[pair.name].rounds.append(runner.stage(pair, index))
            for k, rate in enumerate(rates):
                for pair in pairs:
                    measured[pair.name].paced[rate] = runner.stage(pair, options.repeats + 1 + k)
            for pair in pairs:
                for proc in pair.procs:
                    measured[pair.name].ends[proc.name.rsplit("-", 1)[1]] = runner.final(proc.name)
            quarantined = measured["fusionbus"].ends["sub"]["quarantined"]
            if quarantined:
                raise BenchError(f"the subscriber quarantined {quarantined} reports")
            wait = 10.0
        finally:
            for pair in pairs:
                pair.stop(wait=wait)
            runner.finish_pairs()
    return {
        "variation": vars(variation),
        "report_bytes": report_bytes,
        "envelope_bytes": envelope_bytes,
        "envelope_keys": keys,
        "measured": measured,
    }


def run(bootstrap: str, options: Options, variations: Sequence[Variation]) -> list[dict[str, Any]]:
    plan = [(v, options.all_rates or k == 0) for k, v in enumerate(variations)]
    total = sum(records_per_variation(options, paced) for _, paced in plan)
    results = []
    with _progress_bar() as progress:
        task = progress.add_task("records handled", total=total)
        runner = _Runner(multiprocessing.get_context("spawn").Queue(), progress, task)
        for variation, paced in plan:
            progress.update(task, description=variation.name)
            results.append(run_variation(bootstrap, variation, options, paced, runner))
    return results


@contextlib.contextmanager
def _progress_bar() -> Iterator[Progress]:
    columns = (
        TextColumn("[bench.pubsub] {task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        yield progress


def _variations(names: Sequence[str] | None) -> list[Variation]:
    if not names:
        return list(VARIATIONS)
    known = {v.name: v for v in VARIATIONS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"bench.pubsub: unknown variation(s) {unknown}; known: {list(known)}")
    return [known[name] for name in names]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--count", type=int, help="reports per throughput round [10000]")
    parser.add_argument("--repeats", type=int, help="throughput rounds per system [3]")
    parser.add_argument("--warmup", type=int, help="warm-up records per system [1000]")
    parser.add_argument("--batch", type=int, help="reports per publish_many call [500]")
    parser.add_argument(
        "--rates", type=float, nargs="+", help="offered rates of the latency phase [500 2000]"
    )
    parser.add_argument("--seconds", type=float, help="length of each latency phase [10]")
    parser.add_argument(
        "--all-rates", action="store_true", help="latency phases in every variation"
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"variations [{' '.join(v.name for v in VARIATIONS)}]",
    )
    parser.add_argument(
        "--envelope-version", type=int, choices=(1, 2), default=2,
        help="the envelope format fusionbus publishes [2; 1 gives the figures before batches]",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a smoke run: small N, short phases")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--chart", type=Path, metavar="FILE", help="also draw a PNG chart here")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    chosen = {
        name: getattr(args, name)
        for name in ("count", "repeats", "warmup", "batch", "seconds")
        if getattr(args, name) is not None
    }
    if args.rates:
        chosen["rates"] = tuple(args.rates)
    if any(
        value <= 0
        for value in (*chosen.values(), *chosen.get("rates", ()))
        if not isinstance(value, tuple)
    ):
        parser.error("--count, --repeats, --warmup, --batch, --rates and --seconds must be > 0")
    options = replace(
        options, all_rates=args.all_rates, envelope_version=args.envelope_version, **chosen
    )
    variations = _variations(args.only)
    configure_logging("WARNING")
    started = time.monotonic()
    try:
        with contextlib.ExitStack() as stack:
            bootstrap = args.bootstrap or _own_kafka(stack)
            figures = summary(options, run(bootstrap, options, variations))
    except BenchError as exc:
        print(f"bench.pubsub: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench.pubsub: interrupted; Kafka and the processes were stopped", file=sys.stderr)
        return 130
    figures["seconds"] = round(time.monotonic() - started, 1)
    print(render(figures))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    if args.chart is not None:
        write_chart(figures, args.chart)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
