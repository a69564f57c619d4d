"""The Kafka record layout: which topic a report goes to, which topics a grant reads, and the
names of the record headers that travel with it.

Kafka filters by **topic** (what a consumer fetches, and what an ACL allows); the consumer
filters by **header** (the clear routing metadata of each envelope). The split::

    fusionbus.reports.<sender>.<area>.<category>     sealed reports
        sender = the publishing agency's id ("customs"): each agency writes only its own
                 topics, so no agency can list the offsets of topics it may not read
        area   = the ISO 3166-2 subdivision directly under the country, lower case
                 ("pk-sd") for a report about a subdivision or a place in it, or the
                 country ("pk") for a report about the whole country
    fusionbus.inbox.<recipient>.<sender>    sealed notices from <sender> to <recipient> alone
                 (receipts, outcomes, retractions): <sender> writes it, <recipient> reads
                 every topic of its inbox, and nobody else may list even its offsets
    fusionbus.quarantine.<agency>           what <agency>'s consumers rejected, with reasons
    fusionbus.directory                     the root-signed federation directory (compacted)
    fusionbus.audit.<agency>                <agency>'s hash-chained, signed audit records: only
                 <agency> writes it, every agency in good standing reads every audit topic
                 (ids, digests, parties and acts, never content; ``docs/audit.md``)
    fusionbus.audit-root                    the federation root's own audit chain (the
                 admin's acts on the directory), written by the admin alone
    fusionbus.audit-anchors                 the root-countersigned heads of the audit chains

A place (UN/LOCODE, thousands of them) never gets a topic of its own: it travels in the
``jurisdiction`` header and the consumer drops what its subscription does not cover. A
subscription to ``PK`` reads ``pk`` and every ``pk-*`` topic of its categories, from every
sender; one to ``PK-SD`` or ``PKKHI`` reads ``pk-sd`` only. A record's topic names its sender,
and only that sender's certificate (or a super user) can write it, so the consumer refuses a
record whose signed header maps to another topic (:func:`expected_topic`). See
``docs/topics.md`` for the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from schemas._base import AGENCY_ID_PATTERN
from schemas.jurisdiction import ancestors, first_level_subdivisions, normalise_jurisdiction

__all__ = [
    "AUDIT_ANCHOR_TOPIC",
    "AUDIT_PREFIX",
    "DIRECTORY_TOPIC",
    "INBOX_PREFIX",
    "INBOX_RETENTION_MS",
    "QUARANTINE_HEADERS",
    "REPORTS_PREFIX",
    "ROOT_AUDIT_TOPIC",
    "ROUTING_HEADERS",
    "Header",
    "area_of",
    "audit_topic",
    "audit_writer_of",
    "expected_topic",
    "inbox_prefix",
    "inbox_topic",
    "parties_of_inbox",
    "quarantine_topic",
    "report_topic",
    "report_topics",
    "sender_of_topic",
    "sender_prefix",
    "subscription_pattern",
]

REPORTS_PREFIX = "fusionbus.reports."
INBOX_PREFIX = "fusionbus.inbox."
DIRECTORY_TOPIC = "fusionbus.directory"
INBOX_RETENTION_MS = 32 * 24 * 3600 * 1000
"""How long an inbox topic keeps its records: 32 days, a day longer than the longest an
envelope may live (feedback and notices live that long), so an agency offline for weeks
still reads every notice sent to it meanwhile."""
AUDIT_PREFIX = "fusionbus.audit."
AUDIT_ANCHOR_TOPIC = "fusionbus.audit-anchors"
"""Not under :data:`AUDIT_PREFIX`, so no agency id can name it (nor :data:`ROOT_AUDIT_TOPIC`)."""
ROOT_AUDIT_TOPIC = "fusionbus.audit-root"
_QUARANTINE_PREFIX = "fusionbus.quarantine."
# Exactly what an agency id may be (schemas.AgencyId), without its anchors.
_AGENCY_RE = AGENCY_ID_PATTERN.removeprefix("^").removesuffix("$")
_AGENCY = re.compile(_AGENCY_RE)
_CATEGORY_RE = r"[a-z][a-z0-9_]{1,39}"
_CATEGORY = re.compile(_CATEGORY_RE)
_INBOX_TOPIC = re.compile(
    rf"{re.escape(INBOX_PREFIX)}(?P<recipient>{_AGENCY_RE})\.(?P<sender>{_AGENCY_RE})"
)
_REPORT_TOPIC = re.compile(
    rf"{re.escape(REPORTS_PREFIX)}(?P<sender>{_AGENCY_RE})\."
    rf"(?P<area>[a-z]{{2}}(?:-[a-z0-9]{{1,3}})?)\.(?P<category>{_CATEGORY_RE})"
)


class Header:
    """The Kafka record header names fusionbus writes and reads.

    Routing headers are clear, *unauthenticated* copies of routing fields of a report record
    (consumers only ever skip records by them; the signed header inside the envelope decides).
    Quarantine headers say why a consumer rejected a record and where it was read, and, when
    the copy had to be cut to fit, what the original was.
    """

    MESSAGE_ID: Final = "fb-message-id"
    SENDER: Final = "fb-sender"
    CATEGORY: Final = "fb-category"
    JURISDICTION: Final = "fb-jurisdiction"
    PRECEDENCE: Final = "fb-precedence"
    TLP: Final = "fb-tlp"

    REASON: Final = "fb-reason"
    DETAIL: Final = "fb-detail"
    SOURCE_TOPIC: Final = "fb-source-topic"
    SOURCE_PARTITION: Final = "fb-source-partition"
    SOURCE_OFFSET: Final = "fb-source-offset"
    ORIGINAL_SHA256: Final = "fb-original-sha256"
    ORIGINAL_SIZE: Final = "fb-original-size"
    ORIGINAL_KEY_SHA256: Final = "fb-original-key-sha256"
    TRUNCATED: Final = "fb-truncated"


ROUTING_HEADERS: Final = (
    Header.MESSAGE_ID,
    Header.SENDER,
    Header.CATEGORY,
    Header.JURISDICTION,
    Header.PRECEDENCE,
    Header.TLP,
)
"""The headers of a report record, in the order the publisher writes them."""

QUARANTINE_HEADERS: Final = (
    Header.REASON,
    Header.DETAIL,
    Header.SOURCE_TOPIC,
    Header.SOURCE_PARTITION,
    Header.SOURCE_OFFSET,
    Header.ORIGINAL_SHA256,
    Header.ORIGINAL_SIZE,
    Header.ORIGINAL_KEY_SHA256,
    Header.TRUNCATED,
)
"""The headers a quarantine record may carry, in the order the quarantine writes them: the
first five always, the others only on a copy cut to fit."""


def area_of(jurisdiction: str) -> str:
    """The topic area of a jurisdiction: its first-level subdivision, else its country.

    >>> area_of("PKKHI"), area_of("PK-SD"), area_of("PK")
    ('pk-sd', 'pk-sd', 'pk')
    """
    chain = ancestors(jurisdiction)  # nearest first, ending with the country
    return (chain[-2] if len(chain) >= 2 else chain[-1]).lower()


def report_topic(sender: str, jurisdiction: str, category: str) -> str:
    """The topic ``sender`` publishes a report about ``jurisdiction`` in ``category`` to.

    >>> report_topic("customs", "PKKHI", "narcotics")
    'fusionbus.reports.customs.pk-sd.narcotics'

    Raises ``ValueError`` naming the sender, jurisdiction or category that is malformed.
    """
    return f"{sender_prefix(sender)}{area_of(jurisdiction)}.{_category(category)}"


def expected_topic(sender: str, jurisdiction: str, category: str) -> str | None:
    """The only topic a record whose signed header names ``sender``, ``jurisdiction`` and
    ``category`` may arrive on; ``None`` when those values map to no topic at all (a
    jurisdiction unknown here, a malformed id), so that no topic is the right one.

    A consumer compares it with the record's arrival topic: only ``sender``'s certificate
    (or a super user) can write ``sender``'s topics, so a mismatch is a record copied or
    forged onto a topic its signer does not own. Never raises.
    """
    try:
        return report_topic(sender, jurisdiction, category)
    except ValueError:
        return None


def sender_of_topic(topic: str) -> str | None:
    """The agency whose topic ``topic`` is, or ``None`` when it is not a report topic.

    >>> sender_of_topic("fusionbus.reports.customs.pk-sd.narcotics")
    'customs'
    >>> sender_of_topic("fusionbus.quarantine.anf") is None
    True
    """
    match = _REPORT_TOPIC.fullmatch(topic)
    return match["sender"] if match else None


def sender_prefix(sender: str) -> str:
    """The prefix every topic of ``sender`` starts with (what its WRITE ACL names).

    >>> sender_prefix("anf")
    'fusionbus.reports.anf.'
    """
    return f"{REPORTS_PREFIX}{_agency(sender)}."


def inbox_topic(recipient: str, sender: str) -> str:
    """Where ``sender`` puts the notices it seals to ``recipient`` alone.

    >>> inbox_topic("customs", "anf")
    'fusionbus.inbox.customs.anf'
    """
    return f"{inbox_prefix(recipient)}{_agency(sender)}"


def inbox_prefix(recipient: str) -> str:
    """The prefix of every inbox topic of ``recipient`` (what its READ ACL names): agency
    ids hold no dot, so it matches no other agency's inbox.

    >>> inbox_prefix("anf")
    'fusionbus.inbox.anf.'
    """
    return f"{INBOX_PREFIX}{_agency(recipient)}."


def parties_of_inbox(topic: str) -> tuple[str, str] | None:
    """(recipient, sender) of an inbox topic, or ``None`` when ``topic`` is not one.

    >>> parties_of_inbox("fusionbus.inbox.customs.anf")
    ('customs', 'anf')
    >>> parties_of_inbox("fusionbus.reports.customs.pk.arms") is None
    True
    """
    match = _INBOX_TOPIC.fullmatch(topic)
    return (match["recipient"], match["sender"]) if match else None


def audit_topic(agency: str) -> str:
    """Where ``agency`` writes its audit chain.

    >>> audit_topic("anf")
    'fusionbus.audit.anf'
    """
    return f"{AUDIT_PREFIX}{_agency(agency)}"


def audit_writer_of(topic: str) -> str | None:
    """The agency whose audit topic ``topic`` is, or ``None`` when it is not one.

    >>> audit_writer_of("fusionbus.audit.anf"), audit_writer_of("fusionbus.audit-anchors")
    ('anf', None)
    """
    writer = topic.removeprefix(AUDIT_PREFIX)
    return writer if writer != topic and _AGENCY.fullmatch(writer) else None


def quarantine_topic(agency: str) -> str:
    """Where ``agency``'s consumers put what they rejected (envelope bytes and reason)."""
    return f"{_QUARANTINE_PREFIX}{_agency(agency)}"


