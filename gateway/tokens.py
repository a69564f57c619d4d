"""Access tokens of one agency's gateway: roles, hashed storage, the check on each request.

::

    store = TokenStore(GatewayFiles(home, "anf"), "anf")
    info, token = store.create(Role.VIEWER, now)     # token shown once, never stored
    principal = check_token(token, "anf", store.find, now)   # or raises TokenRefused
    store.revoke(info.id, now)

A token reads ``fbgw_<agency>_<id>_<secret>``: the agency it was made for, a public id (shown
by ``token list``, used by ``token revoke``) and a 256-bit random secret. Only the secret's
SHA-256 is stored (``<home>/gateway/<agency>/tokens.sqlite``, 0600); the check looks the
record up by id and compares digests in constant time. A token of another agency is refused
before any look-up, so one agency's gateway never serves another's people.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from gateway._files import GatewayFiles, connect

__all__ = [
    "Permission",
    "Principal",
    "Refusal",
    "Role",
    "TokenInfo",
    "TokenRefused",
    "TokenStore",
    "check_token",
    "check_token_id",
    "permits",
]

_PREFIX = "fbgw"


class Role(StrEnum):
    OPERATOR = "operator"
    """A duty officer: reads everything the agency received, posts reports."""
    VIEWER = "viewer"
    """Reads the feed; ``TLP:RED`` reports show their routing header only."""
    SYSTEM = "system"
    """An agency system (risk engine, case system): posts reports and reads them."""


class Permission(StrEnum):
    INGEST = "ingest"
    READ = "read"
    READ_RED = "read_red"


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(Permission),
    Role.SYSTEM: frozenset(Permission),
    Role.VIEWER: frozenset({Permission.READ}),
}


def permits(role: Role, permission: Permission) -> bool:
    """Whether ``role`` has ``permission``."""
    return permission in _GRANTS[role]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token, without its secret."""

    id: str
    role: Role
    label: str
    created_at: datetime
    revoked_at: datetime | None
    digest: bytes


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the token's id and role (the agency is the gateway's own)."""

    token_id: str
    role: Role

    def may(self, permission: Permission) -> bool:
        return permits(self.role, permission)


class Refusal(StrEnum):
    MISSING = "missing"
    MALFORMED = "malformed"
    WRONG_AGENCY = "wrong_agency"
    UNKNOWN = "unknown"
    REVOKED = "revoked"


class TokenRefused(Exception):  # noqa: N818 - a verdict on a request, mapped to a 401
    """A presented token is not accepted here; ``reason`` says why (for the problem)."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_token(
    presented: str | None,
    agency: str,
    find: Callable[[str], TokenInfo | None],
    now: datetime,
) -> Principal:
    """The principal ``presented`` stands for at ``agency``'s gateway, or TokenRefused."""
    if not presented:
        raise TokenRefused(
            Refusal.MISSING,
            "no access token: send `Authorization: Bearer <token>` (make one with "
            f"`fusionbus gateway token create --agency {agency} --role viewer`)",
        )
    parts = presented.split("_", 3)
    if len(parts) != 4 or parts[0] != _PREFIX or not parts[2] or not parts[3]:
        raise TokenRefused(
            Refusal.MALFORMED,
            "the access token is not a fusionbus gateway token (fbgw_<agency>_<id>_<secret>)",
        )
    _, owner, token_id, secret = parts
    if owner != agency:
        raise TokenRefused(
            Refusal.WRONG_AGENCY,
            f"this token was made for another agency's gateway; this gateway serves {agency} "
            "only. Use a token made for it.",
        )
    info = find(token_id)
    if info is None or not hmac.compare_digest(info.digest, _digest(secret)):
        raise TokenRefused(Refusal.UNKNOWN, "the access token is not known to this gateway")
    return _live(info, now)


def check_token_id(
    token_id: str, find: Callable[[str], TokenInfo | None], now: datetime
) -> Principal:
    """The principal of the token ``token_id`` (a browser session's, whose secret was checked
    at login), or TokenRefused when that token is gone or revoked."""
    info = find(token_id)
    if info is None:
        raise TokenRefused(
            Refusal.UNKNOWN, "the session's access token is not known to this gateway"
        )
    return _live(info, now)


def _live(info: TokenInfo, now: datetime) -> Principal:
    token_id = info.id
    if info.revoked_at is not None and info.revoked_at <= now:
        raise TokenRefused(
            Refusal.REVOKED,
            f"token {token_id} was revoked at {info.revoked_at.isoformat()}; ask an "
            "administrator of this agency for a new one",
        )
    return Principal(token_id, info.role)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    label TEXT NOT NULL,
    digest BLOB NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


class TokenStore:
    """The tokens of ``agency``'s gateway in ``<home>/gateway/<agency>/tokens.sqlite``."""

    def __init__(self, files: GatewayFiles, agency: str) -> None:
        self.agency = agency
        self._db = connect(files, files.tokens)
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def create(self, role: Role, now: datetime, *, label: str = "") -> tuple[TokenInfo, str]:
        """A new token of ``role``: its record and the token text (shown once)."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        info = TokenInfo(token_id, role, label, now, None, _digest(secret))
        self._db.execute(
            "INSERT INTO tokens (id, role, label, digest, created_at) VALUES (?, ?, ?, ?, ?)",
            (token_id, str(role), label, info.digest, now.isoformat()),
        )
        return info, f"{_PREFIX}_{self.agency}_{token_id}_{secret}"

    def revoke(self, token_id: str, now: datetime) -> bool:
        """Revoke ``token_id`` from ``now`` on; False if there is no such live token."""
        cursor = self._db.execute(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (now.isoformat(), token_id),
        )
        return cursor.rowcount == 1

    def find(self, token_id: str) -> TokenInfo | None:
        row = self._db.execute(
            "SELECT id, role, label, created_at, revoked_at, digest FROM tokens WHERE id = ?",
            (token_id,),
        ).fetchone()
        return None if row is None else _info(row)

    def all(self) -> list[TokenInfo]:
        rows = self._db.execute(
            "SELECT id, role, label, created_at, revoked_at, digest FROM tokens "
            "ORDER BY created_at, id"
        ).fetchall()
        return [_info(row) for row in rows]


def _info(row: sqlite3.Row | tuple[object, ...]) -> TokenInfo:
    token_id, role, label, created, revoked, digest = row
    return TokenInfo(
        str(token_id),
        Role(str(role)),
        str(label),
        _moment(str(created)),
        None if revoked is None else _moment(str(revoked)),
        bytes(digest),  # type: ignore[arg-type]
    )


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
