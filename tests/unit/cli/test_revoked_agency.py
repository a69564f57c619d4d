"""A revoked agency is told it is revoked, by the directory, before anything reaches Kafka.

Without that check, ``tail`` as a revoked agency on the secured cluster said that Kafka
refused to create its quarantine topic and suggested asking for a grant (finding 11a). The
homes here point at a closed port and some claim a secured cluster whose TLS files are not
there: a command that went past the directory check would say one of those things instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from broker.federation import Federation
from broker.home import write_config
from schemas import example_report
from tests.unit.cli.conftest import cli, ok

MODES = {
    "tail": ["tail", "--agency", "anf"],
    "tail --json": ["tail", "--agency", "anf", "--json"],
    "tail --raw": ["tail", "--agency", "anf", "--raw"],
    "tail --raw --json": ["tail", "--agency", "anf", "--raw", "--json"],
    "tail --group": ["tail", "--agency", "anf", "--group", "desk", "--from-beginning"],
    "publish": ["publish", "--agency", "anf", "REPORT"],
}


def _report(tmp_path: Path) -> str:
    report = example_report("narcotics", "PKKHI").model_dump(mode="json") | {"sender": "anf"}
    path = tmp_path / "report.json"
    path.write_bytes(orjson.dumps(report))
    return str(path)


@pytest.fixture(params=["plaintext", "mtls"])
def revoked_home(request: pytest.FixtureRequest, home: Path) -> Path:
    """The template home with anf revoked by ``fusionbus agency revoke``; on a plaintext
    cluster at a closed port, or on a secured one whose TLS files are missing here."""
    revoked = ok("agency", "revoke", "anf", "--reason", "compromised laptop", "--home", str(home))
    assert len(revoked.split()) == 2  # its signing and its encryption key
    write_config(home, "127.0.0.1:1", secure=request.param == "mtls", by="the test")
    return home


@pytest.mark.parametrize("mode", MODES)
def test_a_revoked_agency_is_told_so_before_kafka(
    mode: str, revoked_home: Path, tmp_path: Path
) -> None:
    args = [_report(tmp_path) if a == "REPORT" else a for a in MODES[mode]]
    result = cli(*args, "--home", str(revoked_home))
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    [message] = result.stderr.splitlines()
    assert message.startswith(
        f"error: agency anf is revoked: the directory in {revoked_home} marks every encryption "
        "key of anf revoked, so no report is sealed to it and the cluster gives it no access."
    )
    assert "`fusionbus agency rotate-keys anf` on the admin's machine" in message
    for misleading in ("Kafka", "grant", "TLS files", "quarantine"):
        assert misleading not in message


def test_an_agency_whose_signing_key_alone_is_revoked_may_tail_but_not_publish(
    home: Path, tmp_path: Path
) -> None:
    signing_kid = Federation.load(home).snapshot.agency("anf").signing_kid
    ok("agency", "revoke", "anf", "--key", signing_kid, "--reason", "lost", "--home", str(home))
    closed = ["--home", str(home), "--bootstrap", "127.0.0.1:1"]

    tail = cli("tail", "--agency", "anf", *closed)
    assert tail.exit_code == 1
    assert "could not reach Kafka" in tail.stderr  # past the directory check

    publish = cli("publish", "--agency", "anf", _report(tmp_path), *closed)
    assert publish.exit_code == 1
    assert publish.stderr.startswith(
        "error: agency anf is revoked: the directory in "
        f"{home} marks every signing key of anf revoked, so counterparts reject every report "
        "it signs"
    )


def test_an_agency_whose_keys_expired_is_told_when(home: Path) -> None:
    enrolled = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    Federation.load(home).add_agency("old", "Old Agency", now=enrolled, valid_for=timedelta(days=1))
    result = cli("tail", "--agency", "old", "--raw", "--home", str(home))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: agency old has no encryption key in force: its keys were valid until "
        f"{(enrolled + timedelta(days=1)).isoformat()}"
    )
    assert "fusionbus agency rotate-keys old" in result.stderr


def test_rotating_the_keys_readmits_the_agency(home: Path) -> None:
    ok("agency", "revoke", "anf", "--reason", "compromised laptop", "--home", str(home))
    ok("agency", "rotate-keys", "anf", "--home", str(home))
    result = cli("tail", "--agency", "anf", "--home", str(home), "--bootstrap", "127.0.0.1:1")
    assert result.exit_code == 1
    assert "could not reach Kafka" in result.stderr
