"""Notices on real Kafka, through the CLI and the gateways as users run them: a retraction
reaches every original recipient (one of them offline meanwhile, its grant taken back) and
nobody else, each answers ``applied``; a purge leaves no copy in a recipient's store; a
supersession marks the original; a non-originator's notice is refused and quarantined.
"""

from __future__ import annotations

import asyncio
import functools
import re
import shlex
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from broker.envelope import Routing
from broker.federation import Federation
from broker.home import kafka_settings, write_config
from broker.kafka import ClusterState
from producers import FeedbackSender, Published
from schemas import Notice, NoticeAction
from tests.integration.cli_helpers import clean_env, failed, run_cli
from tests.integration.test_gateway import Running, bearer, ready, report, start_gateway, stop

pytestmark = pytest.mark.asyncio(loop_scope="function")

JSON = {"Content-Type": "application/json"}


@dataclass
class Site:
    home: Path
    base: Path
    out: str
    r1: str
    r2: str
    bystander: str
    env: dict[str, str]

    def cli(self, *args: str, stdin: str | None = None) -> Any:
        return run_cli(*args, "--home", str(self.home), stdin=stdin, env=self.env)

    def token(self, agency: str, role: str) -> str:
        result = self.cli("gateway", "token", "create", "--agency", agency, "--role", role)
        assert result.returncode == 0, failed(result)
        return str(result.stdout.splitlines()[-1])

    def publish(self, title: str) -> str:
        result = self.cli(
            "publish", "--agency", self.out, "-", stdin=orjson.dumps(report(title=title)).decode()
        )
        assert result.returncode == 0, failed(result)
        return str(result.stdout.split()[-1])

    def gateway(self, agency: str) -> Running:
        return start_gateway(self.home, agency, self.env, self.base / f"{agency}.log")


@pytest.fixture(scope="module")
def site(kafka: ClusterState, tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("notices")
    home = base / "home"
    tag = uuid.uuid4().hex[:6]
    world = Site(home, base, f"ntout{tag}", f"ntone{tag}", f"nttwo{tag}", f"ntby{tag}", clean_env())
    now = datetime.now(UTC).replace(microsecond=0)
    federation = Federation.init(home, now=now)
    for agency in (world.out, world.r1, world.r2, world.bystander):
        federation.add_agency(agency, f"Agency {agency}", now=now)
    for agency in (world.r1, world.r2):
        federation.grant(agency, categories=["narcotics"], jurisdictions=["PK-BA"], now=now)
    federation.grant(world.bystander, categories=["narcotics"], jurisdictions=["PK-SD"], now=now)
    write_config(home, kafka.bootstrap, secure=False, by="tests/integration/test_notices.py")
    return world


async def until(what: str, probe: Callable[[], Any], *, deadline_s: float = 90) -> Any:
    deadline = time.monotonic() + deadline_s
    while True:
        found = await probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.3)


async def stored(
    client: httpx.AsyncClient, gw: Running, token: str, message_id: str
) -> httpx.Response:
    return await client.get(f"{gw.url}/v1/reports/{message_id}", headers=bearer(token))


def applied_by(site: Site, message_id: str) -> set[str]:
    result = site.cli("status", message_id, "--agency", site.out, "--json")
    assert result.returncode == 0, failed(result)
    rows = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {row["agency"] for row in rows if row["applied"]}


