"""Envelope version 2: one signature per batch over an RFC 9162 tree head, an inclusion
proof and a content commitment per envelope. Round trips, one signature per batch and one
verification per batch, the cache dropped with the directory, evidence for a third party,
and every tampering refused with its reason."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import orjson
import pytest

from broker._crypto import (
    ContentKey,
    SigningKey,
    VerifyKey,
    content_commitment,
    ecdh_es_a256kw_wrap,
)
from broker._jose import sign_compact
from broker.envelope import Reason, verify_envelope, verify_signed
from broker.envelope._v2 import SALT_LABEL, PendingEnvelope, leaf_of, tree_head
from broker.envelope._wire import (
    TYP,
    RecipientEntry,
    b64e,
    outer_digest_input,
    recipients_tail,
)
from broker.errors import VerificationError
from tests.unit.envelope.conftest import World
from tests.unit.salamander import salamander


def batch_of(world: World, count: int, **kw: Any) -> tuple[list[bytes], list[bytes]]:
    sealer = world.sealer(version=2)
    payloads = [b'{"report":%d}' % i for i in range(count)]
    return sealer.seal_batch([(world.header(**kw), p) for p in payloads]), payloads


def doc(envelope: bytes) -> dict[str, Any]:
    value: dict[str, Any] = orjson.loads(envelope)
    return value


def reason(call: Any) -> Reason:
    with pytest.raises(VerificationError) as caught:
        call()
    return caught.value.reason


def test_every_recipient_opens_every_envelope_of_a_batch_and_the_platform_verifies_it(
    world: World,
) -> None:
    envelopes, payloads = batch_of(world, 5)
    for agency in ("anf", "fia"):
        opener = world.opener(agency)
        for envelope, payload in zip(envelopes, payloads, strict=True):
            message = opener.open(envelope, world.now)
            assert message.payload == payload
            assert message.header.version == 2
    for envelope in envelopes:
        assert verify_envelope(envelope, world, world.now).version == 2


def test_the_batch_is_one_tree_and_one_signature(world: World) -> None:
    envelopes, _ = batch_of(world, 5)
    batches = [doc(e)["unprotected"]["fusionbus_batch"] for e in envelopes]
    assert [b["index"] for b in batches] == [0, 1, 2, 3, 4]
    assert {b["size"] for b in batches} == {5}
    assert len({b["sig"] for b in batches}) == 1
    assert [len(b["path"]) for b in batches] == [3, 3, 3, 3, 1]  # RFC 9162's ragged tree
    protected = orjson.loads(base64.urlsafe_b64decode(doc(envelopes[0])["protected"] + "=="))
    assert set(protected) == {"enc", "typ", "fusionbus"}  # one routing header, no cty


def test_a_report_alone_is_a_batch_of_one(world: World) -> None:
    envelope = world.sealer(version=2).seal(world.header(), b"{}")
    batch = doc(envelope)["unprotected"]["fusionbus_batch"]
    assert (batch["size"], batch["index"], batch["path"]) == (1, 0, [])
    assert world.opener("anf").open(envelope, world.now).payload == b"{}"


def test_sealing_signs_once_per_batch_and_per_recipient_set(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed: list[bytes] = []
    real = SigningKey.sign

    def counted(self: SigningKey, data: bytes) -> bytes:
        signed.append(data)
        return real(self, data)

    monkeypatch.setattr(SigningKey, "sign", counted)
    sealer = world.sealer(version=2)
    items = [(world.header(to=("anf", "fia")), b"%d" % i) for i in range(300)]
    items += [(world.header(to=("anf",)), b"%d" % i) for i in range(10)]
    envelopes = sealer.seal_batch(items)
    assert len(signed) == 3  # 256 + 44 for anf and fia, 10 for anf alone
    sizes = sorted({doc(e)["unprotected"]["fusionbus_batch"]["size"] for e in envelopes})
    assert sizes == [10, 44, 256]
    only_anf = [e for e in envelopes if len(doc(e)["recipients"]) == 1]
    assert len(only_anf) == 10  # a batch never mixes recipient sets


def test_a_receiver_verifies_each_batch_signature_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    envelopes, _ = batch_of(world, 40)
    checks: list[bytes] = []
    real = VerifyKey.verify

    def counted(self: VerifyKey, signature: bytes, data: bytes) -> bool:
        checks.append(data)
        return real(self, signature, data)

    monkeypatch.setattr(VerifyKey, "verify", counted)
    opener = world.opener("anf")
    for envelope in envelopes:
        opener.open(envelope, world.now)
    assert len(checks) == 1


def test_a_revocation_drops_the_verified_batches_and_refuses_the_rest(world: World) -> None:
    envelopes, _ = batch_of(world, 4)
    opener = world.opener("anf")
    opener.open(envelopes[0], world.now)
    world.revoke(world.ids["customs"].signing_kid, world.now - timedelta(minutes=1))
    assert reason(lambda: opener.open(envelopes[1], world.now)) == Reason.REVOKED_KEY
    assert opener._verified == {}  # the new directory snapshot emptied the cache


def test_evidence_proves_one_report_to_a_third_party_and_opens_nothing_else(
    world: World,
) -> None:
    envelopes, payloads = batch_of(world, 3)
    message = world.opener("anf").open(envelopes[1], world.now)
    evidence = message.signed
    shown = verify_signed(evidence, world, world.now)
    assert shown.payload == payloads[1]
    assert shown.header.message_id == message.header.message_id
    _, _, salt = evidence.split(b".")
    assert len(base64.urlsafe_b64decode(salt + b"=")) == 32  # a salt, not a 32-byte key...
    # ...and not the content key: the evidence opens no other envelope of the epoch
    forged = b".".join(
        (evidence.split(b".")[0], base64.urlsafe_b64encode(payloads[0]).rstrip(b"="), salt)
    )
    assert reason(lambda: verify_signed(forged, world, world.now)) == Reason.BAD_SIGNATURE


def test_evidence_with_another_payload_or_salt_is_refused(world: World) -> None:
    envelopes, _ = batch_of(world, 2)
    evidence = world.opener("anf").open(envelopes[0], world.now).signed
    envelope_b64, payload_b64, salt_b64 = evidence.split(b".")
    other = base64.urlsafe_b64encode(b'{"report":"changed"}').rstrip(b"=")
    for bad in (
        b".".join((envelope_b64, other, salt_b64)),
        b".".join((envelope_b64, payload_b64, salt_b64[:-2] + b"AA")),
        b".".join((envelope_b64, payload_b64)),
    ):
        assert reason(lambda bad=bad: verify_signed(bad, world, world.now)) in (
            Reason.BAD_SIGNATURE, Reason.MALFORMED,
        )  # fmt: skip


def _tampered(envelope: bytes, change: Any) -> bytes:
    value = doc(envelope)
    change(value)
    return orjson.dumps(value)


def _flip(text: str) -> str:
    return ("B" if text[0] == "A" else "A") + text[1:]


def _batch(d: dict[str, Any]) -> dict[str, Any]:
    batch: dict[str, Any] = d["unprotected"]["fusionbus_batch"]
    return batch


TAMPERINGS: dict[str, tuple[Any, Reason | None, Reason]] = {
    # name: (change, reason for a recipient (None: not this recipient's business), platform)
    "path": (lambda d: _batch(d)["path"].__setitem__(0, _flip(_batch(d)["path"][0])),
             Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE),
    "index": (lambda d: _batch(d).__setitem__("index", 1),
              Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE),
    "size": (lambda d: _batch(d).__setitem__("size", 3),  # a tree whose path has 2 hashes too
             Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE),
    "size of another shape": (lambda d: _batch(d).__setitem__("size", 5),
                              Reason.MALFORMED, Reason.MALFORMED),
    "path too long": (lambda d: _batch(d)["path"].append(_batch(d)["path"][0]),
                      Reason.MALFORMED, Reason.MALFORMED),
    "commit not base64url": (lambda d: _batch(d).__setitem__("commit", "*" * 43),
                             Reason.MALFORMED, Reason.MALFORMED),
    "size too big": (lambda d: _batch(d).__setitem__("size", 257),
                     Reason.MALFORMED, Reason.MALFORMED),
    "index past size": (lambda d: _batch(d).__setitem__("index", 4),
                        Reason.MALFORMED, Reason.MALFORMED),
    "commit": (lambda d: _batch(d).__setitem__("commit", _flip(_batch(d)["commit"])),
               Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE),
    "signature": (lambda d: _batch(d).__setitem__("sig", _batch(d)["sig"][:-3] + "AAA"),
                  Reason.BAD_SIGNATURE, Reason.BAD_SIGNATURE),
    "extra member": (lambda d: _batch(d).__setitem__("note", "x"),
                     Reason.MALFORMED, Reason.MALFORMED),
    "v1 signature instead": (lambda d: d.__setitem__("unprotected", {"fusionbus_sig": "a..b"}),
                             Reason.MALFORMED, Reason.MALFORMED),
    "ciphertext": (lambda d: d.__setitem__("ciphertext", _flip(d["ciphertext"])),
                   Reason.DECRYPT_FAILED, Reason.BAD_SIGNATURE),
    "wrapped key": (lambda d: d["recipients"][1].__setitem__(
                        "encrypted_key", _flip(d["recipients"][1]["encrypted_key"])),
                    None, Reason.BAD_SIGNATURE),
}  # fmt: skip


@pytest.mark.parametrize("name", TAMPERINGS)
def test_tampering_is_refused_with_its_reason(world: World, name: str) -> None:
    change, recipient, platform = TAMPERINGS[name]
    envelopes, _ = batch_of(world, 4)
    bad = _tampered(envelopes[0], change)
    if recipient is not None:
        assert reason(lambda: world.opener("anf").open(bad, world.now)) == recipient, name
    assert reason(lambda: verify_envelope(bad, world, world.now)) == platform, name


def test_a_proof_moved_onto_another_envelope_of_the_batch_is_refused(world: World) -> None:
    envelopes, _ = batch_of(world, 4)
    first, second = doc(envelopes[0]), doc(envelopes[1])
    second["unprotected"] = first["unprotected"]
    moved = orjson.dumps(second)
    assert reason(lambda: world.opener("anf").open(moved, world.now)) == Reason.BAD_SIGNATURE
    assert reason(lambda: verify_envelope(moved, world, world.now)) == Reason.BAD_SIGNATURE


def test_a_batch_signed_by_another_agency_is_refused(world: World) -> None:
    envelopes, _ = batch_of(world, 2)
    theirs = world.sealer("fia", version=2).seal(world.header("fia", to=("anf",)), b"{}")
    mine = doc(envelopes[0])
    mine["unprotected"]["fusionbus_batch"]["sig"] = doc(theirs)["unprotected"]["fusionbus_batch"][
        "sig"
    ]
    bad = orjson.dumps(mine)
    assert reason(lambda: world.opener("anf").open(bad, world.now)) in (
        Reason.BAD_SIGNATURE, Reason.HEADER_MISMATCH,
    )  # fmt: skip


def test_version_one_envelopes_still_open_beside_version_two(world: World) -> None:
    old = world.sealer().seal(world.header(), b"v1")
    new = world.sealer(version=2).seal(world.header(), b"v2")
    opener = world.opener("fia")
    assert opener.open(old, world.now).payload == b"v1"
    assert opener.open(new, world.now).payload == b"v2"
    assert verify_signed(opener.open(old, world.now).signed, world, world.now).payload == b"v1"


def test_an_unknown_sealer_version_is_refused(world: World) -> None:
    with pytest.raises(Exception, match="version must be 1 or 2"):
        world.sealer(version=3)


def test_a_sender_cannot_make_two_recipients_read_two_reports_from_one_envelope(
    world: World,
) -> None:
    """The invisible salamander: AES-GCM is not key-committing, so a sender who wraps one
    content key for ANF and another for FIA can craft a ciphertext both keys authenticate,
    decrypting to two different plaintexts. The signed commitment binds the one key and
    payload the sender chose: FIA's decryption is refused."""
    customs = world.ids["customs"]
    header = world.header(to=("anf", "fia"))
    routing = {**header.model_dump(mode="json"), "version": 2}
    protected = b64e(orjson.dumps({"enc": "A256GCM", "typ": TYP, "fusionbus": routing}))
    key_anf, key_fia, iv = world.randbytes(32), world.randbytes(32), world.randbytes(12)
    prefix = b'{"said to anf":"the container is clean"}'
    ciphertext, tag = salamander(key_anf, key_fia, iv, protected, blocks=4, prefix=prefix)
    read_by = {
        name: ContentKey(key).decrypt(iv, ciphertext, tag, protected)
        for name, key in (("anf", key_anf), ("fia", key_fia))
    }
    assert read_by["anf"] is not None
    assert read_by["anf"].startswith(prefix)
    assert read_by["fia"] is not None  # GCM alone accepts both...
    assert read_by["fia"] != read_by["anf"]  # ...and they read two different things

    entries, jsonable = [], []
    for agency, key in (("anf", key_anf), ("fia", key_fia)):
        record = world.trust.encryption_key(world.ids[agency].encryption_kid)
        assert record is not None
        epk, wrapped = ecdh_es_a256kw_wrap(record.key, key, world.randbytes)
        entry = RecipientEntry(record.kid, b64e(epk).decode(), b64e(wrapped).decode())
        entries.append(entry)
        jsonable.append({
            "header": {"alg": "ECDH-ES+A256KW", "kid": entry.kid,
                       "epk": {"kty": "OKP", "crv": "X25519", "x": entry.epk_x}},
            "encrypted_key": entry.encrypted_key,
        })  # fmt: skip
    _, commit = content_commitment(key_anf, iv, read_by["anf"], SALT_LABEL)
    iv_b, ct_b, tag_b = b64e(iv), b64e(ciphertext), b64e(tag)
    digest_input = outer_digest_input(protected, iv_b, ct_b, tag_b, recipients_tail(entries))
    pending = PendingEnvelope(
        header.recipients, leaf_of(digest_input, commit), protected, b64e(commit),
        orjson.dumps(jsonable), iv_b, ct_b, tag_b,
    )  # fmt: skip
    head = tree_head(pending.hash, 1)
    batch_header = {"alg": "Ed25519", "kid": customs.signing_kid, "typ": "fusionbus-batch+jws"}
    sig = sign_compact(batch_header, head, customs.signing_key, detached=True)
    envelope = pending.envelope(sig, b"1", 0, [])

    assert verify_envelope(envelope, world, world.now).message_id == header.message_id
    assert world.opener("anf").open(envelope, world.now).payload == read_by["anf"]
    refused = reason(lambda: world.opener("fia").open(envelope, world.now))
    assert refused == Reason.BAD_SIGNATURE


