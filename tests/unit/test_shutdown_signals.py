"""broker.shutdown: the first signal cancels the work and waits for its clean-up.

The second signal's immediate exit is tested on real processes
(``tests/integration/test_shutdown.py``).
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from broker.shutdown import exit_code, until_signalled


@pytest.mark.asyncio
async def test_work_that_ends_by_itself_was_not_signalled() -> None:
    async def work() -> None:
        await asyncio.sleep(0)

    assert await until_signalled(work()) is False


@pytest.mark.asyncio
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_the_first_signal_cancels_the_work_and_awaits_its_clean_up(sig: int) -> None:
    steps: list[str] = []

    async def work() -> None:
        try:
            steps.append("started")
            os.kill(os.getpid(), sig)
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.05)  # a clean-up that awaits (a commit) still runs
            steps.append("cleaned up")

    assert await until_signalled(work()) is True
    assert steps == ["started", "cleaned up"]
    assert signal.getsignal(sig) is not None  # the handlers are removed again


def test_a_second_signal_exits_as_a_shell_reports_a_signalled_process() -> None:
    assert exit_code(signal.SIGTERM) == 143
    assert exit_code(signal.SIGINT) == 130
