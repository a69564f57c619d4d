"""The operations surface in-process: /readyz with lag, /metrics, /v1/stats, the access log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from broker.config import KafkaSettings
from broker.errors import Reason
from broker.federation import DirectorySnapshot
from consumers import Source
from gateway.app import create_app
from gateway.service import Gateway
from gateway.settings import load_settings
from gateway.tokens import Role
from tests.unit.gateway.conftest import delivery
from tests.unit.gateway.test_app import FakeSender, World, is_problem, report_body

pytestmark = pytest.mark.asyncio


class FakeSubscriber:
    def __init__(self, lag: int | None, *, consuming: bool = True) -> None:
        self.behind = lag
        self.consuming = consuming

    def lag(self) -> int | None:
        return self.behind


def gateway_in(home: Path) -> Gateway:
    settings = load_settings(home, ready_max_lag=100)
    gateway = Gateway(home, "customs", settings, KafkaSettings())
    gateway.sender = FakeSender()
    return gateway


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    gateway = gateway_in(tmp_path / "home")
    transport = httpx.ASGITransport(app=create_app(gateway, kafka=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert isinstance(gateway.sender, FakeSender)
        yield World(gateway, client, gateway.sender)
    gateway.close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, by (name, sorted labels)."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_readiness_needs_a_known_and_bounded_lag(world: World) -> None:
    gateway = world.gateway
    gateway.subscribing = True
    gateway.directory = DirectorySnapshot.of_keys(())  # directory files
    gateway.subscriber = FakeSubscriber(None)  # running, nothing fetched yet
    body = is_problem(await world.client.get("/readyz"), 503, "not-ready")
    assert body["checks"] == {
        "publisher": True,
        "subscriber": True,
        "lag": False,
        "directory": True,
    }
    assert (body["lag"], body["max_lag"]) == (None, 100)
    gateway.subscriber = FakeSubscriber(101)
    body = is_problem(await world.client.get("/readyz"), 503, "not-ready")
    assert body["checks"] == {
        "publisher": True,
        "subscriber": True,
        "lag": False,
        "directory": True,
    }
    assert body["lag"] == 101
    gateway.subscriber = FakeSubscriber(100)
    ready = (await world.client.get("/readyz")).json()
    assert ready == {
        "status": "ready",
        "checks": {"publisher": True, "subscriber": True, "lag": True, "directory": True},
        "lag": 100,
        "max_lag": 100,
    }
    gateway.subscriber = None  # no grants: nothing to follow, nothing behind
    assert (await world.client.get("/readyz")).json()["lag"] == 0


async def test_metrics_need_a_reading_token(world: World) -> None:
    is_problem(await world.client.get("/metrics"), 401, "token-missing")
    bad = {"Authorization": "Bearer fbgw_customs_0123456789ab_c2VjcmV0"}
    is_problem(await world.client.get("/metrics", headers=bad), 401, "token-unknown")
    for role in (Role.VIEWER, Role.SYSTEM, Role.OPERATOR):
        response = await world.client.get("/metrics", headers=world.token(role))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")


async def test_metrics_count_what_the_gateway_does_and_carry_no_report_text(
    world: World,
) -> None:
    gateway = world.gateway
    system = world.token(Role.SYSTEM)
    for _ in range(2):
        posted = await world.client.post("/v1/reports", content=report_body(), headers=system)
        assert posted.status_code == 202, posted.text
    bad = await world.client.post("/v1/reports", content=b"{", headers=system)
    assert bad.status_code == 400
    now = datetime.now(UTC)
    received = delivery("arms", now=now - timedelta(seconds=3))
    await gateway._receive(received)
    await gateway._receive(received)  # a redelivery is stored once, counted once
    where = Source("t", 0, 7, 0)
    await gateway._rejected(where, str(Reason.BAD_SIGNATURE), "the signature does not verify")
    await gateway._rejected(where, str(Reason.BAD_SIGNATURE), "again")
    await gateway._rejected(where, "something-new", "not a reason code")
    gateway.subscriber = FakeSubscriber(42)

    text = (await world.client.get("/metrics", headers=world.token(Role.VIEWER))).text
    got = samples(text)
    p = "fusionbus_gateway_"
    category = world.sender.sent[0].category
    assert got[(f"{p}reports_published_total", (("category", category),))] == 2
    assert got[(f"{p}reports_delivered_total", (("category", "arms"),))] == 1
    assert got[(f"{p}quarantined_total", (("reason", "bad_signature"),))] == 2
    assert got[(f"{p}quarantined_total", (("reason", "other"),))] == 1
    assert got[(f"{p}quarantined_total", (("reason", "replay"),))] == 0  # every reason, from 0
    assert got[(f"{p}ingest_requests_total", (("status", "202"),))] == 2
    assert got[(f"{p}ingest_requests_total", (("status", "400"),))] == 1
    latency = f"{p}end_to_end_latency_seconds"
    assert got[(f"{latency}_count", ())] == 1
    assert got[(f"{latency}_bucket", (("le", "2.5"),))] == 0  # three seconds old
    assert got[(f"{latency}_bucket", (("le", "5.0"),))] == 1
    assert got[(f"{p}consumer_lag", ())] == 42
    assert got[(f"{p}subscriber_up", ())] == 1
    assert got[(f"{p}feed_clients", ())] == 0
    for secret in (
        received.report.title,
        received.report.narrative,
        str(received.header.message_id),
    ):
        assert secret not in text
    labels = {k for (_, pairs) in got for k, _ in pairs}
    assert labels <= {"category", "reason", "status", "le"}
    assert gateway.quarantined == {"bad_signature": 2, "something-new": 1}


async def test_an_unknown_lag_is_no_sample_and_gateways_keep_their_own_counts(
    world: World, tmp_path: Path
) -> None:
    other = gateway_in(tmp_path / "other")
    try:
        await other._rejected(Source("t", 0, 0, 0), str(Reason.MALFORMED), "")
        theirs = samples(other.metrics.exposition()[0].decode())
        assert theirs[("fusionbus_gateway_quarantined_total", (("reason", "malformed"),))] == 1
        assert ("fusionbus_gateway_consumer_lag", ()) not in theirs  # not running: unknown
    finally:
        other.close()
    ours = samples((await world.client.get("/metrics", headers=world.token(Role.VIEWER))).text)
    assert ours[("fusionbus_gateway_quarantined_total", (("reason", "malformed"),))] == 0


async def test_stats_say_connection_lag_and_quarantine_by_reason(world: World) -> None:
    gateway = world.gateway
    viewer = world.token(Role.VIEWER)
    body = (await world.client.get("/v1/stats", headers=viewer)).json()
    assert body == {
        "feed_clients": 0,
        "received": 0,
        "outbox": {
            "queued": 0, "oldest_accepted_at": None, "oldest_age_s": 0.0, "expired": 0,
            "failed": 0,
        },
        "subscriber": {"connected": False, "lag": None},
        "quarantined": {"total": 0, "by_reason": {}},
    }  # fmt: skip
    gateway.subscriber = FakeSubscriber(3)
    for reason in (Reason.REPLAY, Reason.EXPIRED, Reason.REPLAY):
        await gateway._rejected(Source("t", 0, 0, 0), str(reason), "")
    await gateway._receive(delivery())
    body = (await world.client.get("/v1/stats", headers=viewer)).json()
    assert body["subscriber"] == {"connected": True, "lag": 3}
    assert body["quarantined"] == {"total": 3, "by_reason": {"expired": 1, "replay": 2}}
    assert body["received"] == 1


async def test_the_access_log_has_no_query_values_bodies_or_tokens(world: World) -> None:
    system = world.token(Role.SYSTEM)
    body = report_body(title="Shipment of heroin at berth seven")
    with capture_logs() as logs:
        await world.client.post("/v1/reports", content=body, headers=system)
        await world.client.get(
            "/v1/reports", params={"category": "narcotics", "since": "2026-01-01T00:00Z"},
            headers=system,
        )  # fmt: skip
    lines = [entry for entry in logs if entry["event"] == "http.request"]
    assert [(e["method"], e["path"], e["status"]) for e in lines] == [
        ("POST", "/v1/reports", 202),
        ("GET", "/v1/reports", 200),
    ]
    assert set(lines[0]) == {
        "event", "log_level", "method", "path", "status", "bytes", "ms", "token", "role", "client",
    }  # fmt: skip
    assert lines[0]["role"] == "system"
    secret = system["Authorization"].removeprefix("Bearer ")
    everything = repr(logs)
    for leak in ("heroin", "berth", "narcotics", "2026-01-01", secret):
        assert leak not in everything
