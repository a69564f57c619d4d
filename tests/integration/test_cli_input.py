"""Bad input to the real ``fusionbus`` process: one paragraph, the right exit code, never a
traceback, nothing a terminal would obey. A sample of what tests/unit/cli walks in-process,
run as users run it (``python -m fusionbus``, the console script's path); no Kafka needed:
every value here is refused before a connection, and the rest meet a closed port."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.integration.cli_helpers import clean_env, failed, run_cli

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("cli-input") / "home"
    for args in (
        ("federation", "init", "--home", str(home)),
        ("agency", "add", "anf", "--name", "Anti Narcotics Force", "--home", str(home)),
        ("agency", "grant", "anf", "--category", "narcotics", "--jurisdiction", "PK"),
    ):
        result = run_cli(*args, env=clean_env(FUSIONBUS_HOME=str(home)))
        assert result.returncode == 0, failed(result)
    return home


@pytest.mark.parametrize(
    ("args", "code", "names"),
    [
        (["tail", "--jurisdiction", "ZZ-QQ", "--agency", "anf"], 2, "'ZZ-QQ'"),
        (["tail", "--category", "Bad", "--agency", "anf"], 2, "'Bad'"),
        (["tail", "--agency", "anf", "--count", "-1"], 2, "'-1'"),
        (
            ["tail", "--agency", "anf", "--since", "99999999999999999999"],
            2,
            "'99999999999999999999'",
        ),
        (["tail", "--agency", "[/]"], 2, "'[/]'"),
        (["tail", "--agency", "anf", "--group", "\x1b[2J"], 2, "'\\x1b[2J'"),
        (["publish", "--agency", "anf", "/nonexistent/report.json"], 2, "/nonexistent/report.json"),
        (["agency", "add", "dea", "--name", "\u202eevil"], 2, "'\\u202eevil'"),
        (["agency", "list", "--home", "[/]"], 1, "no federation in [/]"),
        (["kafka", "start", "--heap-mb", "0"], 2, "'0'"),
        (["up", "--port", "99999999999999999999"], 2, "'99999999999999999999'"),
        (["tail", "--agency", "anf", "--bootstrap", "127.0.0.1:1"], 1, "could not reach Kafka"),
    ],
)
def test_bad_input_gets_one_paragraph(home: Path, args: list[str], code: int, names: str) -> None:
    result = run_cli(*args, env=clean_env(FUSIONBUS_HOME=str(home)))
    assert result.returncode == code, failed(result)
    assert "Traceback" not in result.stderr
    assert not _UNSAFE.search(result.stdout + result.stderr), failed(result)
    [paragraph] = result.stderr.splitlines()
    assert paragraph.startswith("error: ")
    assert names in paragraph
