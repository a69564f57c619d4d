"""The gateway's pure pieces: problems, tokens, idempotency, cursors, filters."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway._files import GatewayFiles
from gateway.cursor import CursorCodec, CursorError
from gateway.idempotency import (
    Answer,
    Begin,
    Conflict,
    ConflictKind,
    IdempotencyStore,
    Replay,
    fingerprint,
    parse_key,
)
from gateway.ingest import parse_batch, parse_report
from gateway.problems import Problem, json_pointer
from gateway.received import Filters, ReceivedStore
from gateway.tokens import (
    Permission,
    Refusal,
    Role,
    TokenRefused,
    TokenStore,
    check_token,
    permits,
)
from schemas import Report, example_report
from tests.unit.gateway.conftest import delivery

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


# -- problems --------------------------------------------------------------------------


def test_json_pointer_escapes_tilde_and_slash() -> None:
    assert json_pointer(("handling", "tlp")) == "/handling/tlp"
    assert json_pointer(("a/b", "c~d", 3), "/7") == "/7/a~1b/c~0d/3"


def test_a_validation_problem_names_each_field_with_the_cli_message() -> None:
    document = example_report().model_dump(mode="json")
    document["handling"]["tlp"] = "TLP:PURPLE"
    del document["title"]
    with pytest.raises(ValidationError) as caught:
        Report.model_validate(document)
    problem = Problem.invalid(Problem.field_errors(caught.value, "/2"))
    body = problem.document("/v1/reports:batch")
    assert body["type"] == "urn:fusionbus:problem:invalid-report"
    assert body["status"] == 422
    assert body["instance"] == "/v1/reports:batch"
    pointers = {e["pointer"]: e["detail"] for e in body["errors"]}
    assert set(pointers) == {"/2/handling/tlp", "/2/title"}
    assert pointers["/2/title"] == "title: missing; expected a value (field required)"
    assert pointers["/2/handling/tlp"].startswith("handling.tlp: got 'TLP:PURPLE'")


def test_a_body_that_is_not_json_is_a_400_problem() -> None:
    with pytest.raises(Problem) as caught:
        parse_report(b"{not json", agency="customs", now=NOW)
    assert caught.value.status == 400
    assert caught.value.kind == "malformed-json"


def test_another_sender_is_refused_by_field() -> None:
    body = orjson.dumps({**example_report().model_dump(mode="json"), "sender": "fia"})
    with pytest.raises(Problem) as caught:
        parse_report(body, agency="customs", now=NOW)
    [error] = caught.value.errors
    assert error.pointer == "/sender"
    assert "publishes as 'customs' only" in error.detail


def test_a_report_is_filled_in_as_the_cli_fills_it() -> None:
    document = example_report().model_dump(mode="json")
    for name in ("message_id", "created_at", "sender", "schema_version"):
        del document[name]
    now = datetime.now(UTC)
    report = parse_report(orjson.dumps(document), agency="customs", now=now)
    assert report.sender == "customs"
    assert report.created_at == now


def test_a_batch_is_checked_whole_and_bounded() -> None:
    good = example_report().model_dump(mode="json")
    with pytest.raises(Problem) as caught:
        parse_batch(
            orjson.dumps([good, 5, {**good, "category": "x"}]), agency="customs", now=NOW, limit=10
        )
    pointers = [e.pointer for e in caught.value.errors]
    assert pointers[0] == "/1"
    assert any(p.startswith("/2/") for p in pointers)
    with pytest.raises(Problem) as too_many:
        parse_batch(orjson.dumps([good] * 3), agency="customs", now=NOW, limit=2)
    assert too_many.value.status == 413
    with pytest.raises(Problem) as empty:
        parse_batch(b"[]", agency="customs", now=NOW, limit=2)
    assert empty.value.status == 422


# -- tokens ----------------------------------------------------------------------------


def test_roles_and_permissions() -> None:
    assert permits(Role.OPERATOR, Permission.INGEST)
    assert permits(Role.SYSTEM, Permission.READ_RED)
    assert permits(Role.VIEWER, Permission.READ)
    assert not permits(Role.VIEWER, Permission.INGEST)
    assert not permits(Role.VIEWER, Permission.READ_RED)


def test_tokens_are_stored_hashed_in_a_private_file(files: GatewayFiles) -> None:
    store = TokenStore(files, "anf")
    info, token = store.create(Role.VIEWER, NOW, label="duty desk")
    store.close()
    assert token.startswith(f"fbgw_anf_{info.id}_")
    secret = token.split("_", 3)[3]
    data = files.tokens.read_bytes()
    assert secret.encode() not in data
    assert stat.S_IMODE(files.tokens.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.folder.stat().st_mode) == 0o700
    again = TokenStore(files, "anf")
    assert check_token(token, "anf", again.find, NOW).role is Role.VIEWER


@pytest.mark.parametrize(
    ("presented", "reason"),
    [
        (None, Refusal.MISSING),
        ("", Refusal.MISSING),
        ("Basic abc", Refusal.MALFORMED),
        ("fbgw_anf", Refusal.MALFORMED),
        ("fbgw_anf__secret", Refusal.MALFORMED),
        ("xxxx_anf_0123456789ab_secret", Refusal.MALFORMED),
        ("fbgw_fia_0123456789ab_secret", Refusal.WRONG_AGENCY),
        ("fbgw_anf_0123456789ab_secret", Refusal.UNKNOWN),
    ],
)
def test_refused_tokens(files: GatewayFiles, presented: str | None, reason: Refusal) -> None:
    store = TokenStore(files, "anf")
    with pytest.raises(TokenRefused) as caught:
        check_token(presented, "anf", store.find, NOW)
    assert caught.value.reason is reason


def test_a_guessed_secret_and_a_revoked_token_are_refused(files: GatewayFiles) -> None:
    store = TokenStore(files, "anf")
    info, token = store.create(Role.OPERATOR, NOW)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(TokenRefused) as guessed:
        check_token(forged, "anf", store.find, NOW)
    assert guessed.value.reason is Refusal.UNKNOWN
    assert store.revoke(info.id, NOW)
    assert not store.revoke(info.id, NOW)  # only once
    with pytest.raises(TokenRefused) as revoked:
        check_token(token, "anf", store.find, NOW)
    assert revoked.value.reason is Refusal.REVOKED
    assert secret_free(str(revoked.value), token)


def secret_free(message: str, token: str) -> bool:
    return token.split("_", 3)[3] not in message


@given(st.text(max_size=80))
def test_any_presented_text_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(TokenRefused):
        check_token(text, "anf", lambda _: None, NOW)


# -- idempotency -----------------------------------------------------------------------


def test_idempotency_key_header_forms() -> None:
    assert parse_key(None) is None
    assert (
        parse_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"')
        == "8e03978e-40d5-43e8-bc93-6894a57f9324"
    )
    assert parse_key("abc") == "abc"
    for bad in ('""', "a b", "x" * 256, '"a"b"', "ключ"):
        with pytest.raises(ValueError, match="Idempotency-Key"):
            parse_key(bad)


def test_fingerprints_tell_requests_apart() -> None:
    one = fingerprint("POST", "/v1/reports", b"{}")
    assert one == fingerprint("post", "/v1/reports", b"{}")
    assert one != fingerprint("POST", "/v1/reports:batch", b"{}")
    assert fingerprint("POST", "/a", b"b/c") != fingerprint("POST", "/ab", b"/c")


def test_idempotency_decisions(files: GatewayFiles) -> None:
    store = IdempotencyStore(files)
    first = fingerprint("POST", "/v1/reports", b"one")
    other = fingerprint("POST", "/v1/reports", b"two")
    assert store.begin("tok", "k", first, NOW) == Begin()
    assert store.begin("tok", "k", first, NOW) == Conflict(ConflictKind.IN_FLIGHT)
    assert store.begin("tok", "k", other, NOW) == Conflict(ConflictKind.OTHER_REQUEST)
    assert store.begin("other-token", "k", other, NOW) == Begin()  # keys are per token
    answer = Answer(202, b'{"message_id": "m"}', "/v1/status/m")
    store.finish("tok", "k", answer)
    assert store.begin("tok", "k", first, NOW) == Replay(answer)
    assert store.begin("tok", "k", other, NOW) == Conflict(ConflictKind.OTHER_REQUEST)
    store.forget("other-token", "k")
    assert store.begin("other-token", "k", first, NOW) == Begin()


def test_records_in_flight_at_a_restart_are_abandoned_and_old_ones_expire(
    files: GatewayFiles,
) -> None:
    store = IdempotencyStore(files)
    request = fingerprint("POST", "/v1/reports", b"one")
    store.begin("tok", "k", request, NOW)
    store.close()
    restarted = IdempotencyStore(files)
    assert restarted.abandon_in_flight() == 1
    assert restarted.begin("tok", "k", request, NOW) == Conflict(ConflictKind.ABANDONED)
    assert restarted.expire(NOW + timedelta(days=2), timedelta(days=1)) == 1
    assert restarted.begin("tok", "k", request, NOW) == Begin()


# -- cursors ---------------------------------------------------------------------------


def test_cursors_round_trip_and_reveal_nothing(files: GatewayFiles) -> None:
    codec = CursorCodec.for_files(files)
    one, again = codec.encode(1), codec.encode(1)
    assert one != again  # a fresh ciphertext each time: equal positions look unrelated
    assert codec.decode(one) == codec.decode(again) == 1
    assert len(codec.encode(1)) == len(codec.encode(10**12))  # the size says nothing either
    assert CursorCodec.for_files(files).decode(one) == 1  # the key persists
    assert stat.S_IMODE(files.cursor_key.stat().st_mode) == 0o600


@given(st.text(max_size=300))
def test_anything_else_is_not_a_cursor(text: str) -> None:
    codec = CursorCodec(b"0" * 43 + b"=")
    with pytest.raises(CursorError):
        codec.decode(text)


def test_a_cursor_of_another_gateway_is_refused(tmp_path: object, files: GatewayFiles) -> None:
    mine = CursorCodec.for_files(files)
    theirs = CursorCodec.for_files(GatewayFiles(files.home, "fia"))
    with pytest.raises(CursorError):
        mine.decode(theirs.encode(5))
    tampered = mine.encode(5)
    flipped = tampered[:20] + ("A" if tampered[20] != "A" else "B") + tampered[21:]
    with pytest.raises(CursorError):
        mine.decode(flipped)


# -- filters and the received store ----------------------------------------------------


def test_filters_in_sql_and_in_memory_agree(files: GatewayFiles) -> None:
    store = ReceivedStore(files)
    rows = [
        store.add(delivery(category, place, precedence=precedence, offset=n), NOW)
        for n, (category, place, precedence) in enumerate(
            [
                ("narcotics", "PKKHI", "FLASH"),
                ("narcotics", "PKGWD", "ROUTINE"),
                ("human_trafficking", "PK-PB", "PRIORITY"),
                ("contraband", "PK", "IMMEDIATE"),
            ]
        )
    ]
    assert all(rows)
    cases = [
        Filters(),
        Filters(categories=frozenset({"narcotics"})),
        Filters(jurisdictions=("PK-SD",)),
        Filters(jurisdictions=("PK-BA", "PK-PB")),
        Filters(jurisdictions=("PK",)),
        Filters(precedences=frozenset({"FLASH", "PRIORITY"})),
        Filters(categories=frozenset({"narcotics"}), jurisdictions=("PK-BA",)),
        Filters(since=NOW + timedelta(seconds=1)),
    ]
    for filters in cases:
        found, _ = store.page(filters, after=0, limit=100)
        expected = [r for r in rows if r is not None and filters.matches(r)]
        assert [r.seq for r in found] == [r.seq for r in expected], filters
    assert [r.seq for r in store.page(Filters(jurisdictions=("PK-SD",)), after=0, limit=9)[0]] == [
        1
    ]


def test_the_store_keeps_one_copy_and_remembers_what_retention_dropped(
    files: GatewayFiles,
) -> None:
    store = ReceivedStore(files)
    first = delivery()
    assert store.add(first, NOW) is not None
    assert store.add(first, NOW) is None  # a redelivery adds nothing
    store.add(delivery(), NOW + timedelta(days=2))
    assert store.head() == 2
    assert store.prune(NOW + timedelta(days=1)) == 1
    assert store.pruned_through() == 1
    assert store.count() == 1
    rows, passed = store.page(Filters(), after=0, limit=10)
    assert [r.seq for r in rows] == [2]
    assert passed == 2
    assert stat.S_IMODE(files.received.stat().st_mode) == 0o600
