"""The committed version-2 test vectors are what this code makes, open, and carry the
leaves, commitments and evidence docs/envelope.md defines."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import orjson
import pytest

from broker._crypto import DecryptionKey, VerifyKey
from broker.envelope import Opener, verify_envelope, verify_signed
from broker.errors import VerificationError
from broker.federation import DirectorySnapshot, EncryptionKeyRecord, SigningKeyRecord
from broker.keys import Identity, kid_of, load_private_pem, public_key_from_jwk
from tests.interop.v2_vectors import FILE, vectors


def test_the_committed_vectors_are_what_the_code_makes() -> None:
    assert orjson.loads(FILE.read_bytes()) == vectors(), (
        "envelope v2 changed: run `.venv/bin/python -m tests.interop.v2_vectors` and say "
        "in docs/envelope.md what changed"
    )


def test_the_vectors_open_from_the_file_alone() -> None:
    data = orjson.loads(FILE.read_bytes())
    now = datetime.fromisoformat(data["now"])
    sender = public_key_from_jwk(data["sender"]["signing_jwk"])
    reader = load_private_pem(data["recipient"]["private_pem"].encode())
    assert isinstance(sender, VerifyKey)
    assert isinstance(reader, DecryptionKey)
    anf = Identity.create("anf", Identity.generate("anf").signing_key, reader)
    since = now.replace(year=2025)
    trust = DirectorySnapshot.of_keys([
        SigningKeyRecord(kid_of(sender), "customs", sender, since, None),
        EncryptionKeyRecord(kid_of(reader), "anf", reader.public, since, None),
    ])  # fmt: skip
    opener = Opener(anf, trust)
    for case in data["cases"]:
        envelope = case["envelope"].encode()
        message = opener.open(envelope, now)
        assert message.payload.decode() == case["payload"]
        salt = bytes.fromhex(case["salt"])
        assert hashlib.sha256(salt + message.payload).hexdigest() == case["commit"]
        assert verify_envelope(envelope, trust, now).message_id == message.header.message_id
        assert verify_signed(case["evidence"].encode(), trust, now).payload == message.payload
    for case in data["must_fail"]:
        check: Any = verify_envelope if "envelope" in case else verify_signed
        given = (case.get("envelope") or case["evidence"]).encode()
        with pytest.raises(VerificationError) as refused:
            check(given, trust, now)
        assert refused.value.reason == case["reason"], case["why"]
