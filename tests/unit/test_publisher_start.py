"""Issue 9 finding 11b: a failed ``Publisher.start`` left an unclosed producer behind."""

from __future__ import annotations

import gc
import socket
import warnings

import pytest

from broker.config import KafkaSettings
from broker.errors import TransportError
from broker.keys import Identity
from broker.trust import MemoryTrustStore
from producers import Publisher


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.asyncio
async def test_a_failed_start_closes_its_producer() -> None:
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{_closed_port()}")
    publisher = Publisher(
        Identity.generate("customs"), MemoryTrustStore(), lambda r, n: (), settings
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TransportError, match="could not reach Kafka"):
            await publisher.start()
        gc.collect()
    unclosed = [w for w in caught if "Unclosed AIOKafkaProducer" in str(w.message)]
    assert unclosed == []
