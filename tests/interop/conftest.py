"""The Node.js side of the interop tests: ``node`` on PATH and ``jose`` installed by ``npm ci``.

The Node scripts live in ``tests/interop/node`` with a committed ``package-lock.json``;
``npm ci`` installs it there (never globally) on first use. A missing ``node`` or ``npm``
fails the test with an install hint: these proofs must never be skipped silently.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.interop._node import INSTALL_HINT, NODE_DIR


@pytest.fixture(scope="session")
def node_bin() -> str:
    """The ``node`` executable, with ``tests/interop/node``'s dependencies installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"'node' or 'npm' not found on PATH. {INSTALL_HINT}")
    if not (NODE_DIR / "node_modules" / "jose").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"'npm ci' in {NODE_DIR} failed:\n{done.stderr[-2000:]}\n{INSTALL_HINT}")
    return node
