"""Named Linux network namespaces (``ip netns``), for nodes that run as on a host of their own.

:func:`netns_command` is the prefix that starts a program inside a namespace; :func:`in_netns`
runs a function (binding a socket, picking a free port) inside one, on a short-lived thread
of its own, so the calling thread and every other thread stay in their namespace. Both need
root and a namespace the caller created (``ip netns add NAME``, which makes
``/run/netns/NAME``).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from broker.errors import ConfigError, PrerequisiteError

__all__ = ["NETNS_DIR", "in_netns", "netns_command"]

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000

T = TypeVar("T")


def _path(name: str) -> Path:
    path = NETNS_DIR / name
    if "/" in name or not path.exists():
        raise ConfigError(
            f"there is no network namespace {name!r} ({path} is missing); create it first "
            f"with `ip netns add {name}` (as root)"
        )
    return path


def netns_command(name: str) -> list[str]:
    """``ip netns exec NAME``: prefixed to an argv, it runs that program inside ``name``."""
    _path(name)
    ip = shutil.which("ip")
    if ip is None:
        raise PrerequisiteError(
            "the `ip` command (iproute2) is needed to run Kafka nodes in a network namespace; "
            "install it with `apt-get install iproute2`"
        )
    if os.geteuid() != 0:
        raise PrerequisiteError(
            f"running Kafka nodes in the network namespace {name!r} needs root (`ip netns "
            "exec`); run as root, or leave the namespace out"
        )
    return [ip, "netns", "exec", name]


def in_netns(name: str | None, work: Callable[[], T]) -> T:
    """``work()`` run inside the namespace ``name`` (in this one if ``None``)."""
    if name is None:
        return work()
    path = _path(name)

    def entered() -> T:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise ConfigError(
                    f"cannot enter the network namespace {name!r}: {os.strerror(errno)} "
                    "(entering a namespace needs root)"
                )
        finally:
            os.close(fd)
        return work()

    # A fresh thread per call: it ends with the pool, so no thread is left in the namespace.
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"netns-{name}") as pool:
        return pool.submit(entered).result()
