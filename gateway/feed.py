"""The live feed: Server-Sent Events over the received store, resumable without gap or repeat.

::

    hub = Hub()                                  # the subscriber calls hub.publish(stored)
    events = feed_events(store, hub, codec, filters, start=Start.at(cursor), ...)
    # an async iterator of sse_starlette ServerSentEvent: report, heartbeat, gap, disconnect

A reader joins the hub *before* it reads what the store already holds, then reads the store
from its position to the head in pages, then takes what the hub hands it, passing over
anything at or below the position it reached. Every report stored after it joined is in its
queue, every report stored before is in the store: nothing is missed, nothing is sent twice.

Events (``event:`` names): ``report`` (its ``id`` is the cursor of that report), ``heartbeat``
every ``heartbeat_s`` while nothing is sent (its ``id`` is the current cursor, so a quiet,
filtered feed still advances a reconnecting browser's ``Last-Event-ID``), ``gap`` when
retention deleted reports after the reader's cursor (it says so, then goes on from the
oldest kept), and ``disconnect`` with a ``reason`` just before the gateway ends the stream
of a reader that fell ``queue_size`` reports behind (``too_slow``; it reconnects with its
last id and catches up from the store), or of every reader when the gateway stops
(``shutdown``, once ``stopping`` is set: the stream then ends cleanly and the reader
reconnects, to this gateway once it is back or to another). A reader that stops reading
altogether is cut off by the response's send timeout (:mod:`gateway.app`). Every cursor is sealed
(:mod:`gateway.cursor`), and a report the reader may not read in full is sent redacted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
import orjson
import structlog
from sse_starlette import ServerSentEvent

from gateway.cursor import CursorCodec
from gateway.received import Filters, ReceivedStore, StoredReport

__all__ = ["FeedClient", "Hub", "Start", "feed_events"]

log = structlog.get_logger(__name__)

_PAGE = 200


class FeedClient:
    """One reader's bounded queue of reports stored since it joined."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[StoredReport] = asyncio.Queue(maxsize=queue_size)
        self.overflowed = False

    def offer(self, stored: StoredReport) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(stored)
        except asyncio.QueueFull:
            self.overflowed = True


class Hub:
    """Hands each newly stored report to every connected reader, never waiting for one."""

    def __init__(self) -> None:
        self._clients: set[FeedClient] = set()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, stored: StoredReport) -> None:
        for client in self._clients:
            client.offer(stored)

    @contextlib.contextmanager
    def joined(self, queue_size: int) -> Iterator[FeedClient]:
        client = FeedClient(queue_size)
        self._clients.add(client)
        try:
            yield client
        finally:
            self._clients.discard(client)


@dataclass(frozen=True, slots=True)
class Start:
    """Where a feed starts: after a cursor's position, or at the head (live only), or at
    the beginning of the store (with a ``since`` filter)."""

    position: int | None
    from_cursor: bool

    @classmethod
    def at(cls, position: int) -> Start:
        return cls(position, from_cursor=True)

    @classmethod
    def head(cls) -> Start:
        return cls(None, from_cursor=False)

    @classmethod
    def beginning(cls) -> Start:
        return cls(0, from_cursor=False)


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def feed_events(
    store: ReceivedStore,
    hub: Hub,
    codec: CursorCodec,
    filters: Filters,
    *,
    start: Start,
    redact: Callable[[StoredReport], bool],
    queue_size: int,
    heartbeat_s: float,
    stopping: anyio.Event | None = None,
) -> AsyncGenerator[ServerSentEvent]:
    """The events of one reader (see the module doc); ``stopping`` set ends them."""
    with hub.joined(queue_size) as client, _waiting(stopping) as stop:
        position = store.head() if start.position is None else start.position
        pruned = store.pruned_through()
        if position < pruned:
            if start.from_cursor:
                yield _event(
                    "gap",
                    codec.encode(pruned),
                    {
                        "reason": "retention",
                        "detail": "reports after this cursor were deleted by the gateway's "
                        "retention before they were read; the feed goes on from the oldest "
                        "report it keeps",
                    },
                )
            position = pruned
        while True:  # what the store holds now
            rows, passed = store.page(filters, after=position, limit=_PAGE)
            for stored in rows:
                yield _report(codec, stored, redact(stored))
            position = passed
            if len(rows) < _PAGE:
                break
        while True:  # what arrives from now on
            if client.overflowed:
                log.warning("feed.disconnected", reason="too_slow", queue_size=queue_size)
                yield _event(
                    "disconnect",
                    codec.encode(position),
                    {
                        "reason": "too_slow",
                        "detail": f"this reader fell {queue_size} reports behind; reconnect "
                        "with the last event id to catch up",
                    },
                )
                return
            getter = asyncio.ensure_future(client.queue.get())
            racing: set[asyncio.Future[Any]] = {getter, *stop}
            done, _ = await asyncio.wait(
                racing, timeout=heartbeat_s, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
            if stop & done:  # a report taken meanwhile is read again after the reconnect
                yield _event(
                    "disconnect",
                    codec.encode(position),
                    {
                        "reason": "shutdown",
                        "detail": "the gateway is stopping; reconnect with the last event id "
                        "to go on where this feed ended",
                    },
                )
                return
            if not done:
                yield _event("heartbeat", codec.encode(position), {"at": _now()})
                continue
            stored = getter.result()
            if stored.seq <= position:
                continue  # already sent from the store
            position = stored.seq
            if filters.matches(stored):
                yield _report(codec, stored, redact(stored))


@contextlib.contextmanager
def _waiting(stopping: anyio.Event | None) -> Iterator[set[asyncio.Future[Any]]]:
    """A future done once ``stopping`` is set (none without it), cancelled on exit."""
    if stopping is None:
        yield set()
        return
    waiter = asyncio.ensure_future(stopping.wait())
    try:
        yield {waiter}
    finally:
        waiter.cancel()


def _report(codec: CursorCodec, stored: StoredReport, redacted: bool) -> ServerSentEvent:
    return _event("report", codec.encode(stored.seq), stored.document(redacted=redacted))


def _event(name: str, cursor: str, data: object) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(data).decode(), event=name, id=cursor)
