"""What a subscriber has already handed over: at-least-once delivery without duplicates.

Each entry is a message's (sender, message id), the SHA-256 of the envelope it came in, and
when it expires. A message id is chosen by its sender, so it identifies a message only
together with the sender: another agency reusing the id is a different message. A record
seen again with the *same* envelope digest is a redelivery (after a restart, a rebalance or
a producer retry) and is skipped silently; the same (sender, id) in a *different* envelope is
a replay and is quarantined. Entries are forgotten once the envelope has expired: a replay
after that is rejected as ``expired`` by the envelope checks.

``SqliteDelivered`` survives a crash of the process (WAL journal, one small transaction per
handed-over report); ``MemoryDelivered`` is for tests and one-shot tools.
:meth:`SqliteDelivered.on` keeps the entries on a connection the caller owns, so that an
application write and the mark can share one transaction (:mod:`consumers.sink`).
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Protocol

from broker.errors import ConfigError

__all__ = ["Delivered", "MemoryDelivered", "Seen", "SqliteDelivered"]


class Seen(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REPLAY = "replay"


class Delivered(Protocol):
    def check(self, sender: str, message_id: uuid.UUID, digest: bytes, /) -> Seen: ...

    def mark(
        self, sender: str, message_id: uuid.UUID, digest: bytes, expires_at: datetime, /
    ) -> None: ...

    def forget_expired(self, now: datetime, /) -> int: ...


class MemoryDelivered:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, uuid.UUID], tuple[bytes, datetime]] = {}

    def check(self, sender: str, message_id: uuid.UUID, digest: bytes, /) -> Seen:
        entry = self._entries.get((sender, message_id))
        if entry is None:
            return Seen.NEW
        return Seen.DUPLICATE if entry[0] == digest else Seen.REPLAY

    def mark(
        self, sender: str, message_id: uuid.UUID, digest: bytes, expires_at: datetime, /
    ) -> None:
        self._entries[(sender, message_id)] = (digest, expires_at)

    def forget_expired(self, now: datetime, /) -> int:
        old = [k for k, (_, expires) in self._entries.items() if expires <= now]
        for key in old:
            del self._entries[key]
        return len(old)


def open_private(path: Path) -> sqlite3.Connection:
    """Open (creating it with mode 0600, its directory 0700) the SQLite file at ``path`` in
    autocommit mode with a WAL journal: a commit survives a kill of the process."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.touch(mode=0o600, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


_SCHEMA_VERSION = 2
"""1: keyed by message id alone (before sender-scoped ids); 2: keyed by (sender, id)."""


class SqliteDelivered:
    """A crash-safe store in one SQLite file (created with mode 0600).

    A file written by an older fusionbus (keyed by message id alone) is migrated on open:
    its rows are kept under the sender ``""`` and still make an exact redelivery of their
    envelope a duplicate (matched by digest), so upgrading never hands a report over twice.
    """

    def __init__(self, path: Path) -> None:
        self._db = open_private(path)
        self._migrate()

    @classmethod
    def on(cls, connection: sqlite3.Connection) -> SqliteDelivered:
        """A store in ``connection``'s database, which the caller opened in autocommit mode
        (``isolation_level=None``) and closes: a :meth:`mark` made inside the caller's
        ``BEGIN`` … ``COMMIT`` is part of that transaction."""
        if connection.isolation_level is not None:
            raise ConfigError(
                "SqliteDelivered.on needs a connection opened with isolation_level=None "
                "(autocommit), so that transactions are the ones its caller begins"
            )
        store = cls.__new__(cls)
        store._db = connection
        store._migrate()
        return store

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version >= _SCHEMA_VERSION:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        db.execute(
            "CREATE TABLE IF NOT EXISTS delivered_by_sender ("
            " sender TEXT NOT NULL, message_id TEXT NOT NULL, digest BLOB NOT NULL,"
            " expires_at REAL NOT NULL, PRIMARY KEY (sender, message_id))"
        )
        old = db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'delivered'"
        ).fetchone()
        if old is not None:
            db.execute(
                "INSERT OR IGNORE INTO delivered_by_sender"
                " SELECT '', message_id, digest, expires_at FROM delivered"
            )
            db.execute("DROP TABLE delivered")
        db.execute("CREATE INDEX IF NOT EXISTS delivered_digest ON delivered_by_sender (digest)")
        db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        db.execute("COMMIT")

    def check(self, sender: str, message_id: uuid.UUID, digest: bytes, /) -> Seen:
        row = self._db.execute(
            "SELECT digest FROM delivered_by_sender WHERE sender = ? AND message_id = ?",
            (sender, str(message_id)),
        ).fetchone()
        if row is not None:
            return Seen.DUPLICATE if bytes(row[0]) == digest else Seen.REPLAY
        legacy = self._db.execute(
            "SELECT 1 FROM delivered_by_sender WHERE sender = '' AND digest = ?", (digest,)
        ).fetchone()
        return Seen.NEW if legacy is None else Seen.DUPLICATE

    def mark(
        self, sender: str, message_id: uuid.UUID, digest: bytes, expires_at: datetime, /
    ) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO delivered_by_sender VALUES (?, ?, ?, ?)",
            (sender, str(message_id), digest, expires_at.timestamp()),
        )

    def forget_expired(self, now: datetime, /) -> int:
        cursor = self._db.execute(
            "DELETE FROM delivered_by_sender WHERE expires_at <= ?", (now.timestamp(),)
        )
        return cursor.rowcount

    def close(self) -> None:
        self._db.close()
