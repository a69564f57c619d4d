"""``fusionbus kafka start|status|stop``: drive the embedded Apache Kafka;
``fusionbus kafka config``: write the secured configuration of a cluster on real machines.

The parsers of the values only these commands take (loopback addresses, host names, a
cluster id, a path on the node's machine) are here, each raising :class:`typer.BadParameter`
as :mod:`fusionbus.cli._params` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Annotated, TypeVar

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from broker.config import default_home
from broker.errors import ConfigError
from broker.home import HomeLayout, resolve_home, write_config
from broker.kafka import (
    DEFAULT_CONTROLLER_PORT,
    DEFAULT_HOST,
    DEFAULT_LOG_DIR,
    DEFAULT_PORT,
    MAX_NODES,
    ClusterState,
    ClusterTls,
    Deployment,
    EmbeddedKafka,
    bind_address,
    cluster_id,
    ensure_distribution,
    host_name,
    kafka_version,
    log_dir,
    loopback_hosts,
    new_cluster_id,
    recipe_dir,
)
from broker.provisioning.pki import ADMIN_PRINCIPAL, ClusterPki, node_principal
from fusionbus.cli import _params
from fusionbus.cli._common import HomeOpt
from fusionbus.cli._console import err_console, say, visible

__all__ = ["host_names", "kafka_app", "loopback_addresses", "start_cluster"]

kafka_app = typer.Typer(
    help="Run the embedded Apache Kafka (KRaft) on loopback, or write the secured "
    "configuration of a cluster on real machines (kafka config).",
    no_args_is_help=True,
)

T = TypeVar("T")

# -- the parsers of this group's own values ------------------------------------------------


def _items(value: object) -> list[str]:
    text = value if isinstance(value, str) else str(value)
    return [item.strip() for item in text.split(",")]


def loopback_addresses(value: object) -> str:
    """Distinct loopback IPv4 addresses (127.x.y.z), comma-separated; canonical form."""
    items = _items(value)
    try:
        return ",".join(loopback_hosts(items, len(items)))
    except ConfigError as exc:
        raise typer.BadParameter(
            f"{exc}; give one address per node, separated by commas, such as "
            "127.0.10.1,127.0.10.2,127.0.10.3"
        ) from None


def host_names(value: object) -> str:
    """1 to 9 distinct host names or IP addresses, comma-separated; canonical form."""
    items = _items(value)
    try:
        hosts = [host_name(item) for item in items]
    except ConfigError as exc:
        raise typer.BadParameter(
            f"{exc}; give each node's host, in node order, separated by commas, such as "
            "kafka1.example.internal,kafka2.example.internal,kafka3.example.internal"
        ) from None
    if len(hosts) > MAX_NODES:
        raise typer.BadParameter(
            f"{len(hosts)} hosts: a cluster has 1 to {MAX_NODES} nodes (each is a controller "
            "too; 3 or 5 is usual)"
        )
    twice = sorted({h for h in hosts if hosts.count(h) > 1})
    if twice:
        raise typer.BadParameter(
            f"{', '.join(map(repr, twice))} is named more than once: each node runs on its "
            "own machine, so each host appears once"
        )
    return ",".join(hosts)


def _checked(check: Callable[[str], T]) -> Callable[[object], T]:
    """A parser from one of :mod:`broker.kafka`'s checkers (which raise ConfigError)."""

    def parse(value: object) -> T:
        try:
            return check(value if isinstance(value, str) else str(value))
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None

    return parse


# -- the embedded cluster --------------------------------------------------------------------

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", parser=_params.directory, metavar="DIR",
        help="Where the cluster keeps its data, logs and state "
        "(default: $FUSIONBUS_HOME/kafka, i.e. ~/.fusionbus/kafka).",
    ),
]  # fmt: skip
_Port = Annotated[
    int | None,
    typer.Option(
        parser=_params.whole_number(0, 65_535), metavar="PORT",
        help="First client port (node i uses port+i); 0 picks free ports "
        "(default: 9092, or the ports this data dir used last).",
    ),
]  # fmt: skip
_Addresses = Annotated[
    str | None,
    typer.Option(
        "--addresses", parser=loopback_addresses, metavar="ADDR,...",
        help="One loopback address per node (127.x.y.z), as if each ran on its own host: "
        "node i listens and is dialled there, and its certificate names it (default: "
        "127.0.0.1 for all, or the addresses this data dir used last).",
        show_default=False,
    ),
]  # fmt: skip


