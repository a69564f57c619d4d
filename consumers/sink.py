"""Exactly once into an application table: the application's write and the delivery mark
commit in one local SQLite transaction.

::

    def write(db: sqlite3.Connection, delivery: Delivery) -> None:
        report = delivery.report
        db.execute("INSERT INTO cases (report_id, title) VALUES (?, ?)",
                   (str(report.message_id), report.title))

    sink = SqliteSink(path, write, setup=lambda db: db.execute(
        "CREATE TABLE IF NOT EXISTS cases (report_id TEXT PRIMARY KEY, title TEXT)"))
    subscriber = Subscriber(identity, directory, settings, categories=["narcotics"],
                            jurisdictions=["PK"], group_id=group, delivered=sink.delivered)
    await subscriber.run(sink)

A plain handler is at least once: the subscriber calls it, then marks the report delivered
in its :class:`~consumers.delivered.Delivered` store, so a process killed between the two
hands that report over again after a restart. :class:`SqliteSink` closes that gap for an
application whose state lives in SQLite: its ``delivered`` store keeps the delivery marks
in the application's own database file, and for each accepted report
:meth:`SqliteSink.take` runs, in one ``BEGIN IMMEDIATE`` … ``COMMIT``:

1. ``write(connection, delivery)`` — the application's rows;
2. the mark (``Intake.mark``) and the audit record of the hand-over (queued in the audit
   writer's own outbox: an audit record may precede a commit that a kill then undoes; the
   redelivery records it again and ``fusionbus audit show`` shows it once).

A kill -9 at any moment leaves either both the rows and the mark or neither (SQLite's WAL
commit is atomic and survives the death of the process); a redelivery of a committed report
finds the mark, so ``Intake.process`` skips it as a duplicate. The Kafka offsets may lag
behind the table (they are committed per batch): what lies between is read again and
skipped, never written twice.

A ``write`` that raises rolls the transaction back (nothing written, nothing marked) and the
exception stops the subscriber, as a raising handler does; the report is handed over again
after a restart. ``write`` runs on the event loop thread and must neither commit nor roll
back itself (the sink refuses a write that ended the transaction). ``setup`` runs once, in
its own transaction, when the sink opens (create the application's tables there).

The file is opened with mode 0600 in WAL mode with ``synchronous=NORMAL``: a commit survives
a kill of the process; a power loss may undo the last commits together with their marks
(still never one without the other). Readers of the application table in other processes
see only committed transactions.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

from broker.errors import ConfigError
from consumers.delivered import Delivered, SqliteDelivered, open_private
from consumers.intake import Delivery

__all__ = ["Sink", "SqliteSink", "Write"]

Write = Callable[[sqlite3.Connection, Delivery], None]
"""The application's write of one report, on the sink's connection, inside its transaction."""


@runtime_checkable
class Sink(Protocol):
    """What :meth:`consumers.Subscriber.run` takes instead of a handler to deliver exactly
    once: a delivered store and a way to apply a report and its mark atomically."""

    @property
    def delivered(self) -> Delivered: ...

    def take(self, delivery: Delivery, mark: Callable[[], None], /) -> None:
        """Apply ``delivery`` and call ``mark`` (which writes to :attr:`delivered`) so that
        both take effect or neither does; raise to refuse the report."""
        ...


class SqliteSink:
    """An application table in SQLite, written exactly once per report (see the module)."""

    def __init__(
        self,
        path: Path,
        write: Write,
        *,
        setup: Callable[[sqlite3.Connection], object] | None = None,
    ) -> None:
        self._db = open_private(path)
        self._write = write
        try:
            self._delivered = SqliteDelivered.on(self._db)
            if setup is not None:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    setup(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except BaseException:
            self._db.close()
            raise
        self.taken = 0
        """Reports committed by this sink since it was opened."""

    @property
    def delivered(self) -> SqliteDelivered:
        """The delivery marks, in the same database: give it to the ``Subscriber``."""
        return self._delivered

    @property
    def connection(self) -> sqlite3.Connection:
        """The sink's connection (autocommit mode), for reading the application's tables."""
        return self._db

    def take(self, delivery: Delivery, mark: Callable[[], None], /) -> None:
        """``write(connection, delivery)`` and ``mark()`` in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            self._write(db, delivery)
            ended = not db.in_transaction
            if not ended:
                mark()
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if ended:
            raise ConfigError(
                "the sink's write committed or rolled back the transaction itself; it must "
                "only execute statements (the sink commits them together with the mark)"
            )
        self.taken += 1

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteSink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
