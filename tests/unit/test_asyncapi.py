"""The committed AsyncAPI document is what the code generates, and says what the code does."""

from __future__ import annotations

import json
from typing import Any

from broker.asyncapi import ASYNCAPI_PATH, document, main, render
from broker.topics import (
    DIRECTORY_TOPIC,
    QUARANTINE_HEADERS,
    ROUTING_HEADERS,
    quarantine_topic,
    report_topic,
)
from schemas.vocab import registered_categories


def test_the_committed_document_is_not_stale() -> None:
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == render(), (
        "docs/asyncapi.json is stale: run python -m broker.asyncapi and commit it"
    )
    assert main(["--check"]) == 0


def test_the_channels_are_the_topics_the_code_writes() -> None:
    doc = document()
    channels = doc["channels"]
    address = channels["reports"]["address"]
    topic = address.format(sender="customs", area="pk-sd", category="narcotics")
    assert topic == report_topic("customs", "PK-SD", "narcotics")
    assert channels["quarantine"]["address"].format(agency="anf") == quarantine_topic("anf")
    assert channels["directory"]["address"] == DIRECTORY_TOPIC
    category = channels["reports"]["parameters"]["category"]
    assert category["enum"] == sorted(registered_categories())
    messages = doc["components"]["messages"]
    assert list(messages["sealedReport"]["headers"]["properties"]) == list(ROUTING_HEADERS)
    assert list(messages["quarantinedRecord"]["headers"]["properties"]) == list(QUARANTINE_HEADERS)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


def test_every_reference_resolves_inside_the_document() -> None:
    doc = json.loads(render())
    refs = _refs(doc)
    assert refs  # the walk found the references, not an empty tree
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = doc
        for part in ref[2:].split("/"):
            assert part in node, f"{ref} does not resolve"
            node = node[part]
