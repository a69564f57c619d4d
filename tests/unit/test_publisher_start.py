"""Issue 9 finding 11b: a failed ``Publisher.start`` left an unclosed producer behind."""

from __future__ import annotations

import gc
import socket
import warnings

import pytest

from broker.config import KafkaSettings
from broker.errors import TransportError
from broker.federation import DirectorySnapshot, DisseminationPolicy
from broker.keys import Identity
from producers import Publisher


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.asyncio
async def test_a_failed_start_closes_its_producer() -> None:
    settings = KafkaSettings(bootstrap=f"127.0.0.1:{_closed_port()}")
    directory = DirectorySnapshot()
    publisher = Publisher(
        Identity.generate("customs"), directory, DisseminationPolicy(directory), settings
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TransportError, match="could not reach Kafka"):
            await publisher.start()
        gc.collect()
    unclosed = [w for w in caught if "Unclosed AIOKafkaProducer" in str(w.message)]
    assert unclosed == []
