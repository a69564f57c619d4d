"""``fusionbus gateway``: run an agency's HTTP gateway, and manage its access tokens.

::

    fusionbus gateway --agency anf [--home H] [--listen 127.0.0.1:8480]   # prints the URL last
    fusionbus gateway token create --agency anf --role viewer             # prints the token last
    fusionbus gateway token list --agency anf [--json]
    fusionbus gateway token revoke TOKEN_ID --agency anf
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from broker.errors import ConfigError
from broker.home import HomeLayout
from broker.logs import configure_logging
from fusionbus.cli import _params
from fusionbus.cli._common import HomeOpt
from fusionbus.cli._console import json_line, line, out_console, say

if TYPE_CHECKING:
    from gateway.tokens import TokenStore

__all__ = ["gateway_app"]

gateway_app = typer.Typer(
    help="Run an agency's HTTP gateway (ingest, read, live feed) and manage its tokens.",
    invoke_without_command=True,
)
token_app = typer.Typer(
    help="Create, list and revoke the gateway's access tokens.", no_args_is_help=True
)
gateway_app.add_typer(token_app, name="token")

_LISTEN = re.compile(r"(?P<host>[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(?P<port>[0-9]{1,5})")
_TOKEN_ID = re.compile(r"[0-9a-f]{12}")
_ROLES = ("operator", "viewer", "system")


def _listen(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    match = _LISTEN.fullmatch(text)
    if match is None or int(match["port"]) > 65_535:
        raise typer.BadParameter(
            f"{text!r} is not an address to listen on: expected host:port with a port from 0 "
            "(any free port) to 65535, like 127.0.0.1:8480"
        )
    return text


def _role(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if text not in _ROLES:
        raise typer.BadParameter(f"{text!r} is not a role: expected operator, viewer or system")
    return text


def _token_id(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if _TOKEN_ID.fullmatch(text) is None:
        raise typer.BadParameter(
            f"{text!r} is not a token id: expected 12 hexadecimal digits, as `fusionbus "
            "gateway token list` shows them"
        )
    return text


AgencyOpt = Annotated[
    str,
    typer.Option("--agency", parser=_params.agency_id, metavar="ID", help="The agency, e.g. anf."),
]


@gateway_app.callback()
def gateway(
    ctx: typer.Context,
    agency: Annotated[
        str | None,
        typer.Option(
            "--agency",
            parser=_params.agency_id,
            metavar="ID",
            help="The agency whose gateway to run (its own home: <home>/sites/ID/ if present).",
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            parser=_listen,
            metavar="HOST:PORT",
            help="Where to listen (default: [gateway] listen in the home's config.toml, else "
            "127.0.0.1:8480); port 0 picks a free one.",
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Serve the agency's gateway until SIGINT or SIGTERM (a second one stops it at once);
    print its URL once it listens."""
    if ctx.invoked_subcommand is not None:
        return
    if agency is None:
        raise typer.BadParameter("--agency ID is required to run a gateway", param_hint="--agency")
    from gateway._site import site_kafka  # noqa: PLC0415 - the web stack loads only to serve
    from gateway.app import create_app, serve  # noqa: PLC0415
    from gateway.detached import DetachedGateway  # noqa: PLC0415
    from gateway.service import Gateway  # noqa: PLC0415
    from gateway.settings import load_settings  # noqa: PLC0415

    # A service logs its access lines (INFO) whatever -v says; --log-json/--log-console holds.
    configure_logging("INFO", json=ctx.find_root().params.get("log_json"))
    where = _agency_home(home, agency)
    running = DetachedGateway(where, agency).running()
    if running is not None and running.pid != os.getpid():
        raise ConfigError(
            f"{agency}'s gateway already runs in {where} (pid {running.pid}, {running.url}, "
            "started by `fusionbus up`); use it, or stop it first with `fusionbus down`: two "
            "gateways of one agency in one home would share its stores and consumer group"
        )
    settings = load_settings(where, listen=listen)
    kafka = site_kafka(where, agency)
    sock = _bind(settings.host, settings.port, settings.socket_send_buffer)
    service = Gateway(where, agency, settings, kafka)

    def announce(url: str) -> None:
        say("{agency}'s gateway is listening (home {home}).", agency=agency, home=where)
        typer.echo(url)

    try:
        asyncio.run(serve(create_app(service), sock, on_listening=announce))
    finally:
        service.close()
        sock.close()


