"""Controlled vocabularies: precedence, TLP 2.0, handling conditions, Admiralty grades,
trafficking categories and feedback outcomes.

Codes are stable: they travel on the wire and in topic names, so a code is never renamed
or reused. Trafficking categories are the one open list; a deployment adds its own with
:func:`register_category` at start-up (from its configuration), and reports are checked
against the registry.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType

__all__ = [
    "CATEGORY_PATTERN",
    "HandlingCondition",
    "InformationCredibility",
    "NoticeAction",
    "Outcome",
    "Precedence",
    "SourceReliability",
    "Tlp",
    "is_registered_category",
    "register_category",
    "registered_categories",
]


class Precedence(StrEnum):
    """How fast a report must be handled, highest first (military message precedence)."""

    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"


class Tlp(StrEnum):
    """FIRST Traffic Light Protocol 2.0 labels, spelled exactly as the standard does."""

    RED = "TLP:RED"
    """Named recipients only."""
    AMBER_STRICT = "TLP:AMBER+STRICT"
    """The recipient organisation only."""
    AMBER = "TLP:AMBER"
    """The recipient organisation and those it must inform to act."""
    GREEN = "TLP:GREEN"
    """The community (all participating agencies)."""
    CLEAR = "TLP:CLEAR"
    """No limit on disclosure."""


class HandlingCondition(StrEnum):
    """Law-enforcement handling conditions, in the style of Europol's H0-H3 codes and the
    UK 3x5x2 handling code. They restrict what a recipient may do with the information,
    on top of who may read it (TLP).
    """

    NO_ONWARD_DISSEMINATION = "no_onward_dissemination"
    """Not to be passed on beyond the recipients without the originator's consent."""
    NOT_FOR_COURT = "not_for_court"
    """Not to be used as evidence in judicial proceedings without the originator's
    permission (intelligence only)."""
    NO_ACTION_WITHOUT_CONSENT = "no_action_without_consent"
    """No executive action (arrest, search, seizure) without first consulting the
    originator, e.g. to protect an ongoing operation."""
    PROTECT_SOURCE = "protect_source"
    """Details that could identify the source must not be disclosed further."""


class SourceReliability(StrEnum):
    """Admiralty (NATO) source reliability grade."""

    A = "A"
    """Completely reliable."""
    B = "B"
    """Usually reliable."""
    C = "C"
    """Fairly reliable."""
    D = "D"
    """Not usually reliable."""
    E = "E"
    """Unreliable."""
    F = "F"
    """Reliability cannot be judged."""


class InformationCredibility(IntEnum):
    """Admiralty (NATO) information credibility grade."""

    CONFIRMED = 1
    PROBABLY_TRUE = 2
    POSSIBLY_TRUE = 3
    DOUBTFUL = 4
    IMPROBABLE = 5
    CANNOT_BE_JUDGED = 6


class Outcome(StrEnum):
    """What a recipient reports back to the originator about a report."""

    RECEIVED = "received"
    """The recipient's system took delivery (automatic receipt)."""
    ACKNOWLEDGED = "acknowledged"
    """A person at the recipient agency has read it."""
    ACTIONED = "actioned"
    """The recipient acted on it (e.g. targeted a consignment for examination)."""
    SEIZURE = "seizure"
    """Action led to a seizure."""
    ARREST = "arrest"
    """Action led to an arrest."""
    NO_TRACE = "no_trace"
    """The recipient looked and found nothing."""
    FALSE_POSITIVE = "false_positive"
    """The information proved wrong."""
    OTHER = "other"
    """Another result, told in the note."""
    APPLIED = "applied"
    """The recipient applied the originator's notice (retraction, purge, supersession) to its
    copies; ``notice_id`` names the notice."""
    FORWARD_REQUESTED = "forward_requested"
    """The recipient asks the originator's consent to forward it to ``forward_to``."""
    FORWARDED = "forwarded"
    """The recipient forwarded it to ``forward_to`` (the originator is told of every
    forward)."""

    @property
    def is_result(self) -> bool:
        """Whether this is what came of the report (seizure ... other), rather than a stage
        of handling it (received, acknowledged, actioned, applied)."""
        return self not in (
            Outcome.RECEIVED, Outcome.ACKNOWLEDGED, Outcome.ACTIONED, Outcome.APPLIED,
            Outcome.FORWARD_REQUESTED, Outcome.FORWARDED,
        )  # fmt: skip

    @property
    def about_forwarding(self) -> bool:
        """Whether it asks for or tells of a forward (and then names ``forward_to``)."""
        return self in (Outcome.FORWARD_REQUESTED, Outcome.FORWARDED)


