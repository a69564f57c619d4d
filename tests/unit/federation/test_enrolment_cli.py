"""Enrolment by request as an operator runs it: ``fusionbus agency init|add --request|import
|rotate-keys --request``, the admin and the agency in separate homes (in-process, with the
streams apart, as ``tests/unit/cli`` runs the CLI; ``tests/unit/federation/test_cli.py``
runs it as subprocesses)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from broker.federation import Federation
from broker.home import resolve_home
from tests.unit.cli.conftest import cli, logging_restored
from tests.unit.federation.homes import private_keys


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [n for n in os.environ if n.startswith("FUSIONBUS_")]:
        monkeypatch.delenv(name)
    with logging_restored():
        yield


def run(*args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``fusionbus ARGS`` (``FUSIONBUS_HOME=home`` if given): exit code and streams."""
    with pytest.MonkeyPatch.context() as env:
        if home is not None:
            env.setenv("FUSIONBUS_HOME", str(home))
        result = cli(*args)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def ok(*args: str, home: Path | None = None) -> str:
    result = run(*args, home=home)
    assert result.returncode == 0, result.stderr
    return result.stdout


def fingerprints(stderr: str) -> dict[str, str]:
    """The fingerprint lines a command printed: label -> value."""
    rows = re.findall(r"^  (agency|[a-zA-Z ]+ \([a-zA-Z0-9-]+\)) +(\S+)$", stderr, re.MULTILINE)
    return dict(rows)


