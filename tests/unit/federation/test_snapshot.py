"""DirectorySnapshot: one frozen read model, returned by the file store and the view."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.federation import DirectorySnapshot, DirectoryView, DisseminationPolicy, Federation
from broker.federation.directory import read_root_public
from broker.home import HomeLayout
from schemas import example_report
from tests.unit.federation.conftest import NOW


def test_a_snapshot_cannot_be_changed(federation: Federation) -> None:
    snapshot = federation.snapshot
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.origin = "elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        snapshot.records["mallory"] = snapshot.agency("anf")  # type: ignore[index]
    with pytest.raises(TypeError):
        snapshot.tokens["anf"] = b"forged"  # type: ignore[index]


def test_a_write_replaces_the_file_stores_snapshot_and_leaves_the_old_one_as_it_was(
    federation: Federation,
) -> None:
    before = federation.snapshot
    federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)
    after = federation.snapshot
    assert after is not before
    assert not before.entitled("fia", category="arms", jurisdiction="PK")
    assert after.entitled("fia", category="arms", jurisdiction="PK")
    assert after.agency("fia").revision == before.agency("fia").revision + 1
    assert before.signed_records()["fia"] != after.signed_records()["fia"]


def test_the_signed_records_are_the_bytes_on_disk(federation: Federation, home: Path) -> None:
    layout = HomeLayout(home)
    for snapshot in (federation.snapshot, Federation.load(home).snapshot):
        tokens = snapshot.signed_records()
        assert sorted(tokens) == ["anf", "customs", "fia"]
        for agency, token in tokens.items():
            assert token == layout.record(agency).read_bytes().strip()


def test_the_view_replaces_its_snapshot_when_it_accepts_a_record(
    federation: Federation, home: Path
) -> None:
    view = DirectoryView(read_root_public(HomeLayout(home).root_public, home))
    empty = view.snapshot
    assert view.offer(b"anf", federation.snapshot.signed_records()["anf"], source="t")
    assert empty.agencies() == []  # what a reader held before is still whole
    assert [a.id for a in view.snapshot.agencies()] == ["anf"]
    held = view.snapshot
    assert not view.offer(b"anf", federation.snapshot.signed_records()["anf"], source="t")
    assert view.snapshot is held  # a re-delivery changes nothing


def test_an_unknown_agency_names_where_the_snapshot_came_from(
    federation: Federation, home: Path
) -> None:
    with pytest.raises(ConfigError, match=r"not in the directory of .*known: anf, customs, fia"):
        federation.snapshot.agency("dea")
    view = DirectoryView(read_root_public(HomeLayout(home).root_public, home), origin="the topic")
    with pytest.raises(ConfigError, match=r"not in the topic \(known: none yet\)"):
        view.snapshot.agency("anf")


def test_a_kid_listed_for_two_agencies_is_refused(federation: Federation) -> None:
    anf, fia = federation.snapshot.agency("anf"), federation.snapshot.agency("fia")
    thief = fia.model_copy(update={"signing_keys": anf.signing_keys})
    with pytest.raises(ConfigError, match="listed for both 'anf' and 'fia'"):
        DirectorySnapshot.of([anf, thief])


def test_the_policy_reads_the_current_snapshot(federation: Federation) -> None:
    policy = DisseminationPolicy(federation)
    report = example_report("arms", "PK", now=NOW)
    customs, fia = federation.snapshot.agency("customs"), federation.snapshot.agency("fia")
    assert not policy.entitled("fia", category="arms", jurisdiction="PK")
    federation.grant("customs", categories=["arms"], jurisdictions=["PK"], now=NOW)
    assert policy.recipients(report, NOW) == [customs.encryption_kid]
    federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)
    assert policy.entitled("fia", category="arms", jurisdiction="PK")
    assert policy.recipients(report, NOW) == [customs.encryption_kid, fia.encryption_kid]


def test_a_snapshot_of_bare_keys_knows_keys_but_no_agency(federation: Federation) -> None:
    anf = federation.snapshot.agency("anf")
    key = federation.snapshot.signing_key(anf.signing_kid)
    assert key is not None
    bare = DirectorySnapshot.of_keys([key])
    assert bare.snapshot is bare  # a fixed directory
    assert bare.signing_key(anf.signing_kid) == key
    assert bare.encryption_key(anf.encryption_kid) is None
    assert bare.agencies() == []


def test_an_empty_snapshot_is_read_only_too() -> None:
    empty = DirectorySnapshot()
    with pytest.raises(TypeError):
        empty.records["anf"] = None  # type: ignore[index]
    assert empty.agencies() == []
    assert empty.signed_records() == {}
