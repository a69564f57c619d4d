"""Build an "invisible salamander" for AES-256-GCM: one ciphertext and tag that two keys accept.

GCM is not key-committing (Dodis, Grubbs, Ristenpart and Woodage, CRYPTO 2018; Len, Grubbs
and Ristenpart, "Partitioning Oracle Attacks", USENIX Security 2021): whoever knows two keys
can make one ``ciphertext || tag`` that decrypts, with a valid tag, under both of them, to two
different plaintexts. Tests use this to check that a receiver which holds several candidate
keys cannot be made to accept one message as two. Attack code for tests, not a primitive:
the field arithmetic is plain Python, and AES itself comes from ``cryptography``.

The math, in the notation of NIST SP 800-38D, for a key ``K`` and a 96-bit IV:

- ``H = AES_K(0^128)`` is the hash key; ``J0 = IV || 0^31 || 1``; the keystream block ``i``
  (``i = 0, 1, ...``) is ``AES_K(IV || [i + 2]_32)``, so ``C = P XOR keystream``.
- The blocks hashed are ``A_1 .. A_u`` (the AAD, the last one zero-padded), ``C_1 .. C_n``
  (the ciphertext, likewise) and the length block ``L = [8*len(A)]_64 || [8*len(C)]_64``.
  GHASH is Horner's rule over GF(2^128), ``Y_0 = 0``, ``Y_i = (Y_{i-1} XOR X_i) * H``, so
  for ``m`` blocks ``GHASH_H(X) = sum_i X_i * H^(m - i + 1)``: linear in every block, and
  the length block is multiplied by ``H^1``, the last ciphertext block by ``H^2``.
- ``tag = GHASH_H(A, C) XOR AES_K(J0)``.

Fix the AAD, the lengths and every ciphertext block but the last, ``C_n = X``. Writing
``G_k`` for GHASH under ``H_k`` with ``X = 0`` and ``S_k = AES_{K_k}(J0)``, the two tags are
``T_k = G_k XOR S_k XOR X * H_k^2``. They are equal exactly when

    X * (H_1^2 XOR H_2^2) = G_1 XOR S_1 XOR G_2 XOR S_2

and, the field having characteristic 2, ``H_1^2 XOR H_2^2 = (H_1 XOR H_2)^2``: the equation
has one solution whenever ``H_1 != H_2``. AES being a permutation per key, two distinct keys
give equal hash keys with probability about 2^-128; ``salamander`` raises if they do.

What each key decrypts the ``16 * blocks`` bytes of ciphertext to:

- under ``key1``: ``prefix``, then zero bytes up to ``16 * (blocks - 1)``, then 16 bytes
  that are the solved block ``X`` XOR ``key1``'s last keystream block (unpredictable);
- under ``key2``: ``16 * blocks`` bytes of ciphertext XOR ``key2``'s keystream, all of them
  unpredictable (nothing is chosen under ``key2``).

Bit order: GCM reads a 16-byte block as a polynomial whose x^0 coefficient is the most
significant bit of the first byte. With the block as a big-endian integer, x^0 is the top
bit (``1 << 127``), x^127 is bit 0, and "multiply by x" is a right shift, reduced by
``R = 0xE1 || 0^120`` (x^128 = 1 + x + x^2 + x^7).
"""

from __future__ import annotations

from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["Salamander", "gf_inv", "gf_mul", "ghash", "salamander"]

_BLOCK = 16
_R = 0xE1 << 120  # x^128 reduced: 1 + x + x^2 + x^7, in GCM's reflected bit order
_ONE = 1 << 127  # the polynomial 1: its x^0 coefficient is the integer's top bit


class Salamander(NamedTuple):
    """``ciphertext`` and ``tag`` that ``AESGCM(key).decrypt(iv, ciphertext + tag, aad)``
    accepts for both keys given to ``salamander``."""

    ciphertext: bytes
    tag: bytes


def gf_mul(x: int, y: int) -> int:
    """``x * y`` in GF(2^128), GCM's bit order (SP 800-38D, algorithm 1)."""
    z = 0
    v = y
    for bit in range(127, -1, -1):  # x's coefficients of x^0 .. x^127, top bit first
        if (x >> bit) & 1:
            z ^= v
        # v := v * x; the x^127 coefficient (bit 0) overflows into x^128, which is R.
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def gf_inv(x: int) -> int:
    """``x^-1`` in GF(2^128): ``x^(2^128 - 2)``, as the multiplicative group has order
    ``2^128 - 1``. ``2^128 - 2`` is 127 ones then a zero in binary, so square-and-multiply
    is 127 rounds of (square, multiply by x) and a final squaring."""
    if x == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^128)")
    result = x
    for _ in range(126):
        result = gf_mul(gf_mul(result, result), x)
    return gf_mul(result, result)


