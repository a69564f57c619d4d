"""The gateway's HTTP API (FastAPI on uvicorn): ingest, status, read, live feed, health.

::

    app = create_app(gateway)                # gateway.service.Gateway
    await serve(app, sock, on_listening=print)

Routes (``docs/gateway.md``): ``GET /healthz``, ``GET /readyz`` (unauthenticated, no data);
with a Bearer token: ``GET /metrics`` (Prometheus, :mod:`gateway.metrics`),
``POST /v1/reports``, ``POST /v1/reports:batch``, ``GET /v1/status/{message_id}``,
``GET /v1/reports``, ``GET /v1/reports/{message_id}``, ``GET /v1/feed`` (Server-Sent
Events), ``GET /v1/me``, ``GET /v1/stats`` — a browser may
authenticate them with the session cookie instead; the dashboard and its login
(:mod:`gateway.dashboard`). Every error is an RFC 9457 problem document
(:mod:`gateway.problems`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any

import anyio
import orjson
import structlog
import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from broker.audit import Trail, read_audit, verify_trail
from broker.envelope import Routing
from broker.envelope.forward import needs_consent
from broker.errors import (
    AuthorizationError,
    ConfigError,
    DisseminationError,
    FusionbusError,
    SchemaValidationError,
    TransportError,
)
from broker.federation._home import read_root_public
from broker.home import HomeLayout
from broker.shutdown import STOP_SIGNALS, exit_at_once
from consumers import outsiders, recipient_states
from gateway._http import (
    AccessLog,
    gateway_of,
    install_problem_handlers,
    json_response,
    read_body,
    requires,
)
from gateway.cursor import CursorError
from gateway.dashboard import dashboard_routes
from gateway.feed import Start, feed_events
from gateway.feedback import parse_act, parse_feedback, parse_retraction
from gateway.idempotency import (
    Answer,
    Begin,
    Conflict,
    ConflictKind,
    Replay,
    fingerprint,
    parse_key,
)
from gateway.ingest import ReportStatus, parse_batch, parse_report
from gateway.openapi import document as openapi_document
from gateway.problems import PROBLEM_JSON, FieldError, Problem
from gateway.received import Filters, StoredReport
from gateway.service import Gateway
from gateway.tokens import Permission, Principal
from producers import FeedbackSender, OutboxFullError, Published, Queued
from schemas import (
    Feedback,
    Forward,
    Notice,
    NoticeAction,
    Outcome,
    Precedence,
    Relations,
    Report,
    describe_validation_error,
    is_registered_category,
)
from schemas.envelope import RoutingHeader

__all__ = ["api_routes", "create_app", "serve"]

log = structlog.get_logger(__name__)

Ingester = Annotated[Principal, Depends(requires(Permission.INGEST))]
Reader = Annotated[Principal, Depends(requires(Permission.READ))]
Categories = Annotated[list[str] | None, Query(description="Repeatable category code.")]
Jurisdictions = Annotated[
    list[str] | None, Query(description="Repeatable; covers its subtree (PK covers PKKHI).")
]
Precedences = Annotated[list[Precedence] | None, Query(description="Repeatable.")]


def create_app(gateway: Gateway, *, kafka: bool = True) -> FastAPI:
    """The ASGI app of ``gateway``; with ``kafka`` its lifespan runs the Kafka side."""

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not kafka:
            yield
            return
        async with gateway.running():
            yield

    app = FastAPI(
        title=f"fusionbus gateway ({gateway.agency})",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.gateway = gateway
    install_problem_handlers(app)
    app.add_middleware(AccessLog)
    api_routes(app)
    dashboard_routes(app)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(_: Reader) -> Response:
        return json_response(openapi_document())

    return app


def api_routes(app: FastAPI) -> None:
    """Every route of the API (what ``gateway.openapi`` describes), on ``app``."""
    _health_routes(app)
    _ingest_routes(app)
    _read_routes(app)


def _health_routes(app: FastAPI) -> None:
    @app.get("/healthz")
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    async def readyz(request: Request) -> Response:
        gateway = gateway_of(request)
        lag, most = gateway.lag(), gateway.settings.ready_max_lag
        checks = {
            "publisher": gateway.sender is not None,
            "subscriber": gateway.subscribing,
            "lag": lag is not None and lag <= most,
            "directory": gateway.directory_current(),
        }
        numbers = {"lag": lag, "max_lag": most}
        if all(checks.values()):
            return json_response({"status": "ready", "checks": checks, **numbers})
        raise Problem(
            503,
            "not-ready",
            "The gateway is not ready",
            detail="its Kafka publisher or subscriber is not running yet (or is restarting), "
            f"its subscriber's lag is unknown or above {most} records, or its live directory "
            "is not current (no recent root-signed head: the admin re-publishes it with "
            "`fusionbus federation publish-directory`)",
            extra={"checks": checks, **numbers},
        )

    @app.get("/metrics")
    async def metrics(request: Request, _: Reader) -> Response:
        body, media_type = gateway_of(request).metrics.exposition()
        return Response(body, 200, {"Cache-Control": "no-store"}, media_type=media_type)

    @app.get("/v1/me")
    async def me(request: Request, principal: Reader) -> Response:
        gateway = gateway_of(request)
        return json_response(
            {"agency": gateway.agency, "token_id": principal.token_id, "role": principal.role}
        )

    @app.get("/v1/stats")
    async def stats(request: Request, _: Reader) -> Response:
        gateway = gateway_of(request)
        return json_response(
            {
                "feed_clients": gateway.hub.clients,
                "received": gateway.received.count(),
                "outbox": gateway.outbox.backlog().document(gateway.clock()),
                "subscriber": {"connected": gateway.consuming, "lag": gateway.lag()},
                "quarantined": {
                    "total": gateway.quarantined.total(),
                    "by_reason": dict(sorted(gateway.quarantined.items())),
                },
            }
        )


# -- ingest ------------------------------------------------------------------------------


def _ingest_routes(app: FastAPI) -> None:
    @app.post("/v1/reports", status_code=202)
    async def post_report(request: Request, principal: Ingester) -> Response:
        return await _counted(request, principal, batch=False)

    @app.post("/v1/reports:batch", status_code=202)
    async def post_batch(request: Request, principal: Ingester) -> Response:
        return await _counted(request, principal, batch=True)

    @app.get("/v1/status/{message_id}")
    async def status(request: Request, message_id: uuid.UUID, _: Reader) -> Response:
        gateway = gateway_of(request)
        found = gateway.statuses.get(str(message_id))
        if found is None:
            raise Problem(
                404,
                "unknown-report",
                "No report with this id was posted here",
                detail=f"this gateway accepted no report {message_id}",
            )
        return json_response(_status_document(gateway, found))

    @app.get("/v1/audit/reports/{message_id}")
    async def audit_report(request: Request, message_id: uuid.UUID, _: Reader) -> Response:
        trail = await _audit_trail(gateway_of(request))
        return json_response(
            {
                "report_id": str(message_id),
                "intact": trail.intact,
                "records": [r.model_dump(mode="json") for r in trail.life_of(message_id)],
            }
        )

    @app.get("/v1/audit/verify")
    async def audit_verify(request: Request, _: Reader) -> Response:
        trail = await _audit_trail(gateway_of(request))
        chains = [
            {
                "writer": chain.writer,
                "records": len(chain.records),
                "intact": chain.first_break is None,
                "break": None
                if chain.first_break is None
                else {
                    "kind": str(chain.first_break.kind), "seq": chain.first_break.seq,
                    "detail": chain.first_break.detail,
                },
            }
            for chain in trail.chains
        ]  # fmt: skip
        return json_response(
            {"intact": trail.intact, "chains": chains, "bad_anchors": list(trail.bad_anchors)}
        )

    @app.get("/v1/sent")
    async def sent(
        request: Request,
        _: Reader,
        limit: Annotated[int, Query(ge=1, le=200, description="How many, newest first.")] = 50,
    ) -> Response:
        gateway = gateway_of(request)
        items = [_status_document(gateway, found) for found in gateway.statuses.recent(limit)]
        return json_response({"items": items})

    @app.post("/v1/reports/{message_id}/retract", status_code=202)
    async def retract(request: Request, message_id: uuid.UUID, _: Ingester) -> Response:
        gateway = gateway_of(request)
        body = await read_body(request, gateway.settings.max_body_bytes)
        return await _retract(gateway, message_id, body)

    @app.post("/v1/reports/{message_id}/supersede", status_code=202)
    async def supersede(request: Request, message_id: uuid.UUID, _: Ingester) -> Response:
        gateway = gateway_of(request)
        body = await read_body(request, gateway.settings.max_body_bytes)
        return await _supersede(gateway, message_id, body)

    @app.post("/v1/reports/{message_id}/forward", status_code=202)
    async def forward(request: Request, message_id: uuid.UUID, _: Ingester) -> Response:
        gateway = gateway_of(request)
        body = await read_body(request, gateway.settings.max_body_bytes)
        return await _forward(gateway, message_id, body)

    @app.post("/v1/reports/{message_id}/consent", status_code=202)
    async def consent(request: Request, message_id: uuid.UUID, _: Ingester) -> Response:
        gateway = gateway_of(request)
        body = await read_body(request, gateway.settings.max_body_bytes)
        return await _consent(gateway, message_id, body)

    @app.post("/v1/reports/{message_id}/feedback", status_code=202)
    async def give_feedback(request: Request, message_id: uuid.UUID, _: Ingester) -> Response:
        gateway = gateway_of(request)
        body = await read_body(request, gateway.settings.max_body_bytes)
        stored = gateway.received.get(str(message_id))
        if stored is None:
            raise Problem(
                404,
                "unknown-report",
                "This agency received no report with this id",
                detail=f"the gateway's store holds no report {message_id} received from "
                "another agency (it may have expired from the store)",
            )
        about = RoutingHeader.model_validate_json(stored.header)
        if about.sender == gateway.agency:
            raise Problem(
                422, "own-report", "Feedback on the agency's own report",
                detail="feedback goes from a recipient to the report's originator; this "
                "agency sent the report",
            )  # fmt: skip
        feedback = parse_feedback(body, about=about, agency=gateway.agency, now=gateway.clock())
        sender = gateway.feedback_sender
        if sender is None:
            raise Problem(
                503, "not-ready", "The gateway is not ready", headers={"Retry-After": "2"}
            )
        try:
            await sender.send(feedback, about)
        except (AuthorizationError, ConfigError, SchemaValidationError) as exc:
            raise Problem(422, "originator-unreachable", "The originator cannot be told",
                          detail=str(exc)) from None  # fmt: skip
        except FusionbusError as exc:
            raise Problem(
                503, "publish-failed", "Kafka did not take the feedback", detail=str(exc),
                headers={"Retry-After": "5"},
            ) from None  # fmt: skip
        return json_response(
            {
                "message_id": str(feedback.message_id),
                "report_id": str(feedback.report_id),
                "originator": feedback.originator,
                "outcome": str(feedback.outcome),
                "status": "sent",
            },
            202,
        )


async def _audit_trail(gateway: Gateway) -> Trail:
    """Every audit chain, read from Kafka and verified against the gateway's directory and
    the federation root, as ``fusionbus audit verify`` does."""
    directory = gateway.directory
    if directory is None:
        raise Problem(503, "not-ready", "The gateway is not ready", headers={"Retry-After": "2"})
    try:
        root = read_root_public(HomeLayout(gateway.home).root_public, gateway.home)
    except ConfigError as exc:
        raise Problem(
            503, "no-root-key", "The federation's root key is not in this home",
            detail=str(exc),
        ) from None  # fmt: skip
    try:
        topics, anchors = await read_audit(gateway.kafka)
    except FusionbusError as exc:
        raise Problem(
            503, "kafka-unavailable", "The audit topics cannot be read", detail=str(exc),
            headers={"Retry-After": "5"},
        ) from None  # fmt: skip
    return verify_trail(topics, anchors, directory.snapshot, root)


def _told(gateway: Gateway, message_id: uuid.UUID, sealed_to: Sequence[str]) -> list[str]:
    """Whom a notice on one of the agency's reports goes to: every agency it was sealed to,
    and every agency one of them said it forwarded it to."""
    forwards = {
        f.forward_to
        for f in gateway.feedback.for_report(str(message_id))
        if f.outcome is Outcome.FORWARDED and f.sender in sealed_to and f.forward_to
    }
    return sorted({*sealed_to, *forwards} - {gateway.agency})


def _status_document(gateway: Gateway, found: ReportStatus) -> dict[str, Any]:
    """A posted report's status and each recipient's feedback on it."""
    feedback = gateway.feedback.for_report(found.message_id)
    body = found.document()
    states = recipient_states(feedback, sealed_to=found.agencies)
    body["feedback"] = [state.document() for state in states.values()]
    if strangers := outsiders(feedback, found.agencies):
        body["ignored_feedback_from"] = strangers
    return body


async def _retract(gateway: Gateway, message_id: uuid.UUID, body: bytes) -> Response:
    """Send a retraction (or purge) of one of the agency's reports to every agency it was
    sealed to, as ``fusionbus retract`` does."""
    reason, purge = parse_retraction(body)
    sent = gateway.ledger.get(message_id)
    if sent is None or None in (sent.category, sent.jurisdiction, sent.precedence, sent.tlp):
        raise Problem(
            404, "unknown-report", "This agency published no such report here",
            detail=f"this gateway's home published no report {message_id}; only a report's "
            "originator can retract it, from where it was published",
        )  # fmt: skip
    sender = gateway.feedback_sender
    if sender is None:
        raise Problem(503, "not-ready", "The gateway is not ready", headers={"Retry-After": "2"})
    notice = Notice(
        message_id=uuid.uuid4(), report_id=message_id, sender=gateway.agency,
        created_at=gateway.clock(), reason=reason,
        action=NoticeAction.PURGE if purge else NoticeAction.RETRACT,
    )  # fmt: skip
    routing = Routing(
        str(sent.category), str(sent.jurisdiction), str(sent.precedence), str(sent.tlp)
    )
    results = await sender.notify(notice, routing, _told(gateway, message_id, sent.sealed_to))
    recipients = [
        {"agency": agency, "status": "sent"}
        if isinstance(result, Published)
        else {"agency": agency, "status": "failed", "detail": str(result)}
        for agency, result in results.items()
    ]
    return json_response(
        {
            "notice_id": str(notice.message_id),
            "report_id": str(message_id),
            "action": str(notice.action),
            "recipients": recipients,
            "status_url": f"/v1/status/{message_id}",
        },
        202,
    )


async def _supersede(gateway: Gateway, message_id: uuid.UUID, body: bytes) -> Response:
    """Publish a corrected report in place of one of the agency's reports and tell every
    agency the original was sealed to, as ``fusionbus supersede`` does."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            400, "malformed-json", "The body is not JSON",
            detail=f'the request body is not JSON ({exc}); send {{"report": {{...}}, '
            '"reason": "..."}',
        ) from exc  # fmt: skip
    if not isinstance(document, dict) or not isinstance(document.get("report"), dict):
        raise Problem.invalid(
            [FieldError("/report", "report: expected the corrected report, a JSON object")],
            what="supersession",
        )
    extra = sorted(set(document) - {"report", "reason"})
    if extra:
        raise Problem.invalid(
            [FieldError(f"/{n}", f"{n}: not a field here; send report and reason") for n in extra],
            what="supersession",
        )
    reason = parse_act(
        orjson.dumps({k: v for k, v in document.items() if k == "reason"}),
        {"reason": "text"}, required=frozenset(), what="supersession",
    ).get("reason")  # fmt: skip
    sent = gateway.ledger.get(message_id)
    if sent is None or None in (sent.category, sent.jurisdiction, sent.precedence, sent.tlp):
        raise Problem(
            404, "unknown-report", "This agency published no such report here",
            detail=f"this gateway's home published no report {message_id}; only a report's "
            "originator can supersede it, from where it was published",
        )  # fmt: skip
    given = parse_report(orjson.dumps(document["report"]), agency=gateway.agency,
                         now=gateway.clock())  # fmt: skip
    if given.message_id == message_id:
        raise Problem.invalid(
            [FieldError("/report/message_id", "message_id: expected a new id, not the original's")],
            what="supersession",
        )
    relations = given.relations
    try:
        corrected = Report.model_validate(
            given.model_dump()
            | {
                "relations": Relations(
                    supersedes=tuple(dict.fromkeys((*relations.supersedes, message_id))),
                    retracts=relations.retracts, follows_up=relations.follows_up,
                ).model_dump()
            }
        )  # fmt: skip
    except ValidationError as exc:
        raise Problem.invalid(
            [
                FieldError(
                    "/report/relations", f"relations: {'; '.join(describe_validation_error(exc))}"
                )
            ],
            what="supersession",
        ) from None
    answer = await _publish_reports(gateway, [corrected], batch=False)
    published = orjson.loads(answer.body)
    if published.get("status") != "published":
        return Response(answer.body, answer.status, media_type="application/json")
    notice = Notice(
        message_id=uuid.uuid4(), report_id=message_id, sender=gateway.agency,
        created_at=gateway.clock(), action=NoticeAction.SUPERSEDE,
        reason=reason or f"corrected by report {corrected.message_id}",
        superseded_by=corrected.message_id,
    )  # fmt: skip
    routing = Routing(
        str(sent.category), str(sent.jurisdiction), str(sent.precedence), str(sent.tlp)
    )
    results = await _feedback_sender(gateway).notify(
        notice, routing, _told(gateway, message_id, sent.sealed_to)
    )
    return json_response(
        published
        | {
            "notice_id": str(notice.message_id),
            "recipients": [
                {"agency": a, "status": "sent"}
                if isinstance(r, Published)
                else {"agency": a, "status": "failed", "detail": str(r)}
                for a, r in results.items()
            ],
        },
        202,
    )


