"""The feed-client process of ``bench.gateway``: many concurrent ``GET /v1/feed`` readers.

:func:`feed_main` runs in its own OS process (``multiprocessing``, spawn), so the readers'
parsing does not share an event loop with the parent's publisher. It opens ``clients``
Server-Sent Event streams on one gateway (httpx and httpx-sse, as the integration tests
read the feed), says ``connected`` once every stream answered 200, then waits for the
parent's bursts. Each reader counts every ``report`` event by message id and records its
latency: wall-clock receipt minus the report's ``created_at`` (one host, one clock). A
``disconnect`` event (the reader fell ``feed_queue`` reports behind), a stream the gateway
cut off (one send took longer than its send timeout) or a closed stream makes it reconnect
with its last event id, as a browser would; reconnects and cut-offs are counted.

Commands from the parent: ``("burst", k, message_ids, timeout_s)`` — answer with the
burst's figures once every reader has every id (or the timeout passed); ``("stop",)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.queues import Queue
from typing import Any

import httpx
import orjson
from httpx_sse import aconnect_sse

from broker.logs import configure_logging

__all__ = ["FeedEvent", "feed_main"]

FeedEvent = tuple[str, int, dict[str, Any]]
"""(kind, burst, figures); kinds: connected, burst, end, error."""

_POLL_S = 0.05


@dataclass
class _Reader:
    """What one feed reader has received."""

    seen: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    last_id: str | None = None
    last_at: float = 0.0
    reconnects: int = 0
    cut_off: int = 0
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def report(self, data: str) -> None:
        wall, now = time.time(), time.monotonic()
        header = orjson.loads(data)["header"]
        self.seen[header["message_id"]] += 1
        created = datetime.fromisoformat(header["created_at"]).timestamp()
        self.latencies_ms.append((wall - created) * 1000)
        self.last_at = now


async def _read(client: httpx.AsyncClient, url: str, token: str, reader: _Reader) -> None:
    while True:
        headers = {"Authorization": f"Bearer {token}"}
        if reader.last_id:
            headers["Last-Event-ID"] = reader.last_id
        try:
            async with aconnect_sse(client, "GET", f"{url}/v1/feed", headers=headers) as source:
                source.response.raise_for_status()
                reader.connected.set()
                async for event in source.aiter_sse():
                    if event.id:
                        reader.last_id = event.id
                    if event.event == "report":
                        reader.report(event.data)
                    elif event.event == "disconnect":
                        break
        except (httpx.RemoteProtocolError, httpx.ReadError):
            reader.cut_off += 1  # the gateway's send timeout ended the stream mid-way
        reader.reconnects += 1


def _burst_figures(readers: list[_Reader], ids: list[str], cpu: float) -> dict[str, Any]:
    wanted = set(ids)
    missing = sum(len(wanted - reader.seen.keys()) for reader in readers)
    duplicates = sum(count - 1 for reader in readers for count in reader.seen.values() if count > 1)
    latencies = [ms for reader in readers for ms in reader.latencies_ms]
    return {
        "clients": len(readers),
        "reports": len(ids),
        "received": sum(1 for reader in readers for mid in wanted if mid in reader.seen),
        "missing": missing,
        "duplicates": duplicates,
        "reconnects": sum(reader.reconnects for reader in readers),
        "cut_off": sum(reader.cut_off for reader in readers),
        "last_at": max(reader.last_at for reader in readers),
        "latencies_ms": latencies,
        "cpu": cpu,
    }


async def _run(
    url: str, token: str, clients: int, commands: Queue[tuple[Any, ...]], events: Queue[FeedEvent]
) -> None:
    readers = [_Reader() for _ in range(clients)]
    limits = httpx.Limits(max_connections=clients + 1, max_keepalive_connections=clients + 1)
    timeout = httpx.Timeout(30.0, read=120.0)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(_read(client, url, token, r)) for r in readers]
        try:
            await asyncio.wait_for(asyncio.gather(*(r.connected.wait() for r in readers)), 60)
            events.put(("connected", -1, {"clients": clients}))
            cpu = time.process_time()
            while True:
                command = await asyncio.to_thread(commands.get)
                if command[0] == "stop":
                    break
                _, burst, ids, timeout_s = command
                deadline, wanted, waiting = time.monotonic() + timeout_s, set(ids), readers
                while waiting and time.monotonic() < deadline:
                    for task in tasks:
                        if task.done():
                            task.result()  # a reader failed: raise its error here
                    await asyncio.sleep(_POLL_S)
                    waiting = [r for r in waiting if not r.seen.keys() >= wanted]
                await asyncio.sleep(0.2)  # anything sent twice arrives right behind
                figures = _burst_figures(readers, ids, time.process_time() - cpu)
                events.put(("burst", burst, figures))
                cpu = time.process_time()
                for reader in readers:
                    reader.latencies_ms, reader.reconnects, reader.cut_off = [], 0, 0
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await task
    events.put(("end", -1, {}))


def feed_main(
    url: str,
    token: str,
    clients: int,
    commands: Queue[tuple[Any, ...]],
    events: Queue[FeedEvent],
) -> None:
    """The body of the feed-client process; a failure goes to the parent as ``error``."""
    configure_logging("WARNING")
    try:
        asyncio.run(_run(url, token, clients, commands, events))
    except KeyboardInterrupt:
        return
    except BaseException:
        events.put(("error", -1, {"traceback": traceback.format_exc()}))
        raise
