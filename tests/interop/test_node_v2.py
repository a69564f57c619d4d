"""A second implementation agrees: ``node/verify-v2.mjs``, written from docs/envelope.md
alone, accepts the version-2 envelopes and evidence fusionbus makes and refuses tampered ones.

The verifier checks the ``fusionbus_batch`` shape, the leaf, the RFC 9162 inclusion path
and the detached batch JWS; given a recipient's key it unwraps the CEK by hand
(ECDH-ES+A256KW), decrypts, and checks the salted commitment; for evidence it checks
``H(salt || payload)`` against the envelope's commitment.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from broker.envelope import verify_envelope
from broker.errors import VerificationError
from broker.keys import public_jwk
from tests.interop._node import run_node
from tests.unit.envelope.conftest import World, make_world

VECTORS = Path(__file__).parent / "vectors" / "envelope-v2.json"
BATCH_SIZES = (1, 2, 3, 7, 16)

Verifier = Callable[[dict[str, Any]], dict[str, list[dict[str, Any]]]]


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture(scope="module")
def verify_v2(node_bin: str) -> Verifier:
    def run(request: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = run_node(node_bin, ["verify-v2.mjs"], request)
        return result

    return run


@pytest.fixture(scope="module")
def world() -> World:
    return make_world(23)


def _pem(world: World, agency: str) -> str:
    identity = world.ids[agency]
    return identity.decryption_keys[identity.encryption_kid].to_pem().decode()


def _jwks(world: World) -> dict[str, Any]:
    return {
        world.ids[a].signing_kid: public_jwk(world.ids[a].signing_key)
        for a in ("customs", "anf", "fia")
    }


def _batch(world: World, size: int) -> list[tuple[bytes, bytes]]:
    """``size`` fresh (envelope, payload) pairs sealed as one batch to ANF and FIA."""
    payloads = [orjson.dumps({"narrative": f"report {i} of {size}", "n": i}) for i in range(size)]
    sealer = world.sealer(version=2)
    envelopes = sealer.seal_batch([(world.header(to=("anf", "fia")), p) for p in payloads])
    return list(zip(envelopes, payloads, strict=True))


# --- the committed vectors --------------------------------------------------------------


def test_node_verifies_the_committed_vectors(verify_v2: Verifier) -> None:
    vectors = orjson.loads(VECTORS.read_bytes())
    cases, must_fail = vectors["cases"], vectors["must_fail"]
    sender_jwk = vectors["sender"]["signing_jwk"]
    result = verify_v2(
        {
            "envelopes": [c["envelope"] for c in cases]
            + [m["envelope"] for m in must_fail if "envelope" in m],
            "evidence": [c["evidence"] for c in cases]
            + [m["evidence"] for m in must_fail if "evidence" in m],
            "signing_jwks": {sender_jwk["kid"]: sender_jwk},
            "recipient_private_pem": vectors["recipient"]["private_pem"],
        }
    )
    n = len(cases)
    for case, opened, evidence in zip(cases, result["envelopes"], result["evidence"], strict=False):
        assert opened["ok"], opened
        assert evidence["ok"], evidence
        for got in (opened, evidence):
            assert got["leaf"] == case["leaf"]
            assert got["commit"] == case["commit"]
            assert got["salt"] == case["salt"]
            assert _unb64u(got["payload_b64u"]) == case["payload"].encode()
    refused = result["envelopes"][n:] + result["evidence"][n:]
    assert len(refused) == len(must_fail)
    for got, case in zip(refused, must_fail, strict=True):
        assert not got["ok"], case["why"]
        assert got["reason"] == case["reason"], (case["why"], got)


# --- fresh envelopes --------------------------------------------------------------------


@pytest.mark.parametrize("size", BATCH_SIZES)
def test_node_verifies_fresh_batches_as_platform_recipient_and_from_evidence(
    verify_v2: Verifier, world: World, size: int
) -> None:
    batch = _batch(world, size)
    envelopes = [e.decode() for e, _ in batch]
    evidence = [world.opener("anf").open(e, world.now).signed.decode() for e, _ in batch]
    platform = verify_v2({"envelopes": envelopes, "signing_jwks": _jwks(world)})
    by_agency = {
        agency: verify_v2(
            {
                "envelopes": envelopes,
                "evidence": evidence,
                "signing_jwks": _jwks(world),
                "recipient_private_pem": _pem(world, agency),
            }
        )
        for agency in ("anf", "fia")
    }
    roots = set()
    for i, (envelope, payload) in enumerate(batch):
        header = verify_envelope(envelope, world.trust, world.now)
        seen = [platform["envelopes"][i]]
        for result in by_agency.values():
            seen += [result["envelopes"][i], result["evidence"][i]]
        for got in seen:
            assert got["ok"], got
            assert got["message_id"] == str(header.message_id)
            assert got["leaf"] == seen[0]["leaf"]
            roots.add(got["root"])
        for got in seen[1:]:
            assert _unb64u(got["payload_b64u"]) == payload
            assert got["salt"] == seen[1]["salt"]  # one CEK: ANF's, FIA's and the evidence's
    assert len(roots) == 1
    if size == 1:
        assert roots == {platform["envelopes"][0]["leaf"]}  # a batch of one: the root is the leaf


# --- tampered envelopes -----------------------------------------------------------------


def _flip(text: str, at: int = 0) -> str:
    raw = bytearray(_unb64u(text))
    raw[at] ^= 1
    return _b64u(bytes(raw))


def _flip_path(env: dict[str, Any], _other: dict[str, Any]) -> None:
    env["unprotected"]["fusionbus_batch"]["path"][0] = _flip(
        env["unprotected"]["fusionbus_batch"]["path"][0]
    )


def _change_index(env: dict[str, Any], _other: dict[str, Any]) -> None:
    env["unprotected"]["fusionbus_batch"]["index"] ^= 1


def _change_size(env: dict[str, Any], _other: dict[str, Any]) -> None:
    env["unprotected"]["fusionbus_batch"]["size"] += 1


def _swap_sig(env: dict[str, Any], other: dict[str, Any]) -> None:
    env["unprotected"]["fusionbus_batch"]["sig"] = other["unprotected"]["fusionbus_batch"]["sig"]


def _alter_ciphertext(env: dict[str, Any], _other: dict[str, Any]) -> None:
    env["ciphertext"] = _flip(env["ciphertext"])


def _alter_anf_key(env: dict[str, Any], _other: dict[str, Any]) -> None:
    env["recipients"][0]["encrypted_key"] = _flip(env["recipients"][0]["encrypted_key"], 3)


def _alter_fia_key(env: dict[str, Any], _other: dict[str, Any]) -> None:
    env["recipients"][1]["encrypted_key"] = _flip(env["recipients"][1]["encrypted_key"], 3)


TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any], dict[str, Any]], None], str, str]] = {
    # name: (tamper, reason for the platform, reason for ANF, a recipient), the same in both
    "flip a path hash": (_flip_path, "bad_signature", "bad_signature"),
    "change index": (_change_index, "bad_signature", "bad_signature"),
    "change size": (_change_size, "bad_signature", "bad_signature"),
    "sig of another batch": (_swap_sig, "bad_signature", "bad_signature"),
    "alter the ciphertext": (_alter_ciphertext, "bad_signature", "decrypt_failed"),
    "alter ANF's encrypted_key": (_alter_anf_key, "bad_signature", "decrypt_failed"),
    "alter FIA's encrypted_key": (_alter_fia_key, "bad_signature", "bad_signature"),
}


@pytest.mark.parametrize("name", TAMPERINGS)
def test_node_refuses_a_tampered_envelope_as_fusionbus_does(
    verify_v2: Verifier, world: World, name: str
) -> None:
    tamper, platform_reason, recipient_reason = TAMPERINGS[name]
    envelope = orjson.loads(_batch(world, 7)[2][0])
    other = orjson.loads(_batch(world, 7)[2][0])
    tamper(envelope, other)
    data = orjson.dumps(envelope)
    with pytest.raises(VerificationError) as caught:
        verify_envelope(data, world.trust, world.now)
    assert caught.value.reason == platform_reason  # the Python side, for comparison
    with pytest.raises(VerificationError) as caught:
        world.opener("anf").open(data, world.now)
    assert caught.value.reason == recipient_reason

    platform = verify_v2({"envelopes": [data.decode()], "signing_jwks": _jwks(world)})
    recipient = verify_v2(
        {
            "envelopes": [data.decode()],
            "signing_jwks": _jwks(world),
            "recipient_private_pem": _pem(world, "anf"),
        }
    )
    for got, reason in (
        (platform["envelopes"][0], platform_reason),
        (recipient["envelopes"][0], recipient_reason),
    ):
        assert not got["ok"]
        assert got["reason"] == reason, got["detail"]


# --- shapes and the batch JWS header: both implementations give the same verdict -------------

Edit = Callable[[str, Callable[[str], str]], str]


def _resign(header: str) -> Callable[[str, Callable[[str], str]], str]:
    """An edit that replaces ``sig`` by a valid signature of the tree head under ``header``
    (with ``{customs}``/``{fia}`` standing for the kids), made with the kid's own key."""

    def edit(raw: str, sign: Callable[[str], str]) -> str:
        envelope = orjson.loads(raw)
        envelope["unprotected"]["fusionbus_batch"]["sig"] = sign(header)
        return orjson.dumps(envelope).decode()

    return edit