def _feedback_sender(gateway: Gateway) -> FeedbackSender:
    sender = gateway.feedback_sender
    if sender is None:
        raise Problem(503, "not-ready", "The gateway is not ready", headers={"Retry-After": "2"})
    return sender


async def _forward(gateway: Gateway, message_id: uuid.UUID, body: bytes) -> Response:
    """Forward a report the agency received, or ask its originator's consent to, as
    ``fusionbus forward`` does."""
    act = parse_act(
        body, {"to": "agency", "note": "text", "ask": "flag"}, required=frozenset({"to"}),
        what="forward",
    )  # fmt: skip
    to, note, ask = act["to"], act.get("note"), act.get("ask", False)
    stored = gateway.received.get(str(message_id))
    if stored is None or stored.state == "purged":
        raise Problem(
            404, "unknown-report", "This agency holds no such report",
            detail=f"the gateway's store holds no report {message_id} it could forward",
        )  # fmt: skip
    if stored.state != "current":
        raise Problem(
            409, "withdrawn", f"The originator {stored.state} this report",
            detail=f"{stored.sender} {stored.state} report {message_id}; it is not forwarded",
        )  # fmt: skip
    original = RoutingHeader.model_validate_json(stored.header)
    snapshot = gateway.directory.snapshot if gateway.directory is not None else None
    if to in (gateway.agency, original.sender) or snapshot is None or to not in snapshot.records:
        raise Problem.invalid(
            [FieldError("/to", "to: expected another agency of the directory than this one "
                        "and the report's originator")],
            what="forward",
        )  # fmt: skip
    sender = _feedback_sender(gateway)
    if ask:
        request = Feedback(
            message_id=uuid.uuid4(), report_id=message_id, originator=original.sender,
            sender=gateway.agency, created_at=gateway.clock(),
            outcome=Outcome.FORWARD_REQUESTED, forward_to=to, note=note,
        )  # fmt: skip
        await _sent_or_problem(sender.send(request, original))
        return json_response({"status": "asked", "message_id": str(request.message_id)}, 202)
    signed = gateway.received.signed(str(message_id))
    if signed is None:
        raise Problem(
            422, "no-signed-copy", "The originator's signed copy is not kept",
            detail="the report was stored before the gateway kept the originator's signed "
            "content, which a forward must carry",
        )  # fmt: skip
    report = Report.model_validate_json(stored.report)
    consent_jws = None
    why = needs_consent(report)
    if why is not None:
        answer = gateway.feedback.answer(str(message_id), original.sender, to)
        if answer is None or answer[0] != "consent":
            raise Problem(
                422, "consent-required", "The originator has not consented",
                detail=f"the report may be forwarded only with {original.sender}'s consent "
                f"({why}); {'it declined' if answer else 'none is held'}: ask with "
                '{"to": "' + to + '", "ask": true}',
            )  # fmt: skip
        consent_jws = answer[1].decode("ascii")
    item = Forward(
        message_id=uuid.uuid4(), sender=gateway.agency, created_at=gateway.clock(),
        report_id=message_id, originator=original.sender, to=to,
        original=signed.decode("ascii"), consent=consent_jws, note=note,
    )  # fmt: skip
    await _sent_or_problem(sender.forward(item, original))
    return json_response({"status": "forwarded", "message_id": str(item.message_id)}, 202)


