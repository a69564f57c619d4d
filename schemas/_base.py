"""Shared building blocks of the contract: the frozen base model and bounded string types.

Every model of the contract derives from :class:`ContractModel`: frozen, and ignoring
fields it does not know (the forward-compatibility policy in ``docs/schemas.md``).

Validators raise :func:`expected`, a ``PydanticCustomError`` whose message states the
expected form, so :func:`schemas.describe_validation_error` can tell a person how to fix
the input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

__all__ = [
    "AGENCY_ID_PATTERN",
    "SCHEMA_VERSION",
    "AgencyId",
    "ContractModel",
    "LongText",
    "SchemaVersion",
    "ShortText",
    "Text",
    "UtcDatetime",
    "expected",
    "matching",
]

AGENCY_ID_PATTERN = r"^[a-z][a-z0-9-]{1,31}$"


class ContractModel(BaseModel):
    """Base of every contract model: immutable, unknown fields ignored, no coercion surprises.

    ``extra="ignore"``: a field added by a newer *minor* schema version is dropped by an
    older reader instead of failing the whole message (see ``docs/schemas.md``).
    ``hide_input_in_errors``: ``str(ValidationError)`` never carries report content into
    a log line; :func:`schemas.describe_validation_error` shows values deliberately.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        validate_default=True,
        use_attribute_docstrings=True,
        hide_input_in_errors=True,
    )


def expected(kind: str, message: str) -> PydanticCustomError:
    """An error whose message says what form the value should have had.

    ``kind`` is a stable snake_case error type; ``message`` a full phrase starting with
    "expected ...". Braces are escaped because pydantic formats the template.
    """
    return PydanticCustomError(kind, message.replace("{", "{{").replace("}", "}}"))


def matching(pattern: str, kind: str, message: str, *, flags: int = 0) -> Callable[[str], str]:
    """A validator accepting strings that match ``pattern`` in full, else :func:`expected`."""
    compiled = re.compile(pattern, flags)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise expected(kind, message)
        return value

    return check


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""C0 controls but tab, line feed and carriage return; DEL; the C1 controls (U+0080-U+009F,
among them CSI and NEL, which terminals obey); and the bidirectional embeddings, overrides
and isolates (U+202A-U+202E, U+2066-U+2069), which reorder how the rest of a line reads.
The directional marks (U+200E, U+200F, U+061C) stay allowed: Urdu text mixed with codes and
numbers needs them, and they cannot hide or reverse a run of text."""


def _no_control_characters(value: str) -> str:
    found = _CONTROL.search(value)
    if found:
        raise expected(
            "control_character",
            "expected printable text: control characters other than tab and newline, and "
            "bidirectional embedding, override and isolate characters, are not allowed "
            f"(found U+{ord(found.group()):04X} at position {found.start()})",
        )
    return value


ShortText = Annotated[
    str, Field(min_length=1, max_length=200), AfterValidator(_no_control_characters)
]
"""One line of text: a title, a name, a label (1 to 200 characters)."""

Text = Annotated[str, Field(min_length=1, max_length=2_000), AfterValidator(_no_control_characters)]
"""A paragraph: a requested action, a note, a description (1 to 2,000 characters)."""

LongText = Annotated[
    str, Field(min_length=1, max_length=20_000), AfterValidator(_no_control_characters)
]
"""A narrative (1 to 20,000 characters)."""


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise expected(
            "datetime_range", "expected a datetime between years 1 and 9999 once in UTC"
        ) from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware datetime, normalised to UTC; naive datetimes are rejected."""

AgencyId = Annotated[
    str,
    Field(max_length=32, json_schema_extra={"pattern": AGENCY_ID_PATTERN}),
    AfterValidator(
        matching(
            AGENCY_ID_PATTERN,
            "agency_id",
            "expected an agency id like customs, anf or fia: a lowercase letter, then "
            "2 to 32 lowercase letters, digits or hyphens in all",
        )
    ),
]
"""An agency identifier such as ``customs``, ``anf`` or ``fia``."""

SCHEMA_VERSION = "1.0"
_MAJOR = SCHEMA_VERSION.split(".", maxsplit=1)[0]
_VERSION = re.compile(r"(?P<major>[0-9]{1,4})\.(?P<minor>[0-9]{1,4})")


def _accept_same_major(value: object) -> object:
    """Read any 1.x message as 1.0; refuse another major version with a clear error.

    A reader's model is the projection of a message onto the version it knows: a newer
    minor version only adds optional fields, which :class:`ContractModel` ignores.
    """
    if not isinstance(value, str):
        return value
    match = _VERSION.fullmatch(value)
    if match is None:
        return value
    if match["major"] != _MAJOR:
        raise expected(
            "schema_major_version",
            f"expected schema version {_MAJOR}.x; this message uses another major version, "
            "which this reader cannot interpret: upgrade fusionbus",
        )
    return SCHEMA_VERSION


SchemaVersion = Annotated[Literal["1.0"], BeforeValidator(_accept_same_major)]
"""The contract version: ``"1.0"`` when written; any ``1.x`` is read as ``1.0``."""
