"""Interop proof: Node's ``jose`` (panva) opens our envelopes and we open its envelopes.

The Node side lives in ``tests/interop/node``; the ``node_bin`` fixture (``conftest.py``)
installs it, and fails with an install hint when ``node`` or ``npm`` is missing.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from broker.envelope import Opener, Reason, verify_envelope
from broker.errors import VerificationError
from broker.keys import public_jwk
from tests.interop._node import run_node
from tests.unit.envelope.conftest import NOW, World, make_world

Peer = Callable[[str, dict[str, Any]], Any]


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def node_peer(node_bin: str) -> Peer:
    def run(command: str, request: dict[str, Any]) -> Any:
        return run_node(node_bin, ["peer.mjs", command], request)

    return run


@pytest.fixture
def world() -> World:
    return make_world(11)


@pytest.mark.parametrize("to", [("anf",), ("anf", "fia", "customs")])
def test_node_jose_opens_and_verifies_what_fusionbus_seals(
    node_peer: Peer, world: World, to: tuple[str, ...]
) -> None:
    header = world.header(to=to, version=1)  # version 1: Node's jose verifies the inner JWS
    sealer = world.sealer(version=1)
    sealer.seal(world.header(to=to), b"warms the epoch")
    envelope = orjson.loads(sealer.seal(header, b'{"report":"\xd9\x85"}'))
    for agency in to:
        identity = world.ids[agency]
        result = node_peer(
            "open",
            {
                "envelope": envelope,
                "recipient_pkcs8": identity.decryption_keys[identity.encryption_kid]
                .to_pem()
                .decode(),
                "sender_jwk": public_jwk(world.ids["customs"].signing_key),
            },
        )
        assert base64.urlsafe_b64decode(result["payload_b64u"] + "==") == b'{"report":"\xd9\x85"}'
        assert result["outer_ok"] is True
        assert result["routing"] == header.model_dump(mode="json")


@pytest.mark.parametrize("to", [("anf",), ("anf", "fia")])
def test_fusionbus_opens_and_verifies_what_node_jose_seals(
    node_peer: Peer, world: World, to: tuple[str, ...]
) -> None:
    header = world.header(to=to, version=1)  # peer.mjs seals version 1 (verify-v2.mjs: 2)
    sender = world.ids["customs"]
    request = {
        "routing": header.model_dump(mode="json"),
        "payload_b64u": _b64u(b'{"from":"node"}'),
        "sender_pkcs8": sender.signing_key.to_pem().decode(),
        "sender_kid": sender.signing_kid,
        "recipients": [
            {"kid": world.ids[a].encryption_kid, "jwk": public_jwk(world.ids[a].encryption_key)}
            for a in to
        ],
    }
    data = orjson.dumps(node_peer("seal", request))
    assert verify_envelope(data, world.trust, NOW) == header
    for agency in to:
        message = Opener(world.ids[agency], world.trust).open(data, NOW)
        assert message.payload == b'{"from":"node"}'
        assert message.header == header
    assert set(orjson.loads(data)) == {
        "protected",
        "unprotected",
        "recipients",
        "iv",
        "ciphertext",
        "tag",
    }


def test_node_jose_rejects_a_tampered_envelope(node_peer: Peer, world: World) -> None:
    envelope = orjson.loads(world.seal(to=("anf",)))
    tag = bytearray(base64.urlsafe_b64decode(envelope["tag"] + "=="))
    tag[0] ^= 1
    envelope["tag"] = _b64u(bytes(tag))
    identity = world.ids["anf"]
    with pytest.raises(AssertionError, match=r"node peer\.mjs open failed"):
        node_peer(
            "open",
            {
                "envelope": envelope,
                "recipient_pkcs8": identity.decryption_keys[identity.encryption_kid]
                .to_pem()
                .decode(),
                "sender_jwk": public_jwk(world.ids["customs"].signing_key),
            },
        )
    with pytest.raises(VerificationError) as caught:
        Opener(identity, world.trust).open(orjson.dumps(envelope), NOW)
    assert caught.value.reason == Reason.DECRYPT_FAILED
