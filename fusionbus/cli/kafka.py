"""``fusionbus kafka start|status|stop``: drive the embedded Apache Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from broker.config import default_home
from broker.kafka import ClusterState, EmbeddedKafka, ensure_distribution, kafka_version
from fusionbus.cli._console import err_console

__all__ = ["kafka_app", "start_cluster"]

kafka_app = typer.Typer(
    help="Run the embedded Apache Kafka (KRaft) on loopback.", no_args_is_help=True
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the cluster keeps its data, logs and state "
        "[default: $FUSIONBUS_HOME/kafka, i.e. ~/.fusionbus/kafka].",
    ),
]


def _data_dir(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else default_home() / "kafka"


def start_cluster(
    *, nodes: int, data_dir: Path | None, port: int | None, heap_mb: int = 768
) -> ClusterState:
    """Fetch Kafka if needed (with progress), start the cluster, report where its logs are."""
    cluster = EmbeddedKafka(_data_dir(data_dir), nodes=nodes, port=port, heap_mb=heap_mb)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
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
                f"{count} files, {size / 1e6:.1f} MB ({name})",
            )

        dist = ensure_distribution(progress=on_download)
        progress.update(task, description=f"Starting {nodes}-node Kafka {version} (KRaft)")
        state = cluster.start(dist)
    err_console.print(
        f"Kafka {state.kafka_version} is running: {len(state.nodes)} node(s), "
        f"cluster id {state.cluster_id}.\nLogs: {cluster.data_dir}/node-*/logs/ "
        f"(server.log, kafka.out)",
        highlight=False,
    )
    return state


@kafka_app.command()
def start(
    nodes: Annotated[int, typer.Option(min=1, max=9, help="Number of combined nodes.")] = 1,
    data_dir: DataDir = None,
    port: Annotated[
        int | None,
        typer.Option(
            help="First client port (node i uses port+i); 0 picks free ports "
            "[default: 9092, or the ports this data dir used last]."
        ),
    ] = None,
    heap_mb: Annotated[int, typer.Option(min=128, help="JVM heap per node, in MiB.")] = 768,
) -> None:
    """Start a KRaft cluster in the background and print its bootstrap servers (last line)."""
    state = start_cluster(nodes=nodes, data_dir=data_dir, port=port, heap_mb=heap_mb)
    typer.echo(state.bootstrap)


@kafka_app.command()
def status(data_dir: DataDir = None) -> None:
    """Show each node's state; exit 0 if all run, 3 if the cluster is stopped or partial."""
    cluster = EmbeddedKafka(_data_dir(data_dir))
    state = cluster.state()
    if state is None:
        err_console.print(f"No cluster was ever started in {cluster.data_dir}.", highlight=False)
        raise typer.Exit(3)
    running = {n.node_id for n in cluster.running_nodes(state)}
    for node in state.nodes:
        word = "running" if node.node_id in running else "stopped"
        pid = f"pid {node.pid}" if node.node_id in running else "-"
        where = cluster.node_log(node.node_id)
        typer.echo(f"node {node.node_id}\t{word}\t{node.bootstrap}\t{pid}\t{where}")
    if len(running) != len(state.nodes):
        raise typer.Exit(3)
    typer.echo(state.bootstrap)


@kafka_app.command()
def stop(data_dir: DataDir = None) -> None:
    """Stop every node of the cluster (SIGTERM, then SIGKILL after 30 s)."""
    cluster = EmbeddedKafka(_data_dir(data_dir))
    stopped = cluster.stop()
    if stopped:
        err_console.print(f"Stopped node(s) {', '.join(map(str, stopped))}.")
    else:
        err_console.print(f"No Kafka node was running in {cluster.data_dir}.", highlight=False)
