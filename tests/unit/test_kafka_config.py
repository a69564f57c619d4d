"""Nodes on their own addresses, and ``fusionbus kafka config``'s secured properties for real
machines: pure parts and the command run in-process. No JVM, no network."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path, PurePosixPath

import pytest
from cryptography import x509
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import ConfigError
from broker.kafka import (
    ClusterState,
    ClusterTls,
    Deployment,
    EmbeddedKafka,
    NodeState,
    bind_address,
    cluster_id,
    host_name,
    log_dir,
    loopback_hosts,
    new_cluster_id,
)
from broker.kafka._cluster import server_properties
from broker.provisioning.pki import ClusterPki
from tests.unit.cli.conftest import cli

HOSTS = ("kafka1.example.internal", "kafka2.example.internal", "kafka3.example.internal")


def _props(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def _san(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(getattr(n, "value", n)) for n in names]


# -- the embedded cluster: a node per loopback address -----------------------------------


def test_each_node_listens_and_is_dialled_on_its_own_address() -> None:
    hosts = ("127.0.10.1", "127.0.10.2", "127.0.10.3")
    nodes = [NodeState(i + 1, 9092, 9093, host=h) for i, h in enumerate(hosts)]
    state = ClusterState("abc", "4.4.0", nodes)
    props = server_properties(state, nodes[1], Path("/d"))
    assert props["listeners"] == "PLAINTEXT://127.0.10.2:9092,CONTROLLER://127.0.10.2:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.10.2:9092"
    assert props["controller.quorum.voters"] == (
        "1@127.0.10.1:9093,2@127.0.10.2:9093,3@127.0.10.3:9093"
    )
    assert state.bootstrap == "127.0.10.1:9092,127.0.10.2:9092,127.0.10.3:9092"


def test_a_state_file_from_before_addresses_reads_as_127_0_0_1(tmp_path: Path) -> None:
    nodes = [{"node_id": 1, "client_port": 9092, "controller_port": 9093, "pid": None}]
    state = {"cluster_id": "abc", "kafka_version": "4.4.0", "nodes": nodes}
    (tmp_path / "cluster.json").write_text(json.dumps(state))
    loaded = EmbeddedKafka(tmp_path).state()
    assert loaded is not None
    assert loaded.bootstrap == "127.0.0.1:9092"


def test_loopback_addresses_are_canonical_and_one_per_node() -> None:
    assert loopback_hosts(["127.0.10.1", "127.0.10.2"], 2) == ("127.0.10.1", "127.0.10.2")
    with pytest.raises(ConfigError, match="not a loopback address"):
        loopback_hosts(["127.000.10.2"], 1)  # leading zeros read as octal by some parsers
    with pytest.raises(ConfigError, match="need 3 address"):
        loopback_hosts(["127.0.10.1"], 3)
    with pytest.raises(ConfigError, match="repeat"):
        loopback_hosts(["127.0.10.1", "127.0.10.1"], 2)


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "::1", "localhost", "127.0.10", ""])  # noqa: S104
def test_the_embedded_cluster_stays_on_loopback_ipv4(host: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a loopback address"):
        EmbeddedKafka(tmp_path, nodes=1, hosts=[host])


def test_node_certificates_name_the_hosts_they_are_given(tmp_path: Path) -> None:
    pki = ClusterPki(tmp_path / "home")
    cert, _ = pki.issue_node(1)
    assert _san(cert) == ["127.0.0.1", "localhost"]
    loopback = cert.read_bytes()
    assert pki.issue_node(1)[0].read_bytes() == loopback  # kept: same hosts
    pki.issue_node(1, hosts=["127.0.10.1"])
    assert _san(cert) == ["127.0.10.1"]  # issued again: other hosts
    tls = pki.cluster_tls(2, hosts=["127.0.10.1", "kafka2.example.internal"])
    assert set(tls.nodes) == {1, 2}
    assert _san(pki.issue_node(2, hosts=["kafka2.example.internal"])[0]) == [
        "kafka2.example.internal"
    ]
    with pytest.raises(ConfigError, match="2 nodes need 2 hosts"):
        pki.cluster_tls(2, hosts=["127.0.10.1"])


# -- the checks of kafka config's values --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Kafka1.Example.Internal", "kafka1.example.internal"),
        ("kafka-1", "kafka-1"),
        ("10.0.0.11", "10.0.0.11"),
        ("fd00:0::11", "fd00::11"),
        ("127.0.10.1", "127.0.10.1"),
    ],
)
def test_host_names_and_addresses_are_accepted_in_canonical_form(text: str, canonical: str) -> None:
    assert host_name(text) == canonical


@pytest.mark.parametrize(
    "text",
    ["", "-kafka", "kafka-", "kafka..internal", "kafka_1", "kafka 1", "0", "10.0.0", "999",
     "0.0.0.0", "::", "224.0.0.1",  # noqa: S104 "a" * 64, "kafka1.example.internal:9092", "[::1]",
     "kafka\x1b[2J", "kafka\u202e"],
)  # fmt: skip
def test_hosts_that_cannot_be_dialled_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"host name or IP address|cannot be dialled"):
        host_name(text)


@given(st.text(max_size=80))
def test_an_accepted_host_is_plain_and_stable(text: str) -> None:
    try:
        name = host_name(text)
    except ConfigError:
        return
    assert re.fullmatch(r"[a-z0-9.:-]+", name), name
    assert host_name(name) == name


def test_cluster_ids_are_kafkas_own_form() -> None:
    for _ in range(50):
        made = new_cluster_id()
        assert cluster_id(made) == made
    for bad in ("", "abc", "-" + "A" * 21, "A" * 23, "A" * 21 + "B", "A" * 21 + "="):
        with pytest.raises(ConfigError, match="not a Kafka cluster id"):
            cluster_id(bad)


def test_log_dirs_are_absolute_plain_paths_on_the_node() -> None:
    assert log_dir("/var/lib/kafka/data") == PurePosixPath("/var/lib/kafka/data")
    for bad in ("data", "/var/lib/kafka,/tmp", "/var/lib/kafka data", "/var/../etc", "", "/"):
        with pytest.raises(ConfigError, match="not a log directory"):
            log_dir(bad)


def test_listen_addresses_are_ip_addresses() -> None:
    assert bind_address("0.0.0.0") == "0.0.0.0"  # noqa: S104
    assert bind_address("::") == "::"
    with pytest.raises(ConfigError, match="not an IP address"):
        bind_address("kafka1.example.internal")


# -- the secured properties of one node on a real machine -------------------------------


def _tls(nodes: int) -> ClusterTls:
    from broker.config import KafkaSettings  # noqa: PLC0415 - only the fake needs it
    from broker.kafka import NodeTls  # noqa: PLC0415

    return ClusterTls(
        ca_pem="-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        node_ca_pem="-----BEGIN CERTIFICATE-----\nNODE CA\n-----END CERTIFICATE-----\n",
        client_trust_pem="-----BEGIN CERTIFICATE-----\nNODE CA\n-----END CERTIFICATE-----\n",
        nodes={i: NodeTls(key_pem=f"KEY{i}\n", chain_pem=f"CHAIN{i}\n") for i in range(1, 4)},
        admin=KafkaSettings(),
        super_users=(*(f"User:fusionbus-node-{i}" for i in range(1, nodes + 1)), "User:admin"),
    )


def test_a_node_of_a_real_cluster_gets_the_secured_durable_settings() -> None:
    deployment = Deployment(HOSTS, new_cluster_id(), "4.4.0")
    props = deployment.node_properties(2, _tls(3))
    assert props["node.id"] == "2"
    assert props["controller.quorum.voters"] == ",".join(
        f"{i}@{h}:9093" for i, h in enumerate(HOSTS, start=1)
    )
    assert props["listeners"] == "CLIENT://0.0.0.0:9092,CONTROLLER://0.0.0.0:9093"
    assert props["advertised.listeners"] == "CLIENT://kafka2.example.internal:9092"
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["listener.security.protocol.map"] == "CLIENT:SSL,CONTROLLER:SSL"
    assert props["ssl.client.auth"] == "required"
    assert props["ssl.endpoint.identification.algorithm"] == "https"
    assert props["ssl.keystore.key"] == "KEY2"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["auto.create.topics.enable"] == "false"
    assert props["super.users"].count("User:fusionbus-node-") == 3
    assert props["log.dirs"] == "/var/lib/kafka/data"
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    assert props["unclean.leader.election.enable"] == "false"
    assert "group.initial.rebalance.delay.ms" not in props  # the broker's 3 s on a real cluster
    assert deployment.bootstrap == ",".join(f"{h}:9092" for h in HOSTS)


def test_ipv6_hosts_and_a_chosen_bind_address_are_written_as_kafka_reads_them() -> None:
    deployment = Deployment(
        ("fd00::11", "fd00::12", "fd00::13"), new_cluster_id(), "4.4.0",
        client_port=19092, controller_port=19093, bind="fd00::11",
        log_dir=PurePosixPath("/srv/kafka"),
    )  # fmt: skip
    props = deployment.node_properties(1, _tls(3))
    assert props["listeners"] == "CLIENT://[fd00::11]:19092,CONTROLLER://[fd00::11]:19093"
    assert props["controller.quorum.voters"].startswith("1@[fd00::11]:19093,2@[fd00::12]:19093")
    assert props["log.dirs"] == "/srv/kafka"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hosts": ()}, "expected 1 to 9 hosts"),
        ({"hosts": HOSTS + HOSTS[:1]}, "named twice"),
        ({"hosts": ("kafka1", "KAFKA1")}, "named twice"),
        ({"controller_port": 9092}, "both 9092"),
        ({"client_port": 0}, "out of range"),
        ({"cluster_id": "nope"}, "not a Kafka cluster id"),
        ({"bind": "everywhere"}, "not an IP address"),
    ],
)
def test_impossible_deployments_are_refused(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"hosts": HOSTS, "cluster_id": new_cluster_id(), "kafka_version": "4"}
    with pytest.raises(ConfigError, match=message):
        Deployment(**(base | kwargs))  # type: ignore[arg-type]


def test_a_node_outside_the_cluster_is_refused() -> None:
    with pytest.raises(ConfigError, match="no node 4 in a cluster of 3"):
        Deployment(HOSTS, new_cluster_id(), "4.4.0").node_properties(4, _tls(3))


# -- fusionbus kafka config, as an admin runs it ------------------------------------------


def _config(tmp_path: Path, *extra: str, hosts: str = ",".join(HOSTS)) -> tuple[int, str, str]:
    result = cli(
        "kafka", "config", "--hosts", hosts, "--out", str(tmp_path / "out"),
        "--home", str(tmp_path / "home"), *extra,
    )  # fmt: skip
    return result.exit_code, result.stdout, result.stderr


def test_kafka_config_writes_a_folder_per_node_for_its_machine(tmp_path: Path) -> None:
    code, out, err = _config(tmp_path)
    assert code == 0, err
    assert out.strip().splitlines()[-1] == ",".join(f"{h}:9092" for h in HOSTS)
    recorded = json.loads((tmp_path / "out" / "cluster.json").read_text())
    assert recorded["hosts"] == list(HOSTS)
    assert f"format -t {recorded['cluster_id']}" in err
    ca = (tmp_path / "home" / "tls" / "ca.pem").read_text()
    node_ca = (tmp_path / "home" / "tls" / "node-ca.pem").read_text()
    for node_id, host in enumerate(HOSTS, start=1):
        folder = tmp_path / "out" / f"node-{node_id}"
        props = _props(folder / "server.properties")
        assert props["node.id"] == str(node_id)
        assert props["advertised.listeners"] == f"CLIENT://{host}:9092"
        assert props["ssl.truststore.certificates"] == node_ca.strip().replace("\n", "\\n")
        assert "BEGIN PRIVATE KEY" in props["ssl.keystore.key"]
        assert stat.S_IMODE((folder / "server.properties").stat().st_mode) == 0o600
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert _san(folder / "tls" / "cert.pem") == [host]
        chain = props["ssl.keystore.certificate.chain"].replace("\\n", "\n")
        assert chain.startswith((folder / "tls" / "cert.pem").read_text().strip())
        assert (folder / "tls" / "ca.pem").read_text() == ca
        assert "${sys:kafka.logs.dir}/server.log" in (folder / "log4j2.properties").read_text()
        cert = x509.load_pem_x509_certificate((folder / "tls" / "cert.pem").read_bytes())
        assert cert.subject.rfc4514_string().startswith(f"CN=fusionbus-node-{node_id},")


def test_running_it_again_keeps_the_cluster_id_and_the_node_keys(tmp_path: Path) -> None:
    assert _config(tmp_path)[0] == 0
    first = (tmp_path / "out" / "node-2" / "tls" / "cert.pem").read_bytes()
    cluster = json.loads((tmp_path / "out" / "cluster.json").read_text())["cluster_id"]
    code, _, err = _config(tmp_path, "--node", "2")
    assert code == 0, err
    assert (tmp_path / "out" / "node-2" / "tls" / "cert.pem").read_bytes() == first
    assert json.loads((tmp_path / "out" / "cluster.json").read_text())["cluster_id"] == cluster
    assert "node 1 " not in err  # only the node asked for


def test_nodes_that_would_disagree_are_refused(tmp_path: Path) -> None:
    assert _config(tmp_path)[0] == 0
    code, _, err = _config(tmp_path, hosts="kafka1.example.internal,kafka9.example.internal")
    assert code == 1
    assert "holds the configuration of another cluster" in err
    code, _, err = _config(tmp_path, "--cluster-id", new_cluster_id())
    assert code == 1
    assert "cluster_id" in err


def test_a_given_cluster_id_is_used_and_config_toml_written_when_asked(tmp_path: Path) -> None:
    chosen = new_cluster_id()
    code, _, err = _config(tmp_path, "--cluster-id", chosen, "--write-config")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "cluster.json").read_text())["cluster_id"] == chosen
    toml = (tmp_path / "home" / "config.toml").read_text()
    assert 'security = "mtls"' in toml
    assert "kafka3.example.internal:9092" in toml


@pytest.mark.parametrize(
    ("extra", "hosts", "says"),
    [
        ((), "kafka1,kafka1", "'kafka1' is named more than once"),
        ((), "kafka1,,kafka3", "'' is not a host name"),
        ((), "kafka\x1b[2J", "'kafka\\\\x1b[2J' is not a host name"),
        (("--node", "4"), ",".join(HOSTS), "4 is not a node of this cluster"),
        (("--port", "9093"), ",".join(HOSTS), "both 9093"),
        (("--log-dir", "data"), ",".join(HOSTS), "'data' is not a log directory"),
        (("--listen", "any"), ",".join(HOSTS), "'any' is not an IP address"),
    ],
)
def test_bad_values_are_one_paragraph_usage_errors(
    tmp_path: Path, extra: tuple[str, ...], hosts: str, says: str
) -> None:
    code, out, err = _config(tmp_path, *extra, hosts=hosts)
    assert code == 2, err
    assert out == ""
    assert says in err.replace("\n", " ") or says.replace("\\\\", "\\") in err, err
    assert "\x1b" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


def test_kafka_start_wants_one_address_per_node(tmp_path: Path) -> None:
    result = cli(
        "kafka", "start", "--nodes", "3", "--addresses", "127.0.10.1,127.0.10.2",
        "--data-dir", str(tmp_path / "kafka"),
    )  # fmt: skip
    assert result.exit_code == 2
    assert "2 address(es) for 3 node(s)" in result.stderr
    result = cli("kafka", "start", "--addresses", "10.0.0.1", "--data-dir", str(tmp_path / "k"))
    assert result.exit_code == 2
    assert "'10.0.0.1' is not a loopback address" in result.stderr
