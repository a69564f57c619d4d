"""The agency's site: its home, Kafka settings and directory.

The one module of the gateway that uses the home's helpers and the federation directory;
everything else takes what these functions return.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from broker.config import KafkaSettings
from broker.federation.source import AgencyDirectory, HomeDirectory
from broker.home import kafka_settings, resolve_home

__all__ = ["AgencyDirectory", "agency_home", "site_directory", "site_kafka"]


def agency_home(home: Path | None, agency: str) -> Path:
    """``--home`` (else ``$FUSIONBUS_HOME``, else ``~/.fusionbus``), or its ``sites/<agency>/``."""
    return resolve_home(home, agency=agency)


def site_kafka(home: Path, agency: str) -> KafkaSettings:
    """How the agency reaches Kafka (its certificate on a secured cluster)."""
    return kafka_settings(home, None, agency=agency)


@contextlib.asynccontextmanager
async def site_directory(
    home: Path, agency: str, settings: KafkaSettings
) -> AsyncIterator[AgencyDirectory]:
    """The agency's checked record, directory and dissemination policy (files or topic,
    as the home's ``config.toml`` says), for as long as the block runs."""
    async with HomeDirectory(home, agency, signs=True).started(settings) as directory:
        yield directory
