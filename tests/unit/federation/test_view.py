"""DirectoryView: signed records in, a rollback-protected directory out (no Kafka)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from broker.federation import DirectoryView, Federation, sign_record
from broker.federation.directory import read_root_public
from broker.home import HomeLayout
from broker.keys import SigningKey
from tests.unit.federation.conftest import NOW, forge, root_key


def view_of(home: Path, state: Path | None = None) -> DirectoryView:
    return DirectoryView(read_root_public(HomeLayout(home).root_public, home), state=state)


def load(view: DirectoryView, tokens: dict[str, bytes]) -> None:
    for agency, token in tokens.items():
        assert view.offer(agency.encode(), token, source=f"test/{agency}")


def test_signed_records_build_the_directory_and_later_revisions_replace_earlier_ones(
    federation: Federation, home: Path
) -> None:
    view = view_of(home)
    load(view, federation.snapshot.signed_records())
    assert [a.id for a in view.snapshot.agencies()] == ["anf", "customs", "fia"]
    anf = federation.snapshot.agency("anf")
    assert view.snapshot.signing_key(anf.signing_kid) == federation.snapshot.signing_key(
        anf.signing_kid
    )
    assert not view.snapshot.entitled("fia", category="arms", jurisdiction="PK")

    federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)
    token = federation.snapshot.signed_records()["fia"]
    assert view.offer(b"fia", token + b"\n", source="t")  # the file's newline is tolerated
    assert view.snapshot.entitled("fia", category="arms", jurisdiction="PK")
    assert not view.offer(b"fia", token, source="t")  # delivered again: nothing changes
    assert (view.accepted, view.refused) == (4, 0)


def test_forged_misfiled_and_rolled_back_records_are_refused_and_skipped(
    federation: Federation, home: Path
) -> None:
    old = federation.snapshot.signed_records()
    view = view_of(home)
    load(view, old)
    federation.revoke("anf", reason="compromised", now=NOW)
    current = federation.snapshot.signed_records()
    assert view.offer(b"anf", current["anf"], source="t")

    header, payload, signature = current["fia"].split(b".")
    flipped = payload[:-2] + (b"A" if payload[-2:-1] != b"A" else b"B") + payload[-1:]
    rogue = SigningKey.generate()
    conflicting = sign_record(
        federation.snapshot.agency("fia").model_copy(update={"name": "Someone Else"}),
        root_key(home),
    )
    refused = [
        (b"fia", b".".join((header, flipped, signature))),  # tampered
        (b"fia", header + b"." + payload + b"."),  # unsigned
        (b"fia", forge(b"{}", rogue)),  # another root
        (b"fia", b"\xff" * 10),  # garbage
        (b"fia", None),  # a tombstone
        (b"fia", current["anf"]),  # filed under another agency
        (None, current["fia"]),  # no key
        (b"anf", old["anf"]),  # rollback: validly signed, from before the revocation
        (b"fia", conflicting),  # same revision, other content
    ]
    for key, value in refused:
        assert not view.offer(key, value, source="t")
    assert view.refused == len(refused)
    assert view.revision("anf") == federation.snapshot.agency("anf").revision
    assert view.snapshot.agency("fia") == federation.snapshot.agency("fia")
    anf = view.snapshot.agency("anf")
    assert anf is not None
    assert anf.encryption_key_at(NOW) is None  # still revoked


def test_a_key_listed_for_two_agencies_is_refused(federation: Federation, home: Path) -> None:
    view = view_of(home)
    load(view, federation.snapshot.signed_records())
    fia = federation.snapshot.agency("fia")
    stolen = fia.model_copy(
        update={"encryption_keys": federation.snapshot.agency("anf").encryption_keys, "revision": 9}
    )
    assert not view.offer(b"fia", sign_record(stolen, root_key(home)), source="t")
    assert view.snapshot.agency("fia") == fia


def test_the_accepted_state_survives_a_restart_so_a_rollback_stays_refused(
    federation: Federation, home: Path, tmp_path: Path
) -> None:
    state = tmp_path / "live-state.json"
    old = federation.snapshot.signed_records()
    view = view_of(home, state)
    load(view, old)
    federation.revoke("anf", reason="compromised", now=NOW)
    assert view.offer(b"anf", federation.snapshot.signed_records()["anf"], source="t")

    restarted = view_of(home, state)  # e.g. the topic now replays only the old record
    assert restarted.revision("anf") == federation.snapshot.agency("anf").revision
    assert not restarted.offer(b"anf", old["anf"], source="replayed")
    assert restarted.snapshot.recipients_for(
        sender="customs",
        category="narcotics",
        jurisdiction="PKKHI",
        tlp="TLP:AMBER",
        named_recipients=(),
        now=NOW,
    ) == [federation.snapshot.agency("customs")]


@settings(max_examples=60, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=40)), value=st.one_of(st.none(), st.binary()))
def test_any_bytes_are_refused_without_an_exception(key: bytes | None, value: bytes | None) -> None:
    view = DirectoryView(SigningKey.generate().public)
    assert not view.offer(key, value, source="fuzz")
    assert view.snapshot.agencies() == []
