"""The one exception tree of fusionbus.

Every error fusionbus raises on purpose derives from :class:`FusionbusError`; third-party
errors (aiokafka, pydantic, cryptography, subprocess) are translated where they enter our
code and re-raised ``from`` the original, so callers catch one family::

    FusionbusError
    ├── ConfigError                 bad settings, unreadable home or key files
    ├── SchemaValidationError       a report or message that does not match the contract
    ├── VerificationError           an envelope that must not be trusted (carries a Reason)
    ├── AuthorizationError          Kafka or the dissemination policy refused an action
    │   └── DisseminationError      a report names a recipient the grants do not entitle
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

from enum import StrEnum

__all__ = [
    "AuthorizationError",
    "ConfigError",
    "DisseminationError",
    "FusionbusError",
    "KafkaFetchError",
    "KafkaRuntimeError",
    "KafkaStartError",
    "PortInUseError",
    "PrerequisiteError",
    "Reason",
    "SchemaValidationError",
    "TransportError",
    "VerificationError",
]


class Reason(StrEnum):
    """Why a record was rejected: stable codes for logs, metrics and quarantine headers."""

    MALFORMED = "malformed"
    """Not a fusionbus envelope: bad JSON, base64, header fields or JOSE parameters."""
    OVERSIZED = "oversized"
    """Bigger than a limit: total bytes, header size, recipient count or JSON containers."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """An envelope version this code does not read."""
    UNKNOWN_KEY = "unknown_key"
    """The sender's key id is not in the directory."""
    REVOKED_KEY = "revoked_key"
    """The sender's key was revoked."""
    EXPIRED_KEY = "expired_key"
    """The sender's key was not valid when the message was made."""
    BAD_SIGNATURE = "bad_signature"
    """The inner or the outer Ed25519 signature does not verify (or is not Ed25519)."""
    NOT_RECIPIENT = "not_recipient"
    """None of my decryption keys is among the recipients."""
    HEADER_MISMATCH = "header_mismatch"
    """The clear routing header differs from the signed copy or from the JWE structure."""
    EXPIRED = "expired"
    """The message's ``expires_at`` has passed."""
    NOT_YET_VALID = "not_yet_valid"
    """The message claims to be made in the future (beyond the allowed clock skew)."""
    REPLAY = "replay"
    """A message with this sender and id was already accepted, in another envelope."""
    DECRYPT_FAILED = "decrypt_failed"
    """The content key could not be unwrapped or AES-GCM authentication failed."""
    INVALID_REPORT = "invalid_report"
    """Authentic and fresh, but the payload does not match the report schema."""
    WRONG_TOPIC = "wrong_topic"
    """Authentic, but it arrived on another topic than its signed routing header maps to."""
    NOT_ORIGINATOR = "not_originator"
    """Authentic, but a notice (supersede, retract, purge) about a report another agency
    originated: only a report's originator may change it."""
    NOT_PERMITTED = "not_permitted"
    """Authentic, but a forward the report's handling allows only with the originator's
    consent, and none naming this forwarder and recipient came with it."""
    UNDECODABLE = "undecodable"
    """The Kafka client could not decode the record itself (e.g. a non-UTF-8 header key)."""
    INTERNAL_ERROR = "internal_error"
    """Checking the record raised an unexpected error: a fusionbus bug, logged with its site."""


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

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else str(reason))
        self.reason: Reason = Reason(reason)
        self.detail = detail


class AuthorizationError(FusionbusError):
    """Kafka's authorizer or the dissemination policy refused an action."""


class DisseminationError(AuthorizationError):
    """A report names a recipient that may not receive it: unknown, not entitled by the
    grants to the report's category and jurisdiction, or without a usable encryption key.
    Nothing was sent; the fix is a grant (or a key) for that agency, or a shorter
    ``named_recipients``."""


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
