"""fusionbus's own publisher through broker faults on the 3-node cluster (RF 3, min ISR 2).

- A partition leader is killed with ``kill -9`` while 20,000 uniquely numbered reports are
  published through :class:`Publisher`: first without an outbox (the caller publishes again
  what failed, and the publisher resends the very bytes of the first attempt), then through
  the outbox, as the gateway publishes, where nobody resends anything by hand.
- The whole cluster is stopped and started again while reports are published through the
  outbox: they wait, and flow again by themselves.

Every run records a :class:`~tests.integration.history.History` (sent, acknowledged,
delivered to a subscriber) and checks it: every acknowledged report delivered, none twice,
each thread in order. The figures are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
import structlog
from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import FusionbusError
from broker.federation import DirectorySnapshot, EncryptionKeyRecord, SigningKeyRecord, agency_keys
from broker.kafka import EmbeddedKafka
from broker.keys import Identity
from broker.topics import report_topic
from consumers import Delivery, Subscriber
from consumers.intake import SkipReason, Source
from producers import Outbox, Published, Publisher, Queued
from schemas import Report, example_report
from tests.integration.cli_helpers import clean_env
from tests.integration.history import History
from tests.integration.test_gateway import PLACE, bearer, gateway_pair, ready, received_ids
from tests.integration.test_pubsub import Fixed

LONG = os.environ.get("FUSIONBUS_LONG") == "1"
TOTAL = 20_000
KILL_AFTER = 5_000
CHUNK = 500
RESTART_TOTAL = 6_000 if LONG else 2_000


class Agencies:
    def __init__(self, bootstrap: str) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.sender = Identity.generate(f"post-{suffix}")
        self.reader = Identity.generate(f"anf-{suffix}")
        since = datetime.now(UTC) - timedelta(days=1)
        keys: list[SigningKeyRecord | EncryptionKeyRecord] = []
        for ident in (self.sender, self.reader):
            keys += agency_keys(
                ident.agency, ident.signing_key.public, ident.encryption_key, valid_from=since
            )
        self.trust = DirectorySnapshot.of_keys(keys)
        self.policy = Fixed(self.trust, [self.reader.encryption_kid])
        self.settings = KafkaSettings(bootstrap=bootstrap, request_timeout_ms=15_000)
        self.topic = report_topic(self.sender.agency, "PKKHI", "narcotics")

    def reports(self, count: int) -> list[Report]:
        base = example_report("narcotics", "PKKHI")
        sender = self.sender.agency
        return [
            base.model_copy(
                update={"message_id": uuid.uuid4(), "sender": sender, "title": f"report {n}"}
            )
            for n in range(count)
        ]

    def publisher(self, **kwargs: object) -> Publisher:
        return Publisher(
            self.sender, self.trust, self.policy, self.settings,
            **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip

    async def read_all(self, history: History, wanted: set[uuid.UUID]) -> Counter[str]:
        """Hand every report of this sender's topic to an application (the history), until
        each wanted one arrived; the skip reasons seen (``duplicate``: Kafka held a record
        twice and the subscriber passed the second over)."""
        complete = asyncio.Event()
        got: set[uuid.UUID] = set()
        skipped: Counter[str] = Counter()

        async def handler(delivery: Delivery) -> None:
            message_id = delivery.report.message_id
            history.delivered(message_id, reader="app")
            got.add(message_id)
            if wanted <= got:
                complete.set()

        async def skip(_: Source, reason: SkipReason) -> None:
            skipped[str(reason)] += 1

        subscriber = Subscriber(
            self.reader, self.trust, self.settings, categories=["narcotics"],
            jurisdictions=["PKKHI"], on_skip=skip,
        )  # fmt: skip
        task = asyncio.create_task(subscriber.run(handler))
        try:
            await asyncio.wait_for(complete.wait(), 300)
            await asyncio.sleep(2.0)  # anything more would be a duplicate
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return skipped


async def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    client = AIOKafkaClient(**aiokafka_kwargs(KafkaSettings(bootstrap=bootstrap), "admin"))
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
    finally:
        await client.close()
    assert leader is not None, f"no leader for {topic}/{partition}"
    return int(leader)


def _start_again(cluster: EmbeddedKafka, port: int) -> None:
    """Start the stopped cluster on the ports it had, as real hosts come back (the session's
    cluster was made to pick free ports, so a plain start would move it). The session's own
    object starts it, so it keeps the new processes and stops them at the end."""
    cluster.port = port
    cluster.start()
    assert len(cluster.running_nodes()) == 3


async def _restart(cluster: EmbeddedKafka, node: int) -> None:
    await asyncio.to_thread(cluster.restart_node, node)
    assert len(cluster.running_nodes()) == 3


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_every_acknowledged_report_survives_a_leader_kill_once_through_the_publisher(
    kafka_cluster: EmbeddedKafka,
) -> None:
    state = kafka_cluster.state()
    assert state is not None
    agencies = Agencies(state.bootstrap)
    reports = agencies.reports(TOTAL)
    history = History()
    pending = list(reports)
    killed: int | None = None
    kill_at = recovered_at = None
    failures = rounds = 0
    deadline = time.monotonic() + 300
    with structlog.testing.capture_logs() as logs:
        async with agencies.publisher() as publisher:
            while pending and time.monotonic() < deadline:
                chunk, pending = pending[:CHUNK], pending[CHUNK:]
                for report in chunk:
                    history.sent(report.message_id)
                results = await publisher.publish_many(chunk)
                rounds += 1
                again = []
                for report, result in zip(chunk, results, strict=True):
                    if isinstance(result, Published):
                        history.acked(report.message_id)
                    else:
                        assert isinstance(result, FusionbusError), result
                        again.append(report)
                failures += len(again)
                pending = again + pending  # the same reports: the same envelopes go out
                if kill_at is not None and recovered_at is None and not again:
                    recovered_at = history.mark("recovered")
                acked = sum(1 for e in history.events if e.kind == "acked")
                if killed is None and acked >= KILL_AFTER:
                    killed = await leader_of(state.bootstrap, agencies.topic, 0)
                    await asyncio.to_thread(kafka_cluster.kill_node, killed)
                    kill_at = history.mark("kill")
            renewals = publisher.renewals
    assert killed is not None, "the leader was never killed"
    await _restart(kafka_cluster, killed)
    assert not pending, f"{len(pending)} reports were never acknowledged within 300 s"

    skipped = await agencies.read_all(history, {r.message_id for r in reports})
    verdict = history.check(readers=["app"])
    stuck = sum(1 for e in logs if "OutOfOrderSequence" in str(e.get("error", "")))
    assert kill_at is not None
    print(
        f"\nleader kill through Publisher: killed node {killed} after {KILL_AFTER} acks; "
        f"{verdict.explain()}; {failures} sends failed and were published again; producer "
        f"recreated {renewals}x ({stuck} failures named OutOfOrderSequenceNumber); "
        f"Kafka held {skipped['duplicate']} records twice, skipped by the subscriber; "
        f"failure-free again {((recovered_at or kill_at) - kill_at):.1f} s after the kill"
    )
    assert verdict.ok, verdict.explain()
    assert verdict.delivered == {"app": TOTAL}


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_the_outbox_carries_every_report_through_a_leader_kill_once_and_in_order(
    kafka_cluster: EmbeddedKafka, tmp_path: Path
) -> None:
    state = kafka_cluster.state()
    assert state is not None
    agencies = Agencies(state.bootstrap)
    reports = agencies.reports(TOTAL)
    history = History()
    acked_at: list[float] = []

    def settled(message_id: uuid.UUID, result: Published | FusionbusError) -> None:
        assert isinstance(result, Published), result  # nothing is given up
        history.acked(message_id)
        acked_at.append(time.monotonic())

    box = Outbox(tmp_path / "outbox.sqlite")
    killed: int | None = None
    queued = 0
    async with agencies.publisher(outbox=box, ack_wait_s=30, on_settled=settled) as publisher:
        for at in range(0, TOTAL, CHUNK):
            chunk = reports[at : at + CHUNK]
            for report in chunk:
                history.sent(report.message_id)
            results = await publisher.publish_many(chunk)
            assert all(isinstance(r, Published | Queued) for r in results), results[:3]
            queued += sum(isinstance(r, Queued) for r in results)
            if killed is None and len(acked_at) >= KILL_AFTER:
                killed = await leader_of(state.bootstrap, agencies.topic, 0)
                await asyncio.to_thread(kafka_cluster.kill_node, killed)
                history.mark("kill")
        assert await publisher.wait_sent(300), f"{box.backlog()} still queued after 300 s"
        renewals = publisher.renewals
    box.close()
    assert killed is not None
    await _restart(kafka_cluster, killed)

    skipped = await agencies.read_all(history, {r.message_id for r in reports})
    verdict = history.check(readers=["app"])
    [kill_at] = history.marks("kill")
    gaps = [b - a for a, b in itertools.pairwise(acked_at) if a >= kill_at]
    print(
        f"\nleader kill through the outbox: killed node {killed}; {verdict.explain()}; "
        f"{queued} answered queued (Kafka slower than {30} s); producer recreated {renewals}x; "
        f"Kafka held {skipped['duplicate']} records twice, skipped; longest pause between "
        f"acknowledgements after the kill {max(gaps, default=0):.1f} s"
    )
    assert verdict.ok, verdict.explain()
    assert verdict.delivered == {"app": TOTAL}


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_reports_wait_through_a_whole_cluster_stop_and_flow_again_after_restart(
    kafka_cluster: EmbeddedKafka, tmp_path: Path
) -> None:
    state = kafka_cluster.state()
    assert state is not None
    agencies = Agencies(state.bootstrap)
    reports = agencies.reports(RESTART_TOTAL)
    history = History()
    box = Outbox(tmp_path / "outbox.sqlite")
    half = len(reports) // 2
    accept_s: list[float] = []

    def settled(message_id: uuid.UUID, result: Published | FusionbusError) -> None:
        assert isinstance(result, Published), result
        history.acked(message_id)

    async with agencies.publisher(outbox=box, ack_wait_s=1, on_settled=settled) as publisher:
        for report in reports[:half]:
            history.sent(report.message_id)
        await publisher.publish_many(reports[:half])
        assert await publisher.wait_sent(120)
        await asyncio.to_thread(kafka_cluster.stop)
        stopped = history.mark("cluster stopped")
        for at in range(half, len(reports), CHUNK):
            chunk = reports[at : at + CHUNK]
            for report in chunk:
                history.sent(report.message_id)
            began = time.monotonic()
            results = await publisher.publish_many(chunk)
            accept_s.append(time.monotonic() - began)
            assert all(isinstance(r, Queued) for r in results), results[:3]
        backlog = box.backlog()
        assert backlog.queued == len(reports) - half
        restarted = history.mark("cluster starting")
        await asyncio.to_thread(_start_again, kafka_cluster, state.nodes[0].client_port)
        started = history.mark("cluster started")
        assert await publisher.wait_sent(300), f"{box.backlog()} still queued after 300 s"
        drained = time.monotonic()
    box.close()
    first_ack = history.first_after("acked", restarted)
    assert first_ack is not None

    await agencies.read_all(history, {r.message_id for r in reports})
    verdict = history.check(readers=["app"])
    print(
        f"\nwhole-cluster stop: {len(reports) - half} reports accepted while it was down "
        f"(median {statistics.median(accept_s):.2f} s per {CHUNK}, with a 1 s wait for Kafka "
        f"each), down {restarted - stopped:.1f} s; the nodes took {started - restarted:.1f} s "
        f"to start; first acknowledgement {first_ack - restarted:.1f} s after the restart "
        f"began, outbox empty after "
        f"{drained - restarted:.1f} s; {verdict.explain()}"
    )
    assert verdict.ok, verdict.explain()
    assert verdict.delivered == {"app": len(reports)}


GATEWAY_TOTAL = 20_000 if LONG else 5_000


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_reports_posted_to_a_gateway_survive_a_leader_kill_once(
    kafka_cluster: EmbeddedKafka, tmp_path: Path
) -> None:
    """POSTed in batches of 250 to the sending agency's gateway (its outbox), read back from
    the receiving agency's gateway: the agencies, homes and HTTP are the operators'."""
    state = kafka_cluster.state()
    assert state is not None
    env = clean_env()
    history = History()
    with gateway_pair(state, tmp_path, "fk", category="narcotics", area="PK-BA", env=env) as world:
        writer, watcher = world.token(world.sender, "system"), world.token(world.sender, "viewer")
        reader = world.token(world.receiver, "viewer")
        topic = report_topic(world.sender, PLACE, "narcotics")
        killed: int | None = None
        answers: Counter[str] = Counter()
        async with httpx.AsyncClient(timeout=120) as client:
            await ready(client, world.out.url)
            await ready(client, world.inbox.url)
            for start in range(0, GATEWAY_TOTAL, 250):
                documents = [gateway_report() for _ in range(250)]
                for document in documents:
                    history.sent(document["message_id"])
                answer = await client.post(
                    f"{world.out.url}/v1/reports:batch", content=orjson.dumps(documents),
                    headers=bearer(writer) | {"Content-Type": "application/json"},
                )  # fmt: skip
                assert answer.status_code == 202, answer.text
                for item in answer.json()["reports"]:
                    answers[item["status"]] += 1
                    if item["status"] == "published":
                        history.acked(item["message_id"])
                if killed is None and start >= GATEWAY_TOTAL // 4:
                    killed = await leader_of(state.bootstrap, topic, 0)
                    await asyncio.to_thread(kafka_cluster.kill_node, killed)
                    history.mark("kill")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                stats = await client.get(f"{world.out.url}/v1/stats", headers=bearer(watcher))
                if stats.json()["outbox"]["queued"] == 0:
                    break
                await asyncio.sleep(1)
            assert stats.json()["outbox"]["queued"] == 0, stats.json()
            wanted = {e.report for e in history.events if e.kind == "sent"}
            acked = {e.report for e in history.events if e.kind == "acked"}
            for message_id in sorted(wanted - acked):
                history.acked(message_id)  # answered queued, sent since: the outbox is empty
            got = await received_ids(client, world.inbox.url, reader, wanted, deadline_s=300)
            for message_id in got:
                if message_id in wanted:
                    history.delivered(message_id, reader="gateway")
    assert killed is not None
    await _restart(kafka_cluster, killed)
    verdict = history.check(readers=["gateway"])
    print(
        f"\nleader kill through the gateway: killed node {killed}; answers {dict(answers)}; "
        f"{verdict.explain()}"
    )
    assert verdict.ok, verdict.explain()
    assert verdict.delivered == {"gateway": GATEWAY_TOTAL}


def gateway_report() -> dict[str, object]:
    document = example_report("narcotics", PLACE).model_dump(mode="json")
    document.pop("sender")
    document["handling"]["named_recipients"] = []
    return document
