"""Every command and parameter of ``fusionbus``, given hostile values: never a traceback.

The walk reads the command tree from the typer app itself (``typer.main.get_command``), so a
command or option added later is walked too, or the test fails asking what kind of value it
takes. For each parameter it runs the command with every hostile value while the other
required parameters get valid ones, in-process, against a fresh copy of a federation made by
``fusionbus federation init`` and ``agency add``, with ``--bootstrap 127.0.0.1:1`` (a closed
port, so a command that gets as far as Kafka fails at once). Fetching or starting the
embedded Kafka is replaced by an error, so ``up`` and ``kafka start`` stop where they would
start a JVM.

What must hold for every run:

- no exception escapes and no traceback is printed; the exit code is 0, 1 or 2 (or 3 from
  ``kafka status``, which says so when no cluster runs);
- nothing a terminal would obey reaches stdout or stderr (C0 and C1 controls, bidi
  overrides);
- a failure is one short paragraph on stderr;
- a value the parameter's kind refuses exits 2, naming the parameter or the value, before the
  command reads the home or connects; a value the kind accepts is handed to the command.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import typer.main
from typer.testing import Result

from broker.errors import KafkaFetchError
from fusionbus.cli import app
from fusionbus.cli._console import visible
from schemas import example_report
from tests.unit.cli.conftest import cli

HOSTILE = {
    "unknown subdivision": "ZZ-QQ",
    "capitalised": "Bad",
    "negative": "-1",
    "zero": "0",
    "huge": "99999999999999999999",
    "empty": "",
    "closing tag": "[/]",
    "hidden markup": "[red on red]hidden",
    "clear screen": "\x1b[2J",
    "C1 CSI": "\x9b2J",
    "bidi override": "\u202eevil",
}
"""Hostile values by name; the walk adds three paths made in the test's directory."""

PATHS = ("missing path", "directory", "not JSON")
EVERY = frozenset(HOSTILE) | frozenset(PATHS)
NUMBERS = frozenset({"unknown subdivision", "capitalised", "negative", "zero", "huge"})
"""Values without brackets, controls or slashes: valid Kafka topic names and key ids."""


@dataclass(frozen=True)
class Kind:
    """What a parameter takes, and which hostile values it may accept (all others it must
    refuse as a usage error)."""

    name: str
    accepts: frozenset[str] = frozenset()


AGENCY = Kind("agency id")
CATEGORY = Kind("trafficking category")
JURISDICTION = Kind("jurisdiction code")
BOOTSTRAP = Kind("host:port list")
SINCE = Kind("ISO 8601 time or age")
FLAG = Kind("flag (given a value with --flag=VALUE)")
BOUNDED = Kind("whole number in a range")
COUNT = Kind("whole number from 1", accepts=frozenset({"huge"}))
PORT = Kind("port from 0 (any free port)", accepts=frozenset({"zero"}))
DIRECTORY = Kind("directory, created if missing", accepts=EVERY - {"empty", "not JSON"})
SOURCE = Kind("report file or -", accepts=frozenset({"not JSON"}))  # content: exit 1
TEXT = Kind("printable text", accepts=EVERY - {"empty", "clear screen", "C1 CSI", "bidi override"})
TOPIC = Kind("Kafka topic name", accepts=NUMBERS)
KID = Kind("key id", accepts=NUMBERS)  # well-formed; the directory then says it lists none
GROUP = Kind("consumer group name", accepts=frozenset({"zero", "huge"}))
ENROLMENT = Kind("enrolment request or bundle file", accepts=frozenset({"not JSON"}))  # content: 1
HOSTS = Kind("host names or addresses", accepts=frozenset({"unknown subdivision", "capitalised"}))
LOOPBACK = Kind("loopback IPv4 addresses")
LISTEN = Kind("IP address to listen on")
CLUSTER_ID = Kind("Kafka cluster id")
NODE_PATH = Kind("absolute path on a node's machine", accepts=frozenset(PATHS))
ROLE = Kind("gateway role")
TOKEN_ID = Kind("gateway token id")
MESSAGE_ID = Kind("message id (a UUID)")
RECEIPT_KIND = Kind("kind of receipt")
OUTCOME = Kind("outcome of a report")
QUANTITY = Kind("quantity greater than 0")
SECONDS = Kind("seconds from 0 to a day", accepts=frozenset({"zero"}))

