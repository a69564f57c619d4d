"""Committed documents generated from the code (the AsyncAPI and OpenAPI contracts).

Each is rendered deterministically (sorted keys, two-space indent, trailing newline) and
committed; :func:`write_or_check` is the command line of its generator: rewrite the file, or
with ``--check`` exit 1 when the committed one is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["render_json", "write_or_check"]


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_or_check(
    path: Path, text: str, *, prog: str, description: str | None, argv: list[str] | None
) -> int:
    """``prog [--check]``: write ``text`` to ``path`` if it differs (0), or with ``--check``
    say that ``path`` is stale (1)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="fail if the document is stale")
    args = parser.parse_args(argv)
    current = path.read_text(encoding="utf-8") if path.exists() else None
    if current == text:
        return 0
    if args.check:
        sys.stderr.write(f"stale {path.name}; run {prog} and commit it\n")
        return 1
    path.write_text(text, encoding="utf-8")
    return 0
