"""Cross-checks with the Python JOSE libraries: jwcrypto and joserfc open our envelopes,
and we open an envelope jwcrypto builds (its own CEK, epk and key wrap)."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from joserfc import jwe as joserfc_jwe
from joserfc import jws as joserfc_jws
from joserfc.jwk import OKPKey
from joserfc.registry import HeaderParameter
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from broker.envelope import Opener, verify_envelope
from broker.envelope._wire import b64d, b64e
from broker.keys import Identity, public_jwk

from .conftest import NOW, World


def _private_jwcrypto(identity: Identity) -> jwcrypto_jwk.JWK:
    return jwcrypto_jwk.JWK.from_pem(identity.decryption_keys[identity.encryption_kid].to_pem())


def _any(_: Any) -> None:
    return None


def test_jwcrypto_decrypts_and_verifies_our_envelope(world: World) -> None:
    data = world.seal(b'{"x":1}', to=("anf", "fia"), version=1)
    for agency in ("anf", "fia"):
        token = jwcrypto_jwe.JWE()
        token.deserialize(data.decode(), key=_private_jwcrypto(world.ids[agency]))
        inner = jwcrypto_jws.JWS()
        sender = jwcrypto_jwk.JWK(**public_jwk(world.ids["customs"].signing_key))
        inner.deserialize(token.payload.decode(), key=sender, alg="Ed25519")
        assert inner.payload == b'{"x":1}'


def test_joserfc_decrypts_and_verifies_our_envelope(world: World) -> None:
    data = world.seal(b'{"x":2}', to=("anf", "fia"), version=1)
    anf = world.ids["anf"]
    key = OKPKey.import_key(anf.decryption_keys[anf.encryption_kid].to_pem())
    registry = joserfc_jwe.JWERegistry(
        header_registry={
            "fusionbus": HeaderParameter("routing header", _any),
            "fusionbus_sig": HeaderParameter("outer signature", "str"),
        },
        verify_all_recipients=False,
    )
    result = joserfc_jwe.decrypt_json(orjson.loads(data), key, registry=registry)
    jws_registry = joserfc_jws.JWSRegistry(
        header_registry={"fusionbus": HeaderParameter("routing header", _any)},
        algorithms=["Ed25519"],
    )
    jws_registry.max_header_length = 8192  # joserfc's default of 512 is below our header
    sender = OKPKey.import_key(dict(public_jwk(world.ids["customs"].signing_key).items()))
    assert result.plaintext is not None
    inner = joserfc_jws.deserialize_compact(result.plaintext, sender, registry=jws_registry)
    assert inner.payload == b'{"x":2}'
    assert inner.headers()["fusionbus"] == result.protected["fusionbus"]


def test_we_open_what_jwcrypto_builds(world: World) -> None:
    header = world.header(to=("anf", "fia"), version=1)  # a version-1 envelope, by jwcrypto
    routing = header.model_dump(mode="json")
    customs = world.ids["customs"]
    signer = jwcrypto_jwk.JWK.from_pem(customs.signing_key.to_pem())
    inner = jwcrypto_jws.JWS(b'{"from":"jwcrypto"}')
    inner.add_signature(
        signer,
        protected={
            "alg": "Ed25519",
            "kid": customs.signing_kid,
            "typ": "fusionbus-report+jws",
            "fusionbus": routing,
        },
    )
    token = jwcrypto_jwe.JWE(
        inner.serialize(compact=True).encode(),
        protected={
            "enc": "A256GCM",
            "typ": "fusionbus-envelope+jwe",
            "cty": "JOSE",
            "fusionbus": routing,
        },
    )
    for agency in ("anf", "fia"):
        public = jwcrypto_jwk.JWK(**public_jwk(world.ids[agency].encryption_key))
        token.add_recipient(public, header={"alg": "ECDH-ES+A256KW", "kid": public.kid})
    doc = orjson.loads(token.serialize())
    tail = "".join(
        f".{r['header']['kid']}.{r['header']['epk']['x']}.{r['encrypted_key']}"
        for r in doc["recipients"]
    )
    digest_input = ".".join((doc["protected"], doc["iv"], doc["ciphertext"], doc["tag"])) + tail
    outer = jwcrypto_jws.JWS(hashlib.sha256(digest_input.encode()).digest())
    outer.add_signature(
        signer,
        protected={
            "alg": "Ed25519",
            "kid": customs.signing_kid,
            "typ": "fusionbus-envelope-sig+jws",
        },
    )
    protected, _, signature = outer.serialize(compact=True).split(".")
    doc["unprotected"] = {"fusionbus_sig": f"{protected}..{signature}"}
    data = orjson.dumps(doc)
    assert verify_envelope(data, world.trust, NOW) == header
    for agency in ("anf", "fia"):
        assert world.opener(agency).open(data, NOW).payload == b'{"from":"jwcrypto"}'


def test_base64url_is_strict_and_canonical() -> None:
    for good in (b"", b"\x00", b"\xff\xfe", b"abc", bytes(range(256))):
        assert b64d(b64e(good).decode()) == good
    for bad in ("A", "YR", "YQ=", "ab+/", "ab/_", "a b", "é", 5, "Y Q"):
        try:
            b64d(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


def test_the_opener_cache_is_keyed_by_the_wrapped_key(world: World) -> None:
    opener: Opener = world.opener("anf")
    a = world.sealer().seal(world.header(), b"a")
    b = world.sealer().seal(world.header(), b"b")  # another sealer: another epoch and CEK
    assert opener.open(a, NOW).payload == b"a"
    assert opener.open(b, NOW).payload == b"b"


def test_jwcrypto_and_joserfc_decrypt_a_version_two_envelope_to_the_report_itself(
    world: World,
) -> None:
    [data, _] = world.sealer(version=2).seal_batch(
        [(world.header(to=("anf", "fia")), b'{"x":3}'), (world.header(to=("anf", "fia")), b"{}")]
    )
    for agency in ("anf", "fia"):
        token = jwcrypto_jwe.JWE()
        token.deserialize(data.decode(), key=_private_jwcrypto(world.ids[agency]))
        assert token.payload == b'{"x":3}'  # no JWS inside: one routing header, one base64
    anf = world.ids["anf"]
    registry = joserfc_jwe.JWERegistry(
        header_registry={
            "fusionbus": HeaderParameter("routing header", _any),
            "fusionbus_batch": HeaderParameter("batch proof", _any),
        },
        verify_all_recipients=False,
    )
    key = OKPKey.import_key(anf.decryption_keys[anf.encryption_kid].to_pem())
    result = joserfc_jwe.decrypt_json(orjson.loads(data), key, registry=registry)
    assert result.plaintext == b'{"x":3}'
