"""Notice-level glue: the routing header of an originator's notice, sealing it, opening it,
and opening whatever an inbox topic carries.

A notice (:class:`schemas.Notice`) travels in the same sealed envelope as a report, with
``kind = "notice"`` in the signed routing header, sealed to one recipient's encryption key.
Its header repeats the category, jurisdiction, precedence and TLP of the report it is about,
so the notice is handled as the report was.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from broker.envelope._wire import Limits
from broker.envelope.feedback import FEEDBACK_TTL, check_content, check_feedback
from broker.envelope.forward import OpenedForward, check_forward
from broker.envelope.open import Opener, VerifiedMessage
from broker.envelope.report import refuse_unsendable
from broker.envelope.seal import Sealer
from broker.errors import Reason, VerificationError
from schemas import Feedback, Notice
from schemas.envelope import RoutingHeader

__all__ = [
    "NOTICE_TTL",
    "Routing",
    "notice_header",
    "open_inbox_message",
    "open_notice",
    "seal_notice",
]

NOTICE_TTL = FEEDBACK_TTL
"""How long a notice envelope lives: the longest an envelope may, so a recipient that was
offline for weeks still learns of it (an inbox topic keeps its records as long)."""


@dataclass(frozen=True, slots=True)
class Routing:
    """The routing of the report a notice is about, as its envelope's header said."""

    category: str
    jurisdiction: str
    precedence: str
    tlp: str


def notice_header(
    notice: Notice,
    about: Routing | RoutingHeader,
    sender_kid: str,
    recipients: Sequence[str],
    *,
    ttl: timedelta = NOTICE_TTL,
) -> RoutingHeader:
    """The routing header of ``notice`` on the report routed as ``about``."""
    return RoutingHeader.model_validate(
        {
            "message_id": notice.message_id,
            "sender": notice.sender,
            "sender_kid": sender_kid,
            "category": about.category,
            "jurisdiction": about.jurisdiction,
            "precedence": about.precedence,
            "tlp": about.tlp,
            "created_at": notice.created_at,
            "expires_at": notice.created_at + ttl,
            "recipients": tuple(recipients),
            "schema_version": notice.schema_version,
            "kind": "notice",
        }
    )


def seal_notice(
    sealer: Sealer,
    notice: Notice,
    about: Routing | RoutingHeader,
    recipients: Sequence[str],
    *,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> bytes:
    """Seal ``notice`` (about the report routed as ``about``) to ``recipients``; the
    sealer refuses a notice of another sender than its agency."""
    header = notice_header(notice, about, sealer.signing_kid, recipients)
    refuse_unsendable(header, sealer.now(), limits)
    return sealer.seal(header, notice.model_dump_json().encode())


def check_notice(message: VerifiedMessage[bytes]) -> Notice:
    """The notice in an opened envelope whose header says ``kind = "notice"``; raises
    :class:`VerificationError` when the payload is not one or disagrees with the header."""
    return check_content(message, Notice, "notice")


def open_notice(opener: Opener, data: bytes, now: datetime) -> VerifiedMessage[Notice]:
    """Open ``data`` as a notice (``kind = "notice"``, agreeing with its header)."""
    message = opener.open(data, now)
    notice = check_notice(message)
    return VerifiedMessage(
        message.header, message.payload, notice, message.sender_key, message.signed
    )


def open_inbox_message(
    opener: Opener, data: bytes, now: datetime
) -> VerifiedMessage[Feedback] | VerifiedMessage[Notice] | VerifiedMessage[OpenedForward]:
    """Open what an inbox topic carries: feedback, a notice or a forward, by the signed
    header's ``kind``; anything else is ``header_mismatch``."""
    message = opener.open(data, now)
    kind = message.header.kind
    if kind == "forward":
        opened = check_forward(message, opener.directory, now, limits=opener.limits)
        return VerifiedMessage(
            message.header, message.payload, opened, message.sender_key, message.signed
        )
    if kind == "feedback":
        return VerifiedMessage(
            message.header, message.payload, check_feedback(message), message.sender_key,
            message.signed,
        )  # fmt: skip
    if kind == "notice":
        return VerifiedMessage(
            message.header, message.payload, check_notice(message), message.sender_key,
            message.signed,
        )  # fmt: skip
    raise VerificationError(
        Reason.HEADER_MISMATCH,
        f"an inbox carries feedback, notices and forwards; this envelope's signed header says "
        f"{kind!r}",
    )
