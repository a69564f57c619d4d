"""JSON text a parser must refuse, and positions inside an envelope's JSON.

:func:`dump` writes what orjson will not: :class:`Raw` text spliced in verbatim (``NaN``,
``1e999``, invalid UTF-8, unbalanced brackets), :class:`Pairs` (an object with a member
name twice), integers beyond 64 bits and lone surrogates (as ``\\ud800`` escapes).

A :data:`Path` names a position in an envelope, stepping into the two base64url-encoded JSON
documents it holds (:data:`DECODED`: the ``protected`` header, and the header of the
detached JWS ``unprotected.fusionbus_sig``, whose dot-separated parts are :class:`Part`
steps); :func:`edit` replaces the value at a path and re-encodes on the way out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from broker.envelope._wire import b64d, b64e

__all__ = [
    "DECODED",
    "Pairs",
    "Part",
    "Path",
    "Raw",
    "dump",
    "edit",
    "escaped",
    "get",
    "positions",
    "where",
]


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text inserted verbatim (``NaN``, ``1e999``, unbalanced brackets, bad UTF-8)."""

    text: bytes


@dataclass(frozen=True, slots=True)
class Pairs:
    """A JSON object written member by member, so a name may appear twice."""

    items: tuple[tuple[str | Raw, Any], ...]


def _string(text: str) -> bytes:
    try:
        return orjson.dumps(text)
    except orjson.JSONEncodeError:  # a lone surrogate: json writes it as the escape \ud800
        return json.dumps(text).encode()


def dump(value: Any) -> bytes:
    """JSON text of ``value``, which may hold :class:`Raw`, :class:`Pairs`, integers beyond
    64 bits, NaN and lone surrogates (orjson refuses the last four)."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return _dump(value)


def _dump(value: Any) -> bytes:  # noqa: PLR0911 - one return per JSON type
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs | dict):
        items = value.items if isinstance(value, Pairs) else tuple(value.items())
        return b"{" + b",".join(_dump(k) + b":" + _dump(v) for k, v in items) + b"}"
    if isinstance(value, list | tuple):
        return b"[" + b",".join(_dump(v) for v in value) + b"]"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float):
        return json.dumps(value).encode()  # NaN, Infinity
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value)
    if isinstance(value, int):
        return str(value).encode()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


# -- positions in an envelope ------------------------------------------------------------


class _Decoded:
    """A path step into the base64url-encoded JSON document held by a string."""

    def __repr__(self) -> str:
        return "b64json"


DECODED: Final = _Decoded()


@dataclass(frozen=True, slots=True)
class Part:
    """A path step into dot-separated part ``index`` of a compact JWS string."""

    index: int

    def __repr__(self) -> str:
        return f"part{self.index}"


Step = str | int | _Decoded | Part
Path = tuple[Step, ...]

_SIG: Final[Path] = ("unprotected", "fusionbus_sig")
_EXPAND: Final[dict[Path, Path]] = {("protected",): (DECODED,), (*_SIG, Part(0)): (DECODED,)}
"""Strings that hold a base64url JSON document, and the step into it."""


def where(path: Path) -> str:
    return ">".join(str(s) for s in path) or "<envelope>"


def positions(doc: Any) -> list[Path]:
    """Every JSON position of an envelope, inside its encoded headers too."""
    found: list[Path] = []

    def walk(value: Any, path: Path) -> None:
        found.append(path)
        if isinstance(value, dict):
            for name, member in value.items():
                walk(member, (*path, name))
        elif isinstance(value, list):
            for index, member in enumerate(value):
                walk(member, (*path, index))
        elif isinstance(value, str) and path == _SIG:
            for index, part in enumerate(value.split(".")):
                walk(part, (*path, Part(index)))
        elif isinstance(value, str) and path in _EXPAND:
            walk(orjson.loads(b64d(value)), (*path, DECODED))

    walk(doc, ())
    return found


def get(doc: Any, path: Path) -> Any:
    value = doc
    for step in path:
        if step is DECODED:
            value = orjson.loads(b64d(value))
        elif isinstance(step, Part):
            value = value.split(".")[step.index]
        else:
            value = value[step]
    return value


def edit(doc: Any, path: Path, change: Callable[[Any], Any]) -> Any:
    """``doc`` with the value at ``path`` replaced by ``change(value)``, copied along the way
    and re-encoded where the path went into an encoded header."""
    if not path:
        return change(doc)
    step, rest = path[0], path[1:]
    if step is DECODED:
        inner = edit(orjson.loads(b64d(doc)), rest, change)
        return b64e(dump(inner)).decode()
    if isinstance(step, Part):
        parts = doc.split(".")
        new = edit(parts[step.index], rest, change)
        if not isinstance(new, str):
            return new  # a compact JWS part turned into another type: the string goes
        parts[step.index] = new
        return ".".join(parts)
    copy = dict(doc) if isinstance(doc, dict) else list(doc)
    copy[step] = edit(doc[step], rest, change)  # type: ignore[index]
    return copy


def escaped(text: str, picks: Sequence[int] = (0,)) -> bytes:
    """``text`` as a JSON string whose characters at ``picks`` are written as ``\\u``
    escapes (or ``\\/``): the same string in other bytes."""
    out, last = [b'"'], 0
    for index in sorted(set(picks)):
        char = text[index]
        out.append(orjson.dumps(text[last:index])[1:-1])
        if char == "/":
            out.append(b"\\/")
        else:
            out.append(f"\\u{ord(char):04{'x' if index % 2 else 'X'}}".encode())
        last = index + 1
    out.append(orjson.dumps(text[last:])[1:-1] + b'"')
    return b"".join(out)
