"""Fixtures of the fault tests: a "host" in a network namespace and a Kafka node on it, made
once per session on first use (each test restores the link it cut: ``healed``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broker.errors import FusionbusError
from broker.kafka import ClusterState, EmbeddedKafka, KafkaDistribution
from tests.integration import netns
from tests.integration.cli_helpers import Fusionbus
from tests.integration.netns import NetNamespace, NetnsUnavailableError


@pytest.fixture(scope="session")
def host() -> Iterator[NetNamespace]:
    """A network namespace linked to this one (``tests/integration/netns.py``), removed
    afterwards; a failure saying what is missing when namespaces cannot be built here."""
    try:
        with NetNamespace.create() as made:
            yield made
    except NetnsUnavailableError as exc:
        pytest.fail(str(exc), pytrace=False)
    assert not netns.exists(made.name), f"namespace {made.name} was left behind"
    assert not Path(f"/sys/class/net/{made.veth_outside}").exists(), "a veth was left behind"


@dataclass
class Remote:
    """A 1-node Kafka inside ``host``, dialled from this namespace at ``host.inside``."""

    host: NetNamespace
    cluster: EmbeddedKafka
    state: ClusterState

    @property
    def bootstrap(self) -> str:
        return self.state.bootstrap


@pytest.fixture(scope="session")
def remote_kafka(
    host: NetNamespace, kafka_dist: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Remote]:
    """Kafka on the namespace's side of the link; the link is up again after each use."""
    cluster = EmbeddedKafka(
        tmp_path_factory.mktemp("remote-kafka"), port=0, heap_mb=512, hosts=[host.inside],
        netns=host.name,
    )  # fmt: skip
    try:
        state = cluster.start(kafka_dist)
    except FusionbusError as exc:
        pytest.fail(f"the Kafka node in namespace {host.name} did not start: {exc}", pytrace=False)
    try:
        assert state.nodes[0].pid in host.processes(), "the JVM is not inside the namespace"
        yield Remote(host, cluster, state)
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def remote_home(remote_kafka: Remote, tmp_path_factory: pytest.TempPathFactory) -> Fusionbus:
    """A federation (anf granted narcotics in PK) on the Kafka behind the cuttable link, and
    one report of customs already published."""
    fb = Fusionbus(tmp_path_factory.mktemp("remote-home") / "home", remote_kafka.bootstrap)
    fb.federation({"anf": [("narcotics", "PK")]})
    fb.publish("customs", [fb.example("narcotics", "PKKHI")])
    return fb


@pytest.fixture
def healed(host: NetNamespace) -> Iterator[NetNamespace]:
    """``host``, its link restored after the test whatever happened."""
    yield host
    if host.cut_off:
        host.restore()
