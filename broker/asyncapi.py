"""The AsyncAPI 3.0 document of fusionbus's Kafka channels, generated from the code.

Channels, parameters and header names come from :mod:`broker.topics` (the one owner of the
record layout); payload schemas from :mod:`schemas` (the report, the feedback and the
routing header, by pydantic); the category list from the vocabulary. Run
``python -m broker.asyncapi`` after changing any of them and commit ``docs/asyncapi.json``;
``python -m broker.asyncapi --check`` exits 1 if the committed document is stale (a unit test
runs it). Output is deterministic: sorted keys, two-space indent, trailing newline.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from broker.generated import render_json, write_or_check
from broker.topics import (
    DIRECTORY_TOPIC,
    INBOX_PREFIX,
    QUARANTINE_HEADERS,
    REPORTS_PREFIX,
    ROUTING_HEADERS,
    Header,
)
from schemas._base import AGENCY_ID_PATTERN, SCHEMA_VERSION
from schemas.envelope import ENVELOPE_VERSION, RoutingHeader
from schemas.feedback import Feedback
from schemas.forward import Forward
from schemas.notice import Notice
from schemas.report import Report
from schemas.vocab import registered_categories

__all__ = ["ASYNCAPI_PATH", "REGENERATE", "document", "main"]

ASYNCAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"
REGENERATE = "python -m broker.asyncapi"

_REF = "#/components/schemas/{model}"
_HEADER_TEXT: dict[str, str] = {
    Header.MESSAGE_ID: "the report's message id (UUID), a clear copy",
    Header.SENDER: "the sending agency's id, a clear copy",
    Header.CATEGORY: "the trafficking category, a clear copy",
    Header.JURISDICTION: "the jurisdiction (ISO 3166 code or UN/LOCODE), a clear copy",
    Header.PRECEDENCE: "FLASH, IMMEDIATE, PRIORITY or ROUTINE, a clear copy",
    Header.TLP: "the TLP label, a clear copy",
    Header.REASON: "why the consumer rejected the record (a reason code)",
    Header.DETAIL: "a one-line explanation, never report content",
    Header.SOURCE_TOPIC: "where the rejected record was read: topic",
    Header.SOURCE_PARTITION: "... partition",
    Header.SOURCE_OFFSET: "... offset",
    Header.ORIGINAL_SHA256: "on a copy cut to fit: SHA-256 (hex) of the original value",
    Header.ORIGINAL_SIZE: "on a copy cut to fit: the original value's size in bytes",
    Header.ORIGINAL_KEY_SHA256: "on a copy cut to fit: SHA-256 (hex) of the original key",
    Header.TRUNCATED: "on a copy cut to fit: 'value' or 'key'",
}


def _schemas(components: dict[str, Any], *models: type[BaseModel]) -> None:
    """Each model's JSON Schema into ``components``, its ``$defs`` hoisted beside it, in
    AsyncAPI's schema dialect."""
    for model in models:
        schema = model.model_json_schema(mode="validation", ref_template=_REF)
        components.update(_dialect(schema.pop("$defs", {})))
        components[model.__name__] = _dialect(schema)


