"""``fusionbus federation init|publish-directory|sync-acls`` and ``fusionbus agency
add|grant|list|rotate-keys|revoke``: the directory (``agency init|import``, the agency's
side of enrolment by request, are in :mod:`fusionbus.cli.enrolment`).

On a secured cluster (``config.toml`` says ``security = "mtls"``), ``agency add`` also
issues the agency's TLS certificate (from its request, or with a key made here), and every
directory change also brings the cluster's topics and ACLs in line with it
(``broker.provisioning.acls``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from broker.audit import Act
from broker.errors import ConfigError
from broker.federation import AgencyRecord, Federation, publish_directory
from broker.home import HomeLayout, kafka_settings, resolve_home
from broker.topics import DIRECTORY_TOPIC
from fusionbus.cli import _params
from fusionbus.cli._common import BootstrapOpt, HomeOpt, sync_cluster
from fusionbus.cli._console import json_line, say, visible
from fusionbus.cli.audit import record_admin_act, send_admin_acts
from fusionbus.cli.enrolment import (
    RequestOpt,
    admit_request,
    import_command,
    init_command,
    say_admitted,
)

__all__ = ["agency_app", "federation_app"]

federation_app = typer.Typer(
    help="Create the federation: its root signing key and agency directory.",
    no_args_is_help=True,
)
agency_app = typer.Typer(
    help="Enrol agencies (by request: their keys stay on their machines), grant what they "
    "may receive, list the directory.",
    no_args_is_help=True,
)
agency_app.command("init")(init_command)
agency_app.command("import")(import_command)

AgencyArg = Annotated[
    str, typer.Argument(metavar="ID", parser=_params.agency_id, help="Agency id, e.g. customs.")
]
ValidDays = Annotated[
    int,
    typer.Option(
        "--valid-days", parser=_params.whole_number(1, 3650), metavar="DAYS",
        help="Key validity in days, 1 to 3650.",
    ),
]  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@federation_app.command("init")
def init(home: HomeOpt = None) -> None:
    """Create a federation root key and an empty agency directory.

    Hand federation/root.pub.jwk to every agency out of band (and compare its kid): it is
    what they check every directory record against.
    """
    where = resolve_home(home)
    federation = Federation.init(where, now=_now())
    say(
        "Federation created in {home}.\nRoot key id (compare it out of band): {kid}\n"
        "Trust anchor to distribute: {anchor}\nNext: fusionbus agency add ID --name NAME "
        "--home {home}",
        home=where, kid=federation.root_kid, anchor=HomeLayout(where).root_public,
    )  # fmt: skip
    typer.echo(visible(federation.root_kid))


@federation_app.command("publish-directory")
def publish_directory_command(
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
    topic: Annotated[
        str,
        typer.Option(
            "--topic",
            parser=_params.topic_name,
            metavar="TOPIC",
            help="The log-compacted directory topic.",
        ),
    ] = DIRECTORY_TOPIC,
) -> None:
    """Publish every root-signed record to the directory topic, keyed by agency id, then
    a fresh root-signed head naming their revisions.

    Run it after agency add, grant, rotate-keys or revoke, and at least weekly (readers warn
    of a head older than 7 days): running LiveDirectory readers (publishers and
    subscribers) apply the change within seconds, and a reader with no state refuses a
    rolled-back topic by the head. Prints the count of agency records.
    """
    where = resolve_home(home)
    federation = Federation.load(where)
    tokens = federation.snapshot.signed_records()
    head = federation.signed_head(now=datetime.now(UTC))
    settings = kafka_settings(where, bootstrap)
    count = asyncio.run(publish_directory(settings, tokens, topic=topic, head=head))
    asyncio.run(send_admin_acts(where, federation, settings))  # grants, rotations, revocations
    say(
        "Published {count} directory record(s) to {topic} at {bootstrap}.",
        count=count, topic=topic, bootstrap=settings.bootstrap,
    )  # fmt: skip
    typer.echo(count)


@federation_app.command("sync-acls")
def sync_acls_command(home: HomeOpt = None) -> None:
    """Make the secured cluster match the directory: TLS certificates for agencies that lack
    one, the topics their grants need, and exactly the ACLs the grants call for.

    Idempotent; run on the admin's machine (it connects as fusionbus-admin)."""
    where = resolve_home(home)
    federation = Federation.load(where)
    message = sync_cluster(federation, where, certify=federation.snapshot.agencies())
    if not message:
        say(
            "{config} records no secured cluster (start one with `fusionbus kafka start "
            "--secure`); a plaintext cluster has no ACLs to sync.",
            config=HomeLayout(where).config,
        )
        raise typer.Exit(1)
    say("{message}", message=message)


def _synced(
    federation: Federation, where: Path, *, certify: list[AgencyRecord] | None = None
) -> str:
    message = sync_cluster(federation, where, certify=certify or [])
    return f"\n{message}" if message else ""


