"""The federation directory in Kafka, on the real embedded Kafka.

The admin publishes root-signed records to a compacted topic (as an operator would, with
``fusionbus federation publish-directory``); agency machines holding only the root public
key follow it with a LiveDirectory, refuse what is forged or rolled back, a running
Publisher picks up grant changes and revocations within seconds, and a running Subscriber
rejects reports of a key revoked while it runs (revoked_key).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from structlog.testing import capture_logs

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.federation import DisseminationPolicy, Federation, LiveDirectory, publish_directory
from broker.federation.head import sign_head
from broker.home import HomeLayout
from broker.kafka import ClusterState
from broker.keys import SigningKey, load_private_pem
from consumers import Delivery, Source, Subscriber
from producers import Published, Publisher
from schemas import example_report


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Federation:
    monkeypatch.delenv("FUSIONBUS_PASSPHRASE", raising=False)
    now = datetime.now(UTC) - timedelta(minutes=1)
    fed = Federation.init(tmp_path / "admin", now=now)
    for agency, name in (("customs", "Pakistan Customs"), ("anf", "ANF"), ("fia", "FIA")):
        fed.add_agency(agency, name, now=now)
    fed.grant("anf", categories=["narcotics"], jurisdictions=["PK"], now=now)
    return fed


def agency_home(admin: Federation, where: Path, agency: str | None = None) -> Path:
    """An agency's machine: the trust anchor (and its own keys), but no directory files."""
    source, target = HomeLayout(admin.home), HomeLayout(where)
    target.federation_dir.mkdir(parents=True, mode=0o700)
    shutil.copy(source.root_public, target.root_public)
    if agency is not None:
        shutil.copytree(source.agency_dir(agency), target.agency_dir(agency))
    return where


