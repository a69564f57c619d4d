"""A producer stuck on ``OutOfOrderSequenceNumber`` (aiokafka#1017) is recreated, and what it
failed to send goes out again as the very same bytes: nothing lost, nothing a receiver could
take for a second report. The Kafka client is replaced by a scripted one here; the real
broker faults are in tests/integration/test_publisher_faults.py."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber, RecordTooLargeError

from broker.config import KafkaSettings
from broker.errors import AuthorizationError, FusionbusError
from broker.federation import DirectorySnapshot, EncryptionKeyRecord, SigningKeyRecord, agency_keys
from broker.keys import Identity
from broker.topics import report_topic
from producers import Outbox, Published, Publisher
from schemas import Report, example_report
from tests.integration.test_pubsub import Fixed


@dataclass
class Script:
    """What each new producer does: the n-th producer made fails every send with
    ``failures[n]`` (None: succeeds)."""

    failures: list[BaseException | None]
    made: int = 0
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    """(producer number, envelope) of every send that succeeded."""
    attempted: list[tuple[int, bytes]] = field(default_factory=list)
    """(producer number, envelope) of every send."""


class FakeProducer:
    script: Script

    def __init__(self, **_: Any) -> None:
        self.number = self.script.made
        self.script.made += 1

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, topic: str, *, value: bytes, **_: Any) -> asyncio.Future[object]:
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        failures = self.script.failures
        failure = failures[self.number] if self.number < len(failures) else None
        self.script.attempted.append((self.number, value))
        if failure is not None:
            future.set_exception(failure)
        else:
            self.script.sent.append((self.number, value))
            future.set_result(_Meta(0, len(self.script.sent) - 1))
        return future


@dataclass
class _Meta:
    partition: int
    offset: int


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    made = Script([])
    monkeypatch.setattr(FakeProducer, "script", made, raising=False)
    monkeypatch.setattr("producers._client.AIOKafkaProducer", FakeProducer)

    async def no_topics(*_: object, **__: object) -> None:
        return None

    monkeypatch.setattr("producers.publisher.ensure_topics", no_topics)
    return made


def publisher(**kwargs: Any) -> tuple[Publisher, list[Report]]:
    sender, reader = Identity.generate("customs"), Identity.generate("anf")
    since = datetime.now(UTC) - timedelta(days=1)
    keys: list[SigningKeyRecord | EncryptionKeyRecord] = []
    for ident in (sender, reader):
        keys += agency_keys(
            ident.agency, ident.signing_key.public, ident.encryption_key, valid_from=since
        )
    trust = DirectorySnapshot.of_keys(keys)
    made = Publisher(
        sender, trust, Fixed(trust, [reader.encryption_kid]), KafkaSettings(), **kwargs
    )
    reports = [
        example_report().model_copy(update={"message_id": uuid.uuid4(), "sender": "customs"})
        for _ in range(3)
    ]
    return made, reports


@pytest.mark.asyncio
async def test_a_stuck_producer_is_recreated_and_the_same_bytes_go_out_again(
    script: Script,
) -> None:
    script.failures = [OutOfOrderSequenceNumber(), None]
    sender, reports = publisher()
    async with sender:
        first = await sender.publish_many(reports)
        assert all(isinstance(r, FusionbusError) for r in first)
        assert "OutOfOrderSequenceNumber" in str(first[0])
        assert sender.renewals == 1
        again = await sender.publish_many(reports)  # the caller publishes the same reports
    assert all(isinstance(r, Published) for r in again)
    assert script.made == 2
    assert [n for n, _ in script.sent] == [1, 1, 1]  # all by the second producer
    failed = [envelope for number, envelope in script.attempted if number == 0]
    assert [envelope for _, envelope in script.sent] == failed  # byte for byte
    assert len(set(failed)) == 3
    assert sender._unsent == {}


@pytest.mark.asyncio
async def test_a_changed_report_is_sealed_anew_not_sent_as_the_old_bytes(script: Script) -> None:
    script.failures = [OutOfOrderSequenceNumber(), None]
    sender, reports = publisher()
    async with sender:
        await sender.publish_many(reports[:1])
        changed = reports[0].model_copy(update={"title": "corrected title"})
        [result] = await sender.publish_many([changed])
    assert isinstance(result, Published)
    [(_, envelope)] = script.sent
    assert b"corrected title" not in envelope  # sealed: the title is not in clear
    assert sender._unsent == {}


@pytest.mark.asyncio
async def test_the_outbox_renews_the_producer_and_sends_everything_once_in_order(
    script: Script, tmp_path: Path
) -> None:
    script.failures = [OutOfOrderSequenceNumber(), OutOfOrderSequenceNumber(), None]
    box = Outbox(tmp_path / "outbox.sqlite")
    told: list[uuid.UUID] = []
    sender, reports = publisher(outbox=box, ack_wait_s=0, on_settled=lambda m, r: told.append(m))
    async with sender:
        await sender.publish_many(reports)
        assert await sender.wait_sent(30)
    assert sender.renewals == 2
    assert told == [r.message_id for r in reports]
    assert {n for n, _ in script.sent} == {2}
    first = [envelope for number, envelope in script.attempted if number == 0]
    assert [envelope for _, envelope in script.sent] == first  # the sealed rows, unchanged
    box.close()


@pytest.mark.asyncio
async def test_a_record_kafka_refuses_for_good_fails_and_is_not_retried(
    script: Script, tmp_path: Path
) -> None:
    script.failures = [RecordTooLargeError()]
    box = Outbox(tmp_path / "outbox.sqlite")
    sender, reports = publisher(outbox=box, ack_wait_s=5)
    async with sender:
        results = await sender.publish_many(reports[:1])
    [result] = results
    assert isinstance(result, FusionbusError)
    assert "RecordTooLargeError" in str(result)
    assert sender.renewals == 0
    assert box.backlog().failed == 1
    assert box.backlog().queued == 0
    box.close()


@pytest.mark.asyncio
async def test_a_topic_this_agency_may_not_create_fails_its_reports_and_not_the_others(
    script: Script, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script.failures = [None]
    sender, reports = publisher(outbox=Outbox(tmp_path / "outbox.sqlite"), ack_wait_s=5)
    arms = reports[1].model_copy(update={"category": "arms"})
    refused_topic = report_topic(arms.sender, arms.jurisdiction, arms.category)
    assert refused_topic != report_topic(reports[0].sender, reports[0].jurisdiction, "narcotics")

    async def some_topics(_: object, topics: set[str], **__: object) -> None:
        if refused_topic in topics:
            raise AuthorizationError(f"Kafka refused creating topic {refused_topic!r}")

    monkeypatch.setattr("producers.publisher.ensure_topics", some_topics)
    async with sender:
        results = await sender.publish_many([reports[0], arms])
    assert isinstance(results[0], Published)
    assert isinstance(results[1], AuthorizationError)
    assert "refused creating topic" in str(results[1])
    assert sender.outbox is not None
    assert sender.outbox.backlog().failed == 1
    assert sender.outbox.backlog().queued == 0
    sender.outbox.close()
