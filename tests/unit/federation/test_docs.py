"""docs/federation.md is executed and checked, so it cannot drift from the code."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

from broker.federation import AgencyRecord
from broker.home import HomeLayout

DOC = Path(__file__).parents[3] / "docs" / "federation.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_documented_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its mkdtemp() lands here
    [example] = blocks("python")
    exec(compile(example, str(DOC), "exec"), {})  # noqa: S102 - our own documentation


def test_the_documented_record_is_a_valid_record() -> None:
    [example] = blocks("json")
    record = AgencyRecord.model_validate_json(example)
    assert record.id == "anf"
    assert record.revision == 2


def test_the_documented_layout_is_the_one_used(tmp_path: Path) -> None:
    text = "\n".join(blocks("text"))
    layout = HomeLayout(tmp_path)
    for path in (
        layout.root_public,
        layout.root_private,
        layout.record("x"),
        layout.signing_key("x"),
        layout.encryption_key("x"),
    ):
        assert path.name.replace("x.", "<agency>.") in text
    assert "<agency>.jwks.json" in text
