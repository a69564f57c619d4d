"""seal_report/open_report with the real contract, ``schemas.Report``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.envelope import Reason, header_for, open_report, seal_report
from broker.errors import SchemaValidationError, VerificationError
from schemas import Handling, Precedence, Report, Tlp, example_report

from .conftest import NOW, World


def _report(**changes: object) -> Report:
    """A valid report made at NOW, red, for anf; ``changes`` re-validated with it."""
    base = example_report("narcotics", "PKKHI", now=NOW).model_dump()
    base.update(
        precedence=Precedence.FLASH,
        handling=Handling(tlp=Tlp.RED, named_recipients=("anf",)).model_dump(),
        valid_until=None,
    )
    base.update(changes)
    return Report.model_validate(base)


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


# Issue 9 finding 6: the publisher sent reports its recipients refuse on arrival.


def test_a_report_made_beyond_the_clock_skew_is_refused_before_sealing(world: World) -> None:
    report = _report(created_at=NOW + timedelta(minutes=10))
    with pytest.raises(SchemaValidationError, match=r"created_at .* more than 0:05:00 ahead"):
        seal_report(world.sealer(), report, [world.ids["anf"].encryption_kid])
    within = _report(created_at=NOW + timedelta(minutes=4))
    assert seal_report(world.sealer(), within, [world.ids["anf"].encryption_kid])


def test_a_report_already_expired_is_refused_before_sealing(world: World) -> None:
    report = _report()
    world.clock_now[0] = NOW + timedelta(days=8)  # the default TTL is 7 days
    with pytest.raises(SchemaValidationError, match=r"would expire at .* refuse it as expired"):
        seal_report(world.sealer(), report, [world.ids["anf"].encryption_kid])


def test_a_report_at_the_end_of_time_is_refused_without_a_traceback(world: World) -> None:
    report = _report(created_at=datetime(9999, 12, 31, 23, 0, tzinfo=UTC))
    with pytest.raises(SchemaValidationError, match="year 9999"):
        seal_report(world.sealer(), report, [world.ids["anf"].encryption_kid])
