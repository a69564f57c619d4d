"""HTTP plumbing shared by the routes: problem responses, authentication, bodies, access log."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.problems import PROBLEM_JSON, FieldError, Problem
from gateway.service import Gateway
from gateway.sessions import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_matches
from gateway.tokens import (
    Permission,
    Principal,
    Refusal,
    TokenRefused,
    check_token,
    check_token_id,
)

__all__ = [
    "AccessLog",
    "gateway_of",
    "install_problem_handlers",
    "json_response",
    "read_body",
    "requires",
    "session_principal",
]

access_log = structlog.get_logger("gateway.access")
log = structlog.get_logger(__name__)
_REALM = 'Bearer realm="fusionbus-gateway"'


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def problem_response(problem: Problem, instance: str) -> Response:
    return Response(
        orjson.dumps(problem.document(instance)),
        problem.status,
        dict(problem.headers),
        media_type=PROBLEM_JSON,
    )


def session_principal(request: Request) -> Principal:
    """The principal of the request's session cookie, or a 401 Problem (no session, an
    unknown or expired one, its token revoked) or a 403 (an unsafe method without the CSRF
    header). The request's principal is set on success."""
    gateway = gateway_of(request)
    now = gateway.clock()
    session = gateway.sessions.find(request.cookies.get(SESSION_COOKIE, ""), now)
    if session is None:
        raise Problem(
            401,
            "session-unknown",
            "Not authenticated",
            detail="no session, or it ended (logged out, expired, or its token revoked): "
            "log in again at /login",
            headers={"WWW-Authenticate": _REALM},
        )
    try:
        principal = check_token_id(session.token_id, gateway.tokens.find, now)
    except TokenRefused as exc:
        gateway.sessions.end(session.id)
        raise _refused(exc) from None
    request.state.principal = principal
    if request.method not in SAFE_METHODS and not csrf_matches(
        session, request.headers.get(CSRF_HEADER)
    ):
        raise Problem(
            403,
            "csrf-failed",
            "The request lacks the session's CSRF token",
            detail="a request authenticated by the session cookie that changes anything must "
            "send the value of the fbgw_csrf cookie in the X-CSRF-Token header",
        )
    return principal


def _refused(exc: TokenRefused) -> Problem:
    challenge = _REALM if exc.reason is Refusal.MISSING else f'{_REALM}, error="invalid_token"'
    return Problem(
        401,
        f"token-{str(exc.reason).replace('_', '-')}",
        "Not authenticated",
        detail=exc.detail,
        headers={"WWW-Authenticate": challenge},
    )


async def _authenticate(request: Request) -> Principal:
    gateway = gateway_of(request)
    header = request.headers.get("authorization")
    if header is None and SESSION_COOKIE in request.cookies:
        return session_principal(request)
    presented: str | None = None
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        presented = value.strip() if scheme.lower() == "bearer" else "malformed"
    try:
        principal = check_token(presented, gateway.agency, gateway.tokens.find, gateway.clock())
    except TokenRefused as exc:
        raise _refused(exc) from None
    request.state.principal = principal
    return principal


def requires(permission: Permission) -> Callable[..., Awaitable[Principal]]:
    """A dependency (run on the event loop, as the stores are): the request's principal,
    which must hold ``permission``."""

    async def check(principal: Principal = Depends(_authenticate)) -> Principal:  # noqa: B008
        if not principal.may(permission):
            raise Problem(
                403,
                "forbidden-role",
                "The token's role does not allow this",
                detail=f"a {principal.role} token may not {_ACTS[permission]}; use a token "
                f"of role {' or '.join(_HOLDERS[permission])}",
            )
        return principal

    return check


_ACTS = {
    Permission.INGEST: "post reports",
    Permission.READ: "read reports",
    Permission.READ_RED: "read TLP:RED reports in full",
}
_HOLDERS = {
    Permission.INGEST: ("operator", "system"),
    Permission.READ: ("operator", "viewer", "system"),
    Permission.READ_RED: ("operator", "system"),
}


async def read_body(request: Request, limit: int) -> bytes:
    """The JSON body, at most ``limit`` bytes (413 beyond, 415 if not JSON)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            "The body must be JSON",
            detail=f"send Content-Type: application/json (got {media[:60] or 'none'!r})",
        )
    too_large = Problem(
        413,
        "body-too-large",
        "The request body is too large",
        detail=f"at most {limit} bytes go in one request; split a batch into several",
    )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def install_problem_handlers(app: Any) -> None:
    """Every error the app answers becomes an RFC 9457 problem document."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
        return problem_response(exc, request.url.path)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        errors = []
        for error in exc.errors():
            where = [str(p) for p in error.get("loc", ())]
            name = where[-1] if len(where) > 1 else ".".join(where)
            errors.append(FieldError(name, f"{name}: {error.get('msg', 'invalid')}", "parameter"))
        problem = Problem(
            400,
            "invalid-parameter",
            "A query parameter is not valid",
            detail="; ".join(e.detail for e in errors),
            errors=errors,
        )
        return problem_response(problem, request.url.path)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)  # noqa: S101
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        problem = Problem(
            exc.status_code,
            slug,
            str(exc.detail),
            headers=dict(exc.headers or {}),
            detail="see the gateway's routes in docs/gateway.md" if exc.status_code == 404 else "",
        )
        return problem_response(problem, request.url.path)

    async def on_error(request: Request, exc: Exception) -> Response:
        log.error("gateway.internal_error", error=type(exc).__name__, path=request.url.path)
        problem = Problem(500, "internal-error", "The gateway failed to answer")
        return problem_response(problem, request.url.path)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_error)


class AccessLog:
    """ASGI middleware: one ``http.request`` line per request, after it ends — method, path
    (no query string), status, bytes sent, duration and token id; never a body or header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        sent = 0

        async def watch(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            principal = scope.get("state", {}).get("principal")
            client = scope.get("client")
            access_log.info(
                "http.request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                bytes=sent,
                ms=round((time.perf_counter() - started) * 1000, 1),
                token=principal.token_id if isinstance(principal, Principal) else None,
                role=str(principal.role) if isinstance(principal, Principal) else None,
                client=client[0] if client else None,
            )
