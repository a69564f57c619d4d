"""The agency gateway over real HTTP on the session's Kafka, run as an operator runs it.

Two gateways run as ``fusionbus gateway`` subprocesses on free ports: one for the sending
agency (it seals and publishes what is POSTed to it) and one for the receiving agency (its
subscriber opens what arrives and serves it). Tokens come from ``fusionbus gateway token
create``. Each module run makes its own agencies (fresh ids, so fresh topics) with
narcotics granted in Balochistan (PK-BA) to the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
import pytest
from httpx_sse import aconnect_sse
from prometheus_client.parser import text_string_to_metric_families

from broker.federation import Federation
from broker.home import write_config
from broker.kafka import ClusterState
from broker.topics import report_topic
from schemas import example_report
from tests.integration.cli_helpers import CLI, clean_env, failed, produce, run_cli

pytestmark = pytest.mark.asyncio(loop_scope="function")

PLACE = "PKGWD"  # Gwadar, in PK-BA


@dataclass
class Running:
    url: str
    process: subprocess.Popen[str]
    log: Path
    err: IO[str]


@dataclass
class World:
    home: Path
    sender: str
    receiver: str
    out: Running
    inbox: Running
    env: dict[str, str]

    def token(self, agency: str, role: str) -> str:
        result = run_cli(
            "gateway", "token", "create", "--agency", agency, "--role", role, "--home",
            str(self.home), env=self.env,
        )  # fmt: skip
        assert result.returncode == 0, failed(result)
        return result.stdout.splitlines()[-1]


def start_gateway(home: Path, agency: str, env: dict[str, str], log: Path) -> Running:
    """``fusionbus gateway --agency ID --listen 127.0.0.1:0``; its URL (the last stdout line)."""
    err = log.open("w")
    process = subprocess.Popen(
        [*CLI, "gateway", "--agency", agency, "--home", str(home), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=err, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("http://"):
                return Running(line.strip(), process, log, err)
            if not line:
                break
    process.kill()
    process.wait()
    process.stdout.close()
    err.close()
    pytest.fail(f"the gateway of {agency} did not start:\n{log.read_text()[-3000:]}")


def stop(running: Running) -> None:
    running.process.terminate()
    try:
        running.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        running.process.kill()
        running.process.wait()
    if running.process.stdout is not None:
        running.process.stdout.close()
    running.err.close()


@contextlib.contextmanager
def gateway_pair(
    kafka: ClusterState,
    base: Path,
    prefix: str,
    *,
    category: str,
    area: str,
    env: dict[str, str],
) -> Iterator[World]:
    """Two agencies in one home, ``<prefix>out<tag>`` and ``<prefix>in<tag>`` (granted
    ``category`` in ``area``), each with its gateway running, for the block."""
    home = base / "home"
    tag = uuid.uuid4().hex[:6]
    sender, receiver = f"{prefix}out{tag}", f"{prefix}in{tag}"
    now = datetime.now(UTC).replace(microsecond=0)
    federation = Federation.init(home, now=now)
    federation.add_agency(sender, "Sending agency", now=now)
    federation.add_agency(receiver, "Receiving agency", now=now)
    federation.grant(receiver, categories=[category], jurisdictions=[area], now=now)
    write_config(home, kafka.bootstrap, secure=False, by="tests/integration/test_gateway.py")
    out = start_gateway(home, sender, env, base / "out.log")
    try:
        inbox = start_gateway(home, receiver, env, base / "inbox.log")
    except BaseException:
        stop(out)
        raise
    try:
        yield World(home, sender, receiver, out, inbox, env)
    finally:
        stop(out)
        stop(inbox)


@pytest.fixture(scope="module")
def world(kafka: ClusterState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    env = clean_env(
        FUSIONBUS_GATEWAY_FEED_SEND_TIMEOUT_S="2", FUSIONBUS_GATEWAY_FEED_HEARTBEAT_S="1"
    )
    base = tmp_path_factory.mktemp("gateway")
    with gateway_pair(kafka, base, "gw", category="narcotics", area="PK-BA", env=env) as world:
        yield world


def report(**changes: Any) -> dict[str, Any]:
    document = example_report("narcotics", PLACE).model_dump(mode="json")
    for name in ("message_id", "created_at", "sender"):
        del document[name]
    document["handling"]["named_recipients"] = []  # it names anf, not in this federation
    return document | changes


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def ready(client: httpx.AsyncClient, url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if (await client.get(f"{url}/readyz")).status_code == 200:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"{url} never became ready")


async def received_ids(
    client: httpx.AsyncClient, url: str, token: str, want: set[str], *, deadline_s: float = 60
) -> list[str]:
    """Every message id the gateway at ``url`` lists (all pages), once ``want`` are there."""
    deadline = time.monotonic() + deadline_s
    while True:
        ids: list[str] = []
        cursor = None
        while True:
            params: dict[str, str] = {"category": "narcotics", "limit": "1000"}
            if cursor:
                params["cursor"] = cursor
            page = (
                await client.get(f"{url}/v1/reports", params=params, headers=bearer(token))
            ).json()
            ids += [item["header"]["message_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if not page["items"]:
                break
        if want <= set(ids) or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.3)


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:fusionbus:problem:{kind}"
    return body


async def test_ingest_is_idempotent_and_refuses_bad_tokens_and_input(  # noqa: PLR0915 - one story
    world: World,
) -> None:
    system = world.token(world.sender, "system")
    viewer = world.token(world.sender, "viewer")
    gone = world.token(world.sender, "operator")
    reader = world.token(world.receiver, "viewer")
    gone_id = gone.split("_")[2]
    revoked = run_cli(
        "gateway", "token", "revoke", gone_id, "--agency", world.sender, "--home", str(world.home),
        env=world.env,
    )  # fmt: skip
    assert revoked.returncode == 0, failed(revoked)
    listed = run_cli(
        "gateway", "token", "list", "--agency", world.sender, "--json", "--home", str(world.home),
        env=world.env,
    )  # fmt: skip
    rows = {r["id"]: r for r in map(orjson.loads, listed.stdout.splitlines())}
    assert rows[gone_id]["revoked_at"] is not None
    assert system.split("_", 3)[3] not in listed.stdout  # no secret is ever shown again

    url = world.out.url
    async with httpx.AsyncClient(timeout=60) as client:
        await ready(client, url)
        await ready(client, world.inbox.url)
        # Auth refusals: no token, another agency's token, a revoked token, a wrong role.
        body = orjson.dumps(report())
        json = {"Content-Type": "application/json"}
        problem(
            await client.post(f"{url}/v1/reports", content=body, headers=json), 401, "token-missing"
        )
        problem(
            await client.post(f"{url}/v1/reports", content=body, headers=json | bearer(reader)),
            401, "token-wrong-agency",
        )  # fmt: skip
        problem(
            await client.post(f"{url}/v1/reports", content=body, headers=json | bearer(gone)),
            401, "token-revoked",
        )  # fmt: skip
        problem(
            await client.post(f"{url}/v1/reports", content=body, headers=json | bearer(viewer)),
            403, "forbidden-role",
        )  # fmt: skip

        # One report, retried with its key: one publication, the first answer twice.
        headers = json | bearer(system) | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        first = await client.post(f"{url}/v1/reports", content=body, headers=headers)
        assert first.status_code == 202, first.text
        single = first.json()["message_id"]
        retry = await client.post(f"{url}/v1/reports", content=body, headers=headers)
        assert (retry.status_code, retry.content) == (202, first.content)
        other = orjson.dumps(report(title="Another report entirely"))
        problem(
            await client.post(f"{url}/v1/reports", content=other, headers=headers),
            422,
            "idempotency-key-reused",
        )
        status = await client.get(url + first.headers["location"], headers=bearer(system))
        assert status.json()["status"] == "published"
        assert status.json()["recipients"] >= 1

        # A big batch, retried while the first request is still being sealed and sent.
        batch = orjson.dumps([report() for _ in range(300)])
        key = json | bearer(system) | {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        # Whichever request arrives first does the work; the others, sent while it is in
        # flight, are refused with 409; once it is done, a retry gets its answer.
        original = asyncio.ensure_future(
            client.post(f"{url}/v1/reports:batch", content=batch, headers=key)
        )
        answers = []
        while not original.done():
            answers.append(await client.post(f"{url}/v1/reports:batch", content=batch, headers=key))
        answers.append(await original)
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {202, 409}, statuses
        for answer in answers:
            if answer.status_code == 409:
                problem(answer, 409, "idempotency-key-in-flight")
        [answered, *replays] = [a for a in answers if a.status_code == 202]
        assert all(r.content == answered.content for r in replays)
        replay = await client.post(f"{url}/v1/reports:batch", content=batch, headers=key)
        assert replay.content == answered.content
        assert all(r["status"] == "published" for r in answered.json()["reports"])
        batch_ids = [r["message_id"] for r in answered.json()["reports"]]

        # Bad input: a problem naming the field, the size limit.
        bad = report()
        bad["handling"]["tlp"] = "TLP:PURPLE"
        wrong = await client.post(
            f"{url}/v1/reports", content=orjson.dumps(bad), headers=json | bearer(system)
        )
        errors = problem(wrong, 422, "invalid-report")["errors"]
        assert [e["pointer"] for e in errors] == ["/handling/tlp"]
        assert "TLP:PURPLE" in errors[0]["detail"]
        huge = orjson.dumps(report(title="x" * 2_000_000))
        problem(
            await client.post(f"{url}/v1/reports", content=huge, headers=json | bearer(system)),
            413,
            "body-too-large",
        )

        # The receiving agency's gateway holds each report exactly once.
        want = {single, *batch_ids}
        ids = await received_ids(client, world.inbox.url, reader, want)
        mine = [i for i in ids if i in want]
        assert sorted(mine) == sorted(want)
        detail = await client.get(f"{world.inbox.url}/v1/reports/{single}", headers=bearer(reader))
        assert detail.json()["report"]["title"] == report()["title"]
        assert detail.json()["header"]["sender"] == world.sender

    access = world.out.log.read_text()
    assert system not in access
    assert system.split("_", 3)[3] not in access
    assert report()["narrative"][:30] not in access  # no report content in the logs
    assert '"event": "http.request"' in access or "http.request" in access


async def feed_until(
    client: httpx.AsyncClient,
    url: str,
    token: str,
    *,
    params: dict[str, str],
    headers: dict[str, str] | None = None,
    stop_after: int | None = None,
    done: Callable[[list[str]], bool] = lambda _: False,
    seen: list[str],
) -> str | None:
    """Read the feed, appending each report's id to ``seen``; leave mid-stream after
    ``stop_after`` reports or once ``done(seen)``; return the last event id."""
    last = None
    got = 0
    async with aconnect_sse(
        client, "GET", f"{url}/v1/feed", params=params, headers=bearer(token) | (headers or {})
    ) as source:
        async for event in source.aiter_sse():
            assert event.event in {"report", "heartbeat"}, event
            last = event.id or last
            if event.event == "report":
                seen.append(orjson.loads(event.data)["header"]["message_id"])
                got += 1
            if (stop_after is not None and got >= stop_after) or done(seen):
                return last
    return last


async def publish_all(
    client: httpx.AsyncClient, world: World, token: str, count: int, *, pause_s: float = 0.3
) -> list[str]:
    """POST ``count`` reports in batches of 250; their message ids."""
    ids: list[str] = []
    for start in range(0, count, 250):
        documents = [report() for _ in range(min(250, count - start))]
        answer = await client.post(
            f"{world.out.url}/v1/reports:batch",
            content=orjson.dumps(documents),
            headers=bearer(token) | {"Content-Type": "application/json"},
        )
        assert answer.status_code == 202, answer.text
        ids += [r["message_id"] for r in answer.json()["reports"]]
        await asyncio.sleep(pause_s)  # readers read while reports still arrive
    return ids


async def test_the_feed_resumes_by_header_and_by_parameter_losing_and_repeating_nothing(
    world: World,
) -> None:
    system = world.token(world.sender, "system")
    viewer = world.token(world.receiver, "viewer")
    # Only this test's reports are after `since` (the receiver is sealed to by this module only).
    params = {
        "since": datetime.now(UTC).isoformat(),
        "category": "narcotics",
        "jurisdiction": "PK-BA",
    }
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=30)) as client:
        await ready(client, world.out.url)
        await ready(client, world.inbox.url)
        publishing = asyncio.ensure_future(publish_all(client, world, system, 1000))
        url = world.inbox.url
        seen: list[str] = []
        last = await feed_until(client, url, viewer, params=params, stop_after=300, seen=seen)
        assert last is not None
        last = await feed_until(
            client, url, viewer, params=params, headers={"Last-Event-ID": last},
            stop_after=350, seen=seen,
        )  # fmt: skip
        assert last is not None
        published = set(await publishing)
        await asyncio.wait_for(
            feed_until(
                client,
                url,
                viewer,
                params=params | {"last_event_id": last},
                done=lambda ids: published <= set(ids),
                seen=seen,
            ),
            timeout=120,
        )
    assert len(seen) == len(set(seen)), "a report was sent twice"
    assert set(seen) == published


async def test_a_stalled_reader_is_cut_off_while_another_keeps_flowing(world: World) -> None:
    system = world.token(world.sender, "system")
    viewer = world.token(world.receiver, "viewer")
    params = {"since": datetime.now(UTC).isoformat(), "category": "narcotics"}
    host, port = world.inbox.url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(timeout=httpx.Timeout(60, read=30)) as client:
        await ready(client, world.inbox.url)
        before = (await client.get(f"{world.inbox.url}/v1/stats", headers=bearer(viewer))).json()
        # The stalled reader: a socket with a tiny receive buffer that reads the response
        # head and then nothing.
        stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((host, int(port)))
        query = str(httpx.QueryParams(params))
        stalled.sendall(
            f"GET /v1/feed?{query} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            f"Authorization: Bearer {viewer}\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += await asyncio.to_thread(stalled.recv, 1)
        assert head.startswith(b"HTTP/1.1 200"), head

        publishing = asyncio.ensure_future(publish_all(client, world, system, 750, pause_s=0))
        seen: list[str] = []
        flowing = asyncio.ensure_future(
            feed_until(client, world.inbox.url, viewer, params=params, seen=seen,
                       done=lambda ids: publishing.done() and set(publishing.result()) <= set(ids))
        )  # fmt: skip
        published = set(await publishing)
        await asyncio.wait_for(flowing, timeout=120)
        assert set(seen) == published
        assert len(seen) == len(published)

        # The stalled one was disconnected: only the reader's own connection is left...
        deadline = time.monotonic() + 30
        while True:
            stats = (await client.get(f"{world.inbox.url}/v1/stats", headers=bearer(viewer))).json()
            if stats["feed_clients"] == before["feed_clients"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert stats["feed_clients"] == before["feed_clients"]
        # ...and reading it now yields what had been buffered, then the end of the stream.
        stalled.settimeout(10)
        rest = b""
        while chunk := await asyncio.to_thread(stalled.recv, 65536):
            rest += chunk
        stalled.close()
        assert rest.count(b"event: report") < len(published)
    assert "feed.disconnected" in world.inbox.log.read_text()


async def test_a_named_recipient_outside_its_grants_is_refused_never_dropped(
    world: World,
) -> None:
    system = world.token(world.sender, "system")
    reader = world.token(world.receiver, "viewer")
    url = world.out.url
    headers = {"Content-Type": "application/json"} | bearer(system)
    # The receiver holds narcotics in PK-BA only; Karachi (PK-SD) is outside its grants.
    outside = report(jurisdiction="PKKHI", location=None)
    outside["handling"]["named_recipients"] = [world.receiver]
    unknown = report()
    unknown["handling"]["named_recipients"] = ["nobody"]
    inside = report()
    inside["handling"]["named_recipients"] = [world.receiver]
    async with httpx.AsyncClient(timeout=60) as client:
        await ready(client, url)
        await ready(client, world.inbox.url)
        refused = await client.post(
            f"{url}/v1/reports", content=orjson.dumps(outside), headers=headers
        )
        body = problem(refused, 422, "recipient-not-entitled")
        assert body["title"] == "A named recipient may not receive this report"
        grant = f"fusionbus agency grant {world.receiver} --category narcotics --jurisdiction PKKHI"
        assert grant in body["detail"]
        assert "remove it from named_recipients" in body["detail"]
        for tlp in ("TLP:GREEN", "TLP:CLEAR", "TLP:AMBER+STRICT"):
            outside["handling"]["tlp"] = tlp
            again = await client.post(
                f"{url}/v1/reports", content=orjson.dumps(outside), headers=headers
            )
            problem(again, 422, "recipient-not-entitled")
        nobody = await client.post(
            f"{url}/v1/reports", content=orjson.dumps(unknown), headers=headers
        )
        assert (
            "'nobody' is not in the federation directory"
            in problem(nobody, 422, "recipient-not-entitled")["detail"]
        )

        accepted = await client.post(
            f"{url}/v1/reports", content=orjson.dumps(inside), headers=headers
        )
        assert accepted.status_code == 202, accepted.text
        sent = accepted.json()["message_id"]
        ids = await received_ids(client, world.inbox.url, reader, {sent})
        assert ids.count(sent) == 1


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_readiness_and_stats_follow_deliveries_and_quarantine(
    world: World, kafka: ClusterState
) -> None:
    system = world.token(world.sender, "system")
    scraper = world.token(world.receiver, "viewer")
    async with httpx.AsyncClient(timeout=60) as client:
        await ready(client, world.out.url)
        await ready(client, world.inbox.url)
        posted = await client.post(
            f"{world.out.url}/v1/reports", content=orjson.dumps(report()),
            headers=bearer(system) | {"Content-Type": "application/json"},
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        message_id = posted.json()["message_id"]
        assert message_id in await received_ids(client, world.inbox.url, scraper, {message_id})
        # Not an envelope, on a topic the receiver follows: quarantined as malformed.
        topic = report_topic(world.sender, PLACE, "narcotics")
        await produce(kafka.bootstrap, topic, [(b"k", b"this is not an envelope")])
        deadline = time.monotonic() + 60
        while True:
            stats = await client.get(f"{world.inbox.url}/v1/stats", headers=bearer(scraper))
            quarantined = stats.json()["quarantined"]["by_reason"]
            if quarantined.get("malformed", 0) >= 1 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.3)
        assert quarantined.get("malformed", 0) >= 1, stats.json()
        subscriber = stats.json()["subscriber"]
        assert subscriber["connected"] is True
        assert isinstance(subscriber["lag"], int)

        readiness = (await client.get(f"{world.inbox.url}/readyz")).json()
        assert readiness["checks"] == {
            "publisher": True, "subscriber": True, "lag": True, "directory": True,
        }  # fmt: skip
        assert 0 <= readiness["lag"] <= readiness["max_lag"] == 10_000

        problem(await client.get(f"{world.inbox.url}/metrics"), 401, "token-missing")
        scraped = await client.get(f"{world.inbox.url}/metrics", headers=bearer(scraper))
        assert scraped.status_code == 200, scraped.text
        inbox = metric_samples(scraped.text)
        p = "fusionbus_gateway_"
        assert inbox[(f"{p}reports_delivered_total", (("category", "narcotics"),))] >= 1
        assert inbox[(f"{p}end_to_end_latency_seconds_count", ())] >= 1
        assert inbox[(f"{p}quarantined_total", (("reason", "malformed"),))] >= 1
        assert inbox[(f"{p}subscriber_up", ())] == 1
        assert inbox[(f"{p}consumer_lag", ())] >= 0
        assert report()["title"] not in scraped.text
        sending = world.token(world.sender, "viewer")
        out = await client.get(f"{world.out.url}/metrics", headers=bearer(sending))
        published = metric_samples(out.text)
        assert published[(f"{p}reports_published_total", (("category", "narcotics"),))] >= 1
        assert published[(f"{p}ingest_requests_total", (("status", "202"),))] >= 1
