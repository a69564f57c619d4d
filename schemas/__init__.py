"""The message contract: pure data models, no I/O, importing nothing else of fusionbus.

Two top-level message types travel on the bus, :class:`Report` and :class:`Feedback`,
both frozen pydantic models at schema version 1.0::

    data = report.model_dump_json()               # bytes on the wire (before sealing)
    report = Report.model_validate_json(data)     # raises pydantic.ValidationError only
    lines = describe_validation_error(exc)        # for people

Vocabularies live in :mod:`schemas.vocab`, jurisdictions in :mod:`schemas.jurisdiction`,
identifiers in :mod:`schemas.identifiers`, subjects in :mod:`schemas.subjects`. The
compatibility rules are in ``docs/schemas.md``.
"""

from schemas._base import SCHEMA_VERSION, AgencyId, UtcDatetime
from schemas.identifiers import (
    Cnic,
    ContainerNumber,
    Coordinates,
    FlightNumber,
    Imei,
    ImoNumber,
    Passport,
    PassportNumber,
    PhoneNumber,
    VehicleRegistration,
)
from schemas.jurisdiction import (
    CountryCode,
    Jurisdiction,
    Locode,
    Place,
    PlaceKind,
    ancestors,
    covers,
    normalise_jurisdiction,
    place,
    register_place,
    register_places_csv,
    registered_places,
)
from schemas.vocab import (
    HandlingCondition,
    InformationCredibility,
    Outcome,
    Precedence,
    SourceReliability,
    Tlp,
    is_registered_category,
    register_category,
    registered_categories,
)

__all__ = [
    "SCHEMA_VERSION",
    "AgencyId",
    "Cnic",
    "ContainerNumber",
    "Coordinates",
    "CountryCode",
    "FlightNumber",
    "HandlingCondition",
    "Imei",
    "ImoNumber",
    "InformationCredibility",
    "Jurisdiction",
    "Locode",
    "Outcome",
    "Passport",
    "PassportNumber",
    "PhoneNumber",
    "Place",
    "PlaceKind",
    "Precedence",
    "SourceReliability",
    "Tlp",
    "UtcDatetime",
    "VehicleRegistration",
    "ancestors",
    "covers",
    "is_registered_category",
    "normalise_jurisdiction",
    "place",
    "register_category",
    "register_place",
    "register_places_csv",
    "registered_categories",
    "registered_places",
]
