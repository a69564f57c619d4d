"""The sealed envelope: signed, end-to-end encrypted reports as standard JOSE (sans-IO).

Seal with a :class:`Sealer` (or :func:`seal_envelope` once); open as a recipient with an
:class:`Opener` (or :func:`open_envelope`); check as a non-recipient with
:func:`verify_envelope`. Every rejection is a :class:`broker.errors.VerificationError`
whose ``reason`` is a :class:`Reason`. Public keys come from a directory snapshot
(:class:`~broker.federation.snapshot.DirectorySnapshot`, or anything yielding the current
one). The format is described in ``docs/envelope.md``.
"""

from broker.envelope._wire import Limits
from broker.envelope.feedback import FEEDBACK_TTL, feedback_header, open_feedback, seal_feedback
from broker.envelope.notice import (
    NOTICE_TTL,
    Routing,
    notice_header,
    open_inbox_message,
    open_notice,
    seal_notice,
)
from broker.envelope.open import (
    DEFAULT_LIMITS,
    Opener,
    VerifiedMessage,
    open_envelope,
    verify_envelope,
    verify_signed,
)
from broker.envelope.replay import MemoryReplayGuard, ReplayGuard
from broker.envelope.report import (
    ReportLike,
    expiry_of,
    header_for,
    open_report,
    report_item,
    seal_report,
)
from broker.envelope.seal import Sealer, seal_envelope
from broker.errors import Reason

__all__ = [
    "DEFAULT_LIMITS",
    "FEEDBACK_TTL",
    "NOTICE_TTL",
    "Limits",
    "MemoryReplayGuard",
    "Opener",
    "Reason",
    "ReplayGuard",
    "ReportLike",
    "Routing",
    "Sealer",
    "VerifiedMessage",
    "expiry_of",
    "feedback_header",
    "header_for",
    "notice_header",
    "open_envelope",
    "open_feedback",
    "open_inbox_message",
    "open_notice",
    "open_report",
    "report_item",
    "seal_envelope",
    "seal_feedback",
    "seal_notice",
    "seal_report",
    "verify_envelope",
    "verify_signed",
]
