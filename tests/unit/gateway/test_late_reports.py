"""A report sent long after it was written (it waited in an outbox) is marked late: in the
delivery, in ``tail`` (text and JSON) and in the gateway's answers."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from consumers import Delivery, Source
from consumers.intake import LATE_AFTER_S
from fusionbus.cli.reports import _printer
from gateway._files import GatewayFiles
from gateway.received import ReceivedStore
from tests.unit.gateway.conftest import delivery

WRITTEN = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def sent_after(seconds: float) -> Delivery:
    made = delivery(now=WRITTEN)
    sent_ms = int((WRITTEN.timestamp() + seconds) * 1000)
    return dataclasses.replace(made, source=Source("t", 0, 0, sent_ms))


def test_a_delivery_knows_how_late_it_was_sent() -> None:
    assert sent_after(LATE_AFTER_S).late_by_s is None  # on the threshold: on time
    assert sent_after(60).late_by_s is None
    assert sent_after(-30).late_by_s is None  # a sender's clock behind: not late
    late = sent_after(3 * 3600 + 120).late_by_s
    assert late == pytest.approx(3 * 3600 + 120)
    no_timestamp = dataclasses.replace(sent_after(9999), source=Source("t", 0, 0, -1))
    assert no_timestamp.late_by_s is None


def test_tail_marks_a_late_report_in_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_printer(as_json=False)(sent_after(3 * 3600 + 120)))
    assert "[LATE: sent 3 h 2 min after it was written]" in capsys.readouterr().out
    asyncio.run(_printer(as_json=True)(sent_after(3 * 3600 + 120)))
    assert orjson.loads(capsys.readouterr().out)["late_by_s"] == 10_920.0
    asyncio.run(_printer(as_json=True)(sent_after(10)))
    assert "late_by_s" not in orjson.loads(capsys.readouterr().out)
    asyncio.run(_printer(as_json=False)(sent_after(10)))
    assert "LATE" not in capsys.readouterr().out


def test_the_gateway_says_a_report_came_late(files: GatewayFiles) -> None:
    store = ReceivedStore(files)
    try:
        late = store.add(delivery(now=WRITTEN), WRITTEN + timedelta(hours=2))
        on_time = store.add(delivery(now=WRITTEN), WRITTEN + timedelta(seconds=30))
        assert late is not None
        assert on_time is not None
        assert late.document()["late_by_s"] == 7200
        assert "late_by_s" not in on_time.document()
    finally:
        store.close()
