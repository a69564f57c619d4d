"""Init, enrol, grant, reload: the directory round trip and its refusals."""

from __future__ import annotations

import os
import stat
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from broker.errors import ConfigError
from broker.federation import Federation
from broker.home import HomeLayout
from broker.keys import SigningKey, kid_of, public_key_from_jwk
from tests.unit.federation.conftest import ENROLLED, NOW


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_reloaded_directory_equals_the_one_written(federation: Federation, home: Path) -> None:
    again = Federation.load(home)
    assert again.snapshot.agencies() == federation.snapshot.agencies()
    assert [a.id for a in again.snapshot.agencies()] == ["anf", "customs", "fia"]
    assert again.root_kid == federation.root_kid
    anf = again.snapshot.agency("anf")
    assert anf.name == "Anti Narcotics Force"
    assert [str(g) for g in anf.grants] == ["narcotics@PK", "precursor_chemicals@PK"]
    assert anf.revision == 2
    assert anf.signing_keys[0].valid_from == ENROLLED
    assert anf.signing_keys[0].valid_until == ENROLLED + timedelta(days=365)
    assert anf.signing_keys[0].revoked_at is None


def test_the_home_layout_and_modes(federation: Federation, home: Path) -> None:
    layout = HomeLayout(home)
    assert mode(layout.federation_dir) == 0o700
    assert mode(layout.root_private) == 0o600
    assert mode(layout.agencies_dir) == 0o700
    for agency in ("customs", "anf", "fia"):
        assert mode(layout.agency_dir(agency)) == 0o700
        assert mode(layout.signing_key(agency)) == 0o600
        assert mode(layout.encryption_key(agency)) == 0o600
        assert layout.record(agency).is_file()
        jwks = orjson.loads(layout.jwks(agency).read_bytes())
        record = federation.snapshot.agency(agency)
        kids = [public_key_from_jwk(k) for k in jwks["keys"]]
        assert [kid_of(k) for k in kids] == [record.signing_kid, record.encryption_kid]
        assert all("d" not in k for k in jwks["keys"])
    root = orjson.loads(layout.root_public.read_bytes())
    assert root["kid"] == federation.root_kid
    assert "d" not in root
    assert not list(home.rglob("*.tmp"))


def test_private_files_are_0600_from_the_start_even_with_a_lax_umask(home: Path) -> None:
    old = os.umask(0)
    try:
        fed = Federation.init(home, now=NOW)
        fed.add_agency("anf", "ANF", now=NOW)
    finally:
        os.umask(old)
    layout = HomeLayout(home)
    assert mode(layout.root_private) == 0o600
    assert mode(layout.signing_key("anf")) == 0o600
    assert mode(layout.agency_dir("anf")) == 0o700


def test_init_refuses_an_existing_federation(federation: Federation, home: Path) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        Federation.init(home, now=NOW)


def test_load_without_a_federation_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        Federation.load(tmp_path)
    assert f"fusionbus federation init --home {tmp_path}" in str(info.value)


def test_an_empty_federation_has_no_agencies(home: Path) -> None:
    Federation.init(home, now=NOW)
    assert Federation.load(home).snapshot.agencies() == []


def test_add_refuses_duplicates_and_bad_ids(federation: Federation) -> None:
    with pytest.raises(ConfigError, match="already enrolled"):
        federation.add_agency("anf", "Again", now=NOW)
    for bad in ("ANF", "a", "1abc", "an_f", "x" * 33):
        with pytest.raises(ConfigError, match="not valid"):
            federation.add_agency(bad, "Bad", now=NOW)
    with pytest.raises(ConfigError, match="name"):
        federation.add_agency("bad-name", "line\nbreak", now=NOW)
    with pytest.raises(ConfigError, match="positive"):
        federation.add_agency("short", "Short", now=NOW, valid_for=timedelta(0))


