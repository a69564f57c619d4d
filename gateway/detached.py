"""A gateway running in the background, as ``fusionbus up`` starts one per demo agency.

::

    detached = DetachedGateway(site_home, "anf")
    running = detached.running() or detached.start("127.0.0.1:8482")
    print(running.url)                 # http://127.0.0.1:8482
    detached.stop()                    # SIGTERM, then SIGKILL after the timeout

The process is ``python -m fusionbus --log-json gateway --agency ID --home SITE --listen
HOST:PORT`` in a session of its own, so it outlives the command that started it. Its
standard output and error go to ``<site>/gateway/<agency>/gateway.log`` (JSON lines: access
and event logs, never report content); ``process.json`` beside it records the pid and the
URL. A pid is trusted only while ``/proc/<pid>/cmdline`` is still that gateway's, so a
recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from broker.errors import ConfigError
from gateway._files import GatewayFiles

__all__ = ["Detached", "DetachedGateway"]

_URL = re.compile(rb"^(http://\S+)$", re.MULTILINE)
_LOG_TAIL_LINES = 15


@dataclass(frozen=True, slots=True)
class Detached:
    """A background gateway: its process id and base URL."""

    agency: str
    pid: int
    url: str


class DetachedGateway:
    """Start, find and stop the background gateway of ``agency`` in its own home."""

    def __init__(self, home: Path, agency: str) -> None:
        self.home = home
        self.agency = agency
        self._files = GatewayFiles(home, agency)

    @property
    def log_path(self) -> Path:
        return self._files.folder / "gateway.log"

    @property
    def _state_path(self) -> Path:
        return self._files.folder / "process.json"

    def _argv(self, listen: str) -> list[str]:
        return [
            sys.executable, "-m", "fusionbus", "--log-json", "gateway",
            "--agency", self.agency, "--home", str(self.home), "--listen", listen,
        ]  # fmt: skip

    def running(self) -> Detached | None:
        """The gateway this home's ``process.json`` names, if that process still runs."""
        try:
            state = orjson.loads(self._state_path.read_bytes())
            found = Detached(self.agency, int(state["pid"]), str(state["url"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return found if self._is_ours(found.pid) else None

    def start(self, listen: str, *, timeout_s: float = 60.0) -> Detached:
        """Start the gateway listening on ``listen``; once it listens, what runs. A
        :class:`ConfigError` with the end of its log if it exits or is silent too long."""
        log_path = self._files.private(self.log_path)
        start_at = log_path.stat().st_size
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                self._argv(listen), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while (url := self._url_logged(start_at)) is None:
            code = process.poll()
            if code is not None or time.monotonic() > deadline:
                if code is None:
                    _terminate(process.pid, timeout_s=5)
                raise ConfigError(
                    f"{self.agency}'s gateway did not start "
                    f"({'exit code ' + str(code) if code is not None else 'no URL in time'}); "
                    f"the end of {log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.1)
        running = Detached(self.agency, process.pid, url)
        state = orjson.dumps({"pid": running.pid, "url": running.url})
        self._files.private(self._state_path).write_bytes(state)
        return running

    def stop(self, *, timeout_s: float = 10.0) -> Detached | None:
        """Stop the background gateway, if one runs; what was stopped."""
        found = self.running()
        if found is not None:
            _terminate(found.pid, timeout_s=timeout_s)
        with contextlib.suppress(FileNotFoundError):
            self._state_path.unlink()
        return found

    def _url_logged(self, start_at: int) -> str | None:
        with self.log_path.open("rb") as log:
            log.seek(start_at)
            match = _URL.search(log.read())
        return None if match is None else match[1].decode()

    def _log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-_LOG_TAIL_LINES:])

    def _is_ours(self, pid: int) -> bool:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        words = [word.decode(errors="replace") for word in argv]
        expected = self._argv("")
        return words[1:-2] == expected[1:-1]  # the listen address may have been any


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it was our child
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _terminate(pid: int, *, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        time.sleep(0.05)
