"""A second "host" in a Linux network namespace, whose link can be cut: a real partition.

::

    with NetNamespace.create() as host:                  # root and iproute2 needed
        kafka = EmbeddedKafka(data, hosts=[host.inside], netns=host.name, port=0)
        kafka.start()                                    # dialled at host.inside from here
        host.cut()                                       # established TCP stalls too
        host.restore()

Layout: a namespace ``fb-<pid>-<n>`` with ``lo`` up, and a veth pair with a private /30 of
10.231.0.0/16 — ``host.outside`` (``.1``) on the end left in this (the root) namespace,
``host.inside`` (``.2``) on the end moved into the new one. Nothing else is routed: traffic
stays on the veth.

**The Kafka node goes inside the namespace; the agency's processes stay out here** and dial
it. That is the cleaner way round: one JVM runs under ``ip netns exec`` (``EmbeddedKafka``'s
``netns`` option), while the test's own asyncio clients, the CLI subprocesses and the
history checker all stay in the test process, which cannot itself move between namespaces;
and the readiness probe, pytest's output and every client see the broker at one address,
as an agency's machine sees a broker across a WAN.

**How the cut works, and why that way.** :meth:`NetNamespace.cut` sets the namespace's
end of the veth down; :meth:`restore` sets it up again. The root end then has no carrier,
but its address and its /30 route stay, so nothing is re-routed anywhere (no leak through
the default route); packets into the veth are dropped. An established TCP connection stalls
with its data unacknowledged (the kernel retransmits), and a new connection fails once
neighbour resolution gives up (``EHOSTUNREACH`` after about a second) — what a peer whose
link went down looks like. Checked with a plain socket pair: data written during the cut is
not received, and arrives after the restore on the same connection. (A drop rule would be
the other way, but this kernel has neither nftables/iptables nor tc's netem or filter
actions.)

Clean-up: the namespace and the veth are removed on exit, whatever happened, after killing
any process still inside it. :func:`remove_stale` does the same for ``fb-<pid>-*``
namespaces and ``fb<pid>-*`` veths whose creating process is gone (a run killed with
SIGKILL); :meth:`NetNamespace.create` calls it first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NetNamespace", "NetnsUnavailableError", "remove_stale"]

_counter = itertools.count()
_NAME = re.compile(r"fb-(?P<pid>\d+)-(?P<n>\d+)")
_VETH = re.compile(r"fb(?P<pid>\d+)-\d+[rn]")


_SLOTS = 64 * 256
"""The /30 subnets of 10.231.0.0/16."""


def _subnet(slot: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((int(ipaddress.IPv4Address("10.231.0.0")) + 4 * slot, 30))


class NetnsUnavailableError(RuntimeError):
    """What is missing to build a namespace here (not root, no ``ip``)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [shutil.which("ip") or "/usr/sbin/ip", *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {result.stderr.strip()}")
    return result


def require() -> None:
    """Raise :class:`NetnsUnavailableError` saying what to do if namespaces cannot be built."""
    if shutil.which("ip") is None:
        raise NetnsUnavailableError(
            "the partition tests need the `ip` command: `apt-get install iproute2`"
        )
    if os.geteuid() != 0:
        raise NetnsUnavailableError(
            "the partition tests build network namespaces and veth pairs, which needs root: "
            "run pytest as root (uid 0)"
        )


def _pid_alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _kill_inside(name: str) -> list[int]:
    """SIGKILL every process in namespace ``name``; their pids."""
    found = _ip("netns", "pids", name, check=False).stdout.split()
    pids = [int(p) for p in found if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(_pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pids


def _delete(name: str, veth: str) -> None:
    _kill_inside(name)
    _ip("netns", "delete", name, check=False)  # takes the inside end, and so the pair, along
    if Path(f"/sys/class/net/{veth}").exists():
        _ip("link", "delete", veth, check=False)


def remove_stale() -> list[str]:
    """Remove ``fb-*`` namespaces and ``fb*`` veths of processes no longer running; their
    names."""
    removed: list[str] = []
    listed = _ip("netns", "list", check=False).stdout.splitlines()
    for line in listed:
        name = line.split(" ", 1)[0]
        match = _NAME.fullmatch(name)
        if match is not None and not _pid_alive(int(match["pid"])):
            _delete(name, f"fb{match['pid']}-{match['n']}r")
            removed.append(name)
    for path in Path("/sys/class/net").iterdir():
        match = _VETH.fullmatch(path.name)
        if match is not None and not _pid_alive(int(match["pid"])):
            _ip("link", "delete", path.name, check=False)
            removed.append(path.name)
    return removed


def _subnet_in_use(network: ipaddress.IPv4Network) -> bool:
    """Whether an address of this namespace lies in ``network``."""
    shown = _ip("-o", "-4", "addr", "show", check=False).stdout
    found = re.findall(r"inet (\d+\.\d+\.\d+\.\d+)/", shown)
    return any(ipaddress.IPv4Address(a) in network for a in found)


@dataclass
class NetNamespace:
    """One namespace linked to this one by a veth pair (see the module doc)."""

    name: str
    veth_outside: str
    veth_inside: str
    outside: str
    inside: str
    cut_off: bool = False

    @classmethod
    @contextlib.contextmanager
    def create(cls) -> Iterator[NetNamespace]:
        require()
        remove_stale()
        pid, n = os.getpid(), next(_counter)
        name = f"fb-{pid}-{n}"
        veth_out, veth_in = f"fb{pid}-{n}r", f"fb{pid}-{n}n"  # at most 15 characters
        slot = (pid * 16 + n) % _SLOTS
        while _subnet_in_use(_subnet(slot)):
            slot = (slot + 1) % _SLOTS
        subnet = _subnet(slot)
        host = cls(name, veth_out, veth_in, outside=str(subnet[1]), inside=str(subnet[2]))
        try:
            _ip("netns", "add", name)
            _ip("-n", name, "link", "set", "lo", "up")
            _ip("link", "add", veth_out, "type", "veth", "peer", "name", veth_in)
            _ip("link", "set", veth_in, "netns", name)
            _ip("addr", "add", f"{host.outside}/30", "dev", veth_out)
            _ip("-n", name, "addr", "add", f"{host.inside}/30", "dev", veth_in)
            _ip("link", "set", veth_out, "up")
            _ip("-n", name, "link", "set", veth_in, "up")
            yield host
        finally:
            _delete(name, veth_out)

    def cut(self) -> None:
        """Partition: the namespace's end of the link goes down (see the module doc)."""
        _ip("-n", self.name, "link", "set", self.veth_inside, "down")
        self.cut_off = True

    def restore(self) -> None:
        """Heal the partition: the link comes up again with its addresses and route."""
        _ip("-n", self.name, "link", "set", self.veth_inside, "up")
        self.cut_off = False

    def command(self, *argv: str) -> list[str]:
        """``argv`` prefixed to run inside the namespace (``ip netns exec NAME ...``)."""
        return [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", self.name, *argv]

    def processes(self) -> list[int]:
        """The pids running inside the namespace."""
        found = _ip("netns", "pids", self.name, check=False).stdout.split()
        return [int(p) for p in found if p.isdigit()]


def exists(name: str) -> bool:
    """Whether namespace ``name`` is still listed."""
    return any(line.split(" ", 1)[0] == name for line in _ip("netns", "list").stdout.splitlines())
