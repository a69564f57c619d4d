"""The deployment recipe cannot drift from the code: every ``fusionbus`` command that
docs/deploy.md and deploy/kafka/README.md show parses with the real CLI, the ``kafka config``
they show writes the files they list, and the systemd units run commands that exist, as
hardened as the docs say."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer.main

from broker.kafka import DEFAULT_LOG_DIR
from fusionbus.cli import app
from tests.unit.cli.conftest import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "deploy.md", ROOT / "deploy" / "kafka" / "README.md")
KAFKA_UNIT = ROOT / "deploy" / "kafka" / "kafka.service"
TAIL_UNIT = ROOT / "deploy" / "fusionbus" / "fusionbus-tail@.service"


def commands(doc: Path) -> list[list[str]]:
    """The ``fusionbus ...`` command lines of the ``sh`` blocks of ``doc``, as words."""
    blocks = re.findall(r"```sh\n(.*?)```", doc.read_text(), flags=re.DOTALL)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line) for line in lines if line.startswith("fusionbus ")]


def parse(words: list[str]) -> Any:
    """Parse ``fusionbus WORDS`` as the CLI would (every option's parser runs), without
    running the command; the command's click context."""
    command: Any = typer.main.get_command(app)
    rest = words[1:]
    while hasattr(command, "commands"):
        command = command.commands[rest.pop(0)]
    return command.make_context(words[0], rest)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_shown_parses(
    doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("anf.request.jws", "anf.bundle.jws"):  # what the agency and admin exchange
        (tmp_path / name).write_text("{}")
    shown = commands(doc)
    assert any(words[1:3] == ["kafka", "config"] for words in shown), doc
    for words in shown:
        parse(words)


def test_the_kafka_config_shown_writes_the_files_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    doc = DOCS[0]
    [words] = [w for w in commands(doc) if w[1:3] == ["kafka", "config"]]
    home = words.index("--home") + 1
    words[home] = str(tmp_path / "admin")
    result = cli(*words[1:])
    assert result.exit_code == 0, result.stderr
    listed = re.findall(r"^(kafka-config/\S+)", doc.read_text(), flags=re.MULTILINE)
    assert len(listed) == 6
    for node in (1, 2, 3):
        for path in listed:
            assert (tmp_path / path.replace("<id>", str(node))).is_file(), path
    assert (tmp_path / "admin" / "config.toml").read_text().count("example.internal:9092") == 3
    assert (
        f"log.dirs={DEFAULT_LOG_DIR}\n"
        in (tmp_path / "kafka-config" / "node-1" / "server.properties").read_text()
    )


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(path.read_text())
    return parser


@pytest.mark.parametrize("path", [KAFKA_UNIT, TAIL_UNIT], ids=lambda p: p.name)
def test_the_units_run_as_their_own_user_confined_and_restarted(path: Path) -> None:
    service = unit(path)["Service"]
    assert service["User"] in {"kafka", "fusionbus"}
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "CapabilityBoundingSet": "",
    }.items():
        assert service[key] == value, (path.name, key)
    assert int(unit(path)["Unit"]["StartLimitBurst"]) >= 1


def test_kafka_runs_the_files_kafka_config_writes_where_the_docs_put_them() -> None:
    service = unit(KAFKA_UNIT)["Service"]
    argv = shlex.split(service["ExecStart"].replace("\\\n", " "))
    assert argv[-2:] == ["kafka.Kafka", "/etc/kafka/server.properties"]
    assert "-Dlog4j2.configurationFile=/etc/kafka/log4j2.properties" in argv
    assert argv[argv.index("-cp") + 1] == "/opt/kafka/libs/*"
    assert DEFAULT_LOG_DIR.parent == PurePosixPath("/var/lib") / service["StateDirectory"]
    assert "MemoryDenyWriteExecute" not in service  # the JVM's JIT


def test_the_tail_unit_runs_a_real_tail_command() -> None:
    service = unit(TAIL_UNIT)["Service"]
    [shell, flag, script] = shlex.split(service["ExecStart"])
    assert (shell, flag) == ("/bin/sh", "-c")
    words = shlex.split(script.replace("%i", "anf"))
    redirect = words.pop()
    assert redirect == ">>$FUSIONBUS_HOME/feed.jsonl"  # written by the service's own user
    assert words[:2] == ["exec", "/opt/fusionbus/bin/fusionbus"]
    context = parse(["fusionbus", *words[2:]])
    assert context.params["agency"] == "anf"
    assert context.params["group"] == "feed"
    assert context.params["as_json"] is True
    assert context.params["from_beginning"] is True
    assert not context.params["exit_at_end"]  # long-running
    assert "FUSIONBUS_HOME=/var/lib/fusionbus/%i" in service["Environment"].split()
    assert service["StateDirectory"] == "fusionbus/%i"
    assert service["UMask"] == "0077"
