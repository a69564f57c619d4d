"""bench.profile: the per-process CPU split of a py-spy recording of bench.pubsub."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.profile import main, profiles

_SPAWN = 'process 11:"python -c from multiprocessing.spawn import spawn_main; spawn_main()"'
_PARENT = f'process 10:"python -m bench.pubsub";{_SPAWN}'
_RUN = f"{_PARENT};child_main (bench/_pubsub_roles.py:358);run (asyncio/runners.py:190)"
_LOOP = f"{_RUN};BaseEventLoop._run_once (asyncio/base_events.py:1922)"
_SUB = f"{_LOOP};Handle._run (asyncio/events.py:80);_fusionbus_sub (bench/_pubsub_roles.py:240)"
_PARSE = "Subscriber._loop (consumers/subscriber.py:302);parse_envelope (broker/envelope/_wire.py"
RECORDING = [
    f"{_SUB};{_PARSE}:270);b64d (broker/_jose.py:55) 6",
    f"{_SUB};{_PARSE}:281) 2",  # the same function on another line
    f"{_SUB};Subscriber._loop (consumers/subscriber.py:287);getmany (aiokafka/consumer.py:1200) 2",
    f"{_LOOP};EpollSelector.select (selectors.py:468) 30",  # the loop waiting: idle
    f"{_PARENT};Thread.run (threading.py:975);Queue._feed (multiprocessing/queues.py:231) 500",
    'process 10:"python -m bench.pubsub";main (bench/pubsub.py:400) 99',  # the parent
]


def test_only_the_event_loop_counts_and_idle_is_told_apart() -> None:
    (profile,) = profiles(RECORDING)
    assert (profile.role, profile.busy, profile.idle) == ("fusionbus-sub", 10, 30)
    assert profile.share(profile.inclusive["parse_envelope (broker/envelope/_wire.py)"]) == 80.0
    assert profile.own["b64d (broker/_jose.py)"] == 6
    assert profile.own["parse_envelope (broker/envelope/_wire.py)"] == 2  # lines merged


def test_the_command_prints_each_role_and_refuses_a_recording_without_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "run.txt"
    recording.write_text("\n".join(RECORDING) + "\n")
    assert main([str(recording), "--top", "8"]) == 0
    out = capsys.readouterr().out
    assert "fusionbus-sub (pid 11): 10 of its event loop's 40 samples busy (25 %)" in out
    assert "  80.0 %  parse_envelope (broker/envelope/_wire.py)" in out
    recording.write_text(RECORDING[-1] + "\n")
    with pytest.raises(SystemExit) as refused:
        main([str(recording), "--role", "raw-sub"])
    assert refused.value.code == 2
    assert "no samples of a bench.pubsub process's event loop" in capsys.readouterr().err


def test_the_documented_command_runs(tmp_path: Path) -> None:
    recording = tmp_path / "run.txt"
    recording.write_text("\n".join(RECORDING) + "\n")
    shown = subprocess.run(
        [sys.executable, "-m", "bench.profile", str(recording), "--role", "fusionbus-sub"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert shown.stdout.startswith("== fusionbus-sub (pid 11)")
