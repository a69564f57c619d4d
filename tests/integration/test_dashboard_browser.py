"""The dashboard in headless Chromium, on two real gateways over the session's Kafka.

Debian's ``chromium`` (``/usr/bin/chromium``) driven by Playwright: an operator of the
receiving agency logs in through the form, a report posted over HTTP to the sending agency's
gateway appears in the table within two seconds, a filter changes the URL and the rows, and
the detail view shows hostile markup in the report as literal text, and a cut connection
(through a relay the test controls) is resumed with ``?last_event_id=`` without losing the
report posted meanwhile. The operator sends feedback from the detail view and the sending
gateway's status shows it; a viewer is not offered the form. Fresh agencies and their
own category and area (wildlife in Sindh, PK-SD). With ``FUSIONBUS_DASHBOARD_SCREENSHOT`` set
to a path (``docs/dashboard.png``) the screenshot is written there too.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from broker.kafka import ClusterState
from schemas import example_report
from tests.integration.cli_helpers import clean_env
from tests.integration.test_gateway import World as Gateways
from tests.integration.test_gateway import bearer, gateway_pair, ready

pytestmark = pytest.mark.asyncio(loop_scope="function")

CHROMIUM = Path("/usr/bin/chromium")
CATEGORY = "wildlife"
PLACE = "PKKHI"  # Karachi, in PK-SD
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


@pytest.fixture(scope="module")
def gateways(kafka: ClusterState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    env = clean_env(FUSIONBUS_GATEWAY_FEED_HEARTBEAT_S="1")
    base = tmp_path_factory.mktemp("dashboard")
    with gateway_pair(kafka, base, "dash", category=CATEGORY, area="PK-SD", env=env) as pair:
        yield pair


def need_chromium(path: Path) -> Path:
    """``path`` if Chromium is there; otherwise the test fails saying how to install it."""
    if not path.exists():
        pytest.fail(
            f"{path} is missing: the dashboard test drives Debian's Chromium. Install it "
            "with `apt-get update && apt-get install -y chromium` (as root; `./dev test` "
            "does it)"
        )
    return path


@pytest.fixture
def chromium() -> Path:
    return need_chromium(CHROMIUM)


async def test_a_missing_chromium_fails_with_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        need_chromium(tmp_path / "chromium")


@pytest_asyncio.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()


class Link:
    """A TCP relay between the browser and a gateway that the test can cut and mend, as a
    network would drop and restore the dashboard's connections."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.url = ""
        self.down = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Link:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *_: object) -> None:
        self.cut()
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
        for task in self._tasks:
            task.cancel()

    def cut(self) -> None:
        """Drop every open connection, and refuse new ones until :meth:`mend`."""
        self.down = True
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def mend(self) -> None:
        self.down = False

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.down:
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.transport.abort()
            self._writers.discard(sink)


def report(precedence: str, title: str, **changes: Any) -> dict[str, Any]:
    document = example_report(CATEGORY, PLACE).model_dump(mode="json")
    for name in ("message_id", "created_at", "sender"):
        del document[name]
    return document | {"precedence": precedence, "title": title} | changes


