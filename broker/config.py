"""Typed, frozen settings, one model per concern, read from env vars (and later a TOML file).

All mapping from settings to aiokafka keyword arguments happens in :func:`aiokafka_kwargs`,
so that durability choices (``acks="all"``, idempotence) live in one place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_BOOTSTRAP", "KafkaSettings", "aiokafka_kwargs", "default_home"]

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


class KafkaSettings(BaseSettings):
    """How to reach Kafka. Env vars: ``FUSIONBUS_BOOTSTRAP``, ``FUSIONBUS_CLIENT_ID``, ..."""

    model_config = SettingsConfigDict(env_prefix="FUSIONBUS_", frozen=True, extra="ignore")

    bootstrap: str = Field(
        default=DEFAULT_BOOTSTRAP,
        description="Comma-separated host:port list of Kafka brokers.",
        pattern=r"^[^,\s]+:\d{1,5}(,[^,\s]+:\d{1,5})*$",
    )
    client_id: str = "fusionbus"
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    linger_ms: int = Field(default=5, ge=0)
    max_batch_size: int = Field(default=1_048_576, ge=16_384)


def aiokafka_kwargs(
    settings: KafkaSettings, role: Literal["producer", "consumer", "admin"]
) -> dict[str, Any]:
    """The keyword arguments for an aiokafka client of ``role``.

    Producers always get ``acks="all"`` and idempotence: aiokafka defaults to ``acks=1``,
    which can lose acknowledged messages when a leader dies.
    """
    common: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if role == "producer":
        return {
            **common,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": settings.linger_ms,
            "max_batch_size": settings.max_batch_size,
        }
    if role == "consumer":
        return {
            **common,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
        }
    return common


def default_home() -> Path:
    """Where fusionbus keeps its state: ``$FUSIONBUS_HOME``, else ``~/.fusionbus``."""
    explicit = os.environ.get("FUSIONBUS_HOME")
    return Path(explicit).expanduser() if explicit else Path.home() / ".fusionbus"
