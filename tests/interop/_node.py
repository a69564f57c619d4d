"""Where the Node.js interop scripts live, and what to do when Node is missing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson

NODE_DIR = Path(__file__).parent / "node"
INSTALL_HINT = (
    "Node.js >= 20 with npm is needed for the JOSE interop test "
    "(Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org)."
)


def run_node(node: str, argv: list[str], request: object) -> Any:
    """Run ``node argv...`` in :data:`NODE_DIR` with ``request`` as JSON on stdin; its JSON
    answer (a non-zero exit fails the test with Node's stderr)."""
    done = subprocess.run(
        [node, *argv],
        cwd=NODE_DIR,
        input=orjson.dumps(request),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"node {' '.join(argv)} failed: {done.stderr.decode()}")
    return orjson.loads(done.stdout)
