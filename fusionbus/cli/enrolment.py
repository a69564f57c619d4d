"""``fusionbus agency init|import`` and ``agency add|rotate-keys --request``: enrolment by
request, the agency's keys born and kept on its own machine (``docs/federation.md``).

The functions :func:`make_request`, :func:`admit_request` and :func:`import_bundle` are what
the commands run, and what ``fusionbus up`` runs for each demo agency, so the demo goes
through the same code as two machines would.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from broker.errors import ConfigError
from broker.federation import Federation
from broker.federation._home import read_limited
from broker.federation.enrolment import (
    MAX_BUNDLE_BYTES,
    MAX_REQUEST_BYTES,
    Admission,
    AgencySite,
    Fingerprints,
    Imported,
    admit,
    read_request,
)
from broker.federation.enrolment.site import Requested
from broker.home import HomeLayout, resolve_home, write_config
from fusionbus.cli import _params
from fusionbus.cli._common import HomeOpt, kafka_hint, sync_cluster
from fusionbus.cli._console import say, visible

__all__ = [
    "RequestOpt",
    "admit_request",
    "import_bundle",
    "import_command",
    "init_command",
    "make_request",
]

RequestOpt = Annotated[
    Path | None,
    typer.Option(
        "--request", metavar="FILE",
        parser=_params.enrolment_file(
            "an enrolment request", "`fusionbus agency init` on the agency's machine"
        ),
        help="The agency's enrolment (or rotation) request, from `fusionbus agency init`.",
    ),
]  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def make_request(home: Path, agency: str, *, name: str | None, rotate: bool) -> Requested:
    """``agency init``: the agency's keys (made in ``home`` if absent) and its request."""
    return AgencySite(home).request(agency, name=name, now=_now(), rotate=rotate)


def admit_request(
    home: Path, source: Path, *, valid_days: int, rotation: bool
) -> tuple[Federation, Admission]:
    """``agency add --request`` (``rotation``: ``agency rotate-keys --request``) in the
    admin's ``home``: verify the request, sign the record and the certificate, write the
    bundle, and bring the secured cluster's topics and ACLs in line."""
    now = _now()
    request = read_request(read_limited(source, MAX_REQUEST_BYTES), source=str(source), now=now)
    if rotation != (request.claims.rotates is not None):
        if rotation:
            raise ConfigError(
                f"{source} is an enrolment request for a new agency, not a rotation request; "
                f"enrol it with `fusionbus agency add --request {source}`"
            )
        raise ConfigError(
            f"{source} is a rotation request for {request.id!r}; apply it with "
            f"`fusionbus agency rotate-keys --request {source}`"
        )
    federation = Federation.load(home)
    admission = admit(
        federation, request, now=now, valid_for=timedelta(days=valid_days), kafka=kafka_hint(home)
    )
    return federation, admission


def import_bundle(home: Path, source: Path) -> Imported:
    """``agency import``: install the admin's bundle in the agency's ``home``, and record
    where Kafka is in its ``config.toml`` unless it has one."""
    data = read_limited(source, MAX_BUNDLE_BYTES)
    imported = AgencySite(home).import_bundle(data, source=str(source), now=_now())
    config = HomeLayout(home).config
    if imported.kafka is not None and not config.exists():
        write_config(
            home, imported.kafka.bootstrap, secure=imported.kafka.security == "mtls",
            by="fusionbus agency import",
        )  # fmt: skip
    return imported


def say_fingerprints(fingerprints: Fingerprints) -> None:
    """One line per fingerprint, label and value, for reading out over the phone."""
    for label, value in fingerprints.rows():
        say(f"  {label:<22} {{value}}", value=value)


