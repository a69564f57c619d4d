"""The one base64url and the one compact-JWS helper of the code base (RFC 7515).

Every JOSE structure fusionbus writes or reads — envelope headers and signatures, directory
records, JWK thumbprints — encodes through :func:`b64e` / :func:`b64u` and decodes through
:func:`b64d`, which accepts only the canonical form (no padding, no ``+``/``/``, no stray
bits in the last character), so one value has one spelling. Compact JWS tokens are made by
:func:`sign_compact` and taken apart by :func:`split_compact`; what to check in a header is
the caller's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
import pybase64

from broker._crypto import SigningKey

__all__ = ["b64d", "b64d_hashes", "b64e", "b64u", "sign_compact", "signing_input", "split_compact"]

_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def b64e(data: bytes) -> bytes:
    """base64url without padding (SIMD pybase64: CPython's binascii is 10-20x slower)."""
    return pybase64.urlsafe_b64encode(data).rstrip(b"=")


def b64u(data: bytes) -> str:
    """:func:`b64e` as text."""
    return b64e(data).decode("ascii")


def b64d(text: object) -> bytes:
    """Strict, canonical base64url without padding; ``ValueError`` otherwise."""
    if isinstance(text, str):
        if not text.isascii():
            raise ValueError("expected a base64url string")
        text = text.encode("ascii")
    if not isinstance(text, bytes) or b"+" in text or b"/" in text:
        raise ValueError("expected a base64url string")
    if b"=" in text:
        raise ValueError("base64url must not be padded")
    tail = len(text) % 4
    if tail == 1:
        raise ValueError("base64url length is impossible")
    if tail:
        last = _ALPHABET.find(text[-1])
        if last < 0 or last & (0b1111 if tail == 2 else 0b11):
            raise ValueError("base64url is not canonical")
        text += b"==" if tail == 2 else b"="
    try:
        return pybase64.b64decode(text, altchars=b"-_", validate=True)
    except ValueError as exc:
        raise ValueError(f"not base64url: {exc}") from exc


def b64d_hashes(texts: list[str]) -> tuple[bytes, ...] | None:
    """Many 32-byte values, each 43 characters of canonical base64url, decoded in one call;
    ``None`` when any is not (what :func:`b64d` would refuse, another length, or not an
    exact ``str``: a subclass is refused, which parsed JSON never holds).

    43 characters carry 258 bits: 32 bytes and 2 bits that canonical base64url leaves 0.
    Each value followed by ``A`` (6 zero bits) is 44 characters, a whole number of base64
    quanta, so the values joined that way decode at once, without padding, to 33 bytes per
    value: its 32 bytes and a last byte that is 0 exactly when the value was canonical.
    """
    if not all(type(text) is str and len(text) == 43 for text in texts):
        return None
    joined = "A".join(texts) + "A" if texts else ""
    if not joined.isascii() or "+" in joined or "/" in joined or "=" in joined:
        return None
    try:
        raw = pybase64.b64decode(joined.encode("ascii"), altchars=b"-_", validate=True)
    except ValueError:
        return None
    if any(raw[at + 32] for at in range(0, len(raw), 33)):
        return None
    return tuple(raw[at : at + 32] for at in range(0, len(raw), 33))


def sign_compact(
    header: Mapping[str, Any] | bytes,
    payload: bytes,
    key: SigningKey,
    *,
    detached: bool = False,
    sort_keys: bool = False,
) -> bytes:
    """``header.payload.signature`` over ``payload`` (``header..signature`` if detached).

    ``header`` is a JSON object (serialised by orjson, keys sorted if asked) or its
    already-encoded base64url form, for callers that reuse one header many times."""
    if isinstance(header, bytes):
        encoded = header
    else:
        option = orjson.OPT_SORT_KEYS if sort_keys else 0
        encoded = b64e(orjson.dumps(dict(header), option=option))
    body = b64e(payload)
    signature = b64e(key.sign(signing_input(encoded, body)))
    return encoded + b"." + (b"" if detached else body) + b"." + signature


def signing_input(header: bytes, payload: bytes) -> bytes:
    """What a compact JWS signature covers: the two base64url segments joined by a dot."""
    return header + b"." + payload


def split_compact(token: bytes) -> tuple[bytes, bytes, bytes]:
    """The three base64url segments of a compact JWS; ``ValueError`` unless exactly three.

    The signing input is ``header + b"." + payload`` (for a detached JWS, the caller
    supplies the payload segment)."""
    parts = token.split(b".")
    if len(parts) != 3:
        raise ValueError(f"a compact JWS has 3 dot-separated parts, not {len(parts)}")
    return parts[0], parts[1], parts[2]
