"""Typed, frozen settings, one model per concern, read from env vars (and later a TOML file).

All mapping from settings to aiokafka keyword arguments happens in :func:`aiokafka_kwargs`,
so that durability choices (``acks="all"``, idempotence) live in one place.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any, Literal, Self

from aiokafka.helpers import create_ssl_context
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.errors import ConfigError

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "KafkaSettings",
    "aiokafka_kwargs",
    "confluent_config",
    "default_home",
    "ssl_context",
]

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
    # Mutual TLS (``docs/security.md``): the cluster CA, this client's certificate and key.
    # Env vars: FUSIONBUS_TLS_CA_FILE, FUSIONBUS_TLS_CERT_FILE, FUSIONBUS_TLS_KEY_FILE,
    # FUSIONBUS_TLS_KEY_PASSWORD. With a CA file the client speaks TLS; without, plaintext.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_key_password: SecretStr | None = None

    @model_validator(mode="after")
    def _tls_complete(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.tls_cert_file is not None and self.tls_ca_file is None:
            raise ValueError("a TLS client certificate needs tls_ca_file (the cluster CA) too")
        return self

    @property
    def tls(self) -> bool:
        """Whether clients connect with TLS (``security_protocol="SSL"``)."""
        return self.tls_ca_file is not None


def ssl_context(settings: KafkaSettings) -> ssl.SSLContext:
    """The client TLS context: verify the brokers against the cluster CA (and their
    address), present this client's certificate. Unreadable files are a ConfigError."""
    password = settings.tls_key_password
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=settings.tls_ca_file,
            certfile=settings.tls_cert_file,
            keyfile=settings.tls_key_file,
            password=password.get_secret_value() if password is not None else None,
        )
    except (OSError, ssl.SSLError) as exc:
        files = ", ".join(
            str(p)
            for p in (settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)
            if p is not None
        )
        raise ConfigError(
            f"cannot load the TLS files {files}: {exc}. Check they exist and match (an "
            "encrypted key needs FUSIONBUS_TLS_KEY_PASSWORD or FUSIONBUS_PASSPHRASE)."
        ) from exc
    return context


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
    if settings.tls:
        common["security_protocol"] = "SSL"
        common["ssl_context"] = ssl_context(settings)
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


def confluent_config(settings: KafkaSettings) -> dict[str, str | int | float | bool]:
    """The same connection as librdkafka configuration, for confluent-kafka's AdminClient
    (the ACL calls aiokafka lacks)."""
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": settings.bootstrap,
        "client.id": settings.client_id,
    }
    if settings.tls:
        config["security.protocol"] = "SSL"
        config["ssl.ca.location"] = str(settings.tls_ca_file)
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            config["ssl.certificate.location"] = str(settings.tls_cert_file)
            config["ssl.key.location"] = str(settings.tls_key_file)
        if settings.tls_key_password is not None:
            config["ssl.key.password"] = settings.tls_key_password.get_secret_value()
    return config


def default_home() -> Path:
    """Where fusionbus keeps its state: ``$FUSIONBUS_HOME``, else ``~/.fusionbus``."""
    explicit = os.environ.get("FUSIONBUS_HOME")
    return Path(explicit).expanduser() if explicit else Path.home() / ".fusionbus"