def _bind(host: str, port: int, send_buffer: int) -> socket.socket:
    """The listening socket; connections accepted from it inherit its send buffer size.

    Its protocol is named (``IPPROTO_TCP``, not the default 0) because asyncio turns Nagle's
    algorithm off (``TCP_NODELAY``) only on sockets that say they are TCP: without it every
    answer written in two parts (headers, then body) waits ~40 ms for the client's delayed
    ACK.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror}; pick another address with "
            "--listen HOST:PORT (port 0 picks a free one)"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _agency_home(home: Path | None, agency: str) -> Path:
    """The agency's own home; a ConfigError if it holds no keys of the agency."""
    from gateway._site import agency_home  # noqa: PLC0415

    where = agency_home(home, agency)
    keys = HomeLayout(where).agency_dir(agency)
    if not keys.is_dir():
        raise ConfigError(
            f"{where} holds no keys of agency {agency!r} (no {keys}); a gateway runs in the "
            f"agency's own home: pass --home, or enrol {agency} there (`fusionbus agency init "
            f"{agency} --name NAME`)"
        )
    return where


def _store(home: Path | None, agency: str) -> TokenStore:
    from gateway._files import GatewayFiles  # noqa: PLC0415
    from gateway.tokens import TokenStore  # noqa: PLC0415

    where = _agency_home(home, agency)
    return TokenStore(GatewayFiles(where, agency), agency)


@token_app.command("create")
def token_create(
    agency: AgencyOpt,
    role: Annotated[
        str, typer.Option(parser=_role, metavar="ROLE", help="operator, viewer or system.")
    ],
    label: Annotated[
        str | None,
        typer.Option(parser=_params.printable(100), metavar="TEXT", help="Who or what holds it."),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Make an access token; print it as the last line (shown once, stored hashed)."""
    from gateway.tokens import Role  # noqa: PLC0415

    store = _store(home, agency)
    try:
        info, token = store.create(Role(role), datetime.now(UTC), label=label or "")
    finally:
        store.close()
    say(
        "Token {id} ({role}) for {agency}'s gateway; send it as `Authorization: Bearer <token>`. "
        "It is shown once:",
        id=info.id, role=role, agency=agency,
    )  # fmt: skip
    typer.echo(token)


@token_app.command("list")
def token_list(
    agency: AgencyOpt,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    home: HomeOpt = None,
) -> None:
    """List the gateway's tokens (ids, roles, labels, when made and revoked; no secrets)."""
    store = _store(home, agency)
    try:
        tokens = store.all()
    finally:
        store.close()
    for info in tokens:
        revoked = info.revoked_at.isoformat() if info.revoked_at else None
        if as_json:
            typer.echo(
                json_line(
                    {
                        "id": info.id,
                        "role": str(info.role),
                        "label": info.label,
                        "created_at": info.created_at.isoformat(),
                        "revoked_at": revoked,
                    }
                )
            )
        else:
            state = f"revoked {revoked}" if revoked else "active"
            made = f"{info.created_at:%Y-%m-%d %H:%M}Z"
            out_console.print(line(f"{info.id}  {info.role:<8}  {made}  {state}  {info.label}"))


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[
        str, typer.Argument(parser=_token_id, metavar="TOKEN_ID", help="As `token list` shows it.")
    ],
    agency: AgencyOpt,
    home: HomeOpt = None,
) -> None:
    """Revoke a token at once (the gateway refuses it from its next request on)."""
    store = _store(home, agency)
    try:
        revoked = store.revoke(token_id, datetime.now(UTC))
    finally:
        store.close()
    if not revoked:
        raise ConfigError(
            f"{agency}'s gateway has no active token {token_id}; `fusionbus gateway token list "
            f"--agency {agency}` shows them"
        )
    typer.echo(token_id)