KINDS: dict[str, Kind] = {
    "agency": AGENCY,
    "agency_id": AGENCY,
    "category": CATEGORY,
    "jurisdiction": JURISDICTION,
    "bootstrap": BOOTSTRAP,
    "since": SINCE,
    "count": COUNT,
    "nodes": BOUNDED,
    "heap_mb": BOUNDED,
    "valid_days": BOUNDED,
    "port": PORT,
    "gateway_port": PORT,
    "home": DIRECTORY,
    "data_dir": DIRECTORY,
    "source": SOURCE,
    "name": TEXT,
    "reason": TEXT,
    "topic": TOPIC,
    "key": KID,
    "group": GROUP,
    "request": ENROLMENT,
    "bundle": ENROLMENT,
    "addresses": LOOPBACK,
    "hosts": HOSTS,
    "out": DIRECTORY,
    "node": BOUNDED,
    "client_port": BOUNDED,
    "controller_port": BOUNDED,
    "node_log_dir": NODE_PATH,
    "listen": LISTEN,
    "cluster": CLUSTER_ID,
    "role": ROLE,
    "label": TEXT,
    "token_id": TOKEN_ID,
    "message_id": MESSAGE_ID,
    "report_id": MESSAGE_ID,
    "replaces": MESSAGE_ID,
    "kind": RECEIPT_KIND,
    "outcome": OUTCOME,
    "wait": SECONDS,
    "quantity": QUANTITY,
    "unit": TEXT,
    "note": TEXT,
    "forwarder": AGENCY,
    "to": AGENCY,
}
"""Each parameter's kind, by its Python name; flags are recognised as flags."""

NOT_WALKED: dict[tuple[str, str], str] = {}
"""(command, parameter) pairs left out, with the reason. None today: every value that would
otherwise start a JVM or wait for a broker ends at the stubbed Kafka or the closed port."""

EXIT_CODES = {"kafka status": {0, 1, 2, 3}}
"""Exit codes a command may end with besides 0, 1 and 2 (``kafka status``: 3, not running)."""

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command of the tree, the root group's own options included (path ``()``)."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


