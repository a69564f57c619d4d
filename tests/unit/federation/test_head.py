"""The directory head: a view with no state still refuses a rolled-back, compacted topic."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from broker.errors import ConfigError
from broker.federation import DirectoryView, Federation
from broker.federation.directory import read_root_public
from broker.federation.head import HEAD_KEY, HEAD_MAX_AGE, sign_head, verify_head
from broker.home import HomeLayout
from broker.keys import SigningKey
from tests.unit.federation.conftest import NOW, root_key


def _view(home: Path, state: Path | None = None) -> DirectoryView:
    return DirectoryView(read_root_public(HomeLayout(home).root_public, home), state=state)


def _head(federation: Federation, home: Path, *, at: datetime = NOW) -> bytes:
    revisions = {r.id: r.revision for r in federation.snapshot.agencies()}
    return sign_head(revisions, root_key(home), now=at)


@pytest.fixture
def rolled_back(federation: Federation, home: Path) -> tuple[dict[str, bytes], bytes, bytes]:
    """What a Kafka operator can serve after revoking fia: the pre-revocation records (an
    old record appended, the newer one compacted away) and the current head."""
    before = federation.snapshot.signed_records()
    federation.revoke("fia", reason="compromised", now=NOW)
    return before, federation.snapshot.signed_records()["fia"], _head(federation, home)


def test_a_fresh_view_sets_aside_a_record_the_head_shows_superseded(
    federation: Federation, home: Path, rolled_back: tuple[dict[str, bytes], bytes, bytes]
) -> None:
    before, _, head = rolled_back
    view = _view(home)
    for agency, token in before.items():  # the compacted topic: fia's old record survives
        assert view.offer(agency.encode(), token, source=f"topic/{agency}")
    assert "fia" in {a.id for a in view.snapshot.agencies()}  # no head yet: it cannot know
    assert view.offer(HEAD_KEY, head, source="topic/_head")
    assert "fia" not in {a.id for a in view.snapshot.agencies()}
    fia_kid = federation.snapshot.agency("fia").encryption_keys[-1].jwk.kid
    assert view.snapshot.encryption_key(fia_kid) is None
    assert "fia" not in view.snapshot.signed_records()
    assert view.head_problem(NOW) is not None
    assert "fia" in (view.head_problem(NOW) or "")


def test_a_record_below_the_head_is_refused_as_a_rollback(
    federation: Federation, home: Path, rolled_back: tuple[dict[str, bytes], bytes, bytes]
) -> None:
    before, current, head = rolled_back
    view = _view(home)
    assert view.offer(HEAD_KEY, head, source="topic/_head")
    assert not view.offer(b"fia", before["fia"], source="topic/fia")
    assert view.refused == 1
    assert view.offer(b"fia", current, source="topic/fia")
    assert view.head_problem(NOW) is None or "fia" not in (view.head_problem(NOW) or "")


def test_the_head_and_its_guard_survive_a_restart(
    federation: Federation, home: Path, rolled_back: tuple[dict[str, bytes], bytes, bytes]
) -> None:
    before, _, head = rolled_back
    state = home / "state.json"
    first = _view(home, state)
    assert first.offer(HEAD_KEY, head, source="h")
    again = _view(home, state)
    assert again.snapshot.head is not None
    assert not again.offer(b"fia", before["fia"], source="topic/fia")


def test_an_older_head_is_refused(federation: Federation, home: Path) -> None:
    view = _view(home)
    assert view.offer(HEAD_KEY, _head(federation, home, at=NOW), source="h1")
    assert not view.offer(HEAD_KEY, _head(federation, home, at=NOW), source="h1 again")  # same
    assert view.refused == 0
    assert not view.offer(
        HEAD_KEY, _head(federation, home, at=NOW - timedelta(hours=1)), source="old"
    )
    assert view.refused == 1
    assert view.offer(HEAD_KEY, _head(federation, home, at=NOW + timedelta(hours=1)), source="new")


def test_a_head_not_signed_by_the_root_is_refused(federation: Federation, home: Path) -> None:
    root = read_root_public(HomeLayout(home).root_public, home)
    forged = sign_head({"fia": 1}, SigningKey.generate(), now=NOW)
    with pytest.raises(ConfigError, match="root's kid"):
        verify_head(forged, root, source="t")
    genuine = _head(federation, home)
    head, payload, signature = genuine.split(b".")
    with pytest.raises(ConfigError, match="does not verify"):
        verify_head(head + b"." + payload[:-2] + b"fQ." + signature, root, source="t")
    view = _view(home)
    assert not view.offer(HEAD_KEY, forged, source="t")
    assert not view.offer(HEAD_KEY, b"garbage", source="t")
    assert view.refused == 2


def test_a_missing_or_old_head_is_reported_at_start(federation: Federation, home: Path) -> None:
    view = _view(home)
    for agency, token in federation.snapshot.signed_records().items():
        view.offer(agency.encode(), token, source=agency)
    assert "no root-signed head" in (view.head_problem(NOW) or "")
    view.offer(HEAD_KEY, _head(federation, home), source="h")
    assert view.head_problem(NOW) is None
    assert "older than" in (view.head_problem(NOW + HEAD_MAX_AGE + timedelta(minutes=1)) or "")
