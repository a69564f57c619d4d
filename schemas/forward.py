"""Forward: a recipient passes a report on to another agency, carrying the originator's own
signed content, and the originator's signed consent where the handling asks for it.

The forwarder cannot change a word: ``original`` is the originator's inner JWS of the report
(its routing header and report, signed with its key), checked by the new recipient against
the directory. A report whose handling limits onward sharing (``TLP:RED``,
``TLP:AMBER+STRICT``, ``no_onward_dissemination``) is forwarded only with ``consent``: the
originator's signed ``consent`` notice (:class:`schemas.Notice`) naming this forwarder's
request's recipient. The originator is told of every forward (``forwarded`` feedback).
See ``docs/cycle.md``. Same versioning rules as :class:`schemas.Report`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Self

from pydantic import Field, model_validator

from schemas._base import AgencyId, ContractModel, SchemaVersion, Text, UtcDatetime, expected

__all__ = ["Forward"]

_Compact = Annotated[
    str,
    Field(
        min_length=5,
        max_length=800_000,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$",
    ),
]
"""A compact JWS (three base64url parts)."""


class Forward(ContractModel):
    """A report passed on by one of its recipients (schema version 1)."""

    schema_version: SchemaVersion = "1.0"
    message_id: uuid.UUID
    """This forward's own id."""
    sender: AgencyId
    """The forwarding agency (a recipient of the report)."""
    created_at: UtcDatetime
    report_id: uuid.UUID
    originator: AgencyId
    to: AgencyId
    """The agency it is forwarded to: the one it is sealed to."""
    original: _Compact
    """The originator's inner JWS of the report, byte for byte."""
    consent: _Compact | None = None
    """The originator's inner JWS of its ``consent`` notice, where the handling needs one."""
    note: Text | None = None
    """Why it is passed on, for the new recipient's people."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.message_id == self.report_id:
            raise expected(
                "self_reference", "expected report_id to name the report, not this forward"
            )
        if len({self.sender, self.originator, self.to}) != 3:
            raise expected(
                "parties", "expected three agencies: the forwarder, the originator and the "
                "recipient",
            )  # fmt: skip
        return self
