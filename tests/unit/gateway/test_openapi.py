"""The committed OpenAPI document is what the gateway generates, valid, and complete."""

from __future__ import annotations

import json

from openapi_spec_validator import validate

from gateway.openapi import OPENAPI_PATH, SECURED, document, main, render


def test_the_committed_document_is_not_stale() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run python -m gateway.openapi and commit it"
    )
    assert main(["--check"]) == 0


def test_it_is_a_valid_openapi_3_1_document() -> None:
    doc = json.loads(render())
    assert doc["openapi"] == "3.1.0"
    validate(doc)


def test_ingest_bodies_answers_and_security_are_described() -> None:
    doc = document()
    single = doc["paths"]["/v1/reports"]["post"]
    schema = single["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Report"}
    assert "Report" in doc["components"]["schemas"]
    assert {"202", "409", "413", "422"} <= set(single["responses"])
    assert [p["name"] for p in single["parameters"]] == ["Idempotency-Key"]
    batch = doc["paths"]["/v1/reports:batch"]["post"]["requestBody"]["content"]
    assert batch["application/json"]["schema"]["type"] == "array"
    for name, path in doc["paths"].items():
        for operation in path.values():
            if name.startswith(SECURED):
                assert operation["security"] == [{"bearer": []}], name
                assert {"401", "403"} <= set(operation["responses"]), name
            else:
                assert "security" not in operation, name  # health probes stay open
    feed = doc["paths"]["/v1/feed"]["get"]["responses"]["200"]["content"]
    assert list(feed) == ["text/event-stream"]
    assert "/metrics" in doc["paths"]
    assert {"/healthz", "/readyz"} <= set(doc["paths"])