async def _consent(gateway: Gateway, message_id: uuid.UUID, body: bytes) -> Response:
    """Answer a recipient's request to forward one of the agency's reports."""
    act = parse_act(
        body, {"forwarder": "agency", "to": "agency", "reason": "text", "decline": "flag"},
        required=frozenset({"forwarder", "to", "reason"}), what="consent",
    )  # fmt: skip
    sent = gateway.ledger.get(message_id)
    if sent is None or None in (sent.category, sent.jurisdiction, sent.precedence, sent.tlp):
        raise Problem(
            404, "unknown-report", "This agency published no such report here",
            detail=f"this gateway's home published no report {message_id}",
        )  # fmt: skip
    if act["forwarder"] not in sent.sealed_to:
        raise Problem.invalid(
            [FieldError("/forwarder", "forwarder: expected an agency the report was sealed to")],
            what="consent",
        )
    if act["to"] in (gateway.agency, act["forwarder"]):
        raise Problem.invalid(
            [FieldError("/to", "to: expected a third agency, not this one or the forwarder")],
            what="consent",
        )
    notice = Notice(
        message_id=uuid.uuid4(), report_id=message_id, sender=gateway.agency,
        created_at=gateway.clock(), reason=act["reason"], forward_to=act["to"],
        action=NoticeAction.DECLINE if act.get("decline") else NoticeAction.CONSENT,
    )  # fmt: skip
    routing = Routing(
        str(sent.category), str(sent.jurisdiction), str(sent.precedence), str(sent.tlp)
    )
    results = await _feedback_sender(gateway).notify(notice, routing, [act["forwarder"]])
    result = results[act["forwarder"]]
    if isinstance(result, FusionbusError):
        raise Problem(503, "publish-failed", "The answer was not sent", detail=str(result))
    return json_response({"status": "sent", "notice_id": str(notice.message_id)}, 202)


