"""Deliveries made in memory, and a gateway's files in a temporary home."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumers import Delivery, Source
from gateway._files import GatewayFiles
from schemas import Report, example_report
from schemas.envelope import RoutingHeader


def delivery(
    category: str = "narcotics",
    jurisdiction: str = "PKKHI",
    *,
    tlp: str = "TLP:AMBER",
    precedence: str = "PRIORITY",
    offset: int = 0,
    now: datetime | None = None,
) -> Delivery:
    """A verified delivery as the subscriber hands it over (no Kafka, no keys)."""
    moment = now or datetime.now(UTC)
    document = example_report(category, jurisdiction, now=moment).model_dump(mode="json")
    document["precedence"] = precedence
    document["handling"]["tlp"] = tlp
    if tlp == "TLP:RED":
        document["handling"]["named_recipients"] = ["anf"]
    report = Report.model_validate(document)
    header = RoutingHeader(
        message_id=report.message_id,
        sender=report.sender,
        sender_kid="customs-sig-1",
        category=report.category,
        jurisdiction=report.jurisdiction,
        precedence=precedence,  # type: ignore[arg-type]
        tlp=tlp,  # type: ignore[arg-type]
        created_at=moment,
        expires_at=moment + timedelta(days=1),
        recipients=("anf-enc-1",),
        schema_version=report.schema_version,
    )
    return Delivery(report, header, Source("t", 0, offset, 0))


@pytest.fixture
def files(tmp_path: Path) -> GatewayFiles:
    return GatewayFiles(tmp_path / "home", "anf")
