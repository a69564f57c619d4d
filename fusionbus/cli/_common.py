"""Options and look-ups shared by the CLI's commands: home, bootstrap, the federation."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from broker.config import KafkaSettings, default_home
from broker.errors import ConfigError
from broker.federation import Federation
from producers import RecipientPolicy
from schemas import Report

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

    def recipients(report: Report, now: datetime) -> Sequence[str]:
        agencies = federation.recipients_for(
            sender=report.sender,
            category=report.category,
            jurisdiction=report.jurisdiction,
            tlp=str(report.handling.tlp),
            named_recipients=report.handling.named_recipients,
            now=now,
        )
        return [agency.encryption_kid for agency in agencies]

    return recipients