async def _sent_or_problem(sending: Awaitable[object]) -> None:
    try:
        await sending
    except (AuthorizationError, ConfigError, SchemaValidationError) as exc:
        raise Problem(422, "unreachable", "The other agency cannot be reached",
                      detail=str(exc)) from None  # fmt: skip
    except FusionbusError as exc:
        raise Problem(
            503, "publish-failed", "Kafka did not take it", detail=str(exc),
            headers={"Retry-After": "5"},
        ) from None  # fmt: skip


def _answer_response(answer: Answer, *, replayed: bool = False) -> Response:
    headers = {"Location": answer.location} if answer.location else {}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    media = PROBLEM_JSON if answer.status >= 400 else "application/json"
    return Response(answer.body, answer.status, headers, media_type=media)


async def _counted(request: Request, principal: Principal, *, batch: bool) -> Response:
    metrics = gateway_of(request).metrics
    try:
        answer = await _idempotent(request, principal, batch=batch)
    except Problem as problem:
        metrics.ingest_answered(problem.status)
        raise
    metrics.ingest_answered(answer.status_code)
    return answer


async def _idempotent(request: Request, principal: Principal, *, batch: bool) -> Response:
    gateway = gateway_of(request)
    body = await read_body(request, gateway.settings.max_body_bytes)
    try:
        key = parse_key(request.headers.get("idempotency-key"))
    except ValueError as exc:
        raise Problem(
            400, "invalid-idempotency-key", "Bad Idempotency-Key", detail=str(exc)
        ) from None
    if key is None:
        return _answer_response(await _publish(gateway, body, request.url.path, batch=batch))
    scope = principal.token_id
    request_print = fingerprint("POST", request.url.path, body)
    decision = gateway.idempotency.begin(scope, key, request_print, gateway.clock())
    if isinstance(decision, Replay):
        return _answer_response(decision.answer, replayed=True)
    if isinstance(decision, Conflict):
        raise _conflict(decision.kind)
    assert isinstance(decision, Begin)  # noqa: S101 - the three decisions
    try:
        answer = await _publish(gateway, body, request.url.path, batch=batch)
    except Problem as problem:
        if problem.status >= 500:
            gateway.idempotency.forget(scope, key)
            raise
        answer = Answer(problem.status, orjson.dumps(problem.document(request.url.path)))
    except BaseException:
        gateway.idempotency.forget(scope, key)
        raise
    gateway.idempotency.finish(scope, key, answer)
    return _answer_response(answer)


