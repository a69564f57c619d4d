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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    from broker.federation.snapshot import Directory

__all__ = ["DisseminationPolicy", "entitled", "recipients_for"]


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


@dataclass(frozen=True, slots=True)
class DisseminationPolicy:
    """The rules above, applied to ``directory``'s current snapshot on every call, so a
    live directory's changes apply at once. A :class:`~producers.Publisher` takes one."""

    directory: Directory

    def recipients(self, report: Report, now: datetime) -> list[str]:
        """The encryption key ids ``report`` must be sealed to at ``now``."""
        chosen = self.directory.snapshot.recipients_for(
            sender=report.sender,
            category=report.category,
            jurisdiction=report.jurisdiction,
            tlp=str(report.handling.tlp),
            named_recipients=report.handling.named_recipients,
            now=now,
        )
        return [agency.encryption_kid for agency in chosen]

    def entitled(self, agency: str, *, category: str, jurisdiction: str) -> bool:
        """Whether ``agency`` holds a grant for ``category`` covering ``jurisdiction``."""
        return self.directory.snapshot.entitled(
            agency, category=category, jurisdiction=jurisdiction
        )
