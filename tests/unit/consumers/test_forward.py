"""Forwards, adversarially: the new recipient checks the originator's own signature and,
where the handling limits onward sharing, the originator's signed consent naming it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from broker.envelope import Opener, Routing, Sealer, seal_notice
from broker.envelope.forward import check_forward, seal_forward
from broker.errors import Reason, VerificationError
from broker.topics import inbox_topic
from consumers import MemoryDelivered, Rejected
from consumers.inbox import ForwardAccepted, InboxIntake
from schemas import Forward, Notice, NoticeAction, Report
from schemas.envelope import RoutingHeader
from tests.unit.consumers.test_intake import IDS, NOW, TRUST, _record, _report, _sealed


def received(report: Report) -> tuple[RoutingHeader, bytes]:
    """anf's verified header of a customs report, and customs' signed content of it."""
    opened = Opener(IDS["anf"], TRUST).open(_sealed(report), NOW)
    return opened.header, opened.signed


def consent(report: Report, *, by: str = "customs", to: str = "fia") -> bytes:
    """``by``'s signed consent notice (sealed to anf, opened by anf): its inner JWS."""
    notice = Notice.model_validate(
        {
            "message_id": uuid.uuid4(), "report_id": report.message_id, "sender": by,
            "created_at": NOW, "action": NoticeAction.CONSENT, "reason": "go ahead",
            "forward_to": to,
        }
    )  # fmt: skip
    routing = Routing(report.category, report.jurisdiction, str(report.precedence), "TLP:AMBER")
    sealer = Sealer(IDS[by], TRUST, clock=lambda: NOW)
    data = seal_notice(sealer, notice, routing, [IDS["anf"].encryption_kid])
    return Opener(IDS["anf"], TRUST).open(data, NOW).signed


def forwarded(report: Report, *, signed_consent: bytes | None = None, **changes: Any) -> Any:
    header, signed = received(report)
    forward = Forward.model_validate(
        {
            "message_id": uuid.uuid4(), "sender": "anf", "created_at": NOW,
            "report_id": report.message_id, "originator": "customs", "to": "fia",
            "original": signed.decode(),
            "consent": None if signed_consent is None else signed_consent.decode(),
            **changes,
        }
    )  # fmt: skip
    sealer = Sealer(IDS["anf"], TRUST, clock=lambda: NOW)
    data = seal_forward(sealer, forward, header, [IDS["fia"].encryption_kid])
    intake = InboxIntake(
        Opener(IDS["fia"], TRUST), "fia", delivered=MemoryDelivered(), clock=lambda: NOW
    )
    return intake.process(_record(data, inbox_topic("fia", "anf")))


def limited(**handling: Any) -> Report:
    base = _report()
    plain = {"named_recipients": [], "conditions": [], "tlp": "TLP:AMBER"}
    return _report(handling=base.handling.model_dump() | plain | handling)


def test_an_amber_report_is_forwarded_with_the_originators_signature() -> None:
    report = limited()
    verdict = forwarded(report)
    assert isinstance(verdict, ForwardAccepted), verdict
    delivery = verdict.delivery.delivery
    assert delivery.report == report
    assert delivery.header.sender == "customs"
    assert delivery.forwarded_by == "anf"


@pytest.mark.parametrize(
    "handling",
    [{"conditions": ["no_onward_dissemination"]}, {"tlp": "TLP:AMBER+STRICT"}],
)
def test_a_limited_report_needs_the_originators_consent(handling: dict[str, Any]) -> None:
    report = limited(**handling)
    refused = forwarded(report)
    assert isinstance(refused, Rejected)
    assert refused.reason == Reason.NOT_PERMITTED
    assert isinstance(forwarded(report, signed_consent=consent(report)), ForwardAccepted)


def test_a_consent_the_forwarder_signed_itself_is_not_permitted() -> None:
    report = limited(conditions=["no_onward_dissemination"])
    verdict = forwarded(report, signed_consent=consent(report, by="anf"))
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.NOT_PERMITTED


def test_a_consent_naming_another_recipient_is_not_permitted() -> None:
    report = limited(conditions=["no_onward_dissemination"])
    verdict = forwarded(report, signed_consent=consent(report, to="customs2"))
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.NOT_PERMITTED


def test_a_tampered_original_fails_the_originators_signature() -> None:
    report = limited()
    _, signed = received(report)
    head, body, signature = signed.split(b".")
    flipped = signature[:-2] + (b"AA" if signature[-2:] != b"AA" else b"BA")
    verdict = forwarded(report, original=b".".join((head, body, flipped)).decode())
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.BAD_SIGNATURE


def test_an_original_of_another_report_is_header_mismatch() -> None:
    report, other = limited(), limited()
    _, signed = received(other)
    verdict = forwarded(report, original=signed.decode())
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.HEADER_MISMATCH


def test_only_a_recipient_of_the_report_may_forward_it() -> None:
    """fia got hold of customs' signed report (sealed to anf alone) and forwards it."""
    report = limited()
    header, signed = received(report)
    forward = Forward.model_validate(
        {
            "message_id": uuid.uuid4(), "sender": "fia", "created_at": NOW,
            "report_id": report.message_id, "originator": "customs", "to": "anf",
            "original": signed.decode(),
        }
    )  # fmt: skip
    data = seal_forward(
        Sealer(IDS["fia"], TRUST, clock=lambda: NOW), forward, header, [IDS["anf"].encryption_kid]
    )
    intake = InboxIntake(
        Opener(IDS["anf"], TRUST), "anf", delivered=MemoryDelivered(), clock=lambda: NOW
    )
    verdict = intake.process(_record(data, inbox_topic("anf", "fia")))
    assert isinstance(verdict, Rejected)
    assert verdict.reason == Reason.NOT_PERMITTED
    assert "only a recipient may forward" in verdict.detail


def test_an_expired_consent_is_not_permitted() -> None:
    report = limited(conditions=["no_onward_dissemination"])
    granted = consent(report)
    later = NOW + timedelta(days=40)  # past the consent's envelope lifetime
    header, signed = received(report)
    forward = Forward.model_validate(
        {
            "message_id": uuid.uuid4(), "sender": "anf", "created_at": NOW,
            "report_id": report.message_id, "originator": "customs", "to": "fia",
            "original": signed.decode(), "consent": granted.decode(),
        }
    )  # fmt: skip
    opened = Opener(IDS["fia"], TRUST).open(
        seal_forward(
            Sealer(IDS["anf"], TRUST, clock=lambda: NOW), forward, header,
            [IDS["fia"].encryption_kid],
        ),
        NOW,
    )  # fmt: skip
    with pytest.raises(VerificationError) as caught:
        check_forward(opened, TRUST, later)
    assert caught.value.reason in {Reason.EXPIRED, Reason.EXPIRED_KEY}
