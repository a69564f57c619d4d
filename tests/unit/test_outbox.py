"""The outbox store: all-or-nothing acceptance, bounded, oldest first, one per thread,
expiry, and what survives closing (the file is the truth)."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from producers.outbox import Outbox, OutboxFullError, Sealed

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def sealed(key: str = "", *, expires: datetime | None = None, at: datetime = NOW) -> Sealed:
    message_id = uuid.uuid4()
    return Sealed(
        message_id=message_id,
        topic="fusionbus.reports.customs.pk.narcotics",
        key=(key or str(message_id)).encode(),
        envelope=b"sealed-" + message_id.bytes,
        headers=(("fusionbus-message-id", str(message_id).encode()),),
        kids=("anf-enc-1", "fia-enc-1"),
        accepted_at=at,
        expires_at=expires or NOW + timedelta(days=7),
    )


def test_what_was_put_comes_back_byte_for_byte_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state" / "outbox.sqlite"
    items = [sealed() for _ in range(3)]
    box = Outbox(path)
    box.put(items)
    box.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Outbox(path)
    rows = again.next(10)
    assert [r.item for r in rows] == items
    assert again.backlog().queued == 3
    assert again.backlog().oldest_at == NOW


def test_a_batch_that_does_not_fit_is_refused_whole(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", capacity=5)
    box.put([sealed() for _ in range(4)])
    with pytest.raises(OutboxFullError, match="capacity is 5: none of these 2 was accepted"):
        box.put([sealed(), sealed()])
    assert box.backlog().queued == 4
    box.put([sealed()])
    assert box.backlog().queued == 5


def test_sent_rows_leave_and_make_room(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite", capacity=2)
    box.put([sealed(), sealed()])
    box.sent([r.seq for r in box.next(10)])
    assert box.backlog().queued == 0
    assert box.backlog().oldest_at is None
    box.put([sealed(), sealed()])


def test_one_row_per_thread_until_the_earlier_one_is_sent(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    a1, b1, a2, a3, b2 = (sealed(k) for k in ("a", "b", "a", "a", "b"))
    box.put([a1, b1, a2, a3, b2])
    first = box.next(10)
    assert [r.item for r in first] == [a1, b1]
    box.sent([first[0].seq])  # a1 sent, b1 failed (stays)
    assert [r.item for r in box.next(10)] == [b1, a2]
    assert [r.item for r in box.next(1)] == [b1]


def test_the_same_report_is_not_taken_twice(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    item = sealed()
    box.put([item])
    box.put([item])
    assert box.backlog().queued == 1
    assert box.holds(item.message_id)


def test_expired_rows_are_kept_aside_not_sent(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    soon, later = sealed(expires=NOW + timedelta(minutes=5)), sealed()
    box.put([soon, later])
    assert box.expire(NOW) == []
    assert box.expire(NOW + timedelta(minutes=5)) == [soon.message_id]
    assert [r.item for r in box.next(10)] == [later]
    backlog = box.backlog()
    assert (backlog.queued, backlog.expired) == (1, 1)
    [stuck] = box.stuck()
    assert (stuck.message_id, stuck.state) == (str(soon.message_id), "expired")
    assert "expired before Kafka could take it" in stuck.detail
    assert box.discard() == 1
    assert box.backlog().expired == 0


def test_a_refused_row_is_failed_with_kafkas_answer(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.put([sealed()])
    [row] = box.next(1)
    box.fail(row.seq, "Kafka refused publishing: TopicAuthorizationFailedError")
    assert box.next(1) == []
    assert box.backlog().failed == 1
    assert "TopicAuthorizationFailedError" in box.stuck()[0].detail


def test_the_backlog_document_gives_count_and_age(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.put([sealed(at=NOW - timedelta(hours=3)), sealed()])
    document = box.backlog().document(NOW)
    assert document == {
        "queued": 2,
        "oldest_accepted_at": (NOW - timedelta(hours=3)).isoformat(),
        "oldest_age_s": 10_800.0,
        "expired": 0,
        "failed": 0,
    }


def test_a_capacity_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Outbox(tmp_path / "o.sqlite", capacity=0)
