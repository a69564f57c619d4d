"""Strict JSON for untrusted envelopes: one spelling of every document (no duplicate
member names), a cheap bound on nesting before parsing, and spelling-exact comparison."""

from __future__ import annotations

import json
from typing import Any

import orjson

from broker.errors import Reason, VerificationError

__all__ = ["json_object", "same_json", "too_many_containers"]


def too_many_containers(data: bytes, limit: int) -> bool:
    """Whether ``data`` has more than ``limit`` ``{``/``[`` bytes, a bound on JSON nesting.

    Uses ``find`` (memchr) rather than ``count``: an envelope's brackets are few and its
    bulk is base64, so this costs a few µs even for a large envelope.
    """
    seen = 0
    for opener in (b"{", b"["):
        at = data.find(opener)
        while at >= 0:
            seen += 1
            if seen > limit:
                return True
            at = data.find(opener, at + 1)
    return False


def _strings(value: object) -> int:
    """How many JSON strings (member names and string values) ``value`` holds."""
    if isinstance(value, str):
        return 1
    if isinstance(value, dict):
        return len(value) + sum(_strings(v) for v in value.values())
    if isinstance(value, list):
        return sum(_strings(v) for v in value)
    return 0


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        raise ValueError(f"member {twice[:40]!r} appears more than once")
    return value


_STRICT = json.JSONDecoder(object_pairs_hook=_refuse_duplicates)


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Parse a JSON object, refusing duplicate member names anywhere in it.

    JSON parsers disagree on duplicates (orjson keeps the last, others the first), so
    accepting them would let two readers see two different envelopes. The fastest check: the
    text is exactly what orjson writes for the parsed value (what fusionbus sends), so nothing
    was dropped. Otherwise, when the text has no escapes, every quote delimits a string, so a
    duplicate-free document has exactly twice as many quotes as the parsed value has strings;
    only a mismatch (an escape, or a duplicate) pays for the strict parser.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise VerificationError(Reason.MALFORMED, f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise VerificationError(Reason.MALFORMED, f"{what} must be a JSON object")
    if orjson.dumps(value) == raw:
        return value  # orjson's own spelling: every member there once (a duplicate is dropped)
    if raw.count(b'"') != 2 * _strings(value):
        try:
            _STRICT.decode(raw.decode("utf-8"))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise VerificationError(Reason.MALFORMED, f"{what}: {exc}") from exc
    return value


def same_json(a: object, b: object) -> bool:
    """Equal as JSON, spelling included (``1``, ``1.0`` and ``true`` are three values)."""
    return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        b, option=orjson.OPT_SORT_KEYS
    )
