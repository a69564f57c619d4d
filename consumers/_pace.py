"""How much of a batch to hand over before fetching again, so a slow handler never drops
its consumer out of the group.

aiokafka (0.14.0) counts a consumer as idle from the moment its last ``getmany`` returned
(``SubscriptionState.fetch_context`` in ``aiokafka/consumer/subscription_state.py`` stamps
``_last_fetch_ended``; ``fetcher_idle_time`` is the time since, and zero while a fetch is in
progress). Its heartbeat task (``GroupCoordinator._heartbeat_routine`` in
``aiokafka/consumer/group_coordinator.py``) keeps the session alive on its own, but once
``fetcher_idle_time`` reaches
``max_poll_interval_ms`` it calls ``_maybe_leave_group``: a ``LeaveGroup`` request (unless
the member is static) and a reset generation, so the partitions go to another member and
the next offset commit fails. ``ensure_active_group`` does not rejoin while the consumer
stays idle. Handling 500 records at one second each is 500 s without a ``getmany``, well
past the 300 s default.

:class:`Pace` gives each batch a time budget, half of ``max_poll_interval_ms``: once it is
spent the subscriber stops before the next record, commits what it handled, hands the rest
back to the stream (a seek to the first record not handled) and fetches again, which resets
aiokafka's idle clock. It also sizes the next request: a batch cut short asks next time for
as many records as were handled in the budget; a full batch done in under half the budget
asks for twice as many, up to ``most``. At least one record is handled per batch, so a
single report whose handler outlasts ``max_poll_interval_ms`` still costs the membership.
``docs/reliability.md`` has the measurements.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Pace"]


class Pace:
    """The time budget of one batch and the size of the next request (see the module)."""

    def __init__(
        self, budget_s: float, *, most: int = 500, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if budget_s <= 0 or most < 1:
            raise ValueError("a pace needs a positive budget and at least one record")
        self.budget_s = budget_s
        self.most = most
        self.max_records = most
        """How many records to ask for in the next fetch."""
        self._clock = clock
        self._started = clock()

    def begin(self) -> None:
        """A batch was fetched just now: its budget starts."""
        self._started = self._clock()

    def spent(self) -> bool:
        """Whether the batch's budget is used up (stop before the next record)."""
        return self._clock() - self._started >= self.budget_s

    def end(self, handled: int, fetched: int) -> None:
        """The batch is over: ``handled`` of its ``fetched`` records were processed."""
        if handled < fetched:
            self.max_records = max(1, handled)
        elif fetched >= self.max_records and self._clock() - self._started < self.budget_s / 2:
            self.max_records = min(self.most, self.max_records * 2)