def test_evidence_cannot_move_bytes_between_the_salt_and_the_payload(world: World) -> None:
    """With a salt of any length, ``H(salt || payload)`` would also match a shorter payload
    whose cut-off start is appended to the salt: the salt is exactly 32 bytes."""
    envelope = world.seal(b'{"narrative":"NOT guilty: suspect cleared"}')
    envelope_b64, payload_b64, salt_b64 = (
        world.opener("anf").open(envelope, world.now).signed.split(b".")
    )
    payload, salt = (
        base64.urlsafe_b64decode(payload_b64 + b"=="),
        base64.urlsafe_b64decode(salt_b64 + b"="),
    )
    cut = len(b'{"narrative":"NOT ')
    for shifted_payload, shifted_salt in (
        (payload[cut:], salt + payload[:cut]),
        (salt[-5:] + payload, salt[:-5]),
    ):
        forged = b".".join((envelope_b64, b64e(shifted_payload), b64e(shifted_salt)))
        assert (
            reason(lambda forged=forged: verify_signed(forged, world, world.now))
            == Reason.MALFORMED
        )


def test_evidence_of_an_envelope_in_another_spelling_still_verifies(world: World) -> None:
    """The opener accepts a re-spelt envelope (member order, whitespace); its evidence is
    recognised as version 2 by its structure, not by how its first bytes are spelt."""
    value = doc(world.seal(b'{"n":1}'))
    respelt = b" " + orjson.dumps(dict(reversed(list(value.items()))))
    evidence = world.opener("anf").open(respelt, world.now).signed
    assert verify_signed(evidence, world, world.now).payload == b'{"n":1}'
