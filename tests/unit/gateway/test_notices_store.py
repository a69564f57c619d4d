"""The received store applies the originator's notices: states, tombstones, ranks, order."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

from gateway._files import GatewayFiles
from gateway.received import Filters, ReceivedStore
from schemas import Notice, NoticeAction
from tests.unit.gateway.conftest import delivery

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def notice(report_id: uuid.UUID, action: NoticeAction, **kw: object) -> Notice:
    return Notice.model_validate(
        {
            "message_id": uuid.uuid4(), "report_id": report_id, "sender": "customs",
            "created_at": NOW, "action": action, "reason": "wrong container", **kw,
        }
    )  # fmt: skip


def test_a_retraction_marks_the_report_and_moves_it_to_the_next_sequence(
    files: GatewayFiles,
) -> None:
    store = ReceivedStore(files)
    first, second = delivery(now=NOW), delivery(now=NOW)
    a, b = store.add(first, NOW), store.add(second, NOW)
    assert a is not None
    assert b is not None
    changed = store.apply(notice(first.header.message_id, NoticeAction.RETRACT), NOW)
    assert changed is not None
    assert changed.state == "retracted"
    assert changed.seq > b.seq  # readers past b's cursor get it again
    document = changed.document()
    assert document["state"] == "retracted"
    assert "report" in document  # still listed, marked
    rows, _ = store.page(Filters(), after=b.seq, limit=10)
    assert [r.message_id for r in rows] == [str(first.header.message_id)]


def test_a_purge_leaves_a_tombstone_and_refuses_the_report_again(files: GatewayFiles) -> None:
    store = ReceivedStore(files)
    item = delivery(now=NOW)
    store.add(item, NOW)
    changed = store.apply(notice(item.header.message_id, NoticeAction.PURGE), NOW)
    assert changed is not None
    document = changed.document()
    assert document["purged"] is True
    assert "report" not in document
    assert store.count() == 0
    assert store.add(item, NOW) is None  # a redelivery is never stored again
    title = item.report.title
    db = sqlite3.connect(files.received)
    texts = [row[0] for row in db.execute("SELECT report FROM reports")]
    assert texts == ["null"]
    assert all(title not in t for t in texts)


def test_a_notice_read_before_its_report_is_applied_on_arrival(files: GatewayFiles) -> None:
    store = ReceivedStore(files)
    item = delivery(now=NOW)
    assert store.apply(notice(item.header.message_id, NoticeAction.RETRACT), NOW) is None
    stored = store.add(item, NOW)
    assert stored is not None
    assert stored.state == "retracted"
    early_purge = delivery(now=NOW)
    store.apply(notice(early_purge.header.message_id, NoticeAction.PURGE), NOW)
    tombstone = store.add(early_purge, NOW)  # purged before it came: never shown
    assert tombstone is not None
    assert tombstone.state == "purged"
    assert "report" not in tombstone.document()
    assert store.add(early_purge, NOW) is None


def test_a_purge_outranks_a_retraction_which_outranks_a_supersession(
    files: GatewayFiles,
) -> None:
    store = ReceivedStore(files)
    item = delivery(now=NOW)
    report_id = item.header.message_id
    store.add(item, NOW)
    retracted = store.apply(notice(report_id, NoticeAction.RETRACT), NOW)
    assert retracted is not None
    later = notice(report_id, NoticeAction.SUPERSEDE, superseded_by=uuid.uuid4())
    assert store.apply(later, NOW) is None  # a retraction stays in force
    again = store.apply(notice(report_id, NoticeAction.RETRACT), NOW)
    assert again is not None  # a second retraction (new reason) is shown
    redelivered = Notice.model_validate_json(str(again.notice))
    assert store.apply(redelivered, NOW) is None  # redelivered: nothing changes
    shown = store.showing(redelivered)  # ... but it is the one shown, so answered again
    assert shown is not None
    assert shown.seq == again.seq
    assert store.showing(notice(report_id, NoticeAction.RETRACT)) is None
    purged = store.apply(notice(report_id, NoticeAction.PURGE), NOW)
    assert purged is not None
    assert purged.state == "purged"
    assert store.apply(notice(report_id, NoticeAction.RETRACT), NOW) is None


def test_only_the_originators_notice_touches_its_report(files: GatewayFiles) -> None:
    store = ReceivedStore(files)
    item = delivery(now=NOW)
    store.add(item, NOW)
    assert store.originator_of(item.header.message_id) == ["customs"]
    forged = notice(item.header.message_id, NoticeAction.PURGE, sender="fia")
    assert store.apply(forged, NOW) is None  # keyed by (sender, report): another report
    kept = store.get(str(item.header.message_id))
    assert kept is not None
    assert kept.state == "current"
