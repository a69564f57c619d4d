"""A bad option value is a usage error: one line naming the value, the expected form and
where to look, exit 2, before the command reads the home or connects to Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.cli.conftest import cli

NOWHERE = "/nonexistent/fusionbus-home"
"""A home that does not exist: a value check that ran after loading it would say so."""
HOME = "<the test's home>"


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--jurisdiction", "ZZ-QQ", "expected an ISO 3166-2 subdivision code like PK-SD"),
        ("--jurisdiction", "XX", "expected an ISO 3166-1 alpha-2 country code like PK"),
        ("--category", "Bad", "expected one of arms, cash_smuggling, contraband"),
        ("--count", "0", "expected a whole number of at least 1"),
        ("--since", "yesterday", "expected an ISO 8601 time like 2026-11-28T09:00Z"),
        ("--group", "Case Desk", "expected 1 to 64 of a-z, 0-9"),
        ("--bootstrap", "kafka", "expected host:port[,host:port...]"),
        ("--agency", "Anti Narcotics", "expected a lowercase letter, then 1 to 31"),
    ],
)
def test_tail_refuses_a_bad_value_in_one_line_before_anything_else(
    option: str, value: str, expected: str
) -> None:
    args = {"--agency": "anf", "--home": NOWHERE, "--bootstrap": "127.0.0.1:1", option: value}
    result = cli("tail", *(a for pair in args.items() for a in pair))
    assert result.exit_code == 2, result.stderr
    assert result.stdout == ""
    [message] = result.stderr.splitlines()
    assert message.startswith(f"error: Invalid value for '{option}': {value!r} ")
    assert expected in message
    assert message.endswith("See `fusionbus tail --help`.")
    assert "Traceback" not in result.stderr


def test_finding_7_the_jurisdiction_and_category_of_tail(home: Path) -> None:
    bad_place = cli("tail", "--jurisdiction", "ZZ-QQ", "--agency", "anf", "--home", str(home))
    assert bad_place.exit_code == 2
    assert bad_place.stderr == (
        "error: Invalid value for '--jurisdiction': 'ZZ-QQ' is not a known jurisdiction: "
        "expected an ISO 3166-2 subdivision code like PK-SD; this one does not exist; for "
        "example PK, PK-SD or PKKHI. See `fusionbus tail --help`.\n"
    )
    bad_category = cli("tail", "--category", "Bad", "--agency", "anf", "--home", str(home))
    assert bad_category.exit_code == 2
    assert bad_category.stderr == (
        "error: Invalid value for '--category': 'Bad' is not a trafficking category: expected "
        "one of arms, cash_smuggling, contraband, counterfeit_goods, cultural_property, "
        "human_trafficking, migrant_smuggling, narcotics, precursor_chemicals, wildlife. See "
        "`fusionbus tail --help`.\n"
    )


def test_a_jurisdiction_is_taken_in_any_case(home: Path) -> None:
    # Accepted (normalised to PK-SD): the command goes on to Kafka, at a closed port.
    result = cli(
        "tail", "--agency", "anf", "--jurisdiction", "pk-sd", "--category", "narcotics",
        "--home", str(home), "--bootstrap", "127.0.0.1:1",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "could not reach Kafka" in result.stderr


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("report example", ["--jurisdiction", "ZZ"]),
        ("report example", ["--category", "fuel"]),
        ("agency grant", ["anf", "--category", "narcotics", "--jurisdiction", "PK-QQ", HOME]),
        ("agency grant", ["anf", "--category", "Narcotics", "--jurisdiction", "PK", HOME]),
        ("agency add", ["ANF", "--name", "Anti Narcotics Force", HOME]),
        ("agency add", ["dea", "--name", "Drug\x1b[2J Enforcement", HOME]),
        ("agency add", ["dea", "--name", "DEA", "--valid-days", "3651", HOME]),
        ("agency revoke", ["anf", "--reason", "", HOME]),
        ("agency revoke", ["anf", "--reason", "lost", "--key", "not/a/kid", HOME]),
        ("kafka start", ["--nodes", "10", HOME]),
        ("kafka start", ["--port", "65536", HOME]),
        ("up", ["--port", "-1", HOME]),
        ("federation publish-directory", ["--topic", "bad topic", HOME]),
    ],
)
def test_every_command_refuses_bad_values_as_usage_errors(
    home: Path, command: str, args: list[str]
) -> None:
    given = [a for arg in args for a in (["--home", str(home)] if arg is HOME else [arg])]
    result = cli(*command.split(), *given)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    [message] = result.stderr.splitlines()
    assert message.startswith("error: Invalid value for ")
    assert "expected" in message
    assert message.endswith(f"See `fusionbus {command} --help`.")


def test_a_file_that_is_no_report_is_a_content_error(home: Path, tmp_path: Path) -> None:
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0 not text")
    result = cli("publish", "--agency", "customs", str(binary), "--home", str(home))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {str(binary)!r} is not UTF-8 text (byte 0); nothing was published: pass a "
        "JSON report, or JSON lines of reports\n"
    )


def test_a_missing_report_file_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    result = cli("publish", "--agency", "customs", str(tmp_path / "nope.json"), "--home", str(home))
    assert result.exit_code == 2
    assert "does not exist: expected a JSON report file" in result.stderr
    assert "`fusionbus report example > report.json` writes one" in result.stderr


def test_bad_kafka_settings_from_the_environment_are_named(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FUSIONBUS_BOOTSTRAP", "kafka-without-port")
    result = cli("tail", "--agency", "anf", "--home", str(home))
    assert result.exit_code == 1
    [message] = result.stderr.splitlines()
    assert "the Kafka settings from the environment (FUSIONBUS_*)" in message
    assert "'kafka-without-port'" in message
    assert "pass --bootstrap HOST:PORT" in message


def test_no_arguments_show_the_help_and_exit_2() -> None:
    result = cli()
    assert result.exit_code == 2
    assert "Usage: fusionbus" in result.stdout + result.stderr
    assert "error:" not in result.stderr
