"""Fixtures shared by all tests: the real embedded Kafka and fresh topic names.

Integration tests talk to real Apache Kafka started here. A missing prerequisite (Java 17+,
Maven) fails the test with the message saying how to install it; nothing is skipped.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.errors import KafkaRuntimeError
from broker.kafka import ClusterState, EmbeddedKafka, KafkaDistribution, ensure_distribution


@pytest.fixture(scope="session")
def kafka_dist() -> KafkaDistribution:
    """The verified Kafka jars (fetched once per machine into ~/.cache/fusionbus)."""
    try:
        return ensure_distribution()
    except KafkaRuntimeError as exc:
        pytest.fail(f"cannot prepare Apache Kafka for the integration tests: {exc}", pytrace=False)


def _start(
    dist: KafkaDistribution, data_dir: Path, nodes: int
) -> tuple[EmbeddedKafka, ClusterState]:
    cluster = EmbeddedKafka(data_dir, nodes=nodes, port=0, heap_mb=512)
    try:
        return cluster, cluster.start(dist)
    except KafkaRuntimeError as exc:
        pytest.fail(f"the embedded {nodes}-node Kafka did not start: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def kafka(
    kafka_dist: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ClusterState]:
    """A 1-node KRaft cluster on loopback, started once per test session."""
    cluster, state = _start(kafka_dist, tmp_path_factory.mktemp("kafka-1node"), 1)
    yield state
    cluster.stop()


@pytest.fixture(scope="session")
def kafka_cluster(
    kafka_dist: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedKafka]:
    """A 3-node KRaft cluster for tests marked ``cluster`` (fault tests may kill nodes)."""
    cluster, _ = _start(kafka_dist, tmp_path_factory.mktemp("kafka-3node"), 3)
    yield cluster
    cluster.stop()


@pytest.fixture
def topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:80]
    return f"test-{stem}-{uuid.uuid4().hex[:8]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration are integration tests; cluster tests are both."""
    for item in items:
        if "tests/integration" in str(item.path) or item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.integration)