def failed(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    message = " ".join(result.stderr.split())
    assert message.startswith("error:"), message
    assert "Traceback" not in result.stderr
    assert "\n\n" not in result.stderr.strip()
    for fragment in fragments:
        assert fragment in message, message
    return message


@pytest.fixture
def admin(tmp_path: Path) -> Path:
    home = tmp_path / "admin"
    ok("federation", "init", "--home", str(home))
    return home


def test_an_agency_enrols_from_its_own_home_and_both_ends_show_the_same_fingerprints(
    admin: Path, tmp_path: Path
) -> None:
    site = tmp_path / "anf-machine"
    made = run("agency", "init", "anf", "--name", "Anti Narcotics Force", "--home", str(site))
    assert made.returncode == 0, made.stderr
    request_file = Path(made.stdout.strip())
    assert request_file == site / "enrolment" / "anf.request.jws"
    asked = fingerprints(made.stderr)
    assert set(asked) == {
        "agency",
        "signing key (kid)",
        "encryption key (kid)",
        "TLS key (SHA-256)",
    }
    assert "never leave this machine" in made.stderr

    added = run("agency", "add", "--request", str(request_file), "--home", str(admin))
    assert added.returncode == 0, added.stderr
    bundle = Path(added.stdout.strip())
    assert bundle == admin / "enrolment" / "anf.bundle.jws"
    issued = fingerprints(added.stderr)
    assert {k: issued[k] for k in asked} == asked
    assert issued["federation root (kid)"] == Federation.load(admin).root_kid
    assert "No private key of the agency was here" in added.stderr
    ok("agency", "grant", "anf", "--category", "narcotics", "--jurisdiction", "PK", home=admin)

    installed = run("agency", "import", str(bundle), "--home", str(site))
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout == "anf\n"
    assert fingerprints(installed.stderr) == issued
    listed = [orjson.loads(x) for x in ok("agency", "list", "--json", home=site).splitlines()]
    assert [x["id"] for x in listed] == ["anf"]
    assert listed[0]["signing_kid"] == asked["signing key (kid)"]
    assert not (admin / "agencies").exists()
    assert not {k.public for k in private_keys(admin)} & {k.public for k in private_keys(site)}
    assert Federation.load(site).identity("anf").signing_kid == asked["signing key (kid)"]


def test_keys_rotate_by_request_and_the_old_decryption_key_stays(
    admin: Path, tmp_path: Path
) -> None:
    site = tmp_path / "anf-machine"
    request_file = ok("agency", "init", "anf", "--name", "ANF", "--home", str(site)).strip()
    bundle = ok("agency", "add", "--request", request_file, home=admin).strip()
    ok("agency", "import", bundle, "--home", str(site))
    before = Federation.load(site).snapshot.agency("anf")

    rotation = run("agency", "init", "anf", "--rotate", "--home", str(site))
    assert rotation.returncode == 0, rotation.stderr
    assert "rotation request" in rotation.stderr
    carried = tmp_path / "carried-to-the-admin.jws"  # the admin's copy of the request
    carried.write_bytes(Path(rotation.stdout.strip()).read_bytes())
    wrong = run("agency", "add", "--request", str(carried), home=admin)
    failed(wrong, "is a rotation request", "fusionbus agency rotate-keys --request")
    applied = run("agency", "rotate-keys", "--request", str(carried), home=admin)
    assert applied.returncode == 0, applied.stderr
    assert f"keys {before.signing_kid} and {before.encryption_kid} end now" in " ".join(
        applied.stderr.split()
    )
    done = run("agency", "import", applied.stdout.strip(), "--home", str(site))
    assert done.returncode == 0, done.stderr
    assert "new keys installed, revision 2" in done.stderr
    identity = Federation.load(site).identity("anf")
    assert before.encryption_kid in identity.decryption_keys
    assert identity.signing_kid == fingerprints(rotation.stderr)["signing key (kid)"]
    replayed = run("agency", "rotate-keys", "--request", str(carried), home=admin)
    failed(replayed, "already lists the keys of this request")


def test_defects_are_one_paragraph_naming_what_is_wrong(admin: Path, tmp_path: Path) -> None:
    site, other = tmp_path / "anf-machine", tmp_path / "other-machine"
    request_file = Path(ok("agency", "init", "anf", "--name", "ANF", "--home", str(site)).strip())
    tampered = tmp_path / "tampered.jws"
    data = bytearray(request_file.read_bytes())
    data[40] ^= 0x01
    tampered.write_bytes(bytes(data))
    failed(run("agency", "add", "--request", str(tampered), home=admin), str(tampered))
    junk = tmp_path / "junk.jws"
    junk.write_bytes(b"\x00\xff" * 10)
    failed(run("agency", "add", "--request", str(junk), home=admin), "non-ASCII")
    huge = tmp_path / "huge.jws"
    huge.write_bytes(b"a" * 100_000)
    failed(run("agency", "add", "--request", str(huge), home=admin), "over 16384 bytes")
    both = run("agency", "add", "anf", "--request", str(request_file), home=admin)
    failed(both, "takes the agency's id and name from the request")
    failed(run("agency", "add", home=admin), "needs --request FILE")

    bundle = ok("agency", "add", "--request", str(request_file), home=admin).strip()
    failed(run("agency", "add", "--request", str(request_file), home=admin), "already enrolled")
    ok("agency", "init", "anf", "--name", "Impostor", "--home", str(other))
    failed(run("agency", "import", bundle, "--home", str(other)), "holds no such private key")
    failed(run("agency", "import", bundle, "--home", str(admin)), "it is the admin's home")
    missing = run("agency", "import", str(tmp_path / "nope.jws"), "--home", str(site))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr


def test_keys_made_on_the_admins_machine_come_with_a_warning(admin: Path) -> None:
    result = run("agency", "add", "fia", "--name", "FIA", "--home", str(admin))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "fia\n"
    message = " ".join(result.stderr.split())
    assert "WARNING: this home now holds the private keys of fia" in message
    assert "fusionbus agency init fia --name NAME" in message


def test_an_agency_command_uses_its_site_home_under_the_admins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = tmp_path / "admin"
    (admin / "sites" / "anf").mkdir(parents=True)
    monkeypatch.setenv("FUSIONBUS_HOME", str(admin))
    assert resolve_home(None) == admin
    assert resolve_home(None, agency="anf") == admin / "sites" / "anf"
    assert resolve_home(None, agency="fia") == admin  # no site: the home itself
    assert resolve_home(admin, agency="anf") == admin / "sites" / "anf"
    site = admin / "sites" / "anf"
    assert resolve_home(site, agency="anf") == site
