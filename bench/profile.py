"""Where each ``bench.pubsub`` process spends its CPU, from a py-spy recording of the run.

    pip install py-spy                       # a sampling profiler; not a dependency
    py-spy record --subprocesses --idle --rate 250 --format raw -o run.txt -- \\
        python -m bench.pubsub --only 1KB-3r-3p --repeats 2 --rates 500 --seconds 5
    python -m bench.profile run.txt [--role fusionbus-sub ...] [--top N]

py-spy samples every thread of the benchmark's own processes while they run (nothing in
the code under test changes). This summary keeps, per benchmark process, only the samples
of its event-loop thread (the stacks under ``child_main``; multiprocessing's feeder and
asyncio's executor threads are left out) and counts a sample as **idle** when the loop
waits in its selector. Of the other, **busy**, samples it prints the share of each
function with its callees (inclusive) and on its own (self), as percentages of the busy
samples: the CPU split of that process, warm-up and all of its stages together.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ROLES", "Profile", "main", "profiles"]

ROLES = {
    "_fusionbus_pub": "fusionbus-pub",
    "_fusionbus_sub": "fusionbus-sub",
    "_raw_pub": "raw-pub",
    "_raw_sub": "raw-sub",
}
"""The coroutine each benchmark process runs, and the role it names."""

_LINE = re.compile(r":\d+\)$")
_IDLE = ("select (selectors", "EpollSelector.select (")
_LOOP = "BaseEventLoop._run_once ("


@dataclass
class Profile:
    """One process's event-loop samples."""

    pid: str
    role: str = ""
    busy: int = 0
    idle: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)

    def share(self, samples: int) -> float:
        return 100 * samples / self.busy if self.busy else 0.0


def _frames(stack: str) -> tuple[str | None, list[str]]:
    """The spawned process a py-spy stack belongs to, and its frames without line numbers
    from the event loop's frame down (``None`` when it is not a benchmark child's loop)."""
    parts = stack.split(";")
    spawned = (p for p in parts if p.startswith("process ") and "spawn_main" in p)
    pid = next((p.split(":")[0] for p in spawned), None)
    if pid is None or not any(p.startswith("child_main (") for p in parts):
        return None, []
    frames = [_LINE.sub(")", p) for p in parts if not p.startswith("process ")]
    start = next((i for i, f in enumerate(frames) if f.startswith(_LOOP)), 0)
    return pid, frames[start:]


def profiles(lines: Iterable[str]) -> Iterator[Profile]:
    """Per benchmark process, its loop's busy and idle samples (py-spy ``--format raw``)."""
    found: dict[str, Profile] = {}
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not count.isdigit():
            continue
        pid, frames = _frames(stack)
        if pid is None or not frames:
            continue
        profile = found.setdefault(pid, Profile(pid))
        n = int(count)
        names = {f.split(" ")[0] for f in frames}
        profile.role = profile.role or next((ROLES[r] for r in ROLES if r in names), "")
        if frames[-1].startswith(_IDLE):
            profile.idle += n
            continue
        profile.busy += n
        profile.own[frames[-1]] += n
        for frame in set(frames):
            profile.inclusive[frame] += n
    yield from found.values()


def render(profile: Profile, top: int) -> str:
    total = profile.busy + profile.idle
    pid = profile.pid.removeprefix("process ")
    busy = 100 * profile.busy / total if total else 0.0
    title = f"== {profile.role or '?'} (pid {pid}): {profile.busy} of its event loop's"
    lines = [
        f"{title} {total} samples busy ({busy:.0f} %)",
        "-- inclusive (with callees)",
        *(f"{profile.share(n):6.1f} %  {name}" for name, n in profile.inclusive.most_common(top)),
        "-- self",
        *(f"{profile.share(n):6.1f} %  {name}" for name, n in profile.own.most_common(top)),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("recording", type=Path, help="py-spy record --format raw output")
    parser.add_argument(
        "--role", action="append", choices=sorted(ROLES.values()), help="only these [all]"
    )
    parser.add_argument("--top", type=int, default=40, help="rows per table [40]")
    args = parser.parse_args(argv)
    try:
        text = args.recording.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        parser.error(f"cannot read {args.recording}: {exc.strerror}")
    shown = 0
    for profile in sorted(profiles(text), key=lambda p: p.role):
        if args.role is None or profile.role in args.role:
            print(render(profile, args.top), end="\n\n")
            shown += 1
    if not shown:
        parser.error(
            f"{args.recording} holds no samples of a bench.pubsub process's event loop; "
            "record with --subprocesses --format raw"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
