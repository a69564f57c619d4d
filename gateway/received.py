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

The originator's notices (:class:`schemas.Notice`) change a stored report's **state**:
``superseded`` and ``retracted`` keep it, marked, with the notice; ``purged`` deletes its
content for good and keeps only a tombstone (ids and routing), so a redelivery is never
stored or shown again. A change moves the report to the next sequence number, so every
reader (a page after a cursor, the live feed) gets it again with its new state. A notice
read before its report is kept, and applied when the report arrives. Of several notices on
one report, the highest :attr:`schemas.NoticeAction.rank` is in force (a purge is final).

The file holds plaintext reports: it is 0600 in a 0700 folder (:mod:`gateway._files`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog

from consumers import Delivery
from consumers.intake import LATE_AFTER_S
from gateway._files import GatewayFiles, connect
from schemas import Notice, NoticeAction, ancestors, normalise_jurisdiction

__all__ = ["Filters", "ReceivedStore", "StoredReport"]

log = structlog.get_logger(__name__)

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
    state TEXT NOT NULL DEFAULT 'current',
    notice TEXT,
    stored_at TEXT,
    forwarded_by TEXT,
    signed TEXT,
    UNIQUE (sender, message_id)
);
CREATE TABLE IF NOT EXISTS notices (
    notice_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    report_id TEXT NOT NULL,
    action TEXT NOT NULL,
    rank INTEGER NOT NULL,
    received_at TEXT NOT NULL,
    notice TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_report ON notices (sender, report_id);
CREATE INDEX IF NOT EXISTS reports_message_id ON reports (message_id);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COLUMNS = (
    "seq, sender, message_id, category, jurisdiction, ancestry, precedence, tlp, created_at, "
    "received_at, header, report, state, notice, forwarded_by"
)
_STATES = {"supersede": "superseded", "retract": "retracted", "purge": "purged"}


def _utc(moment: datetime) -> str:
    """A fixed-width UTC time, so text order is time order in SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _late_by_s(created_at: str, received_at: str) -> int | None:
    """Seconds from written to received here, when more than ``LATE_AFTER_S`` (a report that
    waited in its sender's outbox, or here while this gateway could not read)."""
    try:
        late = datetime.fromisoformat(received_at) - datetime.fromisoformat(created_at)
    except ValueError:
        return None
    seconds = late.total_seconds()
    return int(seconds) if seconds > LATE_AFTER_S else None


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
    state: str = "current"
    """``current``, or what the originator's notice made it: ``superseded``, ``retracted``,
    ``purged`` (then no content is kept)."""
    notice: str | None = None
    """The notice in force (JSON), if any."""
    forwarded_by: str | None = None
    """The agency that forwarded it here, for a report that came as a forward."""

    def document(self, *, redacted: bool = False) -> dict[str, Any]:
        """The JSON answer: the verified routing header, the state, the notice in force,
        and the report unless redacted or purged."""
        body: dict[str, Any] = {
            "received_at": self.received_at,
            "header": orjson.Fragment(self.header),
            "state": self.state,
        }
        late = _late_by_s(self.created_at, self.received_at)
        if late is not None:
            body["late_by_s"] = late
        if self.notice is not None:
            body["notice"] = orjson.Fragment(self.notice)
        if self.forwarded_by is not None:
            body["forwarded_by"] = self.forwarded_by
        if self.state == "purged":
            body["purged"] = True
        elif redacted:
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
        self._db.execute("PRAGMA secure_delete=ON")  # a purged report's pages are zeroed
        self._migrate()
        self._db.executescript(_SCHEMA)
        self._db.execute("CREATE INDEX IF NOT EXISTS reports_stored_at ON reports (stored_at)")

    def _migrate(self) -> None:
        """Add the columns a store written by an earlier version lacks."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(reports)")}
        if not columns:
            return  # a new store: the schema makes every column
        added = {
            "state": "TEXT NOT NULL DEFAULT 'current'",
            "notice": "TEXT",
            "stored_at": "TEXT",
            "forwarded_by": "TEXT",
            "signed": "TEXT",
        }
        self._db.execute("BEGIN")
        for name, kind in added.items():
            if name not in columns:
                self._db.execute(f"ALTER TABLE reports ADD COLUMN {name} {kind}")
        self._db.execute("UPDATE reports SET stored_at = received_at WHERE stored_at IS NULL")
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def signed(self, message_id: str) -> bytes | None:
        """The originator's evidence of a report kept here (what a forward carries): its
        inner JWS (envelope version 1), or the envelope, payload and salt (version 2)."""
        row = self._db.execute(
            "SELECT signed FROM reports WHERE message_id = ? AND state != 'purged' "
            "ORDER BY seq DESC LIMIT 1",
            (message_id,),
        ).fetchone()
        return None if row is None or not row[0] else str(row[0]).encode("ascii")

    def add(self, delivery: Delivery, now: datetime) -> StoredReport | None:
        """Store ``delivery``; the stored report, or None if it was stored before. A notice
        that came first is applied (a purge keeps only the tombstone, which is returned)."""
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
        state, notice, content = "current", None, values[-1]
        waiting = self._in_force(header.sender, str(header.message_id))
        if waiting is not None:
            state, notice = _STATES[waiting.action], waiting.model_dump_json()
            if waiting.action is NoticeAction.PURGE:
                content = "null"
        signed = delivery.signed.decode("ascii") if delivery.signed and state != "purged" else None
        row = (*values[:-1], content, state, notice, delivery.forwarded_by)
        cursor = self._db.execute(
            f"INSERT OR IGNORE INTO reports ({_COLUMNS.split(', ', 1)[1]}, stored_at, signed) "  # noqa: S608 - constant
            f"VALUES ({', '.join('?' * (len(row) + 2))})",
            (*row, _utc(now), signed),
        )
        if cursor.rowcount != 1 or cursor.lastrowid is None:
            return None
        return StoredReport(cursor.lastrowid, *row)  # purged before it came: a tombstone

    def originator_of(self, report_id: uuid.UUID) -> list[str]:
        """The senders of the reports ``report_id`` stored here (kept or purged)."""
        rows = self._db.execute(
            "SELECT DISTINCT sender FROM reports WHERE message_id = ?", (str(report_id),)
        )
        return sorted(str(row[0]) for row in rows)

    def holds(self, sender: str, report_id: uuid.UUID) -> bool:
        """Whether a report ``report_id`` of ``sender`` is stored here (kept or purged)."""
        row = self._db.execute(
            "SELECT 1 FROM reports WHERE sender = ? AND message_id = ?",
            (sender, str(report_id)),
        ).fetchone()
        return row is not None

    def apply(self, notice: Notice, now: datetime) -> StoredReport | None:
        """Apply the originator's ``notice``: keep it, and if its report is here and the
        notice outranks the one in force, change the report's state (moving it to the next
        sequence number). The report as now stored, or None when nothing changed here."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO notices (notice_id, sender, report_id, action, rank, "
                "received_at, notice) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    str(notice.message_id), notice.sender, str(notice.report_id),
                    str(notice.action), notice.action.rank, _utc(now), notice.model_dump_json(),
                ),
            )  # fmt: skip
            changed = self._resequence(notice, now)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        if changed is not None and changed.state == "purged":
            self._checkpoint()
        return changed

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the file and empty it: a purged report's old pages
        live on there until then. A reader holding the log open makes it busy: try again."""
        for attempt in range(50):
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            time.sleep(0.02 * (attempt + 1))
        log.warning("received.checkpoint_busy")  # the next purge or checkpoint empties it

    def _resequence(self, notice: Notice, now: datetime) -> StoredReport | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM reports WHERE sender = ? AND message_id = ?",  # noqa: S608 - constant
            (notice.sender, str(notice.report_id)),
        ).fetchone()
        if row is None:
            return None  # applied when the report arrives
        stored = StoredReport(*row)
        in_force = self._in_force(notice.sender, str(notice.report_id))
        if in_force is None or in_force.message_id != notice.message_id:
            return None  # a higher-ranked notice is in force already
        if stored.notice is not None and Notice.model_validate_json(stored.notice).message_id == (
            notice.message_id
        ):
            return None  # applied before (a redelivery): nothing changes
        state = _STATES[notice.action]
        purge = notice.action is NoticeAction.PURGE
        content = "null" if purge else stored.report
        kept = self._db.execute("SELECT signed FROM reports WHERE seq = ?", (stored.seq,))
        signed = None if purge else kept.fetchone()[0]
        self._db.execute("DELETE FROM reports WHERE seq = ?", (stored.seq,))
        values = (
            stored.sender, stored.message_id, stored.category, stored.jurisdiction,
            stored.ancestry, stored.precedence, stored.tlp, stored.created_at,
            stored.received_at, stored.header, content, state, notice.model_dump_json(),
            stored.forwarded_by,
        )  # fmt: skip
        cursor = self._db.execute(
            f"INSERT INTO reports ({_COLUMNS.split(', ', 1)[1]}, stored_at, signed) "  # noqa: S608 - constant
            f"VALUES ({', '.join('?' * (len(values) + 2))})",
            (*values, _utc(now), signed),
        )
        assert cursor.lastrowid is not None  # noqa: S101 - an INSERT gives a rowid
        return StoredReport(cursor.lastrowid, *values)

    def showing(self, notice: Notice) -> StoredReport | None:
        """The report ``notice`` is about, if it is stored here with that notice in force
        (the notice was applied before)."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM reports WHERE sender = ? AND message_id = ?",  # noqa: S608 - constant
            (notice.sender, str(notice.report_id)),
        ).fetchone()
        if row is None or row[-2] is None:
            return None
        stored = StoredReport(*row)
        applied = Notice.model_validate_json(str(stored.notice)).message_id == notice.message_id
        return stored if applied else None

    def _in_force(self, sender: str, report_id: str) -> Notice | None:
        """The notice in force on a report: the highest rank, the latest of that rank."""
        row = self._db.execute(
            "SELECT notice FROM notices WHERE sender = ? AND report_id = ? "
            "ORDER BY rank DESC, rowid DESC LIMIT 1",
            (sender, report_id),
        ).fetchone()
        return None if row is None else Notice.model_validate_json(row[0])

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
        """Delete the reports stored (or last changed) before ``older_than``; how many."""
        cutoff = _utc(older_than)
        row = self._db.execute(
            "SELECT MAX(seq), COUNT(*) FROM reports WHERE stored_at < ?", (cutoff,)
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
        """How many reports are kept (purged tombstones not counted)."""
        return int(
            self._db.execute("SELECT COUNT(*) FROM reports WHERE state != 'purged'").fetchone()[0]
        )
