from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consumers import Seen, SqliteDelivered


def test_delivery_state_survives_reopening_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "anf" / "desk.delivered.sqlite"
    mid, now = uuid.uuid4(), datetime.now(UTC)
    store = SqliteDelivered(path)
    store.mark(mid, b"digest", now + timedelta(days=1))
    store.close()

    reopened = SqliteDelivered(path)
    try:
        assert reopened.check(mid, b"digest") is Seen.DUPLICATE
        assert reopened.check(mid, b"other") is Seen.REPLAY
        assert reopened.check(uuid.uuid4(), b"digest") is Seen.NEW
        assert reopened.forget_expired(now + timedelta(days=2)) == 1
        assert reopened.check(mid, b"digest") is Seen.NEW
    finally:
        reopened.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
