"""The durable outbox: sealed reports accepted while Kafka cannot take them, sent in order later.

::

    outbox = Outbox(home.state / "customs" / "outbox.sqlite", capacity=50_000)
    outbox.put([Sealed(...), ...])     # all or nothing; OutboxFullError when it would overflow
    for item in outbox.next(500): ...  # oldest first, at most one per thread
    outbox.sent([item.seq, ...])
    outbox.backlog()                   # Backlog(queued=…, oldest_at=…, expired=…, failed=…)

One SQLite file in WAL mode with ``synchronous=FULL``: a report :meth:`Outbox.put` returned
for is on disk, through a ``kill -9`` of the process and a power cut alike. Each row holds
the envelope exactly as it was sealed when the report was accepted (what the border post
signed is what arrives, however late), its topic, partition key and clear routing headers,
and when it was accepted.

**Order.** :meth:`Outbox.next` hands out the oldest queued rows, but at most one row of
each partition key (a thread of related reports): the next report of a thread is handed
out only once the one before it was sent. A report that failed and is sent again can
therefore never overtake, or be overtaken by, another of its thread.

**Expiry.** An envelope carries its end of validity (``expires_at``); a receiver rejects it
after that as ``expired``. :meth:`Outbox.expire` moves every queued row whose envelope
expired to the state ``expired``: it is not sent, it stays in the file (its id, topic and
times, for ``fusionbus outbox`` and the gateway's status) until :meth:`Outbox.discard`.
Re-sealing it with a new validity would send something the sender never signed.

**Failure.** A report Kafka refuses for good (the topic is not granted, the record is too
large) moves to ``failed`` with Kafka's answer, kept the same way.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from broker.errors import FusionbusError

__all__ = ["Backlog", "ExpiredError", "Outbox", "OutboxFullError", "Queued", "Sealed", "Stuck"]

DEFAULT_CAPACITY = 50_000
"""Reports an outbox holds at most (queued ones; expired and failed rows do not count)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    topic TEXT NOT NULL,
    key BLOB NOT NULL,
    envelope BLOB NOT NULL,
    headers BLOB NOT NULL,
    kids TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
"""


class OutboxFullError(FusionbusError):
    """The outbox holds its capacity of reports waiting for Kafka; nothing more is taken."""


class ExpiredError(FusionbusError):
    """A report's envelope expired while it waited in the outbox: it was not sent."""

    def __init__(self, message_id: uuid.UUID) -> None:
        super().__init__(
            f"report {message_id} was not sent: its envelope expired while it waited in the "
            "outbox for Kafka (receivers would refuse it as expired). Publish it again, with "
            "a new message_id and valid_until, if it still matters."
        )
        self.message_id = message_id


@dataclass(frozen=True, slots=True)
class Sealed:
    """A report sealed for sending: everything Kafka needs, fixed when it was accepted."""

    message_id: uuid.UUID
    topic: str
    key: bytes
    envelope: bytes
    headers: tuple[tuple[str, bytes], ...]
    kids: tuple[str, ...]
    accepted_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Queued:
    """A report accepted into the outbox and not sent yet (Kafka is not reachable, or has not
    answered in time): it will be sent, in order, once Kafka takes it."""

    message_id: uuid.UUID
    topic: str
    recipients: tuple[str, ...]
    accepted_at: datetime


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    item: Sealed


@dataclass(frozen=True, slots=True)
class Backlog:
    queued: int
    oldest_at: datetime | None
    """When the oldest queued report was accepted."""
    expired: int
    failed: int

    def oldest_age_s(self, now: datetime) -> float:
        return 0.0 if self.oldest_at is None else max(0.0, (now - self.oldest_at).total_seconds())

    def document(self, now: datetime) -> dict[str, object]:
        return {
            "queued": self.queued,
            "oldest_accepted_at": None if self.oldest_at is None else self.oldest_at.isoformat(),
            "oldest_age_s": round(self.oldest_age_s(now), 1),
            "expired": self.expired,
            "failed": self.failed,
        }


@dataclass(frozen=True, slots=True)
class Stuck:
    """A row that will not be sent: ``expired`` or ``failed``, with why."""

    message_id: str
    topic: str
    state: str
    accepted_at: datetime
    expires_at: datetime
    detail: str


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


