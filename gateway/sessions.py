"""Browser sessions of one gateway: a cookie names a server-side session bound to a token id.

::

    sessions = SessionStore(files)               # gateway._files.GatewayFiles
    session = sessions.open(principal, now)      # after the pasted token passed check_token
    found = sessions.find(cookie_value, now)     # None when unknown, logged out or expired
    sessions.end(cookie_value)                   # logged out

An ``EventSource`` cannot send an ``Authorization`` header, so the dashboard logs in once
(``POST /login`` with a token) and then carries a session cookie. The cookie holds a random
256-bit session id, never the token; the gateway keeps, in ``sessions.sqlite`` (0600), the
SHA-256 of that id mapped to the token's id, the SHA-256 of a CSRF secret and the expiry, so
a session survives a restart of the gateway while a copy of the file opens no session. Each
request re-reads the token's record, so a revoked token's sessions stop working from the
next request on.

Unsafe requests (anything but GET, HEAD, OPTIONS) authenticated by the cookie must carry
the CSRF secret in ``X-CSRF-Token``, equal to the readable ``fbgw_csrf`` cookie the login
set (double submit, compared in constant time): another site can make a browser send the
cookie, but cannot read it to set the header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway._files import GatewayFiles, connect

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "SAFE_METHODS",
    "SESSION_COOKIE",
    "Session",
    "SessionStore",
    "csrf_matches",
]

SESSION_COOKIE = "fbgw_session"
CSRF_COOKIE = "fbgw_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_LIFETIME = timedelta(hours=12)
_MAX_SESSIONS = 10_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    digest BLOB PRIMARY KEY,
    csrf_digest BLOB NOT NULL,
    token_id TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
"""


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in browser: its cookie's session ``id``, the SHA-256 of its CSRF secret,
    its token's id. ``csrf``, the secret itself, is known only when the session is opened."""

    id: str
    csrf_digest: bytes
    token_id: str
    expires_at: datetime
    csrf: str = ""


class SessionStore:
    """Sessions in ``<home>/gateway/<agency>/sessions.sqlite``, by the SHA-256 of their id;
    at most ``_MAX_SESSIONS`` kept (the oldest go first)."""

    def __init__(self, files: GatewayFiles, lifetime: timedelta = _LIFETIME) -> None:
        self.lifetime = lifetime
        self._db = connect(files, files.sessions)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def open(self, token_id: str, now: datetime) -> Session:
        """A new session for ``token_id``, valid for the store's lifetime from ``now``."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        session = Session(session_id, _digest(csrf), token_id, now + self.lifetime, csrf)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now.timestamp(),))
            self._db.execute(
                "DELETE FROM sessions WHERE digest IN (SELECT digest FROM sessions "
                "ORDER BY expires_at DESC LIMIT -1 OFFSET ?)",
                (_MAX_SESSIONS - 1,),
            )
            self._db.execute(
                "INSERT INTO sessions (digest, csrf_digest, token_id, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (
                    _digest(session_id),
                    session.csrf_digest,
                    token_id,
                    session.expires_at.timestamp(),
                ),
            )
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return session

    def find(self, session_id: str, now: datetime) -> Session | None:
        row = self._db.execute(
            "SELECT csrf_digest, token_id, expires_at FROM sessions WHERE digest = ?",
            (_digest(session_id),),
        ).fetchone()
        if row is None:
            return None
        expires_at = datetime.fromtimestamp(row[2], UTC)
        if expires_at <= now:
            return None
        return Session(session_id, bytes(row[0]), row[1], expires_at)

    def end(self, session_id: str) -> None:
        """Log the session out."""
        self._db.execute("DELETE FROM sessions WHERE digest = ?", (_digest(session_id),))

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0])


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether ``presented`` (the ``X-CSRF-Token`` header) is the session's CSRF secret."""
    return presented is not None and hmac.compare_digest(session.csrf_digest, _digest(presented))