SHAPES: dict[str, tuple[Edit, str, str]] = {
    # name: (edit, fusionbus's reason, the Node verifier's reason)
    "size written 7.0": (
        lambda raw, _: raw.replace('"size":7', '"size":7.0'),
        "malformed",
        "malformed",
    ),
    "index true": (
        lambda raw, _: raw.replace('"index":2', '"index":true'),
        "malformed",
        "malformed",
    ),
    "index = size": (
        lambda raw, _: raw.replace('"index":2', '"index":7'),
        "malformed",
        "malformed",
    ),
    "size 257": (lambda raw, _: raw.replace('"size":7', '"size":257'), "malformed", "malformed"),
    "duplicate size": (
        lambda raw, _: raw.replace('"size":7', '"size":7,"size":7'),
        "malformed",
        "malformed",
    ),
    "extra member in fusionbus_batch": (
        lambda raw, _: raw.replace('"size":7', '"size":7,"x":1'),
        "malformed",
        "malformed",
    ),
    "extra member in unprotected": (
        lambda raw, _: raw.replace('"unprotected":{', '"unprotected":{"x":1,'),
        "malformed",
        "malformed",
    ),
    "sig not detached": (
        lambda raw, _: raw.replace("..", ".e30.", 1),
        "malformed",
        "malformed",
    ),
    "re-signed, members reordered": (
        _resign('{"typ":"fusionbus-batch+jws","kid":"{customs}","alg":"Ed25519"}'),
        "ok",
        "ok",
    ),
    "re-signed with alg EdDSA": (
        _resign('{"alg":"EdDSA","kid":"{customs}","typ":"fusionbus-batch+jws"}'),
        "bad_signature",
        "bad_signature",
    ),
    "re-signed by FIA under FIA's kid": (
        _resign('{"alg":"Ed25519","kid":"{fia}","typ":"fusionbus-batch+jws"}'),
        "header_mismatch",
        "header_mismatch",
    ),
    # The spec gives the batch JWS header as exactly alg, kid and typ, and says alg, typ and
    # kid are checked "as for version 1's outer signature" -> bad_signature; it does not
    # say what an extra member is. fusionbus calls it malformed, this verifier
    # bad_signature: both refuse it.
    "re-signed with an extra header member": (
        _resign('{"alg":"Ed25519","kid":"{customs}","typ":"fusionbus-batch+jws","x":1}'),
        "malformed",
        "bad_signature",
    ),
}


