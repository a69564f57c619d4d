"""The gateway's files in the agency's home: ``<home>/gateway/<agency>/``, 0700, files 0600.

The folder holds plaintext reports (the received store) and token hashes, so nothing in it
is ever readable by another user, not even for a moment: files are created by
``os.open(..., 0o600)`` before SQLite opens them (its ``-wal`` and ``-shm`` files take the
database file's mode).
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GatewayFiles", "connect"]


@dataclass(frozen=True)
class GatewayFiles:
    """Where each gateway file lives under the agency's home."""

    home: Path
    agency: str

    @property
    def folder(self) -> Path:
        return self.home / "gateway" / self.agency

    @property
    def tokens(self) -> Path:
        """Access tokens: id, role, SHA-256 of the secret, created/revoked times."""
        return self.folder / "tokens.sqlite"

    @property
    def ingest(self) -> Path:
        """Idempotency records and the status of each report posted."""
        return self.folder / "ingest.sqlite"

    @property
    def outbox(self) -> Path:
        """Reports posted and sealed, waiting for Kafka (``producers.outbox``)."""
        return self.folder / "outbox.sqlite"

    @property
    def feedback(self) -> Path:
        """Feedback recipients sent on this agency's reports (from its inbox)."""
        return self.folder / "feedback.sqlite"

    @property
    def sessions(self) -> Path:
        """Browser sessions: SHA-256 of the session id and of its CSRF secret, token id, expiry."""
        return self.folder / "sessions.sqlite"

    @property
    def received(self) -> Path:
        """The reports the agency received, opened and verified (plaintext)."""
        return self.folder / "received.sqlite"

    @property
    def delivered(self) -> Path:
        """The gateway subscriber's delivery state (replay protection across restarts)."""
        return self.folder / "delivered.sqlite"

    @property
    def cursor_key(self) -> Path:
        """The secret key that seals feed and page cursors."""
        return self.folder / "cursor.key"

    def ensure_folder(self) -> Path:
        for folder in (self.folder.parent, self.folder):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.chmod(0o700)
        return self.folder

    def private(self, path: Path) -> Path:
        """``path`` inside the folder, created empty with mode 0600 if it does not exist."""
        self.ensure_folder()
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        path.chmod(0o600)
        return path


def connect(files: GatewayFiles, path: Path) -> sqlite3.Connection:
    """An SQLite connection to the private file ``path`` (WAL journal, autocommit off)."""
    connection = sqlite3.connect(files.private(path), isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    return connection
