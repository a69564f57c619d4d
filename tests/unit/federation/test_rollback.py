"""Issue 10: a pre-revocation record copied back into a home is refused (``rollback``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.federation import Federation
from broker.home import HomeLayout
from tests.unit.federation.conftest import NOW


def test_a_copied_back_pre_revocation_record_is_refused(federation: Federation, home: Path) -> None:
    layout = HomeLayout(home)
    saved = home.parent / "fia-before-revocation.jws"
    shutil.copy(layout.record("fia"), saved)
    federation.revoke("fia", reason="compromised", now=NOW)
    assert (
        Federation.load(home).snapshot.agency("fia").revision
        == federation.snapshot.agency("fia").revision
    )
    shutil.copy(saved, layout.record("fia"))  # the attack: the old, validly signed record
    with pytest.raises(ConfigError, match="rollback"):
        Federation.load(home)


def test_the_guard_holds_for_a_home_that_only_ever_loaded_the_newer_record(
    federation: Federation, home: Path, tmp_path: Path
) -> None:
    """An agency's machine: it received the current records (by a bundle or a copy), loaded
    them once, and is later handed an old one."""
    before = HomeLayout(home).record("fia").read_bytes()
    federation.revoke("fia", reason="compromised", now=NOW)
    site = tmp_path / "site"
    shutil.copytree(HomeLayout(home).federation_dir, HomeLayout(site).federation_dir)
    HomeLayout(site).directory_dir.mkdir()
    for name in ("customs", "anf", "fia"):
        shutil.copy(HomeLayout(home).record(name), HomeLayout(site).record(name))
    Federation.load(site)
    HomeLayout(site).record("fia").write_bytes(before)
    with pytest.raises(ConfigError, match=r"rollback .* of 'fia', but this home accepted"):
        Federation.load(site)


def test_newer_records_move_the_guard_up_and_a_corrupt_guard_is_an_error(
    federation: Federation, home: Path
) -> None:
    revision = federation.snapshot.agency("fia").revision
    federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)
    assert Federation.load(home).snapshot.agency("fia").revision == revision + 1
    HomeLayout(home).accepted_revisions.write_text("not json")
    with pytest.raises(ConfigError, match="not a revision record"):
        Federation.load(home)
