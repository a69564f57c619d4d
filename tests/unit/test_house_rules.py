"""One owner per concept, checked: base64url, compact JWS, and the Kafka clients' errors."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("broker", "schemas", "producers", "consumers", "fusionbus", "bench")
_KAFKA_ERRORS = {"KafkaError", "KafkaException", "KafkaConnectionError"}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (str(path.relative_to(ROOT)), ast.parse(path.read_text(encoding="utf-8")))
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    ]


def _imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_one_base64url_implementation() -> None:
    users = [
        name for name, tree in _modules() if _imported(tree) & {"base64", "pybase64", "binascii"}
    ]
    assert users == ["broker/_jose.py"]


def test_one_compact_jws_helper() -> None:
    """Signatures over a JOSE signing input are made in one place; joining segments with a
    dot happens only there (verifiers call ``signing_input``)."""
    signers = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sign"
                and name.startswith(("broker/", "producers/", "consumers/"))
            ):
                signers.append(name)
    # _crypto.py is the primitive itself; pki.py signs X.509 certificates, not JOSE.
    assert sorted(set(signers)) == [
        "broker/_crypto.py",
        "broker/_jose.py",
        "broker/provisioning/pki.py",
    ]


def test_only_the_transport_boundary_catches_kafka_client_errors() -> None:
    catchers = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler) and node.type is not None:
                caught = {
                    n.attr if isinstance(n, ast.Attribute) else n.id
                    for n in ast.walk(node.type)
                    if isinstance(n, ast.Attribute | ast.Name)
                }
                if caught & _KAFKA_ERRORS or any(c.endswith("Error") and "kafka" in c.lower()
                                                 for c in caught):  # fmt: skip
                    catchers.append(name)
    assert sorted(set(catchers)) == ["broker/transport.py"]
