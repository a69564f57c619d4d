"""The writer's side without Kafka: the home's chain state and outbox, and an audit failure
that must never reach the caller."""

from __future__ import annotations

import inspect
import stat
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from broker.audit import (
    GENESIS,
    Act,
    AuditRecord,
    AuditState,
    AuditWriter,
    Entry,
    record_hash,
    sign_audit_record,
    verify_chain,
)
from broker.config import KafkaSettings
from broker.federation.snapshot import DirectorySnapshot, SigningKeyRecord
from broker.keys import Identity, kid_of

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
Builder = Callable[[int, str], tuple[AuditRecord, bytes]]


def make(identity: Identity, act: str = Act.PUBLISH) -> Builder:
    def build(seq: int, prev: str) -> tuple[AuditRecord, bytes]:
        record = AuditRecord(writer=identity.agency, seq=seq, prev=prev, at=T0, act=act)
        return record, sign_audit_record(record, identity.signing_key)

    return build


def test_appends_chain_in_one_file_only_its_owner_reads(tmp_path: Path) -> None:
    identity = Identity.generate("anf")
    state = AuditState.for_home(tmp_path / "home", "anf")
    first = state.append(make(identity))
    second = state.append(make(identity, Act.DELIVERY))
    assert (first.seq, first.prev) == (0, GENESIS)
    assert (second.seq, second.prev) == (1, record_hash(first))
    assert state.head() == (1, record_hash(second))
    assert [seq for seq, _ in state.pending()] == [0, 1]
    state.sent([0])
    assert [seq for seq, _ in state.pending()] == [1]
    path = tmp_path / "home" / "state" / "anf" / "audit.sqlite"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    state.close()

    again = AuditState.for_home(tmp_path / "home", "anf")  # a restart goes on from the head
    third = again.append(make(identity))
    assert (third.seq, third.prev) == (2, record_hash(second))
    values = [Entry(seq, value) for seq, value in again.pending()]
    again.close()
    key = SigningKeyRecord(kid_of(identity.signing_key), "anf", identity.signing_key.public, T0)
    chain = verify_chain("anf", values, DirectorySnapshot.of_keys([key]))
    assert chain.first_break is not None  # 0 was sent and left the outbox: 1 and 2 remain
    assert chain.first_break.kind == "dropped"


def test_a_home_without_state_adopts_the_head_it_recovered(tmp_path: Path) -> None:
    identity = Identity.generate("anf")
    state = AuditState(tmp_path / "audit.sqlite")
    state.adopt(41, "ab" * 32)
    state.adopt(7, "cd" * 32)  # a head once held is never replaced
    record = state.append(make(identity))
    assert (record.seq, record.prev) == (42, "ab" * 32)
    state.close()


def test_two_writers_of_one_home_send_one_at_a_time(tmp_path: Path) -> None:
    one, two = AuditState(tmp_path / "audit.sqlite"), AuditState(tmp_path / "audit.sqlite")
    with one.sending() as first, two.sending() as second:
        assert (first, second) == (True, False)
    with two.sending() as later:
        assert later
    one.close()
    two.close()


def test_an_audit_write_that_fails_is_logged_and_never_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    identity = Identity.generate("anf")
    state = AuditState(tmp_path / "audit.sqlite")
    writer = AuditWriter("anf", identity.signing_key, KafkaSettings(bootstrap="127.0.0.1:1"), state)

    def full_disk(*_: object) -> AuditRecord:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(state, "append", full_disk)
    with capture_logs() as logs:
        assert writer.record(Act.PUBLISH, message_id=uuid.uuid4()) is None
    [event] = [e for e in logs if e["event"] == "audit.append_failed"]
    assert event["act"] == "publish"
    assert "No space left" in event["error"]
    state.close()


def test_a_record_is_queued_without_waiting_for_kafka(tmp_path: Path) -> None:
    identity = Identity.generate("anf")
    state = AuditState(tmp_path / "audit.sqlite")
    writer = AuditWriter("anf", identity.signing_key, KafkaSettings(bootstrap="127.0.0.1:1"), state)
    report = uuid.uuid4()
    record = writer.record(
        Act.PUBLISH, message_id=report, report_id=report, parties=["fia", "customs", "fia"]
    )
    assert record is not None
    assert record.parties == ("customs", "fia")
    assert [seq for seq, _ in state.pending()] == [0]  # not started: nothing was sent
    state.close()


def test_recording_is_a_plain_call_so_a_hook_adds_no_cancellation_point() -> None:
    # A subscriber cancelled (SIGTERM) between handing a report over and marking it would
    # show it again after a restart; an await inside record() would be such a point.
    assert not inspect.iscoroutinefunction(AuditWriter.record)
