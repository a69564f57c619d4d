from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import (
    Cnic,
    ContainerNumber,
    Coordinates,
    FlightNumber,
    Imei,
    ImoNumber,
    Passport,
    PhoneNumber,
    VehicleRegistration,
)


def parse(kind: Any, value: object) -> object:
    return TypeAdapter(kind).validate_python(value)


def rejects(kind: Any, value: object, expected_form: str) -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(kind).validate_python(value)
    assert expected_form in str(info.value)


@pytest.mark.parametrize("value", ["CSQU3054383", "csqu 305438 3", "CSQU-305438-3", "MSKU9070323"])
def test_valid_container_numbers_are_compacted(value: str) -> None:
    assert parse(ContainerNumber, value) in {"CSQU3054383", "MSKU9070323"}


@pytest.mark.parametrize(
    ("value", "detail"),
    [
        ("CSQU3054384", "the check digit does not match"),
        ("CSQU305438", "the length is wrong"),
        ("CSQX3054383", "expected an ISO 6346 container number like CSQU3054383"),
        ("ÄSQU3054383", "expected an ISO 6346 container number like CSQU3054383"),
    ],
)
def test_invalid_container_numbers_state_the_expected_form(value: str, detail: str) -> None:
    rejects(ContainerNumber, value, detail)
    rejects(ContainerNumber, value, "(owner code, category, serial, check digit)")


def test_imo_numbers_are_checked_by_stdnum() -> None:
    assert parse(ImoNumber, "IMO 9319466") == "9319466"
    assert parse(ImoNumber, "8814275") == "8814275"
    rejects(ImoNumber, "IMO 9319467", "check digit does not match")
    rejects(ImoNumber, "931946", "expected an IMO ship number like IMO 9319466")


def test_cnic_is_normalised_to_the_printed_form() -> None:
    assert parse(Cnic, "4210112345671") == "42101-1234567-1"
    assert parse(Cnic, "42101 1234567 1") == "42101-1234567-1"
    rejects(Cnic, "42101-1234567", "expected a Pakistani CNIC like 42201-0397640-8")
    rejects(Cnic, "92101-1234567-1", "expected a Pakistani CNIC")  # no province 9


def test_imei_uses_the_luhn_check() -> None:
    assert parse(Imei, "35686800-004141-8") == "356868000041418"
    assert parse(Imei, "35686800-004141-20") == "3568680000414120"  # IMEISV
    rejects(Imei, "356868000041413", "expected a handset IMEI")


@pytest.mark.parametrize(
    ("value", "e164"),
    [
        ("+92 300 1234567", "+923001234567"),
        ("+92-21-111-111-111", "+9221111111111"),
        ("+1 (202) 555-0143", "+12025550143"),
    ],
)
def test_phone_numbers_are_normalised_to_e164(value: str, e164: str) -> None:
    assert parse(PhoneNumber, value) == e164


@pytest.mark.parametrize("value", ["0300 1234567", "+92 300", "call me", "+999 1234567"])
def test_phone_numbers_need_an_international_valid_form(value: str) -> None:
    rejects(PhoneNumber, value, "expected a phone number in international form like +923001234567")


@pytest.mark.parametrize(
    ("value", "normalised"),
    [("PK300", "PK300"), ("pk 0300", "PK300"), ("EK601", "EK601"), ("G9 12A", "G912A")],
)
def test_flight_numbers(value: str, normalised: str) -> None:
    assert parse(FlightNumber, value) == normalised


@pytest.mark.parametrize("value", ["12345", "P300", "PK12345", "PK", "PK300AB", "PIA300"])
def test_bad_flight_numbers(value: str) -> None:
    rejects(FlightNumber, value, "expected a flight number like PK300")


def test_passport_issuing_country_accepts_alpha_3() -> None:
    passport = Passport.model_validate({"number": "ab 1234567", "issuing_country": "PAK"})
    assert passport == Passport(number="AB1234567", issuing_country="PK")
    with pytest.raises(ValidationError, match="expected an ISO 3166-1 country code"):
        Passport.model_validate({"number": "AB1234567", "issuing_country": "XX"})
    with pytest.raises(ValidationError, match="expected a passport number as printed"):
        Passport.model_validate({"number": "AB#1", "issuing_country": "PK"})


def test_vehicle_registration_plates_are_compacted() -> None:
    reg = VehicleRegistration.model_validate({"country": "pk", "plate": "lea - 1234"})
    assert (reg.country, reg.plate) == ("PK", "LEA1234")
    with pytest.raises(ValidationError, match="expected a registration plate"):
        VehicleRegistration.model_validate({"country": "PK", "plate": "لاہور 12"})


@pytest.mark.parametrize(
    "coords",
    [
        {"lat": 91, "lon": 0},
        {"lat": -90.5, "lon": 0},
        {"lat": 0, "lon": 180.01},
        {"lat": 0, "lon": -181},
        {"lat": float("nan"), "lon": 0},
        {"lat": 0, "lon": float("inf")},
    ],
)
def test_coordinates_out_of_range_are_rejected(coords: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Coordinates.model_validate(coords)


def test_coordinates_at_the_limits_are_valid() -> None:
    assert Coordinates(lat=-90, lon=180) == Coordinates(lat=-90.0, lon=180.0)
