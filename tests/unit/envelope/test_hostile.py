"""Issue 9 findings at the envelope layer: each failed before its fix.

1. a recipient entry that is not a JSON object crashed open and verify (AttributeError);
5. the replay guard was keyed by message id alone, so one agency could pre-empt another's;
8. duplicate member names and other spellings of a value were accepted.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import orjson
import pytest

from broker.envelope import MemoryReplayGuard, Reason, verify_envelope
from broker.envelope._wire import b64d, b64e
from broker.errors import VerificationError

from .conftest import NOW, make_world

WORLD = make_world(9)
ENVELOPE = WORLD.seal(b'{"report":"original"}', to=("anf", "fia"))
DOC = orjson.loads(ENVELOPE)


def _reason_open(data: bytes) -> Reason:
    with pytest.raises(VerificationError) as caught:
        WORLD.opener("anf").open(data, NOW)
    return caught.value.reason


def _reason_verify(data: bytes) -> Reason:
    with pytest.raises(VerificationError) as caught:
        verify_envelope(data, WORLD.trust, NOW)
    return caught.value.reason


def _protected(**changes: object) -> bytes:
    """The envelope with its protected header's routing header changed (not re-signed)."""
    header = orjson.loads(b64d(DOC["protected"]))
    header["fusionbus"] = {**header["fusionbus"], **changes}
    return orjson.dumps({**DOC, "protected": b64e(orjson.dumps(header)).decode()})


@pytest.mark.parametrize("entry", ["x", 1, None, [], True])
def test_a_recipient_entry_that_is_not_an_object_is_malformed(entry: object) -> None:
    header = orjson.loads(b64d(DOC["protected"]))
    kid = header["fusionbus"]["recipients"][0]
    header["fusionbus"]["recipients"] = [kid]
    header["kid"] = kid  # a kid in the protected header: every entry may omit its own
    data = orjson.dumps(
        {**DOC, "protected": b64e(orjson.dumps(header)).decode(), "recipients": [entry]}
    )
    assert _reason_open(data) is Reason.MALFORMED
    assert _reason_verify(data) is Reason.MALFORMED


@pytest.mark.parametrize("spelling", [True, 1.0, "1"])
def test_the_version_has_one_spelling(spelling: object) -> None:
    data = _protected(version=spelling)
    assert _reason_open(data) is Reason.UNSUPPORTED_VERSION
    assert _reason_verify(data) is Reason.UNSUPPORTED_VERSION


def test_other_spellings_of_header_values_are_malformed() -> None:
    header = orjson.loads(b64d(DOC["protected"]))["fusionbus"]
    created = header["created_at"]
    assert created.endswith("Z")
    variants = {
        "created_at": created.replace("Z", "+00:00"),
        "message_id": header["message_id"].upper(),
    }
    for field, value in variants.items():
        assert _reason_open(_protected(**{field: value})) is Reason.MALFORMED, field
        assert _reason_verify(_protected(**{field: value})) is Reason.MALFORMED, field


def test_duplicate_members_in_the_protected_header_are_refused() -> None:
    raw = b64d(DOC["protected"]).decode()
    assert raw.startswith('{"enc":"A256GCM",')
    doubled = raw.replace('{"enc":"A256GCM",', '{"enc":"A256GCM","enc":"A256GCM",', 1)
    data = orjson.dumps({**DOC, "protected": b64e(doubled.encode()).decode()})
    assert _reason_open(data) is Reason.MALFORMED
    assert _reason_verify(data) is Reason.MALFORMED


def test_duplicate_members_at_the_top_level_are_refused() -> None:
    text = ENVELOPE.decode()
    doubled = text.replace('"iv":', f'"tag":{json.dumps(DOC["tag"])},"iv":', 1)
    assert json.loads(doubled)  # still JSON, last member wins in most parsers
    assert _reason_open(doubled.encode()) is Reason.MALFORMED
    assert _reason_verify(doubled.encode()) is Reason.MALFORMED


def test_escaped_but_duplicate_free_json_still_opens() -> None:
    """The fast duplicate check falls back to a strict parse on escapes; no false alarm."""
    escaped = ENVELOPE.decode().replace('"iv"', '"\\u0069v"', 1)
    assert WORLD.opener("anf").open(escaped.encode(), NOW).payload == b'{"report":"original"}'


def test_the_replay_guard_scopes_message_ids_by_sender() -> None:
    guard, mid, later = MemoryReplayGuard(), uuid.uuid4(), NOW + timedelta(hours=1)
    assert guard.seen("fia", mid, later, NOW) is False  # fia publishes first with this id
    assert guard.seen("customs", mid, later, NOW) is False  # the genuine report still opens
    assert guard.seen("customs", mid, later, NOW) is True
    assert guard.seen("customs", mid, later, later) is False  # forgotten once expired