def _conflict(kind: ConflictKind) -> Problem:
    if kind is ConflictKind.OTHER_REQUEST:
        return Problem(
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was used for another request",
            detail="the key was first sent with another body (or to another path); send a new "
            "key for a new request",
        )
    if kind is ConflictKind.IN_FLIGHT:
        return Problem(
            409,
            "idempotency-key-in-flight",
            "The first request with this Idempotency-Key is still being processed",
            detail="retry in a moment: the answer to the first request will then be returned",
            headers={"Retry-After": "1"},
        )
    return Problem(
        409,
        "idempotency-outcome-unknown",
        "The first request with this Idempotency-Key was interrupted",
        detail="the gateway stopped while processing the first request, so whether its "
        "reports were published is unknown; look them up at /v1/status/{message_id} and "
        "post any missing ones with a new key",
    )


async def _publish(gateway: Gateway, body: bytes, path: str, *, batch: bool) -> Answer:
    now = gateway.clock()
    settings = gateway.settings
    if batch:
        reports = parse_batch(body, agency=gateway.agency, now=now, limit=settings.max_batch)
    else:
        reports = [parse_report(body, agency=gateway.agency, now=now)]
    return await _publish_reports(gateway, reports, batch=batch)


async def _publish_reports(gateway: Gateway, reports: list[Report], *, batch: bool) -> Answer:
    now = gateway.clock()
    _refuse_repeats(gateway, reports, batch=batch)
    sender = gateway.sender
    if sender is None:
        raise Problem(503, "not-ready", "The gateway is not ready", headers={"Retry-After": "2"})
    ids = [str(r.message_id) for r in reports]
    gateway.statuses.accepted(ids, now)
    gateway.posted.update((r.message_id, r.category) for r in reports)
    try:
        results = await sender.publish_many(reports)
    except OutboxFullError as exc:  # nothing was taken
        _settle_all(gateway, ids, str(exc))
        raise Problem(
            503, "outbox-full", "The outbox is full", detail=str(exc),
            headers={"Retry-After": "60"},
        ) from None  # fmt: skip
    except DisseminationError as exc:  # a named recipient the grants exclude: nothing sent
        _settle_all(gateway, ids, str(exc))
        raise Problem(
            422,
            "recipient-not-entitled",
            "A named recipient may not receive this report",
            detail=str(exc),
        ) from None
    except ConfigError as exc:  # nobody is entitled: nothing was sent
        _settle_all(gateway, ids, str(exc))
        raise Problem(
            422, "no-recipient", "No agency may receive this report", detail=str(exc)
        ) from None
    except FusionbusError as exc:
        _settle_all(gateway, ids, str(exc))
        raise Problem(
            503,
            "publish-failed",
            "Kafka did not take the reports",
            detail=str(exc),
            headers={"Retry-After": "5"},
        ) from None
    items: list[dict[str, Any]] = []
    for message_id, report, result in zip(ids, reports, results, strict=True):
        result_id = report.message_id
        item: dict[str, Any] = {"message_id": message_id, "status_url": f"/v1/status/{message_id}"}
        if isinstance(result, FusionbusError):
            gateway.settled(result_id, result)
            item |= {"status": "failed", "detail": str(result)}
        elif isinstance(result, Queued):
            sealed_to = gateway.agencies_of(result.recipients)
            gateway.statuses.queue(message_id, gateway.clock(), sealed_to=sealed_to)
            gateway.ledger.record(result.message_id, sealed_to, report)
            item["status"] = "queued"
        else:
            sealed_to = gateway.agencies_of(result.recipients)
            gateway.ledger.record(result.message_id, sealed_to, report)
            gateway.settled(result_id, result)
            item["status"] = "published"
        items.append(item)
    if all(i["status"] == "failed" for i in items) and all(
        isinstance(r, TransportError) for r in results
    ):
        raise Problem(
            503,
            "publish-failed",
            "Kafka did not take the reports",
            detail=items[0]["detail"],
            headers={"Retry-After": "5"},
        )
    if batch:
        return Answer(202, orjson.dumps({"reports": items}))
    return Answer(202, orjson.dumps(items[0]), items[0]["status_url"])


