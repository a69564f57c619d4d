"""Fixtures shared by all tests: the real embedded Kafka and fresh topic names.

Integration tests talk to real Apache Kafka started here. A missing prerequisite (Java 17+,
Maven) fails the test with the message saying how to install it; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog

from broker.errors import KafkaRuntimeError
from broker.federation import Federation
from broker.home import write_config
from broker.kafka import (
    ClusterState,
    ClusterTls,
    EmbeddedKafka,
    KafkaDistribution,
    ensure_distribution,
)
from broker.provisioning.acls import apply_directory
from broker.provisioning.pki import ClusterPki


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Put structlog's and the root logger's configuration back after each test: a CLI
    command run in-process configures logging onto the test's captured stream, which is
    closed once the test ends, and a later test would log into it."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def kafka_dist() -> KafkaDistribution:
    """The verified Kafka jars (fetched once per machine into ~/.cache/fusionbus)."""
    try:
        return ensure_distribution()
    except KafkaRuntimeError as exc:
        pytest.fail(f"cannot prepare Apache Kafka for the integration tests: {exc}", pytrace=False)


def _start(
    dist: KafkaDistribution, data_dir: Path, nodes: int, secure: ClusterTls | None = None
) -> tuple[EmbeddedKafka, ClusterState]:
    cluster = EmbeddedKafka(data_dir, nodes=nodes, port=0, heap_mb=512, secure=secure)
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


@dataclass(frozen=True)
class SecureWorld:
    """A secured 1-node cluster and the admin's home that runs it: a federation of customs,
    anf (narcotics in PK) and fia (human trafficking in PK), their certificates, topics and
    ACLs, and ``config.toml`` saying the cluster is mTLS."""

    home: Path
    state: ClusterState
    cluster: EmbeddedKafka

    @property
    def bootstrap(self) -> str:
        return self.state.bootstrap


@pytest.fixture(scope="session")
def secure_kafka(
    kafka_dist: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecureWorld]:
    """A secured (mutual TLS + ACLs) 1-node cluster with a demo federation, once per session."""
    home = tmp_path_factory.mktemp("secure") / "home"
    now = datetime.now(UTC).replace(microsecond=0)
    federation = Federation.init(home, now=now)
    pki = ClusterPki(home)
    for agency, category in (
        ("customs", "contraband"),
        ("anf", "narcotics"),
        ("fia", "human_trafficking"),
    ):
        federation.add_agency(agency, agency.upper(), now=now)
        federation.grant(agency, categories=[category], jurisdictions=["PK"], now=now)
        pki.issue_agency(agency)
    cluster, state = _start(kafka_dist, home / "kafka", 1, secure=pki.cluster_tls(1))
    try:
        write_config(home, state.bootstrap, secure=True, by="tests/conftest.py")
        admin = pki.admin_files().settings(state.bootstrap)
        asyncio.run(apply_directory(admin, federation.snapshot.agencies(), now=now))
        yield SecureWorld(home, state, cluster)
    finally:
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
