"""The gateway's OpenAPI 3.1 document: FastAPI's description of the routes, completed.

FastAPI sees the routes and their parameters; the ingest routes read their bodies
themselves (to bound the size and keep the exact bytes for idempotency), so their request
bodies, the 202 answer and the problem documents are added here, with the ``Report`` schema
pydantic generates. The document does not depend on the agency. It is served, to
authenticated callers, at ``/openapi.json`` and committed as ``docs/openapi.json``:
``python -m gateway.openapi`` rewrites it, ``--check`` exits 1 if it is stale (a unit test
runs it).
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from broker.generated import render_json, write_or_check
from gateway.problems import PROBLEM_JSON
from schemas._base import SCHEMA_VERSION
from schemas.report import Report
from schemas.vocab import Outcome

__all__ = ["OPENAPI_PATH", "REGENERATE", "SECURED", "document", "main", "render"]

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
REGENERATE = "python -m gateway.openapi"
_REF = "#/components/schemas/{model}"
SECURED = ("/v1/", "/metrics")
"""Paths (prefixes) that need a token; the health probes stay open."""

_PROBLEM = {
    "type": "object",
    "description": "RFC 9457 problem details",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "urn:fusionbus:problem:<kind>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "each wrong field, by JSON Pointer into the body (or parameter name)",
            "items": {
                "type": "object",
                "properties": {
                    "pointer": {"type": "string"},
                    "parameter": {"type": "string"},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}
_FEEDBACK_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["outcome"],
    "properties": {
        "outcome": {
            "type": "string",
            "enum": [str(o) for o in Outcome],
            "description": "received, acknowledged, actioned, or what came of the report",
        },
        "quantity": {"type": ["string", "number"], "description": "seizure only, with unit"},
        "unit": {"type": "string", "description": "kg, l, pieces, PKR, ..."},
        "note": {"type": "string", "maxLength": 2000},
        "replaces": {
            "type": "string",
            "format": "uuid",
            "description": "an earlier feedback message of this agency on the report, amended",
        },
        "withdrawn": {"type": "boolean", "description": "withdraw `replaces` instead"},
    },
}
_RETRACTION_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "properties": {
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
        "purge": {
            "type": "boolean",
            "description": "recipients delete every copy and never show it again",
        },
    },
}
_FORWARD_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["to"],
    "properties": {
        "to": {"type": "string", "description": "the agency to forward it to"},
        "note": {"type": "string", "maxLength": 2000},
        "ask": {
            "type": "boolean",
            "description": "ask the originator's consent instead of forwarding",
        },
    },
}
_CONSENT_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["forwarder", "to", "reason"],
    "properties": {
        "forwarder": {"type": "string", "description": "the recipient that asked"},
        "to": {"type": "string", "description": "the agency it would forward to"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
        "decline": {"type": "boolean", "description": "refuse instead of consenting"},
    },
}
_SUPERSEDE_BODY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["report"],
    "properties": {
        "report": {"$ref": "#/components/schemas/Report"},
        "reason": {"type": "string", "minLength": 1, "maxLength": 2000},
    },
}
_ACCEPTED = {
    "type": "object",
    "description": "what was published: each report's message id and status URL",
    "additionalProperties": True,
}
_PROBLEMS = {
    "400": "a malformed body or Idempotency-Key",
    "401": "no token, or one that is unknown, revoked or of another agency",
    "403": "the token's role may not do this",
    "409": "the same Idempotency-Key is still in flight, or the report was posted before",
    "413": "the body is over the size limit",
    "415": "the body is not application/json",
    "422": "not a valid report (each field named), or the key was used with another body",
    "503": "Kafka is not reachable",
}


def _problems(codes: list[str]) -> dict[str, Any]:
    ref = {"$ref": _REF.format(model="Problem")}
    return {
        c: {"description": _PROBLEMS[c], "content": {PROBLEM_JSON: {"schema": ref}}} for c in codes
    }


def _ingest(path: dict[str, Any], body: dict[str, Any], what: str) -> None:
    operation = path["post"]
    operation["requestBody"] = {
        "required": True,
        "description": what,
        "content": {"application/json": {"schema": body}},
    }
    operation["parameters"] = [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "a retry with the same key and body never publishes twice",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        }
    ]
    operation["responses"] = {
        "202": {
            "description": "sealed and acknowledged by Kafka",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": _ACCEPTED}},
        },
        **_problems(["400", "401", "403", "409", "413", "415", "422", "503"]),
    }


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document, as a JSON-ready dict (built once)."""
    from gateway.app import api_routes  # noqa: PLC0415 - app imports this module

    app = FastAPI()
    api_routes(app)
    doc = get_openapi(
        title="fusionbus gateway",
        version=SCHEMA_VERSION,
        openapi_version="3.1.0",
        description=(
            "An agency's gateway: its systems post reports to be sealed and published; its "
            "people and systems read what the agency received, and follow it live (SSE). "
            "Every /v1 route and /metrics need `Authorization: Bearer <token>` "
            "(docs/gateway.md)."
        ),
        routes=app.routes,
    )
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    report = Report.model_json_schema(mode="validation", ref_template=_REF)
    schemas.update(report.pop("$defs", {}))
    schemas["Report"] = report
    schemas["Problem"] = _PROBLEM
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    paths = doc["paths"]
    report_ref = {"$ref": _REF.format(model="Report")}
    _ingest(paths["/v1/reports"], report_ref, "one report")
    _ingest(paths["/v1/reports:batch"], {"type": "array", "items": report_ref}, "reports")
    feedback = paths["/v1/reports/{message_id}/feedback"]["post"]
    feedback["requestBody"] = {
        "required": True,
        "description": "the feedback to give the report's originator; the gateway fills in "
        "message_id, report_id, originator, sender and created_at",
        "content": {"application/json": {"schema": _FEEDBACK_BODY}},
    }
    feedback["responses"] = {
        "202": {
            "description": "sealed to the originator and acknowledged by Kafka",
            "content": {"application/json": {"schema": _ACCEPTED}},
        },
        **_problems(["400", "401", "403", "413", "422", "503"]),
        "404": {
            "description": "this agency received no report with this id",
            "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
        },
    }
    retract = paths["/v1/reports/{message_id}/retract"]["post"]
    retract["requestBody"] = {
        "required": True,
        "description": "why the report is withdrawn, and whether recipients must purge it",
        "content": {"application/json": {"schema": _RETRACTION_BODY}},
    }
    retract["responses"] = {
        "202": {
            "description": "the notice's id and, per agency the report was sealed to, sent or "
            "failed (with why)",
            "content": {"application/json": {"schema": _ACCEPTED}},
        },
        **_problems(["400", "401", "403", "413", "422", "503"]),
        "404": {
            "description": "this gateway's home published no report with this id",
            "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
        },
    }
    forward_what = (
        "forward a received report (or ask its originator's consent): the originator's "
        "signed content, and its consent where the handling needs it"
    )
    consent_what = "the originator's answer to a recipient's request to forward its report"
    supersede_what = "the corrected report (relations.supersedes is filled in), and why"
    acts = {
        "supersede": (_SUPERSEDE_BODY, supersede_what, "this home published no such report"),
        "forward": (_FORWARD_BODY, forward_what, "this agency holds no such report"),
        "consent": (_CONSENT_BODY, consent_what, "this home published no such report"),
    }
    for act, (schema, what, missing) in acts.items():
        operation = paths[f"/v1/reports/{{message_id}}/{act}"]["post"]
        operation["requestBody"] = {
            "required": True,
            "description": what,
            "content": {"application/json": {"schema": schema}},
        }
        operation["responses"] = {
            "202": {
                "description": "sent, and acknowledged by Kafka",
                "content": {"application/json": {"schema": _ACCEPTED}},
            },
            **_problems(["400", "401", "403", "413", "422", "503"]),
            "404": {
                "description": missing,
                "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
            },
        }
    for name, path in paths.items():
        for operation in path.values():
            if name.startswith(SECURED):
                operation["security"] = [{"bearer": []}]
                operation.setdefault("responses", {}).update(_problems(["401", "403"]))
    paths["/v1/feed"]["get"]["responses"]["200"] = {
        "description": "Server-Sent Events: report, heartbeat, gap and disconnect events",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    paths["/metrics"]["get"]["responses"]["200"] = {
        "description": "Prometheus text exposition of the fusionbus_gateway_* metrics",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
    return doc


def render() -> str:
    return render_json(document())


def main(argv: list[str] | None = None) -> int:
    return write_or_check(OPENAPI_PATH, render(), prog=REGENERATE, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
