"""Publisher -> Kafka -> Subscriber with real keys on the real embedded Kafka.

The directory here is a snapshot of bare keys with no grants, so each test names its
recipients (:class:`Fixed`); the federation directory and its policy do that in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.envelope import Sealer, seal_report
from broker.federation import (
    DirectorySnapshot,
    DisseminationPolicy,
    EncryptionKeyRecord,
    SigningKeyRecord,
    agency_keys,
)
from broker.kafka import ClusterState
from broker.keys import Identity
from broker.topics import Header, quarantine_topic, report_topic
from consumers import Delivery, MemoryDelivered, Subscriber
from producers import Published, Publisher
from schemas import Report, example_report


@dataclass
class World:
    trust: DirectorySnapshot
    ids: dict[str, Identity]
    settings: KafkaSettings

    def kids(self, *agencies: str) -> list[str]:
        return [self.ids[a].encryption_kid for a in agencies]


@dataclass(frozen=True, slots=True)
class Fixed(DisseminationPolicy):
    """A policy naming the same recipients for every report."""

    kids: Sequence[str] = ()

    def recipients(self, report: Report, now: datetime) -> list[str]:
        return list(self.kids)


@pytest.fixture
def world(kafka: ClusterState) -> World:
    keys: list[SigningKeyRecord | EncryptionKeyRecord] = []
    ids: dict[str, Identity] = {}
    since = datetime.now(UTC) - timedelta(days=1)
    # Unique agency ids per test, so quarantine topics do not mix between tests.
    suffix = uuid.uuid4().hex[:6]
    for name in ("customs", "anf", "fia"):
        agency = f"{name}-{suffix}" if name != "customs" else "customs"
        ident = Identity.generate(agency)
        ids[name] = ident
        keys += agency_keys(
            agency, ident.signing_key.public, ident.encryption_key, valid_from=since
        )
    return World(DirectorySnapshot.of_keys(keys), ids, KafkaSettings(bootstrap=kafka.bootstrap))


def unique_report(jurisdiction: str = "PKKHI", category: str = "narcotics") -> Report:
    # A fresh jurisdiction-free topic per test is not possible (topics follow the scheme);
    # unique message ids keep tests apart, and subscribers filter on them.
    return example_report(category, jurisdiction)


async def collect(subscriber: Subscriber, wanted: set[uuid.UUID]) -> list[Delivery]:
    """Run ``subscriber`` until every wanted report arrived, then a second more."""
    got: list[Delivery] = []
    complete = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        if delivery.report.message_id in wanted:
            got.append(delivery)
        if {d.report.message_id for d in got} == wanted:
            complete.set()

    task = asyncio.create_task(subscriber.run(handler))
    try:
        await asyncio.wait_for(complete.wait(), 60)
        await asyncio.sleep(1.0)  # anything more would be a duplicate
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return got


@pytest.mark.asyncio
async def test_anf_receives_customs_narcotics_report_and_fia_does_not(world: World) -> None:
    report = unique_report()
    recipients = world.kids("customs", "anf")
    policy = Fixed(world.trust, recipients)
    async with Publisher(world.ids["customs"], world.trust, policy, world.settings) as publisher:
        receipt = await publisher.publish(report)
    assert isinstance(receipt, Published)  # no outbox: acknowledged or raised
    assert receipt.topic == report_topic("customs", "PKKHI", "narcotics")
    assert receipt.offset >= 0

    anf = Subscriber(
        world.ids["anf"], world.trust, world.settings,
        categories=["narcotics"], jurisdictions=["PK"],
    )  # fmt: skip
    [delivery] = await collect(anf, {report.message_id})
    assert delivery.report == report
    assert delivery.header.sender == "customs"

    fia = Subscriber(
        world.ids["fia"], world.trust, world.settings,
        categories=["narcotics"], jurisdictions=["PK"],
    )  # fmt: skip
    seen: list[Delivery] = []

    async def record(d: Delivery) -> None:
        seen.append(d)

    await asyncio.wait_for(fia.run(record, exit_at_end=True), 60)
    assert report.message_id not in {d.report.message_id for d in seen}
    assert fia.skipped >= 1  # it read the ciphertext but holds no key for it


@pytest.mark.asyncio
async def test_bad_records_are_quarantined_and_the_next_good_one_arrives(world: World) -> None:
    customs, anf = world.ids["customs"], world.ids["anf"]
    recipients = world.kids("customs", "anf")
    topic = report_topic("customs", "PK-BA", "arms")
    sealer = Sealer(customs, world.trust, clock=lambda: datetime.now(UTC))

    good_first = unique_report("PK-BA", "arms")
    envelope = seal_report(sealer, good_first, recipients)
    tampered = bytearray(envelope)
    at = envelope.index(b'"ciphertext":"') + 20
    tampered[at] = ord("A") if tampered[at] != ord("A") else ord("B")

    mallory = Identity.generate("customs")  # claims to be customs, key unknown to the trust
    forged = seal_report(
        Sealer(mallory, _with_agency(world, mallory), clock=lambda: datetime.now(UTC)),
        unique_report("PK-BA", "arms"),
        [*recipients],
    )
    good_last = unique_report("PK-BA", "arms")

    async with Publisher(
        customs, world.trust, Fixed(world.trust, recipients), world.settings
    ) as pub:
        await pub.publish(good_first)
        producer = AIOKafkaProducer(**aiokafka_kwargs(world.settings, "producer"))
        await producer.start()
        try:
            for value in (bytes(tampered), forged, envelope, b"\x00not json"):
                await producer.send_and_wait(topic, value=value, key=b"x")
        finally:
            await producer.stop()
        await pub.publish(good_last)

    subscriber = Subscriber(
        anf, world.trust, world.settings, categories=["arms"], jurisdictions=["PK-BA"],
        group_id=f"fusionbus.{anf.agency}.q", delivered=MemoryDelivered(),
    )  # fmt: skip
    got = await collect(subscriber, {good_first.message_id, good_last.message_id})
    # Each once; across partitions Kafka promises no order, so compare as a multiset.
    assert sorted(str(d.report.message_id) for d in got) == sorted(
        [str(good_first.message_id), str(good_last.message_id)]
    )

    reasons = await _quarantined(world.settings, quarantine_topic(anf.agency), 4)
    assert sorted(reasons) == sorted(["decrypt_failed", "unknown_key", "malformed", "replay"])


def _with_agency(world: World, ident: Identity) -> DirectorySnapshot:
    """The world's encryption keys and ``ident``'s keys (what the forger's own tools believe)."""
    since = datetime.now(UTC) - timedelta(days=1)
    known = [world.trust.encryption_key(i.encryption_kid) for i in world.ids.values()]
    return DirectorySnapshot.of_keys(
        [
            *agency_keys(
                ident.agency, ident.signing_key.public, ident.encryption_key, valid_from=since
            ),
            *(record for record in known if record is not None),
        ]
    )


async def _quarantined(settings: KafkaSettings, topic: str, count: int) -> list[str]:
    consumer = AIOKafkaConsumer(topic, **aiokafka_kwargs(settings, "consumer"))
    await consumer.start()
    reasons: list[str] = []
    try:
        async with asyncio.timeout(30):
            while len(reasons) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        headers = dict(record.headers)
                        reasons.append(headers[Header.REASON].decode())
                        assert b"heroin" not in headers[Header.DETAIL]  # no plaintext
    finally:
        await consumer.stop()
    return reasons


@pytest.mark.asyncio
async def test_a_restarted_subscriber_loses_nothing_and_repeats_nothing(world: World) -> None:
    customs, anf = world.ids["customs"], world.ids["anf"]
    recipients = world.kids("customs", "anf")
    reports = [unique_report("PK-KP", "cash_smuggling") for _ in range(300)]
    async with Publisher(
        customs, world.trust, Fixed(world.trust, recipients), world.settings
    ) as pub:
        results = await pub.publish_many(reports)
    assert all(not isinstance(r, Exception) for r in results)
    wanted = {r.message_id for r in reports}

    delivered = MemoryDelivered()  # outlives the "process": SqliteDelivered in production
    handed: list[uuid.UUID] = []
    group = f"fusionbus.{anf.agency}.restart"
    target = 0
    reached = asyncio.Event()

    async def handler(d: Delivery) -> None:
        await asyncio.sleep(0)  # a real handler awaits: a kill can land here, before success
        if d.report.message_id in wanted:
            handed.append(d.report.message_id)  # the handler succeeded: handed over
        if len(handed) >= target:
            reached.set()

    for _ in range(2):  # kill it mid-stream twice, then let a third one finish
        subscriber = Subscriber(
            anf, world.trust, world.settings, categories=["cash_smuggling"],
            jurisdictions=["PK-KP"], group_id=group, delivered=delivered,
        )  # fmt: skip
        target = len(handed) + 100
        reached.clear()
        task = asyncio.create_task(subscriber.run(handler))
        await asyncio.wait_for(reached.wait(), 60)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert 200 <= len(handed) < len(wanted), "the kills did not land mid-stream"
    final = Subscriber(
        anf, world.trust, world.settings, categories=["cash_smuggling"],
        jurisdictions=["PK-KP"], group_id=group, delivered=delivered,
    )  # fmt: skip
    await asyncio.wait_for(final.run(handler, exit_at_end=True), 60)
    assert len(handed) == len(set(handed)), "a report was handed over twice"
    assert set(handed) == wanted, f"{len(wanted - set(handed))} reports were lost"
