"""Ask a running cluster what it looks like, over the Kafka protocol (not a sleep or log grep)."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

from broker.config import KafkaSettings, aiokafka_kwargs

__all__ = ["broker_count"]


async def broker_count(settings: KafkaSettings, *, wait_s: float = 5.0) -> int:
    """How many brokers the cluster's metadata lists (registered and unfenced); over TLS
    with the settings' certificate when the cluster is secured."""
    kwargs = aiokafka_kwargs(settings, "admin") | {"request_timeout_ms": int(wait_s * 1000)}
    admin = AIOKafkaAdminClient(**kwargs)
    try:
        async with asyncio.timeout(wait_s):
            await admin.start()
            cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return len(cluster.get("brokers", []))