@pytest.mark.parametrize("name", SHAPES)
def test_node_and_fusionbus_agree_on_shapes_and_the_batch_header(
    verify_v2: Verifier, world: World, name: str
) -> None:
    edit, python_reason, node_reason = SHAPES[name]
    envelope = _batch(world, 7)[2][0].decode()
    jwks = _jwks(world)
    untouched = verify_v2({"envelopes": [envelope], "signing_jwks": jwks})["envelopes"][0]
    root = bytes.fromhex(untouched["root"])  # the verifier's own root: the tree head to re-sign

    def sign(template: str) -> str:
        kids = {a: world.ids[a].signing_kid for a in ("customs", "fia")}
        header = template.replace("{customs}", kids["customs"]).replace("{fia}", kids["fia"])
        signer = next(a for a, kid in kids.items() if f'"{kid}"' in header)
        head = _b64u(b'{"root":"%s","size":7}' % _b64u(root).encode())
        signing_input = f"{_b64u(header.encode())}.{head}".encode()
        signature = world.ids[signer].signing_key.sign(signing_input)
        return f"{_b64u(header.encode())}..{_b64u(signature)}"

    data = edit(envelope, sign)
    assert data != envelope
    try:
        verify_envelope(data.encode(), world.trust, world.now)
        python = "ok"
    except VerificationError as caught:
        python = caught.reason.value
    assert python == python_reason
    got = verify_v2({"envelopes": [data], "signing_jwks": jwks})["envelopes"][0]
    assert got["reason"] == node_reason, got["detail"]
    assert got["ok"] is (node_reason == "ok")
