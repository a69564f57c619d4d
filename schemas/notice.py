"""Notice: the originator tells one recipient of its report to supersede, retract or purge
it, or answers its request to forward it (consent, decline).

Only the originator of a report may send a notice about it; it is sealed to one recipient
and travels on that recipient's inbox topic from the originator
(``fusionbus.inbox.<recipient>.<originator>``), so it reaches exactly the agencies the report
was sealed to, whatever their grants are now. The recipient applies it to its copies and
answers with ``applied`` feedback (:class:`schemas.Feedback`, ``notice_id``). See
``docs/cycle.md``. Same versioning rules as :class:`schemas.Report`.
"""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import model_validator

from schemas._base import AgencyId, ContractModel, SchemaVersion, Text, UtcDatetime, expected
from schemas.vocab import NoticeAction

__all__ = ["Notice"]


class Notice(ContractModel):
    """The originator's word on one of its reports (schema version 1)."""

    schema_version: SchemaVersion = "1.0"
    message_id: uuid.UUID
    """This notice's own id."""
    report_id: uuid.UUID
    """The ``message_id`` of the report it is about."""
    sender: AgencyId
    """The report's originator; nobody else's notice is applied."""
    created_at: UtcDatetime
    action: NoticeAction
    reason: Text
    """Why: shown to the recipient's people wherever the report is listed (not for purge,
    whose report is shown nowhere)."""
    superseded_by: uuid.UUID | None = None
    """The report that replaces this one (``supersede`` only, and then required)."""
    forward_to: AgencyId | None = None
    """The agency the recipient may (``consent``) or may not (``decline``) forward the
    report to (those two only, and then required)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.message_id == self.report_id:
            raise expected(
                "self_reference", "expected report_id to name the report, not this notice"
            )
        if (self.superseded_by is not None) != (self.action is NoticeAction.SUPERSEDE):
            raise expected(
                "superseded_by", "expected superseded_by with action supersede, and only with it"
            )
        answers = self.action in (NoticeAction.CONSENT, NoticeAction.DECLINE)
        if (self.forward_to is not None) != answers:
            raise expected(
                "forward_to", "expected forward_to with action consent or decline, and only "
                "with them",
            )  # fmt: skip
        if self.forward_to == self.sender:
            raise expected("forward_to", "expected forward_to to name another agency")
        if self.superseded_by == self.report_id:
            raise expected(
                "self_reference", "expected superseded_by to name another report than report_id"
            )
        return self
