"""Adversarial inputs: every one ends in VerificationError with the right reason.

Recipients open (``Opener.open``); the platform verifies without decrypting
(``verify_envelope``). The clock is injected; nothing here may crash or hang.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk
from pydantic import BaseModel

from broker.envelope import Limits, MemoryReplayGuard, Reason, verify_envelope
from broker.envelope._wire import b64e
from broker.errors import VerificationError
from broker.federation import DirectorySnapshot
from broker.keys import Identity

from .conftest import NOW, World, make_world
from .forge import flip, forge, resign_outer

WORLD = make_world(3)
ENVELOPE = WORLD.seal(b'{"report":"original"}', to=("anf", "fia"), version=1)
DOC = orjson.loads(ENVELOPE)
OPENER = WORLD.opener("anf")
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Reasons = Reason | set[Reason]


def reason_of(action: Callable[[], object]) -> Reason:
    with pytest.raises(VerificationError) as caught:
        action()
    assert isinstance(caught.value.reason, Reason)
    return caught.value.reason


def rejected(data: bytes, world: World = WORLD, agency: str = "anf", **kw: Any) -> Reason:
    return reason_of(lambda: world.opener(agency, **kw).open(data, NOW))


def refused(data: bytes, world: World = WORLD) -> Reason:
    return reason_of(lambda: verify_envelope(data, world.trust, NOW))


def with_doc(**changes: Any) -> bytes:
    return orjson.dumps({**DOC, **changes})


def test_the_untouched_envelope_is_accepted() -> None:
    assert OPENER.open(ENVELOPE, NOW).payload == b'{"report":"original"}'
    assert verify_envelope(ENVELOPE, WORLD.trust, NOW).sender == "customs"


# -- garbage, truncation, size ---------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(data: bytes) -> None:
    assert rejected(data) in {Reason.MALFORMED, Reason.OVERSIZED}
    assert refused(data) in {Reason.MALFORMED, Reason.OVERSIZED}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=30,
)


@FUZZ
@given(JSON)
def test_random_json(value: Any) -> None:
    assert rejected(json.dumps(value).encode()) in {Reason.MALFORMED, Reason.OVERSIZED}


@FUZZ
@given(st.integers(min_value=0, max_value=len(ENVELOPE) - 1))
def test_truncated(length: int) -> None:
    assert rejected(ENVELOPE[:length]) == Reason.MALFORMED
    assert refused(ENVELOPE[:length]) == Reason.MALFORMED


@FUZZ
@given(st.sampled_from(sorted(DOC)), st.data())
def test_a_missing_or_retyped_member(member: str, data: st.DataObject) -> None:
    doc = dict(DOC)
    if data.draw(st.booleans()):
        del doc[member]
    else:
        doc[member] = data.draw(JSON.filter(lambda v: v != DOC[member]))
    assert rejected(json.dumps(doc).encode()) in {
        Reason.MALFORMED,
        Reason.OVERSIZED,
        Reason.HEADER_MISMATCH,
        Reason.UNSUPPORTED_VERSION,
        Reason.DECRYPT_FAILED,  # a replacement iv/ciphertext/tag that is valid base64url
    }


def test_oversized_inputs_are_refused_before_parsing() -> None:
    assert rejected(ENVELOPE + b" " * (1_048_577 - len(ENVELOPE))) == Reason.OVERSIZED
    assert rejected(b"[" * 100_000) == Reason.OVERSIZED
    assert rejected(b"[" * 300 + b"]" * 300) == Reason.OVERSIZED
    assert rejected(with_doc(protected="A" * 20_000)) == Reason.OVERSIZED
    nested = b64e(b'{"a":' * 20 + b"1" + b"}" * 20).decode()
    assert rejected(with_doc(protected=nested)) == Reason.OVERSIZED
    many = [DOC["recipients"][0]] * 65
    assert rejected(with_doc(recipients=many)) == Reason.OVERSIZED
    small = Limits(max_envelope_bytes=1000)
    assert reason_of(lambda: WORLD.opener("anf", limits=small).open(ENVELOPE, NOW)) == (
        Reason.OVERSIZED
    )


# -- bit flips -------------------------------------------------------------------------


@FUZZ
@given(st.sampled_from(["iv", "ciphertext", "tag"]), st.integers(min_value=0))
def test_flipped_ciphertext_tag_or_iv(member: str, bit: int) -> None:
    data = with_doc(**{member: flip(DOC[member], bit)})
    assert rejected(data) == Reason.DECRYPT_FAILED
    assert refused(data) == Reason.BAD_SIGNATURE


@FUZZ
@given(st.integers(min_value=0))
def test_flipped_protected_header(bit: int) -> None:
    data = with_doc(protected=flip(DOC["protected"], bit))
    early = {
        Reason.MALFORMED,
        Reason.UNSUPPORTED_VERSION,
        Reason.HEADER_MISMATCH,
        Reason.EXPIRED,
        Reason.NOT_YET_VALID,
        Reason.NOT_RECIPIENT,
        Reason.UNKNOWN_KEY,
        Reason.EXPIRED_KEY,
        Reason.OVERSIZED,
    }
    assert rejected(data) in early | {Reason.DECRYPT_FAILED}
    assert refused(data) in early | {Reason.BAD_SIGNATURE}


@FUZZ
@given(st.sampled_from(["encrypted_key", "epk"]), st.integers(min_value=0))
def test_flipped_key_material(member: str, bit: int) -> None:
    recipients = [dict(r, header=dict(r["header"])) for r in DOC["recipients"]]
    mine = recipients[0]
    if member == "epk":
        mine["header"]["epk"] = {
            **mine["header"]["epk"],
            "x": flip(mine["header"]["epk"]["x"], bit),
        }
    else:
        mine["encrypted_key"] = flip(mine["encrypted_key"], bit)
    data = with_doc(recipients=recipients)
    top_bit = member == "epk" and bit % 256 == 255  # X25519 ignores it: we refuse it
    assert rejected(data) == (Reason.MALFORMED if top_bit else Reason.DECRYPT_FAILED)
    assert refused(data) == Reason.BAD_SIGNATURE
    # fia's entry is intact: fia still opens; the platform still sees the tampering.
    assert WORLD.opener("fia").open(data, NOW).payload == b'{"report":"original"}'


@FUZZ
@given(st.integers(min_value=0))
def test_flipped_outer_signature(bit: int) -> None:
    header, _, signature = DOC["unprotected"]["fusionbus_sig"].split(".")
    data = with_doc(unprotected={"fusionbus_sig": f"{header}..{flip(signature, bit)}"})
    assert refused(data) == Reason.BAD_SIGNATURE
    assert OPENER.open(data, NOW).payload  # recipients rely on the inner signature


# -- recipients --------------------------------------------------------------------------


def test_swapped_removed_or_added_recipients() -> None:
    first, second = DOC["recipients"]
    for recipients in ([second, first], [first], [first, second, first]):
        data = with_doc(recipients=recipients)
        assert rejected(data) == Reason.HEADER_MISMATCH
        assert refused(data) == Reason.HEADER_MISMATCH


def test_wrong_recipient() -> None:
    assert rejected(WORLD.seal(to=("fia",))) == Reason.NOT_RECIPIENT
    stranger = Identity.generate("stranger", WORLD.randbytes)
    opener = type(OPENER)(stranger, WORLD.trust)
    assert reason_of(lambda: opener.open(ENVELOPE, NOW)) == Reason.NOT_RECIPIENT


# -- forgery, re-labelling, forwarding ----------------------------------------------------


def _routing(world: World, **changes: Any) -> dict[str, Any]:
    """A version-1 routing header (the forgeries here are version-1 envelopes)."""
    return world.header(version=1, **changes).model_dump(mode="json")


def test_re_signed_by_another_agency() -> None:
    world = make_world(5)
    customs, fia = world.ids["customs"], world.ids["fia"]
    routing = _routing(world, to=("anf",))
    to = [world.ids["anf"].encryption_key]
    common: dict[str, Any] = {"clear": routing, "signed": routing, "payload": b"{}", "to": to}
    # fia signs but claims customs' key: the signature does not verify.
    data = forge(
        **common,
        inner_key=fia.signing_key,
        inner_kid=customs.signing_kid,
        outer_key=fia.signing_key,
        outer_kid=customs.signing_kid,
    )
    assert rejected(data, world) == Reason.BAD_SIGNATURE
    assert refused(data, world) == Reason.BAD_SIGNATURE
    # fia signs with its own kid under a header naming customs' key.
    data = forge(
        **common,
        inner_key=fia.signing_key,
        inner_kid=fia.signing_kid,
        outer_key=fia.signing_key,
        outer_kid=fia.signing_kid,
    )
    assert rejected(data, world) == Reason.HEADER_MISMATCH
    assert refused(data, world) == Reason.HEADER_MISMATCH
    # The header names customs as sender but fia's key.
    lying = _routing(world, to=("anf",), sender_kid=fia.signing_kid)
    data = forge(
        **{**common, "clear": lying, "signed": lying},
        inner_key=fia.signing_key,
        inner_kid=fia.signing_kid,
        outer_key=fia.signing_key,
        outer_kid=fia.signing_kid,
    )
    assert rejected(data, world) == Reason.HEADER_MISMATCH
    assert refused(data, world) == Reason.HEADER_MISMATCH


def test_inner_alg_none_or_eddsa_is_a_bad_signature() -> None:
    world = make_world(6)
    customs = world.ids["customs"]
    routing = _routing(world, to=("anf",))
    for alg in ("none", "EdDSA", "HS256"):
        data = forge(
            clear=routing,
            signed=routing,
            payload=b"{}",
            to=[world.ids["anf"].encryption_key],
            inner_key=customs.signing_key,
            inner_kid=customs.signing_kid,
            outer_key=customs.signing_key,
            outer_kid=customs.signing_kid,
            inner_alg=alg,
        )
        assert rejected(data, world) == Reason.BAD_SIGNATURE


def _decrypt_as(world: World, agency: str, data: bytes) -> bytes:
    identity = world.ids[agency]
    pem = identity.decryption_keys[identity.encryption_kid].to_pem()
    token = jwcrypto_jwe.JWE()
    token.deserialize(data.decode(), key=jwcrypto_jwk.JWK.from_pem(pem))
    payload: bytes = token.payload
    return payload


@pytest.mark.parametrize("category", ["arms", "wildlife"])
def test_a_recipient_relabels_the_clear_header(category: str) -> None:
    world = make_world(8)
    original = world.seal(to=("anf", "fia"), version=1)
    jws = _decrypt_as(world, "anf", original)  # anf holds the signed report ...
    signed = orjson.loads(original)
    routing = orjson.loads(_b64d(signed["protected"]))["fusionbus"]
    anf, customs = world.ids["anf"], world.ids["customs"]
    to = [world.ids["anf"].encryption_key, world.ids["fia"].encryption_key]
    data = forge(  # ... and re-sends it to fia under another category.
        clear={**routing, "category": category},
        signed=routing,
        payload=b"",
        to=to,
        inner_key=anf.signing_key,
        inner_kid="",
        outer_key=anf.signing_key,
        outer_kid=customs.signing_kid,
        jws=jws,
    )
    assert rejected(data, world, "fia") == Reason.HEADER_MISMATCH
    assert refused(data, world) == Reason.BAD_SIGNATURE


def _b64d(text: str) -> bytes:
    from broker.envelope._wire import b64d  # noqa: PLC0415

    return b64d(text)


def test_surreptitious_forwarding_is_detected() -> None:
    world = make_world(9)
    original = world.seal(b'{"for":"anf only"}', to=("anf",), version=1)
    jws = _decrypt_as(world, "anf", original)
    routing = orjson.loads(_b64d(orjson.loads(original)["protected"]))["fusionbus"]
    anf = world.ids["anf"]
    fia = world.ids["fia"]
    forwarded = {**routing, "recipients": [fia.encryption_kid]}
    common: dict[str, Any] = {
        "signed": routing,
        "payload": b"",
        "to": [fia.encryption_key],
        "inner_key": anf.signing_key,
        "inner_kid": "",
        "outer_key": anf.signing_key,
        "outer_kid": anf.signing_kid,
        "jws": jws,
    }
    # The clear header honestly names fia: the signed copy names anf.
    assert rejected(forge(clear=forwarded, **common), world, "fia") == Reason.HEADER_MISMATCH
    # The clear header keeps anf: the JWE is not encrypted to the listed keys.
    assert rejected(forge(clear=routing, **common), world, "fia") == Reason.HEADER_MISMATCH


def test_the_outer_signature_cannot_be_replaced_by_another_agency() -> None:
    data = resign_outer(dict(DOC), WORLD.ids["fia"].signing_key, WORLD.ids["customs"].signing_kid)
    assert refused(data) == Reason.BAD_SIGNATURE
    data = resign_outer(dict(DOC), WORLD.ids["fia"].signing_key, WORLD.ids["fia"].signing_kid)
    assert refused(data) == Reason.HEADER_MISMATCH


def test_unsupported_version() -> None:
    world = make_world(10)
    customs = world.ids["customs"]
    routing = {**_routing(world, to=("anf",)), "version": 3, "new_field": True}
    data = forge(
        clear=routing,
        signed=routing,
        payload=b"{}",
        to=[world.ids["anf"].encryption_key],
        inner_key=customs.signing_key,
        inner_kid=customs.signing_kid,
        outer_key=customs.signing_key,
        outer_kid=customs.signing_kid,
    )
    assert rejected(data, world) == Reason.UNSUPPORTED_VERSION
    assert refused(data, world) == Reason.UNSUPPORTED_VERSION


ODD_VALUES = (
    JSON
    | st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())
    | st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "Z", "PK-"])
)
SIGNED_WORLD = make_world(15)


@FUZZ
@given(st.sampled_from(sorted(SIGNED_WORLD.header().model_dump(mode="json"))), ODD_VALUES)
def test_odd_header_values_signed_by_the_real_sender(field: str, value: Any) -> None:
    world = SIGNED_WORLD
    customs = world.ids["customs"]
    routing = {**_routing(world, to=("anf",)), field: value}
    data = forge(
        clear=routing,
        signed=routing,
        payload=b"{}",
        to=[world.ids["anf"].encryption_key],
        inner_key=customs.signing_key,
        inner_kid=customs.signing_kid,
        outer_key=customs.signing_key,
        outer_kid=customs.signing_kid,
    )
    for check in (
        lambda: world.opener("anf").open(data, NOW),
        lambda: verify_envelope(data, world.trust, NOW),
    ):
        assert _outcome(check) in {None, *Reason}


def _outcome(check: Callable[[], object]) -> Reason | None:
    """``None`` if ``check`` passes; its reason if it raises VerificationError."""
    try:
        check()
    except VerificationError as exc:
        return Reason(exc.reason)
    return None


# -- time, replay, keys ---------------------------------------------------------------------


def test_expired_far_future_and_over_long_lived() -> None:
    world = make_world(12)
    data = world.seal()
    assert reason_of(lambda: world.opener("anf").open(data, NOW + timedelta(hours=12))) == (
        Reason.EXPIRED
    )
    future = world.seal(created_at=NOW + timedelta(minutes=6), expires_at=NOW + timedelta(hours=1))
    assert rejected(future, world) == Reason.NOT_YET_VALID
    assert refused(future, world) == Reason.NOT_YET_VALID
    skewed = world.seal(created_at=NOW + timedelta(minutes=4))
    assert world.opener("anf").open(skewed, NOW).payload
    forever = world.seal(expires_at=NOW + timedelta(days=40))
    assert rejected(forever, world) == Reason.MALFORMED


def test_duplicate_message_id_is_a_replay() -> None:
    world = make_world(13)
    guard = MemoryReplayGuard()
    data = world.seal()
    world.opener("anf", replay_guard=guard).open(data, NOW)
    assert rejected(data, world, replay_guard=guard) == Reason.REPLAY
    assert reason_of(lambda: verify_envelope(data, world.trust, NOW, replay_guard=guard)) == (
        Reason.REPLAY
    )
    same_id = world.seal(message_id=world.header().message_id)
    fresh_guard = MemoryReplayGuard()
    world.opener("fia", replay_guard=fresh_guard).open(same_id, NOW)
    another = world.seal(
        message_id=orjson.loads(_b64d(orjson.loads(same_id)["protected"]))["fusionbus"][
            "message_id"
        ]
    )
    assert rejected(another, world, "fia", replay_guard=fresh_guard) == Reason.REPLAY


def test_revoked_expired_and_unknown_sender_keys() -> None:
    world = make_world(14)
    data = world.seal()
    kid = world.ids["customs"].signing_kid
    record = world.trust.signing_key(kid)
    assert record is not None
    for changed, reason in [
        (replace(record, revoked_at=NOW - timedelta(seconds=1)), Reason.REVOKED_KEY),
        (replace(record, valid_until=NOW - timedelta(hours=1)), Reason.EXPIRED_KEY),
        (replace(record, valid_from=NOW + timedelta(hours=1)), Reason.EXPIRED_KEY),
    ]:
        world.trust = world.trust.with_keys(changed)
        assert rejected(data, world) == reason
        assert refused(data, world) == reason
    world.trust = world.trust.with_keys(record)
    assert world.opener("anf").open(data, NOW).payload
    empty = DirectorySnapshot()
    assert reason_of(
        lambda: world.opener("anf").__class__(world.ids["anf"], empty).open(data, NOW)
    ) == (Reason.UNKNOWN_KEY)
    assert reason_of(lambda: verify_envelope(data, empty, NOW)) == Reason.UNKNOWN_KEY


def test_invalid_report_payload() -> None:
    class Report(BaseModel):
        n: int

    data = WORLD.seal(b'{"n":"not a number"}')
    assert reason_of(lambda: OPENER.open(data, NOW, parse=Report.model_validate_json)) == (
        Reason.INVALID_REPORT
    )
    good = WORLD.seal(b'{"n":3}')
    assert OPENER.open(good, NOW, parse=Report.model_validate_json).content == Report(n=3)


def test_no_third_party_exception_escapes_for_odd_but_valid_json() -> None:
    odd: list[dict[str, Any]] = [
        {**DOC, "recipients": [{"header": None, "encrypted_key": 1}, DOC["recipients"][1]]},
        {**DOC, "recipients": [{"header": {"kid": 5}}, DOC["recipients"][1]]},
        {**DOC, "unprotected": {"fusionbus_sig": "é..é"}},
        {**DOC, "iv": "é", "tag": 3},
        {**DOC, "protected": "é"},
        {**DOC, "recipients": "x"},
    ]
    for doc in odd:
        with pytest.raises(VerificationError):
            OPENER.open(orjson.dumps(doc), NOW)
        with pytest.raises(VerificationError):
            verify_envelope(orjson.dumps(doc), WORLD.trust, NOW)


@pytest.mark.parametrize(
    ("field", "value"),
    [("created_at", "0001-01-01T00:00:00+01:00"), ("expires_at", "9999-12-31T23:59:59-01:00")],
)
def test_datetimes_out_of_range_in_utc_are_malformed(field: str, value: str) -> None:
    world = SIGNED_WORLD
    customs = world.ids["customs"]
    routing = {**_routing(world, to=("anf",)), field: value}
    data = forge(
        clear=routing,
        signed=routing,
        payload=b"{}",
        to=[world.ids["anf"].encryption_key],
        inner_key=customs.signing_key,
        inner_kid=customs.signing_kid,
        outer_key=customs.signing_key,
        outer_kid=customs.signing_kid,
    )
    assert rejected(data, world) == Reason.MALFORMED
    assert refused(data, world) == Reason.MALFORMED
