"""The values the CLI's parameters take, checked where they are parsed.

Each parser takes the text given on the command line (or the parameter's default) and
returns the value the command uses, or raises :class:`typer.BadParameter` quoting the value,
stating the expected form and saying how to fix it. The CLI prints that as one paragraph and
exits 2 (a usage error) before the command reads the home or connects to Kafka, so a bad
value can never surface later as a traceback or a misleading Kafka error::

    agency: Annotated[str, typer.Option(parser=agency_id, metavar="ID")]
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer

from schemas import normalise_jurisdiction
from schemas._base import AGENCY_ID_PATTERN
from schemas.vocab import is_registered_category, registered_categories

__all__ = [
    "agency_id",
    "bootstrap",
    "category",
    "directory",
    "enrolment_file",
    "group_name",
    "jurisdiction",
    "key_id",
    "moment",
    "printable",
    "report_source",
    "topic_name",
    "wait_seconds",
    "whole_number",
]

_AGENCY_ID = re.compile(AGENCY_ID_PATTERN)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_HOST = r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
_SERVER = re.compile(rf"(?P<host>{_HOST}):(?P<port>[0-9]{{1,5}})")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_GROUP = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_AGE = re.compile(r"(?P<amount>[0-9]{1,9})\s*(?P<unit>[smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def agency_id(value: object) -> str:
    """An agency id such as ``customs``: a lowercase letter, then 1 to 31 of a-z, 0-9, ``-``."""
    text = _text(value)
    if _AGENCY_ID.fullmatch(text) is None:
        raise typer.BadParameter(
            f"{text!r} is not an agency id: expected a lowercase letter, then 1 to 31 "
            "lowercase letters, digits or hyphens, like customs, anf or fia; "
            "`fusionbus agency list` shows the enrolled ones"
        )
    return text


def category(value: object) -> str:
    """A registered trafficking category code such as ``narcotics``."""
    text = _text(value)
    if not is_registered_category(text):
        raise typer.BadParameter(
            f"{text!r} is not a trafficking category: expected one of "
            f"{', '.join(sorted(registered_categories()))}"
        )
    return text


def jurisdiction(value: object) -> str:
    """A known jurisdiction (country, subdivision or UN/LOCODE place), in canonical form."""
    text = _text(value)
    try:
        return normalise_jurisdiction(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is not a known jurisdiction: {exc}; for example PK, PK-SD or PKKHI"
        ) from None


def whole_number(low: int, high: int | None = None) -> Callable[[object], int]:
    """A parser of whole numbers from ``low`` to ``high`` (no upper bound if ``None``)."""
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"

    def parse(value: object) -> int:
        if isinstance(value, int):
            number = value
        else:
            text = _text(value).strip()
            if re.fullmatch(r"[+-]?[0-9]{1,30}", text) is None:
                raise typer.BadParameter(f"{_text(value)!r} is not a whole number {span}")
            number = int(text)
        if number < low or (high is not None and number > high):
            raise typer.BadParameter(
                f"{_text(value)!r} is out of range: expected a whole number {span}"
            )
        return number

    return parse


def wait_seconds(value: object) -> float:
    """Seconds to wait, from 0 to a day (``15``, ``0.5``)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        text = _text(value).strip()
        if re.fullmatch(r"[0-9]{1,6}(?:\.[0-9]{1,3})?", text) is None:
            raise typer.BadParameter(
                f"{_text(value)!r} is not a number of seconds (for example 15 or 0.5)"
            )
        number = float(text)
    if not 0 <= number <= 86_400:
        raise typer.BadParameter(f"{_text(value)!r} is out of range: 0 to 86400 seconds")
    return number


def directory(value: object) -> Path:
    """A directory path; it need not exist yet (commands create what they need)."""
    text = _text(value)
    if not text.strip():
        raise typer.BadParameter(f"{text!r} is not a path: expected a directory")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise typer.BadParameter(
            f"{text!r} is a file, not a directory: pass a directory (created if missing)"
        )
    return path


