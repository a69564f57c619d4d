"""Options and look-ups shared by the CLI's commands: home, bootstrap, the federation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from broker.errors import ConfigError, FusionbusError
from broker.federation import Federation
from broker.federation.enrolment import KafkaHint
from broker.federation.records import AgencyRecord
from broker.home import HomeConfig, HomeLayout, problems
from broker.provisioning import sync_home
from fusionbus.cli import _params

__all__ = [
    "BootstrapOpt",
    "HomeOpt",
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
