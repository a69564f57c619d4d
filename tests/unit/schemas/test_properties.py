"""Property tests: whatever arrives from outside, parsing fails only with ValidationError,
and every valid report survives a JSON round trip unchanged."""

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas import (
    Cnic,
    ContainerNumber,
    Feedback,
    FlightNumber,
    HandlingCondition,
    Imei,
    ImoNumber,
    InformationCredibility,
    Jurisdiction,
    Locode,
    PassportNumber,
    PhoneNumber,
    Precedence,
    Report,
    SourceReliability,
    Tlp,
    describe_validation_error,
    example_report,
    registered_categories,
)

EXAMPLE: dict[str, Any] = example_report().model_dump(mode="json")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)


def only_validation_errors(model: type[Report] | type[Feedback], data: str | bytes) -> None:
    lines = ["parsed"]
    try:
        model.model_validate_json(data)
    except ValidationError as exc:
        lines = describe_validation_error(exc)
    assert lines  # any error can be described


@settings(deadline=None)
@given(json_values)
def test_random_json_fails_only_with_validation_error(value: object) -> None:
    only_validation_errors(Report, json.dumps(value))
    only_validation_errors(Feedback, json.dumps(value))


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_fail_only_with_validation_error(data: bytes) -> None:
    only_validation_errors(Report, data)


def _paths(value: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


EXAMPLE_PATHS = _paths(EXAMPLE)


@settings(deadline=None)
@given(st.sampled_from(EXAMPLE_PATHS), json_values)
def test_a_valid_report_with_one_value_replaced_fails_only_with_validation_error(
    path: tuple[str | int, ...], value: object
) -> None:
    data = json.loads(json.dumps(EXAMPLE))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    only_validation_errors(Report, json.dumps(data))


@pytest.mark.parametrize(
    "kind",
    [
        ContainerNumber,
        ImoNumber,
        Cnic,
        Imei,
        PhoneNumber,
        FlightNumber,
        PassportNumber,
        Jurisdiction,
        Locode,
    ],
)
@settings(deadline=None)
@given(text=st.text(max_size=40))
def test_identifiers_accept_or_reject_any_string_cleanly(kind: Any, text: str) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(kind)
    try:
        normalised = adapter.validate_python(text)
    except ValidationError as exc:
        lines = describe_validation_error(exc)
    else:
        assert adapter.validate_python(normalised) == normalised  # normalising is idempotent
        return
    assert all("expected" in line or "should" in line for line in lines)


BOUNDED_TEXT = {"title": 200, "narrative": 20_000, "requested_action": 2_000}


@settings(deadline=None)
@given(st.sampled_from(sorted(BOUNDED_TEXT)), st.integers(min_value=1, max_value=50_000))
def test_oversized_text_is_rejected(field: str, extra: int) -> None:
    data = EXAMPLE | {field: "x" * (BOUNDED_TEXT[field] + extra)}
    with pytest.raises(ValidationError, match=f"at most {BOUNDED_TEXT[field]} characters"):
        Report.model_validate_json(json.dumps(data))


def test_deeply_nested_input_is_a_validation_error() -> None:
    for depth in (1_000, 100_000):
        only_validation_errors(Report, "[" * depth + "]" * depth)
        only_validation_errors(Report, '{"title":' * depth + "1" + "}" * depth)


# --- generated valid reports ------------------------------------------------------

printable = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t")
agency_ids = st.from_regex(r"[a-z][a-z0-9-]{1,31}", fullmatch=True)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
SUBJECT_POOL = EXAMPLE["subjects"] + [
    {"kind": "person", "passports": [{"number": "AB1234567", "issuing_country": "AFG"}]},
    {"kind": "document", "document_kind": "bill_of_lading", "number": "MAEU123456789"},
    {"kind": "vessel", "name": "MV SEA BREEZE"},
    {"kind": "phone", "number": "+93 70 123 4567", "imei": "356868000041418"},
]


@st.composite
def reports(draw: st.DrawFn) -> dict[str, Any]:
    tlp = draw(st.sampled_from(Tlp))
    created = draw(instants)
    observed = created - draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
    valid_from = draw(st.none() | st.just(created))
    valid_until = draw(
        st.none()
        | st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)).map(
            lambda d: created + d
        )
    )
    location = draw(
        st.none()
        | st.fixed_dictionaries(
            {"place": st.sampled_from(["PKKHI", "pkbqm", "PKTOR", "AFRKH"])},
            optional={
                "coordinates": st.fixed_dictionaries(
                    {
                        "lat": st.floats(min_value=-90, max_value=90),
                        "lon": st.floats(min_value=-180, max_value=180),
                    }
                ),
                "description": st.text(printable, min_size=1, max_size=200),
            },
        )
    )
    return {
        "schema_version": draw(st.sampled_from(["1.0", "1.1", "1.42"])),
        "message_id": str(draw(st.uuids())),
        "sender": draw(agency_ids),
        "category": draw(st.sampled_from(sorted(registered_categories()))),
        "jurisdiction": draw(st.sampled_from(["PK", "pk-sd", "PKKHI", "AF", "GB-KEN", "pktor"])),
        "precedence": draw(st.sampled_from(Precedence)).value,
        "handling": {
            "tlp": tlp.value,
            "named_recipients": draw(
                st.lists(agency_ids, min_size=1 if tlp is Tlp.RED else 0, max_size=5, unique=True)
            ),
            "conditions": [
                c.value for c in draw(st.lists(st.sampled_from(HandlingCondition), unique=True))
            ],
        },
        "evaluation": {
            "source_reliability": draw(st.sampled_from(SourceReliability)).value,
            "information_credibility": draw(st.sampled_from(InformationCredibility)).value,
        },
        "created_at": created.isoformat(),
        "observed_at": draw(st.none() | st.just(observed.isoformat())),
        "valid_from": valid_from.isoformat() if valid_from else None,
        "valid_until": valid_until.isoformat() if valid_until else None,
        "title": draw(st.text(printable, min_size=1, max_size=200)),
        "narrative": draw(st.text(printable, min_size=1, max_size=500)),
        "requested_action": draw(st.none() | st.text(printable, min_size=1, max_size=100)),
        "location": location,
        "subjects": draw(st.lists(st.sampled_from(SUBJECT_POOL), max_size=8)),
        "relations": {"follows_up": [str(u) for u in draw(st.lists(st.uuids(), max_size=3))]},
        "attachments": [
            {
                "sha256": hashlib.sha256(blob).hexdigest(),
                "size": len(blob),
                "media_type": draw(st.sampled_from(["image/jpeg", "application/pdf"])),
            }
            for blob in draw(st.lists(st.binary(max_size=20), max_size=3))
        ],
    }


@settings(deadline=None)
@given(reports())
def test_generated_reports_round_trip_through_json(data: dict[str, Any]) -> None:
    report = Report.model_validate_json(json.dumps(data))
    assert Report.model_validate_json(report.model_dump_json()) == report
    assert report.created_at.tzinfo is UTC
    assert report.created_at == datetime.fromisoformat(data["created_at"])
    assert report.jurisdiction == report.jurisdiction.upper()
