"""The test vectors of envelope version 2 (docs/envelope.md), made deterministically from a
seeded world: ``python -m tests.interop.v2_vectors`` rewrites
``tests/interop/vectors/envelope-v2.json``; tests/unit/envelope/test_v2_vectors.py checks
the committed file is what this code makes and what it opens, and tests/interop/ has an
independent verifier check it.

The keys are test keys made from a fixed seed: the recipient's private key is published
here so an independent implementation can check decryption and the content commitment.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from broker._jose import b64d, b64e
from broker.keys import public_jwk
from tests.unit.envelope.conftest import NOW, make_world

FILE = Path(__file__).parent / "vectors" / "envelope-v2.json"
SEED = 2026


def _leaf_data(doc: dict[str, Any], commit: bytes) -> bytes:
    digest_input = ".".join((doc["protected"], doc["iv"], doc["ciphertext"], doc["tag"]))
    for entry in doc["recipients"]:
        own = entry["header"]
        digest_input += f".{own['kid']}.{own['epk']['x']}.{entry['encrypted_key']}"
    return b"fusionbus-leaf-v2\x00" + hashlib.sha256(digest_input.encode()).digest() + commit


def _shifted(evidence: str, count: int) -> str:
    """The evidence with the payload's first ``count`` bytes moved onto the salt:
    ``H(salt || payload)`` is unchanged, so only the salt's fixed length refuses it."""
    envelope_b64, payload_b64, salt_b64 = evidence.encode().split(b".")
    payload, salt = b64d(payload_b64), b64d(salt_b64)
    return b".".join((envelope_b64, b64e(payload[count:]), b64e(salt + payload[:count]))).decode()


def vectors() -> dict[str, Any]:
    world = make_world(SEED)
    sealer = world.sealer(version=2)
    payloads = [
        b'{"narrative":"container MSCU1234565 at Karachi, 40 kg"}',
        b'{"narrative":"second report of the batch"}',
        b'{"narrative":"third"}',
    ]
    batch = sealer.seal_batch([(world.header(to=("anf", "fia")), p) for p in payloads])
    [alone] = sealer.seal_batch([(world.header(to=("anf",)), b'{"narrative":"alone"}')])
    opener = world.opener("anf")
    cases = []
    for envelope in [*batch, alone]:
        message = opener.open(envelope, NOW)
        _, _, salt_b64 = message.signed.split(b".")
        salt = b64d(salt_b64)
        doc = orjson.loads(envelope)
        commit = hashlib.sha256(salt + message.payload).digest()
        cases.append({
            "envelope": envelope.decode("ascii"),
            "payload": message.payload.decode("utf-8"),
            "salt": salt.hex(),
            "commit": commit.hex(),
            "leaf": hashlib.sha256(b"\x00" + _leaf_data(doc, commit)).hexdigest(),
            "evidence": message.signed.decode("ascii"),
        })  # fmt: skip
    tampered = orjson.loads(batch[1])
    tampered["unprotected"]["fusionbus_batch"]["index"] = 0
    anf = world.ids["anf"]
    return {
        "about": "fusionbus envelope version 2 test vectors (docs/envelope.md); test keys only",
        "now": NOW.isoformat().replace("+00:00", "Z"),
        "sender": {
            "agency": "customs", "signing_jwk": public_jwk(world.ids["customs"].signing_key),
        },
        "recipient": {
            "agency": "anf",
            "kid": anf.encryption_kid,
            "private_pem": anf.decryption_keys[anf.encryption_kid].to_pem().decode("ascii"),
        },
        "cases": cases,
        "must_fail": [
            {"why": "index changed from 1 to 0", "reason": "bad_signature",
             "envelope": orjson.dumps(tampered).decode()},
            {"why": "salt of another envelope", "reason": "bad_signature", "evidence": b".".join(
                (*cases[0]["evidence"].encode().split(b".")[:2],
                 cases[1]["evidence"].encode().split(b".")[2])).decode()},
            {"why": "payload's first 5 bytes moved onto the salt (37 bytes)", "reason": "malformed",
             "evidence": _shifted(cases[0]["evidence"], 5)},
        ],
    }  # fmt: skip


def main() -> None:
    FILE.parent.mkdir(parents=True, exist_ok=True)
    FILE.write_bytes(orjson.dumps(vectors(), option=orjson.OPT_INDENT_2) + b"\n")
    print(f"wrote {FILE}")


if __name__ == "__main__":
    main()
