"""Ask a running cluster what it looks like, over the Kafka protocol (not a sleep or log grep)."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient

__all__ = ["broker_count"]


async def broker_count(bootstrap: str, *, wait_s: float = 5.0) -> int:
    """How many brokers the cluster's metadata lists (registered and unfenced)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(wait_s * 1000))
    try:
        async with asyncio.timeout(wait_s):
            await admin.start()
            cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    return len(cluster.get("brokers", []))
