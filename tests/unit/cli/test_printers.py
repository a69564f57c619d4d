"""What ``fusionbus tail`` prints for untrusted text: exactly the text, never markup, never
a terminal control; and with ``--json`` exactly the original strings.

The printers are called directly with constructed deliveries, as the subscriber and the raw
tail call them, so no Kafka is needed. The hostile title is set with ``model_copy`` (no
validation) to stand for text the contract may let through today or tomorrow: the printers
must not depend on the schema to keep the terminal safe.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from broker.errors import Reason
from consumers import Delivery, Rejected, Source, Verified
from fusionbus.cli._console import visible
from fusionbus.cli.reports import _printer, _raw_printer, _reject_printer
from schemas import example_report
from schemas.envelope import RoutingHeader

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
OSC8_LINK = "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"
HOSTILE = f"[/] [red on red]hidden {OSC8_LINK} csi\x9b2J nel\x85 \u202eevil"
"""Closing markup tag, hidden markup, an OSC-8 hyperlink, C1 CSI and NEL, a bidi override."""

SHOWN = (
    "[/] [red on red]hidden \\x1b]8;;http://x\\x1b\\link\\x1b]8;;\\x1b\\ csi\\x9b2J nel\\x85 "
    "\\u202eevil"
)
"""How HOSTILE must appear: every control as a visible escape, every bracket as itself."""

_OUR_STYLES = re.compile(r"\x1b\[[0-9;]*m")
"""The colour codes the console itself writes when stdout is a terminal (pytest -s)."""
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def test_the_expected_text_is_what_visible_makes_of_it() -> None:
    assert visible(HOSTILE) == SHOWN


def _header(**changes: object) -> RoutingHeader:
    values: dict[str, object] = {
        "message_id": uuid.UUID("0b6f5e7c-3f8a-4c1e-9a57-2d4b8e1f6a10"),
        "sender": "customs",
        "sender_kid": "customs-signing-kid",
        "category": "narcotics",
        "jurisdiction": "PKKHI",
        "precedence": "IMMEDIATE",
        "tlp": "TLP:AMBER",
        "created_at": NOW,
        "expires_at": NOW + timedelta(days=1),
        "recipients": ("anf-kid", "fia-kid"),
        "schema_version": "1.0",
    }
    return RoutingHeader.model_validate(values | changes)


def _delivery(title: str) -> Delivery:
    report = example_report("narcotics", "PKKHI", now=NOW).model_copy(update={"title": title})
    source = Source("fusionbus.reports.customs.pk-sd.narcotics", 0, 7, 1_764_322_200_000)
    return Delivery(report=report, header=_header(), source=source)


def _printed(capsys: pytest.CaptureFixture[str]) -> str:
    out = capsys.readouterr().out
    plain = _OUR_STYLES.sub("", out)
    leaked = sorted({f"U+{ord(c):04X}" for c in _UNSAFE.findall(plain)})
    assert not leaked, f"raw control or bidi characters reached stdout: {leaked}"
    return plain


def test_a_report_title_is_printed_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_printer(as_json=False)(_delivery(HOSTILE)))
    assert _printed(capsys) == (
        f"IMMEDIATE 2026-11-28 09:30Z customs narcotics PKKHI TLP:AMBER  {SHOWN}"
        "  [no_onward_dissemination, not_for_court]\n"  # the handling, wherever it is shown
    )


def test_a_report_title_round_trips_through_json(capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_printer(as_json=True)(_delivery(HOSTILE)))
    out = _printed(capsys)
    assert out.count("\n") == 1
    record = json.loads(out)
    assert record["report"]["title"] == HOSTILE
    assert (record["topic"], record["partition"], record["offset"]) == (
        "fusionbus.reports.customs.pk-sd.narcotics",
        0,
        7,
    )


DETAIL = 'envelope member names are not allowed: {"[/]":1} and [bold]x[/bold]'
"""A verifier detail echoing member names from the (hostile) envelope."""


def test_a_quarantine_detail_is_printed_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    source = Source(f"fusionbus.reports.x{HOSTILE}", 3, 42)
    asyncio.run(_reject_printer(as_json=False)(source, "malformed", DETAIL))
    assert _printed(capsys) == (
        f"QUARANTINED malformed: {DETAIL} (fusionbus.reports.x{SHOWN}/3@42)\n"
    )


def test_a_quarantine_detail_round_trips_through_json(capsys: pytest.CaptureFixture[str]) -> None:
    source = Source(f"fusionbus.reports.x{HOSTILE}", 3, 42)
    asyncio.run(_reject_printer(as_json=True)(source, "malformed", f"{DETAIL} {HOSTILE}"))
    assert json.loads(_printed(capsys)) == {
        "quarantined": True,
        "reason": "malformed",
        "detail": f"{DETAIL} {HOSTILE}",
        "source": f"fusionbus.reports.x{HOSTILE}/3@42",
    }


def test_the_raw_tail_prints_a_hostile_topic_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    source = Source(f"fusionbus.reports.{HOSTILE}", 1, 9)
    show = _raw_printer(as_json=False)
    asyncio.run(show(source, Rejected(Reason.BAD_SIGNATURE, DETAIL)))
    asyncio.run(show(source, Verified(header=_header(), source=source)))
    assert _printed(capsys).splitlines() == [
        f"UNVERIFIED bad_signature (fusionbus.reports.{SHOWN}/1@9)",
        (
            "IMMEDIATE 2026-11-28 09:30Z customs narcotics PKKHI TLP:AMBER to 2 key(s) "
            f"(fusionbus.reports.{SHOWN}/1@9)"
        ),
    ]


def test_the_raw_tail_json_keeps_the_exact_strings(capsys: pytest.CaptureFixture[str]) -> None:
    source = Source(f"fusionbus.reports.{HOSTILE}", 1, 9)
    show = _raw_printer(as_json=True)
    asyncio.run(show(source, Rejected(Reason.BAD_SIGNATURE, DETAIL)))
    asyncio.run(show(source, Verified(header=_header(), source=source)))
    rejected, verified = (json.loads(line) for line in _printed(capsys).splitlines())
    assert rejected == {
        "source": f"fusionbus.reports.{HOSTILE}/1@9",
        "verified": False,
        "reason": "bad_signature",
    }
    assert verified["source"] == f"fusionbus.reports.{HOSTILE}/1@9"
    assert verified["header"]["sender"] == "customs"
