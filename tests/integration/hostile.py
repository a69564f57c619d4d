"""Writing hostile records to real Kafka, as any agency able to write a topic could.

aiokafka's producer only writes header keys that are valid UTF-8; a record with any other
header key (which Kafka stores as it is, and which makes aiokafka's *consumer* raise) is
written here with aiokafka's pure-Python batch builder and a header key whose UTF-8
encoding is replaced by raw bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer import message_accumulator
from aiokafka.producer import producer as producer_module
from aiokafka.record import default_records

from broker.config import KafkaSettings, aiokafka_kwargs

HeaderList = Sequence[tuple[str, bytes]]


class RawKey(str):
    """A header key that encodes to arbitrary bytes (e.g. invalid UTF-8)."""

    raw: bytes

    def __new__(cls, raw: bytes) -> RawKey:
        made = super().__new__(cls, raw.decode("latin-1"))
        made.raw = raw
        return made

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return self.raw


@contextlib.contextmanager
def _python_builder() -> Iterator[None]:
    modules = (message_accumulator, producer_module)
    saved = [module.DefaultRecordBatchBuilder for module in modules]
    for module in modules:
        module.DefaultRecordBatchBuilder = default_records._DefaultRecordBatchBuilderPy
    try:
        yield
    finally:
        for module, builder in zip(modules, saved, strict=True):
            module.DefaultRecordBatchBuilder = builder


async def write(
    settings: KafkaSettings,
    records: Sequence[tuple[str, bytes | None, HeaderList]],
    *,
    max_request_size: int = 1_100_000,
) -> list[int]:
    """Write (topic, value, headers) records in order, each acknowledged; their offsets."""
    kwargs = aiokafka_kwargs(settings, "producer")
    kwargs["max_request_size"] = max_request_size
    with _python_builder():
        producer = AIOKafkaProducer(**kwargs)
        await producer.start()
        try:
            offsets = []
            for topic, value, headers in records:
                meta = await producer.send_and_wait(
                    topic, value=value, key=b"hostile", headers=list(headers)
                )
                offsets.append(meta.offset)
            return offsets
        finally:
            await producer.stop()