def _dialect(node: Any) -> Any:
    """pydantic's discriminator (OpenAPI's object, ``{propertyName, mapping}``) as AsyncAPI
    Schema's: the property name alone; the ``oneOf`` beside it still lists the variants."""
    if isinstance(node, list):
        return [_dialect(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _dialect(value) for key, value in node.items()}
    discriminator = out.get("discriminator")
    if isinstance(discriminator, dict):
        out["discriminator"] = discriminator["propertyName"]
    return out


def _headers(names: tuple[str, ...], required: tuple[str, ...]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {n: {"type": "string", "description": _HEADER_TEXT[n]} for n in names},
        "required": list(required),
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document, as a JSON-ready dict."""
    components: dict[str, Any] = {}
    _schemas(components, Report, Feedback, Notice, Forward, RoutingHeader)
    agency = {"description": "an agency id", "examples": ["customs", "anf", "fia"]}
    categories = sorted(registered_categories())
    jwe = {
        "type": "object",
        "description": (
            f"Envelope version {ENVELOPE_VERSION} (version 1 is still read): a JWE in General "
            "JSON Serialization (RFC 7516), ECDH-ES+A256KW over X25519 per recipient agency, "
            "A256GCM. Its protected header carries the RoutingHeader (clear, authenticated); "
            "it decrypts to the Report's JSON. The unprotected fusionbus_batch member holds "
            "the Ed25519 signature of the sender's batch (an RFC 9162 tree head), this "
            "envelope's inclusion proof and its content commitment (docs/envelope.md)."
        ),
        "required": ["protected", "recipients", "iv", "ciphertext", "tag"],
        "properties": {
            "protected": {"type": "string", "description": "base64url of the JOSE header"},
            "unprotected": {
                "type": "object",
                "description": "fusionbus_batch (version 2) or fusionbus_sig (version 1)",
            },
            "recipients": {"type": "array", "minItems": 1, "items": {"type": "object"}},
            "iv": {"type": "string"},
            "ciphertext": {"type": "string"},
            "tag": {"type": "string"},
        },
        "x-fusionbus-routing-header": {"$ref": _REF.format(model="RoutingHeader")},
        "x-fusionbus-plaintext": {"$ref": _REF.format(model="Report")},
    }
    reports_address = REPORTS_PREFIX + "{sender}.{area}.{category}"
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fusionbus",
            "version": SCHEMA_VERSION,
            "description": (
                "Interagency intelligence sharing over Apache Kafka: signed, end-to-end "
                "encrypted reports routed by jurisdiction and trafficking category. Topic "
                "layout: docs/topics.md; envelope: docs/envelope.md; ACLs: docs/security.md."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka-secure",
                "description": "the embedded cluster of `fusionbus up` (mutual TLS, ACLs)",
                "security": [{"$ref": "#/components/securitySchemes/agencyCertificate"}],
            }
        },
        "channels": {
            "reports": {
                "address": reports_address,
                "title": "Sealed reports, one topic per sender, area and category",
                "description": (
                    "Only the sender's certificate may write its topics; READ follows the "
                    "directory's grants. The record key is the report's thread id (the "
                    "first report of its chain), so a thread keeps its order."
                ),
                "parameters": {
                    "sender": {**agency, "description": "the sending agency's id"},
                    "area": {
                        "description": (
                            "the first-level ISO 3166-2 subdivision, lower case ('pk-sd'), "
                            "or the country ('pk')"
                        ),
                        "examples": ["pk", "pk-sd"],
                    },
                    "category": {"enum": categories, "description": "the category code"},
                },
                "messages": {"sealedReport": {"$ref": "#/components/messages/sealedReport"}},
            },
            "inbox": {
                "address": INBOX_PREFIX + "{recipient}.{sender}",
                "title": "Sealed feedback, notices and forwards from one agency to another alone",
                "description": (
                    "Receipts and outcomes a recipient sends the originator of a report, the "
                    "originator's notices (supersede, retract, purge; consent, decline) to each "
                    "recipient, and reports a recipient forwards (docs/cycle.md): only the "
                    "sender's certificate may write the topic, only the recipient's read it, "
                    "whatever either is granted. The record key is "
                    "the report's message id; records are kept 32 days."
                ),
                "parameters": {
                    "recipient": {**agency, "description": "the agency the feedback is for"},
                    "sender": {**agency, "description": "the agency giving it"},
                },
                "messages": {
                    "sealedFeedback": {"$ref": "#/components/messages/sealedFeedback"},
                    "sealedNotice": {"$ref": "#/components/messages/sealedNotice"},
                    "sealedForward": {"$ref": "#/components/messages/sealedForward"},
                },
            },
            "quarantine": {
                "address": "fusionbus.quarantine.{agency}",
                "title": "What an agency's consumers rejected, with the reason",
                "parameters": {"agency": agency},
                "messages": {
                    "quarantinedRecord": {"$ref": "#/components/messages/quarantinedRecord"}
                },
            },
            "directory": {
                "address": DIRECTORY_TOPIC,
                "title": "The root-signed federation directory (log-compacted)",
                "messages": {"directoryRecord": {"$ref": "#/components/messages/directoryRecord"}},
            },
        },
        "operations": {
            "publishReport": {
                "action": "send",
                "channel": {"$ref": "#/channels/reports"},
                "summary": "An agency publishes a sealed report (producers.Publisher).",
            },
            "receiveReports": {
                "action": "receive",
                "channel": {"$ref": "#/channels/reports"},
                "summary": "A counterpart subscribes by jurisdiction and category.",
            },
            "sendFeedback": {
                "action": "send",
                "channel": {"$ref": "#/channels/inbox"},
                "summary": "A recipient tells the originator: received, acknowledged, "
                "actioned, outcome (producers.FeedbackSender).",
            },
            "receiveFeedback": {
                "action": "receive",
                "channel": {"$ref": "#/channels/inbox"},
                "summary": "The originator reads its inbox (consumers.Inbox).",
            },
            "sendNotice": {
                "action": "send",
                "channel": {"$ref": "#/channels/inbox"},
                "summary": "The originator tells each recipient of a report to supersede, "
                "retract or purge it (producers.FeedbackSender.notify).",
            },
            "forwardReport": {
                "action": "send",
                "channel": {"$ref": "#/channels/inbox"},
                "summary": "A recipient forwards a report, with the originator's own signed "
                "content and consent (producers.FeedbackSender.forward).",
            },
            "quarantineRecord": {
                "action": "send",
                "channel": {"$ref": "#/channels/quarantine"},
                "summary": "A consumer sets a rejected record aside for inspection.",
            },
            "publishDirectory": {
                "action": "send",
                "channel": {"$ref": "#/channels/directory"},
                "summary": "The federation admin publishes signed records and the head.",
            },
            "followDirectory": {
                "action": "receive",
                "channel": {"$ref": "#/channels/directory"},
                "summary": "Every party follows the live directory.",
            },
        },
        "components": {
            "schemas": dict(sorted(components.items())),
            "messages": {
                "sealedReport": {
                    "name": "sealedReport",
                    "contentType": "application/jose+json",
                    "headers": _headers(ROUTING_HEADERS, ROUTING_HEADERS),
                    "payload": jwe,
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "format": "uuid"},
                            "bindingVersion": "0.5.0",
                        }
                    },
                },
                **_inbox_message(
                    jwe,
                    "Feedback",
                    "The same envelope as a report's, sealed to the originator alone, its "
                    "routing header saying kind 'feedback' and repeating the report's "
                    "category, jurisdiction, precedence and TLP.",
                ),
                **_inbox_message(
                    jwe,
                    "Notice",
                    "The same envelope as a report's, sealed to one recipient of the report, "
                    "its routing header saying kind 'notice' and repeating the report's "
                    "category, jurisdiction, precedence and TLP.",
                ),
                **_inbox_message(
                    jwe,
                    "Forward",
                    "The same envelope as a report's, sealed by the forwarder to the agency it "
                    "forwards to, its routing header saying kind 'forward' and repeating the "
                    "original's routing and expiry; the payload carries the originator's "
                    "inner JWS of the report.",
                ),
                "quarantinedRecord": {
                    "name": "quarantinedRecord",
                    "contentType": "application/octet-stream",
                    "headers": _headers(QUARANTINE_HEADERS, QUARANTINE_HEADERS[:5]),
                    "payload": {
                        "type": "string",
                        "description": "the rejected record's value, as read (cut above 900,000 B)",
                    },
                },
                "directoryRecord": {
                    "name": "directoryRecord",
                    "contentType": "application/jose",
                    "payload": {
                        "type": "string",
                        "description": (
                            "a compact JWS signed by the federation root: an agency's record "
                            "(key = the agency id) or the directory head (key '_head')"
                        ),
                    },
                    "bindings": {
                        "kafka": {
                            "key": {"type": "string", "pattern": f"{AGENCY_ID_PATTERN}|^_head$"},
                            "bindingVersion": "0.5.0",
                        }
                    },
                },
            },
            "securitySchemes": {
                "agencyCertificate": {
                    "type": "X509",
                    "description": (
                        "mutual TLS: the certificate's CN is the Kafka principal User:<agency>"
                    ),
                }
            },
        },
    }


def _inbox_message(jwe: dict[str, Any], model: str, description: str) -> dict[str, Any]:
    """The ``sealed<Model>`` message of an inbox topic: the JWE, what it holds, its key."""
    return {
        f"sealed{model}": {
            "name": f"sealed{model}",
            "contentType": "application/jose+json",
            "payload": {
                **jwe,
                "description": description,
                "x-fusionbus-plaintext": {"$ref": _REF.format(model=model)},
            },
            "bindings": {
                "kafka": {"key": {"type": "string", "format": "uuid"}, "bindingVersion": "0.5.0"}
            },
        }
    }


def render() -> str:
    return render_json(document())


def main(argv: list[str] | None = None) -> int:
    return write_or_check(ASYNCAPI_PATH, render(), prog=REGENERATE, description=__doc__, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
