"""The message contract: pure data models, no I/O, importing nothing else of fusionbus.

Four top-level message types travel on the bus, :class:`Report`, :class:`Feedback`,
:class:`Notice` and :class:`Forward`, all frozen pydantic models at schema version 1.0::

    data = report.model_dump_json()               # bytes on the wire (before sealing)
    report = Report.model_validate_json(data)     # raises pydantic.ValidationError only
    lines = describe_validation_error(exc)        # for people

Vocabularies live in :mod:`schemas.vocab`, jurisdictions in :mod:`schemas.jurisdiction`,
identifiers in :mod:`schemas.identifiers`, subjects in :mod:`schemas.subjects`. The
compatibility rules are in ``docs/schemas.md``.
"""

from schemas._base import SCHEMA_VERSION, AgencyId, UtcDatetime
from schemas.errors import describe_validation_error
from schemas.examples import example_feedback, example_report
from schemas.feedback import Feedback
from schemas.forward import Forward
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
from schemas.notice import Notice
from schemas.report import (
    MAX_ATTACHMENT_BYTES,
    Attachment,
    Category,
    Evaluation,
    Handling,
    Location,
    Relations,
    Report,
)
from schemas.subjects import (
    ConsignmentSubject,
    ContainerSubject,
    DocumentKind,
    DocumentSubject,
    PersonSubject,
    PhoneSubject,
    Subject,
    VehicleSubject,
    VesselSubject,
)
from schemas.vocab import (
    HandlingCondition,
    InformationCredibility,
    NoticeAction,
    Outcome,
    Precedence,
    SourceReliability,
    Tlp,
    is_registered_category,
    register_category,
    registered_categories,
)

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "SCHEMA_VERSION",
    "AgencyId",
    "Attachment",
    "Category",
    "Cnic",
    "ConsignmentSubject",
    "ContainerNumber",
    "ContainerSubject",
    "Coordinates",
    "CountryCode",
    "DocumentKind",
    "DocumentSubject",
    "Evaluation",
    "Feedback",
    "FlightNumber",
    "Forward",
    "Handling",
    "HandlingCondition",
    "Imei",
    "ImoNumber",
    "InformationCredibility",
    "Jurisdiction",
    "Location",
    "Locode",
    "Notice",
    "NoticeAction",
    "Outcome",
    "Passport",
    "PassportNumber",
    "PersonSubject",
    "PhoneNumber",
    "PhoneSubject",
    "Place",
    "PlaceKind",
    "Precedence",
    "Relations",
    "Report",
    "SourceReliability",
    "Subject",
    "Tlp",
    "UtcDatetime",
    "VehicleRegistration",
    "VehicleSubject",
    "VesselSubject",
    "ancestors",
    "covers",
    "describe_validation_error",
    "example_feedback",
    "example_report",
    "is_registered_category",
    "normalise_jurisdiction",
    "place",
    "register_category",
    "register_place",
    "register_places_csv",
    "registered_categories",
    "registered_places",
]
