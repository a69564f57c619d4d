"""The intake is total and sound on hostile records (issue 9, fuzzing at scale).

Records made by :mod:`tests.fuzz.mutators` from signed bases (:mod:`tests.fuzz.corpus`) go
through both ``Intake.process`` and ``RawIntake.process``; :mod:`tests.fuzz.judge` says
what a sound verdict is. Every run checks: no exception escapes, every verdict is a verdict
type with a ``Reason``/``SkipReason``, none is ``internal_error``, nothing is let through
that does not carry a signed base record on its own topic, no record takes long, memory
stays bounded.

``FUSIONBUS_LONG=1`` runs the fuzz test over 100,000 records (about a minute) instead of
3,000, and the hypothesis tests with 10x the examples; ``FUSIONBUS_FUZZ_SEED=N`` picks
another seed. ``python -m bench.fuzz_intake`` measures the same loop.
"""

from __future__ import annotations

import os
import resource
import tracemalloc
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.errors import Reason
from consumers.intake import Accepted, Record, Rejected, Source, Verified

from .corpus import NOW_MS, Base, make_world
from .jsontext import DECODED, Part, Raw, dump, edit, positions
from .judge import KNOWN_ISSUES, Judge, Tally, run
from .mutators import FAMILIES, Mutant, Mutator

LONG = os.environ.get("FUSIONBUS_LONG") == "1"
RECORDS = 100_000 if LONG else 3_000
SEED = int(os.environ.get("FUSIONBUS_FUZZ_SEED", "1"))
MAX_SECONDS_PER_RECORD = 0.25
"""Generous: one record takes at most a few ms here, but the box is shared and noisy."""

