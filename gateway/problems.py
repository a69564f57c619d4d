"""RFC 9457 problem details: every error the gateway answers is ``application/problem+json``.

::

    raise Problem(404, "not-found", "No such report", detail="...")
    Problem.from_validation(exc, prefix="/3").document()
    # {"type": "urn:fusionbus:problem:invalid-report", "title": ..., "status": 422,
    #  "detail": ..., "errors": [{"pointer": "/3/handling/tlp", "detail": "handling.tlp: ..."}]}

``type`` is a URN naming the kind of problem (stable, for programs); ``title`` is its
summary; ``detail`` says what was wrong in this request and how to fix it; ``errors`` (an
extension member, as in RFC 9457's own example) names each field by JSON Pointer
(RFC 6901) with the message the command line gives for it. Problems never quote report
content beyond the shortened offending value the sender itself sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from schemas import describe_validation_error

__all__ = ["PROBLEM_JSON", "FieldError", "Problem", "json_pointer"]

PROBLEM_JSON = "application/problem+json"
_TYPE_PREFIX = "urn:fusionbus:problem:"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One wrong field: where (a JSON Pointer into the body, or a parameter) and what is wrong."""

    pointer: str
    detail: str
    member: str = "pointer"
    """``pointer`` (a JSON Pointer into the body) or ``parameter`` (a query parameter name)."""


def json_pointer(location: Sequence[int | str], prefix: str = "") -> str:
    """The RFC 6901 JSON Pointer of a pydantic error location (``~`` and ``/`` escaped)."""
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in location]
    return prefix + "".join(f"/{p}" for p in parts)


@dataclass
class Problem(Exception):  # noqa: N818 - it is the answer, not only an error
    """An HTTP error as an RFC 9457 problem document; raised by handlers, rendered once."""

    status: int
    kind: str
    title: str
    detail: str = ""
    errors: Sequence[FieldError] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(f"{self.status} {self.kind}: {self.detail or self.title}")

    @property
    def type(self) -> str:
        return _TYPE_PREFIX + self.kind

    def document(self, instance: str | None = None) -> dict[str, Any]:
        """The problem as a JSON object."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if instance is not None:
            body["instance"] = instance
        if self.errors:
            body["errors"] = [{e.member: e.pointer, "detail": e.detail} for e in self.errors]
        body.update(self.extra)
        return body

    @staticmethod
    def field_errors(exc: ValidationError, prefix: str = "") -> list[FieldError]:
        """One :class:`FieldError` per pydantic error, worded as the command line words it."""
        errors = exc.errors(include_url=False, include_context=False)
        lines = describe_validation_error(exc)
        named = len(lines) if len(errors) == len(lines) else len(lines) - 1
        found = [
            FieldError(json_pointer(error["loc"], prefix), line)
            for error, line in zip(errors[:named], lines[:named], strict=True)
        ]
        if named < len(lines):  # describe_validation_error summed up the rest in one line
            found.append(FieldError(prefix or "", lines[-1]))
        return found

    @classmethod
    def invalid(cls, errors: Sequence[FieldError], *, what: str = "report") -> Problem:
        """422: the body parsed but does not match the report contract."""
        return cls(
            422,
            f"invalid-{what}",
            f"The {what} does not match the report contract",
            detail=f"{len(errors)} field(s) are wrong; nothing was published. Each entry of "
            "`errors` names the field (a JSON Pointer into the body) and the expected form.",
            errors=errors,
        )
