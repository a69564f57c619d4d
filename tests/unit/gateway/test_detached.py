"""The background gateway's bookkeeping: a pid is signalled only while it is that gateway's."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import orjson
import pytest

from broker.errors import ConfigError
from gateway._files import GatewayFiles
from gateway.detached import DetachedGateway


def write_state(home: Path, agency: str, pid: int) -> None:
    files = GatewayFiles(home, agency)
    files.private(files.folder / "process.json").write_bytes(
        orjson.dumps({"pid": pid, "url": "http://127.0.0.1:1"})
    )


def test_a_recorded_pid_that_is_not_the_gateway_is_never_signalled(tmp_path: Path) -> None:
    write_state(tmp_path, "anf", os.getpid())  # a recycled pid: this very test process
    detached = DetachedGateway(tmp_path, "anf")
    assert detached.running() is None
    assert detached.stop() is None  # had it signalled, this test would have ended here
    assert not (GatewayFiles(tmp_path, "anf").folder / "process.json").exists()


def test_another_agencys_gateway_is_not_taken_for_this_one(tmp_path: Path) -> None:
    """A process with fia's exact gateway command line is fia's, and not anf's."""
    stand_in = tmp_path / "stand-in" / "fusionbus"  # `python -m fusionbus` run from its parent
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("")
    (stand_in / "__main__.py").write_text("import time\ntime.sleep(60)\n")
    fia = DetachedGateway(tmp_path, "fia")
    sleeper = subprocess.Popen(fia._argv("127.0.0.1:0"), cwd=stand_in.parent)
    try:
        cmdline = Path(f"/proc/{sleeper.pid}/cmdline")
        while b"gateway" not in cmdline.read_bytes():  # until the child has exec'd
            assert sleeper.poll() is None
            time.sleep(0.01)
        write_state(tmp_path, "fia", sleeper.pid)
        write_state(tmp_path, "anf", sleeper.pid)
        write_state(tmp_path / "elsewhere", "fia", sleeper.pid)
        assert fia.running() is not None
        assert DetachedGateway(tmp_path, "anf").running() is None
        assert DetachedGateway(tmp_path / "elsewhere", "fia").running() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_gateway_that_cannot_start_says_why_with_its_log(tmp_path: Path) -> None:
    """The home holds no keys of the agency: the process exits, and its error is shown."""
    with pytest.raises(ConfigError) as refused:
        DetachedGateway(tmp_path, "anf").start("127.0.0.1:0", timeout_s=60)
    message = str(refused.value)
    assert "anf's gateway did not start (exit code 1)" in message
    assert "holds no keys of agency 'anf'" in message
    assert DetachedGateway(tmp_path, "anf").running() is None
