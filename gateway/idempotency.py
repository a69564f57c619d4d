"""``Idempotency-Key`` for POSTs, as the IETF httpapi draft specifies it, kept durably.

::

    store = IdempotencyStore(files)
    decision = store.begin(scope, key, fingerprint(method, path, body), now)
    match decision:                     # Begin: do the work, then store.finish(...)
        case Replay(answer): ...        # same key, same request, done: the first answer
        case Conflict(kind): ...        # other request (422) or still in flight (409)

A key is scoped to the token that sent it. The first request with a key inserts an
``in_flight`` record (one SQLite transaction: two racing requests cannot both begin); once
the answer is known it is stored with the record, and every retry with the same request gets
it back, byte for byte, without the work being done again. A request whose work failed for a
reason worth retrying (Kafka unreachable) forgets its record, so the retry does the work.
Records left ``in_flight`` by a gateway that stopped are marked ``abandoned`` at the next
start: whether their reports went out is unknown, so a retry is refused (409) and pointed at
the status resources, never published a second time. Records are kept for a day by default.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from gateway._files import GatewayFiles, connect

__all__ = [
    "Answer",
    "Begin",
    "Conflict",
    "ConflictKind",
    "Decision",
    "IdempotencyStore",
    "Replay",
    "fingerprint",
    "parse_key",
]

_MAX_KEY = 255


def parse_key(header: str | None) -> str | None:
    """The key of an ``Idempotency-Key`` header (a Structured Field string, quotes
    optional), ``None`` without one; ValueError when it is not a usable key."""
    if header is None:
        return None
    text = header.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if not 1 <= len(text) <= _MAX_KEY or not all(0x21 <= ord(c) <= 0x7E for c in text):
        raise ValueError(
            f"Idempotency-Key must be 1 to {_MAX_KEY} visible ASCII characters, such as a "
            'UUID in quotes: Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"'
        )
    if '"' in text or "\\" in text:
        raise ValueError("Idempotency-Key must not contain quotes or backslashes")
    return text


def fingerprint(method: str, path: str, body: bytes) -> bytes:
    """What makes two requests "the same": method, path and body bytes."""
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored response: status, body and ``Location`` (if any)."""

    status: int
    body: bytes
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Begin:
    """No record yet: this request does the work."""


@dataclass(frozen=True, slots=True)
class Replay:
    answer: Answer


class ConflictKind(StrEnum):
    OTHER_REQUEST = "other_request"
    """Same key, another request body (or path): 422."""
    IN_FLIGHT = "in_flight"
    """Same key, the first request is still being processed: 409."""
    ABANDONED = "abandoned"
    """Same key, the first request's gateway stopped before it answered: 409."""


@dataclass(frozen=True, slots=True)
class Conflict:
    kind: ConflictKind


Decision = Begin | Replay | Conflict

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    state TEXT NOT NULL,
    status INTEGER,
    body BLOB,
    location TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
)
"""


class IdempotencyStore:
    """Idempotency records in ``<home>/gateway/<agency>/ingest.sqlite``."""

    def __init__(self, files: GatewayFiles) -> None:
        self._db = connect(files, files.ingest)
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def abandon_in_flight(self) -> int:
        """Mark the records a previous process left in flight (call once at start)."""
        cursor = self._db.execute(
            "UPDATE idempotency SET state = 'abandoned' WHERE state = 'in_flight'"
        )
        return cursor.rowcount

    def expire(self, now: datetime, ttl: timedelta) -> int:
        cursor = self._db.execute(
            "DELETE FROM idempotency WHERE created_at < ? AND state != 'in_flight'",
            ((now - ttl).isoformat(),),
        )
        return cursor.rowcount

    def begin(self, scope: str, key: str, request: bytes, now: datetime) -> Decision:
        """Start the request ``request`` (its fingerprint) under ``key``, or say why not."""
        inserted = self._db.execute(
            "INSERT OR IGNORE INTO idempotency (scope, key, fingerprint, state, created_at) "
            "VALUES (?, ?, ?, 'in_flight', ?)",
            (scope, key, request, now.isoformat()),
        )
        if inserted.rowcount == 1:
            return Begin()
        row = self._db.execute(
            "SELECT fingerprint, state, status, body, location FROM idempotency "
            "WHERE scope = ? AND key = ?",
            (scope, key),
        ).fetchone()
        if row is None:  # expired between the two statements: start afresh
            return self.begin(scope, key, request, now)
        stored, state, status, body, location = row
        if bytes(stored) != request:
            return Conflict(ConflictKind.OTHER_REQUEST)
        if state == "in_flight":
            return Conflict(ConflictKind.IN_FLIGHT)
        if state == "abandoned":
            return Conflict(ConflictKind.ABANDONED)
        return Replay(Answer(int(status), bytes(body), location))

    def finish(self, scope: str, key: str, answer: Answer) -> None:
        self._db.execute(
            "UPDATE idempotency SET state = 'done', status = ?, body = ?, location = ? "
            "WHERE scope = ? AND key = ?",
            (answer.status, answer.body, answer.location, scope, key),
        )

    def forget(self, scope: str, key: str) -> None:
        """Drop the record: the work failed in a way a retry may fix."""
        self._db.execute("DELETE FROM idempotency WHERE scope = ? AND key = ?", (scope, key))
