"""The routing header of a sealed envelope: what travels in the clear, authenticated.

A :class:`RoutingHeader` is what the platform, dashboards and the audit trail may read
without decrypting a report: who sent it, with which key, about what and where, how
urgent, how it may be handled, when it was made and until when it matters, and to which
recipient keys it is encrypted. Version 2 carries it once, in the JWE protected header
(clear, GCM-authenticated, and covered by the batch signature's Merkle leaf); version 1
carried it twice, there and inside the sender's signature.

Pure data, no I/O; imports nothing else of fusionbus.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

__all__ = [
    "ENVELOPE_VERSION",
    "ENVELOPE_VERSIONS",
    "KID_PATTERN",
    "MessageKind",
    "PrecedenceCode",
    "RoutingHeader",
    "TlpLabel",
]

ENVELOPE_VERSION: Final = 2
"""The envelope format this code writes unless told otherwise; see ``docs/envelope.md``."""
ENVELOPE_VERSIONS: Final = (1, 2)
"""The envelope formats this code reads: 1 (a signature per report, nested in the JWE)
and 2 (one signature per batch, a Merkle inclusion proof per envelope)."""

KID_PATTERN = r"^[A-Za-z0-9_\-:/+]{1,128}$"
"""What a key id may contain: no dots, quotes or spaces (it is joined with dots when signed)."""

PrecedenceCode = Literal["FLASH", "IMMEDIATE", "PRIORITY", "ROUTINE"]
TlpLabel = Literal["TLP:RED", "TLP:AMBER+STRICT", "TLP:AMBER", "TLP:GREEN", "TLP:CLEAR"]
MessageKind = Literal["report", "feedback", "notice", "forward"]


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+01:00
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Kid = Annotated[str, Field(pattern=KID_PATTERN)]


class RoutingHeader(BaseModel):
    """The clear, authenticated routing metadata of one envelope (JSON member ``fusionbus``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    version: Literal[1, 2] = ENVELOPE_VERSION
    message_id: uuid.UUID
    sender: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="Agency id, e.g. anf.")
    sender_kid: Kid
    category: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="e.g. narcotics")
    jurisdiction: str = Field(
        pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3}|[A-Z2-9]{3})?$",
        description="ISO 3166-1 alpha-2, ISO 3166-2 or UN/LOCODE, e.g. PK, PK-SD, PKKHI.",
    )
    precedence: PrecedenceCode
    tlp: TlpLabel
    created_at: UtcDatetime
    expires_at: UtcDatetime
    recipients: tuple[Kid, ...] = Field(
        min_length=1, description="Encryption key ids, in the order of the JWE recipients."
    )
    schema_version: str = Field(pattern=r"^[0-9A-Za-z.+-]{1,32}$")
    kind: MessageKind = Field(
        default="report",
        description="What the envelope holds: a report (the default, and then not written), "
        "feedback on a report, sealed to its originator alone, or the originator's notice "
        "(supersede, retract, purge, consent, decline) to one recipient of a report, or a "
        "report forwarded by one of its recipients (docs/cycle.md).",
    )

    @model_serializer(mode="wrap")
    def _omit_report_kind(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A report's header is written without ``kind``: one spelling, and every envelope
        sealed before feedback existed keeps its bytes."""
        data: dict[str, Any] = handler(self)
        if data.get("kind") == "report":
            del data["kind"]
        return data

    @model_validator(mode="after")
    def _check(self) -> RoutingHeader:
        if self.expires_at <= self.created_at:
            raise ValueError(
                f"expires_at ({self.expires_at.isoformat()}) must be after created_at "
                f"({self.created_at.isoformat()})"
            )
        if len(set(self.recipients)) != len(self.recipients):
            raise ValueError("recipients lists the same key id more than once")
        return self
