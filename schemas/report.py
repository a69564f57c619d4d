"""The actionable intelligence report: the top-level message agencies publish.

A report says who sends it (``sender``), what (``category``, ``title``, ``narrative``,
``requested_action``), where (``jurisdiction``, ``location``), when (``observed_at``,
``valid_from``/``valid_until``), about whom (``subjects``), how reliable
(``evaluation``), how it may be handled (``handling``), how urgent (``precedence``) and
what it relates to (``relations``). Attachments travel separately and are referenced by
hash, size and media type.

Serialise with ``report.model_dump_json()``; parse with
``Report.model_validate_json(data)``. Every failure is a ``pydantic.ValidationError``;
:func:`schemas.describe_validation_error` renders it for people.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Self, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from schemas._base import (
    AgencyId,
    ContractModel,
    LongText,
    SchemaVersion,
    ShortText,
    Text,
    UtcDatetime,
    expected,
    matching,
)
from schemas.identifiers import Coordinates
from schemas.jurisdiction import Jurisdiction, Locode
from schemas.subjects import Subject
from schemas.vocab import (
    CATEGORY_PATTERN,
    HandlingCondition,
    InformationCredibility,
    Precedence,
    SourceReliability,
    Tlp,
    is_registered_category,
    registered_categories,
)

__all__ = [
    "MAX_ATTACHMENT_BYTES",
    "Attachment",
    "Category",
    "Evaluation",
    "Handling",
    "Location",
    "Relations",
    "Report",
]

_T = TypeVar("_T")

MAX_ATTACHMENT_BYTES = 512 * 1024 * 1024
"""Largest attachment a report may reference (512 MiB)."""


def _registered(value: str) -> str:
    if not is_registered_category(value):
        codes = ", ".join(sorted(registered_categories()))
        raise expected("category", f"expected a registered trafficking category: one of {codes}")
    return value


Category = Annotated[
    str,
    Field(min_length=2, max_length=40, json_schema_extra={"pattern": CATEGORY_PATTERN}),
    AfterValidator(_registered),
]
"""A registered trafficking category code (see :func:`schemas.register_category`)."""


def _unique(values: tuple[_T, ...]) -> tuple[_T, ...]:
    if len(set(values)) != len(values):
        raise expected("duplicate", "expected each entry at most once")
    return values


class Handling(ContractModel):
    """Who may see the report (TLP, named recipients) and what they may do with it."""

    tlp: Tlp
    named_recipients: Annotated[
        tuple[AgencyId, ...], Field(max_length=50), AfterValidator(_unique)
    ] = ()
    """Agency ids the report is addressed to; required for TLP:RED."""
    conditions: Annotated[
        tuple[HandlingCondition, ...],
        Field(max_length=len(HandlingCondition)),
        AfterValidator(_unique),
    ] = ()

    @model_validator(mode="after")
    def _red_names_recipients(self) -> Self:
        if self.tlp is Tlp.RED and not self.named_recipients:
            raise expected(
                "tlp_red_recipients",
                "expected named_recipients for TLP:RED: the agency ids allowed to read it",
            )
        return self


class Evaluation(ContractModel):
    """Admiralty grading: how reliable the source, how credible the information."""

    source_reliability: SourceReliability
    information_credibility: InformationCredibility


class Location(ContractModel):
    """Where it happens: a UN/LOCODE place, WGS84 coordinates, a description, or several."""

    place: Locode | None = None
    coordinates: Coordinates | None = None
    description: ShortText | None = None
    """E.g. "East Wharf, berth 7" or "Torkham, inbound cargo terminal"."""

    @model_validator(mode="after")
    def _somewhere(self) -> Self:
        if self.place is None and self.coordinates is None and self.description is None:
            raise expected(
                "location_empty", "expected a place, coordinates or a description of the location"
            )
        return self


_MessageIds = Annotated[tuple[uuid.UUID, ...], Field(max_length=20), AfterValidator(_unique)]


class Relations(ContractModel):
    """Earlier messages this one supersedes, retracts or follows up."""

    supersedes: _MessageIds = ()
    retracts: _MessageIds = ()
    follows_up: _MessageIds = ()

    def all_ids(self) -> set[uuid.UUID]:
        return {*self.supersedes, *self.retracts, *self.follows_up}


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


_MEDIA_TYPE = r"[a-z0-9][a-z0-9!#$&\-^_.+]{0,126}/[a-z0-9][a-z0-9!#$&\-^_.+]{0,126}"


class Attachment(ContractModel):
    """A file carried outside the report, identified by its SHA-256 digest."""

    sha256: Annotated[
        str,
        Field(min_length=64, max_length=64),
        BeforeValidator(_lower),
        AfterValidator(
            matching(
                r"[0-9a-f]{64}",
                "sha256",
                "expected a SHA-256 digest: 64 hexadecimal characters",
            )
        ),
    ]
    size: int = Field(ge=0, le=MAX_ATTACHMENT_BYTES, description="size in bytes")
    media_type: Annotated[
        str,
        Field(max_length=255, json_schema_extra={"pattern": f"^{_MEDIA_TYPE}$"}),
        BeforeValidator(_lower),
        AfterValidator(
            matching(
                _MEDIA_TYPE,
                "media_type",
                "expected a media type in RFC 6838 form like image/jpeg or application/pdf "
                "(no parameters)",
            )
        ),
    ]
    filename: ShortText | None = None


class Report(ContractModel):
    """An actionable intelligence report (schema version 1)."""

    schema_version: SchemaVersion = "1.0"
    """Contract version: written as 1.0; any 1.x is read, another major is refused."""
    message_id: uuid.UUID
    """Unique id of this message, chosen by the sender; relations and feedback cite it."""
    sender: AgencyId
    """The originating agency, e.g. customs, anf, fia."""
    category: Category
    """The registered trafficking category, e.g. narcotics."""
    jurisdiction: Jurisdiction
    """Where the report applies: country (PK), subdivision (PK-SD) or LOCODE (PKKHI)."""
    precedence: Precedence
    handling: Handling
    evaluation: Evaluation
    created_at: UtcDatetime
    """When the report was written (timezone required; stored in UTC)."""
    observed_at: UtcDatetime | None = None
    """When the reported activity was seen, if it was."""
    valid_from: UtcDatetime | None = None
    """From when the information is actionable."""
    valid_until: UtcDatetime | None = None
    """After this the information is worthless (a truck crossing tonight)."""
    title: ShortText
    """One line saying what the report is about."""
    narrative: LongText
    """The full account."""
    requested_action: Text | None = None
    """What the originator asks recipients to do."""
    location: Location | None = None
    subjects: tuple[Subject, ...] = Field(default=(), max_length=100)
    """Who and what the report is about."""
    relations: Relations = Relations()
    attachments: tuple[Attachment, ...] = Field(default=(), max_length=20)
    """Files sent separately, referenced by digest."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.observed_at is not None and self.observed_at > self.created_at:
            raise expected("observed_after_created", "expected observed_at at or before created_at")
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from > self.valid_until
        ):
            raise expected("validity_reversed", "expected valid_from at or before valid_until")
        if (
            self.observed_at is not None
            and self.valid_until is not None
            and self.valid_until < self.observed_at
        ):
            raise expected(
                "expired_before_observed", "expected valid_until at or after observed_at"
            )
        if self.message_id in self.relations.all_ids():
            raise expected(
                "self_reference", "expected relations to name other messages, not this one"
            )
        return self
