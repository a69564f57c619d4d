"""The care private keys and a home's other files need (where they are: ``broker.home``).

Private files are created with mode 0600 by ``os.open`` itself (no window in which they
are readable by others), in 0700 directories, and written atomically (temporary file,
``fsync``, rename). A private key file that group or others may read is refused, as ssh
refuses one.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import orjson
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.errors import ConfigError
from broker.keys import (
    DecryptionKey,
    SigningKey,
    VerifyKey,
    load_private_pem,
    public_jwk,
    public_key_from_jwk,
)

__all__ = [
    "KeySettings",
    "read_limited",
    "read_private_bytes",
    "read_private_key",
    "read_root_public",
    "write_file",
    "write_private_key",
    "write_root_public",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
PUBLIC_FILE_MODE = 0o644
_ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_MAX_KEY_FILE = 16_384
_MAX_JWK_BYTES = 4_096


class KeySettings(BaseSettings):
    """How private keys are protected at rest. Env var: ``FUSIONBUS_PASSPHRASE``.

    When a passphrase is set, new private keys are written encrypted (PKCS#8 with the best
    encryption pyca/cryptography offers) and encrypted keys are loaded with it.
    """

    model_config = SettingsConfigDict(env_prefix="FUSIONBUS_", frozen=True, extra="ignore")

    passphrase: SecretStr | None = None

    def passphrase_bytes(self) -> bytes | None:
        if self.passphrase is None or not self.passphrase.get_secret_value():
            return None
        return self.passphrase.get_secret_value().encode("utf-8")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) as 0700; refuse an existing one others can enter."""
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"cannot create the private directory {path}: {exc}") from exc
    if mode & 0o077:
        raise ConfigError(
            f"{path} has mode {mode:04o}: private keys must not sit in a directory others "
            f"can read; run `chmod 700 {path}`"
        )
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: Path, data: bytes, *, mode: int, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` atomically, created with ``mode`` from the start.

    ``exclusive`` refuses to replace an existing file. Failures are ConfigErrors.
    """
    try:
        _write(path, data, mode=mode, exclusive=exclusive)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write(path: Path, data: bytes, *, mode: int, exclusive: bool) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if exclusive:
            os.link(tmp, path)  # fails if path exists, unlike rename
            tmp.unlink()
        else:
            tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def link_file(source: Path, target: Path) -> None:
    """Give ``source`` the second name ``target`` (same inode, same 0600 mode)."""
    try:
        os.link(source, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise ConfigError(f"cannot link {source} to {target}: {exc.strerror or exc}") from exc


def replace_file(source: Path, target: Path) -> None:
    """Rename ``source`` over ``target`` atomically."""
    try:
        source.replace(target)
        _fsync_dir(target.parent)
    except OSError as exc:
        raise ConfigError(f"cannot move {source} to {target}: {exc.strerror or exc}") from exc


def write_private_key(path: Path, key: SigningKey | DecryptionKey, settings: KeySettings) -> None:
    """Write ``key`` as PKCS#8 PEM, 0600, encrypted if a passphrase is configured."""
    private_dir(path.parent)
    write_file(
        path, key.to_pem(settings.passphrase_bytes()), mode=PRIVATE_FILE_MODE, exclusive=True
    )


def read_private_bytes(path: Path, settings: KeySettings) -> tuple[bytes, bytes | None]:
    """The PEM in ``path`` and the passphrase to open it with (``None`` if unencrypted);
    refuse the file if others may read it, or if it is encrypted and no passphrase is set."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise ConfigError(f"private key file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot open private key file {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())  # the file we read, not whatever the name points to
        mode = stat.S_IMODE(info.st_mode)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"private key {path} is not a regular file")
        if mode & 0o077:
            raise ConfigError(
                f"private key {path} has mode {mode:04o}: it is readable by others, so it "
                f"is refused (as ssh refuses one); run `chmod 600 {path}`"
            )
        if info.st_uid != os.getuid():
            raise ConfigError(
                f"private key {path} belongs to uid {info.st_uid}, not to you "
                f"(uid {os.getuid()}); refusing it"
            )
        data = handle.read(_MAX_KEY_FILE + 1)
    if len(data) > _MAX_KEY_FILE:
        raise ConfigError(f"private key {path} is larger than {_MAX_KEY_FILE} bytes")
    encrypted = _ENCRYPTED_PEM in data
    passphrase = settings.passphrase_bytes()
    if encrypted and passphrase is None:
        raise ConfigError(
            f"private key {path} is encrypted; set the passphrase in FUSIONBUS_PASSPHRASE"
        )
    return data, passphrase if encrypted else None


def read_private_key(path: Path, settings: KeySettings) -> SigningKey | DecryptionKey:
    """Load the private key in ``path``; refuse it if others may read the file."""
    data, passphrase = read_private_bytes(path, settings)
    try:
        return load_private_pem(data, passphrase)
    except ConfigError as exc:
        hint = " (wrong passphrase in FUSIONBUS_PASSPHRASE?)" if passphrase else ""
        raise ConfigError(f"private key {path}{hint}: {exc}") from exc


def read_limited(path: Path, limit: int) -> bytes:
    """At most ``limit + 1`` bytes of ``path`` (so an oversized file is seen as such)."""
    try:
        with path.open("rb") as handle:
            return handle.read(limit + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc


def json_object(data: bytes) -> dict[str, object]:
    value = orjson.loads(data)
    if not isinstance(value, dict):
        raise ConfigError("expected a JSON object")
    return value


def read_root_public(path: Path, home: Path) -> VerifyKey:
    try:
        data = read_limited(path, _MAX_JWK_BYTES)
    except FileNotFoundError:
        raise ConfigError(
            f"no federation in {home} (there is no {path}); run `fusionbus federation init "
            f"--home {home}` on the admin's machine, or copy root.pub.jwk from it"
        ) from None
    try:
        key = public_key_from_jwk(json_object(data))
    except (orjson.JSONDecodeError, ConfigError) as exc:
        raise ConfigError(
            f"{path}: not a usable root public key ({exc}); expected the Ed25519 JWK that "
            "`fusionbus federation init` wrote"
        ) from None
    if not isinstance(key, VerifyKey):
        raise ConfigError(f"{path}: the root key must be an Ed25519 signing key, not X25519")
    return key


def write_root_public(path: Path, root: VerifyKey) -> None:
    """Write the trust anchor ``root`` as a public JWK (refusing to replace one)."""
    jwk = public_jwk(root) | {"use": "sig", "alg": "Ed25519"}
    write_file(
        path,
        orjson.dumps(jwk, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n",
        mode=PUBLIC_FILE_MODE,
        exclusive=True,
    )