def _refuse_repeats(gateway: Gateway, reports: list[Report], *, batch: bool) -> None:
    errors: list[FieldError] = []
    seen: set[uuid.UUID] = set()
    for number, report in enumerate(reports):
        where = f"/{number}/message_id" if batch else "/message_id"
        known = gateway.statuses.get(str(report.message_id))
        elsewhere = known is None and gateway.ledger.sealed_to(report.message_id) is not None
        if (
            report.message_id in seen
            or elsewhere
            or (known is not None and known.state != "failed")
        ):
            errors.append(
                FieldError(
                    where,
                    f"message_id: {report.message_id} was posted before; a report is published "
                    "once (retry with the same Idempotency-Key to get the first answer, or "
                    "leave message_id out)",
                )
            )
        seen.add(report.message_id)
    if errors:
        raise Problem(
            409, "duplicate-message-id", "A report with this message_id was posted before",
            detail="nothing was published", errors=errors,
        )  # fmt: skip


def _settle_all(gateway: Gateway, ids: list[str], detail: str) -> None:
    for message_id in ids:
        gateway.statuses.settle(message_id, gateway.clock(), recipients=0, detail=detail)


# -- read and feed -----------------------------------------------------------------------


def _filters(
    category: list[str] | None,
    jurisdiction: list[str] | None,
    precedence: list[Precedence] | None,
    since: datetime | None,
) -> Filters:
    errors = [
        FieldError(
            "category", f"category: {c[:40]!r} is not a registered category code", "parameter"
        )
        for c in category or ()
        if not is_registered_category(c)
    ]
    if not errors:
        try:
            return Filters(
                categories=frozenset(category or ()),
                jurisdictions=tuple(jurisdiction or ()),
                precedences=frozenset(str(p) for p in precedence or ()),
                since=since,
            )
        except ValueError as exc:
            errors.append(FieldError("jurisdiction", f"jurisdiction: {exc}", "parameter"))
    raise Problem(
        400, "invalid-parameter", "A query parameter is not valid",
        detail="; ".join(e.detail for e in errors), errors=errors,
    )  # fmt: skip