def _data_dir(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else HomeLayout(default_home()).kafka_dir


def _node_hosts(data_dir: Path, nodes: int, hosts: Sequence[str] | None) -> tuple[str, ...] | None:
    """The addresses the nodes will have: ``hosts``, else those the data dir used last;
    ``None`` for the default (every node on 127.0.0.1, certificates naming loopback)."""
    if hosts is None:
        previous = EmbeddedKafka(data_dir).state()
        if previous is not None and len(previous.nodes) == nodes:
            hosts = [n.host for n in previous.nodes]
    if hosts is None or all(h == DEFAULT_HOST for h in hosts):
        return None
    return tuple(hosts)


def start_cluster(
    *,
    nodes: int,
    data_dir: Path | None,
    port: int | None,
    heap_mb: int = 768,
    secure_home: Path | None = None,
    hosts: Sequence[str] | None = None,
) -> ClusterState:
    """Fetch Kafka if needed (with progress), start the cluster, report where its logs are.

    With ``secure_home``, the cluster runs mutual TLS with ACLs, from the PKI in that home
    (the CA and the node and admin certificates are created there if missing). With
    ``hosts``, node ``i`` runs on loopback address ``hosts[i]``."""
    where = _data_dir(data_dir)
    hosts = _node_hosts(where, nodes, hosts)
    tls = (
        ClusterPki(secure_home).cluster_tls(nodes, hosts=hosts) if secure_home is not None else None
    )
    cluster = EmbeddedKafka(where, nodes=nodes, port=port, heap_mb=heap_mb, secure=tls, hosts=hosts)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        version = kafka_version()
        task = progress.add_task(f"Checking Apache Kafka {version} jars")

        def on_download(count: int, size: int, name: str) -> None:
            progress.update(
                task,
                description=f"Fetching Apache Kafka {version} from Maven Central: "
                f"{count} files, {size / 1e6:.1f} MB ({visible(name)})",
            )

        dist = ensure_distribution(progress=on_download)
        progress.update(task, description=f"Starting {nodes}-node Kafka {version} (KRaft)")
        state = cluster.start(dist)
    mode = (
        "secured: mutual TLS on every listener, ACLs enforced"
        if state.secure
        else "PLAINTEXT: no TLS, no authentication, no ACLs"
    )
    say(
        "Kafka {version} is running: {nodes} node(s), cluster id {cluster_id}, {mode}.\n"
        "Logs: {data_dir}/node-*/logs/ (server.log, kafka.out)",
        version=state.kafka_version, nodes=len(state.nodes), cluster_id=state.cluster_id,
        mode=mode, data_dir=cluster.data_dir,
    )  # fmt: skip
    if not state.secure:
        err_console.print(
            "[bold yellow]WARNING:[/] this cluster is PLAINTEXT: any local process can read "
            "and write every topic. Fine for the quick local demo and tests; use --secure "
            "for anything else.",
            highlight=False,
            soft_wrap=True,
        )
    return state


@kafka_app.command()
def start(  # noqa: PLR0917 - typer maps each parameter to an option
    nodes: Annotated[
        int,
        typer.Option(
            parser=_params.whole_number(1, 9), metavar="N", help="Number of combined nodes, 1 to 9."
        ),
    ] = 1,
    data_dir: DataDir = None,
    port: _Port = None,
    heap_mb: Annotated[
        int,
        typer.Option(
            parser=_params.whole_number(128, 65_536),
            metavar="MIB",
            help="JVM heap per node, in MiB (128 to 65536).",
        ),
    ] = 768,
    secure: Annotated[
        bool,
        typer.Option(
            "--secure",
            help="Mutual TLS on every listener and ACLs (CA and certificates in the home's "
            "tls/; records the mode in config.toml).",
        ),
    ] = False,
    addresses: _Addresses = None,
    home: HomeOpt = None,
) -> None:
    """Start a KRaft cluster in the background and print its bootstrap servers (last line)."""
    hosts = addresses.split(",") if addresses is not None else None
    if hosts is not None and len(hosts) != nodes:
        raise typer.BadParameter(
            f"{len(hosts)} address(es) for {nodes} node(s): give one per node, or pass "
            f"--nodes {len(hosts)}",
            param_hint="--addresses",
        )
    where = resolve_home(home)
    if data_dir is None and home is not None:
        data_dir = HomeLayout(where).kafka_dir
    state = start_cluster(
        nodes=nodes, data_dir=data_dir, port=port, heap_mb=heap_mb,
        secure_home=where if secure else None, hosts=hosts,
    )  # fmt: skip
    if secure:
        write_config(where, state.bootstrap, secure=True, by="fusionbus kafka start --secure")
        say(
            "Cluster CA: {ca}; admin certificate in {admin}. Recorded in {config}.",
            ca=ClusterPki(where).ca_cert_path, admin=HomeLayout(where).admin_tls.cert.parent,
            config=HomeLayout(where).config,
        )  # fmt: skip
    typer.echo(visible(state.bootstrap))


@kafka_app.command()
def status(data_dir: DataDir = None) -> None:
    """Show each node's state; exit 0 if all run, 3 if the cluster is stopped or partial."""
    cluster = EmbeddedKafka(_data_dir(data_dir))
    state = cluster.state()
    if state is None:
        say("No cluster was ever started in {data_dir}.", data_dir=cluster.data_dir)
        raise typer.Exit(3)
    running = {n.node_id for n in cluster.running_nodes(state)}
    for node in state.nodes:
        word = "running" if node.node_id in running else "stopped"
        pid = f"pid {node.pid}" if node.node_id in running else "-"
        fields = (f"node {node.node_id}", word, node.bootstrap, pid, cluster.node_log(node.node_id))
        typer.echo("\t".join(visible(field) for field in fields))
    mode = "secured (mutual TLS, ACLs)" if state.secure else "PLAINTEXT (no TLS, no ACLs)"
    say("Mode: {mode}.", mode=mode)
    if len(running) != len(state.nodes):
        raise typer.Exit(3)
    typer.echo(visible(state.bootstrap))


@kafka_app.command()
def stop(data_dir: DataDir = None) -> None:
    """Stop every node of the cluster (SIGTERM, then SIGKILL after 30 s)."""
    cluster = EmbeddedKafka(_data_dir(data_dir))
    stopped = cluster.stop()
    if stopped:
        say("Stopped node(s) {nodes}.", nodes=", ".join(map(str, stopped)))
    else:
        say("No Kafka node was running in {data_dir}.", data_dir=cluster.data_dir)


# -- a cluster on real machines ------------------------------------------------------------


def _deployment(
    out: Path, hosts: Sequence[str], given_id: str | None, *, client_port: int,
    controller_port: int, node_log_dir: PurePosixPath, bind: str,
) -> Deployment:  # fmt: skip
    """The deployment to write: the cluster id given, else the one ``out`` records, else a
    new one; refused when ``out`` records a cluster its nodes would disagree with."""
    recorded = Deployment.recorded(out)
    chosen = given_id or (recorded.cluster_id if recorded is not None else new_cluster_id())
    try:
        wanted = Deployment(
            hosts=tuple(hosts), cluster_id=chosen, kafka_version=kafka_version(),
            client_port=client_port, controller_port=controller_port, log_dir=node_log_dir,
            bind=bind,
        )  # fmt: skip
    except ConfigError as exc:
        raise typer.BadParameter(str(exc)) from None
    if recorded is not None and (changed := wanted.differences(recorded)):
        raise ConfigError(
            f"{out} holds the configuration of another cluster ({'; '.join(changed)}): the "
            "nodes of one cluster must agree on its id, hosts and ports. Give the same "
            "values as before, or write into another --out."
        )
    return wanted


def _cluster_tls(
    pki: ClusterPki, deployment: Deployment, out: Path, nodes: Sequence[int]
) -> ClusterTls:
    """The CA's material for ``nodes``: each node's key and certificate (SAN: its host) in
    ``<out>/node-<id>/tls/``, issued again only when missing, expiring or for other hosts."""
    node_tls = {
        node_id: pki.node_tls(
            node_id, hosts=(deployment.hosts[node_id - 1],), folder=out / f"node-{node_id}" / "tls"
        )
        for node_id in nodes
    }
    admin = pki.issue_admin()
    supers = tuple(f"User:{node_principal(i)}" for i in deployment.node_ids)
    return ClusterTls(
        ca_pem=pki.ca_cert_path.read_text(),
        node_ca_pem=pki.node_ca_cert_path.read_text(),
        client_trust_pem=pki.client_trust(pki.trusted_agencies()),
        nodes=node_tls,
        admin=admin.settings(deployment.bootstrap),
        super_users=(*supers, f"User:{ADMIN_PRINCIPAL}"),
    )


@kafka_app.command()
def config(  # noqa: PLR0917 - typer maps each parameter to an option
    hosts: Annotated[
        str,
        typer.Option(
            "--hosts",
            parser=host_names,
            metavar="HOST,...",
            help="Each node's host name or IP address, in node order (node 1 first), "
            "separated by commas: what clients and the other nodes dial, and what its "
            "certificate names.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            parser=_params.directory,
            metavar="DIR",
            help="Where to write one folder per node (node-<id>/) and cluster.json.",
            show_default=False,
        ),
    ],
    node: Annotated[
        int | None,
        typer.Option(
            "--node",
            parser=_params.whole_number(1, MAX_NODES),
            metavar="ID",
            help="Write only this node's folder (default: every node's).",
            show_default=False,
        ),
    ] = None,
    client_port: Annotated[
        int,
        typer.Option(
            "--port",
            parser=_params.whole_number(1, 65_535),
            metavar="PORT",
            help="The client and inter-broker port on every node.",
        ),
    ] = DEFAULT_PORT,
    controller_port: Annotated[
        int,
        typer.Option(
            "--controller-port",
            parser=_params.whole_number(1, 65_535),
            metavar="PORT",
            help="The controller quorum's port on every node.",
        ),
    ] = DEFAULT_CONTROLLER_PORT,
    node_log_dir: Annotated[
        PurePosixPath,
        typer.Option(
            "--log-dir",
            parser=_checked(log_dir),
            metavar="PATH",
            help="The data directory on each node's machine (log.dirs).",
        ),
    ] = DEFAULT_LOG_DIR,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            parser=_checked(bind_address),
            metavar="ADDR",
            help="The address the listeners bind to on each machine (0.0.0.0: every "
            "interface; the node is still dialled by its host name).",
        ),
    ] = "0.0.0.0",  # noqa: S104 - the documented default for a real machine
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster-id",
            parser=_checked(cluster_id),
            metavar="ID",
            help="The Kafka cluster id every node's storage is formatted with (default: "
            "the one recorded in DIR, else a new one).",
            show_default=False,
        ),
    ] = None,
    write_home_config: Annotated[
        bool,
        typer.Option(
            "--write-config",
            help="Also record this cluster (its bootstrap, mutual TLS) in the home's "
            "config.toml, so the admin's later commands use it.",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """Write each node's secured server.properties and certificates for real machines,
    from the cluster CA in the admin's home; print the bootstrap servers (last line)."""
    names = hosts.split(",")
    if node is not None and node > len(names):
        raise typer.BadParameter(
            f"{node} is not a node of this cluster: node ids are 1 to {len(names)}, in the "
            "order of --hosts",
            param_hint="--node",
        )
    where = resolve_home(home)
    deployment = _deployment(
        out, names, cluster, client_port=client_port, controller_port=controller_port,
        node_log_dir=node_log_dir, bind=listen,
    )  # fmt: skip
    pki = ClusterPki(where)
    had_ca = pki.ca_cert_path.is_file()
    nodes = [node] if node is not None else list(deployment.node_ids)
    tls = _cluster_tls(pki, deployment, out, nodes)
    deployment.record(out)
    log4j = recipe_dir() / "log4j2.properties"
    for node_id in nodes:
        folder = out / f"node-{node_id}"
        deployment.write_node(folder, node_id, tls, log4j=log4j)
        say(
            "node {node_id} ({host}): {folder}/ -> /etc/kafka/ on that machine",
            node_id=node_id, host=deployment.hosts[node_id - 1], folder=folder,
        )  # fmt: skip
    say(
        "Cluster id {cluster_id} (recorded in {record}); CA {ca}{created}.\n"
        "On each machine, once: java -cp '/opt/kafka/libs/*' kafka.tools.StorageTool format "
        "-t {cluster_id} -c /etc/kafka/server.properties\n"
        "Then: systemctl enable --now kafka (deploy/kafka/kafka.service; docs/deploy.md).",
        cluster_id=deployment.cluster_id, record=out / "cluster.json", ca=pki.ca_cert_path,
        created=" (created now)" if not had_ca else "",
    )  # fmt: skip
    if write_home_config:
        write_config(where, deployment.bootstrap, secure=True, by="fusionbus kafka config")
        say("Recorded in {config}.", config=HomeLayout(where).config)
    typer.echo(visible(deployment.bootstrap))