@dataclass
class Walk:
    tmp: Path
    new_home: Callable[[], Path]
    report: Path
    problems: list[str]
    exercised: set[tuple[str, str]]

    def value(self, name: str) -> str:
        if name == "missing path":
            return str(self.tmp / "no-such" / "report.json")
        if name == "directory":
            return str(self.tmp / "a-directory")
        if name == "not JSON":
            return str(self.tmp / "not-json.txt")
        return HOSTILE[name]

    def base(self, path: tuple[str, ...], param: Any) -> list[str]:
        """A valid value for a parameter the command needs (or should get: --home and
        --bootstrap, so no run touches ~/.fusionbus or a real Kafka)."""
        command = " ".join(path)
        if param.name == "home":
            if command == "federation init":
                return ["--home", str(self.tmp / f"new-{time.monotonic_ns()}")]
            return ["--home", str(self.new_home())]
        valid = {
            "bootstrap": "127.0.0.1:1",
            "agency": "customs" if command == "publish" else "anf",
            "agency_id": "newbie" if command == "agency add" else "anf",
            "name": "New Agency",
            "reason": "testing the walk",
            "category": "narcotics",
            "jurisdiction": "PK",
            "source": str(self.report),
            "bundle": str(self.report),
            "hosts": "kafka1.example.internal,kafka2.example.internal,kafka3.example.internal",
            "out": str(self.tmp / f"out-{time.monotonic_ns()}"),
            "role": "viewer",
            "token_id": "0123456789ab",
            "message_id": "6f1c1f52-1f6a-4c1e-9d2b-3f4e5a6b7c8d",
            "report_id": "6f1c1f52-1f6a-4c1e-9d2b-3f4e5a6b7c8d",
            "kind": "acknowledged",
            "forwarder": "fia",
            "to": "customs",
        }
        if param.name not in valid or not (param.required or param.name in {"bootstrap", "source"}):
            return []
        if param.param_type_name == "argument":
            return [valid[param.name]]
        return [param.opts[0], valid[param.name]]

    def given(self, param: Any, value: str) -> list[str]:
        if param.param_type_name == "argument":
            return [value]
        if getattr(param, "is_flag", False):
            return [f"{param.opts[0]}={value}"]
        return [param.opts[0], value]

    def run(self, path: tuple[str, ...], command: Any, param: Any) -> None:
        kind = FLAG if getattr(param, "is_flag", False) else KINDS.get(param.name)
        where = " ".join(path) or "fusionbus"
        if kind is None:
            self.problems.append(
                f"{where} {param.name}: no kind of value known; add it to KINDS so the walk "
                "knows which hostile values it must refuse"
            )
            return
        self.exercised.add((where, param.name))
        for name in sorted(EVERY):
            value = self.value(name)
            # in declaration order, so positional arguments stay in their places
            every = [
                a
                for p in command.params
                for a in (self.given(param, value) if p is param else self.base(path, p))
            ]
            if path:
                args = [*path, *every]
            else:  # the root's own options, in front of a harmless command
                args = [*self.given(param, value), "agency", "list", "--home", str(self.new_home())]
            result = cli(*args)
            self.check(where, param, kind, name, value, result)

    def check(  # noqa: PLR0917 - one place states every rule
        self, where: str, param: Any, kind: Kind, name: str, value: str, result: Result
    ) -> None:
        said = f"{where} {param.name}={value!r} ({name}): exit {result.exit_code}"
        out, err = result.stdout, result.stderr
        shown = f"{said}\n  stdout: {out[-500:]!r}\n  stderr: {err[-800:]!r}"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            self.problems.append(f"{shown}\n  raised {result.exception!r}")
            return
        if "Traceback" in out + err:
            self.problems.append(f"{shown}\n  printed a traceback")
        if result.exit_code not in EXIT_CODES.get(where, {0, 1, 2}):
            self.problems.append(f"{shown}\n  unexpected exit code")
        leaked = sorted({f"U+{ord(c):04X}" for c in _UNSAFE.findall(out + err)})
        if leaked:
            self.problems.append(f"{shown}\n  raw control or bidi characters: {leaked}")
        if result.exit_code in {1, 2}:
            paragraph = err.strip()
            lines = paragraph.splitlines()
            if not paragraph or "\n\n" in paragraph or len(lines) > 4 or len(paragraph) > 1500:
                self.problems.append(f"{shown}\n  not one short paragraph on stderr")
        refused = name not in kind.accepts
        if refused and result.exit_code != 2:
            self.problems.append(f"{shown}\n  a {kind.name} must refuse this as a usage error")
        elif not refused and result.exit_code == 2:
            self.problems.append(f"{shown}\n  a {kind.name} accepts this value")
        elif refused:
            hints = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
            hints += [h for h in (getattr(param, "metavar", None), param.name.upper()) if h]
            names = [repr(value)] + ([visible(value)] if value else [])
            if not any(h in err for h in hints) and not any(n in err for n in names):
                self.problems.append(f"{shown}\n  names neither the parameter nor the value")
            if len(err.strip().splitlines()) != 1:
                self.problems.append(f"{shown}\n  a usage error is one line")


@pytest.fixture
def no_embedded_kafka(monkeypatch: pytest.MonkeyPatch) -> None:
    """``up`` and ``kafka start`` end where the jars would be fetched and a JVM started."""

    def refuse(**_: object) -> None:
        raise KafkaFetchError("walk: the embedded Kafka would be fetched and started here")

    monkeypatch.setattr("fusionbus.cli.kafka.ensure_distribution", refuse)


@pytest.mark.usefixtures("no_embedded_kafka")
def test_every_parameter_of_every_command_refuses_hostile_values_cleanly(
    tmp_path: Path, new_home: Callable[[], Path]
) -> None:
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "not-json.txt").write_text("container MSKU1234565 at Gwadar, not JSON\n")
    report = tmp_path / "report.json"
    report.write_bytes(orjson.dumps(example_report("narcotics", "PKKHI").model_dump(mode="json")))
    walk = Walk(tmp_path, new_home, report, problems=[], exercised=set())

    root = typer.main.get_command(app)
    every: set[tuple[str, str]] = set()
    for path, command in _commands(root):
        if path and hasattr(command, "commands"):
            continue  # a group's own parameters are only --help
        for param in command.params:
            every.add((" ".join(path) or "fusionbus", param.name))
            if (" ".join(path) or "fusionbus", param.name) not in NOT_WALKED:
                walk.run(path, command, param)

    assert not walk.problems, f"{len(walk.problems)} problem(s):\n" + "\n".join(walk.problems)
    assert walk.exercised == every - NOT_WALKED.keys()
    assert len(every) >= 40, sorted(every)  # the tree was read, not an empty group