def _position(gateway: Gateway, cursor: str, parameter: str) -> int:
    try:
        return gateway.codec.decode(cursor)
    except CursorError:
        raise Problem(
            400,
            "invalid-cursor",
            "The cursor is not one this gateway gave",
            detail=f"{parameter}: pass a cursor exactly as an earlier answer or event id gave it",
            errors=[
                FieldError(parameter, f"{parameter}: not a cursor of this gateway", "parameter")
            ],
        ) from None


def _redactor(principal: Principal) -> Callable[[StoredReport], bool]:
    full = principal.may(Permission.READ_RED)
    return lambda stored: not full and stored.tlp == "TLP:RED"


def _read_routes(app: FastAPI) -> None:
    @app.get("/v1/reports")
    async def list_reports(  # noqa: PLR0917 - one parameter per query parameter
        request: Request,
        principal: Reader,
        category: Categories = None,
        jurisdiction: Jurisdictions = None,
        precedence: Precedences = None,
        since: datetime | None = None,
        cursor: str | None = None,
        limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    ) -> Response:
        gateway = gateway_of(request)
        filters = _filters(category, jurisdiction, precedence, since)
        after = 0 if cursor is None else _position(gateway, cursor, "cursor")
        rows, passed = gateway.received.page(
            filters, after=after, limit=limit or gateway.settings.page_limit
        )
        redact = _redactor(principal)
        return json_response(
            {
                "items": [row.document(redacted=redact(row)) for row in rows],
                "next_cursor": gateway.codec.encode(passed),
            }
        )

    @app.get("/v1/reports/{message_id}")
    async def get_report(request: Request, message_id: uuid.UUID, principal: Reader) -> Response:
        found = gateway_of(request).received.get(str(message_id))
        if found is None:
            raise Problem(
                404,
                "unknown-report",
                "No such report was received",
                detail=f"this agency received no report {message_id} (or retention dropped it)",
            )
        if found.state == "purged":
            raise Problem(
                410, "purged", "The originator purged this report",
                detail=f"{found.sender} purged report {message_id}: every copy here was deleted "
                "and it is shown nowhere",
            )  # fmt: skip
        if _redactor(principal)(found):
            raise Problem(
                403,
                "forbidden-handling",
                "This report's handling does not allow your role to read it",
                detail=f"the report is TLP:RED; a {principal.role} token sees its routing "
                "header only (in lists and the feed)",
            )
        return json_response(found.document())

    @app.get("/v1/feed")
    async def feed(  # noqa: PLR0917 - one parameter per query parameter
        request: Request,
        principal: Reader,
        category: Categories = None,
        jurisdiction: Jurisdictions = None,
        precedence: Precedences = None,
        since: datetime | None = None,
        last_event_id: str | None = None,
    ) -> Response:
        gateway = gateway_of(request)
        filters = _filters(category, jurisdiction, precedence, since)
        header = request.headers.get("last-event-id")
        resume, name = (header, "Last-Event-ID") if header else (last_event_id, "last_event_id")
        if resume:
            start = Start.at(_position(gateway, resume, name))
        else:
            start = Start.beginning() if since is not None else Start.head()
        settings = gateway.settings
        stopping = anyio.Event()  # set by sse-starlette when the server shuts down
        events = feed_events(
            gateway.received, gateway.hub, gateway.codec, filters,
            start=start, redact=_redactor(principal),
            queue_size=settings.feed_queue, heartbeat_s=settings.feed_heartbeat_s,
            stopping=stopping,
        )  # fmt: skip
        return _Feed(
            events, ping=0, send_timeout=settings.feed_send_timeout_s,
            shutdown_event=stopping, shutdown_grace_period=_FEED_GRACE_S,
        )  # fmt: skip


