"""Replay protection: remember accepted (sender, message id) pairs until their envelope expires.

A message id is chosen by its sender, so it is unique only per sender: keying on the id
alone would let one agency, publishing first with another agency's id, get the genuine
report rejected as a replay.

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

__all__ = ["MemoryReplayGuard", "MessageKey", "ReplayGuard"]


MessageKey = tuple[str, uuid.UUID]
"""(sender agency id, message id): what identifies a message across the federation."""


class ReplayGuard(Protocol):
    def seen(
        self, sender: str, message_id: uuid.UUID, expires_at: datetime, now: datetime, /
    ) -> bool:
        """Record (``sender``, ``message_id``) until ``expires_at``; ``True`` if recorded."""
        ...


class MemoryReplayGuard:
    """An in-process guard; a consumer group shares one per partition assignment."""

    def __init__(self) -> None:
        self._expiry: dict[MessageKey, datetime] = {}
        self._heap: list[tuple[datetime, MessageKey]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def seen(
        self, sender: str, message_id: uuid.UUID, expires_at: datetime, now: datetime, /
    ) -> bool:
        while self._heap and self._heap[0][0] <= now:
            _, old = heapq.heappop(self._heap)
            if self._expiry.get(old, now) <= now:
                del self._expiry[old]
        key = (sender, message_id)
        if key in self._expiry:
            return True
        self._expiry[key] = expires_at
        heapq.heappush(self._heap, (expires_at, key))
        return False
