"""Topic administration with the platform's durable defaults. Idempotent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import AuthorizationError
from broker.transport import kafka_code_error, map_kafka_errors

__all__ = ["ensure_topics"]

_ALREADY_EXISTS = kafka_errors.TopicAlreadyExistsError.errno


async def ensure_topics(
    settings: KafkaSettings,
    names: Iterable[str],
    *,
    partitions: int = 3,
    compacted: bool = False,
    retention_ms: int | None = None,
    retained: bool = False,
) -> list[str]:
    """Create the topics in ``names`` that do not exist yet; return those created.

    ``retention_ms`` sets how long their records are kept (the broker's default otherwise);
    an existing topic keeps its settings.

    Replication is ``min(3, brokers)`` with ``min.insync.replicas`` 2 when there are three or
    more replicas, so an acknowledged write (``acks=all``) survives the loss of one broker.
    """
    wanted = sorted(set(names))
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings, "admin"))
    with map_kafka_errors("creating topics"):
        await admin.start()
        try:
            brokers = len((await admin.describe_cluster())["brokers"])
            existing = set(await admin.list_topics())
            missing = [name for name in wanted if name not in existing]
            if not missing:
                return []
            replication = min(3, brokers)
            configs = {
                "min.insync.replicas": "2" if replication >= 3 else "1",
                "unclean.leader.election.enable": "false",
            }
            if compacted:
                configs["cleanup.policy"] = "compact"
            if retention_ms is not None:
                configs["retention.ms"] = str(retention_ms)
            if retained:  # kept for ever: an audit trail that expires is no trail
                configs["retention.ms"] = "-1"
                configs["retention.bytes"] = "-1"
            response = await admin.create_topics(
                [NewTopic(n, partitions, replication, topic_configs=configs) for n in missing]
            )
            created = _created(response.topic_errors)
            await _wait_for_leaders(admin, created)
        finally:
            await admin.close()
    return created


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str]) -> None:
    """Return once every partition of ``topics`` has a leader (or after ten seconds), so the
    first send does not meet NotLeaderForPartition."""
    deadline = asyncio.get_running_loop().time() + 10
    while topics and asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(topics)
        if all(
            t["error_code"] == 0
            and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
            for t in described
        ):
            return
        await asyncio.sleep(0.1)


def _created(topic_errors: list[tuple[str, int, str | None]]) -> list[str]:
    created = []
    for topic, code, *rest in topic_errors:
        if code == 0:
            created.append(topic)
        elif code != _ALREADY_EXISTS:  # already there (or a concurrent creator won): fine
            error = kafka_code_error(code, f"creating topic {topic!r}", rest[0] if rest else None)
            if isinstance(error, AuthorizationError):
                raise AuthorizationError(
                    f"{error} This principal may not create topics: in a secured cluster the "
                    "federation admin creates them — grant the category and jurisdiction "
                    "(`fusionbus agency grant ...`) or run `fusionbus federation sync-acls` on "
                    "the admin's machine."
                )
            raise error
    return created
