"""The sans-IO intake: one verdict per record, whatever the record (no Kafka here)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from broker.envelope import Opener, Sealer, seal_report
from broker.errors import Reason
from broker.federation import DirectorySnapshot, agency_keys
from broker.keys import Identity
from broker.topics import Header, report_topic
from consumers import (
    Accepted,
    Intake,
    MemoryDelivered,
    RawIntake,
    Record,
    Rejected,
    Skipped,
    SkipReason,
    Source,
    Verified,
)
from consumers.quarantine import MAX_COPY_BYTES, quarantine_record
from schemas import Report, example_report

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
IDS = {a: Identity.generate(a) for a in ("customs", "anf", "fia")}
TRUST = DirectorySnapshot.of_keys(
    key
    for agency, identity in IDS.items()
    for key in agency_keys(
        agency, identity.signing_key.public, identity.encryption_key,
        valid_from=NOW - timedelta(days=1),
    )
)  # fmt: skip


def _report(sender: str = "customs", category: str = "narcotics", **changes: object) -> Report:
    base = example_report(category, "PKKHI", now=NOW).model_dump()
    base.update(sender=sender, **changes)
    return Report.model_validate(base)


def _sealed(report: Report, to: tuple[str, ...] = ("anf",)) -> bytes:
    sealer = Sealer(IDS[report.sender], TRUST, clock=lambda: NOW)
    return seal_report(sealer, report, [IDS[a].encryption_kid for a in to])


def _record(value: bytes | None, topic: str, offset: int = 0, **kw: object) -> Record:
    return Record(Source(topic, 0, offset, 1), value, **kw)  # type: ignore[arg-type]


def _intake(agency: str = "anf", categories: tuple[str, ...] = ("narcotics",)) -> Intake:
    return Intake(
        Opener(IDS[agency], TRUST), categories=categories, jurisdictions=["PK"],
        delivered=MemoryDelivered(), clock=lambda: NOW,
    )  # fmt: skip


def test_a_genuine_report_is_accepted_once_then_a_duplicate() -> None:
    intake, report = _intake(), _report()
    record = _record(_sealed(report), report_topic("customs", "PKKHI", "narcotics"))
    verdict = intake.process(record)
    assert isinstance(verdict, Accepted)
    assert verdict.delivery.report == report
    assert verdict.delivery.source == record.source
    intake.mark(verdict)
    assert intake.process(record) == Skipped(SkipReason.DUPLICATE)
    assert intake.counts == {"accepted": 1, "duplicate": 1}


def test_an_envelope_copied_onto_another_topic_is_wrong_topic() -> None:
    """Issue 9 finding 9: a narcotics envelope written to a cash-smuggling topic."""
    intake = _intake(categories=("narcotics", "cash_smuggling"))
    data = _sealed(_report())
    for topic in (
        report_topic("customs", "PKKHI", "cash_smuggling"),  # another category
        report_topic("customs", "PK-PB", "narcotics"),  # another area
        report_topic("fia", "PKKHI", "narcotics"),  # another sender's topic
    ):
        verdict = intake.process(_record(data, topic))
        assert isinstance(verdict, Rejected), topic
        assert verdict.reason is Reason.WRONG_TOPIC
        assert "read from " + topic in verdict.detail
    assert isinstance(
        RawIntake(TRUST, categories=["cash_smuggling"], jurisdictions=["PK"], clock=lambda: NOW)
        .process(_record(data, report_topic("customs", "PKKHI", "cash_smuggling"))),
        Rejected,
    )  # fmt: skip


def test_another_agency_cannot_pre_empt_a_message_id() -> None:
    """Issue 9 finding 5: fia publishes first with customs' message id."""
    intake, mid = _intake(), uuid.uuid4()
    squatter = _report(sender="fia", message_id=mid)
    genuine = _report(sender="customs", message_id=mid)
    first = intake.process(_record(_sealed(squatter), report_topic("fia", "PKKHI", "narcotics")))
    assert isinstance(first, Accepted)
    intake.mark(first)
    second = intake.process(
        _record(_sealed(genuine), report_topic("customs", "PKKHI", "narcotics"), offset=1)
    )
    assert isinstance(second, Accepted)
    assert second.delivery.report.sender == "customs"