def say_admitted(federation: Federation, where: Path, admission: Admission, source: Path) -> None:
    """What ``agency add|rotate-keys --request`` print: the fingerprints and the bundle on
    standard error, the bundle's path on standard output; then the cluster's ACLs."""
    record = admission.record
    done = (
        f"rotated the keys of {record.id} (revision {record.revision}; keys "
        f"{admission.previous.signing_kid} and {admission.previous.encryption_kid} end now)"
        if admission.previous is not None
        else f"enrolled {record.id} ({record.name})"
    )
    say(
        "From the request in {source}: {done}. No private key of the agency was here.\n"
        "Compare these with the agency, out of band, before handing over the bundle:",
        source=source, done=done,
    )  # fmt: skip
    say_fingerprints(admission.fingerprints)
    say(
        "Bundle for the agency: {bundle}\n"
        "Next, on the agency's machine: fusionbus agency import {bundle_name} --home DIR",
        bundle=admission.bundle, bundle_name=admission.bundle.name,
    )  # fmt: skip
    typer.echo(visible(admission.bundle))
    synced = sync_cluster(federation, where)
    if synced:
        say("{synced}", synced=synced)


def init_command(
    agency_id: Annotated[
        str,
        typer.Argument(metavar="ID", parser=_params.agency_id, help="Agency id, e.g. anf."),
    ],
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            parser=_params.printable(200),
            metavar="NAME",
            help="The agency's full name (needed the first time).",
        ),
    ] = None,
    rotate: Annotated[
        bool,
        typer.Option(
            "--rotate",
            help="New keys for an enrolled agency: a rotation request, endorsed by its "
            "current signing key.",
        ),
    ] = False,
    home: HomeOpt = None,
) -> None:
    """On the agency's machine: make its keys and write its enrolment request.

    The signing, encryption and Kafka TLS keys are made in the home (0600) and never leave
    it; the request carries their public halves and a certificate request, signed with the
    new key. Prints the request's path; hand it to the federation admin.
    """
    where = resolve_home(home)
    requested = make_request(where, agency_id, name=name, rotate=rotate)
    kind = "rotation request" if requested.rotation else "enrolment request"
    say(
        "The keys of {id} are in {keys} (private: they never leave this machine); its "
        "{kind} is {path}.\nRead these out to the federation admin, who compares them with "
        "what `fusionbus agency {command} --request` prints:",
        id=agency_id, keys=HomeLayout(where).agency_dir(agency_id), kind=kind,
        path=requested.path, command="rotate-keys" if requested.rotation else "add",
    )  # fmt: skip
    say_fingerprints(requested.fingerprints)
    say(
        "Next: hand {name} to the admin, then import the bundle they send back with "
        "`fusionbus agency import BUNDLE --home {home}`.",
        name=requested.path.name, home=where,
    )  # fmt: skip
    typer.echo(visible(requested.path))


def import_command(
    bundle: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            parser=_params.enrolment_file(
                "a response bundle", "`fusionbus agency add --request` on the admin's machine"
            ),
            help="The response bundle from the federation admin.",
        ),
    ],
    home: HomeOpt = None,
) -> None:
    """On the agency's machine: install the admin's response bundle.

    Checks the bundle's root signature (against federation/root.pub.jwk if the home has
    one) and that its record and certificate are for the keys this home made, then writes
    the record, the directory, the certificate, the CA and the root key. Prints the id.
    """
    where = resolve_home(home)
    imported = import_bundle(where, bundle)
    record = imported.record
    done = "new keys installed" if imported.rotated else "enrolment installed"
    kafka = imported.kafka
    said = (
        f"Kafka at {kafka.bootstrap} ({'mutual TLS' if kafka.security == 'mtls' else 'plaintext'}"
        f"), in {where / 'config.toml'}"
        if kafka is not None
        else "no Kafka address in the bundle: pass --bootstrap"
    )
    say(
        "{id}: {done}, revision {revision}, with {others} other agencies' records.\n"
        "Compare these with the federation admin, out of band:",
        id=record.id, done=done, revision=record.revision, others=imported.directory,
    )  # fmt: skip
    say_fingerprints(imported.fingerprints)
    say(
        "{said}.\nNext: fusionbus tail --agency {id} --home {home}",
        said=said, id=record.id, home=where,
    )  # fmt: skip
    typer.echo(visible(record.id))
