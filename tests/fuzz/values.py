"""Hostile values: odd JSON scalars, other spellings of base64url and of routing fields.

Each function takes the ``random.Random`` of the generator and the value it replaces, so
that the same seed gives the same values.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from broker.envelope._wire import b64d, b64e

from .corpus import Base
from .jsontext import Part, Path, Raw

__all__ = [
    "DEPTHS",
    "LIFETIMES",
    "MIB",
    "NEW_MEMBERS",
    "SCALARS",
    "SIZES",
    "b64_variant",
    "deep",
    "deep_object",
    "hostile",
    "is_b64_position",
    "iso",
    "spellings",
    "text_variants",
]

MIB: Final = 1_048_576
_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def deep(depth: int, *, close: bool = True) -> Raw:
    return Raw(b"[" * depth + (b"]" * depth if close else b""))


def deep_object(depth: int) -> Raw:
    return Raw(b'{"a":' * depth + b"1" + b"}" * depth)


SCALARS: Final[tuple[Any, ...]] = (
    None, True, False, 0, 1, -1, 1.0, -0.0, 0.5, 1e308, 2**31, 2**53 + 1, 2**63, 2**64,
    -(2**63) - 1, 10**30, "", " ", "x", "null", "\u0000", "\ud800", "\udfff\ud800", "é",
    "\u202e", "\ufeff", "\U0001f600", [], {}, [[[]]], {"": None},
    Raw(b"NaN"), Raw(b"Infinity"), Raw(b"-Infinity"), Raw(b"1e999"), Raw(b"-0"), Raw(b"01"),
    Raw(b"1E+2"), Raw(b"0x10"), Raw(b"+1"), Raw(b".5"), Raw(b"'x'"), Raw(b'"\\x41"'),
    Raw(b'"\\u00"'), Raw(b'"\\uDEAD"'), Raw(b'"\\ud800\\u0041"'), Raw(b'"\xff"'),
    Raw(b'"\xed\xa0\x80"'), Raw(b'"\xc0\xaf"'), Raw(b'"tab\tinside"'), Raw(b"undefined"),
    Raw(b"[1,]"), Raw(b"{,}"), Raw(b""),
)  # fmt: skip
SIZES: Final = (2, 127, 128, 129, 4096, 16_383, 16_384, 16_385, 65_536, 400_000, MIB - 2048)
DEPTHS: Final = (2, 7, 8, 9, 64, 199, 200, 201, 1000, 100_000)


def text_variants(rng: random.Random, old: str) -> list[Any]:
    cut = rng.randrange(len(old) + 1)
    return [
        old.upper(),
        old.lower(),
        old + "\n",
        " " + old,
        old[:-1],
        old[1:],
        old + old,
        old[:cut] + rng.choice(_ALPHABET) + old[cut + 1 :],
        old[:cut] + "." + old[cut:],
        old[:cut] + "\u0000" + old[cut:],
        old[:cut] + "\ud800" + old[cut:],
        old[:cut] + "\u0130" + old[cut:],  # İ, whose lower case is two characters
        [old],
        {"value": old},
    ]


def hostile(rng: random.Random, old: Any) -> Any:
    """A value to put where ``old`` was: another type, an odd scalar, or a huge one."""
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(SCALARS)
    if roll < 0.8 and isinstance(old, str):
        return rng.choice(text_variants(rng, old))
    if roll < 0.85:
        return [old] * rng.choice((2, 3, 65))
    if roll < 0.9:
        return rng.choice((deep, lambda d: deep_object(min(d, 5000))))(rng.choice(DEPTHS))
    if roll < 0.95:
        return "A" * rng.choice(SIZES)
    return rng.choice((-1, 1)) * rng.randrange(2**70)


NEW_MEMBERS: Final = (
    "zip", "crit", "aad", "apu", "apv", "jku", "x5u", "b64", "alg", "kid", "epk", "enc",
    "header", "unprotected", "fusionbus", "fusionbus_sig", "", " ", "protected ", "PROTECTED",
    "\u0000", "\ud800", "é", "__proto__", "constructor",
)  # fmt: skip


LIFETIMES: Final = (
    (timedelta(days=-2), timedelta(days=-1)),
    (timedelta(hours=-1), timedelta(0)),
    (timedelta(hours=-1), timedelta(seconds=1)),
    (timedelta(minutes=5), timedelta(hours=1)),
    (timedelta(minutes=5, seconds=1), timedelta(hours=1)),
    (timedelta(days=-1), timedelta(days=30)),
    (timedelta(days=-1), timedelta(days=30, seconds=1)),
    (timedelta(days=-1000), timedelta(days=1000)),
)
"""(created_at, expires_at) offsets from NOW around the expiry, skew and lifetime limits."""


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def is_b64_position(path: Path) -> bool:
    last = path[-1] if path else None
    return (
        path in (("protected",), ("iv",), ("ciphertext",), ("tag",))
        or last in ("encrypted_key", "x")
        or last in (Part(0), Part(2))
    )


def b64_variant(  # noqa: PLR0911, PLR0912 - one return per kind of mutation
    rng: random.Random, old: str, path: Path
) -> tuple[str, str]:
    cut = rng.randrange(len(old) + 1)
    op = rng.randrange(12)
    if op == 0:
        return "padding", old + "=" * rng.randint(1, 3)
    if op == 1:
        swapped = old.replace("-", "+").replace("_", "/")
        return "std-alphabet", swapped if swapped != old else old[:cut] + "+/" + old[cut:]
    if op == 2 and len(old) > 4:  # unused low bits of the last character set
        if len(old) % 4 in (0, 1):
            old = old[: len(old) - len(old) % 4 - 1]
        low = 0b1111 if len(old) % 4 == 2 else 0b11
        index = _ALPHABET.find(old[-1]) | rng.randint(1, low)
        return "non-canonical", old[:-1] + _ALPHABET[index % 64]
    if op == 3:
        return "impossible-length", old + "A" * (1 + (-len(old) - 1) % 4)
    if op == 4:
        return "whitespace", old[:cut] + rng.choice((" ", "\n", "\r\n", "\t")) + old[cut:]
    if op == 5:
        return "non-ascii", old[:cut] + rng.choice(
            ("é", "\u00a0", "\uff21", "\u0660", "\x00")
        ) + old[cut:]
    if op == 6:
        return "shorter", old[: rng.choice((0, 1, len(old) - 1, len(old) - 4, len(old) // 2))]
    if op == 7:
        return "longer", old + "AAAA"
    try:
        raw = bytearray(b64d(old))
    except ValueError:
        return "empty", ""
    if op == 8 and raw:
        bit = rng.randrange(len(raw) * 8)
        raw[bit // 8] ^= 1 << (bit % 8)
        return "flip", b64e(bytes(raw)).decode()
    if op == 9:
        return "length", b64e(
            bytes(raw) + rng.randbytes(rng.choice((1, 4, 16)))
        ).decode() if rng.random() < 0.5 else b64e(bytes(raw[:-1])).decode()
    if op == 10 and path[-1:] == ("x",):  # X25519 edge cases for an ephemeral key
        special = rng.choice(
            (
                bytes(32),
                b"\x01" + bytes(31),
                bytes(raw[:31]) + bytes([raw[31] | 0x80]),
                b"\xff" * 32,
                bytes(31) + b"\x80",
            )
        )
        return "x25519", b64e(special).decode()
    return "empty", ""


def spellings(rng: random.Random, field: str, canonical: Any, bases: Sequence[Base]) -> list[Any]:
    """Other spellings (and other values) of routing header ``field``."""
    other = rng.choice(bases).header.model_dump(mode="json")[field]
    common: list[Any] = [None, "", 1, [], {}, other, [canonical], Raw(b"NaN")]
    if field == "version":
        return [
            *common,
            True,
            1.0,
            "1",
            2,
            0,
            -1,
            2**64,
            2**63,
            Raw(b"1.0"),
            Raw(b"1e0"),
            Raw(b"01"),
            Raw(b"-0"),
            Raw(b"1E0"),
        ]
    if field == "recipients":
        kids = list(canonical)
        return [
            *common,
            list(reversed(kids)),
            [*kids, kids[0]],
            kids[:-1],
            [*kids, "extra-kid"],
            [k + "." for k in kids],
            [1] * len(kids),
            ",".join(kids),
            kids * 33,
            [k.lower() for k in kids],
        ]
    assert isinstance(canonical, str)
    if field in ("created_at", "expires_at"):
        stem = canonical.removesuffix("Z")
        return [
            *common,
            stem,
            stem + "+00:00",
            stem + "z",
            stem + ".000Z",
            stem + ".123456Z",
            stem + "-00:00",
            stem + "+05:00",
            stem + "Z\n",
            " " + canonical,
            stem.replace("T", " ") + "Z",
            stem.replace("T", "t") + "Z",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2999-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "2026-11-28T01:00:60Z",
            "2026-02-30T00:00:00Z",
            "2026-11-28T01:04:00Z",
            "2026-11-28T01:06:00Z",
            "2026-12-30T02:00:00Z",
            "2026-11-28T01:00:00.0000000001Z",
            "+02026-11-28T01:00:00Z",
            "20261128T010000Z",
            "2026-11-28",
            1796000000,
            1796000000.5,
            2**64,
        ]
    if field == "message_id":
        return [
            *common,
            canonical.upper(),
            "{" + canonical + "}",
            "urn:uuid:" + canonical,
            canonical.replace("-", ""),
            "00000000-0000-0000-0000-000000000000",
            canonical[:-1],
            canonical + "0",
            canonical[:14] + "1" + canonical[15:],
            int(canonical.replace("-", ""), 16),
        ]
    return [*common, *(text_variants(rng, canonical))]
