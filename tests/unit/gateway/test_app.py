"""The HTTP API in-process (httpx over ASGI, no Kafka): auth, problems, idempotency, reads.

The publisher is a fake that records what it was asked to send; the received store is filled
directly. The same behaviour over real HTTP and Kafka is in tests/integration/test_gateway.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio

from broker.config import KafkaSettings
from broker.errors import DisseminationError, FusionbusError, TransportError
from broker.federation import DirectorySnapshot
from consumers import FeedbackDelivery, Source
from gateway.app import create_app
from gateway.dashboard import PAGES
from gateway.feedback import parse_feedback
from gateway.openapi import document as openapi_document
from gateway.problems import Problem
from gateway.service import Gateway
from gateway.settings import load_settings
from gateway.tokens import Role
from producers import Published
from schemas import Outcome, Report, example_report
from tests.unit.consumers.test_inbox import about, feedback
from tests.unit.gateway.conftest import delivery

pytestmark = pytest.mark.asyncio


class FakeSender:
    def __init__(self) -> None:
        self.sent: list[Report] = []
        self.hold: asyncio.Event | None = None
        self.fail: FusionbusError | None = None
        self.fail_at: set[int] = set()  # positions in the next batch that fail
        self.refuse: FusionbusError | None = None

    async def publish_many(self, reports: Sequence[Report]) -> list[Published | FusionbusError]:
        if self.hold is not None:
            await self.hold.wait()
        if self.refuse is not None:
            raise self.refuse  # as the Publisher does before sending anything
        if self.fail is not None:
            return [self.fail for _ in reports]
        results: list[Published | FusionbusError] = []
        for n, report in enumerate(reports):
            if n in self.fail_at:
                results.append(TransportError("Kafka timed out", retriable=True))
            else:
                self.sent.append(report)
                results.append(Published(report.message_id, "t", 0, n, ("anf-enc",)))
        self.fail_at = set()
        return results


class World:
    def __init__(self, gateway: Gateway, client: httpx.AsyncClient, sender: FakeSender) -> None:
        self.gateway = gateway
        self.client = client
        self.sender = sender

    def token(self, role: Role) -> dict[str, str]:
        _, token = self.gateway.tokens.create(role, datetime.now(UTC))
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest_asyncio.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    home = tmp_path / "home"
    settings = load_settings(home, max_body_bytes=64 * 1024, max_batch=5)
    gateway = Gateway(home, "customs", settings, KafkaSettings())
    sender = FakeSender()
    gateway.sender = sender
    transport = httpx.ASGITransport(app=create_app(gateway, kafka=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        yield World(gateway, client, sender)
    gateway.close()


def report_body(**changes: object) -> bytes:
    return orjson.dumps({**example_report().model_dump(mode="json"), **changes})


def is_problem(response: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    assert body["type"] == f"urn:fusionbus:problem:{kind}", body
    assert body["status"] == status
    return body


async def test_health_is_open_readiness_says_what_is_missing(world: World) -> None:
    assert (await world.client.get("/healthz")).json() == {"status": "ok"}
    body = is_problem(await world.client.get("/readyz"), 503, "not-ready")
    assert body["checks"] == {
        "publisher": True, "subscriber": False, "lag": False, "directory": False,
    }  # fmt: skip
    world.gateway.subscribing = True
    world.gateway.directory = DirectorySnapshot.of_keys(())  # files: nothing to fall behind
    assert (await world.client.get("/readyz")).json()["status"] == "ready"


class LiveStub:
    def __init__(self, problem: str | None) -> None:
        self.problem = problem

    @property
    def snapshot(self) -> DirectorySnapshot:
        return DirectorySnapshot.of_keys(())

    def head_problem(self, now: datetime) -> str | None:
        return self.problem


async def test_a_live_directory_without_a_current_head_is_not_ready(world: World) -> None:
    world.gateway.subscribing = True
    world.gateway.directory = LiveStub("the directory head is from 2026-11-01, older than 7 days")
    body = is_problem(await world.client.get("/readyz"), 503, "not-ready")
    assert body["checks"]["directory"] is False  # type: ignore[index]
    assert "2026-11-01" not in str(body)  # readiness holds no directory detail
    world.gateway.directory = LiveStub(None)
    assert (await world.client.get("/readyz")).json()["status"] == "ready"


async def test_every_v1_route_needs_a_token(world: World) -> None:
    for method, path in [
        ("GET", "/v1/me"),
        ("GET", "/v1/reports"),
        ("GET", f"/v1/reports/{uuid.uuid4()}"),
        ("GET", "/v1/feed"),
        ("GET", f"/v1/status/{uuid.uuid4()}"),
        ("POST", "/v1/reports"),
        ("POST", "/v1/reports:batch"),
        ("GET", "/openapi.json"),
    ]:
        response = await world.client.request(method, path)
        is_problem(response, 401, "token-missing")
        assert response.headers["www-authenticate"] == 'Bearer realm="fusionbus-gateway"'


@pytest.mark.parametrize(
    ("authorization", "kind"),
    [
        ("Basic dXNlcjpwYXNz", "token-malformed"),
        ("Bearer fbgw_fia_0123456789ab_c2VjcmV0", "token-wrong-agency"),
        ("Bearer fbgw_customs_0123456789ab_c2VjcmV0", "token-unknown"),
        ("Bearer \u202eevil".encode(), "token-malformed"),
        (b"Bearer fbgw_customs_\xff\xfe_x", "token-unknown"),
    ],
)
async def test_bad_tokens_are_refused(world: World, authorization: str | bytes, kind: str) -> None:
    value = authorization if isinstance(authorization, bytes) else authorization.encode()
    response = await world.client.get("/v1/me", headers={b"Authorization": value})
    is_problem(response, 401, kind)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_revoked_token_and_a_wrong_role_are_refused(world: World) -> None:
    info, token = world.gateway.tokens.create(Role.SYSTEM, datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await world.client.get("/v1/me", headers=headers)).json()["role"] == "system"
    world.gateway.tokens.revoke(info.id, datetime.now(UTC))
    is_problem(await world.client.get("/v1/me", headers=headers), 401, "token-revoked")
    viewer = world.token(Role.VIEWER)
    response = await world.client.post("/v1/reports", content=report_body(), headers=viewer)
    body = is_problem(response, 403, "forbidden-role")
    assert "operator or system" in str(body["detail"])
    assert world.sender.sent == []


async def test_a_report_is_published_once_per_idempotency_key(world: World) -> None:
    headers = world.token(Role.SYSTEM) | {"Idempotency-Key": '"k-1"'}
    body = report_body()
    first = await world.client.post("/v1/reports", content=body, headers=headers)
    assert first.status_code == 202, first.text
    message_id = first.json()["message_id"]
    assert first.headers["location"] == f"/v1/status/{message_id}"
    again = await world.client.post("/v1/reports", content=body, headers=headers)
    assert (again.status_code, again.content) == (202, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert len(world.sender.sent) == 1
    other = await world.client.post("/v1/reports", content=report_body(), headers=headers)
    is_problem(other, 422, "idempotency-key-reused")
    status = await world.client.get(first.headers["location"], headers=headers)
    assert status.json()["status"] == "published"
    assert len(world.sender.sent) == 1


async def test_a_retry_while_the_first_is_in_flight_is_409(world: World) -> None:
    headers = world.token(Role.OPERATOR) | {"Idempotency-Key": "in-flight"}
    world.sender.hold = asyncio.Event()
    body = report_body()
    first = asyncio.ensure_future(world.client.post("/v1/reports", content=body, headers=headers))
    while not world.gateway.statuses.get(orjson.loads(body)["message_id"]):  # noqa: ASYNC110
        await asyncio.sleep(0.001)  # the first request is now waiting for "Kafka"
    retry = await world.client.post("/v1/reports", content=body, headers=headers)
    is_problem(retry, 409, "idempotency-key-in-flight")
    assert retry.headers["retry-after"] == "1"
    world.sender.hold.set()
    assert (await first).status_code == 202
    replay = await world.client.post("/v1/reports", content=body, headers=headers)
    assert replay.status_code == 202
    assert len(world.sender.sent) == 1


async def test_a_failed_publish_leaves_the_key_free_for_a_retry(world: World) -> None:
    headers = world.token(Role.SYSTEM) | {"Idempotency-Key": "retry-me"}
    body = report_body()
    world.sender.fail = TransportError("Kafka is unreachable", retriable=True)
    is_problem(
        await world.client.post("/v1/reports", content=body, headers=headers), 503, "publish-failed"
    )
    world.sender.fail = None
    assert (
        await world.client.post("/v1/reports", content=body, headers=headers)
    ).status_code == 202
    assert len(world.sender.sent) == 1


async def test_a_batch_that_partly_failed_keeps_its_answer_and_its_failed_reports_can_be_sent(
    world: World,
) -> None:
    headers = world.token(Role.SYSTEM) | {"Idempotency-Key": "partly"}
    documents = [example_report().model_dump(mode="json") for _ in range(3)]
    ids = [d["message_id"] for d in documents]
    body = orjson.dumps(documents)
    world.sender.fail_at = {1}
    first = await world.client.post("/v1/reports:batch", content=body, headers=headers)
    assert first.status_code == 202, first.text
    states = [(r["message_id"], r["status"]) for r in first.json()["reports"]]
    assert states == [(ids[0], "published"), (ids[1], "failed"), (ids[2], "published")]
    status = (await world.client.get(f"/v1/status/{ids[1]}", headers=headers)).json()
    assert (status["status"], status["detail"]) == ("failed", "Kafka timed out")

    replay = await world.client.post("/v1/reports:batch", content=body, headers=headers)
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert [str(r.message_id) for r in world.sender.sent] == [ids[0], ids[2]]

    again = headers | {"Idempotency-Key": "the-failed-one"}
    retry = await world.client.post(
        "/v1/reports", content=orjson.dumps(documents[1]), headers=again
    )
    assert retry.status_code == 202, retry.text
    assert [str(r.message_id) for r in world.sender.sent] == [ids[0], ids[2], ids[1]]
    repeat = headers | {"Idempotency-Key": "a-published-one"}
    is_problem(
        await world.client.post("/v1/reports", content=orjson.dumps(documents[0]), headers=repeat),
        409,
        "duplicate-message-id",
    )


async def test_a_named_recipient_the_grants_do_not_entitle_is_422(world: World) -> None:
    headers = world.token(Role.SYSTEM) | {"Idempotency-Key": "named"}
    body = report_body()
    reason = (
        "named recipient 'fia' is not entitled to narcotics reports about PKKHI: ...; have the "
        "federation admin run `fusionbus agency grant fia --category narcotics "
        "--jurisdiction PKKHI` on the admin's machine, or remove it from named_recipients"
    )
    world.sender.refuse = DisseminationError(reason)
    answer = await world.client.post("/v1/reports", content=body, headers=headers)
    problem = is_problem(answer, 422, "recipient-not-entitled")
    assert problem["detail"] == reason
    assert problem["title"] == "A named recipient may not receive this report"
    status = await world.client.get(
        f"/v1/status/{orjson.loads(body)['message_id']}", headers=headers
    )
    assert status.json()["status"] == "failed"
    assert world.sender.sent == []
    again = await world.client.post("/v1/reports", content=body, headers=headers)
    is_problem(again, 422, "recipient-not-entitled")  # the same answer, replayed
    assert again.headers["idempotent-replayed"] == "true"


async def test_input_problems(world: World) -> None:
    headers = world.token(Role.SYSTEM)
    document = example_report().model_dump(mode="json")
    document["handling"]["tlp"] = "TLP:PURPLE"
    bad = await world.client.post("/v1/reports", content=orjson.dumps(document), headers=headers)
    body = is_problem(bad, 422, "invalid-report")
    assert [e["pointer"] for e in body["errors"]] == ["/handling/tlp"]  # type: ignore[attr-defined]
    batch = orjson.dumps([example_report().model_dump(mode="json"), document])
    bad_batch = await world.client.post("/v1/reports:batch", content=batch, headers=headers)
    body = is_problem(bad_batch, 422, "invalid-report")
    assert [e["pointer"] for e in body["errors"]] == ["/1/handling/tlp"]  # type: ignore[attr-defined]
    is_problem(
        await world.client.post("/v1/reports", content=b"{", headers=headers), 400, "malformed-json"
    )
    is_problem(
        await world.client.post(
            "/v1/reports", content=b"{}", headers=headers | {"Content-Type": "text/plain"}
        ),
        415,
        "unsupported-media-type",
    )
    huge = b'{"title": "' + b"x" * 70_000 + b'"}'
    is_problem(
        await world.client.post("/v1/reports", content=huge, headers=headers), 413, "body-too-large"
    )

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(70):
            yield b" " * 1024

    streamed = await world.client.post("/v1/reports", content=chunks(), headers=headers)
    is_problem(streamed, 413, "body-too-large")
    is_problem(
        await world.client.post(
            "/v1/reports:batch", content=orjson.dumps([document] * 6), headers=headers
        ),
        413,
        "batch-too-large",
    )
    is_problem(
        await world.client.post(
            "/v1/reports", content=b"{}", headers=headers | {"Idempotency-Key": "a b"}
        ),
        400,
        "invalid-idempotency-key",
    )
    assert world.sender.sent == []


async def test_a_message_id_is_published_once(world: World) -> None:
    headers = world.token(Role.SYSTEM)
    body = report_body()
    assert (
        await world.client.post("/v1/reports", content=body, headers=headers)
    ).status_code == 202
    again = await world.client.post("/v1/reports", content=body, headers=headers)
    is_problem(again, 409, "duplicate-message-id")
    assert len(world.sender.sent) == 1


async def test_reads_filter_page_and_redact(world: World) -> None:
    gateway = world.gateway
    stored = [
        gateway.received.add(delivery("narcotics", "PKKHI", offset=1), datetime.now(UTC)),
        gateway.received.add(
            delivery("narcotics", "PKKHI", tlp="TLP:RED", offset=2), datetime.now(UTC)
        ),
        gateway.received.add(delivery("contraband", "PK-PB", offset=3), datetime.now(UTC)),
    ]
    viewer, operator = world.token(Role.VIEWER), world.token(Role.OPERATOR)
    page = (
        await world.client.get(
            "/v1/reports", params={"jurisdiction": "PK-SD", "limit": 1}, headers=viewer
        )
    ).json()
    assert [i["header"]["message_id"] for i in page["items"]] == [stored[0].message_id]  # type: ignore[union-attr]
    rest = (
        await world.client.get(
            "/v1/reports",
            params={"jurisdiction": "PK-SD", "cursor": page["next_cursor"]},
            headers=viewer,
        )
    ).json()
    [red] = rest["items"]
    assert red["redacted"] is True
    assert "report" not in red
    red_id = stored[1].message_id  # type: ignore[union-attr]
    is_problem(
        await world.client.get(f"/v1/reports/{red_id}", headers=viewer), 403, "forbidden-handling"
    )
    full = await world.client.get(f"/v1/reports/{red_id}", headers=operator)
    assert full.json()["report"]["handling"]["tlp"] == "TLP:RED"
    is_problem(
        await world.client.get(f"/v1/reports/{uuid.uuid4()}", headers=viewer), 404, "unknown-report"
    )
    for params, kind in [
        ({"cursor": "not-a-cursor"}, "invalid-cursor"),
        ({"category": "weapons of mass\u202e"}, "invalid-parameter"),
        ({"jurisdiction": "ZZ-QQ"}, "invalid-parameter"),
        ({"precedence": "URGENT"}, "invalid-parameter"),
        ({"since": "yesterday"}, "invalid-parameter"),
        ({"limit": "0"}, "invalid-parameter"),
    ]:
        body = is_problem(
            await world.client.get("/v1/reports", params=params, headers=viewer), 400, kind
        )
        assert body["errors"], body
    is_problem(
        await world.client.get("/v1/feed", params={"last_event_id": "x"}, headers=viewer),
        400,
        "invalid-cursor",
    )
    is_problem(await world.client.get("/v1/nothing", headers=viewer), 404, "not-found")


async def test_the_openapi_document_is_served_to_a_token_holder(world: World) -> None:
    response = await world.client.get("/openapi.json", headers=world.token(Role.VIEWER))
    assert response.status_code == 200, response.text
    assert response.json() == openapi_document()
    routes = create_app(world.gateway, kafka=False).routes
    served = {str(getattr(route, "path", "")) for route in routes}
    assert set(response.json()["paths"]) == served - {"/openapi.json", *PAGES}


async def test_status_shows_feedback_from_the_agencies_it_was_sealed_to_only(world: World) -> None:
    """fia, which could read the report's clear header but was not sealed to, sends
    feedback on it: it is left out of the status and named as ignored."""
    headers = world.token(Role.VIEWER)
    header = about()
    report_id = str(header.message_id)
    now = datetime.now(UTC)
    world.gateway.statuses.accepted([report_id], now)
    world.gateway.statuses.settle(report_id, now, recipients=3, detail="", sealed_to=["anf", "pcg"])
    where = Source("fusionbus.inbox.customs.x", 0, 0)
    for item in (feedback(header), feedback(header, Outcome.FALSE_POSITIVE, sender="fia")):
        world.gateway.feedback.add(FeedbackDelivery(item, header, where), now)
    body = (await world.client.get(f"/v1/status/{report_id}", headers=headers)).json()
    assert [s["agency"] for s in body["feedback"]] == ["anf", "pcg"]  # pcg silent, listed
    anf, pcg = body["feedback"]
    assert anf["received"] is not None
    assert all(pcg[stage] is None for stage in ("received", "acknowledged", "outcome"))
    assert body["ignored_feedback_from"] == ["fia"]
    assert body["sealed_to"] == ["anf", "pcg"]

    other = about()  # feedback on a report this gateway never posted: still unknown here
    world.gateway.feedback.add(FeedbackDelivery(feedback(other), other, where), now)
    is_problem(
        await world.client.get(f"/v1/status/{other.message_id}", headers=headers),
        404,
        "unknown-report",
    )


async def test_feedback_bodies_are_checked_field_by_field() -> None:
    header = about()
    now = datetime.now(UTC)
    given = parse_feedback(b'{"outcome": "acknowledged"}', about=header, agency="anf", now=now)
    assert (given.originator, given.sender, given.report_id) == (
        "customs", "anf", header.message_id,
    )  # fmt: skip
    for body, pointer in [
        (b'{"outcome": "received"}', "/outcome"),  # the subscriber's own to send
        (b'{"outcome": "arrest", "originator": "fia"}', "/originator"),
        (b'{"outcome": "seizure", "quantity": "5"}', ""),
        (b"[]", ""),
    ]:
        with pytest.raises(Problem) as refused:
            parse_feedback(body, about=header, agency="anf", now=now)
        assert refused.value.status == 422
        assert refused.value.kind == "invalid-feedback"
        assert [e.pointer for e in refused.value.errors] == [pointer], body
