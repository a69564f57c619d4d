"""Documented examples are executed, so docs/schemas.md and the docstrings cannot drift."""

import doctest
import re
from pathlib import Path

import pytest

import schemas
from schemas import Report, errors, jurisdiction

DOC = Path(__file__).parents[3] / "docs" / "schemas.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_the_documented_report_validates_and_is_normalised() -> None:
    [example] = blocks("json")
    report = Report.model_validate_json(example)
    assert report.subjects[0].kind == "container"
    assert report.model_dump(mode="json")["subjects"][0]["number"] == "CSQU3054383"
    assert report.model_dump(mode="json")["subjects"][3]["phones"] == ["+923001234567"]


def test_the_documented_jurisdiction_tree_holds() -> None:
    [tree] = [block for block in blocks("python") if "ancestors(" in block]
    names = {"ancestors": schemas.ancestors, "covers": schemas.covers}
    for line in tree.strip().splitlines():
        assert eval(line, names), line  # noqa: S307 - our own documentation


@pytest.mark.parametrize("module", [jurisdiction, errors])
def test_docstring_examples_run(module: object) -> None:
    result = doctest.testmod(module, raise_on_error=False)  # type: ignore[arg-type]
    assert result.attempted > 0
    assert result.failed == 0