OptionalAgencyArg = Annotated[
    str | None,
    typer.Argument(
        metavar="[ID]", parser=_params.agency_id,
        help="Agency id, e.g. customs (not with --request, which names it).",
    ),
]  # fmt: skip


@agency_app.command("add")
def add(
    agency_id: OptionalAgencyArg = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            parser=_params.printable(200),
            metavar="NAME",
            help="The agency's full name (with ID, for keys made here).",
        ),
    ] = None,
    request: RequestOpt = None,
    valid_days: ValidDays = 365,
    home: HomeOpt = None,
) -> None:
    """Enrol an agency from its request (--request FILE), or make its keys here (ID --name).

    With --request: verify the request the agency made on its own machine (`fusionbus agency
    init`), sign its directory record and a certificate for its CSR, and write the
    response bundle for it; prints the bundle's path. With ID --name, for tests and
    one-machine labs only: the keys are made here, in this home, which then holds the
    agency's private keys.
    """
    where = resolve_home(home)
    if request is not None:
        _only_request("add", agency_id, name)
        federation, admission = admit_request(where, request, valid_days=valid_days, rotation=False)
        say_admitted(federation, where, admission, request)
        return
    if agency_id is None or name is None:
        raise ConfigError(
            "agency add needs --request FILE (the request the agency made with `fusionbus "
            "agency init`), or ID --name NAME to make the agency's keys here (a lab)"
        )
    federation = Federation.load(where)
    record = federation.add_agency(
        agency_id, name, now=_now(), valid_for=timedelta(days=valid_days)
    )
    synced = _synced(federation, where, certify=[record])
    say(
        "Enrolled {id} ({name}); private keys in {keys}.{synced}\nNext: fusionbus agency "
        "grant {id} --category C --jurisdiction J --home {home}",
        id=record.id, name=record.name, keys=HomeLayout(where).agency_dir(record.id), synced=synced,
        home=where,
    )  # fmt: skip
    say(
        "WARNING: this home now holds the private keys of {id}: fine for a test or a "
        "one-machine lab. A real agency makes its own on its machine (`fusionbus agency "
        "init {id} --name NAME`) and sends the request (`fusionbus agency add --request "
        "FILE`).",
        style="bold yellow", id=record.id,
    )  # fmt: skip
    typer.echo(visible(record.id))


def _only_request(command: str, agency_id: str | None, name: str | None) -> None:
    if agency_id is not None or name is not None:
        raise ConfigError(
            f"agency {command} --request takes the agency's id and name from the request; "
            "give either --request FILE or the ID (and --name), not both"
        )


CategoriesOpt = Annotated[
    list[str],
    typer.Option(
        "--category",
        parser=_params.category,
        metavar="CATEGORY",
        help="A trafficking category; repeatable.",
    ),
]


@agency_app.command("grant")
def grant(
    agency_id: AgencyArg,
    category: CategoriesOpt,
    jurisdiction: Annotated[
        list[str],
        typer.Option(
            "--jurisdiction",
            parser=_params.jurisdiction,
            metavar="JURISDICTION",
            help="PK, PK-SD or PKKHI (covers below); repeatable.",
        ),
    ],
    home: HomeOpt = None,
) -> None:
    """Entitle an agency to receive every given category in every given jurisdiction."""
    _change_grants(agency_id, category, jurisdiction, home, take_back=False)


@agency_app.command("ungrant")
def ungrant(
    agency_id: AgencyArg,
    category: CategoriesOpt,
    jurisdiction: Annotated[
        list[str],
        typer.Option(
            "--jurisdiction",
            parser=_params.jurisdiction,
            metavar="JURISDICTION",
            help="Exactly as granted (PK, PK-SD or PKKHI); repeatable.",
        ),
    ],
    home: HomeOpt = None,
) -> None:
    """Take back grants: the agency stops receiving new reports of those categories there
    (reports it has keep reaching it as their originators' notices)."""
    _change_grants(agency_id, category, jurisdiction, home, take_back=True)


def _change_grants(
    agency_id: str,
    categories: list[str],
    jurisdictions: list[str],
    home: Path | None,
    *,
    take_back: bool,
) -> None:
    where = resolve_home(home)
    federation = Federation.load(where)
    before = federation.snapshot.agency(agency_id).revision
    change = federation.ungrant if take_back else federation.grant
    record = change(agency_id, categories=categories, jurisdictions=jurisdictions, now=_now())
    if record.revision != before:
        changed = "taken back" if take_back else "granted"
        record_admin_act(where, federation, Act.GRANT_CHANGE, record.id)
    else:
        changed = "not held, nothing changed" if take_back else "already granted, nothing changed"
    synced = _synced(federation, where)
    say(
        "{id}: {changed}; revision {revision}. Grants: {grants}{synced}",
        id=record.id, changed=changed, revision=record.revision,
        grants=_grants(record) or "none", synced=synced,
    )  # fmt: skip


