"""``fusionbus kafka start|status|stop`` as an operator runs them, and their failure modes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Producer

from broker.errors import KafkaStartError
from broker.kafka import EmbeddedKafka, KafkaDistribution, cache_root, ensure_distribution

CLI = [sys.executable, "-m", "fusionbus"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, env=env, check=False
    )


def java_pids_using(data_dir: Path) -> list[int]:
    """PIDs of any JVM whose command line mentions ``data_dir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"java" in cmdline and str(data_dir).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


@pytest.mark.cluster
def test_three_node_start_status_stop_leaves_nothing_behind(
    kafka_dist: KafkaDistribution, tmp_path: Path
) -> None:
    data = tmp_path / "k3"
    started = run("kafka", "start", "--nodes", "3", "--port", "0", "--data-dir", str(data))
    assert started.returncode == 0, started.stderr
    bootstrap = started.stdout.strip().splitlines()[-1]
    assert bootstrap.count("127.0.0.1:") == 3, started.stdout
    assert f"{data}/node-*/logs/" in started.stderr  # says where the logs are

    status = run("kafka", "status", "--data-dir", str(data))
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("\trunning\t") == 3

    again = run("kafka", "start", "--nodes", "3", "--data-dir", str(data))
    assert again.returncode == 0, again.stderr  # idempotent: the same cluster, untouched
    assert again.stdout.strip().splitlines()[-1] == bootstrap

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce("cli-smoke", value=b"x")
    assert producer.flush(60) == 0

    stopped = run("kafka", "stop", "--data-dir", str(data))
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped node(s) 1, 2, 3." in stopped.stderr
    assert java_pids_using(data) == []
    after = run("kafka", "status", "--data-dir", str(data))
    assert after.returncode == 3
    assert after.stdout.count("\tstopped\t") == 3


def test_port_in_use_is_refused_clearly(kafka_dist: KafkaDistribution, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("kafka", "start", "--port", str(port), "--data-dir", str(tmp_path / "k"))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "--port" in result.stderr
    assert java_pids_using(tmp_path / "k") == []


def test_unwritable_data_dir_is_refused_clearly(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run("kafka", "start", "--port", "0", "--data-dir", str(blocker / "kafka"))
    assert result.returncode == 1
    assert "is not writable" in result.stderr
    assert "--data-dir" in result.stderr


def _env_with_path(path: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = path
    return env


def test_missing_java_is_refused_with_an_install_hint(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run(
        "kafka", "start", "--data-dir", str(tmp_path / "k"), env=_env_with_path(str(empty))
    )
    assert result.returncode == 1
    assert "Java was not found" in result.stderr
    assert "apt-get install openjdk-17" in result.stderr


def test_old_java_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    java = fake / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    result = run("kafka", "start", "--data-dir", str(tmp_path / "k"), env=_env_with_path(str(fake)))
    assert result.returncode == 1
    assert "is Java 11" in result.stderr
    assert "needs Java 17 or newer" in result.stderr


def test_missing_maven_with_an_empty_cache_is_refused(tmp_path: Path) -> None:
    real_java = shutil.which("java")
    assert real_java is not None, "Java 17+ must be installed to run these tests"
    only_java = tmp_path / "bin"
    only_java.mkdir()
    (only_java / "java").symlink_to(Path(real_java).resolve())
    env = _env_with_path(str(only_java))
    env["FUSIONBUS_CACHE_DIR"] = str(tmp_path / "empty-cache")
    result = run("kafka", "start", "--data-dir", str(tmp_path / "k"), env=env)
    assert result.returncode == 1
    assert "Maven (`mvn`) is not on PATH" in result.stderr


def test_a_corrupted_jar_cache_is_detected_and_fetched_again(
    kafka_dist: KafkaDistribution, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A private copy of the cache (its Maven repository included, so the refetch is local).
    shutil.copytree(
        cache_root() / f"kafka-{kafka_dist.version}", tmp_path / f"kafka-{kafka_dist.version}"
    )
    monkeypatch.setenv("FUSIONBUS_CACHE_DIR", str(tmp_path))
    victim = next((tmp_path / f"kafka-{kafka_dist.version}" / "libs").glob("kafka-clients-*.jar"))
    original = victim.read_bytes()
    victim.write_bytes(original[: len(original) // 2])

    dist = ensure_distribution()

    assert dist.libs == tmp_path / f"kafka-{kafka_dist.version}" / "libs"
    assert victim.read_bytes() == original
    (dist.libs / "MANIFEST.json").unlink()  # an interrupted fetch: no manifest yet
    assert ensure_distribution().libs == dist.libs
    assert (dist.libs / "MANIFEST.json").is_file()


def test_a_node_that_fails_to_start_shows_its_log_and_leaves_nothing_running(
    kafka_dist: KafkaDistribution, tmp_path: Path
) -> None:
    cluster = EmbeddedKafka(tmp_path / "k", port=0, heap_mb=256)
    cluster.start(kafka_dist)
    cluster.stop()
    meta = tmp_path / "k" / "node-1" / "data" / "meta.properties"
    meta.write_text(meta.read_text().replace("node.id=1", "node.id=7"))

    with pytest.raises(KafkaStartError) as caught:
        EmbeddedKafka(tmp_path / "k", heap_mb=256).start(kafka_dist)

    message = str(caught.value)
    assert "node 1 exited during start-up" in message
    assert "server.log" in message or "kafka.out" in message
    assert "Stored node id 7 doesn't match" in message  # Kafka's own complaint, in the tail
    assert java_pids_using(tmp_path / "k") == []
