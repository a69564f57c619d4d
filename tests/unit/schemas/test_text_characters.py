"""Free text refuses what a terminal would obey or what reorders a line: C0 and C1 controls
and bidirectional embeddings, overrides and isolates. Tab and newline stay allowed."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas import describe_validation_error, example_report
from schemas._base import LongText, ShortText, Text
from schemas.report import Report

C1 = [chr(code) for code in range(0x80, 0xA0)]
BIDI = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]


@pytest.mark.parametrize("character", C1 + BIDI, ids=lambda c: f"U+{ord(c):04X}")
@pytest.mark.parametrize("kind", [ShortText, Text, LongText], ids=["short", "text", "long"])
def test_c1_controls_and_bidi_formatting_are_refused(kind: Any, character: str) -> None:
    with pytest.raises(ValidationError) as info:
        TypeAdapter(kind).validate_python(f"seized at{character} the port")
    [error] = info.value.errors()
    assert error["type"] == "control_character"
    assert error["msg"].startswith("expected printable text:")
    assert f"U+{ord(character):04X} at position 9" in error["msg"]


def test_a_report_title_with_a_bidi_override_says_where_and_why() -> None:
    data = example_report().model_dump(mode="json") | {"title": "Container \u202eevil"}
    with pytest.raises(ValidationError) as info:
        Report.model_validate(data)
    [line] = describe_validation_error(info.value)
    assert line.startswith("title:")
    assert "bidirectional" in line
    assert "U+202E at position 10" in line


@pytest.mark.parametrize(
    "text",
    [
        "line one\n\tline two",
        "windows line\r\nends",
        "کراچی بندرگاہ PKKHI \u200f(Karachi)\u200e",  # Urdu with directional marks
        "Zürich, naïve café ©",  # Latin-1 letters just above the C1 block
    ],
)
def test_printable_text_tab_newline_and_directional_marks_are_allowed(text: str) -> None:
    assert TypeAdapter(LongText).validate_python(text) == text
