"""docs/gateway.md is checked against the code: its commands run, its settings load, its
routes exist, its file layout is the one used."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from broker.config import KafkaSettings
from gateway._files import GatewayFiles
from gateway.app import create_app
from gateway.ingest import parse_batch
from gateway.problems import Problem
from gateway.service import Gateway
from gateway.settings import load_settings
from schemas import example_report
from tests.unit.cli.conftest import cli, logging_restored

DOC = Path(__file__).parents[3] / "docs" / "gateway.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


@pytest.fixture(autouse=True)
def _logging_put_back() -> Iterator[None]:
    """The CLI configures logging on the runner's streams; put it back afterwards."""
    with logging_restored():
        yield


def test_the_documented_token_commands_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert cli("federation", "init", "--home", str(home)).exit_code == 0
    assert cli("agency", "add", "anf", "--name", "ANF", "--home", str(home)).exit_code == 0
    [commands] = blocks("sh")
    token_id = ""
    for text in commands.splitlines():
        words = shlex.split(text.split("#")[0])
        if words[:3] != ["fusionbus", "gateway", "token"]:
            assert cli(*words[1:], "--help").exit_code == 0  # the server: its options parse
            continue
        words = [token_id if w == "TOKEN_ID" else w for w in words]
        result = cli(*words[1:], "--home", str(home))
        assert result.exit_code == 0, result.stderr
        if words[3] == "create":
            token = result.stdout.splitlines()[-1]
            assert token.startswith("fbgw_anf_")
            token_id = token_id or token.split("_")[2]
        if words[3:4] == ["list"] and "--json" in words:
            assert {orjson.loads(row)["role"] for row in result.stdout.splitlines()} == {
                "operator",
                "system",
            }


def test_the_documented_settings_load(tmp_path: Path) -> None:
    [table] = blocks("toml")
    (tmp_path / "config.toml").write_text(table)
    settings = load_settings(tmp_path)
    assert settings.listen == "127.0.0.1:8480"
    assert settings.model_dump() == load_settings(tmp_path / "nowhere").model_dump()  # defaults


def test_the_documented_routes_exist(tmp_path: Path) -> None:
    gateway = Gateway(tmp_path, "anf", load_settings(tmp_path), KafkaSettings())
    routes = {
        (method, getattr(route, "path", ""))
        for route in create_app(gateway, kafka=False).routes
        for method in getattr(route, "methods", ())
    }
    gateway.close()
    for block in blocks("http"):
        method, target = block.splitlines()[0].split()[:2]
        path = re.sub(r"\{[a-z_]+\}", "{message_id}", target.split("?")[0])
        assert (method, path) in routes, (method, path)


def test_the_documented_layout_is_the_one_used(tmp_path: Path) -> None:
    [layout] = blocks("text")
    files = GatewayFiles(tmp_path, "anf")
    for path in (files.tokens, files.ingest, files.received, files.delivered, files.cursor_key):
        assert path.name in layout


def test_the_documented_problem_is_what_a_bad_batch_gets() -> None:
    [example] = blocks("json")
    documented = orjson.loads(example)
    good = example_report().model_dump(mode="json")
    bad = example_report().model_dump(mode="json")
    bad["handling"]["tlp"] = "TLP:PURPLE"
    with pytest.raises(Problem) as caught:
        parse_batch(orjson.dumps([good, bad]), agency="customs", now=datetime.now(UTC), limit=5)
    real = caught.value.document("/v1/reports:batch")
    for name in ("type", "title", "status", "instance"):
        assert real[name] == documented[name]
    [error] = real["errors"]
    assert error["pointer"] == documented["errors"][0]["pointer"]
    assert error["detail"].startswith(documented["errors"][0]["detail"].removesuffix(", ..."))
