"""The dissemination policy: which agencies a report is encrypted to.

Rules (``docs/federation.md``), for a report of ``category`` about ``jurisdiction``:

1. An agency is **entitled** if one of its grants names the category and a jurisdiction
   that covers the report's (a grant for ``PK`` covers ``PK-SD`` and ``PKKHI``).
2. It is **reachable** at ``now`` if it has an encryption key that is valid then and not
   revoked; entitled agencies that are not reachable are left out.
3. Every **named recipient** (``handling.named_recipients``, whatever the TLP) must be
   known, entitled and reachable, else :class:`~broker.errors.DisseminationError` names
   it and the fix (a grant, or removing it from the list); the sender may name itself.
   The grants are the federation's dissemination agreements, which the Kafka ACLs follow
   too: naming an agency never widens them, and never silently drops it either.
4. ``TLP:RED`` goes to the named recipients only. Every other label (``AMBER+STRICT``,
   ``AMBER``, ``GREEN``, ``CLEAR``) goes to all entitled, reachable agencies, of which
   the named recipients are some (TLP limits what a recipient may share onwards; it
   does not change who receives).
5. The **sender** is always a recipient, so its own systems can read what it published;
   it must be enrolled and reachable.

The result is sorted by agency id. :func:`recipients_for` and :func:`entitled` apply the
rules to a set of records (a :class:`~broker.federation.snapshot.DirectorySnapshot` asks
them); :class:`DisseminationPolicy` is the named policy a publisher takes.

A publisher asks the same question for report after report, so the policy remembers the
last :data:`RECIPIENT_CACHE_SIZE` answers of the current snapshot. An answer depends on the
snapshot (grants, keys, revocations), on the report's sender, category, jurisdiction, TLP
and named recipients, and on ``now`` only through which key lifetimes have begun, ended or
been revoked by then: the cache key holds those fields and the number of key-lifecycle
instants of the snapshot at or before ``now``, and a new snapshot empties the cache, so a
grant taken back or a key revoked applies to the very next report. Refusals raise and are
never remembered.
"""

from __future__ import annotations

import bisect
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from broker.errors import (
    AuthorizationError,
    ConfigError,
    DisseminationError,
    SchemaValidationError,
)
from broker.federation.records import AgencyRecord
from schemas.jurisdiction import normalise_jurisdiction
from schemas.report import Report
from schemas.vocab import Tlp, is_registered_category

if TYPE_CHECKING:
    from broker.federation.snapshot import Directory, DirectorySnapshot

__all__ = ["RECIPIENT_CACHE_SIZE", "DisseminationPolicy", "entitled", "recipients_for"]

RECIPIENT_CACHE_SIZE = 256
"""Answers a :class:`DisseminationPolicy` remembers for its directory's current snapshot."""


def _subject(category: str, jurisdiction: str) -> str:
    if not is_registered_category(category):
        raise SchemaValidationError(
            f"category {category!r} is not a registered trafficking category"
        )
    try:
        return normalise_jurisdiction(jurisdiction)
    except ValueError as exc:
        raise SchemaValidationError(f"jurisdiction {jurisdiction!r}: {exc}") from None


def _known(records: Mapping[str, AgencyRecord], agency: str, role: str) -> AgencyRecord:
    record = records.get(agency)
    if record is None:
        raise ConfigError(
            f"{role} {agency!r} is not in the federation directory; known agencies: "
            f"{', '.join(sorted(records)) or 'none'} (enrol it with `fusionbus agency add`)"
        )
    return record


def entitled(
    records: Mapping[str, AgencyRecord], agency: str, *, category: str, jurisdiction: str
) -> bool:
    """Whether ``agency`` holds a grant for ``category`` covering ``jurisdiction``."""
    where = _subject(category, jurisdiction)
    return _known(records, agency, "agency").entitled(category, where)


def recipients_for(
    records: Mapping[str, AgencyRecord],
    *,
    sender: str,
    category: str,
    jurisdiction: str,
    tlp: str,
    named_recipients: Sequence[str],
    now: datetime,
) -> list[AgencyRecord]:
    """The agencies a report must be encrypted to (see the module docstring)."""
    where = _subject(category, jurisdiction)
    try:
        label = Tlp(tlp)
    except ValueError:
        raise SchemaValidationError(
            f"tlp {tlp!r} is not a TLP 2.0 label; expected one of {', '.join(t.value for t in Tlp)}"
        ) from None
    origin = _known(records, sender, "sender")
    if origin.encryption_key_at(now) is None:
        raise AuthorizationError(
            f"sender {sender!r} has no encryption key valid at {now.isoformat()}, so it "
            "could not read its own report; enrol a new key for it"
        )
    chosen = {sender: origin}
    for name in named_recipients:
        if name != sender:
            chosen[name] = _named(records, name, category, where, now)
    if label is not Tlp.RED:
        for record in records.values():
            if record.entitled(category, where) and record.encryption_key_at(now) is not None:
                chosen[record.id] = record
    return [chosen[name] for name in sorted(chosen)]


