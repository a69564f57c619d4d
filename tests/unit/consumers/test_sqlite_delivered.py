from __future__ import annotations

import sqlite3
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers import Delivered, MemoryDelivered, Seen, SqliteDelivered


def test_delivery_state_survives_reopening_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "anf" / "desk.delivered.sqlite"
    mid, now = uuid.uuid4(), datetime.now(UTC)
    store = SqliteDelivered(path)
    store.mark("customs", mid, b"digest", now + timedelta(days=1))
    store.close()

    reopened = SqliteDelivered(path)
    try:
        assert reopened.check("customs", mid, b"digest") is Seen.DUPLICATE
        assert reopened.check("customs", mid, b"other") is Seen.REPLAY
        assert reopened.check("customs", uuid.uuid4(), b"digest2") is Seen.NEW
        assert reopened.forget_expired(now + timedelta(days=2)) == 1
        assert reopened.check("customs", mid, b"digest") is Seen.NEW
    finally:
        reopened.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Delivered:
    if request.param == "memory":
        return MemoryDelivered()
    return SqliteDelivered(tmp_path / "delivered.sqlite")


def test_a_message_id_is_scoped_by_its_sender(store: Delivered) -> None:
    """Issue 9 finding 5: fia publishing first with customs' message id must not make the
    genuine customs report a replay."""
    mid, later = uuid.uuid4(), datetime.now(UTC) + timedelta(days=1)
    assert store.check("fia", mid, b"fia-envelope") is Seen.NEW
    store.mark("fia", mid, b"fia-envelope", later)
    assert store.check("customs", mid, b"customs-envelope") is Seen.NEW
    store.mark("customs", mid, b"customs-envelope", later)
    assert store.check("customs", mid, b"customs-envelope") is Seen.DUPLICATE
    assert store.check("customs", mid, b"another") is Seen.REPLAY
    assert store.check("fia", mid, b"fia-envelope") is Seen.DUPLICATE


def test_a_state_file_of_the_id_only_format_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    mid, later = uuid.uuid4(), datetime.now(UTC) + timedelta(days=1)
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE delivered ("
        " message_id TEXT PRIMARY KEY, digest BLOB NOT NULL, expires_at REAL NOT NULL)"
    )
    db.execute("INSERT INTO delivered VALUES (?, ?, ?)", (str(mid), b"old", later.timestamp()))
    db.commit()
    db.close()
    store = SqliteDelivered(path)
    try:
        assert store.check("customs", mid, b"old") is Seen.DUPLICATE  # the exact redelivery
        assert store.check("customs", mid, b"new") is Seen.NEW
        tables = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master")}
        assert "delivered" not in tables
    finally:
        store.close()
    SqliteDelivered(path).close()  # opening a migrated file again changes nothing
