"""A gateway on the live directory follows its agency's grants without a restart.

The receiving agency's gateway reads the directory from a topic (``[directory] source =
"topic"``). The admin grants it a second category and publishes the directory: the
gateway's subscriber is replaced by one over both grants, and a report of the new category
reaches the gateway's store and its readers, while reports of the first still do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy, Federation, publish_directory
from broker.kafka import ClusterState
from producers import Publisher
from schemas import example_report
from tests.integration.cli_helpers import clean_env, failed, run_cli
from tests.integration.test_gateway import Running, bearer, ready, start_gateway, stop

pytestmark = pytest.mark.asyncio(loop_scope="function")

PLACE = "PKMUX"  # Multan, in PK-PB


@pytest.fixture
def admin(tmp_path: Path, topic: str, kafka: ClusterState) -> Federation:
    tag = uuid.uuid4().hex[:6]
    now = datetime.now(UTC) - timedelta(minutes=1)
    fed = Federation.init(tmp_path / "home", now=now)
    for agency in (f"gsend{tag}", f"grecv{tag}"):
        fed.add_agency(agency, "Agency", now=now)
    fed.grant(f"grecv{tag}", categories=["narcotics"], jurisdictions=["PK-PB"], now=now)
    (fed.home / "config.toml").write_text(
        f'[kafka]\nbootstrap = "{kafka.bootstrap}"\n\n'
        f'[directory]\nsource = "topic"\ntopic = "{topic}"\n'
    )
    return fed


@pytest.fixture
def receiving(
    admin: Federation, tmp_path: Path, topic: str, kafka: ClusterState
) -> Iterator[Running]:
    asyncio.run(share(admin, topic, kafka))
    running = start_gateway(admin.home, receiver(admin), clean_env(), tmp_path / "gateway.log")
    try:
        yield running
    finally:
        stop(running)


def sender(fed: Federation) -> str:
    return next(r.id for r in fed.snapshot.agencies() if r.id.startswith("gsend"))


def receiver(fed: Federation) -> str:
    return next(r.id for r in fed.snapshot.agencies() if r.id.startswith("grecv"))


async def share(fed: Federation, topic: str, kafka: ClusterState) -> None:
    """Publish the admin's directory, with a fresh head, to the test's directory topic."""
    head = fed.signed_head(now=datetime.now(UTC))
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    await publish_directory(settings, fed.snapshot.signed_records(), head=head, topic=topic)


async def publish(fed: Federation, kafka: ClusterState, category: str) -> str:
    fed = Federation.load(fed.home)
    example = example_report(category, PLACE)
    handling = example.handling.model_copy(update={"named_recipients": ()})
    report = example.model_copy(update={"sender": sender(fed), "handling": handling})
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    async with Publisher(fed.identity(sender(fed)), fed, DisseminationPolicy(fed), settings) as pub:
        [published] = await pub.publish_many([report])
    assert not isinstance(published, Exception), published
    return str(report.message_id)


async def listed(client: httpx.AsyncClient, url: str, token: str, category: str) -> set[str]:
    page = await client.get(
        f"{url}/v1/reports", params={"category": category}, headers=bearer(token)
    )
    assert page.status_code == 200, page.text
    return {item["header"]["message_id"] for item in page.json()["items"]}


async def until_listed(
    client: httpx.AsyncClient, url: str, token: str, category: str, message_id: str
) -> None:
    deadline = time.monotonic() + 90
    while message_id not in await listed(client, url, token, category):
        assert time.monotonic() < deadline, f"{message_id} ({category}) never reached {url}"
        await asyncio.sleep(0.3)


async def test_a_new_grant_reaches_the_running_gateway(
    admin: Federation, receiving: Running, topic: str, kafka: ClusterState
) -> None:
    made = run_cli(
        "gateway", "token", "create", "--agency", receiver(admin), "--role", "viewer",
        "--home", str(admin.home), env=clean_env(),
    )  # fmt: skip
    assert made.returncode == 0, failed(made)
    token = made.stdout.splitlines()[-1]
    async with httpx.AsyncClient(timeout=30) as client:
        await ready(client, receiving.url)
        first = await publish(admin, kafka, "narcotics")
        await until_listed(client, receiving.url, token, "narcotics", first)
        before = await publish(admin, kafka, "precursor_chemicals")  # not granted: not sealed to it

        admin.grant(
            receiver(admin), categories=["precursor_chemicals"], jurisdictions=["PK-PB"],
            now=datetime.now(UTC),
        )  # fmt: skip
        await share(admin, topic, kafka)
        after = await publish(admin, kafka, "precursor_chemicals")
        await until_listed(client, receiving.url, token, "precursor_chemicals", after)
        second = await publish(admin, kafka, "narcotics")
        await until_listed(client, receiving.url, token, "narcotics", second)
        assert before not in await listed(client, receiving.url, token, "precursor_chemicals")
    assert "gateway.grants_changed" in receiving.log.read_text()
