"""How fast and how soundly the intake gives hostile records their verdicts.

    python -m bench.fuzz_intake [--records N] [--seed S] [--json FILE] [--show INDEX]

Generates ``--records`` hostile records from signed envelopes (``tests/fuzz/mutators.py``,
deterministic from ``--seed``) and feeds each through a recipient's ``Intake.process`` and
a non-recipient's ``RawIntake.process``, as ``tests/fuzz/test_intake_fuzz.py`` does with
``FUSIONBUS_LONG=1``. Prints records per second through each intake (time inside
``process`` only; generating the records is not counted) and end to end, the per-record
time (median, 99th percentile, maximum), the peak resident set of the process, the verdicts
by reason, internal errors, exceptions that escaped, and unsound verdicts (see
``tests/fuzz/judge.py``) with the first example of each. Progress goes to standard error.

``--show INDEX`` prints mutant number ``INDEX`` of the seed instead (its record and both
verdicts): a reproducer for a finding.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from array import array
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from broker.logs import configure_logging
from tests.fuzz.corpus import make_world
from tests.fuzz.judge import KNOWN_ISSUES, Tally, run
from tests.fuzz.mutators import Mutator


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _timing(times: array[float]) -> dict[str, float]:
    ordered = sorted(times) or [0.0]
    return {
        "records_per_s": round(len(times) / (sum(times) or 1), 1),
        "median_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99)] * 1e6, 1),
        "max_ms": round(ordered[-1] * 1e3, 2),
    }


def summary(tally: Tally, *, seed: int, seconds: float) -> dict[str, Any]:
    """The figures of a run, as one JSON-able object."""
    return {
        "records": tally.records,
        "seed": seed,
        "wall_s": round(seconds, 1),
        "end_to_end_records_per_s": round(tally.records / seconds, 1),
        "intake": _timing(tally.intake_times),
        "raw_intake": _timing(tally.raw_times),
        "slowest": tally.slowest_what,
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "intake_verdicts": dict(tally.intake_counts.most_common()),
        "raw_verdicts": dict(tally.raw_counts.most_common()),
        "internal_errors": tally.internal_errors,
        "escaped": sum(n for (w, *_), n in tally.finding_counts.items() if w == "escaped"),
        "unsound": sum(tally.finding_counts.values()),
        "known_issues": dict(tally.known),
        "mutations": dict(tally.kinds.most_common()),
    }


def render(figures: dict[str, Any]) -> str:
    lines = [
        (
            f"# {figures['records']} hostile records, seed {figures['seed']}, "
            f"python {sys.version.split()[0]}, {figures['wall_s']} s"
        ),
        f"{'':12}{'records/s':>12}{'median µs':>12}{'p99 µs':>10}{'max ms':>9}",
    ]
    for name in ("intake", "raw_intake"):
        t = figures[name]
        lines.append(
            f"{name:12}{t['records_per_s']:>12}{t['median_us']:>12}{t['p99_us']:>10}"
            f"{t['max_ms']:>9}"
        )
    lines += [
        f"end to end (generation included): {figures['end_to_end_records_per_s']} records/s",
        f"slowest record: {figures['slowest']}",
        f"peak RSS: {figures['peak_rss_mib']} MiB",
        (
            f"internal errors: {figures['internal_errors']}; escaped exceptions: "
            f"{figures['escaped']}; unsound verdicts: {figures['unsound']}"
        ),
    ]
    for name, count in figures["known_issues"].items():
        lines.append(f"open finding {name}: {count} records ({KNOWN_ISSUES[name][:70]}...)")
    for title, key in (("Intake", "intake_verdicts"), ("RawIntake", "raw_verdicts")):
        lines.append(f"{title} verdicts:")
        lines += [f"  {reason:<22}{count:>8}" for reason, count in figures[key].items()]
    lines.append("mutations: " + ", ".join(f"{k} {v}" for k, v in figures["mutations"].items()))
    return "\n".join(lines)


def _show(seed: int, index: int) -> int:
    world = make_world()
    mutant = next(islice(Mutator(world, seed).mutants(index + 1), index, None))
    print(f"mutant #{index} of seed {seed}: {mutant.kind} ({mutant.detail}) of {mutant.base.name}")
    print(repr(mutant.record))
    print("Intake:   ", world.intake().process(mutant.record))
    print("RawIntake:", world.raw_intake().process(mutant.record))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    parser.add_argument("--show", type=int, metavar="INDEX", help="print one mutant and stop")
    args = parser.parse_args(argv)
    if args.show is not None:
        return _show(args.seed, args.show)
    world = make_world()
    started = time.perf_counter()

    def progress(done: int) -> None:
        rate = done / (time.perf_counter() - started)
        print(f"{done:>9} records, {rate:,.0f}/s end to end", file=sys.stderr, flush=True)

    tally = run(world, Mutator(world, args.seed).mutants(args.records), progress=progress)
    figures = summary(tally, seed=args.seed, seconds=time.perf_counter() - started)
    print(render(figures))
    for key, finding in tally.findings.items():
        print(f"\n{tally.finding_counts[key]} x {finding.describe(args.seed)}")
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(figures, option=orjson.OPT_INDENT_2) + b"\n")
    return 1 if tally.findings else 0


if __name__ == "__main__":
    configure_logging("CRITICAL")  # an internal error is counted and shown instead
    raise SystemExit(main())
