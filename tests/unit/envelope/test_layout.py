"""Rules of the house that code review would otherwise have to remember."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("broker", "schemas", "producers", "consumers", "fusionbus", "bench")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_broker_crypto_imports_cryptography_hazmat() -> None:
    users = sorted(
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if any(name.startswith("cryptography.hazmat") for name in _imports(path))
    )
    assert users == ["broker/_crypto.py"]


def test_envelope_modules_stay_small() -> None:
    for path in [*(ROOT / "broker" / "envelope").glob("*.py"), ROOT / "broker" / "_crypto.py"]:
        assert len(path.read_text(encoding="utf-8").splitlines()) < 400, path


def test_the_documented_example_runs() -> None:
    text = (ROOT / "docs" / "envelope.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    for block in blocks:
        exec(compile(block, "docs/envelope.md", "exec"), {})  # noqa: S102