def test_add_refuses_leftovers_of_an_interrupted_enrolment(
    federation: Federation, home: Path
) -> None:
    HomeLayout(home).agency_dir("fbr").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="interrupted enrolment"):
        federation.add_agency("fbr", "FBR", now=NOW)


def test_only_the_admin_machine_can_enrol(federation: Federation, home: Path) -> None:
    HomeLayout(home).root_private.unlink()
    with pytest.raises(ConfigError, match="not on this machine"):
        Federation.load(home).add_agency("fbr", "FBR", now=NOW)


def test_a_root_key_that_does_not_match_the_anchor_is_refused(
    federation: Federation, home: Path
) -> None:
    path = HomeLayout(home).root_private
    path.unlink()
    path.write_bytes(SigningKey.generate().to_pem())
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not the private half"):
        federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)


def test_grant_accumulates_and_is_idempotent(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("fia")
    before = path.read_bytes()
    same = federation.grant(
        "fia", categories=["human_trafficking"], jurisdictions=["pk-sd"], now=NOW
    )
    assert same.revision == 2
    assert path.read_bytes() == before
    more = federation.grant(
        "fia", categories=["migrant_smuggling"], jurisdictions=["PKKHI"], now=NOW
    )
    assert more.revision == 3
    assert more.issued_at == NOW
    assert [str(g) for g in more.grants] == ["human_trafficking@PK-SD", "migrant_smuggling@PKKHI"]
    assert Federation.load(home).snapshot.agency("fia") == more


def test_grant_refuses_unknown_codes_and_agencies(federation: Federation) -> None:
    with pytest.raises(ConfigError, match="not registered"):
        federation.grant("fia", categories=["fuel"], jurisdictions=["PK"], now=NOW)
    with pytest.raises(ConfigError, match="ISO 3166"):
        federation.grant("fia", categories=["arms"], jurisdictions=["PK-ZZ"], now=NOW)
    with pytest.raises(ConfigError, match="at least one"):
        federation.grant("fia", categories=[], jurisdictions=["PK"], now=NOW)
    with pytest.raises(ConfigError, match=r"known: anf, customs, fia"):
        federation.grant("fbr", categories=["arms"], jurisdictions=["PK"], now=NOW)


def test_naive_times_are_refused(home: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Federation.init(home, now=NOW.replace(tzinfo=None))


def test_identity_loads_the_enrolled_keys(federation: Federation, home: Path) -> None:
    me = Federation.load(home).identity("anf")
    record = federation.snapshot.agency("anf")
    assert me.agency == "anf"
    assert me.signing_kid == record.signing_kid
    assert me.encryption_kid == record.encryption_kid


def test_identity_refuses_keys_the_directory_does_not_list(
    federation: Federation, home: Path
) -> None:
    path = HomeLayout(home).signing_key("anf")
    path.unlink()
    path.write_bytes(SigningKey.generate().to_pem())
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="the directory lists"):
        federation.identity("anf")
    HomeLayout(home).encryption_key("fia").unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        federation.identity("fia")


def test_the_snapshot_answers_from_the_records(federation: Federation) -> None:
    trust = federation.snapshot
    anf = federation.snapshot.agency("anf")
    signing = trust.signing_key(anf.signing_kid)
    encryption = trust.encryption_key(anf.encryption_kid)
    assert signing is not None
    assert signing.agency == "anf"
    assert encryption is not None
    assert encryption.agency == "anf"
    assert signing.valid_until == ENROLLED + timedelta(days=365)
    assert trust.signing_key(anf.encryption_kid) is None
    assert trust.encryption_key("nope") is None


def test_an_unwritable_home_is_a_config_error(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores modes; use a path under a file
            target = tmp_path / "file"
            target.write_text("x")
            home = target / "home"
        else:
            home = locked / "home"
        with pytest.raises(ConfigError, match="cannot create"):
            Federation.init(home, now=NOW)
    finally:
        locked.chmod(0o700)
