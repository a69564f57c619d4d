"""``fusionbus federation init|publish-directory|sync-acls`` and ``fusionbus agency
add|grant|list|rotate-keys|revoke``: the directory.

On a secured cluster (``config.toml`` says ``security = "mtls"``), ``agency add`` also
issues the agency's TLS certificate, and every directory change also brings the cluster's
topics and ACLs in line with it (``broker.acls``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from broker.config import default_home
from broker.federation import AgencyRecord, Federation, publish_directory
from broker.topics import DIRECTORY_TOPIC
from fusionbus.cli._common import BootstrapOpt, kafka_settings, sync_cluster
from fusionbus.cli._console import err_console

__all__ = ["agency_app", "federation_app"]

federation_app = typer.Typer(
    help="Create the federation: its root signing key and agency directory.",
    no_args_is_help=True,
)
agency_app = typer.Typer(
    help="Enrol agencies, grant what they may receive, list the directory.",
    no_args_is_help=True,
)

Home = Annotated[
    Path | None,
    typer.Option(
        "--home",
        help="The fusionbus home directory [default: $FUSIONBUS_HOME, else ~/.fusionbus].",
    ),
]


def _home(home: Path | None) -> Path:
    return home if home is not None else default_home()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@federation_app.command("init")
def init(home: Home = None) -> None:
    """Create a federation root key and an empty agency directory.

    Hand federation/root.pub.jwk to every agency out of band (and compare its kid): it is
    what they check every directory record against.
    """
    where = _home(home)
    federation = Federation.init(where, now=_now())
    err_console.print(
        f"Federation created in {where}.\n"
        f"Root key id (compare it out of band): {federation.root_kid}\n"
        f"Trust anchor to distribute: {where / 'federation' / 'root.pub.jwk'}\n"
        f"Next: fusionbus agency add ID --name NAME --home {where}",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(federation.root_kid)


@federation_app.command("publish-directory")
def publish_directory_command(
    home: Home = None,
    bootstrap: BootstrapOpt = None,
    topic: Annotated[
        str, typer.Option("--topic", help="The log-compacted directory topic.")
    ] = DIRECTORY_TOPIC,
) -> None:
    """Publish every root-signed record to the directory topic, keyed by agency id.

    Run it after agency add, grant, rotate-keys or revoke: running LiveDirectory readers
    (publishers and subscribers) apply the change within seconds. Prints the count.
    """
    where = _home(home)
    federation = Federation.load(where)
    tokens = federation.signed_records()
    settings = kafka_settings(where, bootstrap)
    count = asyncio.run(publish_directory(settings, tokens, topic=topic))
    err_console.print(
        f"Published {count} directory record(s) to {topic} at {settings.bootstrap}.",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(count)


@federation_app.command("sync-acls")
def sync_acls_command(home: Home = None) -> None:
    """Make the secured cluster match the directory: TLS certificates for agencies that lack
    one, the topics their grants need, and exactly the ACLs the grants call for.

    Idempotent; run on the admin's machine (it connects as fusionbus-admin)."""
    where = _home(home)
    federation = Federation.load(where)
    message = sync_cluster(federation, where, issue=federation.agencies())
    if not message:
        err_console.print(
            f"{where / 'config.toml'} records no secured cluster (start one with `fusionbus "
            "kafka start --secure`); a plaintext cluster has no ACLs to sync.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    err_console.print(message, highlight=False)


def _synced(federation: Federation, where: Path, *, issue: list[AgencyRecord] | None = None) -> str:
    message = sync_cluster(federation, where, issue=issue or [])
    return f"\n{message}" if message else ""


@agency_app.command("add")
def add(
    agency_id: Annotated[str, typer.Argument(metavar="ID", help="Agency id, e.g. customs.")],
    name: Annotated[str, typer.Option("--name", help="The agency's full name.")],
    valid_days: Annotated[
        int, typer.Option("--valid-days", min=1, max=3650, help="Key validity in days.")
    ] = 365,
    home: Home = None,
) -> None:
    """Enrol an agency: new signing and encryption keys and a root-signed record."""
    where = _home(home)
    federation = Federation.load(where)
    record = federation.add_agency(
        agency_id, name, now=_now(), valid_for=timedelta(days=valid_days)
    )
    synced = _synced(federation, where, issue=[record])
    err_console.print(
        f"Enrolled {record.id} ({record.name}); private keys in "
        f"{where / 'agencies' / record.id}.{synced}\n"
        f"Next: fusionbus agency grant {record.id} --category C --jurisdiction J "
        f"--home {where}",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(record.id)


@agency_app.command("grant")
def grant(
    agency_id: Annotated[str, typer.Argument(metavar="ID")],
    category: Annotated[
        list[str], typer.Option("--category", help="A trafficking category; repeatable.")
    ],
    jurisdiction: Annotated[
        list[str],
        typer.Option("--jurisdiction", help="PK, PK-SD or PKKHI (covers below); repeatable."),
    ],
    home: Home = None,
) -> None:
    """Entitle an agency to receive every given category in every given jurisdiction."""
    where = _home(home)
    federation = Federation.load(where)
    before = federation.agency(agency_id).revision
    record = federation.grant(
        agency_id, categories=category, jurisdictions=jurisdiction, now=_now()
    )
    changed = "granted" if record.revision != before else "already granted, nothing changed"
    synced = _synced(federation, where)
    err_console.print(
        f"{record.id}: {changed}; revision {record.revision}. Grants: "
        f"{_grants(record) or 'none'}{synced}",
        highlight=False,
        soft_wrap=True,
    )


@agency_app.command("rotate-keys")
def rotate_keys(
    agency_id: Annotated[str, typer.Argument(metavar="ID")],
    valid_days: Annotated[
        int, typer.Option("--valid-days", min=1, max=3650, help="New keys' validity in days.")
    ] = 365,
    home: Home = None,
) -> None:
    """Give an agency new signing and encryption keys; print the new kids.

    The old keys end now but stay listed, so reports signed before still verify; the old
    private encryption key stays in agencies/ID/encryption.<kid>.key.pem to open them.
    Copy agencies/ID/ to the agency's machine.
    """
    where = _home(home)
    federation = Federation.load(where)
    old = federation.agency(agency_id)
    record = federation.rotate_keys(agency_id, now=_now(), valid_for=timedelta(days=valid_days))
    synced = _synced(federation, where)
    err_console.print(
        f"{record.id}: new keys, revision {record.revision}{synced}; keys "
        f"{old.signing_kid} and {old.encryption_kid} end now.\n"
        f"Copy {where / 'agencies' / record.id} to the agency's machine; distribute the "
        "directory (fusionbus federation publish-directory).",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(record.signing_kid)
    typer.echo(record.encryption_kid)


@agency_app.command("revoke")
def revoke(
    agency_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit trail.")],
    key: Annotated[
        str | None,
        typer.Option("--key", metavar="KID", help="One key [default: every key of the agency]."),
    ] = None,
    home: Home = None,
) -> None:
    """Revoke an agency's key (or all its keys); print the kids revoked.

    Reports signed with a revoked key are rejected (revoked_key) from now on, and an agency
    left without a usable encryption key receives no new reports.
    """
    where = _home(home)
    federation = Federation.load(where)
    old = federation.agency(agency_id)
    record = federation.revoke(agency_id, kid=key, reason=reason, now=_now())
    before = {e.kid: e.revoked_at for e in (*old.signing_keys, *old.encryption_keys)}
    kids = [
        e.kid
        for e in (*record.signing_keys, *record.encryption_keys)
        if e.revoked_at is not None and before[e.kid] is None
    ]
    done = f"revoked {len(kids)} key(s)" if kids else "already revoked, nothing changed"
    synced = _synced(federation, where)
    err_console.print(
        f"{record.id}: {done}; revision {record.revision}.{synced} Distribute the directory "
        "(fusionbus federation publish-directory); to re-admit the agency, rotate its keys.",
        highlight=False,
        soft_wrap=True,
    )
    for kid in kids:
        typer.echo(kid)


def _grants(record: AgencyRecord) -> str:
    by_category: dict[str, list[str]] = {}
    for item in record.grants:
        by_category.setdefault(item.category, []).append(item.jurisdiction)
    return "; ".join(f"{c}: {', '.join(j)}" for c, j in by_category.items())


def as_json(record: AgencyRecord) -> dict[str, object]:
    """The JSON object ``agency list --json`` prints: the verified record, plus the kids of
    the current keys for convenience."""
    return record.model_dump(mode="json") | {
        "signing_kid": record.signing_kid,
        "encryption_kid": record.encryption_kid,
    }


@agency_app.command("list")
def list_agencies(
    json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    home: Home = None,
) -> None:
    """Show the directory (every record's root signature verified first)."""
    federation = Federation.load(_home(home))
    records = federation.agencies()
    if json:
        for record in records:
            typer.echo(orjson.dumps(as_json(record)).decode())
        return
    if not records:
        err_console.print("No agencies yet: fusionbus agency add ID --name NAME")
        return
    table = Table(title=f"Federation {federation.root_kid[:12]}… ({federation.home})")
    for column in ("id", "name", "signing kid", "encryption kid", "valid until", "grants"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(
            record.id,
            record.name,
            record.signing_kid,
            record.encryption_kid,
            record.encryption_keys[-1].valid_until.date().isoformat(),
            _grants(record) or "-",
        )
    out = Console()
    if not out.is_terminal:
        out = Console(width=240)  # piped: do not fold the key ids
    out.print(table)