class Outbox:
    """Reports waiting for Kafka, in one SQLite file (created with mode 0600)."""

    def __init__(self, path: Path, *, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"an outbox capacity is at least 1 report, not {capacity}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
        self.path = path
        self.capacity = capacity
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def for_home(cls, home: Path, agency: str, *, capacity: int = DEFAULT_CAPACITY) -> Outbox:
        """The outbox of ``agency``'s command line: ``<home>/state/<agency>/outbox.sqlite``."""
        return cls(home / "state" / agency / "outbox.sqlite", capacity=capacity)

    def close(self) -> None:
        self._db.close()

    def put(self, items: Sequence[Sealed]) -> None:
        """Keep ``items``, all or none: :class:`OutboxFullError` when they do not fit. A report
        whose message id the outbox holds already is not taken twice."""
        db = self._db
        rows = [
            (
                str(i.message_id), i.topic, i.key, i.envelope,
                orjson.dumps([[k, v.decode("utf-8", "replace")] for k, v in i.headers]),
                ",".join(i.kids), i.accepted_at.timestamp(), i.expires_at.timestamp(),
            )
            for i in items
        ]  # fmt: skip
        db.execute("BEGIN IMMEDIATE")
        queued = self._count("queued")
        if queued + len(items) > self.capacity:
            db.execute("ROLLBACK")
            raise self._full(queued, len(items))
        try:
            db.executemany(
                "INSERT OR IGNORE INTO outbox (message_id, topic, key, envelope, headers, kids,"
                " accepted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _full(self, queued: int, more: int) -> OutboxFullError:
        oldest = self.backlog().oldest_at
        since = "" if oldest is None else f" (the oldest accepted {oldest.isoformat()})"
        return OutboxFullError(
            f"the outbox {self.path} holds {queued} reports waiting for Kafka{since}, its "
            f"capacity is {self.capacity}: none of these {more} was accepted. Kafka has not "
            "taken reports for a while: restore the link to the cluster (`fusionbus outbox` "
            "shows the backlog), or raise the capacity (`[outbox] capacity` in config.toml)."
        )

    def holds(self, message_id: uuid.UUID) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM outbox WHERE message_id = ?", (str(message_id),)
        ).fetchone()
        return row is not None

    def next(self, limit: int) -> list[Row]:
        """The oldest queued rows, at most ``limit``, at most one per partition key."""
        rows = self._db.execute(
            "SELECT seq, message_id, topic, key, envelope, headers, kids, accepted_at,"
            " expires_at FROM outbox WHERE state = 'queued' ORDER BY seq LIMIT ?",
            (limit * 4,),
        )
        found: list[Row] = []
        keys: set[bytes] = set()
        for seq, message_id, topic, raw_key, envelope, headers, kids, accepted, expires in rows:
            key = bytes(raw_key)
            if key in keys:
                continue
            keys.add(key)
            item = Sealed(
                uuid.UUID(message_id), topic, key, bytes(envelope),
                tuple((k, v.encode()) for k, v in orjson.loads(headers)),
                tuple(k for k in kids.split(",") if k), _time(accepted), _time(expires),
            )  # fmt: skip
            found.append(Row(seq, item))
            if len(found) >= limit:
                break
        return found

    def sent(self, seqs: Sequence[int]) -> None:
        """Kafka acknowledged these rows: forget them."""
        if seqs:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def fail(self, seq: int, detail: str) -> None:
        self._db.execute(
            "UPDATE outbox SET state = 'failed', detail = ?, envelope = x'' WHERE seq = ?",
            (detail[:500], seq),
        )

    def expire(self, now: datetime) -> list[uuid.UUID]:
        """Move the queued rows whose envelope expired to ``expired``; their message ids."""
        moment = now.timestamp()
        ids = [
            uuid.UUID(row[0])
            for row in self._db.execute(
                "SELECT message_id FROM outbox WHERE state = 'queued' AND expires_at <= ?",
                (moment,),
            )
        ]
        if ids:
            self._db.execute(
                "UPDATE outbox SET state = 'expired', envelope = x'', detail = 'the envelope "
                "expired before Kafka could take it' WHERE state = 'queued' AND expires_at <= ?",
                (moment,),
            )
        return ids

    def stuck(self) -> list[Stuck]:
        """The rows that will not be sent (expired, failed), oldest first."""
        rows = self._db.execute(
            "SELECT message_id, topic, state, accepted_at, expires_at, detail FROM outbox"
            " WHERE state != 'queued' ORDER BY seq"
        )
        return [Stuck(m, t, s, _time(a), _time(e), d) for m, t, s, a, e, d in rows]

    def discard(self) -> int:
        """Forget the expired and failed rows; how many there were."""
        return self._db.execute("DELETE FROM outbox WHERE state != 'queued'").rowcount

    def backlog(self) -> Backlog:
        counts = dict(
            self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall()
        )
        oldest = self._db.execute(
            "SELECT MIN(accepted_at) FROM outbox WHERE state = 'queued'"
        ).fetchone()[0]
        return Backlog(
            queued=int(counts.get("queued", 0)),
            oldest_at=None if oldest is None else _time(oldest),
            expired=int(counts.get("expired", 0)),
            failed=int(counts.get("failed", 0)),
        )

    def _count(self, state: str) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM outbox WHERE state = ?", (state,))
        return int(row.fetchone()[0])