async def post(client: httpx.AsyncClient, url: str, token: str, body: dict[str, Any]) -> str:
    answer = await client.post(
        f"{url}/v1/reports",
        content=orjson.dumps(body),
        headers=bearer(token) | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 202, answer.text
    message_id: str = answer.json()["message_id"]
    return message_id


def row(page: Page, message_id: str) -> Any:
    return page.locator(f'tr[data-message-id="{message_id}"]')


async def test_an_operator_watches_filters_and_opens_reports_in_chromium(  # noqa: PLR0915 - one story
    gateways: Gateways, browser: Browser, tmp_path: Path
) -> None:
    system = gateways.token(gateways.sender, "system")
    operator = gateways.token(gateways.receiver, "operator")
    async with httpx.AsyncClient(timeout=60) as client, Link(gateways.inbox.url) as link:
        inbox = link.url
        await ready(client, gateways.out.url)
        await ready(client, gateways.inbox.url)
        page = await browser.new_page(viewport={"width": 1500, "height": 820})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # Not logged in: the dashboard sends the browser to the form; log in through it.
        await page.goto(f"{inbox}/")
        await expect(page).to_have_url(f"{inbox}/login")
        await page.fill("#token", operator)
        await page.click("button[type=submit]")
        await expect(page).to_have_url(f"{inbox}/")
        await expect(page.locator("#state")).to_have_text("live", timeout=10_000)
        await expect(page.locator("#who")).to_have_text(f"{gateways.receiver} · operator")

        # The first reports wait for the receiving gateway's subscriber to be assigned.
        early = {
            level: await post(client, gateways.out.url, system, report(level, title))
            for level, title in [
                ("ROUTINE", "Pangolin scales declared as fish meal"),
                ("PRIORITY", "Falcons in hand luggage, flight PK-301"),
                ("IMMEDIATE", "Ivory in a marble-tile container"),
            ]
        }
        for message_id in early.values():
            await expect(row(page, message_id)).to_be_visible(timeout=60_000)

        # The gateway's state: its subscriber connected, its lag and the quarantine counts.
        await expect(page.locator("#o-connected")).to_have_text("connected", timeout=10_000)
        lag = re.compile(r"^\d+ records?$")
        await expect(page.locator("#o-lag")).to_have_text(lag, timeout=10_000)
        stored = re.compile(r"^[1-9]\d*$")
        await expect(page.locator("#o-received")).to_have_text(stored, timeout=10_000)
        await expect(page.locator("#o-outbox")).to_have_text("empty")  # it sends nothing
        await expect(page.locator("#o-quarantined")).to_have_text("0")
        await expect(page.locator("#o-reason-rows td")).to_have_text(["none", "0"])

        # Now live: a report posted to the other agency's gateway shows within two seconds of
        # its acknowledgement (the 202 comes once Kafka has it).
        hostile = await post(
            client, gateways.out.url, system,
            report("FLASH", f"Turtles {HOSTILE}", narrative=f"Seen at berth 7. {HOSTILE}",
                   requested_action=f"Hold the container. {HOSTILE}"),
        )  # fmt: skip
        acknowledged = time.monotonic()
        await expect(row(page, hostile)).to_be_visible(timeout=2_000)
        print(f"\ndashboard: 202 -> row shown in {time.monotonic() - acknowledged:.2f} s")
        hostile_row = row(page, hostile)
        await expect(hostile_row.locator(".title")).to_have_text(f"Turtles {HOSTILE}")
        await expect(hostile_row.locator(".precedence")).to_have_text("FLASH")
        await expect(hostile_row).to_have_class("precedence-flash")
        await expect(hostile_row.locator("td").nth(1)).to_have_text(gateways.sender)
        await expect(hostile_row.locator("td").nth(3)).to_have_text("PKKHI")
        shown = await page.locator("#rows tr").count()
        assert shown == 4

        # A filter goes into the URL and to the feed.
        await page.select_option("#f-precedence", "FLASH")
        await page.click("#apply")
        await expect(page).to_have_url(f"{inbox}/?precedence=FLASH")
        await expect(row(page, hostile)).to_be_visible(timeout=10_000)
        await expect(row(page, early["ROUTINE"])).to_have_count(0)
        await expect(page.locator("#rows tr")).to_have_count(1)
        # It survives a reload: the page reads it back from the URL.
        await page.reload()
        await expect(page.locator("#f-precedence")).to_have_value("FLASH")
        await expect(row(page, hostile)).to_be_visible(timeout=10_000)
        await expect(page.locator("#rows tr")).to_have_count(1)
        await page.select_option("#f-precedence", "")
        await page.fill("#f-category", CATEGORY)
        await page.click("#apply")
        await expect(page).to_have_url(f"{inbox}/?category={CATEGORY}")
        await expect(page.locator("#rows tr")).to_have_count(4, timeout=10_000)

        # The detail view shows the hostile markup as text, and none of it ran.
        await row(page, hostile).click()
        detail = page.locator("#detail")
        await expect(detail).to_be_visible()
        await expect(page.locator("#d-title")).to_have_text(f"Turtles {HOSTILE}")
        await expect(page.locator("#d-narrative")).to_have_text(f"Seen at berth 7. {HOSTILE}")
        await expect(page.locator("#d-action")).to_have_text(f"Hold the container. {HOSTILE}")
        await expect(page.locator("#d-evaluation")).to_contain_text("source reliability")
        await expect(page.locator("#d-handling")).to_contain_text("TLP:")
        await expect(page.locator("#d-subjects li").first).to_be_visible()
        assert await page.locator("img, #detail script, #rows script").count() == 0
        assert await page.evaluate("window.__pwned") is None
        assert errors == []

        shot = tmp_path / "dashboard.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        keep = os.environ.get("FUSIONBUS_DASHBOARD_SCREENSHOT")
        if keep:
            shutil.copyfile(shot, keep)

        # Cut off, it says so, reconnects with the last event id and misses nothing.
        feeds: list[str] = []
        page.on("request", lambda r: feeds.append(r.url) if "/v1/feed" in r.url else None)
        link.cut()
        await expect(page.locator("#state")).to_contain_text("reconnecting", timeout=10_000)
        missed = await post(
            client, gateways.out.url, system, report("ROUTINE", "Parrots in crates")
        )
        await asyncio.sleep(1)
        link.mend()
        await expect(row(page, missed)).to_be_visible(timeout=15_000)
        await expect(page.locator("#state")).to_have_text("live")
        assert feeds, "the dashboard did not reconnect"
        assert all("last_event_id=" in url for url in feeds), feeds
        await expect(page.locator("#rows tr")).to_have_count(5)

        # A viewer sees a TLP:RED report's routing header only, and is told why not more.
        viewer = await browser.new_context()
        other = await viewer.new_page()
        await other.goto(f"{inbox}/login")
        await other.fill("#token", gateways.token(gateways.receiver, "viewer"))
        await other.click("button[type=submit]")
        await expect(other.locator("#state")).to_have_text("live", timeout=10_000)
        red = report("PRIORITY", "Named recipients only")
        red["handling"] = {"tlp": "TLP:RED", "named_recipients": [gateways.receiver]}
        secret = await post(client, gateways.out.url, system, red)
        await expect(row(page, secret).locator(".title")).to_have_text("Named recipients only")
        await expect(row(other, secret).locator(".title")).to_have_text("(redacted: TLP:RED)")
        await row(other, secret).click()
        await expect(other.locator("#d-title")).to_have_text(
            "This report's handling does not allow your role to read it"
        )
        await expect(other.locator("#d-narrative")).to_have_text("")
        await viewer.close()

        # Logging out ends the session: the dashboard sends the browser back to the form.
        await page.click("#logout")
        await expect(page).to_have_url(f"{inbox}/login")
        await page.goto(f"{inbox}/")
        await expect(page).to_have_url(f"{inbox}/login")


async def log_in(page: Page, url: str, token: str) -> None:
    await page.goto(f"{url}/login")
    await page.fill("#token", token)
    await page.click("button[type=submit]")
    await expect(page.locator("#state")).to_have_text("live", timeout=10_000)


async def acknowledged(
    client: httpx.AsyncClient, gateways: Gateways, token: str, message_id: str
) -> dict[str, Any]:
    """The receiver's ``acknowledged`` stage in the sending gateway's status, once there."""
    deadline = time.monotonic() + 90
    while True:
        answer = await client.get(
            f"{gateways.out.url}/v1/status/{message_id}", headers=bearer(token)
        )
        assert answer.status_code == 200, answer.text
        states = {s["agency"]: s for s in answer.json()["feedback"]}
        stage: dict[str, Any] | None = states.get(gateways.receiver, {}).get("acknowledged")
        if stage is not None:
            return stage
        assert time.monotonic() < deadline, f"no acknowledged stage: {answer.text}"
        await asyncio.sleep(0.3)


async def test_an_operator_sends_feedback_from_the_detail_view(  # noqa: PLR0915 - one story
    gateways: Gateways, browser: Browser
) -> None:
    system = gateways.token(gateways.sender, "system")
    async with httpx.AsyncClient(timeout=60) as client:
        await ready(client, gateways.out.url)
        await ready(client, gateways.inbox.url)
        context = await browser.new_context()
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await log_in(page, gateways.inbox.url, gateways.token(gateways.receiver, "operator"))
        title = "Saker falcons in a cargo hold"
        message_id = await post(client, gateways.out.url, system, report("PRIORITY", title))
        await expect(row(page, message_id)).to_be_visible(timeout=60_000)
        await row(page, message_id).click()
        await expect(page.locator("#d-title")).to_have_text(title)
        form = page.locator("#feedback")
        await expect(form).to_be_visible()
        await expect(form.locator("h3")).to_have_text("Feedback to the originator")

        # A seizure needs a unit with its quantity: the gateway's answer says so, as text.
        await page.select_option("#fb-outcome", "seizure")
        await expect(page.locator("#fb-quantity")).to_be_visible()
        await page.fill("#fb-quantity", "12")
        await page.click("#fb-send")
        result = page.locator("#fb-result")
        await expect(result).to_have_attribute("data-state", "failed")
        await expect(result).to_contain_text("quantity and unit together")

        # An outcome of "other" is not sent without a note; "acknowledged" is.
        await page.select_option("#fb-outcome", "other")
        await expect(page.locator("#fb-quantity")).to_be_hidden()
        await expect(page.locator("#fb-note")).to_have_attribute("required", "")
        await page.select_option("#fb-outcome", "acknowledged")
        await page.click("#fb-send")
        await expect(result).to_have_text(f"Sent acknowledged to {gateways.sender}.")
        await expect(result).to_have_attribute("data-state", "sent")
        sent = await result.get_attribute("data-feedback-id")
        assert errors == []

        # The originator's gateway shows the receiver's acknowledged stage.
        acked = await acknowledged(client, gateways, system, message_id)
        assert acked["message_id"] == sent
        await context.close()

        # ... and so does the originator's dashboard, among what it sent.
        context = await browser.new_context()
        origin = await context.new_page()
        await log_in(origin, gateways.out.url, gateways.token(gateways.sender, "viewer"))
        line = origin.locator(
            f'#sent-rows tr[data-message-id="{message_id}"] '
            f'.recipient[data-agency="{gateways.receiver}"] .said'
        )
        await expect(line).to_contain_text("received · acknowledged", timeout=20_000)
        await context.close()

        # A viewer reads the same report without being offered the form.
        context = await browser.new_context()
        other = await context.new_page()
        await log_in(other, gateways.inbox.url, gateways.token(gateways.receiver, "viewer"))
        await expect(row(other, message_id)).to_be_visible(timeout=10_000)
        await row(other, message_id).click()
        await expect(other.locator("#d-title")).to_have_text(title)
        await expect(other.locator("#detail")).to_have_attribute("data-message-id", message_id)
        await expect(other.locator("#d-narrative")).not_to_have_text("")
        await expect(other.locator("#feedback")).to_be_hidden()
        await context.close()
