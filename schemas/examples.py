"""Realistic example messages, for ``fusionbus report example``, documentation and tests.

The people, companies and numbers are invented; identifiers carry valid check digits so
the examples pass validation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from schemas.feedback import Feedback
from schemas.identifiers import Coordinates, Passport, VehicleRegistration
from schemas.jurisdiction import normalise_jurisdiction, registered_places
from schemas.report import Evaluation, Handling, Location, Report
from schemas.subjects import (
    ConsignmentSubject,
    ContainerSubject,
    PersonSubject,
    PhoneSubject,
    Subject,
    VehicleSubject,
    VesselSubject,
)
from schemas.vocab import (
    HandlingCondition,
    InformationCredibility,
    Outcome,
    Precedence,
    SourceReliability,
    Tlp,
    registered_categories,
)

__all__ = ["example_feedback", "example_report"]

_CONTAINER = "CSQU3054383"
_KARACHI = Coordinates(lat=24.8436, lon=66.9853)

_NARCOTICS_NARRATIVE = (
    "Risk profiling of export goods declarations at {place} selected container "
    "CSQU3054383, declared as 480 bags of Himalayan rock salt (HS 2501.00) for onward "
    "carriage by sea. A usually reliable source reports that a consignment of heroin, "
    "estimated at 60 to 80 kg, has been concealed inside the salt bags by a facilitator "
    "working through the clearing agent. The container was stuffed at a private warehouse "
    "and moved to the terminal on a truck later seen at the warehouse again. The exporter "
    "was registered four months ago and has shipped twice, both times to the same "
    "consignee. The container is booked on the vessel named below and is due to be loaded "
    "within the validity period of this report."
)

_GENERIC_NARRATIVE = (
    "Customs risk profiling at {place} selected container CSQU3054383 declared as "
    "household goods. Intelligence from a usually reliable source indicates that "
    "the consignment is linked to {label_lower}. The exporter, its clearing agent and the "
    "truck that moved the container are described below."
)


_LEAD_AGENCY = {
    "narcotics": "anf",
    "precursor_chemicals": "anf",
    "human_trafficking": "fia",
    "migrant_smuggling": "fia",
    "cash_smuggling": "fia",
}
"""The agency an example report asks to act, by category, after the mandates of the
Anti Narcotics Force and the Federal Investigation Agency; other categories are Customs'
own, so their examples name no one."""

_REQUESTED_ACTION = {
    "anf": "ANF to coordinate a joint examination of the container with Customs before "
    "loading; do not alert the exporter or the clearing agent.",
    "fia": "FIA to trace the persons, phones and funds linked to the consignment and to "
    "coordinate with Customs before the container moves; do not alert the exporter or the "
    "clearing agent.",
    "": "Entitled agencies to check the container, the exporter and the vehicle against "
    "their holdings and tell Customs of any match; do not alert the exporter or the "
    "clearing agent.",
}


def example_report(
    category: str = "narcotics",
    jurisdiction: str = "PKKHI",
    *,
    message_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Report:
    """A valid report from Pakistan Customs about a suspect container at ``jurisdiction``.

    It is ``TLP:AMBER`` and names the agency whose mandate covers ``category`` (``anf``
    for narcotics and precursor chemicals; ``fia`` for human trafficking, migrant and cash
    smuggling), asking it to act; other categories name no one. A named recipient must be
    entitled to the category and jurisdiction, or publishing it is refused.

    ``message_id`` and ``now`` default to a fresh UUID and the current time; pass them
    for a deterministic report. Raises ``pydantic.ValidationError`` if ``category`` is
    not registered or ``jurisdiction`` is unknown.
    """
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    try:
        where = normalise_jurisdiction(jurisdiction)
    except ValueError:
        where = jurisdiction  # the report's own validation reports it
    known = registered_places().get(where)
    place_name = known.name if known is not None else where
    label = registered_categories().get(category, category)
    narcotics = category == "narcotics"
    template = _NARCOTICS_NARRATIVE if narcotics else _GENERIC_NARRATIVE
    lead = _LEAD_AGENCY.get(category, "")
    return Report.model_validate(
        {
            "message_id": message_id or uuid.uuid4(),
            "sender": "customs",
            "category": category,
            "jurisdiction": jurisdiction,
            "precedence": Precedence.IMMEDIATE,
            "handling": Handling(
                tlp=Tlp.AMBER,
                named_recipients=(lead,) if lead else (),
                conditions=(
                    HandlingCondition.NO_ONWARD_DISSEMINATION,
                    HandlingCondition.NOT_FOR_COURT,
                ),
            ),
            "evaluation": Evaluation(
                source_reliability=SourceReliability.B,
                information_credibility=InformationCredibility.PROBABLY_TRUE,
            ),
            "created_at": created,
            "observed_at": created - timedelta(hours=3),
            "valid_from": created,
            "valid_until": created + timedelta(hours=72),
            "title": (
                f"Suspected heroin concealed in rock salt export, container {_CONTAINER}"
                if narcotics
                else f"Suspect container {_CONTAINER}: {label}"
            ),
            "narrative": template.format(place=place_name, label_lower=label.lower()),
            "requested_action": _REQUESTED_ACTION[lead],
            "location": _location(known is not None, where),
            "subjects": _subjects(),
        }
    )


def example_feedback(
    report: Report,
    outcome: Outcome = Outcome.SEIZURE,
    *,
    sender: str = "anf",
    message_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Feedback:
    """A valid feedback message from ``sender`` about ``report``."""
    return Feedback(
        message_id=message_id or uuid.uuid4(),
        report_id=report.message_id,
        originator=report.sender,
        sender=sender,
        created_at=now or datetime.now(UTC),
        outcome=outcome,
        quantity=Decimal(72) if outcome is Outcome.SEIZURE else None,
        unit="kg" if outcome is Outcome.SEIZURE else None,
        note="Joint examination at the terminal; 72 kg of heroin recovered from 31 bags."
        if outcome is Outcome.SEIZURE
        else None,
    )


def _location(is_place: bool, where: str) -> Location | None:
    if not is_place:
        return None
    if where == "PKKHI":
        return Location(place=where, coordinates=_KARACHI, description="East Wharf, berth 7")
    return Location(place=where)


def _subjects() -> tuple[Subject, ...]:
    return (
        ContainerSubject(number=_CONTAINER, seal="PCS-0048213"),
        ConsignmentSubject(
            description="Himalayan rock salt, 480 bags of 50 kg",
            hs_code="2501.00",
            goods_declaration="KEXP-SB-0193321-27112026",
            containers=(_CONTAINER,),
            origin_country="PK",
            destination_country="MY",
        ),
        VesselSubject(imo="9319466", name="MV EXAMPLE TRADER", flag="PA"),
        PersonSubject(
            name="Imran Example",
            cnic="42101-1234567-1",
            passports=(Passport(number="AB1234567", issuing_country="PK"),),
            phones=("+923001234567",),
            role="exporter, proprietor of the exporting firm",
        ),
        VehicleSubject(
            registration=VehicleRegistration(country="PK", plate="TKR-842"),
            description="white Hino 500 prime mover with a 40 ft trailer",
        ),
        PhoneSubject(number="+923211234567", remarks="used by the clearing agent's runner"),
    )
