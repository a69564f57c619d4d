"""Walking a chain: the first break of each writer's audit chain, named.

:func:`verify_chain` takes the values of one writer's audit topic in log order and the
anchors that name the writer, and returns the records that verify up to the first break
and that break, if any. Pure: no Kafka, no clock. The breaks (``docs/audit.md``):

* ``modified``   a record was changed after the writer signed it: its signature fails (or
                 it no longer parses) where the next record of the chain follows it, or a
                 record's ``prev`` does not name the record before it;
* ``dropped``    records are missing: the chain jumps from seq N-1 to a later seq, and N
                 is nowhere after;
* ``reordered``  the records are on the topic out of order: seq N comes after a later one;
* ``forged``     a record the writer did not sign: another agency's or an unknown key, a
                 key not valid at the record's time, a signature that fails with no
                 record of the chain after it, or a record naming another writer;
* ``rewritten``  the writer's key signed a second, different record for a seq already in
                 the chain, or (after anchoring) the record at an anchored seq is not the
                 anchored one, or the chain ends before the anchored head.

A value identical to a record already accepted (a send repeated after a lost answer) is
passed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from broker.audit.record import GENESIS, AuditRecord, Inspected, inspect
from broker.federation.snapshot import DirectorySnapshot

__all__ = ["AnchorClaim", "Break", "ChainBreak", "ChainResult", "Entry", "verify_chain"]


class Break(StrEnum):
    MODIFIED = "modified"
    DROPPED = "dropped"
    REORDERED = "reordered"
    FORGED = "forged"
    REWRITTEN = "rewritten"


@dataclass(frozen=True, slots=True)
class Entry:
    """One value read from an audit topic, and where (``offset``)."""

    offset: int
    value: bytes


@dataclass(frozen=True, slots=True)
class AnchorClaim:
    """What one root-signed anchor says the writer's chain held: record ``seq`` with
    ``hash``, at ``issued_at`` (``source`` says which anchor, for messages)."""

    seq: int
    hash: str
    issued_at: datetime
    source: str


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first break of ``writer``'s chain: its kind, the seq where the chain stops being
    trustworthy, the topic offset of the value that showed it (when one did), and why."""

    writer: str
    kind: Break
    seq: int
    offset: int | None
    detail: str

    def __str__(self) -> str:
        where = f" (offset {self.offset})" if self.offset is not None else ""
        return f"{self.writer}: {self.kind} at seq {self.seq}{where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class ChainResult:
    """``records`` (seq 0, 1, ... up to the first break) and the break, if any;
    ``authentic``: every record the writer's key signed, break or not, in log order, each
    once."""

    writer: str
    records: tuple[tuple[AuditRecord, str], ...]
    first_break: ChainBreak | None
    authentic: tuple[AuditRecord, ...] = field(default=())

    @property
    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last record before any break; ``None`` for an empty chain."""
        if not self.records:
            return None
        record, digest = self.records[-1]
        return record.seq, digest


def verify_chain(
    writer: str,
    entries: Sequence[Entry],
    directory: DirectorySnapshot,
    anchors: Sequence[AnchorClaim] = (),
) -> ChainResult:
    """Walk ``writer``'s chain (its topic's values, in log order) and its anchors."""
    seen = [inspect(e.value, writer=writer, directory=directory) for e in entries]
    accepted: list[tuple[AuditRecord, str]] = []
    found = _walk(writer, entries, seen, accepted)
    for claim in sorted(anchors, key=lambda c: c.seq):
        if found is not None and found.seq <= claim.seq:
            break
        problem = _anchor_problem(writer, claim, accepted)
        if problem is not None:
            found = problem
            del accepted[claim.seq :]
            break
    unique: dict[str, AuditRecord] = {}  # a record sent twice is one record
    for item in seen:
        if item.authentic and item.record is not None and item.hash is not None:
            unique.setdefault(item.hash, item.record)
    return ChainResult(writer, tuple(accepted), found, tuple(unique.values()))


def _walk(  # noqa: PLR0911 - one return per kind of break
    writer: str,
    entries: Sequence[Entry],
    seen: Sequence[Inspected],
    accepted: list[tuple[AuditRecord, str]],
) -> ChainBreak | None:
    head = GENESIS
    for index, (entry, item) in enumerate(zip(entries, seen, strict=True)):
        expected = len(accepted)
        if not item.authentic or item.record is None or item.hash is None:
            return _unauthentic(writer, entry, item, seen[index + 1 :], expected)
        record = item.record
        if record.seq == expected:
            if record.prev != head:
                if expected == 0:
                    return ChainBreak(
                        writer, Break.FORGED, 0, entry.offset,
                        f"the first record names prev {record.prev[:12]}..., not the genesis "
                        "hash 000...",
                    )  # fmt: skip
                return ChainBreak(
                    writer, Break.MODIFIED, expected - 1, entry.offset,
                    f"record {expected} names prev {record.prev[:12]}..., but record "
                    f"{expected - 1} on the topic hashes to {head[:12]}...: record "
                    f"{expected - 1} is not the one the chain committed to",
                )  # fmt: skip
            accepted.append((record, item.hash))
            head = item.hash
        elif record.seq < expected:
            if accepted[record.seq][1] == item.hash:
                continue  # the same record again: a send repeated after a lost answer
            return ChainBreak(
                writer, Break.REWRITTEN, record.seq, entry.offset,
                f"a second record {record.seq}, signed by {writer}'s key, differs from the "
                f"first: the chain was rewritten from seq {record.seq}",
            )  # fmt: skip
        else:
            later = any(
                s.authentic and s.record is not None and s.record.seq == expected
                for s in seen[index + 1 :]
            )
            if later:
                return ChainBreak(
                    writer, Break.REORDERED, expected, entry.offset,
                    f"record {record.seq} comes before record {expected} on the topic",
                )  # fmt: skip
            missing = (
                f"record {expected} is"
                if record.seq == expected + 1
                else f"records {expected} to {record.seq - 1} are"
            )
            return ChainBreak(
                writer, Break.DROPPED, expected, entry.offset,
                f"{missing} missing: after {_after(expected)} comes record {record.seq}",
            )  # fmt: skip
    return None


def _after(expected: int) -> str:
    return "the start of the chain" if expected == 0 else f"record {expected - 1}"


def _unauthentic(
    writer: str, entry: Entry, item: Inspected, rest: Sequence[Inspected], expected: int
) -> ChainBreak:
    """A value that is not an authentic record at chain position ``expected``: modified
    when the chain carries on after it as if it held record ``expected`` (the next
    authentic record is ``expected + 1``), forged otherwise (added, not changed)."""
    following = next((s.record for s in rest if s.authentic and s.record is not None), None)
    claims = item.record.seq if item.record is not None else expected
    if (
        not item.forged
        and claims == expected
        and following is not None
        and following.seq == expected + 1
    ):
        return ChainBreak(
            writer, Break.MODIFIED, expected, entry.offset,
            f"record {expected} was changed after {writer} signed it ({item.problem})",
        )  # fmt: skip
    return ChainBreak(
        writer, Break.FORGED, expected, entry.offset,
        f"a record {writer}'s key did not sign: {item.problem}",
    )  # fmt: skip


def _anchor_problem(
    writer: str, claim: AnchorClaim, accepted: Sequence[tuple[AuditRecord, str]]
) -> ChainBreak | None:
    when = claim.issued_at.isoformat()
    if claim.seq >= len(accepted):
        ends = f"ends at record {len(accepted) - 1}" if accepted else "has no record"
        return ChainBreak(
            writer, Break.REWRITTEN, claim.seq, None,
            f"the root anchored record {claim.seq} ({claim.hash[:12]}...) on {when} "
            f"({claim.source}), but the chain {ends}: it was cut or rewritten after anchoring",
        )  # fmt: skip
    digest = accepted[claim.seq][1]
    if digest != claim.hash:
        return ChainBreak(
            writer, Break.REWRITTEN, claim.seq, None,
            f"the root anchored record {claim.seq} as {claim.hash[:12]}... on {when} "
            f"({claim.source}), but the chain's record {claim.seq} is {digest[:12]}...: "
            "rewritten after anchoring",
        )  # fmt: skip
    return None