def test_the_same_id_in_another_envelope_of_the_same_sender_is_a_replay() -> None:
    intake, report = _intake(), _report()
    topic = report_topic("customs", "PKKHI", "narcotics")
    first = intake.process(_record(_sealed(report), topic))
    assert isinstance(first, Accepted)
    intake.mark(first)
    again = intake.process(_record(_sealed(report), topic, offset=1))  # resealed: new bytes
    assert isinstance(again, Rejected)
    assert again.reason is Reason.REPLAY


def test_clear_headers_can_only_make_a_record_skipped() -> None:
    intake, report = _intake(), _report()
    topic = report_topic("customs", "PKKHI", "narcotics")
    lying = ((Header.CATEGORY, b"arms"), (Header.JURISDICTION, b"PKKHI"))
    assert intake.process(_record(_sealed(report), topic, headers=lying)) == Skipped(
        SkipReason.OUTSIDE_SUBSCRIPTION
    )
    garbage = ((Header.CATEGORY, b"narcotics"), (Header.JURISDICTION, b"XX-\xff"))
    assert isinstance(intake.process(_record(_sealed(report), topic, headers=garbage)), Skipped)
    agreeing = ((Header.CATEGORY, b"narcotics"), (Header.JURISDICTION, b"PKKHI"))
    assert isinstance(intake.process(_record(_sealed(report), topic, headers=agreeing)), Accepted)


def test_a_report_not_sealed_to_me_is_skipped_and_garbage_is_rejected() -> None:
    intake = _intake("fia")
    topic = report_topic("customs", "PKKHI", "narcotics")
    assert intake.process(_record(_sealed(_report()), topic)) == Skipped(SkipReason.NOT_RECIPIENT)
    for value in (None, b"", b"\xff\xfe", b"[]", b'{"protected": 1}'):
        verdict = intake.process(_record(value, topic))
        assert isinstance(verdict, Rejected), value
        assert verdict.reason is Reason.MALFORMED


def test_a_surprise_inside_the_intake_is_an_internal_error_logged_without_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    intake, report = _intake(), _report(title="Secret title 4711")
    topic = report_topic("customs", "PKKHI", "narcotics")

    def explode(*args: object, **kwargs: object) -> object:
        raise KeyError("Secret title 4711")

    monkeypatch.setattr("consumers.intake.open_report", explode)
    with capture_logs() as logs:
        verdict = intake.process(_record(_sealed(report), topic))
    assert isinstance(verdict, Rejected)
    assert verdict.reason is Reason.INTERNAL_ERROR
    assert verdict.detail.startswith("KeyError at test_intake.py:")
    assert "Secret" not in verdict.detail
    [event] = [e for e in logs if e["event"] == "intake.internal_error"]
    assert event["error"] == "KeyError"
    assert "Secret" not in repr(event)
    assert intake.counts == {"internal_error": 1}


def test_the_raw_intake_verifies_the_clear_header_without_decrypting() -> None:
    raw = RawIntake(TRUST, categories=["narcotics"], jurisdictions=["PK"], clock=lambda: NOW)
    report = _report()
    topic = report_topic("customs", "PKKHI", "narcotics")
    verdict = raw.process(_record(_sealed(report), topic))
    assert isinstance(verdict, Verified)
    assert verdict.header.message_id == report.message_id
    assert isinstance(raw.process(_record(b"garbage", topic)), Rejected)


def test_a_quarantine_copy_always_fits() -> None:
    """Issue 9 finding 4: a near-1-MiB value plus the fb-* headers was over the limit."""
    source = Source("fusionbus.reports.customs.pk-sd.narcotics", 2, 77, 1)
    value, key = b"\x00" * 1_048_000, b"k" * 10_000
    new_key, new_value, headers = quarantine_record(source, key, value, "malformed", "x" * 9_999)
    assert new_value == value[:MAX_COPY_BYTES]
    assert new_key is not None
    assert len(new_key) == 4_096
    named = dict(headers)
    assert named[Header.ORIGINAL_SIZE] == b"1048000"
    assert len(named[Header.ORIGINAL_SHA256]) == 64
    assert named[Header.TRUNCATED] == b"value,key"
    assert named[Header.SOURCE_OFFSET] == b"77"
    total = len(new_value) + len(new_key) + sum(len(k) + len(v) for k, v in headers)
    assert total < 1_000_000  # well under aiokafka's 1 MiB max_request_size
    small_key, small, plain = quarantine_record(source, b"k", b"{}", "malformed", "bad")
    assert (small_key, small) == (b"k", b"{}")
    assert Header.TRUNCATED not in dict(plain)
