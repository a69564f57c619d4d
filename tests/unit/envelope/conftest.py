"""A small deterministic world: three agencies, a directory of their keys, a fixed clock."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.envelope import Opener, Sealer
from broker.federation import DirectorySnapshot, agency_keys
from broker.keys import Identity
from schemas.envelope import RoutingHeader

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
AGENCIES = ("customs", "anf", "fia")


@dataclass
class World:
    """A :class:`~broker.federation.Directory` too: sealers and openers made here read
    ``trust``, the current snapshot, for every message, as from a live directory."""

    ids: dict[str, Identity]
    trust: DirectorySnapshot
    rng: random.Random
    now: datetime = NOW
    clock_now: list[datetime] = field(default_factory=lambda: [NOW])

    @property
    def snapshot(self) -> DirectorySnapshot:
        return self.trust

    def revoke(self, kid: str, at: datetime) -> None:
        """Replace the snapshot with one where the key ``kid`` is revoked from ``at`` on."""
        record = self.trust.signing_key(kid) or self.trust.encryption_key(kid)
        if record is None:
            raise KeyError(kid)
        self.trust = self.trust.with_keys(replace(record, revoked_at=at))

    def randbytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def clock(self) -> datetime:
        return self.clock_now[0]

    def header(
        self, sender: str = "customs", to: tuple[str, ...] = ("anf", "fia"), **kw: Any
    ) -> RoutingHeader:
        values: dict[str, Any] = {
            "message_id": uuid.UUID(bytes=self.randbytes(16), version=4),
            "sender": sender,
            "sender_kid": self.ids[sender].signing_kid,
            "category": "narcotics",
            "jurisdiction": "PK-SD",
            "precedence": "IMMEDIATE",
            "tlp": "TLP:AMBER",
            "created_at": self.now,
            "expires_at": self.now + timedelta(hours=12),
            "recipients": tuple(self.ids[a].encryption_kid for a in to),
            "schema_version": "1.0",
        }
        values.update(kw)
        return RoutingHeader(**values)

    def sealer(self, sender: str = "customs", **kw: Any) -> Sealer:
        return Sealer(self.ids[sender], self, clock=self.clock, random=self.randbytes, **kw)

    def opener(self, agency: str, **kw: Any) -> Opener:
        return Opener(self.ids[agency], self, **kw)

    def seal(
        self,
        payload: bytes = b'{"report":1}',
        sender: str = "customs",
        *,
        version: int = 2,
        **kw: Any,
    ) -> bytes:
        return self.sealer(sender, version=version).seal(self.header(sender, **kw), payload)


def make_world(seed: int = 7) -> World:
    rng = random.Random(seed)
    ids = {a: Identity.generate(a, rng.randbytes) for a in AGENCIES}
    trust = DirectorySnapshot.of_keys(
        key
        for agency, identity in ids.items()
        for key in agency_keys(
            agency,
            identity.signing_key.public,
            identity.encryption_key,
            valid_from=NOW - timedelta(days=30),
        )
    )
    return World(ids, trust, rng)


@pytest.fixture
def world() -> World:
    return make_world()
