"""``fusionbus kafka start|status|stop``: drive the embedded Apache Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from broker.config import default_home
from broker.federation.pki import ClusterPki
from broker.kafka import ClusterState, EmbeddedKafka, ensure_distribution, kafka_version
from fusionbus.cli import _params
from fusionbus.cli._common import HomeOpt, resolve_home, write_config
from fusionbus.cli._console import err_console, say, visible

__all__ = ["kafka_app", "start_cluster"]

kafka_app = typer.Typer(
    help="Run the embedded Apache Kafka (KRaft) on loopback.", no_args_is_help=True
)

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


def _data_dir(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else default_home() / "kafka"


def start_cluster(
    *,
    nodes: int,
    data_dir: Path | None,
    port: int | None,
    heap_mb: int = 768,
    secure_home: Path | None = None,
) -> ClusterState:
    """Fetch Kafka if needed (with progress), start the cluster, report where its logs are.

    With ``secure_home``, the cluster runs mutual TLS with ACLs, from the PKI in that home
    (the CA and the node and admin certificates are created there if missing)."""
    tls = ClusterPki(secure_home).cluster_tls(nodes) if secure_home is not None else None
    cluster = EmbeddedKafka(
        _data_dir(data_dir), nodes=nodes, port=port, heap_mb=heap_mb, secure=tls
    )
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
    home: HomeOpt = None,
) -> None:
    """Start a KRaft cluster in the background and print its bootstrap servers (last line)."""
    where = resolve_home(home)
    if data_dir is None and home is not None:
        data_dir = where / "kafka"
    state = start_cluster(
        nodes=nodes, data_dir=data_dir, port=port, heap_mb=heap_mb,
        secure_home=where if secure else None,
    )  # fmt: skip
    if secure:
        write_config(where, state.bootstrap, secure=True, by="fusionbus kafka start --secure")
        say(
            "Cluster CA: {ca}; admin certificate in {admin}. Recorded in {config}.",
            ca=ClusterPki(where).ca_cert_path, admin=where / "tls" / "admin",
            config=where / "config.toml",
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
