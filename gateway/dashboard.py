"""The web dashboard: its static page, and the login that gives a browser a session cookie.

Routes: ``GET /`` (the dashboard; a browser without a valid session is sent to ``/login``),
``GET /login`` (a form to paste a token), ``POST /login`` (checks the token, opens a session
of :mod:`gateway.sessions`, sets its cookies), ``POST /logout`` (ends it; the CSRF header is
required as for any unsafe request with the cookie), ``GET /static/...`` (the page's script
and style sheet: no data, no authentication).

Cookies: ``fbgw_session`` (``HttpOnly``) and ``fbgw_csrf`` (readable by the page, which
sends it back as ``X-CSRF-Token``), both ``SameSite=Strict``, ``Path=/`` and ``Secure``
unless the request came over plain HTTP to a loopback address (a browser drops a
``Secure`` cookie there, and loopback traffic does not leave the host). A gateway reached
over plain HTTP on any other address still sets ``Secure``, so its login does not stick:
put TLS in front of it.

Every HTML answer carries a Content-Security-Policy allowing only the gateway's own script,
style and connections, so even a mistake in the page could not run injected markup.
"""

from __future__ import annotations

import html
import ipaddress
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import structlog
from fastapi import FastAPI, Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from gateway._http import gateway_of, session_principal
from gateway.problems import Problem
from gateway.sessions import CSRF_COOKIE, SESSION_COOKIE
from gateway.tokens import TokenRefused, check_token

__all__ = ["PAGES", "STATIC", "dashboard_routes"]

log = structlog.get_logger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PAGES = frozenset({"/", "/login", "/logout", "/static"})
"""The browser's paths: not part of the API (``gateway.openapi`` leaves them out)."""
_FORM_LIMIT = 4096
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the form's Origin "null"
    "Cache-Control": "no-store",
}
_LOGIN = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fusionbus gateway: log in</title>
<link rel="stylesheet" href="/static/dashboard.css">
</head>
<body class="login">
<main>
<h1>fusionbus gateway <span class="agency">{agency}</span></h1>
<form method="post" action="/login">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="off" required
 placeholder="fbgw_{agency}_...">
<button type="submit">Log in</button>
</form>
<p id="error" role="alert">{error}</p>
<p class="hint">Make a token with
<code>fusionbus gateway token create --agency {agency} --role viewer</code>.</p>
</main>
</body>
</html>
"""


def _loopback(host: str | None) -> bool:
    if host is None or host == "localhost":
        return host is not None
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _secure(request: Request) -> bool:
    """Whether the cookies get ``Secure``: always, except plain HTTP to a loopback address."""
    return request.url.scheme != "http" or not _loopback(request.url.hostname)


def _login_page(request: Request, error: str = "", status: int = 200) -> Response:
    agency = html.escape(gateway_of(request).agency)
    body = _LOGIN.format(agency=agency, error=html.escape(error))
    return Response(body, status, _HEADERS, media_type="text/html")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)


def dashboard_routes(app: FastAPI) -> None:
    """The dashboard's routes and static files, on ``app``."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def index(request: Request) -> Response:
        try:
            session_principal(request)
        except Problem:
            return RedirectResponse("/login", 303, headers=_HEADERS)
        return FileResponse(STATIC / "index.html", headers=_HEADERS, media_type="text/html")

    @app.get("/login", include_in_schema=False)
    async def login_form(request: Request) -> Response:
        return _login_page(request)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        gateway = gateway_of(request)
        if not _same_origin(request):
            log.warning("gateway.login", outcome="cross_origin")
            return _login_page(request, "The login form must be sent from this gateway.", 403)
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > _FORM_LIMIT:
                return _login_page(request, "The form is too large.", 413)
        if media != "application/x-www-form-urlencoded":
            return _login_page(request, "Send the login form as a form.", 415)
        fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=5)
        presented = (fields.get("token") or [""])[0].strip()
        now = gateway.clock()
        try:
            principal = check_token(presented, gateway.agency, gateway.tokens.find, now)
        except TokenRefused as exc:
            log.info("gateway.login", outcome="refused", reason=str(exc.reason))
            return _login_page(request, exc.detail, 401)
        request.state.principal = principal
        session = gateway.sessions.open(principal.token_id, now)
        log.info("gateway.login", outcome="ok", token=principal.token_id, role=principal.role)
        answer = RedirectResponse("/", 303, headers=_HEADERS)
        secure = _secure(request)
        age = int(gateway.sessions.lifetime.total_seconds())
        answer.set_cookie(
            SESSION_COOKIE, session.id, max_age=age, path="/", secure=secure, httponly=True,
            samesite="strict",
        )  # fmt: skip
        answer.set_cookie(
            CSRF_COOKIE, session.csrf, max_age=age, path="/", secure=secure, httponly=False,
            samesite="strict",
        )  # fmt: skip
        return answer

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        gateway = gateway_of(request)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie is not None and gateway.sessions.find(cookie, gateway.clock()) is not None:
            try:
                principal = session_principal(request)
            except Problem as problem:
                if problem.status == 403:  # the CSRF refusal
                    raise
            else:
                log.info("gateway.logout", token=principal.token_id)
            gateway.sessions.end(cookie)
        answer = RedirectResponse("/login", 303, headers=_HEADERS)
        for name in (SESSION_COOKIE, CSRF_COOKIE):
            answer.delete_cookie(name, path="/", secure=_secure(request), samesite="strict")
        return answer