async def test_a_reports_life_after_publication(site: Site) -> None:  # noqa: PLR0915 - one story
    r1, r2 = site.gateway(site.r1), site.gateway(site.r2)
    out = site.gateway(site.out)
    try:
        t1, t2 = site.token(site.r1, "operator"), site.token(site.r2, "operator")
        system = site.token(site.out, "system")
        marker = f"purge-marker-{uuid.uuid4().hex}"
        a, b, c = site.publish("to be retracted"), site.publish(marker), site.publish("old")
        async with httpx.AsyncClient(timeout=60) as client:
            for gw in (r1, r2, out):
                await ready(client, gw.url)
            for gw, token in ((r1, t1), (r2, t2)):
                for message_id in (a, b, c):
                    await until(
                        f"{message_id} at {gw.url}",
                        functools.partial(_status_is, client, gw, token, message_id, 200),
                    )

            # A recipient's forged notice on the originator's report is refused.
            forged = await _forge_purge(site, a)
            assert set(forged) == {site.r2}
            assert isinstance(forged[site.r2], Published)
            await until("r2 quarantines the forged notice", lambda: _quarantined(client, r2, t2))
            kept = (await stored(client, r2, t2, a)).json()
            assert kept["state"] == "current"
            assert "report" in kept
            refused = site.cli("retract", a, "--agency", site.r1, "--reason", "mine now")
            assert refused.returncode == 1, failed(refused)
            assert f"not published by {site.r1}" in refused.stderr

            # r2 is offline and loses its grant; the retraction still reaches it.
            stop(r2)
            taken = site.cli(
                "agency", "ungrant", site.r2, "--category", "narcotics", "--jurisdiction", "PK-BA"
            )
            assert taken.returncode == 0, failed(taken)
            retracted = site.cli("retract", a, "--agency", site.out, "--reason", "wrong box")
            assert retracted.returncode == 0, failed(retracted)
            assert f"sent to {site.r1}." in retracted.stderr
            assert f"sent to {site.r2}." in retracted.stderr
            assert site.bystander not in retracted.stderr  # nobody else
            r2 = site.gateway(site.r2)
            await ready(client, r2.url)
            for gw, token in ((r1, t1), (r2, t2)):
                body = await until(
                    f"{a} retracted at {gw.url}",
                    functools.partial(_in_state, client, gw, token, a, "retracted"),
                )
                assert body["notice"]["reason"] == "wrong box"
                assert body["notice"]["sender"] == site.out
                assert "report" in body  # a retracted report stays listed, marked
            # Each original recipient answers applied; the originator's status shows it.
            await until("both applied", functools.partial(_applied_by, site, a, {site.r1, site.r2}))

            # Supersede: the original is marked, naming the correction.
            corrected = site.cli(
                "supersede", c, "--agency", site.out, "-",
                stdin=orjson.dumps(report(title="corrected")).decode(),
            )  # fmt: skip
            assert corrected.returncode == 0, failed(corrected)
            new_id = corrected.stdout.split()[0]
            body = await until(
                f"{c} superseded at r1", lambda: _in_state(client, r1, t1, c, "superseded")
            )
            assert body["notice"]["superseded_by"] == new_id
            # ... and again over HTTP, at the originator's gateway
            await until(
                f"{new_id} at r1", functools.partial(_status_is, client, r1, t1, new_id, 200)
            )
            again = await client.post(
                f"{out.url}/v1/reports/{new_id}/supersede",
                content=orjson.dumps({"report": report(title="twice"), "reason": "second fix"}),
                headers=bearer(system) | JSON,
            )
            assert again.status_code == 202, again.text
            assert [r["agency"] for r in again.json()["recipients"]] == [site.r1]
            body = await until(
                f"{new_id} superseded at r1",
                functools.partial(_in_state, client, r1, t1, new_id, "superseded"),
            )
            assert body["notice"]["superseded_by"] == again.json()["message_id"]
            assert body["notice"]["reason"] == "second fix"

            # Purge through the originator's gateway: gone from the recipients' stores.
            purged = await client.post(
                f"{out.url}/v1/reports/{b}/retract",
                content=orjson.dumps({"reason": "source at risk", "purge": True}),
                headers=bearer(system) | JSON,
            )
            assert purged.status_code == 202, purged.text
            assert {r["agency"] for r in purged.json()["recipients"]} == {site.r1, site.r2}
            for gw, token in ((r1, t1), (r2, t2)):
                await until(
                    f"{b} purged at {gw.url}",
                    functools.partial(_status_is, client, gw, token, b, 410),
                )
                page = await client.get(
                    f"{gw.url}/v1/reports", params={"limit": "1000"}, headers=bearer(token)
                )
                items = {i["header"]["message_id"]: i for i in page.json()["items"]}
                assert items[b]["purged"] is True
                assert "report" not in items[b]
                assert marker not in page.text
        # tail shows the originals marked, prints the notices, and never the purged one
        tailed = site.cli(
            "tail", "--agency", site.r1, "--from-beginning", "--exit-at-end", "--json"
        )
        assert tailed.returncode == 0, failed(tailed)
        lines = [orjson.loads(x) for x in tailed.stdout.splitlines() if x.startswith("{")]
        shown = {x["header"]["message_id"]: x for x in lines if "header" in x}
        assert shown[a]["notice"]["action"] == "retract"
        assert shown[c]["notice"]["action"] == "supersede"
        assert b not in shown
        assert marker not in tailed.stdout
        told = {(x["notice"]["report_id"], x["notice"]["action"]) for x in lines if "notice" in x}
        assert {(a, "retract"), (b, "purge"), (c, "supersede")} <= told
        # Every act is on the audit trail, and the trail is intact.
        await until("the audit trail of a", functools.partial(_audited, site, a))
        intact = site.cli("audit", "verify")
        assert intact.returncode == 0, failed(intact)
        async with httpx.AsyncClient(timeout=60) as client:  # the same, through a gateway
            life = await client.get(f"{r1.url}/v1/audit/reports/{a}", headers=bearer(t1))
            verified = await client.get(f"{r1.url}/v1/audit/verify", headers=bearer(t1))
        assert life.status_code == 200, life.text
        assert life.json()["intact"] is True
        acts = {(x["writer"], x["act"]) for x in life.json()["records"]}
        assert {(site.out, "retraction"), (site.r1, "applied")} <= acts
        assert verified.json()["intact"] is True, verified.text
        for agency in (site.r1, site.r2):
            folder = site.home / "gateway" / agency
            for path in folder.glob("received.sqlite*"):
                assert marker.encode() not in path.read_bytes(), path
    finally:
        for gw in (r1, r2, out):
            stop(gw)


