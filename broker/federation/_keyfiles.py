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

import orjson

from broker.errors import ConfigError
from broker.federation._home import (
    PUBLIC_FILE_MODE,
    KeySettings,
    link_file,
    private_dir,
    read_private_key,
    replace_file,
    write_file,
    write_private_key,
)
from broker.federation.records import AgencyRecord
from broker.home import HomeLayout
from broker.keys import (
    DecryptionKey,
    EncryptionKey,
    Identity,
    SigningKey,
    VerifyKey,
    kid_of,
    public_jwk,
)

__all__ = ["AgencyKeyFiles"]

Usage = Literal["signing", "encryption"]
_USAGES: tuple[Usage, Usage] = ("signing", "encryption")


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

    def holds(self, agency: str) -> bool:
        """Whether this home holds ``agency``'s private keys (they were made here)."""
        return self._path(agency, "signing").exists()

    def create(self, agency: str, signing: SigningKey, decryption: DecryptionKey) -> None:
        """Write a new agency's first keys (0600, in 0700 folders) and its public JWK set."""
        private_dir(self._layout.agencies_dir)
        private_dir(self._layout.agency_dir(agency))
        write_private_key(self._path(agency, "signing"), signing, self._settings)
        write_private_key(self._path(agency, "encryption"), decryption, self._settings)
        self.write_jwks(agency, signing.public, decryption.public)

    def write_jwks(self, agency: str, signing: VerifyKey, encryption: EncryptionKey) -> None:
        jwks = {
            "keys": [
                public_jwk(signing) | {"use": "sig", "alg": "Ed25519"},
                public_jwk(encryption) | {"use": "enc", "alg": "ECDH-ES+A256KW"},
            ]
        }
        write_file(
            self._layout.jwks(agency),
            orjson.dumps(jwks, option=orjson.OPT_INDENT_2) + b"\n",
            mode=PUBLIC_FILE_MODE,
        )

    def stage(self, agency: str, signing: SigningKey, decryption: DecryptionKey) -> None:
        """Write a rotation's new keys under their kids (``<usage>.<kid>.key.pem``), next to
        the keys in use, which stay current until :meth:`promote`."""
        keys: tuple[SigningKey | DecryptionKey, ...] = (signing, decryption)
        for usage, key in zip(_USAGES, keys, strict=True):
            path = self._layout.kept_key(agency, usage, kid_of(key))
            if not path.exists():
                write_private_key(path, key, self._settings)

    def staged(self, agency: str, usage: Usage, kid: str) -> SigningKey | DecryptionKey | None:
        """The staged key ``kid``, or ``None`` if no such file is here."""
        path = self._layout.kept_key(agency, usage, kid)
        return self._load(path, usage, kid) if path.exists() else None

    def rotate(
        self,
        record: AgencyRecord,
        signing: SigningKey,
        decryption: DecryptionKey,
        publish: Callable[[], object],
    ) -> None:
        """Replace ``record``'s current keys by ``signing`` and ``decryption`` on disk,
        calling ``publish`` (which writes the re-signed record) at the one safe moment:
        :meth:`stage`, then :meth:`promote`."""
        self.stage(record.id, signing, decryption)
        self.promote(record, kid_of(signing), kid_of(decryption), publish)

    def promote(
        self, record: AgencyRecord, signing_kid: str, encryption_kid: str,
        publish: Callable[[], object],
    ) -> None:  # fmt: skip
        """Make the staged keys ``signing_kid`` and ``encryption_kid`` current in place of
        ``record``'s, calling ``publish`` (which writes the record listing them) at the one
        safe moment.

        Order: the current decryption key gets a second name ``encryption.<old kid>.key.pem``
        (kept, to open older envelopes); ``publish()``; then the new keys are renamed over
        ``signing.key.pem`` and ``encryption.key.pem`` — the old signing key is destroyed,
        since nothing may sign with it any more. Each step can be run again after a crash.
        """
        agency = record.id
        for usage, kid in zip(_USAGES, (signing_kid, encryption_kid), strict=True):
            self.current(agency, usage, kid)  # present and the right key, staged or not
        _, old_encryption = self.current(agency, "encryption", record.encryption_kid)
        _, old_signing = self.current(agency, "signing", record.signing_kid)
        kept = self._layout.kept_key(agency, "encryption", record.encryption_kid)
        if not kept.exists():
            link_file(old_encryption, kept)
        publish()
        self.settle(agency, signing_kid, encryption_kid)
        if old_signing != self._path(agency, "signing"):
            old_signing.unlink(missing_ok=True)

    def settle(self, agency: str, signing_kid: str, encryption_kid: str) -> None:
        """Rename the current keys, if still staged, over ``signing.key.pem`` and
        ``encryption.key.pem`` (the last step of :meth:`promote`; safe to repeat)."""
        keys: list[SigningKey | DecryptionKey] = []
        for usage, kid in zip(_USAGES, (signing_kid, encryption_kid), strict=True):
            key, path = self.current(agency, usage, kid)
            keys.append(key)
            if path != self._path(agency, usage):
                replace_file(path, self._path(agency, usage))
        signing, decryption = keys
        if isinstance(signing, SigningKey) and isinstance(decryption, DecryptionKey):
            self.write_jwks(agency, signing.public, decryption.public)
