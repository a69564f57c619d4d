"""How long the embedded Kafka takes to fetch, start and stop on this machine.

    python -m bench.kafka_startup [--runs 3] [--skip-cold]

Cold fetch: the jars downloaded with Maven into an empty temporary cache. Warm starts: the
cached jars, a fresh data dir (so storage is formatted), until every broker answers a
metadata request. Prints the median and the spread of each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from broker.kafka import EmbeddedKafka, ensure_distribution
from broker.logs import configure_logging


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _cold_fetch() -> float:
    with tempfile.TemporaryDirectory() as cache:
        previous = os.environ.get("FUSIONBUS_CACHE_DIR")
        os.environ["FUSIONBUS_CACHE_DIR"] = cache
        try:
            return _timed(ensure_distribution)
        finally:
            if previous is None:
                del os.environ["FUSIONBUS_CACHE_DIR"]
            else:
                os.environ["FUSIONBUS_CACHE_DIR"] = previous


def _start_stop(nodes: int) -> tuple[float, float]:
    dist = ensure_distribution()
    data = Path(tempfile.mkdtemp(prefix=f"fusionbus-bench-{nodes}n-"))
    cluster = EmbeddedKafka(data, nodes=nodes, port=0)
    try:
        start = _timed(lambda: cluster.start(dist))
        stop = _timed(cluster.stop)
    finally:
        cluster.stop()
        shutil.rmtree(data, ignore_errors=True)
    return start, stop


def _row(name: str, samples: list[float]) -> str:
    return (
        f"{name:<28} median {statistics.median(samples):6.2f} s   "
        f"min {min(samples):6.2f} s   max {max(samples):6.2f} s   (n={len(samples)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-cold", action="store_true")
    args = parser.parse_args()
    configure_logging("WARNING")
    print(f"machine: {os.cpu_count()} cores; Kafka {ensure_distribution().version}")
    if not args.skip_cold:
        print(_row("cold fetch (Maven)", [_cold_fetch() for _ in range(args.runs)]))
    for nodes in (1, 3):
        starts, stops = zip(*(_start_stop(nodes) for _ in range(args.runs)), strict=True)
        print(_row(f"warm start, {nodes} node(s)", list(starts)))
        print(_row(f"stop, {nodes} node(s)", list(stops)))


if __name__ == "__main__":
    main()
