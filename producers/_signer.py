"""Sealing in batches: what publishers hand over while the signer is busy is sealed
together, under one version-2 signature per recipient set (``docs/envelope.md``).

The signer never waits for a batch to fill: it seals what is queued when the event loop
gets to it (``call_soon``), so a lone report is a batch of one and gains no latency, while
concurrent publishers — or one ``publish_many`` — share a signature. Batches are capped by
the envelope format (256 envelopes per tree).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from broker.envelope import Sealer
from schemas.envelope import RoutingHeader

__all__ = ["BatchSigner"]

Item = tuple[RoutingHeader, bytes]


class BatchSigner:
    """Seals ``(header, payload)`` items with ``sealer``, many callers' at a time."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._queue: list[tuple[Sequence[Item], asyncio.Future[list[bytes]]]] = []
        self._scheduled = False
        self.batches = 0
        """How many times the sealer was called (tests and benchmarks)."""

    async def seal(self, items: Sequence[Item]) -> list[bytes]:
        """The envelopes of ``items``, in order; raises what the sealer raises for them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bytes]] = loop.create_future()
        self._queue.append((items, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        queue, self._queue = self._queue, []
        self.batches += 1
        try:
            envelopes = self._sealer.seal_batch([item for items, _ in queue for item in items])
        except Exception:  # noqa: BLE001 - each caller hears only of its own items' error
            self._one_by_one(queue)
            return
        at = 0
        for items, future in queue:
            if not future.done():
                future.set_result(envelopes[at : at + len(items)])
            at += len(items)

    def _one_by_one(self, queue: list[tuple[Sequence[Item], asyncio.Future[list[bytes]]]]) -> None:
        """Seal each caller's items on their own: an unsealable item (a revoked recipient, a
        bug) fails its caller, and every other caller still gets its envelopes."""
        for items, future in queue:
            if future.done():
                continue
            try:
                future.set_result(self._sealer.seal_batch(items))
            except Exception as exc:  # noqa: BLE001 - handed to the one caller it belongs to
                future.set_exception(exc)
