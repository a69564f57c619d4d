"""An inbox never crashes, stalls or lets a changed record through: notices and forwards,
mutated byte by byte, truncated, or put in another kind's place, each get a verdict with a
reason code, never ``internal_error``, and only the untouched record is accepted."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.envelope import Opener
from broker.errors import Reason
from broker.topics import inbox_topic
from consumers import MemoryDelivered, Rejected, Skipped
from consumers.inbox import ForwardAccepted, InboxIntake, NoticeAccepted
from tests.unit.consumers.test_forward import consent, forwarded, limited, received
from tests.unit.consumers.test_inbox import _notice, _sealed_notice, about
from tests.unit.consumers.test_intake import IDS, NOW, TRUST, _record

HOSTILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _notice_envelope() -> bytes:
    header = about()
    return _sealed_notice(_notice(header.message_id), header, by="customs", to="anf")


NOTICE = _notice_envelope()


def _intake(agency: str) -> InboxIntake:
    return InboxIntake(
        Opener(IDS[agency], TRUST), agency, delivered=MemoryDelivered(), clock=lambda: NOW,
        originator_of=lambda _: ["customs"],
    )  # fmt: skip


def _judged(verdict: object, *, changed: bool) -> None:
    assert isinstance(verdict, Rejected | Skipped | NoticeAccepted | ForwardAccepted), verdict
    if isinstance(verdict, Rejected):
        assert verdict.reason != Reason.INTERNAL_ERROR, verdict
    if changed:
        assert not isinstance(verdict, NoticeAccepted | ForwardAccepted), verdict


@HOSTILE
@given(st.data())
def test_a_mutated_notice_is_refused_with_a_reason(data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(NOTICE) - 1))
    value = data.draw(st.integers(0, 255))
    mutated = NOTICE[:position] + bytes([value]) + NOTICE[position + 1 :]
    cut = data.draw(st.integers(0, len(mutated)))
    mutated = mutated[:cut]
    verdict = _intake("anf").process(_record(mutated, inbox_topic("anf", "customs")))
    _judged(verdict, changed=mutated != NOTICE)


@HOSTILE
@given(st.binary(max_size=2048))
def test_noise_on_an_inbox_is_refused_with_a_reason(noise: bytes) -> None:
    _judged(_intake("fia").process(_record(noise, inbox_topic("fia", "anf"))), changed=True)


def test_a_forward_s_parts_swapped_are_refused() -> None:
    """The consent in place of the original, the original in place of the consent."""
    report = limited(conditions=["no_onward_dissemination"])
    _, signed = received(report)
    granted = consent(report)
    swapped = forwarded(report, original=granted.decode(), signed_consent=signed)
    assert isinstance(swapped, Rejected)
    assert swapped.reason in {Reason.HEADER_MISMATCH, Reason.NOT_PERMITTED}
    assert isinstance(forwarded(report, signed_consent=granted), ForwardAccepted)
