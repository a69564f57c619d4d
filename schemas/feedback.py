"""Feedback: a recipient's receipt, acknowledgement or outcome of a report, to its originator.

The intelligence cycle closes here: a recipient's subscriber sends ``received`` once the
application took the report, people send ``acknowledged`` and ``actioned``, and finally what
came of it (``seizure`` with a quantity and unit, ``arrest``, ``no_trace``,
``false_positive``, ``other`` with a note); and ``applied`` once it applied the
originator's notice (:class:`schemas.Notice`) to its copies. A feedback message can amend
(``replaces``) or withdraw (``replaces`` and ``withdrawn``) an earlier one of the same sender
about the same report. It is sealed to the originator alone and travels on the originator's
inbox topic (``docs/cycle.md``). Same versioning rules as :class:`schemas.Report`.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Self

from pydantic import Field, model_validator

from schemas._base import (
    AgencyId,
    ContractModel,
    SchemaVersion,
    ShortText,
    Text,
    UtcDatetime,
    expected,
)
from schemas.vocab import Outcome

__all__ = ["Feedback"]


class Feedback(ContractModel):
    """What an agency reports back about a report it received (schema version 1)."""

    schema_version: SchemaVersion = "1.0"
    message_id: uuid.UUID
    """This feedback message's own id."""
    report_id: uuid.UUID
    """The ``message_id`` of the report this feedback is about."""
    originator: AgencyId
    """The report's sender: the one agency this feedback is sealed to."""
    sender: AgencyId
    """The agency giving feedback (a recipient of the report)."""
    created_at: UtcDatetime
    outcome: Outcome
    quantity: Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3)] | None = None
    """How much was seized (``seizure`` only, with ``unit``)."""
    unit: ShortText | None = None
    """The unit of ``quantity``: ``kg``, ``l``, ``pieces``, ``PKR``, ..."""
    note: Text | None = None
    replaces: uuid.UUID | None = None
    """An earlier feedback message of the same sender about the same report that this one
    amends (or, with ``withdrawn``, withdraws)."""
    withdrawn: bool = False
    """This message withdraws ``replaces`` and says nothing new; ``outcome`` repeats the
    withdrawn one's."""
    forward_to: AgencyId | None = None
    """The agency a forward is asked for or was made to (``forward_requested`` and
    ``forwarded`` only, and then required)."""
    notice_id: uuid.UUID | None = None
    """The originator's notice (:class:`schemas.Notice`) this ``applied`` feedback answers
    (``applied`` only, and then required)."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.report_id == self.message_id:
            raise expected(
                "self_reference", "expected report_id to name the report, not this feedback"
            )
        if self.originator == self.sender:
            raise expected(
                "own_report", "expected originator to be another agency than sender: an agency "
                "gives feedback on reports it received"
            )  # fmt: skip
        if (self.quantity is None) != (self.unit is None):
            raise expected("quantity_unit", "expected quantity and unit together, or neither")
        if self.quantity is not None and self.outcome is not Outcome.SEIZURE:
            raise expected("quantity_outcome", "expected quantity only with outcome seizure")
        if self.outcome is Outcome.OTHER and self.note is None:
            raise expected("note_required", "expected a note saying what the outcome was")
        if self.withdrawn and self.replaces is None:
            raise expected("withdraws_nothing", "expected replaces to name the withdrawn feedback")
        if (self.notice_id is not None) != (self.outcome is Outcome.APPLIED):
            raise expected(
                "notice_applied", "expected notice_id with outcome applied, and only with it"
            )
        if (self.forward_to is not None) != self.outcome.about_forwarding:
            raise expected(
                "forward_to", "expected forward_to with outcome forward_requested or forwarded, "
                "and only with them",
            )  # fmt: skip
        if self.forward_to in (self.sender, self.originator):
            raise expected(
                "forward_to", "expected forward_to to name a third agency, not the sender or "
                "the originator",
            )  # fmt: skip
        if self.replaces in (self.message_id, self.report_id):
            raise expected(
                "self_reference", "expected replaces to name an earlier feedback message"
            )
        return self
