import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import (
    Feedback,
    Outcome,
    PersonSubject,
    Report,
    Tlp,
    example_feedback,
    example_report,
    is_registered_category,
    register_category,
)

NOW = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)
REPORT_ID = uuid.UUID("0b6f5e7c-3f8a-4c1e-9a57-2d4b8e1f6a10")


def report_data(**changes: Any) -> dict[str, Any]:
    data = example_report(message_id=REPORT_ID, now=NOW).model_dump(mode="json")
    data.update(changes)
    return data


def errors_of(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        Report.model_validate(data)
    return str(info.value)


def test_the_example_is_a_valid_report_with_the_agreed_attribute_names() -> None:
    report = example_report(message_id=REPORT_ID, now=NOW)
    assert report.schema_version == "1.0"
    assert report.message_id == REPORT_ID
    assert (report.sender, report.category, report.jurisdiction) == (
        "customs",
        "narcotics",
        "PKKHI",
    )
    assert report.handling.tlp is Tlp.AMBER
    assert report.handling.named_recipients == ("anf",)
    assert report.created_at == NOW
    assert report.valid_until is not None
    assert report.valid_until > report.created_at
    assert {s.kind for s in report.subjects} == {
        "container",
        "consignment",
        "vessel",
        "person",
        "vehicle",
        "phone",
    }


def test_the_example_adapts_to_other_categories_and_jurisdictions() -> None:
    report = example_report(category="arms", jurisdiction="pk-kp")
    assert (report.category, report.jurisdiction, report.location) == ("arms", "PK-KP", None)
    assert "arms" in report.title.lower()
    torkham = example_report(jurisdiction="PKTOR")
    assert torkham.location is not None
    assert torkham.location.place == "PKTOR"


def test_json_round_trip_is_exact() -> None:
    report = example_report()
    assert Report.model_validate_json(report.model_dump_json()) == report
    assert Report.model_validate_json(report.model_dump_json().encode()) == report


def test_reports_are_frozen() -> None:
    report = example_report()
    with pytest.raises(ValidationError, match="frozen"):
        report.title = "changed"  # type: ignore[misc]


def test_tlp_red_requires_named_recipients() -> None:
    handling = {"tlp": "TLP:RED", "named_recipients": [], "conditions": []}
    assert "expected named_recipients for TLP:RED" in errors_of(report_data(handling=handling))
    handling["named_recipients"] = ["anf", "fia"]
    assert Report.model_validate(report_data(handling=handling)).handling.tlp is Tlp.RED


def test_other_tlp_levels_may_omit_recipients() -> None:
    handling = {"tlp": "TLP:GREEN"}
    report = Report.model_validate(report_data(handling=handling))
    assert report.handling.named_recipients == ()
    assert report.handling.conditions == ()


def test_unknown_tlp_and_duplicate_recipients_are_rejected() -> None:
    assert "TLP:AMBER+STRICT" in errors_of(report_data(handling={"tlp": "TLP:PINK"}))
    duplicate = {"tlp": "TLP:RED", "named_recipients": ["anf", "anf"]}
    assert "expected each entry at most once" in errors_of(report_data(handling=duplicate))


@pytest.mark.parametrize("sender", ["Customs", "c", "anf!", "9fia", "an f", ""])
def test_sender_must_be_an_agency_id(sender: str) -> None:
    assert "expected an agency id like customs" in errors_of(report_data(sender=sender))


def test_overlong_sender_is_refused_before_matching() -> None:
    assert "at most 32 characters" in errors_of(report_data(sender="a" * 10_000))


def test_naive_datetimes_are_rejected() -> None:
    assert "timezone" in errors_of(report_data(created_at="2026-11-27T18:30:00"))


def test_datetimes_are_normalised_to_utc() -> None:
    report = Report.model_validate(
        report_data(created_at="2026-11-27T23:30:00+05:00", observed_at=None)
    )
    assert report.created_at == NOW
    assert report.created_at.tzinfo is UTC
    assert report.model_dump_json().count("2026-11-27T18:30:00Z") >= 1


def test_datetimes_overflowing_utc_are_a_validation_error() -> None:
    message = errors_of(report_data(created_at="0001-01-01T00:00:00+05:00", observed_at=None))
    assert "expected a datetime between years 1 and 9999" in message


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"observed_at": "2026-11-27T19:00:00Z"}, "expected observed_at at or before created_at"),
        (
            {"valid_from": "2026-11-28T00:00:00Z", "valid_until": "2026-11-27T23:00:00Z"},
            "expected valid_from at or before valid_until",
        ),
        (
            {"valid_from": None, "valid_until": "2026-11-27T12:00:00Z"},
            "expected valid_until at or after observed_at",
        ),
    ],
)
def test_time_fields_must_be_consistent(changes: dict[str, str], message: str) -> None:
    assert message in errors_of(report_data(**changes))