def report_source(value: object) -> str:
    """``-`` (standard input) or the path of an existing, readable file."""
    text = _text(value)
    if text == "-":
        return text
    if not text.strip():
        raise typer.BadParameter(f"{text!r} is not a file: expected a JSON report file or -")
    path = Path(text).expanduser()
    if path.is_dir():
        raise typer.BadParameter(
            f"{text!r} is a directory: expected a JSON report file (or JSON lines), or - "
            "for standard input"
        )
    if not path.is_file():
        raise typer.BadParameter(
            f"{text!r} does not exist: expected a JSON report file (or JSON lines), or - "
            "for standard input; `fusionbus report example > report.json` writes one"
        )
    return text


def enrolment_file(what: str, made_by: str) -> Callable[[object], Path]:
    """A parser of the path of an existing file: an enrolment request or a response bundle
    (``what``), which ``made_by`` writes. Its content is checked by the command."""

    def parse(value: object) -> Path:
        text = _text(value)
        if not text.strip():
            raise typer.BadParameter(f"{text!r} is not a file: expected the path of {what}")
        path = Path(text).expanduser()
        if path.is_dir():
            raise typer.BadParameter(f"{text!r} is a directory: expected the file of {what}")
        if not path.is_file():
            raise typer.BadParameter(
                f"{text!r} does not exist: expected {what}, as {made_by} writes it"
            )
        return path

    return parse


def bootstrap(value: object) -> str:
    """A comma-separated list of ``host:port`` Kafka servers."""
    text = _text(value)
    for server in text.split(","):
        match = _SERVER.fullmatch(server)
        if match is None or not 1 <= int(match["port"]) <= 65_535:
            raise typer.BadParameter(
                f"{text!r} is not a bootstrap list: expected host:port[,host:port...] with "
                "ports from 1 to 65535, like 127.0.0.1:9092"
            )
    return text


def topic_name(value: object) -> str:
    """A legal Kafka topic name: 1 to 249 of a-z, A-Z, 0-9, ``.``, ``_``, ``-``."""
    text = _text(value)
    if _TOPIC.fullmatch(text) is None or text in {".", ".."}:
        raise typer.BadParameter(
            f"{text!r} is not a Kafka topic name: expected 1 to 249 letters, digits, '.', "
            "'_' or '-', like fusionbus.directory"
        )
    return text


def group_name(value: object) -> str:
    """A consumer group name: 1 to 64 of a-z, 0-9, ``.``, ``_``, ``-``, first a letter or
    digit."""
    text = _text(value)
    if _GROUP.fullmatch(text) is None:
        raise typer.BadParameter(
            f"{text!r} is not a group name: expected 1 to 64 of a-z, 0-9, '.', '_', '-' "
            "starting with a letter or digit, like case-desk"
        )
    return text


def key_id(value: object) -> str:
    """A key id as the directory lists it (an RFC 7638 thumbprint, base64url)."""
    text = _text(value)
    if _KID.fullmatch(text) is None:
        raise typer.BadParameter(
            f"{text!r} is not a key id: expected up to 64 base64url characters (A-Z, a-z, "
            "0-9, '-', '_'), as `fusionbus agency list` shows them"
        )
    return text


def printable(limit: int) -> Callable[[object], str]:
    """A parser of text of 1 to ``limit`` characters without control or bidi characters."""

    def parse(value: object) -> str:
        text = _text(value)
        if not text.strip():
            raise typer.BadParameter(f"{text!r} is empty: expected 1 to {limit} characters")
        if len(text) > limit:
            raise typer.BadParameter(
                f"{text[:20]!r}... is {len(text)} characters long: expected at most {limit}"
            )
        found = _CONTROL.search(text)
        if found is not None:
            raise typer.BadParameter(
                f"{text!r} holds U+{ord(found.group()):04X}: expected printable text, without "
                "control characters or bidirectional overrides"
            )
        return text

    return parse


def moment(value: object) -> datetime:
    """An ISO 8601 time (UTC if it names no zone) or an age such as ``90m``, ``2h``, ``1d``."""
    if isinstance(value, datetime):
        return value
    text = _text(value).strip()
    now = datetime.now(UTC)
    age = _AGE.fullmatch(text)
    try:
        if age is not None:
            return now - timedelta(**{_UNITS[age["unit"]]: int(age["amount"])})
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise typer.BadParameter(
            f"{_text(value)!r} is not a time: expected an ISO 8601 time like "
            "2026-11-28T09:00Z or an age like 90m, 2h or 1d (at most 999999999 units)"
        ) from None
