"""Opaque cursors: a position in the gateway's own received store, sealed.

::

    codec = CursorCodec.for_files(files)      # key in <home>/gateway/<agency>/cursor.key
    text = codec.encode(1234)                  # fresh ciphertext every time
    codec.decode(text)                         # 1234, or raises CursorError

A cursor is the store sequence number of the last report a reader has passed, encrypted and
authenticated with Fernet (pyca/cryptography: AES-128-CBC with HMAC-SHA256). It reveals
nothing: not the position, not how many reports arrived (for any viewer or none), not
whether two cursors name the same place; a forged or altered one fails authentication.
Sequence numbers are the gateway's own, so a cursor says nothing about Kafka topics,
partitions or offsets either.
"""

from __future__ import annotations

import os
import struct

from cryptography.fernet import Fernet, InvalidToken

from gateway._files import GatewayFiles

__all__ = ["CursorCodec", "CursorError"]

_LAYOUT = struct.Struct(">BQ")  # version, sequence number
_VERSION = 1
_MAX_TEXT = 512


class CursorError(ValueError):
    """The text is not a cursor this gateway made."""


class CursorCodec:
    """Seals store positions into cursors and opens them."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def for_files(cls, files: GatewayFiles) -> CursorCodec:
        """The codec with the home's key, made (0600) on first use."""
        path = files.cursor_key
        files.ensure_folder()
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return cls(path.read_bytes().strip())
        with os.fdopen(fd, "wb") as out:
            key = Fernet.generate_key()
            out.write(key)
        return cls(key)

    def encode(self, position: int) -> str:
        return self._fernet.encrypt(_LAYOUT.pack(_VERSION, position)).decode("ascii")

    def decode(self, text: str) -> int:
        if not text or len(text) > _MAX_TEXT or not text.isascii():
            raise CursorError("not a cursor of this gateway")
        try:
            plain = self._fernet.decrypt(text.encode("ascii"))
        except InvalidToken:
            raise CursorError("not a cursor of this gateway") from None
        if len(plain) != _LAYOUT.size:
            raise CursorError("not a cursor of this gateway")
        version, position = _LAYOUT.unpack(plain)
        if version != _VERSION:
            raise CursorError("not a cursor of this gateway")
        return int(position)