def test_optional_times_may_be_absent() -> None:
    report = Report.model_validate(report_data(observed_at=None, valid_from=None, valid_until=None))
    assert report.valid_until is None


def test_a_report_cannot_relate_to_itself() -> None:
    relations = {"supersedes": [str(REPORT_ID)]}
    assert "expected relations to name other messages" in errors_of(
        report_data(relations=relations)
    )
    other = str(uuid.uuid4())
    report = Report.model_validate(report_data(relations={"retracts": [other]}))
    assert report.relations.retracts == (uuid.UUID(other),)


def test_jurisdiction_is_validated_and_upper_cased() -> None:
    assert Report.model_validate(report_data(jurisdiction="pk-sd")).jurisdiction == "PK-SD"
    assert "registered UN/LOCODE place like PKKHI" in errors_of(report_data(jurisdiction="PKZZZ"))


def test_a_registered_category_is_accepted_in_reports() -> None:
    with pytest.raises(ValidationError, match="registered trafficking category"):
        example_report(category="fuel_smuggling")
    register_category("fuel_smuggling", "Smuggling of petroleum products")
    assert is_registered_category("fuel_smuggling")
    assert example_report(category="fuel_smuggling").category == "fuel_smuggling"


def test_unknown_category_error_lists_the_registered_codes() -> None:
    message = errors_of(report_data(category="drugs"))
    assert "narcotics" in message
    assert "cultural_property" in message


def test_subjects_are_a_union_discriminated_by_kind() -> None:
    data = report_data(subjects=[{"kind": "aircraft", "registration": "AP-BMG"}])
    assert "'person', 'vehicle', 'vessel', 'container'" in errors_of(data)
    data = report_data(subjects=[{"kind": "container", "number": "CSQU3054384"}])
    assert "check digit does not match" in errors_of(data)


@pytest.mark.parametrize(
    ("subject", "message"),
    [
        ({"kind": "person", "role": "courier"}, "expected a person with a name, a cnic or"),
        ({"kind": "vehicle"}, "expected a vehicle with a registration or a description"),
        ({"kind": "vessel", "flag": "PA"}, "expected a vessel with an imo number or a name"),
        ({"kind": "phone", "number": "0300 1234567"}, "international form"),
        ({"kind": "document", "document_kind": "visa", "number": "#"}, "document reference"),
        ({"kind": "consignment", "description": "salt", "hs_code": "25AB"}, "Harmonized System"),
    ],
)
def test_subjects_must_identify_something(subject: dict[str, Any], message: str) -> None:
    assert message in errors_of(report_data(subjects=[subject]))


def test_a_person_known_only_by_cnic_is_enough() -> None:
    report = Report.model_validate(
        report_data(subjects=[{"kind": "person", "cnic": "4210112345671"}])
    )
    person = report.subjects[0]
    assert isinstance(person, PersonSubject)
    assert person.cnic == "42101-1234567-1"


def test_location_needs_something() -> None:
    assert "expected a place, coordinates or a description" in errors_of(report_data(location={}))


def test_attachments_are_referenced_by_hash_size_and_media_type() -> None:
    good: dict[str, object] = {"sha256": "AB" * 32, "size": 1024, "media_type": "Image/JPEG"}
    report = Report.model_validate(report_data(attachments=[good]))
    attachment = report.attachments[0]
    assert (attachment.sha256, attachment.media_type) == ("ab" * 32, "image/jpeg")
    cases: list[tuple[dict[str, object], str]] = [
        ({"sha256": "ab" * 31}, "at least 64 characters"),
        ({"sha256": "zz" * 32}, "expected a SHA-256 digest"),
        ({"size": -1}, "greater than or equal to 0"),
        ({"size": 2**40}, "less than or equal to 536870912"),
        ({"media_type": "jpeg"}, "expected a media type in RFC 6838 form"),
        ({"media_type": "text/plain; charset=utf-8"}, "expected a media type in RFC 6838 form"),
    ]
    for bad, message in cases:
        assert message in errors_of(report_data(attachments=[good | bad]))


