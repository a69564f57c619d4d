"""How the long-running processes (``fusionbus tail``, the gateway) stop on a signal.

The first SIGTERM or SIGINT asks for a graceful stop: in-flight sends are awaited, processed
offsets committed, feeds closed, and the process exits 0 once that is done. A second one,
while that drain is still going (Kafka unreachable, say), exits at once through
:func:`exit_at_once` with ``128 + the signal's number`` — 143 for SIGTERM, 130 for SIGINT,
what a shell reports for a process a signal ended — skipping every clean-up. Nothing is lost
by that: what was not committed is read again after a restart (and deduplicated), what the
outbox held stays on disk (``docs/reliability.md``, ``## Graceful shutdown``).

:func:`until_signalled` gives a coroutine that behaviour; the gateway's server wires the same
two steps into uvicorn's (``gateway.app.serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

import structlog

__all__ = ["STOP_SIGNALS", "exit_at_once", "exit_code", "until_signalled"]

log = structlog.get_logger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def exit_code(sig: int) -> int:
    """The exit code of a process a second ``sig`` stopped: ``128 + sig``."""
    return 128 + sig


def exit_at_once(sig: int) -> NoReturn:
    """End the process now (a second signal): flush what was printed, skip the clean-up."""
    code = exit_code(sig)
    with contextlib.suppress(Exception):
        log.warning("shutdown.forced", signal=signal.Signals(sig).name, exit_code=code)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


async def until_signalled(work: Coroutine[Any, Any, None]) -> bool:
    """Run ``work``; the first SIGTERM or SIGINT cancels it at its next await and waits for
    its clean-up (its ``finally`` blocks commit and close); a second exits at once. ``True``
    if a signal stopped it, ``False`` if it ended by itself."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def stop(sig: int) -> None:
        if received:
            exit_at_once(sig)
        received.append(sig)
        log.info("shutdown.draining", signal=signal.Signals(sig).name)
        task.cancel()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
    if received:
        log.info("shutdown.done", signal=signal.Signals(received[0]).name)
    return bool(received)
