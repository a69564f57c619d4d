"""Tail envelopes without decrypting them: the platform operator's view.

Each record's clear routing header is checked against the sender's *outer* signature by the
sans-IO :class:`consumers.intake.RawIntake`, which anyone with the directory's public keys
can run; the report itself stays sealed. Like the subscriber, the loop cannot be stopped by
a record: what the Kafka client cannot decode is reported as ``undecodable`` and passed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import Reason
from broker.topics import subscription_pattern
from broker.transport import start_client
from consumers._catchup import CatchUp
from consumers._stream import RecordStream, Undecodable
from consumers.intake import RawIntake, RawVerdict, Rejected, Source

if TYPE_CHECKING:
    from broker.federation import Directory

__all__ = ["RawHandler", "tail_raw"]

RawHandler = Callable[[Source, RawVerdict], Awaitable[None]]
"""Told of every record read: where it was read and its verdict."""


async def tail_raw(
    directory: Directory,
    settings: KafkaSettings,
    handler: RawHandler,
    *,
    categories: Sequence[str],
    jurisdictions: Sequence[str],
    from_beginning: bool = True,
    limit: int | None = None,
    exit_at_end: bool = False,
) -> int:
    """Hand each record's verdict (verified header, rejection or skip) to ``handler``;
    return how many records were handed over."""
    intake = RawIntake(directory, categories=categories, jurisdictions=jurisdictions)
    pattern = subscription_pattern(jurisdictions, categories)
    kwargs = aiokafka_kwargs(settings, "consumer")
    kwargs["auto_offset_reset"] = "earliest" if from_beginning else "latest"
    kwargs["metadata_max_age_ms"] = 5_000
    consumer = AIOKafkaConsumer(**kwargs)
    seen = 0
    catch_up = CatchUp() if exit_at_end else None
    try:
        await start_client(consumer, settings, "tailing raw envelopes")
        consumer.subscribe(pattern=pattern)
        stream = RecordStream(
            consumer, grouped=False, from_beginning=from_beginning, action="tailing raw envelopes"
        )
        while limit is None or seen < limit:
            for item in await stream.batch():
                if limit is not None and seen >= limit:
                    break
                if isinstance(item, Undecodable):
                    await handler(item.source, Rejected(Reason.UNDECODABLE, item.error))
                else:
                    await handler(item.source, intake.process(item))
                seen += 1
            if catch_up is not None and await catch_up.done(consumer):
                break
    finally:
        await consumer.stop()
    return seen
