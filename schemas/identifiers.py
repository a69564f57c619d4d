"""Identifiers of subjects, validated with the standard libraries and normalised on input.

Check digits are never computed here: ``python-stdnum`` checks ISO 6346 containers, IMO
ship numbers, Pakistani CNICs and IMEIs, ``phonenumbers`` checks phone numbers and
``pycountry`` countries. Each type below is an annotated ``str`` (or a small model) whose
validation error states the expected form, with an example.

Those checks are pure functions of the string, and a stream of reports names the same
containers, ships and phones again and again, so each check remembers the normalised form
of the last :data:`CHECK_CACHE_SIZE` values it accepted (``functools.lru_cache``: bounded,
least recently used first out, thread-safe). A refusal raises and is never remembered: a
rejected value is checked afresh every time, with a fresh error.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from types import ModuleType
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BeforeValidator, Field
from stdnum import imei, imo, iso6346
from stdnum.exceptions import InvalidChecksum, InvalidLength
from stdnum.pk import cnic

from schemas._base import ContractModel, expected, matching
from schemas.jurisdiction import CountryCode

__all__ = [
    "CHECK_CACHE_SIZE",
    "Cnic",
    "ContainerNumber",
    "Coordinates",
    "FlightNumber",
    "Imei",
    "ImoNumber",
    "Passport",
    "PassportNumber",
    "PhoneNumber",
    "VehicleRegistration",
]


CHECK_CACHE_SIZE = 2048
"""Accepted values each identifier check remembers. The inputs are bounded by their types'
``max_length`` (at most 32 characters), so a full cache holds well under a megabyte, and a
sender naming ever new identifiers only evicts older ones."""


def _compact(separators: str) -> Callable[[object], object]:
    """A before-validator: upper-case strings and drop the given separator characters.

    (``str.replace`` once per separator: ten times cheaper than ``str.translate`` with a
    deletion table, which costs almost a microsecond per identifier.)"""

    def compact(value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip().upper()
        for separator in separators:
            value = value.replace(separator, "")
        return value

    return compact


def _stdnum(module: ModuleType, kind: str, form: str) -> Callable[[str], str]:
    """An after-validator running ``module.validate`` and stating ``form`` on failure."""

    @functools.lru_cache(maxsize=CHECK_CACHE_SIZE)
    def check(value: str) -> str:
        try:
            return str(module.validate(value))
        except InvalidChecksum:
            raise expected(kind, f"{form}; the check digit does not match") from None
        except InvalidLength:
            raise expected(kind, f"{form}; the length is wrong") from None
        except ValueError:  # stdnum's ValidationError, or its ValueError on non-ASCII input
            raise expected(kind, form) from None

    return check


ContainerNumber = Annotated[
    str,
    Field(min_length=1, max_length=16, examples=["CSQU3054383"]),
    BeforeValidator(_compact(" -")),
    AfterValidator(
        _stdnum(
            iso6346,
            "container_number",
            "expected an ISO 6346 container number like CSQU3054383 "
            "(owner code, category, serial, check digit)",
        )
    ),
]
"""ISO 6346 container number, e.g. ``CSQU 305438 3`` becomes ``CSQU3054383``."""

ImoNumber = Annotated[
    str,
    Field(min_length=1, max_length=16, examples=["9319466"]),
    BeforeValidator(_compact(" -")),
    AfterValidator(
        _stdnum(
            imo,
            "imo_number",
            "expected an IMO ship number like IMO 9319466 (7 digits, the last a check digit)",
        )
    ),
]
"""IMO ship identification number, e.g. ``IMO 9319466`` becomes ``9319466``."""


@functools.lru_cache(maxsize=CHECK_CACHE_SIZE)
def _format_cnic(value: str) -> str:
    return str(cnic.format(value))


Cnic = Annotated[
    str,
    Field(min_length=1, max_length=20, examples=["42201-0397640-8"]),
    BeforeValidator(_compact(" -")),
    AfterValidator(
        _stdnum(
            cnic,
            "cnic",
            "expected a Pakistani CNIC like 42201-0397640-8 "
            "(13 digits: locality, serial, gender digit)",
        )
    ),
    AfterValidator(_format_cnic),
]
"""Pakistani CNIC, normalised to the printed form ``42201-0397640-8``."""

Imei = Annotated[
    str,
    Field(min_length=1, max_length=24, examples=["356868000041418"]),
    BeforeValidator(_compact(" -/")),
    AfterValidator(
        _stdnum(
            imei,
            "imei",
            "expected a handset IMEI like 35686800-004141-8 (15 digits with Luhn check "
            "digit) or an IMEISV (16 digits)",
        )
    ),
]
"""A handset IMEI or IMEISV, digits only."""


@functools.lru_cache(maxsize=CHECK_CACHE_SIZE)
def _e164(value: str) -> str:
    form = "expected a phone number in international form like +923001234567 (E.164)"
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise expected("phone_number", form) from None
    if not phonenumbers.is_valid_number(number):
        raise expected("phone_number", f"{form}; this number is not valid for its country")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


PhoneNumber = Annotated[
    str,
    Field(min_length=1, max_length=32, examples=["+923001234567"]),
    AfterValidator(_e164),
]
"""A phone number given with its country code, normalised to E.164 (``+923001234567``)."""

_FLIGHT = re.compile(r"(?P<carrier>[A-Z0-9]{2})(?P<number>[0-9]{1,4})(?P<suffix>[A-Z]?)")


def _flight(value: str) -> str:
    match = _FLIGHT.fullmatch(value)
    if match is None or match["carrier"].isdigit() or int(match["number"]) == 0:
        raise expected(
            "flight_number",
            "expected a flight number like PK300 or EK 601: IATA airline designator "
            "(2 letters or digits, not both digits), a number from 1 to 9999, optional "
            "letter suffix",
        )
    return f"{match['carrier']}{int(match['number'])}{match['suffix']}"


FlightNumber = Annotated[
    str,
    Field(min_length=1, max_length=12, examples=["PK300"]),
    BeforeValidator(_compact(" -")),
    AfterValidator(_flight),
]
"""IATA flight number, normalised without spaces or leading zeros (``PK 0300`` → ``PK300``)."""

PassportNumber = Annotated[
    str,
    Field(min_length=1, max_length=24),
    BeforeValidator(_compact(" -")),
    AfterValidator(
        matching(
            r"[A-Z0-9]{5,20}",
            "passport_number",
            "expected a passport number as printed, like AB1234567: 5 to 20 letters or digits",
        )
    ),
]
"""A passport number, upper-cased without spaces. Its issuing country is separate."""


class Passport(ContractModel):
    """A passport: its number and the ISO 3166-1 country that issued it."""

    number: PassportNumber
    issuing_country: CountryCode


_Plate = Annotated[
    str,
    Field(min_length=1, max_length=24),
    BeforeValidator(_compact(" -.")),
    AfterValidator(
        matching(
            r"[A-Z0-9]{2,12}",
            "vehicle_registration",
            "expected a registration plate in Latin letters and digits like LEA-1234 "
            "(2 to 12 letters or digits; spaces, hyphens and dots are dropped)",
        )
    ),
]


class VehicleRegistration(ContractModel):
    """A vehicle registration: the registering country and the plate, compacted
    (``LEA-1234`` → ``LEA1234``) so the same plate always compares equal."""

    country: CountryCode
    plate: _Plate


class Coordinates(ContractModel):
    """A WGS84 position in decimal degrees."""

    lat: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False, description="latitude")
    lon: float = Field(ge=-180.0, le=180.0, allow_inf_nan=False, description="longitude")
