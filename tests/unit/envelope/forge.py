"""Build envelopes the way an attacker (or a careless peer) could, for adversarial tests.

Everything the real Sealer does, but with each part under the test's control: the clear
and the signed routing header, the signing keys and kids, the recipients, the CEK.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import orjson

from broker._crypto import ContentKey, EncryptionKey, SigningKey, ecdh_es_a256kw_wrap
from broker.envelope._wire import b64d, b64e
from broker.keys import kid_of


def forge(
    *,
    clear: dict[str, Any],
    signed: dict[str, Any],
    payload: bytes,
    inner_key: SigningKey,
    inner_kid: str,
    to: Sequence[EncryptionKey],
    outer_key: SigningKey,
    outer_kid: str,
    inner_alg: str = "Ed25519",
    jws: bytes | None = None,
) -> bytes:
    """An envelope with these parts; ``jws`` replaces the inner JWS built from the others."""
    cek = os.urandom(32)

    def dumps(value: object) -> bytes:  # stdlib json: also for integers beyond 64 bits
        return json.dumps(value, separators=(",", ":")).encode()

    if jws is None:
        inner_header = b64e(
            dumps(
                {
                    "alg": inner_alg,
                    "kid": inner_kid,
                    "typ": "fusionbus-report+jws",
                    "fusionbus": signed,
                }
            )
        )
        signing_input = inner_header + b"." + b64e(payload)
        jws = signing_input + b"." + b64e(inner_key.sign(signing_input))
    protected = b64e(
        dumps(
            {"enc": "A256GCM", "typ": "fusionbus-envelope+jwe", "cty": "JOSE", "fusionbus": clear}
        )
    )
    recipients = []
    for key in to:
        epk, wrapped = ecdh_es_a256kw_wrap(key, cek)
        recipients.append(
            {
                "header": {
                    "alg": "ECDH-ES+A256KW",
                    "kid": kid_of(key),
                    "epk": {"kty": "OKP", "crv": "X25519", "x": b64e(epk).decode()},
                },
                "encrypted_key": b64e(wrapped).decode(),
            }
        )
    iv = os.urandom(12)
    ciphertext, tag = ContentKey(cek).encrypt(iv, jws, protected)
    doc = {
        "protected": protected.decode(),
        "recipients": recipients,
        "iv": b64e(iv).decode(),
        "ciphertext": b64e(ciphertext).decode(),
        "tag": b64e(tag).decode(),
    }
    return resign_outer(doc, outer_key, outer_kid)


def resign_outer(doc: dict[str, Any], key: SigningKey, kid: str) -> bytes:
    """Replace the outer detached signature of ``doc`` with one by ``key``."""
    tail = "".join(
        f".{r['header']['kid']}.{r['header']['epk']['x']}.{r['encrypted_key']}"
        for r in doc["recipients"]
    )
    digest = hashlib.sha256(
        (".".join((doc["protected"], doc["iv"], doc["ciphertext"], doc["tag"])) + tail).encode()
    ).digest()
    header = b64e(orjson.dumps({"alg": "Ed25519", "kid": kid, "typ": "fusionbus-envelope-sig+jws"}))
    signature = key.sign(header + b"." + b64e(digest))
    doc = {
        **doc,
        "unprotected": {"fusionbus_sig": f"{header.decode()}..{b64e(signature).decode()}"},
    }
    return orjson.dumps(doc)


def flip(text: str, bit: int) -> str:
    """Flip one bit of the bytes a base64url string encodes."""
    raw = bytearray(b64d(text))
    raw[(bit // 8) % len(raw)] ^= 1 << (bit % 8)
    return b64e(bytes(raw)).decode()
