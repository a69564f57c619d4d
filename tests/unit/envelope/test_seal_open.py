"""Sealing and opening: round trips, non-recipient verification, content-key epochs."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.envelope import (
    MemoryReplayGuard,
    Reason,
    open_envelope,
    seal_envelope,
    verify_envelope,
)
from broker.errors import AuthorizationError, ConfigError, VerificationError

from .conftest import NOW, World, make_world


@pytest.mark.parametrize("to", [("anf",), ("anf", "fia"), ("anf", "fia", "customs")])
def test_every_recipient_opens_and_sees_the_signed_header(
    world: World, to: tuple[str, ...]
) -> None:
    header = world.header(to=to)
    data = world.sealer().seal(header, b"payload \x00\xff bytes")
    for agency in to:
        message = world.opener(agency).open(data, NOW)
        assert message.header == header
        assert message.payload == message.content == b"payload \x00\xff bytes"
        assert message.sender_key.agency == "customs"
    assert verify_envelope(data, world.trust, NOW) == header


def test_a_non_recipient_cannot_open_but_can_verify(world: World) -> None:
    data = world.seal(to=("anf",))
    with pytest.raises(VerificationError) as caught:
        world.opener("fia").open(data, NOW)
    assert caught.value.reason == Reason.NOT_RECIPIENT
    assert verify_envelope(data, world.trust, NOW).sender == "customs"


def test_one_shot_functions_and_parse(world: World) -> None:
    header = world.header()
    data = seal_envelope(header, b'{"a":1}', world.ids["customs"], world.trust, NOW)
    message = open_envelope(data, world.ids["anf"], world.trust, NOW, parse=orjson.loads)
    assert message.content == {"a": 1}
    with pytest.raises(VerificationError) as caught:
        open_envelope(data, world.ids["anf"], world.trust, NOW, parse=int)
    assert caught.value.reason == Reason.INVALID_REPORT


@pytest.mark.parametrize(("version", "unprotected"), [(1, "fusionbus_sig"), (2, "fusionbus_batch")])
def test_the_envelope_is_one_general_json_jwe(world: World, version: int, unprotected: str) -> None:
    doc = orjson.loads(world.seal(version=version))
    assert set(doc) == {"protected", "unprotected", "recipients", "iv", "ciphertext", "tag"}
    assert set(doc["unprotected"]) == {unprotected}
    assert [r["header"]["alg"] for r in doc["recipients"]] == ["ECDH-ES+A256KW"] * 2


def test_a_warm_epoch_reuses_the_recipients_array_with_fresh_ivs(world: World) -> None:
    sealer = world.sealer()
    first = orjson.loads(sealer.seal(world.header(), b"1"))
    second = orjson.loads(sealer.seal(world.header(), b"2"))
    assert first["recipients"] == second["recipients"]
    assert first["iv"] != second["iv"]
    assert sealer.epochs_started == 1
    opener = world.opener("anf")
    for doc in (first, second):
        opener.open(orjson.dumps(doc), NOW)


def test_epochs_end_by_message_count_and_age(world: World) -> None:
    sealer = world.sealer(epoch_messages=2, epoch_age=timedelta(minutes=10))
    sealer.seal(world.header(), b"")
    sealer.seal(world.header(), b"")
    assert sealer.epochs_started == 1
    sealer.seal(world.header(), b"")  # count bound reached
    assert sealer.epochs_started == 2
    world.clock_now[0] = NOW + timedelta(minutes=10)
    sealer.seal(world.header(), b"")  # age bound reached
    assert sealer.epochs_started == 3


def test_epochs_are_per_recipient_set_and_end_when_a_recipient_key_changes(world: World) -> None:
    sealer = world.sealer()
    sealer.seal(world.header(), b"")
    sealer.seal(world.header(to=("anf",)), b"")  # another recipient set has its own epoch
    assert sealer.epochs_started == 2
    sealer.seal(world.header(), b"")  # ... and the first one is still warm
    assert sealer.epochs_started == 2
    world.revoke(world.ids["customs"].encryption_kid, NOW + timedelta(days=1))
    sealer.seal(world.header(), b"")  # an unrelated record changed: no new epoch
    assert sealer.epochs_started == 2
    world.revoke(world.ids["fia"].encryption_kid, NOW + timedelta(days=1))
    sealer.seal(world.header(), b"")  # a recipient record changed
    assert sealer.epochs_started == 3


def test_sealing_refuses_revoked_unknown_or_foreign_keys(world: World) -> None:
    sealer = world.sealer()
    world.revoke(world.ids["fia"].encryption_kid, NOW)
    with pytest.raises(AuthorizationError, match="revoked"):
        sealer.seal(world.header(), b"")
    with pytest.raises(AuthorizationError, match="not in the directory"):
        sealer.seal(world.header(to=("anf",), recipients=("unknown-kid",)), b"")
    with pytest.raises(ConfigError, match="sender"):
        sealer.seal(world.header(sender="anf", to=("anf",)), b"")
    world.revoke(world.ids["customs"].signing_kid, NOW)
    with pytest.raises(AuthorizationError, match="cannot sign"):
        sealer.seal(world.header(to=("anf",)), b"")
    with pytest.raises(ConfigError):
        world.sealer(epoch_messages=0)


def test_rotation_keeps_old_envelopes_readable(world: World) -> None:
    from broker.keys import DecryptionKey, Identity  # noqa: PLC0415

    data = world.seal(to=("anf",))
    anf = world.ids["anf"]
    new_key = DecryptionKey.generate(world.randbytes)
    rotated = Identity.create("anf", anf.signing_key, *anf.decryption_keys.values(), new_key)
    assert rotated.encryption_kid != anf.encryption_kid
    message = open_envelope(data, rotated, world.trust, NOW)
    assert message.header.recipients == (anf.encryption_kid,)


def test_replay_guard_forgets_ids_after_they_expire(world: World) -> None:
    guard = MemoryReplayGuard()
    data = world.seal(expires_at=NOW + timedelta(minutes=1))
    opener = world.opener("anf", replay_guard=guard)
    opener.open(data, NOW)
    with pytest.raises(VerificationError) as caught:
        opener.open(data, NOW)
    assert caught.value.reason == Reason.REPLAY
    world.opener("fia", replay_guard=guard)  # a fresh opener shares the guard
    other = world.seal()
    opener.open(other, NOW + timedelta(minutes=2))  # purges the first id
    assert len(guard) == 1


def test_sealing_is_deterministic_under_injected_randomness() -> None:
    a, b = make_world(1), make_world(1)
    assert a.seal() == b.seal()


def test_a_clock_going_backwards_starts_a_new_epoch(world: World) -> None:
    sealer = world.sealer()
    world.clock_now[0] = NOW + timedelta(minutes=5)
    sealer.seal(world.header(), b"")
    world.clock_now[0] = NOW
    sealer.seal(world.header(), b"")
    assert sealer.epochs_started == 2


def test_least_recently_used_epochs_are_dropped(world: World) -> None:
    sealer = world.sealer(max_epochs=2)
    for to in [("anf",), ("fia",), ("anf",), ("anf", "fia"), ("anf",), ("fia",)]:
        sealer.seal(world.header(to=to), b"")
    # anf stays warm; fia was dropped when (anf, fia) arrived and is rebuilt at the end.
    assert sealer.epochs_started == 4


PAYLOADS = st.binary(max_size=4096)
ROUND_TRIP_WORLD = make_world(21)


@settings(max_examples=60, deadline=None)
@given(
    PAYLOADS,
    st.sampled_from([("anf",), ("fia",), ("anf", "fia"), ("fia", "customs", "anf")]),
    st.sampled_from(["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]),
    st.sampled_from(["TLP:RED", "TLP:AMBER+STRICT", "TLP:AMBER", "TLP:GREEN", "TLP:CLEAR"]),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=31)),
)
def test_open_inverts_seal(
    payload: bytes, to: tuple[str, ...], precedence: str, tlp: str, lifetime: timedelta
) -> None:
    world = ROUND_TRIP_WORLD
    header = world.header(to=to, precedence=precedence, tlp=tlp, expires_at=NOW + lifetime)
    data = world.sealer().seal(header, payload)
    for agency in to:
        message = world.opener(agency).open(data, NOW)
        assert (message.header, message.payload) == (header, payload)
    assert verify_envelope(data, world.trust, NOW) == header
