"""Browser sessions of one gateway: a cookie names a server-side session bound to a token id.

::

    sessions = SessionStore()
    session = sessions.open(principal, now)      # after the pasted token passed check_token
    found = sessions.find(cookie_value, now)     # None when unknown, logged out or expired
    sessions.close(cookie_value)

An ``EventSource`` cannot send an ``Authorization`` header, so the dashboard logs in once
(``POST /login`` with a token) and then carries a session cookie. The cookie holds a random
256-bit session id, never the token; the gateway keeps, in memory, the SHA-256 of that id
mapped to the token's id, role and a CSRF secret. Each request re-reads the token's record,
so a revoked token's sessions stop working from the next request on; a restart of the
gateway ends every session (the operator logs in again).

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
from datetime import datetime, timedelta

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


def _key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


@dataclass(frozen=True, slots=True)
class Session:
    """One logged-in browser: its cookie values (``id`` and ``csrf``) and its token's id."""

    id: str
    csrf: str
    token_id: str
    expires_at: datetime


class SessionStore:
    """Sessions in memory, by the SHA-256 of their id; at most ``_MAX_SESSIONS`` kept."""

    def __init__(self, lifetime: timedelta = _LIFETIME) -> None:
        self.lifetime = lifetime
        self._sessions: dict[bytes, Session] = {}

    def open(self, token_id: str, now: datetime) -> Session:
        """A new session for ``token_id``, valid for the store's lifetime from ``now``."""
        self._drop_expired(now)
        if len(self._sessions) >= _MAX_SESSIONS:
            oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
            del self._sessions[oldest]
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), token_id, now + self.lifetime
        )
        self._sessions[_key(session.id)] = session
        return session

    def find(self, session_id: str, now: datetime) -> Session | None:
        found = self._sessions.get(_key(session_id))
        if found is None or found.expires_at <= now:
            return None
        return found

    def close(self, session_id: str) -> None:
        self._sessions.pop(_key(session_id), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _drop_expired(self, now: datetime) -> None:
        for key in [k for k, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[key]


def csrf_matches(session: Session, presented: str | None) -> bool:
    """Whether ``presented`` (the ``X-CSRF-Token`` header) is the session's CSRF secret."""
    return presented is not None and hmac.compare_digest(session.csrf.encode(), presented.encode())