class NoticeAction(StrEnum):
    """What the originator of a report tells its recipients to do with their copies."""

    SUPERSEDE = "supersede"
    """A corrected report (``superseded_by``) replaces it; the original stays listed, marked
    superseded."""
    RETRACT = "retract"
    """It is withdrawn: still listed, marked retracted, with the reason."""
    PURGE = "purge"
    """It must not be kept: delete every local copy and never display it again."""
    CONSENT = "consent"
    """The originator consents to the recipient forwarding it to ``forward_to``."""
    DECLINE = "decline"
    """The originator declines the recipient's request to forward it to ``forward_to``."""

    @property
    def changes_report(self) -> bool:
        """Whether it changes the recipient's copies (supersede, retract, purge) rather than
        answering a request to forward (consent, decline)."""
        return self in (NoticeAction.SUPERSEDE, NoticeAction.RETRACT, NoticeAction.PURGE)

    @property
    def rank(self) -> int:
        """Which of two notices on one report is in force: the higher rank (a purge is
        final; a retraction outranks a supersession; consent and decline change nothing)."""
        return {"supersede": 1, "retract": 2, "purge": 3}.get(self.value, 0)


CATEGORY_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
_CATEGORY = re.compile(CATEGORY_PATTERN)

_SEED_CATEGORIES: dict[str, str] = {
    "narcotics": "Narcotic drugs and psychotropic substances",
    "precursor_chemicals": "Drug precursor chemicals",
    "human_trafficking": "Trafficking in human beings",
    "migrant_smuggling": "Smuggling of migrants",
    "contraband": "Contraband and customs fraud (smuggled or mis-declared goods)",
    "arms": "Arms, ammunition and explosives",
    "cash_smuggling": "Cash and currency smuggling",
    "wildlife": "Wildlife and forest products",
    "counterfeit_goods": "Counterfeit and pirated goods",
    "cultural_property": "Cultural property and antiquities",
}

_lock = threading.Lock()
_categories: dict[str, str] = dict(_SEED_CATEGORIES)


def register_category(code: str, label: str) -> None:
    """Add a trafficking category code, e.g. ``register_category("fuel", "Fuel smuggling")``.

    Idempotent for the same code and label. Raises ``ValueError`` if the code is not a
    lowercase snake_case word of 2 to 40 characters, or is already registered with a
    different label (codes are stable and never repurposed).
    """
    if _CATEGORY.fullmatch(code) is None:
        raise ValueError(
            f"category code {code!r} is not valid: expected lowercase snake_case, "
            "2 to 40 characters, starting with a letter (e.g. fuel_smuggling)"
        )
    label = label.strip()
    if not label or len(label) > 200:
        raise ValueError(f"category {code!r} needs a label of 1 to 200 characters")
    with _lock:
        existing = _categories.get(code)
        if existing is not None and existing != label:
            raise ValueError(
                f"category {code!r} is already registered as {existing!r}; "
                "codes are stable, choose a new code instead of relabelling"
            )
        _categories[code] = label


def registered_categories() -> Mapping[str, str]:
    """The registered category codes and their labels (a read-only snapshot)."""
    with _lock:
        return MappingProxyType(dict(_categories))


def is_registered_category(code: str) -> bool:
    """Whether ``code`` is a registered trafficking category."""
    return code in _categories


def _reset_categories() -> None:
    """Back to the seed list (tests only)."""
    with _lock:
        _categories.clear()
        _categories.update(_SEED_CATEGORIES)
