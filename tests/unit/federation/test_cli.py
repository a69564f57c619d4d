"""The federation commands as an operator runs them: ``python -m fusionbus ...``."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import orjson

from broker.federation import Federation

CLI = [sys.executable, "-m", "fusionbus"]


def run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSIONBUS_")}
    if home is not None:
        env["FUSIONBUS_HOME"] = str(home)
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def ok(*args: str, home: Path | None = None) -> str:
    result = run(*args, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_init_add_grant_list(tmp_path: Path) -> None:
    home = tmp_path / "h"
    root_kid = ok("federation", "init", "--home", str(home)).strip()
    assert ok("agency", "add", "customs", "--name", "Pakistan Customs", "--home", str(home)) == (
        "customs\n"
    )
    ok(
        "agency", "add", "anf", "--name", "Anti Narcotics Force", "--valid-days", "30", home=home
    )  # FUSIONBUS_HOME instead of --home
    ok(
        "agency",
        "grant",
        "anf",
        "--category",
        "narcotics",
        "--category",
        "precursor_chemicals",
        "--jurisdiction",
        "PK",
        "--jurisdiction",
        "AF",
        "--home",
        str(home),
    )
    lines = ok("agency", "list", "--json", "--home", str(home)).splitlines()
    listed = [orjson.loads(line) for line in lines]
    assert [a["id"] for a in listed] == ["anf", "customs"]
    anf = listed[0]
    assert anf["revision"] == 2
    assert {(g["category"], g["jurisdiction"]) for g in anf["grants"]} == {
        ("narcotics", "PK"),
        ("narcotics", "AF"),
        ("precursor_chemicals", "PK"),
        ("precursor_chemicals", "AF"),
    }
    fed = Federation.load(home)
    assert fed.root_kid == root_kid
    assert anf["signing_kid"] == fed.snapshot.agency("anf").signing_kid
    assert anf["encryption_kid"] == fed.snapshot.agency("anf").encryption_kid
    table = ok("agency", "list", "--home", str(home))
    assert "Anti Narcotics Force" in table
    assert fed.snapshot.agency("anf").encryption_kid in table
    assert "narcotics: AF, PK; precursor_chemicals: AF, PK" in table


def test_errors_say_what_to_run_and_exit_1(tmp_path: Path) -> None:
    home = tmp_path / "empty"
    result = run("agency", "list", "--home", str(home))
    assert result.returncode == 1
    assert f"fusionbus federation init --home {home}" in " ".join(result.stderr.split())
    ok("federation", "init", "--home", str(home))
    again = run("federation", "init", "--home", str(home))
    assert again.returncode == 1
    assert "already exists" in again.stderr
    unknown = run(
        "agency", "grant", "fbr", "--category", "arms", "--jurisdiction", "PK", "--home", str(home)
    )
    assert unknown.returncode == 1
    assert "fusionbus agency add fbr --name NAME" in " ".join(unknown.stderr.split())
    usage = run("agency", "grant", "fbr", "--home", str(home))
    assert usage.returncode == 2


def test_rotate_keys_then_revoke_as_an_operator_does(tmp_path: Path) -> None:
    home = tmp_path / "h"
    ok("federation", "init", home=home)
    ok("agency", "add", "customs", "--name", "Pakistan Customs", home=home)
    ok("agency", "add", "anf", "--name", "Anti Narcotics Force", home=home)
    before = Federation.load(home).snapshot.agency("anf")

    signing_kid, encryption_kid = ok("agency", "rotate-keys", "anf", home=home).split()
    after = Federation.load(home).snapshot.agency("anf")
    assert (after.signing_kid, after.encryption_kid) == (signing_kid, encryption_kid)
    assert after.revision == before.revision + 1
    assert [e.kid for e in after.encryption_keys] == [before.encryption_kid, encryption_kid]
    assert after.encryption_keys[0].valid_until <= after.issued_at + timedelta(seconds=1)
    kept = home / "agencies" / "anf" / f"encryption.{before.encryption_kid}.key.pem"
    assert kept.stat().st_mode & 0o777 == 0o600
    identity = Federation.load(home).identity("anf")
    assert set(identity.decryption_keys) == {before.encryption_kid, encryption_kid}

    revoked = ok(
        "agency", "revoke", "anf", "--key", before.signing_kid, "--reason", "old laptop",
        home=home,
    ).split()  # fmt: skip
    assert revoked == [before.signing_kid]
    everything = ok("agency", "revoke", "anf", "--reason", "compromised", home=home).split()
    assert set(everything) == {before.encryption_kid, signing_kid, encryption_kid}
    final = Federation.load(home).snapshot.agency("anf")
    assert final.revision == after.revision + 2
    assert all(e.revoked_at is not None for e in (*final.signing_keys, *final.encryption_keys))
    again = run("agency", "revoke", "anf", "--reason", "compromised", home=home)
    assert again.returncode == 0
    assert again.stdout == ""
    assert "nothing changed" in again.stderr

    unknown = run("agency", "revoke", "anf", "--key", "nope", "--reason", "x", home=home)
    assert unknown.returncode == 1
    assert "lists no key 'nope'" in unknown.stderr
    missing_reason = run("agency", "revoke", "anf", home=home)
    assert missing_reason.returncode == 2
