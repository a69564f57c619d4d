"""The publisher's batch signer: what concurrent callers hand over is sealed together, each
caller gets its own envelopes in order, and one caller's unsealable item fails that caller
alone — whatever the exception."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from broker.errors import AuthorizationError
from producers._signer import BatchSigner
from tests.unit.envelope.conftest import World, make_world


@pytest.fixture
def world() -> World:
    return make_world(21)


def _size(envelope: bytes) -> int:
    size: int = orjson.loads(envelope)["unprotected"]["fusionbus_batch"]["size"]
    return size


@pytest.mark.asyncio
async def test_concurrent_callers_share_one_signature_and_keep_their_order(world: World) -> None:
    signer = BatchSigner(world.sealer())
    calls = [[(world.header(), b"%d-%d" % (c, i)) for i in range(c + 1)] for c in range(4)]
    results = await asyncio.gather(*(signer.seal(items) for items in calls))
    assert signer.batches == 1
    assert [len(r) for r in results] == [1, 2, 3, 4]
    assert {_size(e) for r in results for e in r} == {10}
    opener = world.opener("anf")
    for items, envelopes in zip(calls, results, strict=True):
        assert [opener.open(e, world.now).payload for e in envelopes] == [p for _, p in items]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "poison",
    [
        lambda world: (world.header(), "a str, not bytes"),  # a bug: TypeError
        lambda world: (world.header(sender="fia"), b"{}"),  # another sender: ConfigError
    ],
)
async def test_one_callers_bad_item_fails_that_caller_only(world: World, poison: Any) -> None:
    signer = BatchSigner(world.sealer())
    good = asyncio.ensure_future(signer.seal([(world.header(), b'{"ok":1}')]))
    bad = asyncio.ensure_future(signer.seal([poison(world)]))
    also_good = asyncio.ensure_future(signer.seal([(world.header(), b'{"ok":2}')]))
    _, pending = await asyncio.wait({good, bad, also_good}, timeout=5)
    assert not pending  # nobody is left waiting
    assert bad.exception() is not None
    assert [_size(e) for e in good.result() + also_good.result()] == [1, 1]


@pytest.mark.asyncio
async def test_a_revoked_recipient_fails_its_caller_with_the_reason(world: World) -> None:
    world.revoke(world.ids["fia"].encryption_kid, world.now)
    signer = BatchSigner(world.sealer())
    with pytest.raises(AuthorizationError, match="cannot encrypt to recipient"):
        await signer.seal([(world.header(to=("anf", "fia")), b"{}")])
    [envelope] = await signer.seal([(world.header(to=("anf",)), b"{}")])
    assert world.opener("anf").open(envelope, world.now).payload == b"{}"
