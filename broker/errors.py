"""The one exception tree of fusionbus.

Every error fusionbus raises on purpose derives from :class:`FusionbusError`; third-party
errors (aiokafka, pydantic, cryptography, subprocess) are translated where they enter our
code and re-raised ``from`` the original, so callers catch one family::

    FusionbusError
    ├── ConfigError                 bad settings, unreadable home or key files
    ├── SchemaValidationError       a report or message that does not match the contract
    ├── VerificationError           an envelope that must not be trusted (carries a reason code)
    ├── AuthorizationError          Kafka or the dissemination policy refused an action
    ├── TransportError              talking to Kafka failed (``retriable`` says if a retry may help)
    └── KafkaRuntimeError           the embedded Kafka could not be fetched, started or stopped
        ├── PrerequisiteError       Java or Maven missing or too old
        ├── KafkaFetchError         the Maven download failed or the jar cache is corrupt
        ├── PortInUseError          a port the cluster needs is taken
        └── KafkaStartError         a node did not come up (the message carries its log tail)

Messages are written for the person who has to fix the problem: what was wrong, the value,
what was expected, and the command to run.
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "ConfigError",
    "FusionbusError",
    "KafkaFetchError",
    "KafkaRuntimeError",
    "KafkaStartError",
    "PortInUseError",
    "PrerequisiteError",
    "SchemaValidationError",
    "TransportError",
    "VerificationError",
]


class FusionbusError(Exception):
    """Root of every error fusionbus raises on purpose."""


class ConfigError(FusionbusError):
    """Settings, a home directory or a key file are missing, unreadable or invalid."""


class SchemaValidationError(FusionbusError):
    """Input does not match the message contract in ``schemas/``."""


class VerificationError(FusionbusError):
    """An envelope failed verification; ``reason`` is a stable, machine-readable code.

    The code goes to logs and quarantine records; the remote sender learns only that its
    message was rejected.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class AuthorizationError(FusionbusError):
    """Kafka's authorizer or the dissemination policy refused an action."""


class TransportError(FusionbusError):
    """Talking to Kafka failed. ``retriable`` keeps aiokafka's notion of a transient error."""

    def __init__(self, message: str, *, retriable: bool = False) -> None:
        super().__init__(message)
        self.retriable = retriable


class KafkaRuntimeError(FusionbusError):
    """The embedded Apache Kafka could not be fetched, started, inspected or stopped."""


class PrerequisiteError(KafkaRuntimeError):
    """A tool the embedded Kafka needs (Java 17+, Maven) is missing or too old."""


class KafkaFetchError(KafkaRuntimeError):
    """Fetching the Kafka jars failed, or the cached copy is incomplete or corrupt."""


class PortInUseError(KafkaRuntimeError):
    """A TCP port the cluster needs is already taken on the loopback interface."""


class KafkaStartError(KafkaRuntimeError):
    """A Kafka node failed to start or to become ready in time."""
