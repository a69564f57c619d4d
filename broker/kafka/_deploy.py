"""The secured configuration of a Kafka cluster on real machines, one node per machine.

``fusionbus kafka config`` composes this with the cluster CA (``broker.provisioning.pki``):
for each node it writes a folder the operator copies to that node's machine
(``docs/deploy.md``)::

    <out>/cluster.json                 the cluster id, hosts and ports every node shares
    <out>/node-<id>/server.properties  0600: the node's secured settings, its key inline
    <out>/node-<id>/log4j2.properties  logging to ${kafka.logs.dir}/server.log
    <out>/node-<id>/tls/               ca.pem, cert.pem (SAN: the node's host), key.pem

Every node is a combined broker + controller on its own host: clients and peers dial
``<host>:<client_port>``, the quorum ``<host>:<controller_port>``, every hop mutual TLS with
hostname verification, so each node's certificate names its host. The settings are
:func:`~broker.kafka._cluster.server_properties` with :func:`security_properties`, the
same the embedded secured cluster runs, with listeners bound to ``bind`` (every interface
by default) and the log dir on the target machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from broker._jose import b64d
from broker.errors import ConfigError
from broker.kafka._cluster import DEFAULT_PORT, ClusterState, NodeState, server_properties
from broker.kafka._security import ClusterTls

__all__ = [
    "DEFAULT_CONTROLLER_PORT",
    "DEFAULT_LOG_DIR",
    "MAX_NODES",
    "Deployment",
    "bind_address",
    "cluster_id",
    "host_name",
    "log_dir",
    "properties_text",
]

DEFAULT_CONTROLLER_PORT = 9093
DEFAULT_LOG_DIR = PurePosixPath("/var/lib/kafka/data")
MAX_NODES = 9
"""Every node is a controller too: a quorum of 3 or 5 is usual, more only slows it down."""

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_CLUSTER_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}")
_LOG_DIR = re.compile(r"(?:/[A-Za-z0-9._+@-]+)+/?")
_STATE = "cluster.json"


def host_name(text: str) -> str:
    """``text`` as a host clients and peers can dial: an IP address (canonical form) or a
    DNS name (lowercase); ConfigError saying what is wrong otherwise."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is not None:
        if address.is_unspecified or address.is_multicast:
            raise ConfigError(
                f"{text!r} cannot be dialled: give the node's own address or DNS name, "
                "such as 10.0.0.11 or kafka1.example.internal"
            )
        return str(address)
    name = text.lower()
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or not all(_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ConfigError(
            f"{text!r} is not a host name or IP address: expected a DNS name of letters, "
            "digits and hyphens in dot-separated labels (kafka1.example.internal) or an IP "
            "address (10.0.0.11)"
        )
    return name


def bind_address(text: str) -> str:
    """An IP address for listeners to bind to (``0.0.0.0``: every interface)."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ConfigError(
            f"{text!r} is not an IP address to listen on: expected 0.0.0.0 (every "
            "interface), :: or one of the machine's addresses such as 10.0.0.11"
        ) from None


def cluster_id(text: str) -> str:
    """A Kafka cluster id: 16 bytes in URL-safe base64, 22 characters, as ``kafka-storage
    random-uuid`` prints."""
    try:
        if _CLUSTER_ID.fullmatch(text) is not None and len(b64d(text)) == 16:
            return text
    except ValueError:
        pass
    raise ConfigError(
        f"{text!r} is not a Kafka cluster id: expected 22 characters of URL-safe base64 "
        "(16 bytes), not starting with '-', like the one `kafka-storage.sh random-uuid` "
        "prints; leave the option out to make a new one"
    )


def log_dir(text: str) -> PurePosixPath:
    """An absolute path on the node's machine, of plain characters (no commas or spaces:
    ``log.dirs`` is a comma-separated list)."""
    if _LOG_DIR.fullmatch(text) is None or "/../" in f"{text}/" or "/./" in f"{text}/":
        raise ConfigError(
            f"{text!r} is not a log directory: expected an absolute path on the node's "
            "machine of letters, digits and . _ + @ - (no commas, spaces or ..), such as "
            f"{DEFAULT_LOG_DIR}"
        )
    return PurePosixPath(text)


@dataclass(frozen=True, slots=True)
class Deployment:
    """A cluster of combined nodes on real machines: node ``i`` (1-based) on ``hosts[i-1]``.

    Every node listens for clients on ``client_port`` and for the quorum on
    ``controller_port`` of its own host, keeps its log in ``log_dir`` and binds ``bind``.
    """

    hosts: tuple[str, ...]
    cluster_id: str
    kafka_version: str
    client_port: int = DEFAULT_PORT
    controller_port: int = DEFAULT_CONTROLLER_PORT
    log_dir: PurePosixPath = DEFAULT_LOG_DIR
    bind: str = "0.0.0.0"  # noqa: S104 - a real node listens on its network interfaces

    def __post_init__(self) -> None:
        hosts = tuple(host_name(h) for h in self.hosts)
        object.__setattr__(self, "hosts", hosts)
        if not 1 <= len(hosts) <= MAX_NODES:
            raise ConfigError(
                f"a cluster of {len(hosts)} node(s): expected 1 to {MAX_NODES} hosts (every "
                "node is a controller; 3 or 5 is usual)"
            )
        if len(set(hosts)) != len(hosts):
            twice = sorted({h for h in hosts if hosts.count(h) > 1})
            raise ConfigError(
                f"{', '.join(twice)} is named twice: each node runs on its own machine, so "
                "each host appears once"
            )
        for name, port in (("client", self.client_port), ("controller", self.controller_port)):
            if not 1 <= port <= 65_535:
                raise ConfigError(f"the {name} port {port} is out of range: 1 to 65535")
        if self.client_port == self.controller_port:
            raise ConfigError(
                f"the client and the controller port are both {self.client_port}: each "
                "listener needs its own port (9092 and 9093 by default)"
            )
        cluster_id(self.cluster_id)
        log_dir(str(self.log_dir))
        bind_address(self.bind)

    @property
    def node_ids(self) -> range:
        return range(1, len(self.hosts) + 1)

    @property
    def bootstrap(self) -> str:
        """What clients pass as ``--bootstrap``: every node's client endpoint."""
        return self.state().bootstrap

    def state(self) -> ClusterState:
        nodes = [
            NodeState(i, self.client_port, self.controller_port, host=host)
            for i, host in zip(self.node_ids, self.hosts, strict=True)
        ]
        return ClusterState(self.cluster_id, self.kafka_version, nodes, secure=True)

    def node_properties(self, node_id: int, tls: ClusterTls) -> dict[str, str]:
        """The secured ``server.properties`` of node ``node_id``."""
        state = self.state()
        node = next((n for n in state.nodes if n.node_id == node_id), None)
        if node is None:
            raise ConfigError(
                f"there is no node {node_id} in a cluster of {len(self.hosts)}: node ids "
                f"are 1 to {len(self.hosts)}, in the order of the hosts"
            )
        return server_properties(state, node, self.log_dir, tls=tls, bind=self.bind, local=False)

    def write_node(self, folder: Path, node_id: int, tls: ClusterTls, *, log4j: Path) -> Path:
        """Write node ``node_id``'s ``server.properties`` (0600), its logging config and the
        CA certificate into ``folder``; return the properties' path. The node's key and
        certificate are already in ``folder/tls`` (``ClusterPki.issue_node``)."""
        props = self.node_properties(node_id, tls)
        host = self.hosts[node_id - 1]
        header = (
            f"Node {node_id} of {len(self.hosts)}, at {host}; written by `fusionbus kafka config`.",
            "Secret: the node's private key is inline (ssl.keystore.key). Keep it 0640 root:kafka.",
        )
        path = folder / "server.properties"
        write_private(path, properties_text(props, header))
        (folder / "log4j2.properties").write_bytes(log4j.read_bytes())
        (folder / "tls").mkdir(mode=0o700, exist_ok=True)
        (folder / "tls" / "ca.pem").write_text(tls.ca_pem)
        return path

    # -- the record in the output folder --------------------------------------------------

    def to_json(self) -> str:
        return json.dumps(
            {
                "cluster_id": self.cluster_id,
                "kafka_version": self.kafka_version,
                "hosts": list(self.hosts),
                "client_port": self.client_port,
                "controller_port": self.controller_port,
                "log_dir": str(self.log_dir),
                "bind": self.bind,
            },
            indent=2,
        )

    @classmethod
    def recorded(cls, out: Path) -> Deployment | None:
        """The deployment an earlier run wrote into ``out``, if any."""
        path = out / _STATE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
            return cls(
                hosts=tuple(raw["hosts"]),
                cluster_id=raw["cluster_id"],
                kafka_version=raw["kafka_version"],
                client_port=int(raw["client_port"]),
                controller_port=int(raw["controller_port"]),
                log_dir=PurePosixPath(raw["log_dir"]),
                bind=raw["bind"],
            )
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            raise ConfigError(
                f"{path} is unreadable ({exc}); write the configuration into another "
                "folder, or delete this one to start afresh"
            ) from exc

    def differences(self, other: Deployment) -> list[str]:
        """What differs from ``other`` in what all nodes must agree on."""
        mine, theirs = json.loads(self.to_json()), json.loads(other.to_json())
        shared = ("cluster_id", "hosts", "client_port", "controller_port")
        return [f"{k} {theirs[k]} -> {mine[k]}" for k in shared if mine[k] != theirs[k]]

    def record(self, out: Path) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        path = out / _STATE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)
        return path


def properties_text(props: Mapping[str, str], header: Sequence[str] = ()) -> str:
    """``props`` as a ``server.properties`` file, after ``header`` comment lines."""
    lines = [f"# {line}" for line in header] + [f"{k}={v}" for k, v in props.items()]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as 0600 (it holds a private key), its folder 0700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)
