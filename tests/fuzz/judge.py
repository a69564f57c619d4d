"""What a sound verdict on a hostile record is, and a loop that checks many of them.

A verdict is **sound** when it is one of the intake's verdict types with a ``Reason`` or
``SkipReason``, is not ``internal_error`` (a bug in our parser), and, when it lets a record
through, the record carries the authenticated content of a signed base record on that
base's own topic:

* ``Intake`` (a recipient) may accept a record whose bytes differ from a genuine envelope:
  the same JSON spelled otherwise (whitespace, member order, ``\\u`` escapes), or other
  parts a recipient does not check by design (the outer signature, the other recipients'
  entries). What it opens is the protected header, iv, ciphertext and tag and its own
  recipient entry: those must equal a genuine envelope's, and the delivered report and
  header must be that envelope's.
* ``RawIntake`` (the platform) checks the outer signature, which covers every member it
  accepts: a verified record must be the same JSON as a base record it verifies.

:func:`run` feeds mutants through both intakes the way the subscriber does (an accepted
record is marked delivered), times each call, and keeps the first example of each finding.
"""

from __future__ import annotations

import time
import traceback
from array import array
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from broker.errors import Reason
from consumers.intake import (
    Accepted,
    Record,
    Rejected,
    Skipped,
    SkipReason,
    Verified,
)

from .corpus import ME, Base, World
from .mutators import Mutant

__all__ = ["KNOWN_ISSUES", "Finding", "Judge", "Tally", "run"]

KNOWN_ISSUES: dict[str, str] = {}
"""Reported, not yet fixed: findings these explain are counted, not failed on. When one is
fixed, its test in ``test_intake_fuzz.py`` (a strict xfail) fails: delete it and its entry."""

_Core = tuple[str, str, str, str, bytes]


def _canonical(value: Any) -> bytes:
    """One spelling of a JSON value (``1`` and ``1.0`` stay different)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _doc(value: bytes | None) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


@dataclass(frozen=True, slots=True)
class Finding:
    """An unsound verdict (or an exception that escaped), with what made the record."""

    what: str
    """``escaped``, ``internal_error``, ``bad_verdict`` or ``unsound_accept``."""
    intake: str
    mutant: Mutant
    index: int
    explanation: str
    verdict: object = None

    def describe(self, seed: int) -> str:
        record = self.mutant.record
        value = record.value
        shown = (
            repr(value)
            if value is None or len(value) <= 1500
            else (f"<{len(value)} bytes> starting {value[:200]!r}")
        )
        return (
            f"{self.what} in {self.intake}: {self.explanation}\n"
            f"  mutation {self.mutant.kind} ({self.mutant.detail}) of base "
            f"{self.mutant.base.name!r}; mutant #{self.index} of seed {seed}\n"
            f"  topic={record.source.topic!r} key={record.key!r:.80}\n"
            f"  headers={record.headers!r:.300}\n"
            f"  value={shown}"
        )


class Judge:
    """Decides whether verdicts on records made from ``world``'s bases are sound."""

    def __init__(self, world: World) -> None:
        my_kid = world.ids[ME].encryption_kid
        self._my_kid = my_kid
        self._cores: dict[_Core, Base] = {}
        for base in world.genuine:
            core = self.core(base.value)
            assert core is not None
            self._cores[core] = base
        self._docs = {
            _canonical(orjson.loads(b.value)): b for b in world.bases if b.raw == "verified"
        }

    def core(self, value: bytes | None) -> _Core | None:
        """What a recipient's intake authenticates: protected, iv, ciphertext, tag, and the
        recipient entry of my key (``None`` if ``value`` has no such parts)."""
        doc = _doc(value)
        if doc is None:
            return None
        entries = doc.get("recipients")
        mine = None
        if isinstance(entries, list):
            mine = next(
                (
                    e
                    for e in entries
                    if isinstance(e, dict)
                    and isinstance(e.get("header"), dict)
                    and e["header"].get("kid") == self._my_kid
                ),
                None,
            )
        parts = [doc.get(m) for m in ("protected", "iv", "ciphertext", "tag")]
        if mine is None or not all(isinstance(p, str) for p in parts):
            return None
        return (*parts, _canonical(mine))  # type: ignore[return-value]

    def intake(self, record: Record, verdict: object) -> tuple[str, str] | None:
        """(what, explanation) when ``verdict`` by :class:`Intake` is unsound.

        A replay or duplicate was opened and verified before the delivery store was asked,
        so it too must carry a genuine envelope."""
        if not (isinstance(verdict, Accepted) or _opened(verdict)):
            return self._refusal(verdict)
        said = "accepted" if isinstance(verdict, Accepted) else f"opened ({verdict})"
        genuine = self._cores.get(self.core(record.value) or ("", "", "", "", b""))
        if genuine is None:
            return "unsound_accept", f"{said} a record that carries no genuine envelope"
        if record.source.topic != genuine.topic:
            return "unsound_accept", f"{said} {genuine.name!r} on {record.source.topic!r}"
        if isinstance(verdict, Accepted) and (
            verdict.delivery.report != genuine.report or verdict.delivery.header != genuine.header
        ):
            return "unsound_accept", f"delivered another report than {genuine.name!r}'s"
        return None

    def raw(self, record: Record, verdict: object) -> tuple[str, str] | None:
        """(what, explanation) when ``verdict`` by :class:`RawIntake` is unsound."""
        if isinstance(verdict, Verified):
            doc = _doc(record.value)
            base = self._docs.get(_canonical(doc)) if doc is not None else None
            if base is None:
                return "unsound_accept", "verified a record that is no signed envelope"
            if record.source.topic != base.topic or verdict.header != base.header:
                return "unsound_accept", f"verified {base.name!r} on {record.source.topic!r}"
            return None
        return self._refusal(verdict)

    def known_issue(self, finding: Finding) -> str | None:
        """The name of the entry of :data:`KNOWN_ISSUES` that explains ``finding``, if any."""
        return None  # none open: padded base64url, the first one found, is refused now

    @staticmethod
    def _refusal(verdict: object) -> tuple[str, str] | None:
        if isinstance(verdict, Rejected):
            if not isinstance(verdict.reason, Reason) or not isinstance(verdict.detail, str):
                return "bad_verdict", f"{verdict!r:.300}"
            if verdict.reason is Reason.INTERNAL_ERROR:
                return "internal_error", verdict.detail
            return None
        if isinstance(verdict, Skipped) and isinstance(verdict.reason, SkipReason):
            return None
        return "bad_verdict", f"{verdict!r:.300}"