async def _applied_by(site: Site, message_id: str, agencies: set[str]) -> bool:
    return applied_by(site, message_id) == agencies


async def _status_is(
    client: httpx.AsyncClient, gw: Running, token: str, message_id: str, code: int
) -> bool:
    return (await stored(client, gw, token, message_id)).status_code == code


async def _in_state(
    client: httpx.AsyncClient, gw: Running, token: str, message_id: str, state: str
) -> dict[str, Any] | None:
    answer = await stored(client, gw, token, message_id)
    body: dict[str, Any] = answer.json()
    return body if answer.status_code == 200 and body.get("state") == state else None


async def _quarantined(client: httpx.AsyncClient, gw: Running, token: str) -> bool:
    stats = (await client.get(f"{gw.url}/v1/stats", headers=bearer(token))).json()
    count: int = stats["quarantined"]["by_reason"].get("not_originator", 0)
    return count > 0


async def _forge_purge(site: Site, report_id: str) -> dict[str, Any]:
    """r1 sends r2 a purge of the originator's report, as r1 (its own certificate)."""
    federation = Federation.load(site.home)
    settings = kafka_settings(site.home, None, agency=site.r1)
    notice = Notice(
        message_id=uuid.uuid4(), report_id=uuid.UUID(report_id), sender=site.r1,
        created_at=datetime.now(UTC), action=NoticeAction.PURGE, reason="forged",
    )  # fmt: skip
    async with FeedbackSender(federation.identity(site.r1), federation, settings) as sender:
        results = await sender.notify(
            notice, Routing("narcotics", "PKGWD", "IMMEDIATE", "TLP:AMBER"), [site.r2]
        )
    return dict(results)


async def test_the_documented_notice_commands_run_as_written(site: Site) -> None:
    """docs/cycle.md's notice commands, with this test's agencies, a report and a file."""
    doc = (Path(__file__).parents[2] / "docs" / "cycle.md").read_text(encoding="utf-8")
    block = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)[1]
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    assert [w[1] for w in commands] == ["retract", "retract", "supersede", "agency"]
    corrected = site.base / "corrected.json"
    corrected.write_text(orjson.dumps(report(title="corrected")).decode(), encoding="utf-8")
    names = {"customs": site.out, "anf": site.r1, "corrected.json": str(corrected)}
    for words in commands:
        ids = {"MESSAGE_ID": site.publish("documented")}
        args = [ids.get(w, names.get(w, w)) for w in words[1:] if w not in {"[--reason", "TEXT]"}]
        result = site.cli(*args)
        assert result.returncode == 0, f"{words}\n{failed(result)}"
        if args[0] in {"retract", "supersede"}:
            assert f"notice on {ids['MESSAGE_ID']} sent to {site.r1}." in result.stderr


async def test_a_forward_the_handling_limits_needs_the_originators_consent(site: Site) -> None:
    document = report(title="onward only with consent")
    document["handling"]["conditions"] = ["no_onward_dissemination"]
    published = site.cli(
        "publish", "--agency", site.out, "-", stdin=orjson.dumps(document).decode()
    )
    assert published.returncode == 0, failed(published)
    message_id = published.stdout.split()[-1]
    by = site.gateway(site.bystander)  # not entitled to the report: it gets it only forwarded
    try:
        doc = (Path(__file__).parents[2] / "docs" / "cycle.md").read_text(encoding="utf-8")
        block = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)[2]  # docs/cycle.md, as written
        lines = [line for line in block.splitlines() if line.strip()]
        names = {"anf": site.r1, "fia": site.bystander, "customs": site.out}
        names["MESSAGE_ID"] = message_id
        results = []
        for number, line in enumerate(lines):
            words = shlex.split(line.split("#")[0])
            assert words[0] == "fusionbus"
            results.append(site.cli(*[names.get(w, w) for w in words[1:]]))
            if number == 1:  # the request reaches the originator before it answers
                await until(
                    "the request",
                    functools.partial(_forwards, site, message_id, "forward_requested"),
                )
        refused, asked, granted, sent = results
        assert refused.returncode == 1, failed(refused)
        assert "consent" in refused.stderr
        assert "--ask" in refused.stderr
        for result in (asked, granted, sent):
            assert result.returncode == 0, failed(result)
        await until("the forward told", functools.partial(_forwards, site, message_id, "forwarded"))
        shown = site.cli("status", message_id, "--agency", site.out)
        assert shown.returncode == 0, failed(shown)
        assert f"forward requested {site.bystander}" in shown.stdout
        assert f"forwarded {site.bystander}" in shown.stdout
        token = site.token(site.bystander, "operator")
        async with httpx.AsyncClient(timeout=60) as client:
            await ready(client, by.url)
            body = await until(
                "the forward at the bystander",
                functools.partial(_in_state, client, by, token, message_id, "current"),
            )
        assert body["forwarded_by"] == site.r1
        assert body["header"]["sender"] == site.out  # the originator's own signed header
        assert body["report"]["title"] == "onward only with consent"
        # The originator's retraction reaches the agency it was forwarded to, too; a
        # retracted report is not forwarded again.
        withdrawn = site.cli("retract", message_id, "--agency", site.out, "--reason", "stale")
        assert withdrawn.returncode == 0, failed(withdrawn)
        assert f"sent to {site.bystander}." in withdrawn.stderr
        async with httpx.AsyncClient(timeout=60) as client:
            await until(
                "the retraction at the bystander",
                functools.partial(_in_state, client, by, token, message_id, "retracted"),
            )
        again = site.cli("forward", message_id, "--agency", site.r1, "--to", site.bystander)
        assert again.returncode == 1, failed(again)
        assert "retracted" in again.stderr
        await _forward_over_http(site, by, token)
    finally:
        stop(by)


