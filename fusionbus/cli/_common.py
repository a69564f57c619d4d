"""Options and look-ups shared by the CLI's commands: home, bootstrap, the federation."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated

import typer

from broker.config import KafkaSettings, default_home
from broker.errors import ConfigError
from broker.federation import Federation, policy
from producers import RecipientPolicy

__all__ = [
    "BootstrapOpt",
    "HomeOpt",
    "kafka_settings",
    "load_federation",
    "recipient_policy",
    "resolve_home",
]

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", help="fusionbus home [default: $FUSIONBUS_HOME, else ~/.fusionbus].",
        show_default=False,
    ),
]  # fmt: skip
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap",
        help="Kafka bootstrap servers [default: $FUSIONBUS_BOOTSTRAP, else the home's "
        "config.toml, else 127.0.0.1:9092, the embedded Kafka].",
        show_default=False,
    ),
]


def resolve_home(home: Path | None) -> Path:
    return home if home is not None else default_home()


def kafka_settings(home: Path, bootstrap: str | None) -> KafkaSettings:
    """``--bootstrap``, else ``FUSIONBUS_BOOTSTRAP``, else ``[kafka] bootstrap`` in
    ``<home>/config.toml``, else the embedded Kafka's default address."""
    if bootstrap is not None:
        return KafkaSettings(bootstrap=bootstrap)
    if os.environ.get("FUSIONBUS_BOOTSTRAP"):
        return KafkaSettings()
    config = home / "config.toml"
    if config.is_file():
        try:
            table = tomllib.loads(config.read_text()).get("kafka", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config} is not valid TOML: {exc}") from exc
        if isinstance(table, dict) and table.get("bootstrap"):
            return KafkaSettings(bootstrap=str(table["bootstrap"]))
    return KafkaSettings()


def load_federation(home: Path) -> Federation:
    return Federation.load(home)


def recipient_policy(federation: Federation) -> RecipientPolicy:
    """The directory's dissemination policy as the publisher's recipient callable."""
    return policy.recipient_policy(federation)
