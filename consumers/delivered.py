"""What a subscriber has already handed over: at-least-once delivery without duplicates.

Each entry is a message id, the SHA-256 of the envelope it came in, and when it expires. A
record seen again with the *same* digest is a redelivery (after a restart, a rebalance or a
producer retry) and is skipped silently; the same id with a *different* envelope is a replay
and is quarantined. Entries are forgotten once the envelope has expired: a replay after that
is rejected as ``expired`` by the envelope checks.

``SqliteDelivered`` survives a crash of the process (WAL journal, one small transaction per
handed-over report); ``MemoryDelivered`` is for tests and one-shot tools.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Protocol

__all__ = ["Delivered", "MemoryDelivered", "Seen", "SqliteDelivered"]


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


class Delivered(Protocol):
    def check(self, message_id: uuid.UUID, digest: bytes, /) -> Seen: ...

    def mark(self, message_id: uuid.UUID, digest: bytes, expires_at: datetime, /) -> None: ...

    def forget_expired(self, now: datetime, /) -> int: ...


class MemoryDelivered:
    def __init__(self) -> None:
        self._entries: dict[uuid.UUID, tuple[bytes, datetime]] = {}

    def check(self, message_id: uuid.UUID, digest: bytes, /) -> Seen:
        entry = self._entries.get(message_id)
        if entry is None:
            return Seen.NEW
        return Seen.DUPLICATE if entry[0] == digest else Seen.REPLAY

    def mark(self, message_id: uuid.UUID, digest: bytes, expires_at: datetime, /) -> None:
        self._entries[message_id] = (digest, expires_at)

    def forget_expired(self, now: datetime, /) -> int:
        old = [k for k, (_, expires) in self._entries.items() if expires <= now]
        for key in old:
            del self._entries[key]
        return len(old)


class SqliteDelivered:
    """A crash-safe store in one SQLite file (created with mode 0600)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS delivered ("
            " message_id TEXT PRIMARY KEY, digest BLOB NOT NULL, expires_at REAL NOT NULL)"
        )

    def check(self, message_id: uuid.UUID, digest: bytes, /) -> Seen:
        row = self._db.execute(
            "SELECT digest FROM delivered WHERE message_id = ?", (str(message_id),)
        ).fetchone()
        if row is None:
            return Seen.NEW
        return Seen.DUPLICATE if bytes(row[0]) == digest else Seen.REPLAY

    def mark(self, message_id: uuid.UUID, digest: bytes, expires_at: datetime, /) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO delivered VALUES (?, ?, ?)",
            (str(message_id), digest, expires_at.timestamp()),
        )

    def forget_expired(self, now: datetime, /) -> int:
        cursor = self._db.execute("DELETE FROM delivered WHERE expires_at <= ?", (now.timestamp(),))
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