def _site(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    return " <- ".join(f"{Path(f.filename).name}:{f.lineno} in {f.name}" for f in frames[::-1][:4])


@dataclass
class Tally:
    """The outcome of a run: verdict counts, time spent in each intake, findings."""

    records: int = 0
    intake_counts: Counter[str] = field(default_factory=Counter)
    raw_counts: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    intake_times: array[float] = field(default_factory=lambda: array("d"))
    """Seconds each record took in ``Intake.process``, in order."""
    raw_times: array[float] = field(default_factory=lambda: array("d"))
    slowest: float = 0.0
    slowest_what: str = ""
    findings: dict[tuple[str, str, str], Finding] = field(default_factory=dict)
    """The first example of each kind of unsound verdict not explained by a known issue."""
    finding_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)
    """Unsound verdicts explained by an entry of :data:`KNOWN_ISSUES`, by its name."""
    opened_other_bytes: Counter[str] = field(default_factory=Counter)
    """Mutants ``Intake`` opened (accepted, or called a replay or duplicate of a delivered
    report) although their bytes differ from their base's, by mutation kind."""

    def add(self, finding: Finding, judge: Judge) -> None:
        known = judge.known_issue(finding)
        if known is not None:
            self.known[known] += 1
            return
        kind = finding.mutant.kind.split("+")[0]
        key = (finding.what, finding.intake, f"{kind}: {finding.explanation[:120]}")
        self.finding_counts[key] += 1
        self.findings.setdefault(key, finding)

    @property
    def internal_errors(self) -> int:
        return sum(n for (what, *_), n in self.finding_counts.items() if what == "internal_error")


def run(
    world: World,
    mutants: Iterable[Mutant],
    *,
    progress: Callable[[int], None] | None = None,
    every: int = 10_000,
    mark: bool = False,
) -> Tally:
    """Feed ``mutants`` through a fresh :class:`Intake` and :class:`RawIntake` of ``world``.

    With ``mark``, each accepted record is marked delivered, as the subscriber does; later
    openings of the same report are then replays or duplicates, judged like acceptances
    but without the delivered report to compare. Without it (the default) every opening is
    an acceptance and is compared in full."""
    judge = Judge(world)
    intake, raw = world.intake(), world.raw_intake()
    tally = Tally()
    clock = time.perf_counter
    for index, mutant in enumerate(mutants):
        record = mutant.record
        tally.records += 1
        tally.kinds[mutant.kind.split("+")[0].split(".")[0]] += 1
        for name, process, check in (
            ("Intake", intake.process, judge.intake),
            ("RawIntake", raw.process, judge.raw),
        ):
            start = clock()
            try:
                verdict: object = process(record)
            except Exception as exc:  # noqa: BLE001 - what the fuzzer is looking for
                verdict = None
                escaped = f"{type(exc).__name__} at {_site(exc)}"
                tally.add(Finding("escaped", name, mutant, index, escaped), judge)
            took = clock() - start
            (tally.intake_times if name == "Intake" else tally.raw_times).append(took)
            if took > tally.slowest:
                tally.slowest, tally.slowest_what = took, f"{name}: {mutant.kind} ({mutant.detail})"
            if verdict is None:
                continue
            problem = check(record, verdict)
            if problem is not None:
                tally.add(Finding(problem[0], name, mutant, index, problem[1], verdict), judge)
            if mark and isinstance(verdict, Accepted):
                intake.mark(verdict)
            if name == "Intake" and record.value != mutant.base.value and _opened(verdict):
                tally.opened_other_bytes[mutant.kind] += 1
        if progress is not None and tally.records % every == 0:
            progress(tally.records)
    tally.intake_counts.update(intake.counts)
    tally.raw_counts.update(raw.counts)
    return tally


def _opened(verdict: object) -> bool:
    if isinstance(verdict, Accepted):
        return True
    if isinstance(verdict, Skipped):
        return verdict.reason is SkipReason.DUPLICATE
    return isinstance(verdict, Rejected) and verdict.reason is Reason.REPLAY