@agency_app.command("rotate-keys")
def rotate_keys(
    agency_id: OptionalAgencyArg = None,
    request: RequestOpt = None,
    valid_days: ValidDays = 365,
    home: HomeOpt = None,
) -> None:
    """Give an agency new keys: from its rotation request (--request FILE), or made here (ID).

    The old keys end now but stay listed, so reports signed before still verify. With
    --request (made by `fusionbus agency init ID --rotate` on the agency's machine and
    endorsed by its current signing key) the new record, certificate and bundle are made as
    for `agency add --request`; prints the bundle's path. With ID, for agencies whose keys
    this home holds: new keys here; prints the new signing and encryption kid.
    """
    where = resolve_home(home)
    if request is not None:
        _only_request("rotate-keys", agency_id, None)
        federation, admission = admit_request(where, request, valid_days=valid_days, rotation=True)
        record_admin_act(where, federation, Act.KEY_ROTATION, admission.record.id)
        say_admitted(federation, where, admission, request)
        return
    if agency_id is None:
        raise ConfigError(
            "agency rotate-keys needs --request FILE (the agency's rotation request, from "
            "`fusionbus agency init ID --rotate`), or the ID of an agency whose keys are here"
        )
    federation = Federation.load(where)
    old = federation.snapshot.agency(agency_id)
    record = federation.rotate_keys(agency_id, now=_now(), valid_for=timedelta(days=valid_days))
    record_admin_act(where, federation, Act.KEY_ROTATION, record.id)
    synced = _synced(federation, where)
    say(
        "{id}: new keys, revision {revision}{synced}; keys {signing} and {encryption} end "
        "now.\nCopy {keys} to the agency's machine; distribute the directory (fusionbus "
        "federation publish-directory).",
        id=record.id, revision=record.revision, synced=synced, signing=old.signing_kid,
        encryption=old.encryption_kid, keys=HomeLayout(where).agency_dir(record.id),
    )  # fmt: skip
    typer.echo(visible(record.signing_kid))
    typer.echo(visible(record.encryption_kid))


@agency_app.command("revoke")
def revoke(
    agency_id: AgencyArg,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            parser=_params.printable(2000),
            metavar="TEXT",
            help="Why, for the audit trail.",
        ),
    ],
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            parser=_params.key_id,
            metavar="KID",
            help="One key (default: every key of the agency).",
        ),
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Revoke an agency's key (or all its keys); print the kids revoked.

    Reports signed with a revoked key are rejected (revoked_key) from now on, and an agency
    left without a usable encryption key receives no new reports.
    """
    where = resolve_home(home)
    federation = Federation.load(where)
    old = federation.snapshot.agency(agency_id)
    record = federation.revoke(agency_id, kid=key, reason=reason, now=_now())
    before = {e.kid: e.revoked_at for e in (*old.signing_keys, *old.encryption_keys)}
    kids = [
        e.kid
        for e in (*record.signing_keys, *record.encryption_keys)
        if e.revoked_at is not None and before[e.kid] is None
    ]
    done = f"revoked {len(kids)} key(s)" if kids else "already revoked, nothing changed"
    if kids:
        record_admin_act(where, federation, Act.REVOCATION, record.id, code="revoked")
    synced = _synced(federation, where)
    say(
        "{id}: {done}; revision {revision}.{synced} Distribute the directory (fusionbus "
        "federation publish-directory); to re-admit the agency, rotate its keys.",
        id=record.id, done=done, revision=record.revision, synced=synced,
    )  # fmt: skip
    for kid in kids:
        typer.echo(visible(kid))


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
    home: HomeOpt = None,
) -> None:
    """Show the directory (every record's root signature verified first)."""
    federation = Federation.load(resolve_home(home))
    records = federation.snapshot.agencies()
    if json:
        for record in records:
            typer.echo(json_line(as_json(record)))
        return
    if not records:
        say("No agencies yet: fusionbus agency add ID --name NAME")
        return
    title = f"Federation {federation.root_kid[:12]}… ({federation.home})"
    table = Table(title=Text(visible(title)))
    for column in ("id", "name", "signing kid", "encryption kid", "valid until", "grants"):
        table.add_column(column, overflow="fold")
    for record in records:
        cells = (
            record.id,
            record.name,
            record.signing_kid,
            record.encryption_kid,
            record.encryption_keys[-1].valid_until.date().isoformat(),
            _grants(record) or "-",
        )
        table.add_row(*(Text(visible(cell)) for cell in cells))
    out = Console()
    if not out.is_terminal:
        out = Console(width=240)  # piped: do not fold the key ids
    out.print(table)
