"""Feedback through the gateways, on real Kafka: a report's life from publish to outcome is
visible to its originator, per recipient.

The sending agency's gateway publishes a report; the receiving agency's gateway stores it
and tells the originator ``received`` on its own; an operator there acknowledges it and
reports a seizure, then corrects the quantity; the originator's ``/v1/status/{id}`` shows
each stage as it arrives.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from broker.kafka import ClusterState
from tests.integration.cli_helpers import clean_env, failed, run_cli
from tests.integration.test_gateway import (
    World,
    bearer,
    gateway_pair,
    problem,
    ready,
    received_ids,
    report,
)

pytestmark = pytest.mark.asyncio(loop_scope="function")

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def pair(kafka: ClusterState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("feedback")
    with gateway_pair(kafka, base, "fb", category="narcotics", area="PK-BA", env=clean_env()) as w:
        yield w


async def post_report(pair: World, token: str) -> str:
    """Post the test report through the sending gateway; its message id."""
    async with httpx.AsyncClient(timeout=60) as client:
        await ready(client, pair.out.url)
        posted = await client.post(
            f"{pair.out.url}/v1/reports", content=orjson.dumps(report()),
            headers=bearer(token) | JSON,
        )  # fmt: skip
    assert posted.status_code == 202, posted.text
    message_id: str = posted.json()["message_id"]
    return message_id


async def status_until(
    client: httpx.AsyncClient, url: str, token: str, message_id: str, done: Any
) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while True:
        answer = await client.get(f"{url}/v1/status/{message_id}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"status never settled: {body}"
        await asyncio.sleep(0.3)


async def test_the_originator_sees_each_recipients_feedback_as_it_arrives(pair: World) -> None:
    system = pair.token(pair.sender, "system")
    operator = pair.token(pair.receiver, "operator")
    viewer = pair.token(pair.receiver, "viewer")
    async with httpx.AsyncClient(timeout=60) as client:
        await ready(client, pair.out.url)
        await ready(client, pair.inbox.url)
        posted = await client.post(
            f"{pair.out.url}/v1/reports", content=orjson.dumps(report()),
            headers=bearer(system) | JSON,
        )  # fmt: skip
        assert posted.status_code == 202, posted.text
        message_id = posted.json()["message_id"]
        assert message_id in await received_ids(client, pair.inbox.url, operator, {message_id})

        def stage(body: dict[str, Any], name: str) -> Any:
            states = {s["agency"]: s for s in body["feedback"]}
            return states.get(pair.receiver, {}).get(name)

        first = await client.get(f"{pair.out.url}/v1/status/{message_id}", headers=bearer(system))
        assert first.json()["sealed_to"] == [pair.receiver]  # listed before it says anything
        assert [s["agency"] for s in first.json()["feedback"]] == [pair.receiver]
        # The receiving gateway's subscriber said "received" on its own.
        body = await status_until(
            client, pair.out.url, system, message_id, lambda b: stage(b, "received")
        )
        assert body["status"] == "published"
        assert stage(body, "acknowledged") is None

        url = f"{pair.inbox.url}/v1/reports/{message_id}/feedback"
        ack = b'{"outcome": "acknowledged"}'
        problem(
            await client.post(url, content=ack, headers=bearer(viewer) | JSON),
            403,
            "forbidden-role",
        )
        bad = await client.post(
            url, content=b'{"outcome": "lost"}', headers=bearer(operator) | JSON
        )
        assert problem(bad, 422, "invalid-feedback")["errors"][0]["pointer"] == "/outcome"
        extra = await client.post(
            url, content=b'{"outcome": "arrest", "sender": "x"}', headers=bearer(operator) | JSON
        )
        assert problem(extra, 422, "invalid-feedback")["errors"][0]["pointer"] == "/sender"
        unknown = f"{pair.inbox.url}/v1/reports/00000000-0000-4000-8000-000000000000/feedback"
        problem(
            await client.post(unknown, content=ack, headers=bearer(operator) | JSON),
            404, "unknown-report",
        )  # fmt: skip

        acked = await client.post(
            url, content=b'{"outcome": "acknowledged"}', headers=bearer(operator) | JSON
        )
        assert acked.status_code == 202, acked.text
        seized = await client.post(
            url,
            content=orjson.dumps(
                {"outcome": "seizure", "quantity": "72", "unit": "kg", "note": "31 bags"}
            ),
            headers=bearer(operator) | JSON,
        )
        assert seized.status_code == 202, seized.text
        body = await status_until(
            client, pair.out.url, system, message_id, lambda b: stage(b, "outcome")
        )
        assert stage(body, "acknowledged") is not None
        assert stage(body, "outcome") | {"at": None, "message_id": None} == {
            "at": None, "message_id": None, "outcome": "seizure", "quantity": "72", "unit": "kg",
            "note": "31 bags",
        }  # fmt: skip

        corrected = await client.post(
            url,
            content=orjson.dumps(
                {"outcome": "seizure", "quantity": "72.5", "unit": "kg",
                 "replaces": seized.json()["message_id"]}
            ),
            headers=bearer(operator) | JSON,
        )  # fmt: skip
        assert corrected.status_code == 202, corrected.text
        body = await status_until(
            client, pair.out.url, system, message_id,
            lambda b: (stage(b, "outcome") or {}).get("quantity") == "72.5",
        )  # fmt: skip
        assert stage(body, "outcome")["message_id"] == corrected.json()["message_id"]


async def test_receipts_and_status_from_the_command_line(pair: World) -> None:
    system = pair.token(pair.sender, "system")
    home = ["--home", str(pair.home)]
    message_id = await post_report(pair, system)

    refused = run_cli("receipt", message_id, "--agency", pair.receiver, "--kind", "outcome", *home)
    assert refused.returncode == 2
    assert "--outcome goes with --kind outcome" in refused.stderr
    actioned = run_cli(
        "receipt", message_id, "--agency", pair.receiver, "--kind", "actioned", *home,
        env=pair.env,
    )  # fmt: skip
    assert actioned.returncode == 0, failed(actioned)
    assert "sent to" in actioned.stderr
    outcome = run_cli(
        "receipt", message_id, "--agency", pair.receiver, "--kind", "outcome",
        "--outcome", "arrest", "--note", "two couriers", *home, env=pair.env,
    )  # fmt: skip
    assert outcome.returncode == 0, failed(outcome)
    own = run_cli(
        "receipt", message_id, "--agency", pair.sender, "--kind", "acknowledged", *home,
        env=pair.env,
    )  # fmt: skip
    assert own.returncode == 1
    assert "received no report" in own.stderr or "own" in own.stderr

    deadline = time.monotonic() + 90
    while True:
        shown = run_cli(
            "status", message_id, "--agency", pair.sender, "--json", *home, env=pair.env
        )
        assert shown.returncode == 0, failed(shown)
        lines = [orjson.loads(x) for x in shown.stdout.splitlines()]
        states = {x["agency"]: x for x in lines}
        mine = states.get(pair.receiver, {})
        if mine.get("actioned") and mine.get("outcome") and mine.get("received"):
            break
        assert time.monotonic() < deadline, shown.stdout
        await asyncio.sleep(0.5)
    assert mine["outcome"]["outcome"] == "arrest"
    assert mine["outcome"]["note"] == "two couriers"
    assert mine["acknowledged"] is None
    text = run_cli("status", message_id, "--agency", pair.sender, *home, env=pair.env)
    assert text.returncode == 0, failed(text)
    assert pair.receiver in text.stdout
    assert "arrest" in text.stdout


async def test_the_documented_commands_run_as_written(pair: World) -> None:
    """docs/cycle.md's commands, with this test's agencies and ids put in."""
    system = pair.token(pair.sender, "system")
    message_id = await post_report(pair, system)
    doc = (Path(__file__).parents[2] / "docs" / "cycle.md").read_text(encoding="utf-8")
    block = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)[0]  # feedback; then notices
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    assert len(commands) == 6
    ids = {"MESSAGE_ID": message_id}
    for words in commands:
        assert words[0] == "fusionbus"
        agencies = {"customs": pair.sender, "anf": pair.receiver}
        args = [agencies.get(w, w) for w in words[1:] if w != "[--json]"]
        args = [ids.get(w, w) for w in args]
        result = run_cli(*args, "--home", str(pair.home), env=pair.env)
        assert result.returncode == 0, f"{words}\n{failed(result)}"
        if args[0] == "receipt":
            made = result.stdout.strip().splitlines()[-1]
            if "--withdraw" in args:
                assert "Withdrawal of" in result.stderr
            elif "--replaces" in args:
                ids["AMENDMENT_ID"] = made
            elif "--outcome" in args:
                ids["FEEDBACK_ID"] = made
    deadline = time.monotonic() + 90
    while True:  # the amendment withdrawn, the outcome it replaced stays out of force
        shown = run_cli("status", message_id, "--agency", pair.sender, "--json",
                        "--home", str(pair.home), env=pair.env)  # fmt: skip
        [state] = [orjson.loads(x) for x in shown.stdout.splitlines()]
        if state["acknowledged"] and state["actioned"] and state["outcome"] is None:
            break
        assert time.monotonic() < deadline, shown.stdout
        await asyncio.sleep(0.5)


async def test_status_lists_every_agency_a_report_published_from_the_home_was_sealed_to(
    pair: World,
) -> None:
    home = ["--home", str(pair.home)]
    published = run_cli(
        "publish", "--agency", pair.sender, *home, env=pair.env,
        stdin=orjson.dumps(report()).decode(),
    )  # fmt: skip
    assert published.returncode == 0, failed(published)
    message_id = published.stdout.strip()
    shown = run_cli("status", message_id, "--agency", pair.sender, "--json", *home, env=pair.env)
    assert shown.returncode == 0, failed(shown)
    assert "not published from this home" not in shown.stderr
    agencies = [orjson.loads(x)["agency"] for x in shown.stdout.splitlines()]
    assert agencies == [pair.receiver]  # listed before (or whether or not) it said anything

    # The same report again, by the command line or the gateway: refused, never a replay.
    again = orjson.dumps(report(message_id=message_id)).decode()
    refused = run_cli("publish", "--agency", pair.sender, *home, env=pair.env, stdin=again)
    assert refused.returncode == 1
    assert "published from this home before" in refused.stderr
    system = pair.token(pair.sender, "system")
    async with httpx.AsyncClient(timeout=60) as client:
        posted = await client.post(
            f"{pair.out.url}/v1/reports", content=again, headers=bearer(system) | JSON
        )
    problem(posted, 409, "duplicate-message-id")