def _blocks(data: bytes) -> list[int]:
    """``data`` as 128-bit integers, the last block zero-padded (GHASH's padding)."""
    return [
        int.from_bytes(data[i : i + _BLOCK].ljust(_BLOCK, b"\0"), "big")
        for i in range(0, len(data), _BLOCK)
    ]


def ghash(h: int, aad: bytes, ciphertext: bytes) -> int:
    """GHASH_H over the padded AAD, the padded ciphertext and the length block."""
    lengths = (8 * len(aad)) << 64 | 8 * len(ciphertext)
    y = 0
    for block in [*_blocks(aad), *_blocks(ciphertext), lengths]:
        y = gf_mul(y ^ block, h)
    return y


def _aes(key: bytes, blocks: list[bytes]) -> list[int]:
    """AES_key of each 16-byte block, as integers (one ECB pass)."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - raw AES blocks
    out = encryptor.update(b"".join(blocks)) + encryptor.finalize()
    return [int.from_bytes(out[i : i + _BLOCK], "big") for i in range(0, len(out), _BLOCK)]


def salamander(
    key1: bytes, key2: bytes, iv: bytes, aad: bytes, *, blocks: int, prefix: bytes = b""
) -> Salamander:
    """A ``16 * blocks``-byte ciphertext and a 16-byte tag valid under both keys.

    Under ``key1`` it decrypts to ``prefix``, zero bytes up to ``16 * (blocks - 1)``, then
    16 unpredictable bytes; under ``key2`` to ``16 * blocks`` unpredictable bytes (see the
    module docstring for the math). ``prefix`` may be at most ``16 * (blocks - 1)`` bytes.
    """
    if len(key1) != 32 or len(key2) != 32:
        raise ValueError("key1 and key2 must be 32-byte AES-256 keys")
    if key1 == key2:
        raise ValueError("key1 and key2 must differ: a salamander needs two keys")
    if len(iv) != 12:
        raise ValueError(f"iv must be 12 bytes (96 bits, J0 = IV || 0^31 || 1), not {len(iv)}")
    if blocks < 1:
        raise ValueError(f"blocks must be at least 1 (the block solved for), not {blocks}")
    if len(prefix) > _BLOCK * (blocks - 1):
        raise ValueError(
            f"a {len(prefix)}-byte prefix needs blocks >= {-(-len(prefix) // _BLOCK) + 1}: "
            "the last block is the one solved for"
        )

    # Per key, one ECB pass: H = AES_K(0), S = AES_K(J0), then the keystream blocks
    # AES_K(IV || [i + 2]_32) that encrypt the chosen blocks, i = 0 .. blocks - 2 (key1 only).
    inputs = [bytes(_BLOCK), iv + (1).to_bytes(4, "big")]
    inputs += [iv + (i + 2).to_bytes(4, "big") for i in range(blocks - 1)]
    h1, s1, *stream1 = _aes(key1, inputs)
    h2, s2 = _aes(key2, inputs[:2])

    # C_1 .. C_{n-1} encrypt the zero-padded prefix under key1; C_n = X starts as zero.
    chosen = prefix.ljust(_BLOCK * (blocks - 1), b"\0")
    fixed = [p ^ k for p, k in zip(_blocks(chosen), stream1, strict=True)]
    draft = b"".join(c.to_bytes(_BLOCK, "big") for c in [*fixed, 0])

    # X * (H1 XOR H2)^2 = G1 XOR S1 XOR G2 XOR S2, with G_k the GHASH of the draft (X = 0).
    h_diff = h1 ^ h2
    if h_diff == 0:
        raise ValueError("key1 and key2 have the same GHASH key AES_K(0): no block can be solved")
    t1 = ghash(h1, aad, draft) ^ s1  # key1's tag with X = 0
    t2 = ghash(h2, aad, draft) ^ s2
    x = gf_mul(t1 ^ t2, gf_inv(gf_mul(h_diff, h_diff)))

    # Setting C_n = X adds X * H_k^2 to each key's tag; by the choice of X both now agree.
    tag = t1 ^ gf_mul(x, gf_mul(h1, h1))
    ciphertext = draft[:-_BLOCK] + x.to_bytes(_BLOCK, "big")
    return Salamander(ciphertext=ciphertext, tag=tag.to_bytes(_BLOCK, "big"))
