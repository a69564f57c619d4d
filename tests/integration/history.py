"""The recorded history of a fault test, and the one checker every fault test uses.

A fault test records what happened, as it happened, from the sending side and the
receiving side alike::

    history = History()
    history.sent(report_id, thread=thread_id)          # handed to fusionbus (accepted)
    history.acked(report_id)                           # Kafka acknowledged it
    history.delivered(report_id, reader="sink")        # handed to an application
    verdict = history.check()
    assert verdict.ok, verdict.explain()

:meth:`History.check` applies the three rules of a run that lost and duplicated nothing:

- **acknowledged ⊆ delivered**: every report Kafka acknowledged reached every reader;
- **no duplicates**: no reader was handed the same report twice;
- **per-thread order**: for each reader, the reports of one thread arrived in the order
  they were sent.

It also counts what it saw (:class:`Verdict`) so the test can print figures, and the
history can be written as JSON lines (:meth:`History.dump`) for inspection after a failure.
Events carry monotonic times; :meth:`History.mark` records a named moment (a kill, a
restore) so recovery times can be read off the same clock.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson

__all__ = ["Event", "History", "Verdict"]


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    """``sent``, ``acked``, ``delivered`` or ``mark``."""
    report: str
    at: float
    thread: str = ""
    reader: str = ""


@dataclass
class Verdict:
    sent: int
    acked: int
    delivered: dict[str, int]
    """Per reader: distinct reports handed over."""
    lost: dict[str, list[str]] = field(default_factory=dict)
    """Per reader: acknowledged reports it never got."""
    duplicates: dict[str, list[str]] = field(default_factory=dict)
    """Per reader: reports it got more than once."""
    out_of_order: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per reader: (earlier, later) report pairs of one thread delivered the other way round."""
    unknown: dict[str, list[str]] = field(default_factory=dict)
    """Per reader: reports delivered that were never sent (a forgery or a bug in the test)."""

    @property
    def ok(self) -> bool:
        return not any(
            any(v.values()) for v in (self.lost, self.duplicates, self.out_of_order, self.unknown)
        )

    def explain(self) -> str:
        lines = [f"sent {self.sent}, acknowledged {self.acked}, delivered {self.delivered}"]
        for name, found in (
            ("lost (acknowledged, never delivered)", self.lost),
            ("delivered twice", self.duplicates),
            ("out of order within a thread", self.out_of_order),
            ("delivered but never sent", self.unknown),
        ):
            for reader, items in found.items():
                if items:
                    shown = ", ".join(map(str, items[:5]))
                    lines.append(f"{reader}: {len(items)} {name}: {shown}")
        return "\n".join(lines)


class History:
    """Events of one run, in the order they were recorded (one process, one clock)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._clock = time.monotonic

    def sent(self, report: object, *, thread: object | None = None) -> None:
        key = str(report)
        self.events.append(Event("sent", key, self._clock(), str(thread or key)))

    def acked(self, report: object) -> None:
        self.events.append(Event("acked", str(report), self._clock()))

    def delivered(self, report: object, *, reader: str) -> None:
        self.events.append(Event("delivered", str(report), self._clock(), reader=reader))

    def mark(self, name: str) -> float:
        """Record a named moment (``kill``, ``restored``); returns its time."""
        at = self._clock()
        self.events.append(Event("mark", name, at))
        return at

    def marks(self, name: str) -> list[float]:
        return [e.at for e in self.events if e.kind == "mark" and e.report == name]

    def first_after(self, kind: str, moment: float) -> float | None:
        """When the first ``kind`` event after ``moment`` happened (recovery time)."""
        return next((e.at for e in self.events if e.kind == kind and e.at > moment), None)

    def check(self, readers: list[str] | None = None) -> Verdict:
        sent_order: dict[str, int] = {}
        thread_of: dict[str, str] = {}
        acked: set[str] = set()
        got: dict[str, list[str]] = defaultdict(list)
        for event in self.events:
            if event.kind == "sent" and event.report not in sent_order:
                sent_order[event.report] = len(sent_order)
                thread_of[event.report] = event.thread
            elif event.kind == "acked":
                acked.add(event.report)
            elif event.kind == "delivered":
                got[event.reader].append(event.report)
        verdict = Verdict(
            sent=len(sent_order),
            acked=len(acked),
            delivered={r: len(set(ids)) for r, ids in got.items()},
        )
        for reader in readers if readers is not None else sorted(got):
            ids = got.get(reader, [])
            verdict.delivered.setdefault(reader, 0)
            counts = Counter(ids)
            verdict.duplicates[reader] = sorted(i for i, n in counts.items() if n > 1)
            verdict.lost[reader] = sorted(acked - counts.keys())
            verdict.unknown[reader] = sorted(counts.keys() - sent_order.keys())
            last: dict[str, str] = {}
            wrong: list[tuple[str, str]] = []
            for report in dict.fromkeys(ids):  # first delivery of each
                if report not in sent_order:
                    continue
                thread = thread_of[report]
                before = last.get(thread)
                if before is not None and sent_order[before] > sent_order[report]:
                    wrong.append((report, before))
                if before is None or sent_order[report] > sent_order[before]:
                    last[thread] = report
            verdict.out_of_order[reader] = wrong
        return verdict

    def dump(self, path: Path) -> Path:
        """Write the events as JSON lines (one object per event)."""
        with path.open("wb") as out:
            for e in self.events:
                out.write(orjson.dumps(e) + b"\n")
        return path
