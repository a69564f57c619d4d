"""The topic scheme: which Kafka topic a report goes to, and which topics a grant reads.

Kafka filters by **topic** (what a consumer fetches, and what an ACL allows); the consumer
filters by **header** (the clear routing metadata of each envelope). The split::

    fusionbus.reports.<area>.<category>     sealed reports
        area = the ISO 3166-2 subdivision directly under the country, lower case
               ("pk-sd") for a report about a subdivision or a place in it, or the
               country ("pk") for a report about the whole country
    fusionbus.quarantine.<agency>           what <agency>'s consumers rejected, with reasons
    fusionbus.directory                     the root-signed federation directory (compacted)

A place (UN/LOCODE, thousands of them) never gets a topic of its own: it travels in the
``jurisdiction`` header and the consumer drops what its subscription does not cover. A
subscription to ``PK`` reads ``pk`` and every ``pk-*`` topic of its categories; one to
``PK-SD`` or ``PKKHI`` reads ``pk-sd`` only. Topic counts stay bounded by (subdivisions + 1)
x categories per country: 8 x 10 = 80 for Pakistan. See ``docs/topics.md`` for the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from schemas.jurisdiction import ancestors, first_level_subdivisions, normalise_jurisdiction

__all__ = [
    "DIRECTORY_TOPIC",
    "REPORTS_PREFIX",
    "area_of",
    "quarantine_topic",
    "report_topic",
    "report_topics",
    "subscription_pattern",
]

REPORTS_PREFIX = "fusionbus.reports."
DIRECTORY_TOPIC = "fusionbus.directory"
_QUARANTINE_PREFIX = "fusionbus.quarantine."
_AGENCY = re.compile(r"[a-z][a-z0-9-]{1,31}")
_CATEGORY = re.compile(r"[a-z][a-z0-9_]{1,39}")


def area_of(jurisdiction: str) -> str:
    """The topic area of a jurisdiction: its first-level subdivision, else its country.

    >>> area_of("PKKHI"), area_of("PK-SD"), area_of("PK")
    ('pk-sd', 'pk-sd', 'pk')
    """
    chain = ancestors(jurisdiction)  # nearest first, ending with the country
    return (chain[-2] if len(chain) >= 2 else chain[-1]).lower()


def report_topic(jurisdiction: str, category: str) -> str:
    """The topic a report about ``jurisdiction`` in ``category`` is published to."""
    return f"{REPORTS_PREFIX}{area_of(jurisdiction)}.{_category(category)}"


def quarantine_topic(agency: str) -> str:
    """Where ``agency``'s consumers put what they rejected (envelope bytes and reason)."""
    if not _AGENCY.fullmatch(agency):
        raise ValueError(f"agency id {agency!r}: expected 2-32 of a-z, 0-9, '-', like 'anf'")
    return f"{_QUARANTINE_PREFIX}{agency}"


def subscription_pattern(jurisdictions: Iterable[str], categories: Iterable[str]) -> str:
    """A regular expression (for aiokafka's ``subscribe(pattern=...)``) matching every
    report topic that may hold reports covered by the jurisdictions x categories.

    Topics created later (a new category in a new province) are picked up by the pattern
    at the consumer's next metadata refresh.
    """
    areas: set[str] = set()
    for code in jurisdictions:
        value = normalise_jurisdiction(code)
        if len(value) == 2:  # a country: itself and every subdivision under it
            areas.add(re.escape(value.lower()) + r"(?:-[a-z0-9]{1,3})?")
        else:
            areas.add(re.escape(area_of(value)))
    cats = sorted({re.escape(_category(c)) for c in categories})
    if not areas or not cats:
        raise ValueError("a subscription needs at least one jurisdiction and one category")
    return rf"^{re.escape(REPORTS_PREFIX)}(?:{'|'.join(sorted(areas))})\.(?:{'|'.join(cats)})$"


def report_topics(jurisdictions: Iterable[str], categories: Iterable[str]) -> list[str]:
    """The literal report topics ``subscription_pattern`` matches, sorted: per category, a
    country's own topic and one per first-level subdivision under it (pycountry), or a
    subdivision's or place's area. These are what a grant's READ ACLs name.

    >>> report_topics(["PK-SD", "PKKHI"], ["narcotics"])
    ['fusionbus.reports.pk-sd.narcotics']
    >>> len(report_topics(["PK"], ["narcotics", "arms"]))
    16
    """
    areas: set[str] = set()
    for code in jurisdictions:
        value = normalise_jurisdiction(code)
        if len(value) == 2:
            areas.add(value.lower())
            areas.update(sub.lower() for sub in first_level_subdivisions(value))
        else:
            areas.add(area_of(value))
    return sorted(f"{REPORTS_PREFIX}{a}.{_category(c)}" for a in areas for c in set(categories))


def _category(code: str) -> str:
    if not _CATEGORY.fullmatch(code):
        raise ValueError(f"category {code!r}: expected a lower-case code like 'narcotics'")
    return code