WORLD = make_world()
JUDGE = Judge(WORLD)
FUZZ = settings(
    max_examples=3000 if LONG else 300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _explain(tally: Tally) -> str:
    lines = [
        f"{tally.finding_counts[key]} x {finding.describe(SEED)}"
        for key, finding in tally.findings.items()
    ]
    return "\n".join(lines)


def _sound(record: Record) -> None:
    """Both intakes give ``record`` a sound verdict (fresh intakes: no state between calls)."""
    for name, intake, check in (
        ("Intake", WORLD.intake(), JUDGE.intake),
        ("RawIntake", WORLD.raw_intake(), JUDGE.raw),
    ):
        verdict = intake.process(record)  # an escaping exception fails the test here
        problem = check(record, verdict)
        assert problem is None, f"{name}: {problem[0]}: {problem[1]} on {record!r:.600}"


# -- the corpus and the generator --------------------------------------------------------


@pytest.mark.parametrize("base", WORLD.bases, ids=lambda b: b.name)
def test_each_base_record_gets_its_expected_verdict(base: Base) -> None:
    intake, raw = WORLD.intake(), WORLD.raw_intake()
    intake.process(base.record)
    raw.process(base.record)
    assert (list(intake.counts), list(raw.counts)) == ([base.intake], [base.raw])


def _fingerprint(mutants: Iterator[Mutant]) -> list[tuple[Any, ...]]:
    return [(m.kind, m.detail, m.record) for m in mutants]


def test_the_generator_is_deterministic_from_its_seed() -> None:
    first = _fingerprint(Mutator(WORLD, seed=5).mutants(300))
    assert first == _fingerprint(Mutator(make_world(), seed=5).mutants(300))
    assert first != _fingerprint(Mutator(WORLD, seed=6).mutants(300))


def test_the_generator_reaches_every_family_and_position() -> None:
    mutants = list(Mutator(WORLD, seed=SEED).mutants(3000))
    families = {m.kind.split("+")[0].split(".")[0] for m in mutants}
    assert families == {"kafka", *FAMILIES}
    details = " ".join(m.detail for m in mutants)
    for where in (
        "protected>b64json>fusionbus>version",
        "protected>b64json>enc",
        "unprotected>fusionbus_sig>part0>b64json>alg",
        "unprotected>fusionbus_sig>part2",
        "unprotected>fusionbus_batch>path",
        "unprotected>fusionbus_batch>commit",
        "recipients>0>header>epk>x",
        "recipients>0>encrypted_key",
        "ciphertext",
        "tag",
    ):
        assert where in details, where
    values = [m.record.value for m in mutants]
    assert None in values
    assert b"" in values
    assert max(len(v or b"") for v in values) > 1_000_000


# -- the fuzz run ------------------------------------------------------------------------


def test_hostile_records_get_sound_verdicts_in_bounded_time_and_memory() -> None:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tally = run(WORLD, Mutator(WORLD, seed=SEED).mutants(RECORDS))
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024

    assert tally.records == RECORDS
    assert not tally.findings, f"unsound verdicts (seed {SEED}):\n{_explain(tally)}"
    assert set(tally.known) <= set(KNOWN_ISSUES)
    assert tally.slowest < MAX_SECONDS_PER_RECORD, tally.slowest_what
    assert rss_growth_mib < 256
    # the run reached the deep checks, not only the parser
    for reason in ("decrypt_failed", "bad_signature", "header_mismatch", "wrong_topic"):
        assert tally.intake_counts[reason] + tally.raw_counts[reason] > 0, reason
    assert tally.intake_counts["accepted"] > 0
    assert tally.raw_counts["verified"] > 0
    assert sum(tally.intake_counts.values()) == sum(tally.raw_counts.values()) == RECORDS


def test_marking_deliveries_turns_reopened_reports_into_duplicates_and_replays() -> None:
    tally = run(WORLD, Mutator(WORLD, seed=SEED + 1).mutants(1500), mark=True)
    assert not tally.findings, _explain(tally)
    assert tally.intake_counts["accepted"] <= len(WORLD.genuine)
    assert tally.intake_counts["replay"] + tally.intake_counts["duplicate"] > 0


def test_memory_is_bounded_and_is_given_back() -> None:
    """Near-1-MiB records included: the peak stays a small multiple of the largest record,
    and nothing accumulates from one record to the next."""
    world = make_world()
    intake, raw = world.intake(), world.raw_intake()
    mutants = list(Mutator(world, seed=SEED + 2).mutants(600))
    huge = [m for m in mutants if len(m.record.value or b"") > 1_000_000]
    assert huge

    def feed(batch: list[Mutant]) -> None:
        for mutant in batch:
            intake.process(mutant.record)
            raw.process(mutant.record)

    feed(mutants[:100])  # warm caches: content keys, jurisdiction look-ups, regexes
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        feed(mutants[100:])
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - before < 48 * 1024 * 1024
    assert after - before < 1024 * 1024


# -- hypothesis: any record, any JSON at any position ------------------------------------

TOPICS = WORLD.topics()
HEADER_NAMES = st.sampled_from(
    ["fb-category", "fb-jurisdiction", "fb-sender", "fb-message-id", "", "x"]
) | st.text(max_size=20)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from([Raw(b"NaN"), Raw(b"Infinity"), Raw(b"1e999"), Raw(b'"\\ud800"')]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _base_strategy() -> st.SearchStrategy[Base]:
    return st.sampled_from(WORLD.bases)


@st.composite
def kafka_records(draw: st.DrawFn) -> Record:
    """Any record: a signed value, bytes or none; any key, headers, topic and timestamp."""
    base = draw(_base_strategy())
    value = draw(st.none() | st.binary(max_size=512) | st.just(base.value))
    key = draw(st.none() | st.binary(max_size=64))
    header = st.tuples(HEADER_NAMES, st.binary(max_size=24) | st.none())
    headers = tuple(draw(st.lists(header, max_size=6)))
    topic = draw(st.sampled_from(TOPICS) | st.text(max_size=60))
    timestamp = draw(st.integers(min_value=-(2**64), max_value=2**64) | st.just(NOW_MS))
    return Record(Source(topic, 0, 0, timestamp), value, key, headers)  # type: ignore[arg-type]


@FUZZ
@given(kafka_records())
def test_any_kafka_record(record: Record) -> None:
    _sound(record)


@FUZZ
@given(base=_base_strategy(), data=st.data())
def test_any_json_at_any_position(base: Base, data: st.DataObject) -> None:
    doc = orjson.loads(base.value)
    path = data.draw(st.sampled_from(positions(doc)), label="position")
    new = data.draw(JSON, label="value")
    _sound(replace(base.record, value=dump(edit(doc, path, lambda _: new))))


@FUZZ
@given(
    base=_base_strategy(),
    field=st.sampled_from(sorted(WORLD.bases[0].header.model_dump(mode="json"))),
    value=JSON,
)
def test_any_routing_header_value(base: Base, field: str, value: Any) -> None:
    doc = orjson.loads(base.value)
    path = ("protected", DECODED, "fusionbus", field)
    record = replace(base.record, value=dump(edit(doc, path, lambda _: value)))
    _sound(record)


@settings(FUZZ, max_examples=FUZZ.max_examples // 5)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_short_runs_from_any_seed(seed: int) -> None:
    tally = run(WORLD, Mutator(WORLD, seed).mutants(10))
    assert not tally.findings, _explain(tally)


# -- issues the fuzzer found, fixed ------------------------------------------------------


def _padded(base: Base, *path: Any) -> Record:
    doc = orjson.loads(base.value)
    return replace(base.record, value=dump(edit(doc, path, lambda old: old + "==")))


def test_padded_base64url_is_refused() -> None:
    base = next(b for b in WORLD.genuine if b.name == "country-wide")
    opened = WORLD.intake().process(_padded(base, "recipients", 0, "encrypted_key"))
    verified = WORLD.raw_intake().process(_padded(base, "unprotected", "fusionbus_sig", Part(2)))
    assert isinstance(opened, Rejected | Accepted)
    assert isinstance(verified, Rejected | Verified)
    assert (opened.reason if isinstance(opened, Rejected) else "accepted") == Reason.MALFORMED
    assert (verified.reason if isinstance(verified, Rejected) else "verified") == Reason.MALFORMED