def _named(
    records: Mapping[str, AgencyRecord], name: str, category: str, where: str, now: datetime
) -> AgencyRecord:
    """The record of named recipient ``name``, or DisseminationError saying why not."""
    fix = "or remove it from named_recipients"
    record = records.get(name)
    if record is None:
        raise DisseminationError(
            f"named recipient {name!r} is not in the federation directory (known: "
            f"{', '.join(sorted(records))}); check the agency id, {fix}"
        )
    if not record.entitled(category, where):
        raise DisseminationError(
            f"named recipient {name!r} is not entitled to {category} reports about {where}: "
            "the grants (the federation's dissemination agreements) decide who receives a "
            "report, and naming an agency does not widen them; have the federation admin "
            f"run `fusionbus agency grant {name} --category {category} --jurisdiction "
            f"{where}` on the admin's machine, {fix}"
        )
    if record.encryption_key_at(now) is None:
        raise DisseminationError(
            f"named recipient {name!r} has no encryption key valid at {now.isoformat()} "
            "(expired or revoked), so it could not read the report; rotate its keys "
            f"(`fusionbus agency rotate-keys`, docs/federation.md), {fix}"
        )
    return record


def _lifecycle_instants(snapshot: DirectorySnapshot) -> tuple[datetime, ...]:
    """Every instant at which an encryption key of ``snapshot`` becomes valid, expires or
    is revoked, sorted. Whether a key is usable at ``now`` is a comparison of ``now`` with
    such instants, so two times with as many instants at or before them get one answer."""
    instants: set[datetime] = set()
    for record in snapshot.records.values():
        for entry in record.encryption_keys:
            instants.update((entry.valid_from, entry.valid_until))
            if entry.revoked_at is not None:
                instants.add(entry.revoked_at)
    return tuple(sorted(instants))


_Question = tuple[str, str, str, str, tuple[str, ...], int]


class _RecipientCache:
    """The remembered answers of one snapshot (see the module docstring), least recently
    used first out. It holds the snapshot itself, so its identity cannot be reused."""

    def __init__(self, size: int = RECIPIENT_CACHE_SIZE) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._snapshot: DirectorySnapshot | None = None
        self._instants: tuple[datetime, ...] = ()
        self._answers: OrderedDict[_Question, tuple[str, ...]] = OrderedDict()

    def kids(self, snapshot: DirectorySnapshot, report: Report, now: datetime) -> tuple[str, ...]:
        if now.tzinfo is None or now.utcoffset() is None:
            return _kids(snapshot, report, now)  # refused by the snapshot, with its message
        with self._lock:
            if snapshot is not self._snapshot:
                self._snapshot = snapshot
                self._instants = _lifecycle_instants(snapshot)
                self._answers.clear()
            handling = report.handling
            question = (
                report.sender,
                report.category,
                report.jurisdiction,
                str(handling.tlp),
                tuple(handling.named_recipients),
                bisect.bisect_right(self._instants, now),
            )
            known = self._answers.get(question)
            if known is not None:
                self._answers.move_to_end(question)
                return known
        answer = _kids(snapshot, report, now)
        with self._lock:
            if snapshot is self._snapshot:
                self._answers[question] = answer
                if len(self._answers) > self._size:
                    self._answers.popitem(last=False)
        return answer


def _kids(snapshot: DirectorySnapshot, report: Report, now: datetime) -> tuple[str, ...]:
    chosen = snapshot.recipients_for(
        sender=report.sender,
        category=report.category,
        jurisdiction=report.jurisdiction,
        tlp=str(report.handling.tlp),
        named_recipients=report.handling.named_recipients,
        now=now,
    )
    return tuple(agency.encryption_kid for agency in chosen)


@dataclass(frozen=True, slots=True)
class DisseminationPolicy:
    """The rules above, applied to ``directory``'s current snapshot on every call, so a
    live directory's changes apply at once. A :class:`~producers.Publisher` takes one."""

    directory: Directory
    _cache: _RecipientCache = field(
        default_factory=_RecipientCache, init=False, repr=False, compare=False
    )

    def recipients(self, report: Report, now: datetime) -> list[str]:
        """The encryption key ids ``report`` must be sealed to at ``now``."""
        return list(self._cache.kids(self.directory.snapshot, report, now))

    def entitled(self, agency: str, *, category: str, jurisdiction: str) -> bool:
        """Whether ``agency`` holds a grant for ``category`` covering ``jurisdiction``."""
        return self.directory.snapshot.entitled(
            agency, category=category, jurisdiction=jurisdiction
        )
