"""The AsyncAPI document passes the official AsyncAPI parser (``@asyncapi/parser``).

The Node side lives in ``tests/interop/asyncapi`` with a committed ``package-lock.json``;
``npm ci`` installs it there on first use. A missing ``node`` or ``npm`` fails the test with
an install hint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from broker.asyncapi import ASYNCAPI_PATH

NODE_DIR = Path(__file__).parent / "asyncapi"
INSTALL_HINT = (
    "Node.js >= 20 with npm is needed to validate the AsyncAPI document "
    "(Debian/Ubuntu: apt-get install nodejs npm; or https://nodejs.org)."
)


def test_the_asyncapi_document_is_valid_for_the_official_parser() -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(f"'node' or 'npm' not found on PATH. {INSTALL_HINT}")
    if not (NODE_DIR / "node_modules" / "@asyncapi" / "parser").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_DIR, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"'npm ci' in {NODE_DIR} failed:\n{done.stderr[-2000:]}\n{INSTALL_HINT}")
    done = subprocess.run(
        [node, "validate.mjs", str(ASYNCAPI_PATH)],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"the validator printed nothing: {done.stderr[-2000:]}"
    summary = lines[-1]
    errors = [d for d in lines[:-1] if d.get("severity") == 0]
    assert done.returncode == 0, errors or done.stderr[-2000:]
    assert summary == {"valid": True, "errors": 0, "version": "3.0.0"}, summary