def publish_cli(admin: Federation, bootstrap: str, topic: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSIONBUS_")}
    result = subprocess.run(
        [sys.executable, "-m", "fusionbus", "federation", "publish-directory", "--home",
         str(admin.home), "--bootstrap", bootstrap, "--topic", topic],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(admin.snapshot.agencies()))


async def until(condition: object, seconds: float = 10.0) -> float:
    """Wait until ``condition()`` is true; return how long it took."""
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < seconds, "the live directory did not follow in time"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.mark.asyncio
async def test_a_party_starting_later_catches_up_and_refuses_forged_and_rolled_back_records(
    kafka: ClusterState, admin: Federation, topic: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    before_revocation = admin.snapshot.signed_records()
    admin.revoke("fia", reason="compromised laptop", now=datetime.now(UTC))
    publish_cli(admin, kafka.bootstrap, topic)

    home = agency_home(admin, tmp_path / "anf-machine")
    fia = admin.snapshot.agency("fia")
    header, payload, signature = admin.snapshot.signed_records()["anf"].split(b".")
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
    await producer.start()
    try:
        for key, value in (
            (b"fia", before_revocation["fia"]),  # validly signed, older revision
            (b"anf", b".".join((header, payload[:-3] + b"AAA", signature))),  # tampered
            (b"anf", header + b"." + payload + b"."),  # unsigned
            (b"anf", before_revocation["fia"]),  # filed under another agency
        ):
            await producer.send_and_wait(topic, key=key, value=value)
    finally:
        await producer.stop()

    async with LiveDirectory.for_home(home, settings, topic=topic) as live:  # starts later
        assert [a.id for a in live.snapshot.agencies()] == ["anf", "customs", "fia"]
        assert live.snapshot.agency("fia") == fia  # the revocation stands
        assert live.view.refused == 4
        assert live.snapshot.head is not None  # publish-directory wrote a fresh head
        assert live.snapshot.head.revisions["fia"] == fia.revision
        assert live.view.head_problem(datetime.now(UTC)) is None
        assert live.snapshot.signing_key(fia.signing_kid) is not None
        assert live.snapshot.entitled("anf", category="narcotics", jurisdiction="PKKHI")

    # Restarted against a topic that replays only the old record: still refused, because the
    # highest revision accepted was kept in the home.
    replay = f"{topic}-replay"
    await publish_directory(settings, {"fia": before_revocation["fia"]}, topic=replay)
    async with LiveDirectory.for_home(home, settings, topic=replay) as live:
        assert live.snapshot.agency("fia") == fia
        assert live.view.refused == 1


@pytest.mark.asyncio
async def test_a_running_publisher_follows_grants_and_revocations_within_seconds(
    kafka: ClusterState, admin: Federation, topic: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    await publish_directory(settings, admin.snapshot.signed_records(), topic=topic)
    home = agency_home(admin, tmp_path / "customs-machine", "customs")
    identity = Federation.load(admin.home).identity("customs")  # keys as on its machine
    fia_kid = admin.snapshot.agency("fia").encryption_kid

    async with (
        LiveDirectory.for_home(home, settings, topic=topic) as live,
        Publisher(identity, live, DisseminationPolicy(live), settings) as publisher,
    ):
        first = await publisher.publish(example_report("arms", "PKKHI"))
        assert fia_kid not in first.recipients  # nobody but customs is granted arms

        admin.grant("fia", categories=["arms"], jurisdictions=["PK"], now=datetime.now(UTC))
        await publish_directory(settings, admin.snapshot.signed_records(), topic=topic)
        waited = await until(
            lambda: live.snapshot.entitled("fia", category="arms", jurisdiction="PK")
        )
        assert waited < 5
        second = await publisher.publish(example_report("arms", "PKKHI"))
        assert fia_kid in second.recipients

        admin.revoke("fia", reason="compromised", now=datetime.now(UTC))
        await publish_directory(settings, admin.snapshot.signed_records(), topic=topic)
        await until(lambda: live.view.revision("fia") == admin.snapshot.agency("fia").revision, 5)
        third = await publisher.publish(example_report("arms", "PKKHI"))
        assert fia_kid not in third.recipients
        assert third.recipients == (admin.snapshot.agency("customs").encryption_kid,)


@pytest.mark.asyncio
async def test_a_running_subscriber_rejects_reports_of_a_key_revoked_while_it_runs(
    kafka: ClusterState, admin: Federation, topic: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    started = datetime.now(UTC) - timedelta(seconds=1)
    await publish_directory(settings, admin.snapshot.signed_records(), topic=topic)
    customs = Federation.load(admin.home)
    async with Publisher(
        customs.identity("customs"), customs.snapshot, DisseminationPolicy(customs), settings
    ) as publisher:
        before = example_report("narcotics", "PKKHI")
        receipt = await publisher.publish(before)  # signed while the key was good
    assert isinstance(receipt, Published)  # no outbox: acknowledged or raised
    where = (receipt.topic, receipt.partition, receipt.offset)

    home = agency_home(admin, tmp_path / "anf-machine", "anf")
    rejected: dict[tuple[str, int, int], str] = {}
    delivered: list[str] = []
    seen = asyncio.Event()

    async def on_reject(source: Source, reason: str, detail: str) -> None:
        rejected[source.topic, source.partition, source.offset] = reason
        seen.set()

    async def handler(delivery: Delivery) -> None:
        delivered.append(str(delivery.report.message_id))

    async with LiveDirectory.for_home(home, settings, topic=topic) as live:
        admin.revoke(
            "customs",
            kid=admin.snapshot.agency("customs").signing_kid,
            reason="stolen",
            now=started,
        )
        await publish_directory(settings, admin.snapshot.signed_records(), topic=topic)
        await until(
            lambda: live.view.revision("customs") == admin.snapshot.agency("customs").revision
        )
        subscriber = Subscriber(
            Federation.load(admin.home).identity("anf"), live, settings,
            categories=["narcotics"], jurisdictions=["PK"], since=started, on_reject=on_reject,
        )  # fmt: skip
        task = asyncio.create_task(subscriber.run(handler))
        try:
            await asyncio.wait_for(seen.wait(), 30)
            while where not in rejected:
                seen.clear()
                await asyncio.wait_for(seen.wait(), 30)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert rejected[where] == "revoked_key"
    assert str(before.message_id) not in delivered


@pytest.mark.asyncio
async def test_a_fresh_reader_refuses_a_rolled_back_compacted_topic_by_its_head(
    kafka: ClusterState, admin: Federation, topic: str, tmp_path: Path
) -> None:
    """What a Kafka super user can leave after revoking fia: the pre-revocation record of
    fia (appended again, the newer one compacted away) beside the current head. A reader
    with no state (a new machine) must not take fia back as a recipient."""
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    before = admin.snapshot.signed_records()
    admin.revoke("fia", reason="compromised", now=datetime.now(UTC))
    root = load_private_pem(HomeLayout(admin.home).root_private.read_bytes())
    assert isinstance(root, SigningKey)
    head = sign_head(
        {r.id: r.revision for r in admin.snapshot.agencies()}, root, now=datetime.now(UTC)
    )
    rolled_back = {**admin.snapshot.signed_records(), "fia": before["fia"]}  # what compaction left
    await publish_directory(settings, rolled_back, topic=topic, head=head)

    fresh = agency_home(admin, tmp_path / "new-machine")
    with capture_logs() as logs:
        async with LiveDirectory.for_home(fresh, settings, topic=topic) as live:
            assert "fia" not in {a.id for a in live.snapshot.agencies()}
            assert live.view.revision("fia") == admin.snapshot.agency("fia").revision - 1
            assert "fia" in (live.view.head_problem(datetime.now(UTC)) or "")
    assert any(e["event"] == "directory.behind_head" for e in logs)
    assert any(e["event"] == "directory.head_stale" for e in logs)

    # The same topic without a head: a reader with no state cannot tell (the gap it closes).
    bare = f"{topic}-nohead"
    await publish_directory(settings, rolled_back, topic=bare)
    async with LiveDirectory.for_home(
        agency_home(admin, tmp_path / "other"), settings, topic=bare
    ) as live:
        assert "fia" in {a.id for a in live.snapshot.agencies()}
