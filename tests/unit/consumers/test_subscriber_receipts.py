"""The subscriber's automatic ``received`` feedback: sent for each report handed over, and a
receipt Kafka refuses never stops the subscriber (over a fake Kafka consumer)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import TopicPartition
from structlog.testing import capture_logs

from broker.config import KafkaSettings
from broker.errors import AuthorizationError, TransportError
from broker.topics import report_topic
from consumers import Delivery, Subscriber
from schemas import Feedback, Outcome
from schemas.envelope import RoutingHeader
from tests.unit.consumers.test_intake import IDS, NOW, TRUST, _report, _sealed

pytestmark = pytest.mark.asyncio

TP = TopicPartition(report_topic("customs", "PKKHI", "narcotics"), 0)


class _Raw:
    def __init__(self, offset: int, value: bytes) -> None:
        self.topic, self.partition, self.offset, self.timestamp = TP.topic, TP.partition, offset, 0
        self.key: bytes | None = None
        self.value = value
        self.headers: list[tuple[str, bytes]] = []


class OneBatch:
    """A consumer with one partition that returns one batch, then waits forever."""

    def __init__(self, values: list[bytes]) -> None:
        self.values = values
        self._fetched = False

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self.values)

    async def position(self, tp: TopicPartition) -> int:
        return 0

    async def getmany(self, *_: Any, **__: Any) -> dict[TopicPartition, list[Any]]:
        if self._fetched:
            await asyncio.Event().wait()
        self._fetched = True
        return {TP: [_Raw(n, value) for n, value in enumerate(self.values)]}


class Receipts:
    """A receipt sender whose first receipt Kafka refuses and whose second it cannot send."""

    def __init__(self) -> None:
        self.sent: list[tuple[Feedback, RoutingHeader]] = []

    async def enqueue(self, feedback: Feedback, about: RoutingHeader) -> asyncio.Future[object]:
        self.sent.append((feedback, about))
        if len(self.sent) == 2:
            raise AuthorizationError("the originator has no usable key")
        answer: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if len(self.sent) == 1:
            answer.set_exception(TransportError("TopicAuthorizationFailed", retriable=False))
        else:
            answer.set_result(None)
        return answer


async def test_each_report_is_receipted_and_a_refused_receipt_stops_nothing() -> None:
    reports = [_report() for _ in range(3)]
    receipts = Receipts()
    subscriber = Subscriber(
        IDS["anf"], TRUST, KafkaSettings(), categories=["narcotics"], jurisdictions=["PK"],
        receipts=receipts, clock=lambda: NOW,
    )  # fmt: skip
    handed: list[Delivery] = []
    three = asyncio.Event()

    async def handler(delivery: Delivery) -> None:
        handed.append(delivery)
        if len(handed) == 3:
            three.set()

    consumer = OneBatch([_sealed(r) for r in reports])
    with capture_logs() as logs:
        task = asyncio.create_task(subscriber._loop(consumer, handler, None, False))
        async with asyncio.timeout(30):
            await three.wait()
            while sum(e["event"] == "subscriber.receipt_failed" for e in logs) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # until the batch's commit step awaited the receipts
        await asyncio.sleep(0)
        assert not task.done()  # still consuming
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert subscriber.handed_over == 3
    assert [f.report_id for f, _ in receipts.sent] == [r.message_id for r in reports]
    for feedback, about in receipts.sent:
        assert (feedback.outcome, feedback.sender, feedback.originator) == (
            Outcome.RECEIVED, "anf", "customs",
        )  # fmt: skip
        assert about.message_id == feedback.report_id
    failed = [e for e in logs if e["event"] == "subscriber.receipt_failed"]
    assert len(failed) == 2
