"""seal_report/open_report against a stand-in with exactly the attributes of schemas.Report."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

import pytest
from pydantic import BaseModel, ConfigDict

from broker.envelope import Reason, header_for, open_report, seal_report
from broker.errors import VerificationError

from .conftest import NOW, World


class Precedence(StrEnum):
    FLASH = "FLASH"
    IMMEDIATE = "IMMEDIATE"
    PRIORITY = "PRIORITY"
    ROUTINE = "ROUTINE"


class Tlp(StrEnum):
    RED = "TLP:RED"
    AMBER_STRICT = "TLP:AMBER+STRICT"
    AMBER = "TLP:AMBER"
    GREEN = "TLP:GREEN"
    CLEAR = "TLP:CLEAR"


class Handling(BaseModel):
    model_config = ConfigDict(frozen=True)
    tlp: Tlp
    named_recipients: tuple[str, ...] = ()


class Report(BaseModel):
    model_config = ConfigDict(frozen=True)
    message_id: uuid.UUID
    sender: str
    category: str
    jurisdiction: str
    precedence: Precedence
    handling: Handling
    created_at: datetime
    valid_until: datetime | None = None
    schema_version: str = "1.0"
    narrative: str = ""


def _report(**changes: object) -> Report:
    values: dict[str, object] = {
        "message_id": uuid.uuid4(),
        "sender": "customs",
        "category": "narcotics",
        "jurisdiction": "PKKHI",
        "precedence": Precedence.FLASH,
        "handling": Handling(tlp=Tlp.RED, named_recipients=("anf",)),
        "created_at": NOW,
        "narrative": "Truck crossing Torkham tonight",
    }
    values.update(changes)
    return Report.model_validate(values)


def test_a_report_round_trips_with_a_derived_header(world: World) -> None:
    report = _report(valid_until=NOW + timedelta(hours=6))
    kids = [world.ids["anf"].encryption_kid]
    data = seal_report(world.sealer(), report, kids)
    message = open_report(world.opener("anf"), data, NOW, parse=Report.model_validate_json)
    assert message.content == report
    header = message.header
    assert (header.precedence, header.tlp, header.jurisdiction) == ("FLASH", "TLP:RED", "PKKHI")
    assert header.expires_at == NOW + timedelta(hours=6)


def test_without_valid_until_the_envelope_lives_the_default_ttl(world: World) -> None:
    header = header_for(_report(), "kid", ["r1"], ttl=timedelta(days=2))
    assert header.expires_at == NOW + timedelta(days=2)
    capped = header_for(_report(valid_until=NOW + timedelta(days=400)), "kid", ["r1"])
    assert capped.expires_at == NOW + timedelta(days=31)


def test_a_report_that_disagrees_with_its_signed_header_is_rejected(world: World) -> None:
    report = _report()
    other = report.model_copy(update={"category": "arms"})
    header = header_for(report, world.ids["customs"].signing_kid, [world.ids["anf"].encryption_kid])
    data = world.sealer().seal(header, other.model_dump_json().encode())
    with pytest.raises(VerificationError) as caught:
        open_report(world.opener("anf"), data, NOW, parse=Report.model_validate_json)
    assert caught.value.reason == Reason.HEADER_MISMATCH
    assert "category" in caught.value.detail


def test_an_invalid_report_payload_is_rejected(world: World) -> None:
    header = header_for(
        _report(), world.ids["customs"].signing_kid, [world.ids["anf"].encryption_kid]
    )
    data = world.sealer().seal(header, b'{"sender":"customs"}')
    with pytest.raises(VerificationError) as caught:
        open_report(world.opener("anf"), data, NOW, parse=Report.model_validate_json)
    assert caught.value.reason == Reason.INVALID_REPORT
