"""The ``fusionbus`` command line: the operators' and scripts' way in.

Data a script consumes (bootstrap addresses, message ids, JSON lines) goes to standard
output; progress, logs and errors go to standard error. Whatever goes wrong, the user reads
one paragraph, never a traceback: a usage error (a bad option value, a missing option, an
unknown command) names the parameter and the value and exits 2; a ``FusionbusError`` or an
operating-system error (a file that cannot be written, say) exits 1. Every parameter's value
is checked where it is parsed (:mod:`fusionbus.cli._params`), before a command reads the
home or connects to Kafka.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from broker.errors import FusionbusError
from broker.logs import configure_logging
from fusionbus.cli._console import print_error
from fusionbus.cli.audit import audit_app
from fusionbus.cli.demo import down, up
from fusionbus.cli.federation import agency_app, federation_app
from fusionbus.cli.feedback import receipt, status
from fusionbus.cli.forward import consent, forward
from fusionbus.cli.gateway import gateway_app
from fusionbus.cli.kafka import kafka_app
from fusionbus.cli.notices import retract, supersede
from fusionbus.cli.outbox import outbox
from fusionbus.cli.reports import publish, report_app, tail

__all__ = ["app", "main"]


def _click_class(name: str) -> type[Exception]:
    """click's ``UsageError`` / ``ClickException``, found through typer's public
    ``BadParameter`` (typer 0.29 vendors click under a private module, older typer depends
    on click): no private import path to break."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == name)


UsageError: Any = _click_class("UsageError")
ClickException: Any = _click_class("ClickException")


class _Fusionbus(TyperGroup):
    """The root command: turns every error into one paragraph and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except UsageError as exc:
            code = _usage_error(exc)
        except ClickException as exc:
            print_error(exc.format_message())
            code = exc.exit_code
        except typer.Abort:
            print_error("aborted.")
            code = 1
        except FusionbusError as exc:
            print_error(str(exc))
            code = 1
        except OSError as exc:  # the environment, not a bug: a full disk, a read-only home
            where = f" {exc.filename}" if exc.filename is not None else ""
            print_error(f"cannot use{where}: {exc.strerror or exc}")
            code = 1
        sys.exit(code if isinstance(code, int) else 0)


def _usage_error(exc: UsageError) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":  # no arguments: the help was shown
        message = exc.format_message()
        if message:
            typer.echo(message, err=True)
        return int(exc.exit_code)
    command = exc.ctx.command_path if exc.ctx is not None else "fusionbus"
    print_error(f"{exc.format_message().rstrip('.')}. See `{command} --help`.")
    return int(exc.exit_code)


app = typer.Typer(
    name="fusionbus",
    cls=_Fusionbus,
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
app.add_typer(gateway_app, name="gateway")
app.add_typer(audit_app, name="audit")
app.command()(up)
app.command()(down)
app.command()(publish)
app.command()(outbox)
app.command()(tail)
app.command()(status)
app.command()(receipt)
app.command()(retract)
app.command()(supersede)
app.command()(forward)
app.command()(consent)


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
    app()