def test_list_lengths_are_bounded() -> None:
    container = {"kind": "container", "number": "CSQU3054383"}
    assert "at most 100 items" in errors_of(report_data(subjects=[container] * 101))
    many = [str(uuid.uuid4()) for _ in range(21)]
    assert "at most 20 items" in errors_of(report_data(relations={"follows_up": many}))


def test_text_is_bounded_and_printable() -> None:
    assert "at most 200 characters" in errors_of(report_data(title="x" * 201))
    assert "at most 20000 characters" in errors_of(report_data(narrative="x" * 20_001))
    assert "at least 1 character" in errors_of(report_data(title=""))
    assert "control characters" in errors_of(report_data(title="bell\x07"))
    assert Report.model_validate(report_data(narrative="line one\n\tline two")).narrative


def test_feedback_references_a_report() -> None:
    report = example_report(message_id=REPORT_ID, now=NOW)
    feedback = example_feedback(report, now=NOW + timedelta(hours=5))
    assert feedback.report_id == REPORT_ID
    assert feedback.outcome is Outcome.SEIZURE
    assert Feedback.model_validate_json(feedback.model_dump_json()) == feedback
    receipt = example_feedback(report, Outcome.RECEIVED, sender="fia")
    assert (receipt.sender, receipt.note) == ("fia", None)


def test_feedback_is_validated() -> None:
    base = {
        "message_id": str(uuid.uuid4()),
        "report_id": str(REPORT_ID),
        "originator": "customs",
        "sender": "anf",
        "created_at": "2026-11-27T18:30:00+05:00",
        "outcome": "no_trace",
    }
    assert Feedback.model_validate(base).created_at == datetime(2026, 11, 27, 13, 30, tzinfo=UTC)
    with pytest.raises(ValidationError, match="no_trace"):
        Feedback.model_validate(base | {"outcome": "lost"})
    with pytest.raises(ValidationError, match="report_id to name the report"):
        Feedback.model_validate(base | {"report_id": base["message_id"]})
    with pytest.raises(ValidationError, match="timezone"):
        Feedback.model_validate(base | {"created_at": "2026-11-27T18:30:00"})
    with pytest.raises(ValidationError, match="at most 2000 characters"):
        Feedback.model_validate(base | {"note": "n" * 2001})
    with pytest.raises(ValidationError, match="another agency than sender"):
        Feedback.model_validate(base | {"originator": "anf"})
    seizure = base | {"outcome": "seizure", "quantity": "72.5", "unit": "kg"}
    assert Feedback.model_validate(seizure).quantity == Decimal("72.5")
    with pytest.raises(ValidationError, match="quantity and unit together"):
        Feedback.model_validate(seizure | {"unit": None})
    with pytest.raises(ValidationError, match="quantity only with outcome seizure"):
        Feedback.model_validate(seizure | {"outcome": "arrest"})
    with pytest.raises(ValidationError, match="greater than 0"):
        Feedback.model_validate(seizure | {"quantity": "-1"})
    with pytest.raises(ValidationError, match="a note saying what the outcome was"):
        Feedback.model_validate(base | {"outcome": "other"})
    with pytest.raises(ValidationError, match="replaces to name the withdrawn"):
        Feedback.model_validate(base | {"withdrawn": True})
    earlier = str(uuid.uuid4())
    withdrawal = Feedback.model_validate(base | {"withdrawn": True, "replaces": earlier})
    assert str(withdrawal.replaces) == earlier


def test_non_utc_input_offsets_survive_as_instants() -> None:
    pkt = timezone(timedelta(hours=5))
    report = example_report(now=datetime(2026, 11, 27, 23, 30, tzinfo=pkt))
    assert report.created_at == NOW
