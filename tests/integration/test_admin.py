"""Topic creation against real Kafka: durable defaults, idempotence, clear errors."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import TransportError
from broker.kafka import ClusterState, EmbeddedKafka
from broker.provisioning.topics import ensure_topics
from broker.topics import report_topic


async def _topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(KafkaSettings(bootstrap=bootstrap), "admin"))
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    return {name: value for name, value, *_ in response.resources[0][4]}


@pytest.mark.asyncio
async def test_topics_are_created_once(kafka: ClusterState, topic: str) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    names = [f"{topic}.a", f"{topic}.b"]
    assert await ensure_topics(settings, names) == names
    assert await ensure_topics(settings, [*names, f"{topic}.c"]) == [f"{topic}.c"]
    assert await ensure_topics(settings, names) == []


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_report_topics_on_three_nodes_need_two_in_sync_replicas(
    kafka_cluster: EmbeddedKafka, topic: str
) -> None:
    state = kafka_cluster.state()
    assert state is not None
    name = report_topic("customs", "PKKHI", "narcotics") + "." + topic
    await ensure_topics(KafkaSettings(bootstrap=state.bootstrap), [name])
    config = await _topic_config(state.bootstrap, name)
    assert config["min.insync.replicas"] == "2"
    assert config["unclean.leader.election.enable"] == "false"


@pytest.mark.asyncio
async def test_an_unreachable_cluster_is_a_retriable_transport_error() -> None:
    settings = KafkaSettings(bootstrap="127.0.0.1:1", request_timeout_ms=2_000)
    with pytest.raises(TransportError, match="could not reach Kafka") as caught:
        await ensure_topics(settings, ["never"])
    assert caught.value.retriable
