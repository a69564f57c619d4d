"""What a subscriber pays to validate a report, with and without subjects.

Cases, all parsed with ``Report.model_validate_json`` from JSON bytes:

* ``plain``: :func:`schemas.example_report` without its subjects;
* ``six``: the example as it is, six subjects (container, consignment, vessel, person with
  a CNIC, a passport and a phone, vehicle, phone), the same identifiers every time, as in a
  stream that keeps naming the same container and phones;
* ``six_cold``: six subjects whose container, IMO, CNIC and phone numbers are new in every
  report, so no identifier check has seen them before;
* ``intake_plain`` / ``intake_six``: the whole recipient path (:meth:`Intake.process`:
  open, verify, validate, topic and scope checks) of the same two reports, sealed to one
  recipient.

Run: ``.venv/bin/python -m bench.receive`` (``--tiny`` for a smoke run). Figures are
medians over ``--repeats`` rounds of ``--number`` reports each, in CPU time of this
process; the rounds interleave the cases, and each ratio is the median of the per-round
ratios to ``plain`` (or ``intake_plain``).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from stdnum import imo, iso6346

from broker.envelope import Opener, Sealer, seal_report
from broker.federation import DirectorySnapshot, agency_keys
from broker.keys import Identity
from broker.topics import report_topic
from consumers import Accepted, Intake, MemoryDelivered, Record, Source
from schemas import Report, example_report

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def _us(action: Callable[[], object], number: int) -> float:
    """CPU time of this process per call, in µs."""
    start = time.process_time_ns()
    for _ in range(number):
        action()
    return (time.process_time_ns() - start) / number / 1000


def _distinct(example: dict[str, Any], serials: Iterator[int]) -> bytes:
    """``example`` with a container, IMO, CNIC and two phone numbers never used before."""
    n = next(serials)
    owner_serial = f"CSQU{n % 1_000_000:06d}"
    container = owner_serial + iso6346.calc_check_digit(owner_serial)
    ship = f"{1 + n % 899_999 + 100_000:06d}"
    subjects = [dict(s) for s in example["subjects"]]
    for subject in subjects:
        kind = subject["kind"]
        if kind == "container":
            subject["number"] = container
        elif kind == "consignment":
            subject["containers"] = [container]
        elif kind == "vessel":
            subject["imo"] = ship + imo.calc_check_digit(ship)
        elif kind == "person":
            subject["cnic"] = f"4{n % 10**11:011d}1"
            subject["phones"] = [f"+92300{n % 10**7:07d}"]
        elif kind == "phone":
            subject["number"] = f"+92321{n % 10**7:07d}"
    return orjson.dumps({**example, "subjects": subjects})


def _intake_cost(reports: dict[str, Report]) -> dict[str, Callable[[], object]]:
    """One ``Intake.process`` call per report kind, of the report sealed customs → anf."""
    ids = {agency: Identity.generate(agency) for agency in ("customs", "anf")}
    trust = DirectorySnapshot.of_keys(
        key
        for agency, identity in ids.items()
        for key in agency_keys(
            agency,
            identity.signing_key.public,
            identity.encryption_key,
            valid_from=NOW - timedelta(days=1),
        )
    )
    sealer = Sealer(ids["customs"], trust, clock=lambda: NOW)
    intake = Intake(
        Opener(ids["anf"], trust),
        categories=["narcotics"],
        jurisdictions=["PK"],
        delivered=MemoryDelivered(),
        clock=lambda: NOW,
    )
    topic = report_topic("customs", "PKKHI", "narcotics")
    actions: dict[str, Callable[[], object]] = {}
    for name, report in reports.items():
        record = Record(
            Source(topic, 0, 0, 1), seal_report(sealer, report, [ids["anf"].encryption_kid])
        )
        if not isinstance(intake.process(record), Accepted):
            raise SystemExit(f"the {name} report is not accepted by the intake")
        actions[f"intake_{name}"] = functools.partial(intake.process, record)
    return actions


def measure(*, number: int, repeats: int) -> dict[str, float]:
    """Median µs per report of every case, and the ratios to the plain report."""
    report = example_report(now=NOW)
    example = orjson.loads(report.model_dump_json())
    plain_json = orjson.dumps({**example, "subjects": []})
    six_json = orjson.dumps(example)
    serials = itertools.count(1)
    cold = [_distinct(example, serials) for _ in range(number * (repeats + 1))]
    feed = iter(cold)
    Report.model_validate_json(next(feed))  # a new report validates
    cases: dict[str, Callable[[], object]] = {
        "plain": lambda: Report.model_validate_json(plain_json),
        "six": lambda: Report.model_validate_json(six_json),
        "six_cold": lambda: Report.model_validate_json(next(feed)),
        **_intake_cost({"plain": Report.model_validate_json(plain_json), "six": report}),
    }
    for action in cases.values():  # warm-up, outside the timed rounds
        for _ in range(max(1, number // 10)):
            action()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    ratios: dict[str, list[float]] = {"six": [], "six_cold": [], "intake_six": []}
    for _ in range(repeats):
        for name, action in cases.items():
            samples[name].append(_us(action, number))
        ratios["six"].append(samples["six"][-1] / samples["plain"][-1])
        ratios["six_cold"].append(samples["six_cold"][-1] / samples["plain"][-1])
        ratios["intake_six"].append(samples["intake_six"][-1] / samples["intake_plain"][-1])
    figures = {f"{name}_us": round(statistics.median(v), 1) for name, v in samples.items()}
    figures |= {f"{name}_ratio": round(statistics.median(v), 2) for name, v in ratios.items()}
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tiny", action="store_true", help="a smoke run: few reports")
    parser.add_argument("--json", action="store_true", help="the figures as one JSON object")
    parser.add_argument("--number", type=int, default=2000, help="reports per timed round")
    parser.add_argument("--repeats", type=int, default=7, help="timed rounds; the median counts")
    args = parser.parse_args(argv)
    number, repeats = (5, 1) if args.tiny else (args.number, args.repeats)
    figures = measure(number=number, repeats=repeats)
    if args.json:
        print(orjson.dumps(figures).decode())
    else:
        print(
            f"# receive-path benchmark, medians of {repeats} x {number} reports (CPU µs), "
            f"python {sys.version.split()[0]}"
        )
        for name, value in figures.items():
            print(f"{name:>18}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
