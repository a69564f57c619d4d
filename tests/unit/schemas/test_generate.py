import json
from pathlib import Path

import pytest

from schemas import generate


def test_committed_json_schemas_match_the_models() -> None:
    for name, text in generate.json_schemas().items():
        path = generate.JSON_DIR / name
        assert path.exists(), f"{path} is missing: run {generate.REGENERATE}"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: the models changed. Run {generate.REGENERATE} and commit it."
        )


def test_the_schemas_are_deterministic_and_describe_the_messages() -> None:
    first, second = generate.json_schemas(), generate.json_schemas()
    assert first == second
    assert set(first) == {
        "report.schema.json",
        "feedback.schema.json",
        "notice.schema.json",
        "forward.schema.json",
    }
    notice = json.loads(first["notice.schema.json"])
    assert {"report_id", "sender", "action", "reason"} <= set(notice["required"])
    report = json.loads(first["report.schema.json"])
    assert report["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"message_id", "sender", "category", "jurisdiction", "handling"} <= set(
        report["required"]
    )
    assert report["properties"]["schema_version"]["const"] == "1.0"
    assert all(text.endswith("}\n") for text in first.values())


def test_check_mode_reports_stale_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generate, "JSON_DIR", tmp_path)
    assert generate.main(["--check"]) == 1
    assert "run python -m schemas.generate" in capsys.readouterr().err
    assert generate.main([]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "feedback.schema.json",
        "forward.schema.json",
        "notice.schema.json",
        "report.schema.json",
    ]
    assert generate.main(["--check"]) == 0
