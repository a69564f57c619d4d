import json
import uuid

import pytest
from pydantic import ValidationError

from schemas import Feedback, Report, describe_validation_error, example_report


def describe(data: object, model: type[Report] | type[Feedback] = Report) -> list[str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate_json(json.dumps(data))
    return describe_validation_error(info.value)


def test_each_line_has_the_path_the_value_and_the_expected_form() -> None:
    data = example_report().model_dump(mode="json")
    data["subjects"][0]["number"] = "CSQU3054384"
    data["handling"]["tlp"] = "TLP:PINK"
    lines = describe(data)
    assert (
        "subjects[0].container.number: got 'CSQU3054384'; expected an ISO 6346 container "
        "number like CSQU3054383 (owner code, category, serial, check digit); "
        "the check digit does not match"
    ) in lines
    assert any(
        line.startswith("handling.tlp: got 'TLP:PINK'; input should be 'TLP:RED'") for line in lines
    )


def test_long_values_are_truncated() -> None:
    data = example_report().model_dump(mode="json") | {"jurisdiction": "K" * 10_000}
    [line] = describe(data)
    assert line.startswith(
        "jurisdiction: got 'KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK'... (10000 chars);"
    )
    assert len(line) < 200


def test_missing_fields_and_model_level_errors() -> None:
    lines = describe({"sender": "anf"}, Feedback)
    assert "message_id: missing; expected a value (field required)" in lines
    report = example_report().model_dump(mode="json")
    report["handling"] = {"tlp": "TLP:RED"}
    [line] = describe(report)
    assert line.startswith("handling: got an object with 1 fields; expected named_recipients")


def test_invalid_json_is_described_too() -> None:
    with pytest.raises(ValidationError) as info:
        Report.model_validate_json(b'{"title": ')
    [line] = describe_validation_error(info.value)
    assert line.startswith("(message): got ")
    assert "invalid json" in line.lower()


def test_non_string_values_are_summarised() -> None:
    data = example_report().model_dump(mode="json")
    data["subjects"] = {"kind": "person"}
    data["message_id"] = 12345678901234567890123456789012345678901234567890
    lines = describe(data)
    assert any(line.startswith("subjects: got an object with 1 fields;") for line in lines)
    assert any(line.startswith("message_id: got 1234") for line in lines)


def test_the_number_of_lines_is_bounded() -> None:
    data = example_report().model_dump(mode="json")
    data["subjects"] = [{"kind": "container", "number": str(i)} for i in range(100)]
    data["relations"] = {"retracts": [str(uuid.uuid4())] * 2}
    lines = describe(data)
    assert len(lines) == 50
    assert lines[-1] == "... and 52 more errors"


def test_the_plain_error_string_carries_no_report_content() -> None:
    data = example_report().model_dump(mode="json")
    data["title"] = "informant Z at berth 7 " * 20
    data["subjects"][0]["number"] = "SECRET0000"
    with pytest.raises(ValidationError) as info:
        Report.model_validate_json(json.dumps(data))
    assert "informant" not in str(info.value)
    assert "SECRET" not in str(info.value)
    assert any("informant" in line for line in describe_validation_error(info.value))
