"""Forward compatibility: docs/schemas.md, "Versions"."""

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from schemas import Feedback, Outcome, Report, example_feedback, example_report


def newer_minor_report() -> dict[str, Any]:
    data: dict[str, Any] = example_report().model_dump(mode="json")
    data["schema_version"] = "1.7"
    data["risk_score"] = 0.93
    data["handling"]["retention_days"] = 90
    data["subjects"][0]["iso_type_code"] = "45G1"
    data["location"]["geohash"] = {"precision": 9, "value": "tt3m8xq9z"}
    return data


def test_a_newer_minor_version_is_read_and_its_new_fields_dropped() -> None:
    data = newer_minor_report()
    report = Report.model_validate_json(json.dumps(data))
    assert report.schema_version == "1.0"
    assert report.model_extra in (None, {})
    dumped = json.loads(report.model_dump_json())
    assert "risk_score" not in dumped
    assert "retention_days" not in dumped["handling"]
    assert "iso_type_code" not in dumped["subjects"][0]
    assert dumped["title"] == data["title"]


def test_what_an_older_reader_understood_round_trips() -> None:
    report = Report.model_validate_json(json.dumps(newer_minor_report()))
    assert Report.model_validate_json(report.model_dump_json()) == report


@pytest.mark.parametrize("version", ["2.0", "0.9", "10.1"])
def test_another_major_version_is_rejected_clearly(version: str) -> None:
    data = example_report().model_dump(mode="json") | {"schema_version": version}
    with pytest.raises(ValidationError) as info:
        Report.model_validate_json(json.dumps(data))
    message = str(info.value)
    assert "expected schema version 1.x" in message
    assert "upgrade fusionbus" in message


@pytest.mark.parametrize("version", ["1", "v1.0", "", 1.0, None])
def test_a_malformed_version_is_rejected(version: object) -> None:
    data = example_report().model_dump(mode="json") | {"schema_version": version}
    with pytest.raises(ValidationError, match="schema_version"):
        Report.model_validate_json(json.dumps(data))


def test_a_missing_version_is_read_as_the_current_one() -> None:
    data = example_report().model_dump(mode="json")
    del data["schema_version"]
    assert Report.model_validate(data).schema_version == "1.0"


def test_new_vocabulary_is_not_a_minor_change() -> None:
    """Fail closed: a handling condition this reader does not know is not dropped."""
    data = newer_minor_report()
    data["handling"]["conditions"] = ["no_onward_dissemination", "destroy_after_reading"]
    with pytest.raises(ValidationError, match="no_onward_dissemination"):
        Report.model_validate_json(json.dumps(data))


def test_feedback_follows_the_same_rules() -> None:
    feedback = example_feedback(example_report(), Outcome.ARREST, message_id=uuid.uuid4())
    data = feedback.model_dump(mode="json") | {"schema_version": "1.2", "case_ref": "X-1"}
    assert Feedback.model_validate_json(json.dumps(data)) == feedback
    with pytest.raises(ValidationError, match=r"expected schema version 1\.x"):
        Feedback.model_validate_json(json.dumps(data | {"schema_version": "3.0"}))
