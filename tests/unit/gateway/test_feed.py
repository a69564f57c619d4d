"""The feed generator over a real store, without HTTP: order, resume, gap, slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import UTC, datetime, timedelta

import anyio
import orjson
import pytest
from sse_starlette import ServerSentEvent

from gateway._files import GatewayFiles
from gateway.cursor import CursorCodec
from gateway.feed import Hub, Start, feed_events
from gateway.received import Filters, ReceivedStore
from tests.unit.gateway.conftest import delivery

NOW = datetime.now(UTC)
pytestmark = pytest.mark.asyncio


def setup(files: GatewayFiles) -> tuple[ReceivedStore, Hub, CursorCodec]:
    return ReceivedStore(files), Hub(), CursorCodec.for_files(files)


def events(
    store: ReceivedStore, hub: Hub, codec: CursorCodec, start: Start, **kw: object
) -> AsyncGenerator[ServerSentEvent]:
    options: dict[str, object] = {
        "redact": lambda _: False,
        "queue_size": 100,
        "heartbeat_s": 0.05,
        "filters": Filters(),
    } | kw
    return feed_events(store, hub, codec, start=start, **options)  # type: ignore[arg-type]


def store_one(store: ReceivedStore, hub: Hub, **kw: object) -> str:
    stored = store.add(delivery(**kw), NOW)  # type: ignore[arg-type]
    assert stored is not None
    hub.publish(stored)
    return stored.message_id


def message_id(event: ServerSentEvent) -> str:
    data = orjson.loads(str(event.data))
    return str(data["header"]["message_id"])


async def test_history_then_live_without_gap_or_repeat(files: GatewayFiles) -> None:
    store, hub, codec = setup(files)
    history = [store_one(store, hub) for _ in range(450)]  # more than one page
    feed = events(store, hub, codec, Start.beginning())
    seen = [message_id(await anext(feed)) for _ in range(450)]
    assert seen == history
    live = [store_one(store, hub) for _ in range(5)]
    assert [message_id(await anext(feed)) for _ in range(5)] == live
    await feed.aclose()
    assert hub.clients == 0


async def test_resuming_from_an_event_id_continues_after_it(files: GatewayFiles) -> None:
    store, hub, codec = setup(files)
    ids = [store_one(store, hub) for _ in range(10)]
    feed = events(store, hub, codec, Start.beginning())
    first = [await anext(feed) for _ in range(4)]
    await feed.aclose()
    resumed = events(store, hub, codec, Start.at(codec.decode(str(first[-1].id))))
    rest = [message_id(await anext(resumed)) for _ in range(6)]
    await resumed.aclose()
    assert [message_id(e) for e in first] + rest == ids


async def test_a_quiet_filtered_feed_still_advances_by_heartbeats(files: GatewayFiles) -> None:
    store, hub, codec = setup(files)
    feed = events(
        store, hub, codec, Start.head(), filters=Filters(categories=frozenset({"contraband"}))
    )
    waiting = asyncio.ensure_future(anext(feed))
    await asyncio.sleep(0.01)
    store_one(store, hub, category="narcotics")  # not for this reader
    beat = await waiting
    assert beat.event == "heartbeat"
    assert codec.decode(str(beat.id)) == store.head()  # passed the report it may not see
    await feed.aclose()


async def test_a_cursor_before_what_retention_dropped_gets_a_gap_event(
    files: GatewayFiles,
) -> None:
    store, hub, codec = setup(files)
    store.add(delivery(), NOW - timedelta(days=40))
    store.add(delivery(), NOW - timedelta(days=40))
    kept = store_one(store, hub)
    store.prune(NOW - timedelta(days=30))
    feed = events(store, hub, codec, Start.at(1))
    gap = await anext(feed)
    assert gap.event == "gap"
    assert orjson.loads(str(gap.data))["reason"] == "retention"
    assert codec.decode(str(gap.id)) == 2
    assert message_id(await anext(feed)) == kept
    await feed.aclose()


async def test_a_reader_that_falls_behind_is_told_and_dropped(files: GatewayFiles) -> None:
    store, hub, codec = setup(files)
    feed = events(store, hub, codec, Start.head(), queue_size=3)
    waiting = asyncio.ensure_future(anext(feed))
    await asyncio.sleep(0.01)
    for _ in range(6):  # while the reader does not read
        store_one(store, hub)
    first = await waiting
    assert first.event == "report"
    last = await anext(feed)  # its queue overflowed: dropped at once, told why
    assert last.event == "disconnect"
    assert orjson.loads(str(last.data))["reason"] == "too_slow"
    assert codec.decode(str(last.id)) == codec.decode(str(first.id))  # resume from there
    with pytest.raises(StopAsyncIteration):
        await anext(feed)
    assert hub.clients == 0


async def test_red_reports_are_redacted_for_whoever_the_redactor_says(files: GatewayFiles) -> None:
    store, hub, codec = setup(files)
    store_one(store, hub, tlp="TLP:RED")
    feed = events(store, hub, codec, Start.beginning(), redact=lambda s: s.tlp == "TLP:RED")
    data = orjson.loads(str((await anext(feed)).data))
    assert data["redacted"] is True
    assert "report" not in data
    assert data["header"]["tlp"] == "TLP:RED"
    await feed.aclose()


async def test_a_stopping_gateway_ends_the_feed_with_a_shutdown_event(
    files: GatewayFiles,
) -> None:
    """Set ``stopping``: the reader gets ``disconnect`` (``shutdown``) at its position, and
    the feed ends; resuming from that id goes on with what was stored meanwhile."""
    store, hub, codec = setup(files)
    stopping = anyio.Event()
    feed = events(store, hub, codec, Start.beginning(), stopping=stopping, heartbeat_s=30)
    first = store_one(store, hub)
    sent = await anext(feed)
    assert message_id(sent) == first
    waiting = asyncio.ensure_future(anext(feed))
    await asyncio.sleep(0.05)
    stopping.set()
    farewell = await asyncio.wait_for(waiting, 5)
    assert farewell.event == "disconnect"
    assert orjson.loads(str(farewell.data))["reason"] == "shutdown"
    assert codec.decode(str(farewell.id)) == codec.decode(str(sent.id))  # nothing skipped
    with pytest.raises(StopAsyncIteration):
        await anext(feed)
    assert hub.clients == 0
    later = store_one(store, hub)
    resumed = events(store, hub, codec, Start.at(codec.decode(str(farewell.id))))
    assert message_id(await anext(resumed)) == later
    await resumed.aclose()
