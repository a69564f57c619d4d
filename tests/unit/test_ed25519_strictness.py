"""What each Ed25519 verifier accepts beyond what an honest signer makes (RFC 8032 §5.1.7).

pyca/cryptography (OpenSSL) is what :class:`broker._crypto.VerifyKey` used until envelope
version 2; libsodium through PyNaCl (:func:`broker._sodium.verify_ed25519`) is what it uses
now, and it refuses to load a key libsodium does not take for an honest one (small order,
non-canonical, outside the prime-order subgroup). Both libraries refuse a malleated ``S``
(``S >= L``) and a non-canonical ``R``; only libsodium refuses small-order keys and ``R``
and non-canonical key encodings. The first table is made here from a fixed key; the second
is the twelve edge cases of ed25519-speccheck (Chalkias, Garillot, Nikolaenko, "Taming the
many EdDSAs", 2020). If an upgrade of either library changes a row, this file says which.
"""

from __future__ import annotations

from typing import NamedTuple

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from broker import _sodium
from broker._crypto import SigningKey, VerifyKey
from broker._sodium import verify_ed25519
from broker.errors import ConfigError

L = 2**252 + 27742317777372353535851937790883648493
"""The order of the base point."""
P = 2**255 - 19


def _point(y: int, sign: int = 0) -> bytes:
    """The 32-byte encoding of ``y`` with the sign bit of ``x`` (not reduced mod p)."""
    return (y | sign << 255).to_bytes(32, "little")


IDENTITY = _point(1)
"""The neutral point (order 1): with ``R`` = it and ``S = 0`` it "signs" every message."""
ORDER_8 = bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa")

KEY = SigningKey.generate(lambda n: bytes(range(n)))
MESSAGE = b'{"title":"container CSQU3054383"}'
GENUINE = KEY.sign(MESSAGE)
S = int.from_bytes(GENUINE[32:], "little")


def _pyca(public: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


def _fusionbus(public: bytes, signature: bytes, message: bytes) -> bool:
    """What fusionbus accepts: a key it loads, and a signature libsodium verifies."""
    try:
        key = VerifyKey(public)
    except ValueError:
        return False
    return key.verify(signature, message)


class Case(NamedTuple):
    name: str
    public: bytes
    signature: bytes
    message: bytes
    pyca: bool
    """Whether pyca/cryptography accepts it."""
    sodium: bool
    """Whether libsodium (PyNaCl) accepts it."""


MALLEATED = GENUINE[:32] + (S + L).to_bytes(32, "little")
MALLEATED_TWICE = GENUINE[:32] + (S + 2 * L).to_bytes(32, "little")
OWN = [
    ("genuine", KEY.public.raw, GENUINE, MESSAGE, True, True),
    ("other message", KEY.public.raw, GENUINE, MESSAGE + b" ", False, False),
    ("S + L", KEY.public.raw, MALLEATED, MESSAGE, False, False),
    ("S + 2L", KEY.public.raw, MALLEATED_TWICE, MESSAGE, False, False),
    ("identity key, R identity, S 0", IDENTITY, IDENTITY + bytes(32), MESSAGE, True, False),
    ("same forgery, another message", IDENTITY, IDENTITY + bytes(32), b"anything", True, False),
    ("order-8 key and R, S 0", ORDER_8, ORDER_8 + bytes(32), MESSAGE, False, False),
    ("key identity as y + p", _point(1 + P), IDENTITY + bytes(32), MESSAGE, True, False),
    ("key identity with x = -0", _point(1, 1), IDENTITY + bytes(32), MESSAGE, True, False),
    ("R identity as y + p", IDENTITY, _point(1 + P) + bytes(32), MESSAGE, False, False),
    ("R identity with x = -0", IDENTITY, _point(1, 1) + bytes(32), MESSAGE, False, False),
]  # fmt: skip


@pytest.mark.parametrize("case", [Case(*row) for row in OWN], ids=[row[0] for row in OWN])
def test_own_vectors(case: Case) -> None:
    assert _pyca(case.public, case.signature, case.message) is case.pyca
    assert verify_ed25519(case.public, case.signature, case.message) is case.sodium
    assert _fusionbus(case.public, case.signature, case.message) is (case.name == "genuine")


# ed25519-speccheck cases.txt: message, public key, R and S of the signature (hex).
SPECCHECK = [
    (
        "8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    (
        "aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
        "8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e",
    ),
    (
        "9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f",
        "87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009",
    ),
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed512",
        "5ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09",
    ),
    (
        "e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c",
        "cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d",
        "21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7",
        "e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405",
    ),
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e",
        "547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514",
    ),
    (
        "85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40",
        "442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623",
        "8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa1942",
        "7e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22",
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f",
    ),
    (
        "9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41",
        "f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "ca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908",
    ),
    (
        "e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc",
        "a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
    (
        "39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dc",
        "a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04",
    ),
]
"""0: S = 0, small A and R; 1-2: small A or R; 3: mixed-order A and R (accepted by
every library); 4-5: pass only a cofactored check; 6-7: S >= L; 8-9: non-canonical R,
10-11: non-canonical A (each the order-2 point (0, -1) encoded with the sign bit of x set)."""
PYCA_ACCEPTS = {0, 1, 2, 3, 11}
SODIUM_ACCEPTS = {3}


@pytest.mark.parametrize("index", range(len(SPECCHECK)))
def test_speccheck_vectors(index: int) -> None:
    message, public, r, s = (bytes.fromhex(h) for h in SPECCHECK[index])
    signature = r + s
    assert _pyca(public, signature, message) is (index in PYCA_ACCEPTS)
    assert verify_ed25519(public, signature, message) is (index in SODIUM_ACCEPTS)
    assert _fusionbus(public, signature, message) is False  # 3's mixed-order key: not loaded


def test_a_small_order_or_non_canonical_key_is_refused_where_keys_are_read() -> None:
    for bad in (IDENTITY, ORDER_8, _point(1 + P), _point(1, 1)):
        with pytest.raises(ValueError, match="not a usable Ed25519 public key"):
            VerifyKey(bad)
    VerifyKey(KEY.public.raw)  # an honest key loads


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (KEY.public.raw[:31], GENUINE),
        (KEY.public.raw + b"\0", GENUINE),
        (KEY.public.raw, GENUINE[:63]),
        (KEY.public.raw, GENUINE + MESSAGE[:1]),
        (b"", b""),
    ],
)
def test_a_wrong_length_is_false_not_an_error(public: bytes, signature: bytes) -> None:
    assert verify_ed25519(public, signature, MESSAGE) is False


def test_a_lenient_libsodium_is_refused_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sodium, "crypto_sign_open", lambda signed, public: signed[64:])
    with pytest.raises(ConfigError, match="does not verify Ed25519 strictly"):
        _sodium._self_test()
