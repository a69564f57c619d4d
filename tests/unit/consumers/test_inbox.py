"""Feedback in the originator's inbox: sealed, verified, and each recipient's state (no Kafka).

Hostile feedback — forged, copied onto another inbox, about another agency's report, a
report envelope on an inbox, replayed, garbage — is rejected with a reason code.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from broker.envelope import (
    Opener,
    Sealer,
    feedback_header,
    open_feedback,
    seal_feedback,
    seal_notice,
)
from broker.errors import Reason, VerificationError
from broker.topics import inbox_topic
from consumers import (
    InboxIntake,
    MemoryDelivered,
    Rejected,
    Skipped,
    SkipReason,
    recipient_states,
)
from consumers.inbox import FeedbackAccepted, NoticeAccepted
from schemas import Feedback, Notice, Outcome
from schemas.envelope import RoutingHeader
from tests.unit.consumers.test_intake import IDS, NOW, TRUST, _record, _report, _sealed


def about(report_sender: str = "customs") -> RoutingHeader:
    """The verified header of a customs report anf received."""
    report = _report(sender=report_sender)
    return Opener(IDS["anf"], TRUST).open(_sealed(report), NOW).header


def feedback(
    header: RoutingHeader, outcome: Outcome = Outcome.RECEIVED, *, sender: str = "anf", **kw: object
) -> Feedback:
    return Feedback.model_validate(
        {
            "message_id": uuid.uuid4(), "report_id": header.message_id,
            "originator": header.sender, "sender": sender, "created_at": NOW,
            "outcome": outcome, **kw,
        }
    )  # fmt: skip


def sealed(item: Feedback, header: RoutingHeader, *, by: str = "anf", to: str = "customs") -> bytes:
    sealer = Sealer(IDS[by], TRUST, clock=lambda: NOW)
    return seal_feedback(sealer, item, header, [IDS[to].encryption_kid])


def intake(agency: str = "customs") -> InboxIntake:
    return InboxIntake(
        Opener(IDS[agency], TRUST), agency, delivered=MemoryDelivered(), clock=lambda: NOW
    )


def test_feedback_reaches_the_originator_with_the_reports_handling() -> None:
    header = about()
    item = feedback(header, Outcome.SEIZURE, quantity="72", unit="kg")
    verdict = intake().process(_record(sealed(item, header), inbox_topic("customs", "anf")))
    assert isinstance(verdict, FeedbackAccepted), verdict
    assert verdict.delivery.feedback == item
    signed = verdict.delivery.header
    assert (signed.kind, signed.sender, signed.tlp, signed.category) == (
        "feedback", "anf", header.tlp, header.category,
    )  # fmt: skip
    assert signed.recipients == (IDS["customs"].encryption_kid,)


def test_another_agency_cannot_open_it() -> None:
    header = about()
    verdict = intake("fia").process(
        _record(sealed(feedback(header), header), inbox_topic("fia", "anf"))
    )
    assert verdict == Skipped(SkipReason.NOT_RECIPIENT)


@pytest.mark.parametrize(
    ("topic", "why"),
    [
        (inbox_topic("customs", "fia"), "only fia can write"),  # anf's feedback, copied by fia?
        (inbox_topic("fia", "anf"), "not an inbox topic of customs"),
        ("fusionbus.reports.anf.pk-sd.narcotics", "not an inbox topic of customs"),
    ],
)
def test_feedback_read_from_another_topic_is_wrong_topic(topic: str, why: str) -> None:
    header = about()
    verdict = intake().process(_record(sealed(feedback(header), header), topic))
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.WRONG_TOPIC
    assert why in verdict.detail


def test_feedback_on_a_report_of_another_agency_is_refused() -> None:
    """anf seals to customs feedback that claims to be about a fia report."""
    header = about("fia")
    item = feedback(header)
    verdict = intake().process(
        _record(sealed(item, header, to="customs"), inbox_topic("customs", "anf"))
    )
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.HEADER_MISMATCH
    assert "a report of fia" in verdict.detail


def test_a_report_envelope_on_an_inbox_is_not_feedback() -> None:
    report = _report(sender="anf")
    verdict = intake().process(
        _record(_sealed(report, to=("customs",)), inbox_topic("customs", "anf"))
    )
    assert isinstance(verdict, Rejected)
    assert verdict.reason in (Reason.INVALID_REPORT, Reason.HEADER_MISMATCH)


def test_a_feedback_header_that_disagrees_with_its_content_is_refused() -> None:
    header = about()
    item = feedback(header)
    sealer = Sealer(IDS["anf"], TRUST, clock=lambda: NOW)
    lying = feedback_header(item, header, sealer.signing_kid, [IDS["customs"].encryption_kid])
    lying = lying.model_copy(update={"message_id": uuid.uuid4()})
    data = sealer.seal(lying, item.model_dump_json().encode())
    with pytest.raises(VerificationError) as refused:
        open_feedback(Opener(IDS["customs"], TRUST), data, NOW)
    assert refused.value.reason == Reason.HEADER_MISMATCH


def test_forged_replayed_and_garbage_feedback_is_rejected() -> None:
    header = about()
    item = feedback(header)
    data = sealed(item, header)
    topic = inbox_topic("customs", "anf")
    as_fia = sealed(feedback(header, sender="fia"), header, by="fia")  # on anf's inbox topic
    verdict = intake().process(_record(as_fia, topic))
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.WRONG_TOPIC
    tampered = data[:-40] + (b"A" if data[-40:-39] != b"A" else b"B") + data[-39:]
    assert isinstance(intake().process(_record(tampered, topic)), Rejected)
    assert intake().process(_record(b"\xff not json", topic)) == Rejected(
        Reason.MALFORMED,
        intake().process(_record(b"\xff not json", topic)).detail,  # type: ignore[union-attr]
    )
    reader = intake()
    first = reader.process(_record(data, topic))
    assert isinstance(first, FeedbackAccepted)
    reader.mark(first)
    assert reader.process(_record(data, topic, offset=1)) == Skipped(SkipReason.DUPLICATE)
    again = sealed(item, header)  # the same message id, sealed anew
    replayed = reader.process(_record(again, topic, offset=2))
    assert isinstance(replayed, Rejected)
    assert replayed.reason == Reason.REPLAY


def test_each_recipient_state_takes_the_latest_feedback_in_force() -> None:
    header = about()
    received = feedback(header)
    acknowledged = feedback(header, Outcome.ACKNOWLEDGED).model_copy(
        update={"created_at": NOW + timedelta(minutes=5)}
    )
    no_trace = feedback(header, Outcome.NO_TRACE).model_copy(
        update={"created_at": NOW + timedelta(hours=1)}
    )
    seizure = feedback(
        header, Outcome.SEIZURE, quantity="12.5", unit="kg", replaces=no_trace.message_id
    ).model_copy(update={"created_at": NOW + timedelta(hours=2)})
    fia_arrest = feedback(header, Outcome.ARREST, sender="fia")
    fia_withdrawn = feedback(
        header, Outcome.ARREST, sender="fia", replaces=fia_arrest.message_id, withdrawn=True
    ).model_copy(update={"created_at": NOW + timedelta(hours=3)})
    states = recipient_states(
        [seizure, fia_withdrawn, received, no_trace, acknowledged, fia_arrest]
    )
    assert list(states) == ["anf", "fia"]
    anf = states["anf"]
    assert (anf.received, anf.acknowledged, anf.actioned) == (received, acknowledged, None)
    assert anf.outcome == seizure
    assert anf.document()["outcome"] == {
        "at": seizure.created_at.isoformat(), "message_id": str(seizure.message_id),
        "outcome": "seizure", "quantity": "12.5", "unit": "kg",
    }  # fmt: skip
    assert states["fia"].outcome is None  # withdrawn
    assert Decimal("12.5") == anf.outcome.quantity


def test_only_its_own_sender_can_replace_or_withdraw_a_feedback_message() -> None:
    header = about()
    seizure = feedback(header, Outcome.SEIZURE, quantity="72", unit="kg")
    by_fia = feedback(
        header, Outcome.FALSE_POSITIVE, sender="fia", replaces=seizure.message_id, withdrawn=True
    ).model_copy(update={"created_at": NOW + timedelta(hours=1)})
    states = recipient_states([seizure, by_fia])
    assert states["anf"].outcome == seizure  # fia's withdrawal of anf's message is ignored
    assert states["fia"].outcome is None
    own = feedback(header, Outcome.SEIZURE, replaces=seizure.message_id, withdrawn=True).model_copy(
        update={"created_at": NOW + timedelta(hours=2)}
    )
    assert recipient_states([seizure, by_fia, own])["anf"].outcome is None


def test_feedback_must_be_about_the_header_it_is_sealed_with() -> None:
    header, other = about(), about()
    with pytest.raises(ValueError, match="is about report"):
        sealed(feedback(header), other)


def _notice(report_id: uuid.UUID, sender: str = "customs") -> Notice:
    return Notice.model_validate(
        {
            "message_id": uuid.uuid4(), "report_id": report_id, "sender": sender,
            "created_at": NOW, "action": "retract", "reason": "wrong container",
        }
    )  # fmt: skip


def _sealed_notice(item: Notice, header: RoutingHeader, *, by: str, to: str) -> bytes:
    sealer = Sealer(IDS[by], TRUST, clock=lambda: NOW)
    return seal_notice(sealer, item, header, [IDS[to].encryption_kid])


def test_the_originators_notice_reaches_its_recipient() -> None:
    header = about()
    item = _notice(header.message_id)
    data = _sealed_notice(item, header, by="customs", to="anf")
    taker = InboxIntake(
        Opener(IDS["anf"], TRUST), "anf", delivered=MemoryDelivered(), clock=lambda: NOW,
        originator_of=lambda _: ["customs"],
    )  # fmt: skip
    verdict = taker.process(_record(data, inbox_topic("anf", "customs")))
    assert isinstance(verdict, NoticeAccepted), verdict
    assert verdict.delivery.notice == item
    assert verdict.delivery.header.kind == "notice"
    assert verdict.delivery.header.category == header.category


def test_a_notice_on_another_agencys_report_is_not_originator() -> None:
    """fia, a recipient too, tells anf to retract customs' report: refused."""
    header = about()
    forged = _notice(header.message_id, sender="fia")
    data = _sealed_notice(forged, header, by="fia", to="anf")
    taker = InboxIntake(
        Opener(IDS["anf"], TRUST), "anf", delivered=MemoryDelivered(), clock=lambda: NOW,
        originator_of=lambda _: ["customs"],
    )  # fmt: skip
    verdict = taker.process(_record(data, inbox_topic("anf", "fia")))
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.NOT_ORIGINATOR
    assert "which customs originated" in verdict.detail