_FEED_GRACE_S = 2.0
"""How long a feed has, once the server stops, to send its ``shutdown`` event and end
cleanly before it is cut (well within uvicorn's ``timeout_graceful_shutdown``)."""


class _Feed(EventSourceResponse):
    """An event stream whose reader is cut off when one send takes longer than the timeout."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.warning("feed.disconnected", reason="send_timeout", timeout_s=self.send_timeout)


class _Server(uvicorn.Server):
    """uvicorn's server with the signals of :mod:`broker.shutdown`.

    uvicorn itself, on its first SIGINT or SIGTERM, stops accepting, waits up to
    ``timeout_graceful_shutdown`` for open connections, then runs the lifespan's shutdown
    (here: the Kafka side drains); a second SIGINT skips only the waits not begun yet (a
    lifespan shutdown under way goes on), a second SIGTERM does nothing; and once stopped it
    raises the signal again, so the process dies of it rather than exiting 0. Here the first
    signal does what uvicorn does (``handle_exit``, which sse-starlette also hooks to end the
    feeds), a second of either kind exits at once, and nothing is raised again afterwards.
    """

    signalled_at: float | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._signalled, sig)
        try:
            yield
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)

    def _signalled(self, sig: int) -> None:
        if self.should_exit:
            exit_at_once(sig)
        self.signalled_at = time.monotonic()
        log.info("gateway.stopping", signal=signal.Signals(sig).name)
        self.handle_exit(sig, None)


async def serve(
    app: FastAPI, sock: socket.socket, *, on_listening: Callable[[str], None] | None = None
) -> None:
    """Serve ``app`` on the bound socket ``sock`` until SIGINT or SIGTERM; ``on_listening``
    gets the base URL once the app started and the socket accepts connections.

    The first signal drains: no new connection is accepted, open feeds get a ``shutdown``
    event and end, requests in progress have up to 5 s, then the Kafka side stops (in-flight
    sends answered, offsets committed); then this returns. A second signal exits the process
    at once with 128 + its number (:mod:`broker.shutdown`)."""
    config = uvicorn.Config(
        app, log_config=None, access_log=False, lifespan="on", timeout_graceful_shutdown=5,
        server_header=False,
    )  # fmt: skip
    server = _Server(config)
    host, port = sock.getsockname()[:2]

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        if on_listening is not None:
            on_listening(f"http://{host}:{port}")

    watcher = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        watcher.cancel()
    if server.signalled_at is not None:
        log.info("gateway.stopped", drained_s=round(time.monotonic() - server.signalled_at, 3))
