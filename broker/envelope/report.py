"""Report-level glue: derive the routing header from a report, seal it, open and validate it.

Written against :class:`ReportLike`, a typing protocol with exactly the attributes
``schemas.Report`` exposes, so this module does not import the report model; callers pass
``Report`` (or ``Report.model_validate_json``) in.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from broker.envelope._wire import Limits, check_times
from broker.envelope.open import Opener, VerifiedMessage
from broker.envelope.seal import Sealer
from broker.errors import Reason, SchemaValidationError, VerificationError
from schemas.envelope import RoutingHeader

__all__ = [
    "DEFAULT_TTL",
    "HandlingLike",
    "ReportLike",
    "expiry_of",
    "header_for",
    "open_report",
    "refuse_unsendable",
    "report_item",
    "seal_report",
]

DEFAULT_TTL = timedelta(days=7)
"""How long an envelope lives when its report has no ``valid_until``."""


class HandlingLike(Protocol):
    @property
    def tlp(self) -> str: ...
    @property
    def named_recipients(self) -> tuple[str, ...]: ...


class ReportLike(Protocol):
    @property
    def message_id(self) -> uuid.UUID: ...
    @property
    def sender(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def jurisdiction(self) -> str: ...
    @property
    def precedence(self) -> str: ...
    @property
    def handling(self) -> HandlingLike: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def valid_until(self) -> datetime | None: ...
    @property
    def schema_version(self) -> str: ...
    def model_dump_json(self) -> str: ...


R = TypeVar("R", bound=ReportLike)


def _expires(report: ReportLike, ttl: timedelta, limits: Limits) -> datetime:
    try:
        longest = report.created_at + limits.max_lifetime
        return min(report.valid_until or report.created_at + ttl, longest)
    except OverflowError:
        raise SchemaValidationError(
            f"report {report.message_id}: created_at {report.created_at.isoformat()} is too "
            f"close to the end of year 9999 for an envelope to live {ttl} after it; "
            "set created_at to the time the report was made (or leave it out: publish fills "
            "it in)."
        ) from None


def expiry_of(
    report: ReportLike,
    *,
    ttl: timedelta = DEFAULT_TTL,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> datetime:
    """When the envelope :func:`seal_report` makes of ``report`` expires."""
    return _expires(report, ttl, limits)


def header_for(
    report: ReportLike,
    sender_kid: str,
    recipients: Sequence[str],
    *,
    ttl: timedelta = DEFAULT_TTL,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> RoutingHeader:
    """The routing header of ``report``; ``recipients`` are encryption key ids."""
    return RoutingHeader.model_validate(
        {
            "message_id": report.message_id,
            "sender": report.sender,
            "sender_kid": sender_kid,
            "category": report.category,
            "jurisdiction": report.jurisdiction,
            "precedence": str(report.precedence),
            "tlp": str(report.handling.tlp),
            "created_at": report.created_at,
            "expires_at": _expires(report, ttl, limits),
            "recipients": tuple(recipients),
            "schema_version": report.schema_version,
        }
    )


def seal_report(
    sealer: Sealer,
    report: ReportLike,
    recipients: Sequence[str],
    *,
    ttl: timedelta = DEFAULT_TTL,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> bytes:
    """Seal ``report`` to the encryption keys ``recipients``.

    Refuses (:class:`SchemaValidationError`, naming the field and the allowed range) a
    report its recipients would reject on arrival: made further in the future than the
    allowed clock skew, or already expired."""
    return sealer.seal(*report_item(sealer, report, recipients, ttl=ttl, limits=limits))


def report_item(
    sealer: Sealer,
    report: ReportLike,
    recipients: Sequence[str],
    *,
    ttl: timedelta = DEFAULT_TTL,
    limits: Limits = Limits(),  # noqa: B008 - frozen, immutable default
) -> tuple[RoutingHeader, bytes]:
    """What :func:`seal_report` seals, checked the same way: the header and the payload,
    for :meth:`Sealer.seal_batch`."""
    header = header_for(report, sealer.signing_kid, recipients, ttl=ttl, limits=limits)
    refuse_unsendable(header, sealer.now(), limits)
    return header, report.model_dump_json().encode()


def refuse_unsendable(header: RoutingHeader, now: datetime, limits: Limits) -> None:
    """Raise :class:`SchemaValidationError` if recipients would refuse ``header`` at ``now``."""
    try:
        check_times(header, now, limits)
    except VerificationError as exc:
        what = f"report {header.message_id}"
        if exc.reason == Reason.NOT_YET_VALID:
            raise SchemaValidationError(
                f"{what}: created_at {header.created_at.isoformat()} is more than "
                f"{limits.clock_skew} ahead of this machine's clock ({now.isoformat()}); "
                f"recipients accept created_at up to now + {limits.clock_skew}. Set "
                "created_at to the time the report was made (or leave it out: publish fills it "
                "in), or correct the clock."
            ) from None
        if exc.reason == Reason.EXPIRED:
            raise SchemaValidationError(
                f"{what}: its envelope would expire at {header.expires_at.isoformat()} "
                f"(valid_until, else created_at + the TTL, at most created_at + "
                f"{limits.max_lifetime}), which is not after now ({now.isoformat()}); "
                "recipients would refuse it as expired. Set valid_until in the future, or "
                "created_at to the time the report was made."
            ) from None
        raise SchemaValidationError(f"{what}: {exc.detail}") from None


def _mismatch(report: ReportLike, header: RoutingHeader) -> str | None:
    if header.kind != "report":
        return f"the signed routing header says kind {header.kind!r}, not a report"
    pairs = {
        "message_id": (report.message_id, header.message_id),
        "sender": (report.sender, header.sender),
        "category": (report.category, header.category),
        "jurisdiction": (report.jurisdiction, header.jurisdiction),
        "precedence": (str(report.precedence), header.precedence),
        "tlp": (str(report.handling.tlp), header.tlp),
        "created_at": (report.created_at, header.created_at),
        "schema_version": (report.schema_version, header.schema_version),
    }
    for name, (inside, outside) in pairs.items():
        if inside != outside:
            return f"report {name} is {inside!r}; the signed routing header says {outside!r}"
    if report.valid_until is not None and header.expires_at > report.valid_until:
        return "the envelope outlives the report's valid_until"
    return None


def open_report(
    opener: Opener, data: bytes, now: datetime, *, parse: Callable[[bytes], R]
) -> VerifiedMessage[R]:
    """Open ``data`` and validate the report (``parse=Report.model_validate_json``).

    Besides the envelope checks: the report must agree with the signed routing header
    (``header_mismatch``) and validate (``invalid_report``).
    """
    message = opener.open(data, now, parse=parse)
    problem = _mismatch(message.content, message.header)
    if problem is not None:
        raise VerificationError(Reason.HEADER_MISMATCH, problem)
    return message