async def _forward_over_http(site: Site, by: Running, token: str) -> None:
    """The same acts through the gateways: a limited report refused, asked, consented
    to (by the originator's gateway) and forwarded (by the recipient's)."""
    document = report(title="over http, with consent")
    document["handling"]["conditions"] = ["no_onward_dissemination"]
    published = site.cli(
        "publish", "--agency", site.out, "-", stdin=orjson.dumps(document).decode()
    )
    assert published.returncode == 0, failed(published)
    message_id = published.stdout.split()[-1]
    r1, out = site.gateway(site.r1), site.gateway(site.out)
    try:
        t1, system = site.token(site.r1, "operator"), site.token(site.out, "system")
        url = f"{r1.url}/v1/reports/{message_id}/forward"
        async with httpx.AsyncClient(timeout=60) as client:
            for gw in (r1, out):
                await ready(client, gw.url)
            await until(
                "the report at r1", functools.partial(_status_is, client, r1, t1, message_id, 200)
            )
            to = orjson.dumps({"to": site.bystander})
            refused = await client.post(url, content=to, headers=bearer(t1) | JSON)
            assert refused.status_code == 422, refused.text
            assert refused.json()["type"].endswith("consent-required")
            bad = await client.post(url, content=b'{"to": "Nobody"}', headers=bearer(t1) | JSON)
            assert bad.status_code == 422, bad.text
            assert bad.json()["errors"][0]["pointer"] == "/to"
            ask = orjson.dumps({"to": site.bystander, "ask": True})
            asked = await client.post(url, content=ask, headers=bearer(t1) | JSON)
            assert asked.status_code == 202, asked.text
            answer = orjson.dumps({"forwarder": site.r1, "to": site.bystander, "reason": "agreed"})
            granted = await client.post(
                f"{out.url}/v1/reports/{message_id}/consent", content=answer,
                headers=bearer(system) | JSON,
            )  # fmt: skip
            assert granted.status_code == 202, granted.text

            async def forwarded() -> bool:
                sent = await client.post(url, content=to, headers=bearer(t1) | JSON)
                return sent.status_code == 202  # once r1's inbox reader kept the consent

            await until("the forward over http", forwarded)
            body = await until(
                "the http forward at the bystander",
                functools.partial(_in_state, client, by, token, message_id, "current"),
            )
            assert body["forwarded_by"] == site.r1
    finally:
        stop(r1)
        stop(out)


async def _forwards(site: Site, message_id: str, kind: str) -> bool:
    result = site.cli("status", message_id, "--agency", site.out, "--json")
    assert result.returncode == 0, failed(result)
    rows = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return any(
        f["kind"] == kind and f["forward_to"] == site.bystander
        for row in rows
        if row["agency"] == site.r1
        for f in row["forwards"]
    )


async def _audited(site: Site, report_id: str) -> bool:
    """Whether report ``report_id``'s life on the audit trail has its publish by the
    originator, the retraction, and each recipient's applied."""
    shown = site.cli("audit", "show", "--report", report_id, "--json")
    assert shown.returncode == 0, failed(shown)
    acts = {
        (row["writer"], row["act"])
        for row in (orjson.loads(x) for x in shown.stdout.splitlines() if x.startswith("{"))
    }
    wanted = {(site.out, "publish"), (site.out, "retraction")}
    wanted |= {(site.r1, "applied"), (site.r2, "applied")}
    return wanted <= acts
