"""The embedded-Kafka runtime's pure parts: no JVM, no network."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from broker.errors import KafkaRuntimeError
from broker.kafka import ClusterState, EmbeddedKafka, NodeState
from broker.kafka._cluster import _tail_text, new_cluster_id, server_properties
from broker.kafka._distribution import _java_major, _verify, kafka_version


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "11.0.22" 2024-01-16', 11),
        ("no version here", None),
    ],
)
def test_java_versions_are_read_from_java_version_output(output: str, major: int | None) -> None:
    assert _java_major(output) == major


def _state(n: int) -> ClusterState:
    return ClusterState(
        "abc", "4.4.0", [NodeState(i + 1, 9092 + i, 9092 + n + i) for i in range(n)]
    )


def test_one_node_gets_durable_settings_that_fit_one_node() -> None:
    props = server_properties(_state(1), _state(1).nodes[0], Path("/d"))
    assert props["default.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["unclean.leader.election.enable"] == "false"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"


def test_three_nodes_replicate_three_times_with_two_in_sync() -> None:
    state = _state(3)
    props = server_properties(state, state.nodes[1], Path("/d"))
    assert props["node.id"] == "2"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["controller.quorum.voters"] == (
        "1@127.0.0.1:9095,2@127.0.0.1:9096,3@127.0.0.1:9097"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9093"


def test_five_nodes_still_replicate_three_times() -> None:
    state = _state(5)
    assert server_properties(state, state.nodes[0], Path("/d"))["default.replication.factor"] == "3"


def test_cluster_ids_look_like_kafkas() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_the_kafka_version_is_read_from_the_recipe() -> None:
    assert kafka_version().startswith("4.")


@pytest.mark.parametrize(("nodes", "port"), [(0, None), (1, 80), (3, 65534)])
def test_impossible_cluster_shapes_are_refused(tmp_path: Path, nodes: int, port: int) -> None:
    with pytest.raises(KafkaRuntimeError):
        EmbeddedKafka(tmp_path, nodes=nodes, port=port)


def test_an_unreadable_state_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text("{not json")
    with pytest.raises(KafkaRuntimeError, match="delete the directory"):
        EmbeddedKafka(tmp_path).state()


def test_status_of_a_fresh_dir_is_nothing(tmp_path: Path) -> None:
    assert EmbeddedKafka(tmp_path).state() is None
    assert EmbeddedKafka(tmp_path).stop() == []


def _manifest(libs: Path, recipe: str) -> None:
    jars = {
        p.name: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in libs.glob("*.jar")
    }
    (libs / "MANIFEST.json").write_text(json.dumps({"recipe_sha256": recipe, "jars": jars}))


def test_cache_verification_catches_every_kind_of_damage(tmp_path: Path) -> None:
    libs = tmp_path / "libs"
    libs.mkdir()
    assert _verify(libs, "r1") is not None  # never fetched
    (libs / "kafka_2.13-4.4.0.jar").write_bytes(b"jar one")
    (libs / "other.jar").write_bytes(b"jar two")
    _manifest(libs, "r1")
    assert _verify(libs, "r1") is None
    assert "pom.xml changed" in (_verify(libs, "r2") or "")
    (libs / "other.jar").write_bytes(b"jar 2wo")  # same size, other content
    assert "does not match" in (_verify(libs, "r1") or "")
    _manifest(libs, "r1")
    (libs / "stray.jar").write_bytes(b"?")
    assert "unexpected ['stray.jar']" in (_verify(libs, "r1") or "")
    (libs / "stray.jar").unlink()
    (libs / "other.jar").unlink()
    assert "missing ['other.jar']" in (_verify(libs, "r1") or "")
    (libs / "MANIFEST.json").write_text("{")
    assert "unreadable manifest" in (_verify(libs, "r1") or "")


def test_log_tails_keep_the_error_and_cut_stack_traces() -> None:
    log = "\n".join(
        ["INFO starting", "ERROR Exiting Kafka", "java.lang.RuntimeException: boom"]
        + [f"\tat frame{i}" for i in range(40)]
    )
    tail = _tail_text(log)
    assert "java.lang.RuntimeException: boom" in tail
    assert "frame1" in tail
    assert "frame2" not in tail
