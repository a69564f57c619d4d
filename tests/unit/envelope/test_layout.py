"""Rules of the house that code review would otherwise have to remember."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from broker.envelope._wire import routing_header
from broker.errors import Reason, VerificationError
from schemas.envelope import RoutingHeader

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


def test_a_report_header_that_spells_out_the_default_kind_is_malformed_not_a_crash() -> None:
    """A report's header is written without ``kind``; one that adds ``"kind": "report"``
    means the same header in a second spelling, refused as malformed (before any key)."""

    header = RoutingHeader.model_validate(
        {
            "message_id": "6f1c1f52-1f6a-4c1e-9d2b-3f4e5a6b7c8d", "sender": "customs",
            "sender_kid": "kid-1", "category": "narcotics", "jurisdiction": "PKKHI",
            "precedence": "ROUTINE", "tlp": "TLP:AMBER", "created_at": "2026-12-01T09:00:00Z",
            "expires_at": "2026-12-08T09:00:00Z", "recipients": ["kid-2"],
            "schema_version": "1.0",
        }
    )  # fmt: skip
    written = header.model_dump(mode="json")
    assert "kind" not in written
    assert routing_header(written, "the envelope") == header
    with pytest.raises(VerificationError) as refused:
        routing_header({**written, "kind": "report"}, "the envelope")
    assert refused.value.reason == Reason.MALFORMED
    assert "kind" in refused.value.detail
