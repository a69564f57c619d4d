"""Issue 9 on real Kafka: no record can stop a Subscriber or stall its partition.

Each hostile record here used to crash every subscriber (and, with a consumer group, crash
it again on every restart, so nothing behind it was ever delivered): a recipient entry that
is not an object (finding 1), a header key that is not UTF-8 (finding 3), a near-1-MiB value
whose quarantine copy did not fit (finding 4). An envelope copied onto another topic was
handed over (finding 9). Now each is quarantined with a reason and the reports around them
arrive exactly once, across a restart.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import ConsumerRecord

from broker.config import KafkaSettings
from broker.envelope import Sealer, seal_report
from broker.envelope._wire import b64d, b64e
from broker.federation import DirectorySnapshot, agency_keys
from broker.kafka import ClusterState
from broker.keys import Identity
from broker.provisioning.topics import ensure_topics
from broker.topics import Header, quarantine_topic, report_topic
from consumers import Delivery, SqliteDelivered, Subscriber
from schemas import Report, example_report

from .cli_helpers import header, read_topic
from .hostile import RawKey, write


def _not_an_object_entry(envelope: bytes) -> bytes:
    doc = orjson.loads(envelope)
    protected = orjson.loads(b64d(doc["protected"]))
    kid = protected["fusionbus"]["recipients"][0]
    protected["fusionbus"]["recipients"] = [kid]
    protected["kid"] = kid
    return orjson.dumps(
        {**doc, "protected": b64e(orjson.dumps(protected)).decode(), "recipients": ["x"]}
    )


@pytest.mark.asyncio
async def test_hostile_records_are_quarantined_and_every_report_arrives_once(
    kafka: ClusterState, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    sender, reader = f"cu-{suffix}", f"an-{suffix}"
    ids = {a: Identity.generate(a) for a in (sender, reader)}
    trust = DirectorySnapshot.of_keys(
        key
        for agency, ident in ids.items()
        for key in agency_keys(
            agency, ident.signing_key.public, ident.encryption_key,
            valid_from=datetime.now(UTC) - timedelta(days=1),
        )
    )  # fmt: skip
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    # A category and area no other test writes, so the subscription reads only these topics.
    primary = report_topic(sender, "PK-JK", "cultural_property")
    other = report_topic(sender, "PK-JK", "counterfeit_goods")
    await ensure_topics(settings, [primary, other], partitions=1)
    sealer = Sealer(ids[sender], trust, clock=lambda: datetime.now(UTC))
    kids = [ids[reader].encryption_kid]

    def genuine() -> tuple[Report, bytes]:
        report = example_report("cultural_property", "PK-JK").model_copy(update={"sender": sender})
        return report, seal_report(sealer, report, kids)

    reports = [genuine() for _ in range(5)]
    copied = reports[4][1]
    records = [
        (primary, reports[0][1], ()),
        (primary, b'{"fine": 1}', [(RawKey(b"\xff\xfe-not-utf8"), b"x")]),  # finding 3
        (primary, reports[1][1], ()),
        (primary, b"\x00" * 1_048_000, ()),  # finding 4: garbage close to the 1 MiB limit
        (primary, reports[2][1], ()),
        (primary, _not_an_object_entry(reports[3][1]), ()),  # finding 1
        (primary, reports[3][1], ()),
        (other, copied, ()),  # finding 9: an envelope copied onto another category's topic
        (primary, reports[4][1], ()),
    ]
    await write(settings, records)
    expected = {r.message_id for r, _ in reports}
    store_path = tmp_path / "delivered.sqlite"
    group = f"fusionbus.{reader}.desk"

    async def run_once(stop_after: int | None) -> tuple[list[Delivery], Subscriber]:
        got: list[Delivery] = []

        async def handler(delivery: Delivery) -> None:
            got.append(delivery)

        store = SqliteDelivered(store_path)
        subscriber = Subscriber(
            ids[reader], trust, settings, categories=["cultural_property", "counterfeit_goods"],
            jurisdictions=["PK-JK"], group_id=group, delivered=store,
        )  # fmt: skip
        try:
            await asyncio.wait_for(
                subscriber.run(handler, limit=stop_after, exit_at_end=stop_after is None), 300
            )
        finally:
            store.close()
        return got, subscriber

    first, _ = await run_once(stop_after=2)  # stop part-way, like a restart
    second, _ = await run_once(stop_after=None)
    delivered = [d.report.message_id for d in first + second]
    assert sorted(map(str, delivered)) == sorted(map(str, expected)), "each report exactly once"

    mine = {primary, other}  # in case another sender ever writes the same category and area

    def all_four(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return sum(header(r, Header.SOURCE_TOPIC) in mine for r in records) >= 4

    quarantined = [
        r
        for r in await read_topic(kafka.bootstrap, quarantine_topic(reader), all_four)
        if header(r, Header.SOURCE_TOPIC) in mine
    ]
    reasons = {(header(r, Header.SOURCE_TOPIC), header(r, Header.REASON)) for r in quarantined}
    assert (primary, "undecodable") in reasons
    assert (primary, "malformed") in reasons
    assert (other, "wrong_topic") in reasons
    [big] = [r for r in quarantined if header(r, Header.TRUNCATED) == "value"]
    assert header(big, Header.ORIGINAL_SIZE) == "1048000"
    assert big.value == b"\x00" * len(big.value)
    [undecodable] = [r for r in quarantined if header(r, Header.REASON) == "undecodable"]
    assert header(undecodable, Header.SOURCE_OFFSET) == "1"
    assert "UnicodeDecodeError" in (header(undecodable, Header.DETAIL) or "")
