"""Which agencies each report was sealed to, and its routing, kept by the publishing home.

::

    ledger = SentLedger.for_home(home, "customs")      # <home>/state/customs/sent.sqlite
    ledger.record_published(reports, results, directory, "customs")   # after publish_many
    ledger.record(message_id, ["anf", "fia"], report)
    ledger.sealed_to(message_id)         # ["anf", "fia"], or None if not published from here
    ledger.get(message_id)               # SentReport: sealed_to and the routing fields

``fusionbus publish`` records each report it published; ``fusionbus status`` then lists
every agency a report was sealed to, silent ones included, and leaves out feedback from any
other (only a recipient can have read the report); ``fusionbus retract`` and ``supersede``
send their notice to exactly those agencies, with the report's routing (category,
jurisdiction, precedence, TLP: what its envelope's clear header said). Ids, agency ids and
those routing fields only, no content.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from producers.outbox import Queued
from producers.publisher import Published, Result
from schemas import Report

if TYPE_CHECKING:
    from broker.federation import Directory

__all__ = ["SentLedger", "SentReport"]

_ROUTING = ("category", "jurisdiction", "precedence", "tlp")


@dataclass(frozen=True, slots=True)
class SentReport:
    """What the ledger knows of one published report; routing fields are None for a report
    recorded before the ledger kept them."""

    message_id: uuid.UUID
    sealed_to: tuple[str, ...]
    category: str | None
    jurisdiction: str | None
    precedence: str | None
    tlp: str | None


class SentLedger:
    """One SQLite file (0600 in a 0700 folder) of (message id, agencies sealed to, routing)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent (message_id TEXT PRIMARY KEY, sealed_to TEXT NOT NULL)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sent)")}
        for name in _ROUTING:  # a ledger written before the routing was kept
            if name not in columns:
                self._db.execute(f"ALTER TABLE sent ADD COLUMN {name} TEXT")

    @classmethod
    def for_home(cls, home: Path, agency: str) -> SentLedger:
        """The ledger of ``agency`` in its home: ``<home>/state/<agency>/sent.sqlite``."""
        return cls(home / "state" / agency / "sent.sqlite")

    def close(self) -> None:
        self._db.close()

    def record_published(
        self,
        reports: Sequence[Report],
        results: Sequence[Result],
        directory: Directory,
        sender: str,
    ) -> None:
        """Record each report :meth:`Publisher.publish_many` published or queued (``results``,
        in the order of ``reports``): the agencies other than ``sender`` whose keys (in
        ``directory``) it was sealed to, and its routing."""
        snapshot = directory.snapshot
        for report, result in zip(reports, results, strict=True):
            if isinstance(result, Published | Queued):
                keys = (snapshot.encryption_key(kid) for kid in result.recipients)
                self.record(result.message_id, {k.agency for k in keys if k} - {sender}, report)

    def record(
        self, message_id: uuid.UUID, agencies: Iterable[str], report: Report | None = None
    ) -> None:
        routing = (
            (report.category, report.jurisdiction, str(report.precedence), str(report.handling.tlp))
            if report is not None
            else (None, None, None, None)
        )
        self._db.execute(
            "INSERT OR REPLACE INTO sent (message_id, sealed_to, category, jurisdiction, "
            "precedence, tlp) VALUES (?, ?, ?, ?, ?, ?)",
            (str(message_id), ",".join(sorted(set(agencies))), *routing),
        )

    def sealed_to(self, message_id: uuid.UUID) -> list[str] | None:
        found = self.get(message_id)
        return None if found is None else list(found.sealed_to)

    def get(self, message_id: uuid.UUID) -> SentReport | None:
        row = self._db.execute(
            "SELECT sealed_to, category, jurisdiction, precedence, tlp FROM sent "
            "WHERE message_id = ?",
            (str(message_id),),
        ).fetchone()
        if row is None:
            return None
        agencies = tuple(a for a in row[0].split(",") if a)
        return SentReport(message_id, agencies, *row[1:])
