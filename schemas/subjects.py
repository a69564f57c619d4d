"""Subjects of a report: who and what it is about.

A subject is one of seven kinds, told apart by its ``kind`` field (a discriminated
union): person, vehicle, vessel, container, consignment, document, phone. Identifiers are
validated and normalised by :mod:`schemas.identifiers`; free text is bounded.

Adding a kind is a *major* schema change: an older reader rejects a report naming a kind
it does not know rather than silently dropping a subject.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from schemas._base import ContractModel, ShortText, Text, expected, matching
from schemas.identifiers import (
    Cnic,
    ContainerNumber,
    FlightNumber,
    Imei,
    ImoNumber,
    Passport,
    PhoneNumber,
    VehicleRegistration,
)
from schemas.jurisdiction import CountryCode

__all__ = [
    "ConsignmentSubject",
    "ContainerSubject",
    "DocumentKind",
    "DocumentSubject",
    "PersonSubject",
    "PhoneSubject",
    "Subject",
    "VehicleSubject",
    "VesselSubject",
]

_MANY = 10
"""Most identifiers of one kind a subject may list."""


def _reference(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


_Reference = Annotated[
    str,
    Field(min_length=1, max_length=40),
    BeforeValidator(_reference),
    AfterValidator(
        matching(
            r"[A-Z0-9][A-Z0-9/\-. ]{0,39}",
            "reference",
            "expected a document reference like KPEX-HC-123456 or MAEU123456789: "
            "letters, digits, '/', '-', '.' or spaces, at most 40 characters",
        )
    ),
]
"""A free-form but constrained reference number (bill of lading, goods declaration)."""

_HsCode = Annotated[
    str,
    Field(min_length=4, max_length=12, examples=["2501.00"]),
    AfterValidator(
        matching(
            r"[0-9]{4}(\.?[0-9]{2}){0,3}",
            "hs_code",
            "expected a Harmonized System code like 2501.00 or 25010020 "
            "(4 to 10 digits, optional dots between pairs)",
        )
    ),
]


_Remarks = Text
"""What the originator knows about a subject beyond its identifiers."""


class PersonSubject(ContractModel):
    """A person: at least a name, a CNIC or a passport."""

    kind: Literal["person"] = "person"
    name: ShortText | None = None
    aliases: tuple[ShortText, ...] = Field(default=(), max_length=_MANY)
    date_of_birth: date | None = None
    nationality: CountryCode | None = None
    cnic: Cnic | None = None
    passports: tuple[Passport, ...] = Field(default=(), max_length=_MANY)
    phones: tuple[PhoneNumber, ...] = Field(default=(), max_length=_MANY)
    flight: FlightNumber | None = None
    """A flight the person is booked on or travelled with."""
    role: ShortText | None = None
    """E.g. courier, consignee, facilitator."""

    remarks: _Remarks | None = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.name is None and self.cnic is None and not self.passports:
            raise expected(
                "person_unidentified", "expected a person with a name, a cnic or a passport"
            )
        return self


class VehicleSubject(ContractModel):
    """A road vehicle: a registration, a description, or both."""

    kind: Literal["vehicle"] = "vehicle"
    registration: VehicleRegistration | None = None
    description: ShortText | None = None
    """Make, model, colour, e.g. "white Hino 500 truck, green tarpaulin"."""

    remarks: _Remarks | None = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.registration is None and self.description is None:
            raise expected(
                "vehicle_unidentified", "expected a vehicle with a registration or a description"
            )
        return self


class VesselSubject(ContractModel):
    """A ship: an IMO number, a name, or both."""

    kind: Literal["vessel"] = "vessel"
    imo: ImoNumber | None = None
    name: ShortText | None = None
    flag: CountryCode | None = None

    remarks: _Remarks | None = None

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.imo is None and self.name is None:
            raise expected("vessel_unidentified", "expected a vessel with an imo number or a name")
        return self


class ContainerSubject(ContractModel):
    """An intermodal container."""

    kind: Literal["container"] = "container"
    number: ContainerNumber
    seal: ShortText | None = None
    remarks: _Remarks | None = None


class ConsignmentSubject(ContractModel):
    """Goods in transit: what they are declared as and the papers and boxes they travel in."""

    kind: Literal["consignment"] = "consignment"
    description: ShortText
    """The goods as declared, e.g. "rock salt, 25 kg bags"."""
    hs_code: _HsCode | None = None
    goods_declaration: _Reference | None = None
    bill_of_lading: _Reference | None = None
    containers: tuple[ContainerNumber, ...] = Field(default=(), max_length=100)
    flight: FlightNumber | None = None
    origin_country: CountryCode | None = None
    destination_country: CountryCode | None = None
    remarks: _Remarks | None = None


class DocumentKind(StrEnum):
    """What sort of document a document subject is."""

    PASSPORT = "passport"
    NATIONAL_ID = "national_id"
    VISA = "visa"
    BILL_OF_LADING = "bill_of_lading"
    GOODS_DECLARATION = "goods_declaration"
    INVOICE = "invoice"
    OTHER = "other"


class DocumentSubject(ContractModel):
    """A document of interest, e.g. a forged passport or a false invoice."""

    kind: Literal["document"] = "document"
    document_kind: DocumentKind
    number: _Reference
    issuing_country: CountryCode | None = None
    remarks: _Remarks | None = None


class PhoneSubject(ContractModel):
    """A phone number, and the handset using it if known."""

    kind: Literal["phone"] = "phone"
    number: PhoneNumber
    imei: Imei | None = None
    remarks: _Remarks | None = None


Subject = Annotated[
    PersonSubject
    | VehicleSubject
    | VesselSubject
    | ContainerSubject
    | ConsignmentSubject
    | DocumentSubject
    | PhoneSubject,
    Field(discriminator="kind"),
]
"""Any subject, chosen by its ``kind``."""
