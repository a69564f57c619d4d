"""A writer's chain state and outbox, kept by its home: ``<home>/state/<agency>/audit.sqlite``.

The state is the head of the chain (the last seq and hash) and the outbox: records signed
and chained but not yet acknowledged by Kafka, by seq. Appending a record and sending the
outbox are two steps, so an act is on record as soon as it is appended, whether or not Kafka
answers; a record leaves the outbox only once Kafka has acknowledged it.

Several processes of one agency may share a home (``fusionbus publish`` while the gateway
runs): each append holds an exclusive ``flock`` on ``audit.lock`` while it reads the head,
signs and commits, so they extend one chain; a process that sends the outbox holds
``audit.send.lock`` (without waiting: another sender is at it), so records reach the topic
in seq order. Ids, digests and agency ids only; the file is 0600 in a 0700 folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from broker.audit.record import GENESIS, AuditRecord, record_hash

__all__ = ["AuditState"]


class AuditState:
    """One agency's audit head and outbox (see the module docstring). For one thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # no fsync per record (WAL: a crash of
        # the process loses nothing committed; a power cut may lose the newest records)
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS head (one INTEGER PRIMARY KEY CHECK (one = 1), "
            "seq INTEGER NOT NULL, hash TEXT NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, value BLOB NOT NULL)"
        )
        self._lock = path.with_name(path.stem + ".lock")
        self._send_lock = path.with_name(path.stem + ".send.lock")

    @classmethod
    def for_home(cls, home: Path, agency: str) -> AuditState:
        return cls(home / "state" / agency / "audit.sqlite")

    def close(self) -> None:
        self._db.close()

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the last record appended here, or ``None`` before the first."""
        row = self._db.execute("SELECT seq, hash FROM head").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def adopt(self, seq: int, digest: str) -> None:
        """Take (seq, hash) as the head, when this home holds none (recovered from the
        topic): the next record is ``seq + 1``."""
        with _locked(self._lock, wait=True):
            if self.head() is None:
                self._db.execute(
                    "INSERT INTO head (one, seq, hash) VALUES (1, ?, ?)", (seq, digest)
                )

    def append(self, make: Callable[[int, str], tuple[AuditRecord, bytes]]) -> AuditRecord:
        """Chain one record: ``make(seq, prev)`` builds and signs it (record, value); it is
        put in the outbox and becomes the head, atomically, under the home's lock."""
        with _locked(self._lock, wait=True):
            head = self.head()
            seq, prev = (0, GENESIS) if head is None else (head[0] + 1, head[1])
            record, value = make(seq, prev)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO outbox (seq, value) VALUES (?, ?)", (seq, value))
                self._db.execute(
                    "INSERT OR REPLACE INTO head (one, seq, hash) VALUES (1, ?, ?)",
                    (seq, record_hash(record)),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return record

    def pending(self, limit: int = 500) -> list[tuple[int, bytes]]:
        """The oldest records not yet acknowledged, by seq."""
        rows = self._db.execute(
            "SELECT seq, value FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [(int(seq), bytes(value)) for seq, value in rows]

    def sent(self, seqs: list[int]) -> None:
        """Kafka acknowledged these records: out of the outbox."""
        self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    @contextlib.contextmanager
    def sending(self) -> Iterator[bool]:
        """Hold the send lock for the block if no other process holds it (yields whether
        this one does)."""
        with _locked(self._send_lock, wait=False) as held:
            yield held


@contextlib.contextmanager
def _locked(path: Path, *, wait: bool) -> Iterator[bool]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
