"""Replay protection: remember accepted message ids until their envelope expires.

Opening consults the guard only after every signature and time check passed, so an
attacker cannot fill it with ids of forged messages. Because an envelope's lifetime is
bounded (``Limits.max_lifetime``), the guard forgets an id once ``expires_at`` passed: a
replay after that is rejected as ``expired`` anyway.
"""

from __future__ import annotations

import heapq
import uuid
from datetime import datetime
from typing import Protocol

__all__ = ["MemoryReplayGuard", "ReplayGuard"]


class ReplayGuard(Protocol):
    def seen(self, message_id: uuid.UUID, expires_at: datetime, now: datetime, /) -> bool:
        """Record ``message_id`` (kept until ``expires_at``); ``True`` if already recorded."""
        ...


class MemoryReplayGuard:
    """An in-process guard; a consumer group shares one per partition assignment."""

    def __init__(self) -> None:
        self._expiry: dict[uuid.UUID, datetime] = {}
        self._heap: list[tuple[datetime, uuid.UUID]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(self, message_id: uuid.UUID, expires_at: datetime, now: datetime, /) -> bool:
        while self._heap and self._heap[0][0] <= now:
            _, old = heapq.heappop(self._heap)
            self._expiry.pop(old, None)
        if message_id in self._expiry:
            return True
        self._expiry[message_id] = expires_at
        heapq.heappush(self._heap, (expires_at, message_id))
        return False
