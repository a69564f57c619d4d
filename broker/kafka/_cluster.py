"""Start, inspect and stop an Apache Kafka KRaft cluster on loopback.

Each node is a combined broker + controller JVM (``kafka.Kafka``) with its own ports and
directory under the data dir::

    <data-dir>/cluster.json          ports, pids, cluster id (written by start, read by stop)
    <data-dir>/node-<id>/server.properties
    <data-dir>/node-<id>/data/       the log dirs (formatted once by kafka.tools.StorageTool)
    <data-dir>/node-<id>/logs/       server.log (log4j2) and kafka.out (the JVM's stdout/stderr)

Secure mode (``secure=ClusterTls``, ``docs/security.md``): every listener speaks mutual TLS,
the principal is the certificate's CN, and the StandardAuthorizer allows only what ACLs
grant (nodes and the admin are super users). Without it the cluster is PLAINTEXT with no
authorization, for the quick local demo and tests only, and it says so on start.

Addresses: every node listens on 127.0.0.1, or node ``i`` on ``hosts[i]`` (loopback IPv4
addresses such as 127.0.10.1, 127.0.10.2, ...: Linux routes all of 127.0.0.0/8 to ``lo``), for
clients, inter-broker and controller traffic alike, so each node is reached by its own address
as on separate machines; its certificate names that address.

Network namespaces (``netns="NAME"``, as root): every JVM starts through ``ip netns exec
NAME``, as on a host of its own, and ``hosts`` are then IPv4 addresses of that namespace's
interfaces (the far end of a veth pair, say) instead of loopback ones. Port checks and free
port picks happen inside the namespace; the readiness probe dials the nodes from here, so the
namespace must be routable from this one. The caller creates and removes the namespace
(``tests/integration/netns.py`` does both, and can cut its link to partition the nodes).

Ports: node ``i`` (0-based) listens for clients on ``port + i`` and for its controller quorum
on ``port + nodes + i``; ``port=0`` picks free ports. Durable defaults: replication factor
``min(3, nodes)``, ``min.insync.replicas=2`` from 3 nodes on, unclean leader election off.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import structlog

from broker._jose import b64u
from broker.config import KafkaSettings
from broker.errors import ConfigError, KafkaRuntimeError, KafkaStartError, PortInUseError
from broker.kafka._distribution import KafkaDistribution, ensure_distribution
from broker.kafka._netns import in_netns, netns_command
from broker.kafka._probe import broker_count
from broker.kafka._security import ClusterTls, security_properties

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ClusterState",
    "EmbeddedKafka",
    "NodeState",
    "endpoint",
    "loopback_hosts",
    "namespace_hosts",
    "new_cluster_id",
    "server_properties",
]

log = structlog.get_logger(__name__)

_STATE = "cluster.json"
DEFAULT_PORT = 9092
DEFAULT_HOST = "127.0.0.1"
_LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")


def endpoint(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets (``[fd00::1]:9092``)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass
class NodeState:
    node_id: int
    client_port: int
    controller_port: int
    pid: int | None = None
    host: str = DEFAULT_HOST

    @property
    def bootstrap(self) -> str:
        return endpoint(self.host, self.client_port)

    @property
    def controller(self) -> str:
        return endpoint(self.host, self.controller_port)


@dataclass
class ClusterState:
    """What ``cluster.json`` records: enough for ``status`` and ``stop`` in another process."""

    cluster_id: str
    kafka_version: str
    nodes: list[NodeState] = field(default_factory=list)
    secure: bool = False

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)


def loopback_hosts(hosts: Sequence[str], nodes: int) -> tuple[str, ...]:
    """``hosts`` checked as one distinct loopback IPv4 address per node, in canonical form;
    ConfigError saying what is wrong otherwise."""
    if len(hosts) != nodes:
        raise ConfigError(
            f"{nodes} node(s) need {nodes} address(es), one each, got {len(hosts)}: "
            f"{', '.join(hosts) or 'none'}"
        )
    canonical: list[str] = []
    for host in hosts:
        try:
            address = ipaddress.IPv4Address(host)
        except ValueError:
            address = None
        if address is None or address not in _LOOPBACK:
            raise ConfigError(
                f"{host!r} is not a loopback address: the embedded Kafka listens on "
                "127.0.0.0/8 only (such as 127.0.10.1); for real machines, use `fusionbus "
                "kafka config`"
            )
        canonical.append(str(address))
    if len(set(canonical)) != len(canonical):
        raise ConfigError(f"the addresses {', '.join(hosts)} repeat one; give each node its own")
    return tuple(canonical)


def namespace_hosts(hosts: Sequence[str], nodes: int) -> tuple[str, ...]:
    """``hosts`` checked as one distinct IPv4 address per node (addresses inside a network
    namespace, any range), in canonical form; ConfigError saying what is wrong otherwise."""
    if len(hosts) != nodes:
        raise ConfigError(
            f"{nodes} node(s) need {nodes} address(es), one each, got {len(hosts)}: "
            f"{', '.join(hosts) or 'none'}"
        )
    canonical: list[str] = []
    for host in hosts:
        try:
            canonical.append(str(ipaddress.IPv4Address(host)))
        except ValueError:
            raise ConfigError(
                f"{host!r} is not an IPv4 address: nodes in a network namespace listen on an "
                "address of one of its interfaces, such as 10.231.0.2"
            ) from None
    if len(set(canonical)) != len(canonical):
        raise ConfigError(f"the addresses {', '.join(hosts)} repeat one; give each node its own")
    return tuple(canonical)


class EmbeddedKafka:
    """A KRaft cluster of ``nodes`` combined nodes whose files live under ``data_dir``; node
    ``i`` on ``hosts[i]`` if given (else 127.0.0.1, or the addresses this data dir used last);
    with ``netns``, every node runs inside that network namespace (see the module doc).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        nodes: int = 1,
        port: int | None = None,
        heap_mb: int = 768,
        ready_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        secure: ClusterTls | None = None,
        hosts: Sequence[str] | None = None,
        netns: str | None = None,
    ) -> None:
        if nodes < 1:
            raise KafkaRuntimeError(f"--nodes must be 1 or more, got {nodes}")
        if port not in (None, 0) and not 1024 <= port <= 65535 - 2 * nodes:
            raise KafkaRuntimeError(
                f"--port must be 0 (pick free ports) or between 1024 and {65535 - 2 * nodes}, "
                f"got {port}"
            )
        self.data_dir = data_dir.expanduser().resolve()
        self.nodes = nodes
        self.port = port
        self.heap_mb = heap_mb
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.secure = secure
        if netns is not None and hosts is None:
            raise ConfigError(
                f"nodes in the network namespace {netns!r} need their addresses in it: pass "
                "hosts, one per node (such as 10.231.0.2)"
            )
        self.netns = netns
        check = loopback_hosts if netns is None else namespace_hosts
        self.hosts = check(hosts, nodes) if hosts is not None else None
        # JVMs started by this object: trusted by handle, since /proc/<pid>/cmdline reads
        # empty for a moment after exec.
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    # -- inspection -------------------------------------------------------------------------

    def state(self) -> ClusterState | None:
        """The recorded state, or ``None`` if no cluster was ever started in ``data_dir``."""
        path = self.data_dir / _STATE
        if not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text())
            nodes = [NodeState(**n) for n in raw["nodes"]]
            secure = bool(raw.get("secure", False))
            return ClusterState(raw["cluster_id"], raw["kafka_version"], nodes, secure)
        except (ValueError, KeyError, TypeError) as exc:
            raise KafkaRuntimeError(
                f"{path} is unreadable ({exc}); stop any Kafka JVMs using {self.data_dir} "
                "and delete the directory to start afresh."
            ) from exc

    def running_nodes(self, state: ClusterState | None = None) -> list[NodeState]:
        state = state if state is not None else self.state()
        if state is None:
            return []
        return [n for n in state.nodes if self._is_our_process(n)]

    def client_settings(self, state: ClusterState) -> KafkaSettings:
        """How the platform itself connects: the admin's TLS identity in secure mode."""
        if self.secure is not None:
            return self.secure.admin_settings(state.bootstrap)
        return KafkaSettings(bootstrap=state.bootstrap)

    def node_log(self, node_id: int) -> Path:
        return self.data_dir / f"node-{node_id}" / "logs" / "server.log"

    # -- start --------------------------------------------------------------------------------

    def start(self, dist: KafkaDistribution | None = None) -> ClusterState:
        """Start every node, wait until all answer metadata requests, return the state.

        Idempotent: if the cluster in ``data_dir`` already runs, returns it untouched. On any
        failure every node started here is stopped again before the error propagates.
        """
        previous = self.state()
        if previous is not None and previous.secure != (self.secure is not None):
            was = "secured (mTLS)" if previous.secure else "plaintext"
            flag = "pass --secure" if previous.secure else "leave out --secure"
            raise KafkaRuntimeError(
                f"the cluster in {self.data_dir} was created {was}; starting it in the other "
                f"mode is refused (its clients expect the old one). To keep it, {flag}; or "
                "use another --data-dir."
            )
        if previous is not None:
            alive = self.running_nodes(previous)
            if len(alive) == len(previous.nodes):
                log.info("kafka.already_running", bootstrap=previous.bootstrap)
                return previous
            if alive:
                raise KafkaRuntimeError(
                    f"only {len(alive)} of {len(previous.nodes)} nodes of the cluster in "
                    f"{self.data_dir} are running; run `fusionbus kafka stop --data-dir "
                    f"{self.data_dir}` first, then start again."
                )
            if len(previous.nodes) != self.nodes:
                raise KafkaRuntimeError(
                    f"{self.data_dir} holds a {len(previous.nodes)}-node cluster, not "
                    f"{self.nodes}; use --nodes {len(previous.nodes)} or another --data-dir."
                )
        self._prepare_data_dir()
        dist = dist or ensure_distribution()
        state = previous if previous is not None else self._new_state(dist)
        if previous is not None and (
            self.port not in (None, previous.nodes[0].client_port)
            or self.hosts not in (None, tuple(n.host for n in previous.nodes))
        ):
            state = self._new_state(dist, cluster_id=previous.cluster_id)
        self._check_ports(state)
        if self.secure is None:
            log.warning(
                "kafka.plaintext",
                note="PLAINTEXT cluster: no TLS, no authentication, no ACLs; any local process "
                "can read and write every topic. For the quick local demo and tests only; use "
                "--secure for anything else.",
            )
        try:
            self._format(dist, state)
            for node in state.nodes:
                node.pid = self._spawn(dist, state, node)
            self._write_state(state)
            self._wait_ready(state)
        except BaseException:
            self._terminate(state, reason="failed start")
            raise
        log.info("kafka.ready", bootstrap=state.bootstrap, nodes=len(state.nodes))
        return state

    def _prepare_data_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise KafkaRuntimeError(
                f"the data dir {self.data_dir} is not writable ({exc.strerror}); choose another "
                "with --data-dir or fix its permissions."
            ) from exc

    def _new_state(self, dist: KafkaDistribution, cluster_id: str | None = None) -> ClusterState:
        n = self.nodes
        hosts = self.hosts or (DEFAULT_HOST,) * n
        base = DEFAULT_PORT if self.port is None else self.port
        if base == 0:
            ports = in_netns(self.netns, lambda: _free_ports([*hosts, *hosts]))
        else:
            ports = list(range(base, base + 2 * n))
        nodes = [NodeState(i + 1, ports[i], ports[n + i], host=hosts[i]) for i in range(n)]
        return ClusterState(
            cluster_id or new_cluster_id(), dist.version, nodes, secure=self.secure is not None
        )

    def _check_ports(self, state: ClusterState) -> None:
        for node in state.nodes:
            for port in (node.client_port, node.controller_port):
                if not in_netns(self.netns, functools.partial(_port_free, node.host, port)):
                    raise PortInUseError(
                        f"port {port} on {node.host} is already in use, so node {node.node_id} "
                        f"cannot listen on it. Is another Kafka running (`fusionbus kafka "
                        "status`)? Stop it, or pick other ports with --port (0 picks free ones)."
                    )

    def _node_dir(self, node: NodeState) -> Path:
        return self.data_dir / f"node-{node.node_id}"

    def _write_properties(self, state: ClusterState, node: NodeState) -> Path:
        path = self._node_dir(node) / "server.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        props = server_properties(state, node, self._node_dir(node) / "data", tls=self.secure)
        header = "# Written by `fusionbus kafka start`; regenerated on every start.\n"
        text = header + "".join(f"{k}={v}\n" for k, v in props.items())
        if self.secure is not None:
            path.parent.chmod(0o700)  # the node's private key is inline
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)
        return path

    def _java_argv(self, dist: KafkaDistribution, node: NodeState, *main: str) -> list[str]:
        logs = self._node_dir(node) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        return [
            str(dist.java),
            f"-Xmx{self.heap_mb}m",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile={dist.log4j_config}",
            "-cp",
            dist.classpath,
            *main,
        ]

    def _format(self, dist: KafkaDistribution, state: ClusterState) -> None:
        """Format the log dirs of nodes never formatted; JVMs run in parallel."""
        jobs: list[tuple[NodeState, subprocess.Popen[str]]] = []
        for node in state.nodes:
            props = self._write_properties(state, node)
            if (self._node_dir(node) / "data" / "meta.properties").is_file():
                continue
            argv = self._java_argv(
                dist, node, "kafka.tools.StorageTool", "format", "-t", state.cluster_id,
                "-c", str(props),
            )  # fmt: skip
            jobs.append(
                (
                    node,
                    subprocess.Popen(
                        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
                    ),
                )
            )
        for node, proc in jobs:
            out, _ = proc.communicate(timeout=180)
            if proc.returncode != 0:
                raise KafkaStartError(
                    f"formatting the storage of node {node.node_id} failed (exit "
                    f"{proc.returncode}):\n{_tail_text(out)}\nIf {self.data_dir} holds an old "
                    "cluster, stop it and delete the directory."
                )

    def _spawn(self, dist: KafkaDistribution, state: ClusterState, node: NodeState) -> int:
        props = self._node_dir(node) / "server.properties"
        out_path = self._node_dir(node) / "logs" / "kafka.out"
        argv = self._java_argv(dist, node, "kafka.Kafka", str(props))
        if self.netns is not None:
            argv = [*netns_command(self.netns), *argv]
        with out_path.open("ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=self._node_dir(node),
            )  # fmt: skip
        self._procs[proc.pid] = proc
        log.info("kafka.node_spawned", node=node.node_id, pid=proc.pid, log=str(out_path.parent))
        return proc.pid

    def _wait_ready(self, state: ClusterState) -> None:
        deadline = time.monotonic() + self.ready_timeout
        want = len(state.nodes)
        seen = 0
        while time.monotonic() < deadline:
            for node in state.nodes:
                if not self._is_our_process(node):
                    raise KafkaStartError(
                        f"Kafka node {node.node_id} exited during start-up. Last lines of "
                        f"its logs ({self._node_dir(node) / 'logs'}):\n{self._log_tail(node)}"
                    )
            if all(_port_open(n.host, n.client_port) for n in state.nodes):
                with contextlib.suppress(Exception):
                    seen = _run_probe(self.client_settings(state))
                if seen >= want:
                    return
            time.sleep(0.25)
        raise KafkaStartError(
            f"the cluster did not become ready within {self.ready_timeout:.0f} s ({seen} of "
            f"{want} brokers answered metadata requests). Last lines of node "
            f"{state.nodes[0].node_id}'s logs:\n{self._log_tail(state.nodes[0])}"
        )

    def _log_tail(self, node: NodeState, lines: int = 25) -> str:
        logs = self._node_dir(node) / "logs"
        parts = []
        for name in ("kafka.out", "server.log"):
            path = logs / name
            if path.is_file():
                text = path.read_text(errors="replace")
                if text.strip():
                    parts.append(f"--- {path} ---\n{_tail_text(text, lines)}")
        return "\n".join(parts) or "(no log output)"

    def _write_state(self, state: ClusterState) -> None:
        tmp = self.data_dir / f"{_STATE}.tmp"
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.data_dir / _STATE)

    # -- stop ---------------------------------------------------------------------------------

    def stop(self) -> list[int]:
        """Stop every running node (SIGTERM, then SIGKILL after the timeout); return their ids."""
        state = self.state()
        if state is None:
            return []
        return self._terminate(state, reason="stop")

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node at once (a crash, for fault tests)."""
        state = self.state()
        node = next((n for n in state.nodes if n.node_id == node_id), None) if state else None
        if node is None or not self._is_our_process(node) or node.pid is None:
            raise KafkaRuntimeError(f"node {node_id} is not running in {self.data_dir}")
        os.kill(node.pid, signal.SIGKILL)
        self._wait_gone([node.pid], timeout=10)

    def restart_node(self, node_id: int, dist: KafkaDistribution | None = None) -> None:
        """Start again one node that is not running (after :meth:`kill_node`); wait for it."""
        state = self.state()
        node = next((n for n in state.nodes if n.node_id == node_id), None) if state else None
        if state is None or node is None:
            raise KafkaRuntimeError(f"there is no node {node_id} in {self.data_dir}")
        if self._is_our_process(node):
            raise KafkaRuntimeError(f"node {node_id} in {self.data_dir} is already running")
        node.pid = self._spawn(dist or ensure_distribution(), state, node)
        self._write_state(state)
        self._wait_ready(state)

    def _terminate(self, state: ClusterState, *, reason: str) -> list[int]:
        alive = [n for n in state.nodes if self._is_our_process(n)]
        for node in alive:
            assert node.pid is not None  # noqa: S101 - _is_our_process checked it
            with contextlib.suppress(ProcessLookupError):
                os.kill(node.pid, signal.SIGTERM)
        pids = [n.pid for n in alive if n.pid is not None]
        leftover = self._wait_gone(pids, timeout=self.stop_timeout)
        for pid in leftover:
            log.warning("kafka.kill_after_timeout", pid=pid, timeout_s=self.stop_timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._wait_gone(leftover, timeout=10)
        if alive:
            log.info("kafka.stopped", reason=reason, nodes=[n.node_id for n in alive])
        return [n.node_id for n in alive]

    def _wait_gone(self, pids: list[int], *, timeout: float) -> list[int]:
        """Wait until none of ``pids`` is alive; return those still alive at the timeout."""
        deadline = time.monotonic() + timeout
        remaining = list(pids)
        while remaining and time.monotonic() < deadline:
            remaining = [p for p in remaining if self._alive(p)]
            if remaining:
                time.sleep(0.1)
        return [p for p in remaining if self._alive(p)]

    def _alive(self, pid: int) -> bool:
        if (proc := self._procs.get(pid)) is not None:
            return proc.poll() is None  # reaps through Popen, which then knows it ended
        return _alive(pid)

    def _is_our_process(self, node: NodeState) -> bool:
        """True if ``node.pid`` is alive and is the JVM of this node (not a recycled pid)."""
        if node.pid is None:
            return False
        if (proc := self._procs.get(node.pid)) is not None:
            return proc.poll() is None
        try:
            cmdline = Path(f"/proc/{node.pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{node.pid}/stat").read_text()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(node.pid, os.WNOHANG)  # reap our own zombie child
            return False
        props = str(self._node_dir(node) / "server.properties").encode()
        return b"kafka.Kafka" in cmdline and props in cmdline


def server_properties(
    state: ClusterState,
    node: NodeState,
    log_dir: Path | PurePosixPath,
    *,
    tls: ClusterTls | None = None,
    bind: str | None = None,
    local: bool = True,
) -> dict[str, str]:
    """The ``server.properties`` of one combined KRaft node, with durable defaults; with
    ``tls``, every listener is mutual TLS and the authorizer is on.

    Each node is dialled at its own host (``node.host``: clients, peers, the quorum);
    its listeners bind to ``bind`` (default: that host; ``0.0.0.0`` for every interface of
    a real machine). ``local`` is a cluster on one machine: consumer groups form at once.
    """
    n = len(state.nodes)
    client = "CLIENT" if tls is not None else "PLAINTEXT"
    replication = min(3, n)
    voters = ",".join(f"{m.node_id}@{m.controller}" for m in state.nodes)
    listen = node.host if bind is None else bind
    props: dict[str, object] = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "listeners": f"{client}://{endpoint(listen, node.client_port)},"
        f"CONTROLLER://{endpoint(listen, node.controller_port)}",
        "advertised.listeners": f"{client}://{node.bootstrap}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": client,
        "log.dirs": log_dir,
        "num.partitions": 3,
        "default.replication.factor": replication,
        "min.insync.replicas": 2 if n >= 3 else 1,
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": 12,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min(2, replication),
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min(2, replication),
        "unclean.leader.election.enable": "false",
        # Topics a standard client writes to appear with the durable defaults above.
        "auto.create.topics.enable": "true",
    }
    if local:  # let consumer groups form at once instead of after 3 s
        props["group.initial.rebalance.delay.ms"] = 0
    if tls is not None:
        props |= security_properties(tls, node.node_id)
    return {key: str(value) for key, value in props.items()}


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _run_probe(settings: KafkaSettings) -> int:
    """Run the async metadata probe from sync code, also when called inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(broker_count(settings, wait_s=5.0))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, broker_count(settings, wait_s=5.0)).result()


def new_cluster_id() -> str:
    """A Kafka cluster id: URL-safe base64 of 16 random bytes, never starting with '-'."""
    while True:
        text = b64u(uuid.uuid4().bytes)
        if not text.startswith("-"):
            return text


def _port_free(host: str, port: int) -> bool:
    """Could a server bind ``port`` on ``host``? SO_REUSEADDR as the JVM sets it, so
    TIME_WAIT is no clash."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _free_ports(hosts: Sequence[str]) -> list[int]:
    """A free port on each of ``hosts`` (a host may repeat: then as many ports)."""
    socks = []
    try:
        for host in hosts:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _tail_text(text: str, lines: int = 25) -> str:
    """The last ``lines`` lines, with Java stack traces cut to their first two frames."""
    kept: list[str] = []
    frames = 0
    for line in text.rstrip().splitlines():
        frames = frames + 1 if line.lstrip().startswith("at ") else 0
        if frames <= 2:
            kept.append(line)
    return "\n".join(kept[-lines:])
