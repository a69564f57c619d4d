"""Validation errors rendered for people.

:func:`describe_validation_error` turns a ``pydantic.ValidationError`` into one line per
problem: where (the field path), what was there (truncated) and what was expected. The
broker wraps the lines into its ``SchemaValidationError``.

>>> from schemas import Feedback
>>> try:
...     Feedback.model_validate({"sender": "Customs!"})
... except Exception as exc:
...     print(describe_validation_error(exc)[0])  # doctest: +ELLIPSIS
message_id: missing; expected a value (field required)
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

__all__ = ["describe_validation_error"]

_MAX_VALUE = 40
_MAX_LINES = 50


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One human-readable line per error: ``path: got VALUE; MESSAGE``.

    Values are shortened to about 40 characters; at most 50 lines are returned (the last
    one says how many more there were).
    """
    errors = exc.errors(include_url=False, include_context=False)
    lines = [_line(error["loc"], error["type"], error["input"], error["msg"]) for error in errors]
    if len(lines) > _MAX_LINES:
        more = len(lines) - (_MAX_LINES - 1)
        lines = [*lines[: _MAX_LINES - 1], f"... and {more} more errors"]
    return lines


def _line(loc: tuple[int | str, ...], kind: str, value: object, message: str) -> str:
    path = _path(loc)
    if kind == "missing":
        return f"{path}: missing; expected a value (field required)"
    if kind == "extra_forbidden":
        return f"{path}: unexpected field; remove it"
    return f"{path}: got {_short(value)}; {_lowercase_first(message)}"


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(message)"


def _short(value: object) -> str:
    if isinstance(value, str | bytes):
        shown = value[: _MAX_VALUE + 1]
        text = repr(shown)
        if len(value) > _MAX_VALUE:
            text = repr(shown[:_MAX_VALUE]) + f"... ({len(value)} chars)"
        return text
    if isinstance(value, Mapping):
        return f"an object with {len(value)} fields"
    if isinstance(value, Sequence):
        return f"a list of {len(value)} items"
    shortener = reprlib.Repr()
    shortener.maxother = _MAX_VALUE
    shortener.maxlong = _MAX_VALUE
    return shortener.repr(value)


def _lowercase_first(message: str) -> str:
    if message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    return message[:1].lower() + message[1:] if message[:2] != message[:2].upper() else message
