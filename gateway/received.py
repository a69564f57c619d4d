"""The reports the agency received, opened and verified, in the gateway's own SQLite store.

::

    store = ReceivedStore(files)
    stored = store.add(delivery, now)          # None if this (sender, message id) is there
    store.page(Filters(categories={"narcotics"}), after=0, limit=100)
    store.prune(older_than)                    # retention; remembers what it dropped

Each report gets the next **sequence number** (``seq``), the store's own order of arrival:
cursors (:mod:`gateway.cursor`) seal a sequence number, never a Kafka position. A report is
stored once per (sender, message id), so a redelivery from Kafka adds nothing. Retention
deletes the oldest reports and records the highest sequence number it deleted
(``pruned_through``), so a reader whose cursor points before it learns that it missed
something (the feed's ``gap`` event) rather than skipping silently.

The file holds plaintext reports: it is 0600 in a 0700 folder (:mod:`gateway._files`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from consumers import Delivery
from gateway._files import GatewayFiles, connect
from schemas import ancestors, normalise_jurisdiction

__all__ = ["Filters", "ReceivedStore", "StoredReport"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    message_id TEXT NOT NULL,
    category TEXT NOT NULL,
    jurisdiction TEXT NOT NULL,
    ancestry TEXT NOT NULL,
    precedence TEXT NOT NULL,
    tlp TEXT NOT NULL,
    created_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    header TEXT NOT NULL,
    report TEXT NOT NULL,
    UNIQUE (sender, message_id)
);
CREATE INDEX IF NOT EXISTS reports_message_id ON reports (message_id);
CREATE INDEX IF NOT EXISTS reports_received_at ON reports (received_at);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = (
    "seq, sender, message_id, category, jurisdiction, ancestry, precedence, tlp, created_at, "
    "received_at, header, report"
)


def _utc(moment: datetime) -> str:
    """A fixed-width UTC time, so text order is time order in SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class StoredReport:
    """One received report as stored: routing fields for filtering, JSON for answers."""

    seq: int
    sender: str
    message_id: str
    category: str
    jurisdiction: str
    ancestry: str
    precedence: str
    tlp: str
    created_at: str
    received_at: str
    header: str
    report: str

    def document(self, *, redacted: bool = False) -> dict[str, Any]:
        """The JSON answer: the verified routing header, and the report unless redacted."""
        body: dict[str, Any] = {
            "received_at": self.received_at,
            "header": orjson.Fragment(self.header),
        }
        if redacted:
            body["redacted"] = True
        else:
            body["report"] = orjson.Fragment(self.report)
        return body


@dataclass(frozen=True)
class Filters:
    """Which reports a reader asks for; empty sets mean "any"."""

    categories: frozenset[str] = frozenset()
    jurisdictions: tuple[str, ...] = ()
    precedences: frozenset[str] = frozenset()
    since: datetime | None = None
    _sql: tuple[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        normalised = tuple(normalise_jurisdiction(j) for j in self.jurisdictions)
        object.__setattr__(self, "jurisdictions", normalised)
        clauses: list[str] = []
        params: list[str] = []
        if self.categories:
            clauses.append(f"category IN ({', '.join('?' * len(self.categories))})")
            params.extend(sorted(self.categories))
        if self.precedences:
            clauses.append(f"precedence IN ({', '.join('?' * len(self.precedences))})")
            params.extend(sorted(self.precedences))
        if normalised:
            clauses.append("(" + " OR ".join("instr(ancestry, ?) > 0" for _ in normalised) + ")")
            params.extend(f"|{j}|" for j in normalised)
        if self.since is not None:
            clauses.append("created_at >= ?")
            params.append(_utc(self.since))
        object.__setattr__(self, "_sql", (" AND ".join(clauses), tuple(params)))

    def matches(self, stored: StoredReport) -> bool:
        """The same test as :meth:`where`, on a report in memory (for the live feed)."""
        return (
            (not self.categories or stored.category in self.categories)
            and (not self.precedences or stored.precedence in self.precedences)
            and (
                not self.jurisdictions
                or any(f"|{j}|" in stored.ancestry for j in self.jurisdictions)
            )
            and (self.since is None or stored.created_at >= _utc(self.since))
        )

    def where(self) -> tuple[str, tuple[str, ...]]:
        """An SQL condition (empty for none) and its parameters."""
        return self._sql


class ReceivedStore:
    """Received reports in ``<home>/gateway/<agency>/received.sqlite``; one per process."""

    def __init__(self, files: GatewayFiles) -> None:
        self._db = connect(files, files.received)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, delivery: Delivery, now: datetime) -> StoredReport | None:
        """Store ``delivery``; the stored report, or None if it was stored before."""
        header = delivery.header
        known = self._db.execute(
            "SELECT 1 FROM reports WHERE sender = ? AND message_id = ?",
            (header.sender, str(header.message_id)),
        ).fetchone()
        if known is not None:
            return None
        jurisdiction = header.jurisdiction
        values = (
            header.sender,
            str(header.message_id),
            header.category,
            jurisdiction,
            "|" + "|".join(ancestors(jurisdiction)) + "|",
            str(header.precedence),
            str(header.tlp),
            _utc(header.created_at),
            _utc(now),
            header.model_dump_json(),
            delivery.report.model_dump_json(),
        )
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO reports ({_COLUMNS.split(', ', 1)[1]}) "  # noqa: S608 - constant
            f"VALUES ({', '.join('?' * len(values))})",
            values,
        )
        if cursor.rowcount != 1 or cursor.lastrowid is None:
            return None
        return StoredReport(cursor.lastrowid, *values)

    def page(self, filters: Filters, *, after: int, limit: int) -> tuple[list[StoredReport], int]:
        """Up to ``limit`` reports matching ``filters`` with ``seq > after``, in order, and the
        position a reader has then passed: the last one's seq on a full page, else the head
        (every report up to it was looked at)."""
        condition, params = filters.where()
        sql = f"SELECT {_COLUMNS} FROM reports WHERE seq > ?"  # noqa: S608 - constant columns
        if condition:
            sql += f" AND {condition}"
        sql += " ORDER BY seq LIMIT ?"
        rows = [StoredReport(*row) for row in self._db.execute(sql, (after, *params, limit))]
        if len(rows) == limit:
            return rows, rows[-1].seq
        return rows, max(after, self.head())

    def get(self, message_id: str) -> StoredReport | None:
        """The latest report with ``message_id``."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM reports WHERE message_id = ? "  # noqa: S608 - constant
            "ORDER BY seq DESC LIMIT 1",
            (message_id,),
        ).fetchone()
        return None if row is None else StoredReport(*row)

    def head(self) -> int:
        """The highest sequence number ever given (0 for a new store)."""
        row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'reports'").fetchone()
        return 0 if row is None else int(row[0])

    def pruned_through(self) -> int:
        """The highest sequence number retention has deleted (0 if none)."""
        row = self._db.execute("SELECT value FROM meta WHERE name = 'pruned_through'").fetchone()
        return 0 if row is None else int(row[0])

    def prune(self, older_than: datetime) -> int:
        """Delete the reports received before ``older_than``; how many."""
        cutoff = _utc(older_than)
        row = self._db.execute(
            "SELECT MAX(seq), COUNT(*) FROM reports WHERE received_at < ?", (cutoff,)
        ).fetchone()
        highest, count = row
        if not count:
            return 0
        self._db.execute("BEGIN")
        self._db.execute("DELETE FROM reports WHERE seq <= ?", (highest,))
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES ('pruned_through', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)",
            (highest,),
        )
        self._db.execute("COMMIT")
        return int(count)

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM reports").fetchone()[0])
