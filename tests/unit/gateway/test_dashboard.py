"""The dashboard's login, session cookie and CSRF check in-process (httpx over ASGI), and its
script read for HTML sinks. The page in a real browser is tests/integration/
test_dashboard_browser.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from broker.config import KafkaSettings
from gateway._files import GatewayFiles
from gateway.app import create_app
from gateway.dashboard import STATIC
from gateway.service import Gateway
from gateway.sessions import SessionStore, csrf_matches
from gateway.settings import load_settings
from gateway.tokens import Role
from tests.unit.gateway.test_app import FakeSender, report_body

pytestmark = pytest.mark.asyncio

_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|new\s+Function|"
    r"createContextualFragment|DOMParser|srcdoc"
)


class Browser:
    def __init__(self, gateway: Gateway, client: httpx.AsyncClient, sender: FakeSender) -> None:
        self.gateway = gateway
        self.client = client
        self.sender = sender

    def token(self, role: Role = Role.OPERATOR) -> tuple[str, str]:
        info, token = self.gateway.tokens.create(role, datetime.now(UTC))
        return info.id, token

    async def login(self, token: str) -> httpx.Response:
        return await self.client.post("/login", data={"token": token})

    def csrf(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.client.cookies["fbgw_csrf"]}


@pytest_asyncio.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    home = tmp_path / "home"
    gateway = Gateway(home, "customs", load_settings(home), KafkaSettings())
    sender = FakeSender()
    gateway.sender = sender
    transport = httpx.ASGITransport(app=create_app(gateway, kafka=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield Browser(gateway, client, sender)
    gateway.close()


async def test_the_script_never_parses_text_as_html() -> None:
    for name in ("dashboard.js", "index.html"):
        source = (STATIC / name).read_text(encoding="utf-8")
        assert not _SINKS.findall(source), f"{name} uses an HTML sink: {_SINKS.findall(source)}"
    assert "<script>" not in (STATIC / "index.html").read_text(encoding="utf-8")  # CSP: no inline


async def test_the_dashboard_sends_an_unauthenticated_browser_to_the_login(
    browser: Browser,
) -> None:
    answer = await browser.client.get("/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    form = await browser.client.get("/login")
    assert form.status_code == 200
    assert '<form method="post" action="/login">' in form.text
    assert "script-src 'self'" in form.headers["content-security-policy"]
    script = await browser.client.get("/static/dashboard.js")
    assert script.status_code == 200
    assert "EventSource" in script.text


async def test_login_sets_a_session_cookie_that_is_not_the_token_and_logout_ends_it(
    browser: Browser,
) -> None:
    token_id, token = browser.token(Role.VIEWER)
    answer = await browser.login(token)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"
    cookies = {c.split("=", 1)[0]: c for c in answer.headers.get_list("set-cookie")}
    session = cookies["fbgw_session"]
    assert "HttpOnly" in session
    assert "SameSite=strict" in session
    assert "Secure" not in session  # plain HTTP to loopback
    assert "HttpOnly" not in cookies["fbgw_csrf"]
    assert token not in session
    assert token.split("_", 3)[3] not in "".join(cookies.values())
    page = await browser.client.get("/")
    assert page.status_code == 200
    assert '<script src="/static/dashboard.js" defer>' in page.text
    me = await browser.client.get("/v1/me")
    assert me.json() == {"agency": "customs", "token_id": token_id, "role": "viewer"}
    assert (await browser.client.post("/logout", headers=browser.csrf())).status_code == 303
    assert "fbgw_session" not in browser.client.cookies
    assert (await browser.client.get("/")).status_code == 303


async def test_a_cookie_kept_after_logout_is_refused(browser: Browser) -> None:
    _, token = browser.token()
    await browser.login(token)
    kept = browser.client.cookies["fbgw_session"]
    await browser.client.post("/logout", headers=browser.csrf())
    browser.client.cookies.set("fbgw_session", kept)
    answer = await browser.client.get("/v1/me")
    assert answer.status_code == 401
    assert answer.json()["type"] == "urn:fusionbus:problem:session-unknown"


async def test_a_revoked_tokens_session_is_refused_from_the_next_request(
    browser: Browser,
) -> None:
    token_id, token = browser.token()
    await browser.login(token)
    assert (await browser.client.get("/v1/me")).status_code == 200
    assert browser.gateway.tokens.revoke(token_id, datetime.now(UTC))
    answer = await browser.client.get("/v1/me")
    assert answer.status_code == 401
    assert answer.json()["type"] == "urn:fusionbus:problem:token-revoked"
    assert (await browser.client.get("/")).status_code == 303
    assert len(browser.gateway.sessions) == 0
    again = await browser.login(token)
    assert again.status_code == 401
    assert "was revoked" in again.text


async def test_a_cookie_post_needs_the_csrf_header(browser: Browser) -> None:
    _, token = browser.token(Role.SYSTEM)
    await browser.login(token)
    json = {"Content-Type": "application/json"}
    refused = await browser.client.post("/v1/reports", content=report_body(), headers=json)
    assert refused.status_code == 403
    assert refused.json()["type"] == "urn:fusionbus:problem:csrf-failed"
    wrong = await browser.client.post(
        "/v1/reports", content=report_body(), headers=json | {"X-CSRF-Token": "guess"}
    )
    assert wrong.status_code == 403
    assert browser.sender.sent == []
    assert (await browser.client.post("/logout")).status_code == 403
    assert (await browser.client.get("/v1/me")).status_code == 200  # still logged in
    taken = await browser.client.post(
        "/v1/reports", content=report_body(), headers=json | browser.csrf()
    )
    assert taken.status_code == 202, taken.text
    assert len(browser.sender.sent) == 1


async def test_a_bearer_header_wins_over_the_cookie(browser: Browser) -> None:
    _, token = browser.token(Role.SYSTEM)
    await browser.login(token)
    answer = await browser.client.post(
        "/v1/reports",
        content=report_body(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 202  # no CSRF header needed: not a cookie request


async def test_a_refused_login_says_why_as_text(browser: Browser) -> None:
    answer = await browser.login("<b>fbgw_customs_x_y</b>")
    assert answer.status_code == 401
    assert "<b>" not in answer.text.split('role="alert"')[1]
    assert "not a fusionbus gateway token" in answer.text
    assert "fbgw_session" not in browser.client.cookies
    other = await browser.login("fbgw_anf_abc_def")
    assert "another agency" in other.text


async def test_a_login_posted_from_another_origin_is_refused(browser: Browser) -> None:
    _, token = browser.token()
    answer = await browser.client.post(
        "/login", data={"token": token}, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403
    assert "fbgw_session" not in browser.client.cookies
    same = await browser.client.post(
        "/login", data={"token": token}, headers={"Origin": "http://127.0.0.1"}
    )
    assert same.status_code == 303


async def test_cookies_are_secure_off_loopback(browser: Browser) -> None:
    _, token = browser.token()
    answer = await browser.client.post(
        "http://gateway.customs.example/login", data={"token": token}
    )
    assert answer.status_code == 303
    for cookie in answer.headers.get_list("set-cookie"):
        assert "Secure" in cookie


async def test_a_session_ends_after_its_lifetime(tmp_path: Path) -> None:
    store = SessionStore(GatewayFiles(tmp_path, "customs"), timedelta(hours=1))
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    session = store.open("abc", now)
    found = store.find(session.id, now + timedelta(minutes=59))
    assert found is not None
    assert (found.token_id, found.expires_at) == ("abc", now + timedelta(hours=1))
    assert csrf_matches(found, session.csrf)
    assert not csrf_matches(found, session.id)
    assert store.find(session.id, now + timedelta(hours=1)) is None
    assert store.find(session.csrf, now) is None  # the CSRF secret is not a session id
    store.open("def", now + timedelta(hours=2))
    assert len(store) == 1  # expired sessions are dropped as new ones open
    store.close()


async def test_a_session_survives_a_restart_and_its_file_opens_none(tmp_path: Path) -> None:
    files = GatewayFiles(tmp_path, "customs")
    now = datetime(2026, 12, 1, 9, tzinfo=UTC)
    first = SessionStore(files)
    session = first.open("abc", now)
    first.close()
    again = SessionStore(files)  # the gateway restarted
    found = again.find(session.id, now)
    assert found is not None
    assert found.token_id == "abc"
    assert csrf_matches(found, session.csrf)
    stored = (
        files.sessions.read_bytes() + files.sessions.with_name("sessions.sqlite-wal").read_bytes()
    )
    for secret in (session.id, session.csrf):  # only digests are kept
        assert secret.encode() not in stored
    assert oct(files.sessions.stat().st_mode & 0o777) == "0o600"
    again.end(session.id)
    assert again.find(session.id, now) is None
    again.close()
