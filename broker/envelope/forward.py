"""Forward-level glue: sealing a received report onward, and checking one that came so.

A forward (:class:`schemas.Forward`) travels in the same sealed envelope as a report, with
``kind = "forward"`` in the signed routing header, sealed to the one agency it is forwarded
to, on that agency's inbox topic from the forwarder. The header repeats the original's
category, jurisdiction, precedence and TLP, and its expiry: a forward never outlives the
report. The new recipient checks the forwarder's envelope as any other, then the
originator's own signature on the report (:func:`broker.envelope.verify_signed`) and, where
the handling limits onward sharing, the originator's signed consent naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from broker.envelope._wire import Limits, check_times
from broker.envelope.open import DEFAULT_LIMITS, VerifiedMessage, verify_signed
from broker.envelope.report import refuse_unsendable
from broker.envelope.seal import Sealer
from broker.errors import Reason, VerificationError
from schemas import Forward, HandlingCondition, Notice, NoticeAction, Report, Tlp
from schemas.envelope import RoutingHeader

if TYPE_CHECKING:
    from broker.federation.snapshot import Directory

__all__ = ["OpenedForward", "check_forward", "needs_consent", "seal_forward"]


def needs_consent(report: Report) -> str | None:
    """Why forwarding ``report`` needs its originator's consent, or None if it does not:
    ``TLP:RED`` (named recipients only), ``TLP:AMBER+STRICT`` (the recipient organisation
    only) and the ``no_onward_dissemination`` condition."""
    handling = report.handling
    if handling.tlp in (Tlp.RED, Tlp.AMBER_STRICT):
        return f"it is {handling.tlp}"
    if HandlingCondition.NO_ONWARD_DISSEMINATION in handling.conditions:
        return "its handling says no_onward_dissemination"
    return None


@dataclass(frozen=True, slots=True)
class OpenedForward:
    """A forward whose every signature checked out: the forward, the report and the
    originator's signed header of it."""

    forward: Forward
    report: Report
    original: RoutingHeader


def seal_forward(
    sealer: Sealer,
    forward: Forward,
    original: RoutingHeader,
    recipients: list[str],
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> bytes:
    """Seal ``forward`` (of the report whose verified header is ``original``) to
    ``recipients`` (the new recipient's key)."""
    header = RoutingHeader.model_validate(
        {
            "message_id": forward.message_id,
            "sender": forward.sender,
            "sender_kid": sealer.signing_kid,
            "category": original.category,
            "jurisdiction": original.jurisdiction,
            "precedence": original.precedence,
            "tlp": original.tlp,
            "created_at": forward.created_at,
            "expires_at": original.expires_at,
            "recipients": tuple(recipients),
            "schema_version": forward.schema_version,
            "kind": "forward",
        }
    )
    refuse_unsendable(header, sealer.now(), limits)
    return sealer.seal(header, forward.model_dump_json().encode())


def check_forward(
    message: VerifiedMessage[bytes],
    directory: Directory,
    now: datetime,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> OpenedForward:
    """The forward in an opened envelope whose header says ``kind = "forward"``, with the
    originator's signature on the report and (where needed) on its consent checked.
    Raises :class:`VerificationError`: ``invalid_report``, ``header_mismatch``,
    ``bad_signature`` and the key reasons, or ``not_permitted`` for a forward the handling
    does not allow without a consent that names this recipient."""
    header = message.header
    try:
        forward = Forward.model_validate_json(message.payload)
    except ValueError as exc:
        raise VerificationError(Reason.INVALID_REPORT, str(exc)) from exc
    if (forward.message_id, forward.sender) != (header.message_id, header.sender):
        raise VerificationError(
            Reason.HEADER_MISMATCH, "the forward's id or sender differs from its signed header"
        )
    original = verify_signed(forward.original.encode("ascii"), directory, now, limits=limits)
    signed = original.header
    if (signed.message_id, signed.sender, signed.kind) != (
        forward.report_id, forward.originator, "report"
    ):  # fmt: skip
        raise VerificationError(
            Reason.HEADER_MISMATCH,
            f"the forward names report {forward.report_id} of {forward.originator}; the signed "
            f"content is {signed.kind} {signed.message_id} of {signed.sender}",
        )
    if forward.sender not in _addressed(signed, directory):
        raise VerificationError(
            Reason.NOT_PERMITTED,
            f"{forward.sender} forwards report {forward.report_id}, which "
            f"{forward.originator} did not seal to it: only a recipient may forward a report",
        )
    routing = ("category", "jurisdiction", "precedence", "tlp", "expires_at")
    if any(getattr(signed, name) != getattr(header, name) for name in routing):
        raise VerificationError(
            Reason.HEADER_MISMATCH, "the forward's routing differs from the original's"
        )
    try:
        report = Report.model_validate_json(original.payload)
    except ValueError as exc:
        raise VerificationError(Reason.INVALID_REPORT, str(exc)) from exc
    if (report.message_id, report.sender) != (signed.message_id, signed.sender):
        raise VerificationError(
            Reason.HEADER_MISMATCH, "the original report differs from its signed header"
        )
    why = needs_consent(report)
    if why is not None:
        _check_consent(forward, why, directory, now, limits)
    return OpenedForward(forward, report, signed)


def _check_consent(
    forward: Forward, why: str, directory: Directory, now: datetime, limits: Limits
) -> None:
    if forward.consent is None:
        raise VerificationError(
            Reason.NOT_PERMITTED,
            f"report {forward.report_id} may be forwarded only with {forward.originator}'s "
            f"consent ({why}), and none came with it",
        )
    consent = verify_signed(forward.consent.encode("ascii"), directory, now, limits=limits)
    check_times(consent.header, now, limits)  # a consent lives as long as its envelope
    try:
        notice = Notice.model_validate_json(consent.payload)
    except ValueError as exc:
        raise VerificationError(Reason.INVALID_REPORT, f"consent: {exc}") from exc
    granted = (
        consent.header.kind == "notice"
        and consent.header.sender == forward.originator
        and notice.sender == forward.originator
        and notice.action is NoticeAction.CONSENT
        and notice.report_id == forward.report_id
        and notice.forward_to == forward.to
        and forward.sender in _addressed(consent.header, directory)
    )
    if not granted:
        raise VerificationError(
            Reason.NOT_PERMITTED,
            f"the consent that came with forward {forward.message_id} is not "
            f"{forward.originator}'s consent to {forward.sender} forwarding report "
            f"{forward.report_id} to {forward.to}",
        )


def _addressed(header: RoutingHeader, directory: Directory) -> set[str]:
    """The agencies whose keys a signed header was sealed to."""
    snapshot = directory.snapshot
    found = (snapshot.encryption_key(kid) for kid in header.recipients)
    return {record.agency for record in found if record is not None}
