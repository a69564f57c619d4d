"""Options and look-ups shared by the CLI's commands: home, bootstrap, the federation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from broker.errors import AuthorizationError, ConfigError, FusionbusError
from broker.federation import Federation
from broker.federation.enrolment import KafkaHint
from broker.federation.records import AgencyRecord
from broker.home import HomeConfig, HomeLayout, problems
from broker.provisioning import sync_home
from fusionbus.cli import _params

__all__ = [
    "BootstrapOpt",
    "HomeOpt",
    "enrolled_and_not_revoked",
    "kafka_hint",
    "load_federation",
    "sync_cluster",
]

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", parser=_params.directory, metavar="DIR",
        help="fusionbus home (default: $FUSIONBUS_HOME, else ~/.fusionbus); a command run "
        "--agency ID uses its sites/ID/ when there is one.",
        show_default=False,
    ),
]  # fmt: skip
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap", parser=_params.bootstrap, metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: $FUSIONBUS_BOOTSTRAP, else the home's "
        "config.toml, else 127.0.0.1:9092, the embedded Kafka).",
        show_default=False,
    ),
]  # fmt: skip


def kafka_hint(home: Path) -> KafkaHint | None:
    """Where ``<home>/config.toml`` says the cluster is, for an agency's bundle."""
    config = HomeConfig.read(home)
    if config.bootstrap is None:
        return None
    security: Literal["mtls", "plaintext"] = "mtls" if config.secure else "plaintext"
    try:
        return KafkaHint(bootstrap=config.bootstrap, security=security)
    except ValidationError as exc:
        raise ConfigError(f"{HomeLayout(home).config}: {problems(exc)}") from None


def sync_cluster(
    federation: Federation, home: Path, *, certify: Sequence[AgencyRecord] = ()
) -> str:
    """:func:`broker.provisioning.sync_home` with the CLI's advice when the cluster could
    not be changed: a sentence for the user (empty on a plaintext cluster)."""
    try:
        return sync_home(federation, home, certify=certify)
    except FusionbusError as exc:
        raise type(exc)(
            f"the directory in {home} was updated, but the cluster's topics, ACLs and TLS "
            f"trust were not: {exc} Fix that, then run `fusionbus federation sync-acls "
            f"--home {home}`."
        ) from exc


def load_federation(home: Path) -> Federation:
    return Federation.load(home)


def enrolled_and_not_revoked(
    record: AgencyRecord, *, directory: str, signs: bool = False
) -> AgencyRecord:
    """``record`` (an agency's, from ``directory``: "the directory in HOME", say), checked
    before anything connects to the report topics.

    An agency whose encryption keys are all revoked (or ended) is no recipient and gets no
    ACLs; one about to sign (``signs``) also needs a signing key in force. Such an agency
    is told that, instead of what Kafka would refuse later (a topic, an ACL)."""
    agency = record.id
    now = datetime.now(UTC)
    usages: list[Literal["encryption", "signing"]] = (
        ["encryption", "signing"] if signs else ["encryption"]
    )
    for usage in usages:
        keys = record.encryption_keys if usage == "encryption" else record.signing_keys
        if all(e.revoked_at is not None and e.revoked_at <= now for e in keys):
            raise AuthorizationError(
                f"agency {agency} is revoked: {directory} marks every "
                f"{usage} key of {agency} revoked, so {_EFFECT[usage]} and the cluster gives "
                f"it no access. Ask the federation admin to enrol new keys (`fusionbus agency "
                f"rotate-keys {agency}` on the admin's machine) and to publish the directory."
            )
        if not any(e.usable_at(now) for e in keys):
            until = max(e.valid_until for e in keys).isoformat()
            raise AuthorizationError(
                f"agency {agency} has no {usage} key in force: its keys were valid until "
                f"{until} (or are not valid yet), so {_EFFECT[usage]}. Ask the federation "
                f"admin to rotate them (`fusionbus agency rotate-keys {agency}` on the admin's "
                "machine)."
            )
    return record


_EFFECT = {
    "encryption": "no report is sealed to it",
    "signing": "counterparts reject every report it signs",
}
