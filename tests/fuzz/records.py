"""Mutations of the Kafka record around a value: its key, headers, topic and position.

The intake must give the same verdict whatever the clear, unauthenticated parts of a
record say, except that headers placing a record outside the subscription may make it
skipped (never accepted), and a signed envelope on another topic than its own is refused.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final, cast

from broker.topics import DIRECTORY_TOPIC, Header, quarantine_topic, report_topic
from consumers.intake import Record, Source

from .corpus import AGENCIES, NOW_MS, Base
from .values import MIB

__all__ = ["kafka", "odd_topics"]


def odd_topics(base: Base, topics: Sequence[str]) -> list[str]:
    own = base.topic
    others = [t for t in topics if t != own]
    header = base.header
    senders = [a for a in AGENCIES if a != header.sender][:3]
    try:
        resent = [report_topic(s, header.jurisdiction, header.category) for s in senders]
    except ValueError:
        resent = []
    return [
        *others,
        *resent,
        own.upper(),
        own + ".",
        own + "\x00",
        own.replace("reports", "report"),
        own.replace(".", "-"),
        own + "é",
        "",
        ".",
        "fusionbus.reports.",
        "x" * 10_000,
        DIRECTORY_TOPIC,
        quarantine_topic("anf"),
    ]


_HEADER_NAMES: Final = (
    "", " ", "fb-catégorie", "FB-CATEGORY", "fb-category ", "fb-category\x00", "\ud800",
    "x" * 100_000, Header.REASON, Header.SOURCE_TOPIC, "fb-", "fb-category\n",
)  # fmt: skip
_HEADER_VALUES: Final = (
    b"", b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00", b"narcotics\x00", b"NARCOTICS",
    b"arms", b"pk", b"PK", b"ZZ", b"XX", b"PK-SD", b"PK-ZZ", b"pk-\xc5\xbfd", b"PKKHI", b" PK ",
    b"PK\n", b"IN", b"\xef\xbb\xbfPK", b"A" * 17, b"A" * MIB,
)  # fmt: skip


def _headers(  # noqa: PLR0911 - one return per kind of mutation
    rng: random.Random, headers: tuple[tuple[str, bytes], ...]
) -> tuple[str, Any]:
    cat = next((v for n, v in headers if n == Header.CATEGORY), b"narcotics")
    where_ = next((v for n, v in headers if n == Header.JURISDICTION), b"PK-SD")
    routing = (Header.CATEGORY, Header.JURISDICTION)
    roll = rng.randrange(9)
    if roll == 0:
        return "none", ()
    if roll == 1:
        return "odd-name", (*headers, (rng.choice(_HEADER_NAMES), rng.choice(_HEADER_VALUES)))
    if roll == 2:  # a routing header with an odd value, in place
        name, value = rng.choice(routing), rng.choice(_HEADER_VALUES)
        kept = tuple(h for h in headers if h[0] != name)
        return f"odd-{name}", (*kept, (name, value))
    if roll == 3:  # the same routing header twice, the odd value first or last
        name = rng.choice(routing)
        own = cat if name == Header.CATEGORY else where_
        pair = [(name, own), (name, rng.choice(_HEADER_VALUES))]
        rng.shuffle(pair)
        return f"duplicate-{name}", (*headers, *pair)
    if roll == 4:
        return "many", headers + tuple((f"h{i}", b"v") for i in range(10_000))
    if roll == 5:  # Kafka allows a null header value; the client hands it over as None
        return "null-value", (*headers, (rng.choice(routing), None))
    if roll == 6:
        return "shuffled", tuple(rng.sample(headers, len(headers)))
    if roll == 7:
        return "both-outside", (*headers, (Header.CATEGORY, b"arms"), (Header.JURISDICTION, b"IN"))
    return "non-utf8", tuple((n, b"\xff" + v) for n, v in headers)


def kafka(  # noqa: PLR0911 - one return per kind of mutation
    rng: random.Random, record: Record, topics: list[str]
) -> tuple[str, Record]:
    """A record-level mutation of ``record`` (its value may already be mutated)."""
    source = record.source
    roll = rng.randrange(12)
    if roll == 0:
        return "kafka.value-none", replace(record, value=None)
    if roll == 1:
        return "kafka.value-empty", replace(record, value=b"")
    if roll == 2:
        key = rng.choice((b"", b"\xff\xfe\xed\xa0\x80", rng.randbytes(64), b"k" * MIB))
        return "kafka.key", replace(record, key=key)
    if roll <= 5:
        what, headers = _headers(rng, record.headers)
        return f"kafka.headers.{what}", replace(record, headers=cast(Any, headers))
    if roll <= 8:
        topic = rng.choice(topics)
        return "kafka.topic", replace(record, source=replace(source, topic=topic))
    if roll == 9:
        stamp = rng.choice((-1, -(2**63), 2**63 - 1, 2**64, 0, NOW_MS + 10**12, -NOW_MS))
        return "kafka.timestamp", replace(record, source=replace(source, timestamp_ms=stamp))
    if roll == 10:
        partition = rng.choice((-1, 2**31, -(2**63)))
        offset = rng.choice((-1, 2**63, 0))
        return "kafka.position", replace(
            record, source=Source(source.topic, partition, offset, source.timestamp_ms)
        )
    key = rng.randbytes(rng.randrange(40))
    headers = (*record.headers, (rng.choice(_HEADER_NAMES), rng.choice(_HEADER_VALUES)))
    return "kafka.key+headers", replace(record, key=key, headers=headers)
