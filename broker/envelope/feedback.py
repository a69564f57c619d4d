"""Feedback-level glue: the routing header of a feedback message, sealing it, opening it.

A feedback message (:class:`schemas.Feedback`) travels in the same sealed envelope as a
report, with ``kind = "feedback"`` in the signed routing header, sealed to the originator's
encryption key alone. Its header repeats the category, jurisdiction, precedence and TLP of
the report it is about (the originator knows them; nobody else reads the inbox topic), so
the feedback is handled as the report is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from broker.envelope._wire import Limits
from broker.envelope.open import Opener, VerifiedMessage
from broker.envelope.report import refuse_unsendable
from broker.envelope.seal import Sealer
from broker.errors import Reason, VerificationError
from schemas.envelope import RoutingHeader
from schemas.feedback import Feedback
from schemas.notice import Notice

__all__ = [
    "FEEDBACK_TTL",
    "check_content",
    "check_feedback",
    "feedback_header",
    "open_feedback",
    "seal_feedback",
]

FEEDBACK_TTL = timedelta(days=31)
"""How long a feedback envelope lives: the longest an envelope may (``Limits.max_lifetime``),
since an originator may read its inbox long after the feedback was sent."""


def feedback_header(
    feedback: Feedback,
    about: RoutingHeader,
    sender_kid: str,
    recipients: Sequence[str],
    *,
    ttl: timedelta = FEEDBACK_TTL,
) -> RoutingHeader:
    """The routing header of ``feedback`` on the report whose header is ``about``."""
    return RoutingHeader.model_validate(
        {
            "message_id": feedback.message_id,
            "sender": feedback.sender,
            "sender_kid": sender_kid,
            "category": about.category,
            "jurisdiction": about.jurisdiction,
            "precedence": about.precedence,
            "tlp": about.tlp,
            "created_at": feedback.created_at,
            "expires_at": feedback.created_at + ttl,
            "recipients": tuple(recipients),
            "schema_version": feedback.schema_version,
            "kind": "feedback",
        }
    )


def seal_feedback(
    sealer: Sealer,
    feedback: Feedback,
    about: RoutingHeader,
    recipients: Sequence[str],
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> bytes:
    """Seal ``feedback`` (about the report with header ``about``) to ``recipients``."""
    if feedback.report_id != about.message_id or feedback.originator != about.sender:
        raise ValueError(
            f"feedback {feedback.message_id} is about report {feedback.report_id} of "
            f"{feedback.originator}, not {about.message_id} of {about.sender}"
        )
    header = feedback_header(feedback, about, sealer.signing_kid, recipients)
    refuse_unsendable(header, sealer.now(), limits)
    return sealer.seal(header, feedback.model_dump_json().encode())


def check_feedback(message: VerifiedMessage[bytes]) -> Feedback:
    """The feedback in an opened envelope whose header says ``kind = "feedback"``; raises
    :class:`VerificationError` when the payload is not feedback or disagrees with the header."""
    return check_content(message, Feedback, "feedback")


M = TypeVar("M", Feedback, Notice)


def check_content(message: VerifiedMessage[bytes], model: type[M], kind: str) -> M:
    """The ``model`` message in an opened envelope: its payload valid (``invalid_report``),
    the header's ``kind`` this one and its id, sender, time and schema version the
    message's own (``header_mismatch``)."""
    header = message.header
    try:
        content = model.model_validate_json(message.payload)
    except ValueError as exc:
        raise VerificationError(Reason.INVALID_REPORT, str(exc)) from exc
    pairs = {
        "kind": (kind, header.kind),
        "message_id": (content.message_id, header.message_id),
        "sender": (content.sender, header.sender),
        "created_at": (content.created_at, header.created_at),
        "schema_version": (content.schema_version, header.schema_version),
    }
    for name, (inside, outside) in pairs.items():
        if inside != outside:
            raise VerificationError(
                Reason.HEADER_MISMATCH,
                f"{kind} {name} is {inside!r}; the signed routing header says {outside!r}",
            )
    return content


def open_feedback(opener: Opener, data: bytes, now: datetime) -> VerifiedMessage[Feedback]:
    """Open ``data`` as feedback: besides the envelope checks, the header must say
    ``kind = "feedback"`` and agree with the message (``header_mismatch``)."""
    message = opener.open(data, now)
    feedback = check_feedback(message)
    return VerifiedMessage(
        message.header, message.payload, feedback, message.sender_key, message.signed
    )
