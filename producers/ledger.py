"""Which agencies each report was sealed to, kept by the publishing home.

::

    ledger = SentLedger.for_home(home, "customs")      # <home>/state/customs/sent.sqlite
    ledger.record_published(results, directory, "customs")    # what publish_many returned
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
from typing import TYPE_CHECKING

from broker.errors import FusionbusError
from producers.publisher import Published

if TYPE_CHECKING:
    from broker.federation import Directory

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

    @classmethod
    def for_home(cls, home: Path, agency: str) -> SentLedger:
        """The ledger of ``agency`` in its home: ``<home>/state/<agency>/sent.sqlite``."""
        return cls(home / "state" / agency / "sent.sqlite")

    def close(self) -> None:
        self._db.close()

    def record_published(
        self,
        results: Iterable[Published | FusionbusError],
        directory: Directory,
        sender: str,
    ) -> None:
        """Record each report :meth:`Publisher.publish_many` published: the agencies other
        than ``sender`` whose keys (in ``directory``) it was sealed to."""
        snapshot = directory.snapshot
        for result in results:
            if isinstance(result, Published):
                keys = (snapshot.encryption_key(kid) for kid in result.recipients)
                self.record(result.message_id, {k.agency for k in keys if k} - {sender})

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
