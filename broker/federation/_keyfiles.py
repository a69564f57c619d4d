"""An agency's private key files: finding them for its record, and replacing them on rotation.

Files under ``agencies/<agency>/`` (``docs/federation.md``)::

    signing.key.pem              the current Ed25519 key
    encryption.key.pem           the current X25519 key
    encryption.<kid>.key.pem     an older X25519 key kept after a rotation
    <usage>.<kid>.key.pem        a new key written before its rotation's record

The record says which kids are current; the files are found by kid, so the keys stay
usable at every step of a rotation, even one a crash interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from broker.errors import ConfigError
from broker.federation._home import (
    HomeLayout,
    KeySettings,
    link_file,
    read_private_key,
    replace_file,
    write_private_key,
)
from broker.federation.records import AgencyRecord
from broker.keys import DecryptionKey, Identity, SigningKey, kid_of

__all__ = ["AgencyKeyFiles"]

Usage = Literal["signing", "encryption"]


def _kind(key: SigningKey | DecryptionKey, usage: Usage, path: Path) -> None:
    if usage == "signing" and not isinstance(key, SigningKey):
        raise ConfigError(f"{path} holds an X25519 key; expected Ed25519")
    if usage == "encryption" and not isinstance(key, DecryptionKey):
        raise ConfigError(f"{path} holds an Ed25519 key; expected X25519")


class AgencyKeyFiles:
    """The private keys of the agencies in one home."""

    def __init__(self, layout: HomeLayout, settings: KeySettings) -> None:
        self._layout = layout
        self._settings = settings

    def _path(self, agency: str, usage: Usage) -> Path:
        if usage == "signing":
            return self._layout.signing_key(agency)
        return self._layout.encryption_key(agency)

    def identity(self, record: AgencyRecord) -> Identity:
        """The record's current private keys, plus every older decryption key it still
        lists whose file is here."""
        agency = record.id
        signing, _ = self.current(agency, "signing", record.signing_kid)
        current, _ = self.current(agency, "encryption", record.encryption_kid)
        older: list[DecryptionKey] = []
        for entry in record.encryption_keys[:-1]:
            path = self._layout.kept_key(agency, "encryption", entry.kid)
            key = self._load(path, "encryption", entry.kid) if path.exists() else None
            if isinstance(key, DecryptionKey):
                older.append(key)
        if not isinstance(signing, SigningKey) or not isinstance(current, DecryptionKey):
            raise ConfigError("unreachable: _load checks the kind of every key")
        return Identity.create(agency, signing, *older, current)

    def current(
        self, agency: str, usage: Usage, kid: str
    ) -> tuple[SigningKey | DecryptionKey, Path]:
        """The private key ``kid`` and its file: ``<usage>.<kid>.key.pem`` if a rotation
        was interrupted between signing its record and renaming, else ``<usage>.key.pem``."""
        named = self._layout.kept_key(agency, usage, kid)
        if named.exists():
            return self._load(named, usage, kid), named
        path = self._path(agency, usage)
        key = read_private_key(path, self._settings)  # names the file if it is missing
        _kind(key, usage, path)
        if kid_of(key) != kid:
            raise ConfigError(
                f"{path} holds key {kid_of(key)}, but the directory lists {kid} as "
                f"{agency!r}'s current key; restore the matching key file"
            )
        return key, path

    def _load(self, path: Path, usage: Usage, kid: str) -> SigningKey | DecryptionKey:
        key = read_private_key(path, self._settings)
        _kind(key, usage, path)
        if kid_of(key) != kid:
            raise ConfigError(f"{path} holds key {kid_of(key)}, not {kid}; restore that file")
        return key

    def rotate(
        self,
        record: AgencyRecord,
        signing: SigningKey,
        decryption: DecryptionKey,
        publish: Callable[[], None],
    ) -> None:
        """Replace ``record``'s current keys by ``signing`` and ``decryption`` on disk,
        calling ``publish`` (which writes the re-signed record) at the one safe moment.

        Order: the new keys are written under their kids; the current decryption key gets
        a second name ``encryption.<old kid>.key.pem`` (kept, to open older envelopes);
        ``publish()``; then the new keys are renamed over ``signing.key.pem`` and
        ``encryption.key.pem`` — the old signing key is destroyed, since nothing may sign
        with it any more.
        """
        agency = record.id
        _, old_encryption = self.current(agency, "encryption", record.encryption_kid)
        _, old_signing = self.current(agency, "signing", record.signing_kid)
        new_signing = self._layout.kept_key(agency, "signing", kid_of(signing))
        new_encryption = self._layout.kept_key(agency, "encryption", kid_of(decryption))
        write_private_key(new_signing, signing, self._settings)
        write_private_key(new_encryption, decryption, self._settings)
        kept = self._layout.kept_key(agency, "encryption", record.encryption_kid)
        if not kept.exists():
            link_file(old_encryption, kept)
        publish()
        replace_file(new_signing, self._path(agency, "signing"))
        replace_file(new_encryption, self._path(agency, "encryption"))
        if old_signing != self._path(agency, "signing"):
            old_signing.unlink(missing_ok=True)
