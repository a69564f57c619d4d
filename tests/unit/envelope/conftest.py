"""A small deterministic world: three agencies, a trust store, a fixed clock."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broker.envelope import Opener, Sealer
from broker.keys import Identity
from broker.trust import MemoryTrustStore
from schemas.envelope import RoutingHeader

NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
AGENCIES = ("customs", "anf", "fia")


@dataclass
class World:
    ids: dict[str, Identity]
    trust: MemoryTrustStore
    rng: random.Random
    now: datetime = NOW
    clock_now: list[datetime] = field(default_factory=lambda: [NOW])

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
        return Sealer(self.ids[sender], self.trust, clock=self.clock, random=self.randbytes, **kw)

    def opener(self, agency: str, **kw: Any) -> Opener:
        return Opener(self.ids[agency], self.trust, **kw)

    def seal(self, payload: bytes = b'{"report":1}', sender: str = "customs", **kw: Any) -> bytes:
        return self.sealer(sender).seal(self.header(sender, **kw), payload)


def make_world(seed: int = 7) -> World:
    rng = random.Random(seed)
    ids = {a: Identity.generate(a, rng.randbytes) for a in AGENCIES}
    trust = MemoryTrustStore()
    for agency, identity in ids.items():
        trust.add_agency(
            agency,
            identity.signing_key.public,
            identity.encryption_key,
            valid_from=NOW - timedelta(days=30),
        )
    return World(ids, trust, rng)


@pytest.fixture
def world() -> World:
    return make_world()