def subscription_pattern(jurisdictions: Iterable[str], categories: Iterable[str]) -> str:
    """A regular expression (for aiokafka's ``subscribe(pattern=...)``) matching every
    report topic, of any sender, that may hold reports covered by the jurisdictions x
    categories.

    Topics created later (a new sender, a new category in a new province) are picked up by
    the pattern at the consumer's next metadata refresh; Kafka lists a consumer only the
    topics it may describe, which for report topics are those it may read or write.
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
    return (
        rf"^{re.escape(REPORTS_PREFIX)}{_AGENCY_RE}\."
        rf"(?:{'|'.join(sorted(areas))})\.(?:{'|'.join(cats)})$"
    )


def report_topics(
    jurisdictions: Iterable[str], categories: Iterable[str], senders: Iterable[str]
) -> list[str]:
    """The literal report topics of ``senders`` that ``subscription_pattern`` matches, sorted:
    per sender and category, a country's own topic and one per first-level subdivision under
    it (pycountry), or a subdivision's or place's area. These are what a grant's READ ACLs
    name and what the admin creates.

    >>> report_topics(["PK-SD", "PKKHI"], ["narcotics"], ["customs"])
    ['fusionbus.reports.customs.pk-sd.narcotics']
    >>> len(report_topics(["PK"], ["narcotics", "arms"], ["customs", "anf"]))
    32
    """
    areas: set[str] = set()
    for code in jurisdictions:
        value = normalise_jurisdiction(code)
        if len(value) == 2:
            areas.add(value.lower())
            areas.update(sub.lower() for sub in first_level_subdivisions(value))
        else:
            areas.add(area_of(value))
    cats = {_category(c) for c in categories}
    prefixes = {sender_prefix(s) for s in senders}
    return sorted(f"{p}{a}.{c}" for p in prefixes for a in areas for c in cats)


def _agency(agency: str) -> str:
    if not _AGENCY.fullmatch(agency):
        raise ValueError(
            f"agency id {agency!r}: expected a lowercase letter, then 1 to 31 lowercase "
            "letters, digits or '-' (2 to 32 in all), like 'customs'"
        )
    return agency


def _category(code: str) -> str:
    if not _CATEGORY.fullmatch(code):
        raise ValueError(f"category {code!r}: expected a lower-case code like 'narcotics'")
    return code
