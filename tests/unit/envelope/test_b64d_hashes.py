"""b64d_hashes: a proof's hashes in one decode, refusing exactly what b64d refuses."""

from __future__ import annotations

import os
import random

import pytest

from broker._jose import b64d, b64d_hashes, b64u

_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=é "


def _one_by_one(texts: list[str]) -> tuple[bytes, ...] | None:
    try:
        values = tuple(b64d(text) for text in texts)
    except ValueError:
        return None
    return values if all(len(value) == 32 for value in values) else None


def test_genuine_hashes_decode_to_their_bytes() -> None:
    values = [os.urandom(32) for _ in range(9)]
    assert b64d_hashes([b64u(v) for v in values]) == tuple(values)
    assert b64d_hashes([]) == ()


@pytest.mark.parametrize(
    "bad",
    [
        b64u(bytes(32))[:-1] + "B",  # stray bits in the last character: not canonical
        b64u(bytes(32))[:-1] + "=",  # padding
        "+" + b64u(bytes(32))[1:],  # the standard alphabet, not base64url
        "/" + b64u(bytes(32))[1:],
        "é" + b64u(bytes(32))[2:],  # not ASCII (43 characters all the same)
        b64u(bytes(32))[:-1],  # 42 characters
        b64u(bytes(33)),  # 44 characters
    ],
)
def test_what_b64d_refuses_is_refused_wherever_it_stands(bad: str) -> None:
    good = b64u(os.urandom(32))
    for texts in ([bad], [good, bad], [bad, good, good]):
        assert _one_by_one(texts) is None
        assert b64d_hashes(texts) is None


def test_random_strings_are_judged_as_b64d_judges_them() -> None:
    rng = random.Random(20261202)
    genuine = b64u(bytes(32))
    for _ in range(3000):
        text = list(genuine)
        for _ in range(rng.randint(1, 3)):  # a few characters changed, anywhere
            text[rng.randrange(43)] = rng.choice(_CHARS)
        texts = [b64u(os.urandom(32)), "".join(text)]
        assert b64d_hashes(texts) == _one_by_one(texts), texts
