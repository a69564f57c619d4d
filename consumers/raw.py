"""Tail envelopes without decrypting them: the platform operator's view.

Each record's clear routing header is checked against the sender's *outer* signature
(``verify_envelope``), which anyone with the directory's public keys can verify; the
report itself stays sealed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.envelope import verify_envelope
from broker.errors import VerificationError
from broker.topics import subscription_pattern
from broker.transport import map_kafka_errors
from broker.trust import TrustStore
from consumers._catchup import CatchUp
from schemas.envelope import RoutingHeader

__all__ = ["RawHandler", "tail_raw"]

RawHandler = Callable[
    [ConsumerRecord[bytes, bytes], RoutingHeader | None, VerificationError | None],
    Awaitable[None],
]


async def tail_raw(
    trust: TrustStore,
    settings: KafkaSettings,
    handler: RawHandler,
    *,
    categories: Sequence[str],
    jurisdictions: Sequence[str],
    from_beginning: bool = True,
    limit: int | None = None,
    exit_at_end: bool = False,
) -> int:
    """Hand each record's verified header (or why it failed) to ``handler``; return count."""
    kwargs = aiokafka_kwargs(settings, "consumer")
    kwargs["auto_offset_reset"] = "earliest" if from_beginning else "latest"
    kwargs["metadata_max_age_ms"] = 5_000
    consumer = AIOKafkaConsumer(**kwargs)
    seen = 0
    catch_up = CatchUp() if exit_at_end else None
    with map_kafka_errors("tailing raw envelopes"):
        await consumer.start()
        try:
            consumer.subscribe(pattern=subscription_pattern(jurisdictions, categories))
            while limit is None or seen < limit:
                batch = await consumer.getmany(timeout_ms=500, max_records=500)
                for records in batch.values():
                    for record in records[: None if limit is None else limit - seen]:
                        try:
                            header = verify_envelope(record.value or b"", trust, datetime.now(UTC))
                        except VerificationError as exc:
                            await handler(record, None, exc)
                        else:
                            await handler(record, header, None)
                        seen += 1
                if catch_up is not None and await catch_up.done(consumer):
                    break
        finally:
            await consumer.stop()
    return seen
