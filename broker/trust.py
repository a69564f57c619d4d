"""Whom to trust: the :class:`TrustStore` protocol and an in-memory implementation.

A trust store answers two questions by key id: *whose signing key is this, and is it good
now?* and *whose encryption key is this, and may I still encrypt to it?* Each answer is a
record with the owning agency, the public key and its lifecycle (``valid_from``,
``valid_until``, ``revoked_at``). The root-signed directory implements the protocol
(``broker.federation``); :class:`MemoryTrustStore` is for tests and tools.

Lifecycle rules (:func:`key_problem`), used by sealing and opening alike:

* **revoked** (``revoked_at <= now``): refused for everything from then on, whatever time
  a message claims — a thief of the key can backdate ``created_at``.
* **expired / not yet valid**: the key must have been valid when the message was made
  (``valid_from <= created_at < valid_until``). Rotation sets ``valid_until`` on the old
  key, so reports made just before it stay readable until they expire.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from broker._crypto import EncryptionKey, VerifyKey
from broker.keys import kid_of

__all__ = [
    "EncryptionKeyRecord",
    "KeyProblem",
    "MemoryTrustStore",
    "SigningKeyRecord",
    "TrustStore",
    "key_problem",
]


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    agency: str
    key: VerifyKey
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class EncryptionKeyRecord:
    kid: str
    agency: str
    key: EncryptionKey
    valid_from: datetime
    valid_until: datetime | None = None
    revoked_at: datetime | None = None


class TrustStore(Protocol):
    """Look up public keys by kid; ``None`` means unknown."""

    def signing_key(self, kid: str, /) -> SigningKeyRecord | None: ...

    def encryption_key(self, kid: str, /) -> EncryptionKeyRecord | None: ...


KeyProblem = tuple[str, str]
"""(``revoked_key`` or ``expired_key``, a sentence for the log)."""


def key_problem(
    record: SigningKeyRecord | EncryptionKeyRecord, *, now: datetime, made_at: datetime
) -> KeyProblem | None:
    """Why ``record`` must not be used for a message made at ``made_at``, or ``None``."""
    if record.revoked_at is not None and record.revoked_at <= now:
        return (
            "revoked_key",
            f"key {record.kid} of {record.agency} was revoked at {record.revoked_at.isoformat()}",
        )
    if made_at < record.valid_from:
        return (
            "expired_key",
            (
                f"key {record.kid} of {record.agency} is valid only from "
                f"{record.valid_from.isoformat()}; the message is from {made_at.isoformat()}"
            ),
        )
    if record.valid_until is not None and made_at >= record.valid_until:
        return (
            "expired_key",
            (
                f"key {record.kid} of {record.agency} expired at "
                f"{record.valid_until.isoformat()}; the message is from {made_at.isoformat()}"
            ),
        )
    return None


class MemoryTrustStore:
    """A dict-backed :class:`TrustStore`; add, rotate and revoke keys by hand."""

    def __init__(self, records: Iterable[SigningKeyRecord | EncryptionKeyRecord] = ()) -> None:
        self._signing: dict[str, SigningKeyRecord] = {}
        self._encryption: dict[str, EncryptionKeyRecord] = {}
        for record in records:
            self.put(record)

    def put(self, record: SigningKeyRecord | EncryptionKeyRecord) -> None:
        if record.kid != kid_of(record.key):
            raise ValueError(f"record kid {record.kid!r} is not the key's thumbprint")
        if isinstance(record, SigningKeyRecord):
            self._signing[record.kid] = record
        else:
            self._encryption[record.kid] = record

    def add_agency(
        self,
        agency: str,
        signing: VerifyKey,
        encryption: EncryptionKey,
        *,
        valid_from: datetime,
        valid_until: datetime | None = None,
    ) -> None:
        """Enrol an agency's public signing and encryption keys."""
        self.put(SigningKeyRecord(kid_of(signing), agency, signing, valid_from, valid_until))
        self.put(
            EncryptionKeyRecord(kid_of(encryption), agency, encryption, valid_from, valid_until)
        )

    def revoke(self, kid: str, at: datetime) -> None:
        """Mark the key ``kid`` (signing or encryption) revoked from ``at`` on."""
        if kid in self._signing:
            self._signing[kid] = replace(self._signing[kid], revoked_at=at)
        elif kid in self._encryption:
            self._encryption[kid] = replace(self._encryption[kid], revoked_at=at)
        else:
            raise KeyError(kid)

    def signing_key(self, kid: str, /) -> SigningKeyRecord | None:
        return self._signing.get(kid)

    def encryption_key(self, kid: str, /) -> EncryptionKeyRecord | None:
        return self._encryption.get(kid)
