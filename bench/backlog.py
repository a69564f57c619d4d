"""Does the subscriber's memory stay flat while it drains a large backlog?

    python -m bench.backlog [--bootstrap B] [--reports N] [--delivered memory|sqlite]

Publishes ``--reports`` 1 KB reports (3 recipients) to a fresh 3-partition topic first,
then starts a ``Subscriber`` in a fresh process (spawned) and samples its resident set
(``VmRSS``) every ``N / 20`` handled reports while it drains the backlog. The subscriber
fetches with its production settings (``getmany(max_records=500)``, aiokafka's default
fetch sizes), so Kafka-side buffering is bounded; what can grow is the delivered-id store:
``memory`` keeps one entry per report until it expires (the library default), ``sqlite``
keeps them on disk (what ``fusionbus fusionbus tail --group`` uses).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._pubsub_roles import template_report
from bench.pubsub import VARIATIONS, _federation, _own_kafka
from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy, Federation
from broker.logs import configure_logging
from broker.provisioning.topics import ensure_topics
from broker.topics import report_topic
from consumers import Delivery, Subscriber
from consumers.delivered import Delivered, MemoryDelivered, SqliteDelivered
from producers import Publisher

BASE = VARIATIONS[0]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _publish(home: Path, bootstrap: str, count: int) -> float:
    federation = Federation.load(home)
    template = template_report(BASE.jurisdiction, BASE.report_bytes)
    settings = KafkaSettings(bootstrap=bootstrap)
    started = time.monotonic()
    directory = federation.snapshot
    async with Publisher(
        federation.identity("customs"), directory, DisseminationPolicy(directory), settings
    ) as publisher:
        for start in range(0, count, 500):
            now = datetime.now(UTC)
            batch = [
                template.model_copy(update={"message_id": uuid.uuid4(), "created_at": now})
                for _ in range(min(500, count - start))
            ]
            results = await publisher.publish_many(batch)
            if any(isinstance(result, Exception) for result in results):
                raise RuntimeError("a publish failed")
    return time.monotonic() - started


def _drain(home: str, bootstrap: str, count: int, *, store: str, since: datetime, out: Any) -> None:
    configure_logging("WARNING")
    federation = Federation.load(Path(home))
    delivered: Delivered = (
        SqliteDelivered(Path(home) / "delivered.sqlite") if store == "sqlite" else MemoryDelivered()
    )
    subscriber = Subscriber(
        federation.identity("anf"), federation.snapshot, KafkaSettings(bootstrap=bootstrap),
        categories=["narcotics"], jurisdictions=[BASE.jurisdiction],
        group_id=f"fusionbus.anf.backlog-{uuid.uuid4().hex[:8]}", delivered=delivered,
        since=since,
    )  # fmt: skip
    every = max(1, count // 20)
    samples: list[tuple[int, float]] = [(0, _rss_mb())]
    handled = 0

    async def handler(delivery: Delivery) -> None:
        nonlocal handled
        handled += 1
        if handled % every == 0:
            samples.append((handled, _rss_mb()))

    started = time.monotonic()
    asyncio.run(subscriber.run(handler, limit=count))
    out.put({"samples": samples, "seconds": time.monotonic() - started})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap", help="use this Kafka instead of starting one")
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--delivered", choices=["memory", "sqlite"], default="memory")
    args = parser.parse_args(argv)
    configure_logging("WARNING")
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as home:
        bootstrap = args.bootstrap or _own_kafka(stack)
        _federation(Path(home), BASE.recipients)
        settings = KafkaSettings(bootstrap=bootstrap)
        topic = report_topic("customs", BASE.jurisdiction, "narcotics")
        asyncio.run(ensure_topics(settings, [topic], partitions=BASE.partitions))
        since = datetime.now(UTC) - timedelta(seconds=1)  # only this run's reports
        seconds = asyncio.run(_publish(Path(home), bootstrap, args.reports))
        print(f"published {args.reports} reports in {seconds:.0f} s", file=sys.stderr)
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        proc = ctx.Process(
            target=_drain,
            args=(home, bootstrap, args.reports),
            kwargs={"store": args.delivered, "since": since, "out": out},
        )
        proc.start()
        result = out.get(timeout=3600)
        proc.join()
    samples = result["samples"]
    print(f"# subscriber RSS while draining {args.reports} reports ({args.delivered} store), "
          f"{result['seconds']:.0f} s")  # fmt: skip
    print(f"{'handled':>10}{'RSS MB':>10}")
    for handled, rss in samples:
        print(f"{handled:>10}{rss:>10.1f}")
    later = [rss for handled, rss in samples if handled >= args.reports // 10]
    span = samples[-1][0] - args.reports // 10
    print(
        f"from 10% on: RSS {min(later):.1f} to {max(later):.1f} MB, last {later[-1]:.1f} MB; "
        f"last minus first {later[-1] - later[0]:+.1f} MB over {span} reports"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
