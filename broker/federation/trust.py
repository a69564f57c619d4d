"""A :class:`broker.trust.TrustStore` built from verified directory records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from broker._crypto import EncryptionKey, VerifyKey
from broker.errors import ConfigError
from broker.federation.records import AgencyRecord, KeyEntry
from broker.trust import EncryptionKeyRecord, SigningKeyRecord

__all__ = ["DirectoryTrustStore"]


class DirectoryTrustStore:
    """Answers ``signing_key(kid)`` / ``encryption_key(kid)`` from root-signed records.

    Pass only records that :func:`~broker.federation.records.verify_record` returned. A
    kid listed by two agencies is refused: one key must never speak for two agencies.
    """

    def __init__(self, records: Iterable[AgencyRecord]) -> None:
        self._signing: dict[str, SigningKeyRecord] = {}
        self._encryption: dict[str, EncryptionKeyRecord] = {}
        owners: dict[str, str] = {}
        for record in records:
            for entry in (*record.signing_keys, *record.encryption_keys):
                owner = owners.setdefault(entry.kid, record.id)
                if owner != record.id:
                    raise ConfigError(
                        f"key {entry.kid} is listed for both {owner!r} and {record.id!r}; "
                        "the directory is inconsistent: re-enrol one of them with new keys"
                    )
            for entry in record.signing_keys:
                self._signing[entry.kid] = SigningKeyRecord(
                    entry.kid, record.id, _verify_key(entry), *_life(entry)
                )
            for entry in record.encryption_keys:
                self._encryption[entry.kid] = EncryptionKeyRecord(
                    entry.kid, record.id, _encryption_key(entry), *_life(entry)
                )

    def signing_key(self, kid: str, /) -> SigningKeyRecord | None:
        return self._signing.get(kid)

    def encryption_key(self, kid: str, /) -> EncryptionKeyRecord | None:
        return self._encryption.get(kid)


def _life(entry: KeyEntry) -> tuple[datetime, datetime | None, datetime | None]:
    return entry.valid_from, entry.valid_until, entry.revoked_at


def _verify_key(entry: KeyEntry) -> VerifyKey:
    key = entry.jwk.key()
    if not isinstance(key, VerifyKey):
        raise ConfigError(f"signing key {entry.kid} is not an Ed25519 key")
    return key


def _encryption_key(entry: KeyEntry) -> EncryptionKey:
    key = entry.jwk.key()
    if not isinstance(key, EncryptionKey):
        raise ConfigError(f"encryption key {entry.kid} is not an X25519 key")
    return key
