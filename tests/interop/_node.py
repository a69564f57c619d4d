"""Where the Node.js interop scripts live, and what to do when Node is missing."""

from __future__ import annotations

from pathlib import Path

NODE_DIR = Path(__file__).parent / "node"
INSTALL_HINT = (
    "Node.js >= 20 with npm is needed for the JOSE interop test "
    "(Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org)."
)
