"""Feedback: a recipient's receipt acknowledgement or outcome report on a report.

The intelligence cycle closes here: recipients send ``received``/``acknowledged`` first,
then the outcome (``actioned``, ``seizure``, ``arrest``, ``no_trace``,
``false_positive``). Same versioning rules as :class:`schemas.Report`.
"""

from __future__ import annotations

import uuid
from typing import Self

from pydantic import model_validator

from schemas._base import AgencyId, ContractModel, SchemaVersion, Text, UtcDatetime, expected
from schemas.vocab import Outcome

__all__ = ["Feedback"]


class Feedback(ContractModel):
    """What an agency reports back about a report it received (schema version 1)."""

    schema_version: SchemaVersion = "1.0"
    message_id: uuid.UUID
    """This feedback message's own id."""
    report_id: uuid.UUID
    """The ``message_id`` of the report this feedback is about."""
    sender: AgencyId
    """The agency giving feedback."""
    created_at: UtcDatetime
    outcome: Outcome
    note: Text | None = None

    @model_validator(mode="after")
    def _about_another_message(self) -> Self:
        if self.report_id == self.message_id:
            raise expected(
                "self_reference", "expected report_id to name the report, not this feedback"
            )
        return self
