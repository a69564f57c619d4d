"""The gateway's typed, frozen settings: ``FUSIONBUS_GATEWAY_*`` env vars over the
``[gateway]`` table of the agency home's ``config.toml`` over the defaults.

::

    settings = load_settings(home)            # env > <home>/config.toml [gateway] > defaults
    settings.listen                           # "127.0.0.1:8480"
"""

from __future__ import annotations

import contextvars
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from broker.errors import ConfigError

__all__ = ["GatewaySettings", "load_settings"]

_TABLE: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "_TABLE", default=None
)


class GatewaySettings(BaseSettings):
    """How one agency's gateway serves. Env vars: ``FUSIONBUS_GATEWAY_LISTEN``, ..."""

    model_config = SettingsConfigDict(env_prefix="FUSIONBUS_GATEWAY_", frozen=True, extra="forbid")

    listen: str = Field(
        default="127.0.0.1:8480",
        pattern=r"^[^\s:]+:\d{1,5}$",
        description="host:port to listen on; port 0 picks a free port.",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1_024, description="Largest request body.")
    max_batch: int = Field(default=500, ge=1, description="Most reports in one batch POST.")
    outbox_capacity: int = Field(
        default=50_000, ge=1, description="Most reports waiting for Kafka in the outbox."
    )
    ack_wait_s: float = Field(
        default=5.0, ge=0, description="How long a POST waits for Kafka before answering queued."
    )
    page_limit: int = Field(default=100, ge=1, le=1_000, description="Default page size.")
    idempotency_ttl_s: int = Field(default=86_400, ge=60, description="How long keys are kept.")
    feed_queue: int = Field(default=1_000, ge=1, description="Events buffered per feed client.")
    feed_send_timeout_s: float = Field(default=10.0, gt=0, description="Per-event send limit.")
    feed_heartbeat_s: float = Field(default=15.0, gt=0, description="Heartbeat interval.")
    socket_send_buffer: int = Field(
        default=262_144,
        ge=0,
        description="Kernel send buffer per connection in bytes (0: the OS default, which "
        "grows to megabytes): with the feed queue and send timeout, it bounds what a stalled "
        "reader holds.",
    )
    retention_days: float = Field(default=30.0, gt=0, description="How long received reports stay.")
    ready_max_lag: int = Field(
        default=10_000,
        ge=0,
        description="Most records the subscriber may be behind for /readyz to say ready.",
    )
    group: str = Field(
        default="gateway",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="Name of the gateway's consumer group (fusionbus.<agency>.<group>).",
    )

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, InitSettingsSource(settings_cls, _TABLE.get() or {}))


def load_settings(home: Path, **overrides: Any) -> GatewaySettings:
    """The settings for the gateway of the agency home ``home``; ``overrides`` (command-line
    options) win over the environment, which wins over ``config.toml``."""
    config = home / "config.toml"
    table: dict[str, Any] = {}
    if config.is_file():
        try:
            found = tomllib.loads(config.read_text(encoding="utf-8")).get("gateway", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config} is not valid TOML: {exc}") from exc
        table = found if isinstance(found, dict) else {}
    token = _TABLE.set(table)
    try:
        return GatewaySettings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']} (got {e.get('input')!r})"
            for e in exc.errors()
        )
        raise ConfigError(
            f"the gateway settings (FUSIONBUS_GATEWAY_* or [gateway] in {config}) are not "
            f"valid: {problems}. Fix or unset them."
        ) from exc
    finally:
        _TABLE.reset(token)
