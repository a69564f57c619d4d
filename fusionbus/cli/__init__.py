"""The ``fusionbus`` command line: the operators' and scripts' way in.

Data a script consumes (bootstrap addresses, message ids, JSON lines) goes to standard
output; progress, logs and errors go to standard error. Every ``FusionbusError`` becomes a
one-paragraph message and exit code 1; a usage error exits 2.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from broker.errors import FusionbusError
from broker.logs import configure_logging
from fusionbus.cli._console import err_console, line
from fusionbus.cli.demo import up
from fusionbus.cli.federation import agency_app, federation_app
from fusionbus.cli.kafka import kafka_app
from fusionbus.cli.reports import publish, report_app, tail

__all__ = ["app", "main"]

app = typer.Typer(
    name="fusionbus",
    help="Interagency intelligence sharing over Apache Kafka: signed, end-to-end encrypted "
    "reports routed by jurisdiction and trafficking category.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(kafka_app, name="kafka")
app.add_typer(federation_app, name="federation")
app.add_typer(agency_app, name="agency")
app.add_typer(report_app, name="report")
app.command()(up)
app.command()(publish)
app.command()(tail)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log progress events (INFO) to stderr.")
    ] = False,
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--log-console", help="Log format; default: console on a TTY."),
    ] = None,
) -> None:
    configure_logging("INFO" if verbose else "WARNING", json=log_json)
    if not verbose:
        # aiokafka logs transient, self-healing conditions (a coordinator still being
        # elected) at ERROR; fusionbus raises what is not transient. -v shows them all.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except FusionbusError as exc:
        # Messages quote paths, Java log lines and untrusted values: never markup or controls.
        err_console.print(line(("error:", "bold red"), f" {exc}"))
        raise SystemExit(1) from None
