"""Every message the CLI writes shows untrusted text as it is: agency names from the
directory, paths the user typed, values in error messages. Brackets are not markup and
controls are escapes, on a terminal too."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from broker.errors import ConfigError
from broker.federation import Federation
from fusionbus.cli import _console, federation
from tests.unit.cli.conftest import cli, ok

NAME = "[/] [red on red]x\u200b y\u2060z\u00ad"
"""What a root-signed name may still hold: markup and invisible format characters (the
directory refuses C0/C1 controls and bidi overrides in names since issue 9)."""
SHOWN = "[/] [red on red]x\\u200b y\\u2060z\\xad"
_OUR_STYLES = re.compile(r"\x1b\[[0-9;]*m")
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _safe(text: str) -> str:
    plain = _OUR_STYLES.sub("", text)
    assert not _UNSAFE.search(plain), repr(plain)
    return plain


@pytest.fixture
def hostile_directory(home: Path) -> Path:
    """The template home plus an agency whose root-signed name (written by another tool:
    ``agency add --name`` refuses it) holds markup and invisible format characters."""
    now = datetime.now(UTC).replace(microsecond=0)
    Federation.load(home).add_agency("mallory", NAME, now=now)
    return home


@pytest.mark.parametrize("control", ["\x85", "\x9b", "\u202e", "\u2066", "\x1b"])
def test_the_directory_refuses_a_name_with_a_control_or_bidi_override(
    home: Path, control: str
) -> None:
    with pytest.raises(ConfigError, match="name"):
        Federation.load(home).add_agency("mallory", f"evil{control}name", now=datetime.now(UTC))


def test_agency_list_prints_a_hostile_name_as_text(hostile_directory: Path) -> None:
    result = cli("agency", "list", "--home", str(hostile_directory))
    assert result.exit_code == 0, result.stderr
    row = next(r for r in _safe(result.stdout).splitlines() if "mallory" in r)
    assert SHOWN in row


def test_agency_list_on_a_terminal_writes_no_control_of_the_name(
    hostile_directory: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    screen = tmp_path / "screen"
    with screen.open("w") as file:
        terminal = Console(file=file, force_terminal=True, color_system="truecolor", width=200)
        monkeypatch.setattr(federation, "Console", lambda **_: terminal)
        ok("agency", "list", "--home", str(hostile_directory))
    assert SHOWN in _safe(screen.read_text())


def test_agency_list_json_keeps_the_exact_name(hostile_directory: Path) -> None:
    out = _safe(ok("agency", "list", "--json", "--home", str(hostile_directory)))
    names = {record["id"]: record["name"] for record in map(json.loads, out.splitlines())}
    assert names["mallory"] == NAME
    assert names["anf"] == "Anti Narcotics Force"


def test_agency_add_shows_a_bracketed_name_as_typed(home: Path) -> None:
    result = cli("agency", "add", "dea", "--name", "[bold]DEA[/] [/]", "--home", str(home))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Enrolled dea ([bold]DEA[/] [/]); private keys in ")


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("[/]", "[/]"), ("[red on red]x", "[red on red]x"), ("\x1b[2J", "\\x1b[2J")],
)
def test_a_home_path_is_shown_as_typed(typed: str, shown: str) -> None:
    result = cli("federation", "init", "--home", typed)
    assert result.exit_code == 0, result.stderr
    assert _safe(result.stderr).startswith(f"Federation created in {shown}.\n")
    again = cli("federation", "init", "--home", typed)
    assert again.exit_code == 1
    assert _safe(again.stderr) == (
        f"error: a federation already exists in {shown} ({shown}/federation/root.pub.jwk is "
        "there); use it, or choose another --home\n"
    )


def test_an_error_keeps_its_own_lines_and_escapes_the_rest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _console.print_error("invalid report(s):\nline 1: title: got '\x1b[2J\u202e'")
    assert _safe(capsys.readouterr().err) == (
        "error: invalid report(s):\nline 1: title: got '\\x1b[2J\\u202e'\n"
    )


def test_say_fills_a_template_with_visible_values(capsys: pytest.CaptureFixture[str]) -> None:
    _console.say("Stopped {nodes}.\nLogs in {path}", nodes="[/]", path="/tmp/\x1b]8;;x\x1b\\")
    assert capsys.readouterr().err == "Stopped [/].\nLogs in /tmp/\\x1b]8;;x\\x1b\\\n"
