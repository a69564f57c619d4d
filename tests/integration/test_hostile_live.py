"""Hostile records at scale through a live Subscriber and ``fusionbus tail --group``.

Genuine reports, published with ``fusionbus publish``, interleaved with hostile records
written straight to the same topics by someone who can write them but holds no key: each
genuine report must be delivered exactly once, across a restart in the middle; every
hostile record must be quarantined or skipped with a reason; consumption never stalls.

The default run is short (1,000 hostile, 100 genuine); ``FUSIONBUS_LONG=1`` (what
``.ci/run`` sets) runs the issue's 10,000 hostile records and 1,000 genuine reports.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from broker.config import KafkaSettings
from broker.envelope._wire import b64d, b64e
from broker.federation import Federation
from broker.kafka import ClusterState
from broker.topics import Header, report_topic
from consumers import Delivery, SkipReason, Source, SqliteDelivered, Subscriber, new_group_id

from .cli_helpers import Fusionbus, failed, json_lines, read_topic
from .hostile import HeaderList, RawKey, write

LONG = os.environ.get("FUSIONBUS_LONG") == "1"
CATEGORY, PLACE = "migrant_smuggling", "PK-JK"
"""A category and area no other test writes: the thousands of hostile records left on these
topics must not be read by every later subscriber of the test session."""
HOSTILE, GENUINE, ROUNDS = (10_000, 1_000, 10) if LONG else (1_000, 100, 4)


def _mutate(  # noqa: PLR0911 - one return per kind of mutation
    rng: random.Random, envelope: bytes, other: bytes
) -> tuple[bytes | None, HeaderList]:
    """One hostile (value, headers) made from a genuine envelope."""
    doc = orjson.loads(envelope)
    kind = rng.randrange(12)
    if kind == 0:  # flip one byte anywhere
        data = bytearray(envelope)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return bytes(data), ()
    if kind == 1:  # truncate
        return envelope[: rng.randrange(len(envelope))], ()
    if kind == 2:  # a member of another type
        member = rng.choice(sorted(doc))
        doc[member] = rng.choice([None, True, 1, 1.5, -1, "", [], {}, ["x"], {"a": {}}])
        return orjson.dumps(doc), ()
    if kind == 3:  # routing header values changed (not re-signed), other spellings included
        protected = orjson.loads(b64d(doc["protected"]))
        field = rng.choice(sorted(protected["fusionbus"]))
        protected["fusionbus"][field] = rng.choice([True, 1.0, "PK", "x" * 300, None, [1]])
        doc["protected"] = b64e(orjson.dumps(protected)).decode()
        return orjson.dumps(doc), ()
    if kind == 4:  # recipient entries that are not objects
        doc["recipients"] = [rng.choice(["x", 1, None, [], True])]
        return orjson.dumps(doc), ()
    if kind == 5:  # duplicate members
        text = envelope.decode()
        return text.replace('"iv":', f'"iv":"{doc["iv"]}","iv":', 1).encode(), ()
    if kind == 6:  # parts of two genuine envelopes spliced
        mixed = {**doc, "ciphertext": orjson.loads(other)["ciphertext"]}
        return orjson.dumps(mixed), ()
    if kind == 7:  # a header key that is not UTF-8 (aiokafka itself cannot decode it)
        return envelope, [(RawKey(bytes([0xFF, rng.randrange(256)])), b"x")]
    if kind == 8:  # lying and odd clear headers on a tampered envelope
        tampered = envelope.replace(b'"tag":"', b'"tag":"A', 1)
        headers = [(Header.CATEGORY, rng.randbytes(4)), (Header.JURISDICTION, b"PKKHI")]
        return tampered, headers
    if kind == 9:  # deep nesting
        depth = rng.choice([100, 5_000])
        return b"[" * depth + b"]" * depth, ()
    if kind == 10:  # empty or missing value
        return rng.choice([None, b"", b"null", b"{}"]), ()
    return rng.randbytes(rng.choice([1, 64, 4_096])), ()  # noise


async def _interleave(cli: Fusionbus, sender: str, topic: str) -> tuple[list[str], set[int]]:
    """Publish GENUINE reports with the CLI in ROUNDS, each followed by its share of hostile
    records made from the envelopes written so far; (genuine ids, hostile offsets)."""
    settings = KafkaSettings(bootstrap=cli.bootstrap)
    rng = random.Random(20261201)
    document = orjson.loads(
        cli.ok("report", "example", "--category", CATEGORY, "--jurisdiction", PLACE)
    )
    for filled_in in ("message_id", "sender", "created_at"):
        document.pop(filled_in)
    document["handling"]["named_recipients"] = []  # it names fia, not in this federation
    genuine_ids: list[str] = []
    hostile_offsets: set[int] = set()
    envelopes: list[bytes] = []
    per_round = GENUINE // ROUNDS
    for _ in range(ROUNDS):
        published = cli.ok(
            "publish", "--agency", sender, "-",
            stdin="".join(orjson.dumps(document).decode() + "\n" for _ in range(per_round)),
        ).split()  # fmt: skip
        assert len(published) == per_round
        genuine_ids += published
        if not envelopes:  # read once, before any hostile record is there to trip the reader
            envelopes = [
                r.value
                for r in await read_topic(
                    cli.bootstrap, topic, lambda rs: len(rs) >= per_round, deadline_s=60
                )
                if r.value is not None
            ]
        hostile = [
            (topic, *_mutate(rng, rng.choice(envelopes), rng.choice(envelopes)))
            for _ in range(HOSTILE // ROUNDS)
        ]
        hostile_offsets |= set(await write(settings, hostile))
    return genuine_ids, hostile_offsets


async def _through_the_api(
    home: Path, bootstrap: str, reader: str, store: Path
) -> tuple[list[str], dict[tuple[str, int], str], dict[tuple[str, int], SkipReason], Counter[str]]:
    """The Python API, stopped after half the reports and restarted with the same group and
    delivery store: (delivered ids, rejected offsets, skipped offsets, verdict counts)."""
    federation = Federation.load(home)
    rejected: dict[tuple[str, int], str] = {}
    skipped: dict[tuple[str, int], SkipReason] = {}
    delivered: list[str] = []
    verdicts: Counter[str] = Counter()

    async def handler(delivery: Delivery) -> None:
        delivered.append(str(delivery.report.message_id))

    async def on_reject(source: Source, reason: str, detail: str) -> None:
        rejected[source.topic, source.offset] = reason

    async def on_skip(source: Source, reason: SkipReason) -> None:
        skipped[source.topic, source.offset] = reason

    group = new_group_id(reader, "desk")
    for limit in (GENUINE // 2, None):
        delivered_store = SqliteDelivered(store)
        subscriber = Subscriber(
            federation.identity(reader), federation.snapshot,
            KafkaSettings(bootstrap=bootstrap), categories=[CATEGORY], jurisdictions=[PLACE],
            group_id=group, delivered=delivered_store, on_reject=on_reject, on_skip=on_skip,
        )  # fmt: skip
        try:
            await asyncio.wait_for(
                subscriber.run(handler, limit=limit, exit_at_end=limit is None), 600
            )
        finally:
            delivered_store.close()
        verdicts.update(subscriber.intake.counts)
    return delivered, rejected, skipped, verdicts


@pytest.mark.asyncio
async def test_hostile_records_at_scale_never_stop_the_feed(
    kafka: ClusterState, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    sender, reader = f"cu-{suffix}", f"an-{suffix}"
    home = tmp_path / "home"
    cli = Fusionbus(home, kafka.bootstrap)
    cli.ok("federation", "init")
    for agency, category in ((sender, "contraband"), (reader, CATEGORY)):
        cli.ok("agency", "add", agency, "--name", agency.upper())
        cli.ok("agency", "grant", agency, "--category", category, "--jurisdiction", PLACE)
    topic = report_topic(sender, PLACE, CATEGORY)
    genuine_ids, hostile_offsets = await _interleave(cli, sender, topic)
    assert len(genuine_ids) == GENUINE
    assert len(hostile_offsets) == HOSTILE

    # Should another test's sender ever write this category and area, the subscription reads
    # it too: compare what came from this test's sender (by topic) or carries its report ids.
    api_started = time.monotonic()
    delivered, rejected, skipped, verdicts = await _through_the_api(
        home, kafka.bootstrap, reader, tmp_path / "api.sqlite"
    )
    api_s = time.monotonic() - api_started
    mine = set(genuine_ids)
    assert sorted(d for d in delivered if d in mine) == sorted(genuine_ids), "exactly once"
    hostile = {(topic, offset) for offset in hostile_offsets}
    assert hostile <= set(rejected) | set(skipped), "every hostile record has a verdict"
    assert "internal_error" not in rejected.values()
    assert Counter(rejected.values())["undecodable"] >= 1
    print(f"\nSubscriber, two runs over {HOSTILE} hostile + {GENUINE} genuine: {api_s:.1f} s, "
          f"verdicts {dict(verdicts)}")  # fmt: skip

    # The CLI, as an operator runs it: `tail --group`, stopped part-way, then resumed.
    started = datetime.now(UTC)
    lines = []
    for extra in (["--count", str(GENUINE // 2)], ["--exit-at-end"]):
        result = cli.run(
            "tail", "--agency", reader, "--json", "--from-beginning", "--group", "desk-cli",
            *extra,
        )  # fmt: skip
        assert result.returncode == 0, failed(result)
        assert "Traceback" not in result.stderr
        lines += json_lines(result.stdout)
    shown = [line["report"]["message_id"] for line in lines if "report" in line]
    shown = [message_id for message_id in shown if message_id in mine]
    assert sorted(shown) == sorted(genuine_ids), "tail --group shows each report exactly once"
    flagged = {
        (line["source"].split("/")[0], int(line["source"].rsplit("@", 1)[1]))
        for line in lines
        if line.get("quarantined")
    }
    assert {k for k in flagged if k[0] == topic} == {k for k in rejected if k[0] == topic}
    print(f"tail --group: {len(shown)} reports, {len(flagged)} quarantined in "
          f"{(datetime.now(UTC) - started).total_seconds():.1f} s")  # fmt: skip
