"""The subscriber's scope checks, without Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from broker.config import KafkaSettings
from broker.federation import DirectorySnapshot
from broker.keys import Identity
from consumers import MemoryDelivered, Seen, Subscriber
from consumers.intake import _Scope


@pytest.fixture
def karachi_narcotics() -> _Scope:
    return _Scope(["narcotics"], ["PKKHI"])


@pytest.mark.parametrize(
    ("headers", "outside"),
    [
        ([("fb-category", b"narcotics"), ("fb-jurisdiction", b"PKKHI")], False),
        ([("fb-category", b"narcotics"), ("fb-jurisdiction", b"PKBQM")], True),  # Port Qasim
        ([("fb-category", b"arms"), ("fb-jurisdiction", b"PKKHI")], True),
        ([("fb-category", b"narcotics"), ("fb-jurisdiction", b"PK-SD")], True),  # wider
        ([("fb-category", b"narcotics"), ("fb-jurisdiction", b"XX-\xff")], True),  # garbage
        ([], False),  # no headers: open it and let the signed header decide
        ([("fb-category", b"narcotics")], False),
    ],
)
def test_clear_headers_only_ever_skip_records(
    karachi_narcotics: _Scope, headers: list[tuple[str, bytes]], outside: bool
) -> None:
    assert karachi_narcotics.outside_by_headers(tuple(headers)) is outside


def test_a_subscription_to_an_unknown_jurisdiction_is_refused() -> None:
    with pytest.raises(ValueError, match="ISO 3166"):
        Subscriber(
            Identity.generate("anf"), DirectorySnapshot(), KafkaSettings(),
            categories=["narcotics"], jurisdictions=["ZZ-QQ"],
        )  # fmt: skip


def test_delivery_state_tells_redelivery_from_replay() -> None:
    store = MemoryDelivered()
    mid, now = uuid.uuid4(), datetime.now(UTC)
    assert store.check("customs", mid, b"a") is Seen.NEW
    store.mark("customs", mid, b"a", now + timedelta(hours=1))
    assert store.check("customs", mid, b"a") is Seen.DUPLICATE
    assert store.check("customs", mid, b"b") is Seen.REPLAY
    assert store.forget_expired(now + timedelta(hours=2)) == 1
    assert store.check("customs", mid, b"b") is Seen.NEW
