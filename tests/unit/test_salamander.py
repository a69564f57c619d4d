"""The salamander helper: one AES-256-GCM ciphertext and tag that two keys both accept."""

from __future__ import annotations

import random

import orjson
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.unit.salamander import gf_inv, gf_mul, ghash, salamander

# (blocks, prefix length, aad length): aad lengths on and off the 16-byte grid, prefixes that
# fill their blocks exactly, partly, or not at all; ciphertexts are always 16 * blocks bytes.
CASES = [
    (1, 0, 0),
    (1, 0, 1),
    (2, 16, 15),
    (2, 5, 16),
    (3, 32, 17),
    (3, 31, 0),
    (5, 0, 33),
    (8, 100, 48),
    (64, 1000, 7),
]


@pytest.mark.parametrize(("blocks", "prefix_len", "aad_len"), CASES)
@pytest.mark.parametrize("seed", range(4))
def test_both_keys_accept_one_ciphertext(
    seed: int, blocks: int, prefix_len: int, aad_len: int
) -> None:
    rng = random.Random(f"{seed}/{blocks}/{prefix_len}/{aad_len}")
    key1, key2 = rng.randbytes(32), rng.randbytes(32)
    iv, aad, prefix = rng.randbytes(12), rng.randbytes(aad_len), rng.randbytes(prefix_len)

    ciphertext, tag = salamander(key1, key2, iv, aad, blocks=blocks, prefix=prefix)

    assert len(ciphertext) == 16 * blocks
    assert len(tag) == 16
    plain1 = AESGCM(key1).decrypt(iv, ciphertext + tag, aad)
    plain2 = AESGCM(key2).decrypt(iv, ciphertext + tag, aad)
    assert plain1 != plain2
    assert plain1.startswith(prefix)
    assert plain1[prefix_len : 16 * (blocks - 1)] == bytes(16 * (blocks - 1) - prefix_len)
    assert len(plain1) == len(plain2) == len(ciphertext)


def test_a_json_report_under_one_key_and_noise_under_the_other() -> None:
    rng = random.Random("report")
    key1, key2, iv = rng.randbytes(32), rng.randbytes(32), rng.randbytes(12)
    report = orjson.dumps({"category": "trafficking", "jurisdiction": "DE", "text": "x" * 40})
    aad = b'{"enc":"A256GCM"}'
    blocks = -(-len(report) // 16) + 1

    ciphertext, tag = salamander(key1, key2, iv, aad, blocks=blocks, prefix=report)

    plain1 = AESGCM(key1).decrypt(iv, ciphertext + tag, aad)
    plain2 = AESGCM(key2).decrypt(iv, ciphertext + tag, aad)
    assert plain1[: len(report)] == report
    assert orjson.loads(plain1[: len(report)])["jurisdiction"] == "DE"
    assert not plain2.startswith(report[:16])


def test_the_tag_is_bound_to_the_aad_and_iv() -> None:
    """Still GCM: the forgery holds for the AAD and IV it was solved for, no others."""
    rng = random.Random("bound")
    key1, key2, iv = rng.randbytes(32), rng.randbytes(32), rng.randbytes(12)
    ciphertext, tag = salamander(key1, key2, iv, b"aad", blocks=2)
    for key in (key1, key2):
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(iv, ciphertext + tag, b"aad!")
        with pytest.raises(InvalidTag):
            AESGCM(key).decrypt(bytes(12), ciphertext + tag, b"aad")


def test_ghash_matches_cryptography() -> None:
    """The helper's GHASH, plus AES_K(J0), is the tag ``cryptography`` computes."""
    rng = random.Random("ghash")
    for aad_len, plain_len in [(0, 0), (1, 1), (16, 16), (20, 47), (33, 64)]:
        key, iv = rng.randbytes(32), rng.randbytes(12)
        aad, plain = rng.randbytes(aad_len), rng.randbytes(plain_len)
        sealed = AESGCM(key).encrypt(iv, plain, aad)
        ciphertext, tag = sealed[:-16], sealed[-16:]
        encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - raw AES blocks
        both = encryptor.update(bytes(16) + iv + b"\0\0\0\1") + encryptor.finalize()
        h, s = int.from_bytes(both[:16], "big"), int.from_bytes(both[16:], "big")
        assert (ghash(h, aad, ciphertext) ^ s).to_bytes(16, "big") == tag


def test_field_arithmetic() -> None:
    rng = random.Random("field")
    one = 1 << 127
    for _ in range(20):
        a, b, c = (rng.getrandbits(128) or 1 for _ in range(3))
        assert gf_mul(a, one) == a
        assert gf_mul(a, b) == gf_mul(b, a)
        assert gf_mul(a, b ^ c) == gf_mul(a, b) ^ gf_mul(a, c)
        assert gf_mul(gf_mul(a, b), c) == gf_mul(a, gf_mul(b, c))
        assert gf_mul(a, gf_inv(a)) == one
    with pytest.raises(ZeroDivisionError):
        gf_inv(0)


@pytest.mark.parametrize(
    ("key2", "iv", "blocks", "prefix", "message"),
    [
        (bytes(32), bytes(12), 2, b"", "must differ"),
        (bytes(16), bytes(12), 2, b"", "32-byte"),
        (b"\1" * 32, bytes(16), 2, b"", "12 bytes"),
        (b"\1" * 32, bytes(12), 0, b"", "at least 1"),
        (b"\1" * 32, bytes(12), 2, bytes(17), "blocks >= 3"),
    ],
)
def test_refuses_what_it_cannot_build(
    key2: bytes, iv: bytes, blocks: int, prefix: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        salamander(bytes(32), key2, iv, b"", blocks=blocks, prefix=prefix)
