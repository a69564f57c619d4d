"""Which agencies each report was sealed to, kept by the publishing home.

::

    ledger = SentLedger(home / "state" / "customs" / "sent.sqlite")
    ledger.record(message_id, ["anf", "fia"])
    ledger.sealed_to(message_id)         # ["anf", "fia"], or None if not published from here

``fusionbus publish`` records each report it published; ``fusionbus status`` then lists
every agency a report was sealed to, silent ones included, and leaves out feedback from any
other (only a recipient can have read the report). Ids and agency ids only, no content.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SentLedger"]


class SentLedger:
    """One SQLite file (0600 in a 0700 folder) of (message id, agencies sealed to)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent (message_id TEXT PRIMARY KEY, sealed_to TEXT NOT NULL)"
        )

    def close(self) -> None:
        self._db.close()

    def record(self, message_id: uuid.UUID, agencies: Iterable[str]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO sent (message_id, sealed_to) VALUES (?, ?)",
            (str(message_id), ",".join(sorted(set(agencies)))),
        )

    def sealed_to(self, message_id: uuid.UUID) -> list[str] | None:
        row = self._db.execute(
            "SELECT sealed_to FROM sent WHERE message_id = ?", (str(message_id),)
        ).fetchone()
        return None if row is None else [a for a in row[0].split(",") if a]
