"""The closed set of reasons an envelope is rejected (``VerificationError.reason``)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Reason"]


class Reason(StrEnum):
    """Why an envelope was rejected; stable codes for logs, metrics and quarantine."""

    MALFORMED = "malformed"
    """Not a fusionbus envelope: bad JSON, base64, header fields or JOSE parameters."""
    OVERSIZED = "oversized"
    """Bigger than a limit: total bytes, header size, recipient count or JSON containers."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """An envelope version this code does not read."""
    UNKNOWN_KEY = "unknown_key"
    """The sender's key id is not in the trust store."""
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
    """A message with this id was already accepted."""
    DECRYPT_FAILED = "decrypt_failed"
    """The content key could not be unwrapped or AES-GCM authentication failed."""
    INVALID_REPORT = "invalid_report"
    """Authentic and fresh, but the payload does not match the report schema."""
