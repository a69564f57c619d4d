"""The policy remembers its answers for one snapshot only: a directory change, a key that
expires or a revocation applies to the next report (a stale answer would send a report to
an agency that may no longer read it)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from broker.errors import DisseminationError
from broker.federation import DirectorySnapshot, DisseminationPolicy, Federation, policy
from schemas import Report, example_report
from tests.unit.federation.conftest import NOW


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts how often the rules themselves run (the snapshot calls this function)."""
    calls: list[str] = []
    rules = policy.recipients_for

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(str(kwargs["category"]))
        return rules(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(policy, "recipients_for", counting)
    return calls


def _report(**handling: object) -> Report:
    """The narcotics example at Karachi, naming no one unless ``handling`` says so."""
    report = example_report("narcotics", "PKKHI", now=NOW)
    changes = {"named_recipients": ()} | handling
    return report.model_copy(update={"handling": report.handling.model_copy(update=changes)})


def _kids(federation: Federation, *agencies: str) -> list[str]:
    """The current encryption kids of ``agencies``, in the policy's order (by agency id)."""
    return [federation.snapshot.agency(a).encryption_kid for a in sorted(agencies)]


def test_the_same_question_is_answered_from_the_cache(
    federation: Federation, asked: list[str]
) -> None:
    rules = DisseminationPolicy(federation)
    report = _report()
    first = rules.recipients(report, NOW)
    assert first == _kids(federation, "anf", "customs")
    assert rules.recipients(report, NOW + timedelta(minutes=5)) == first
    assert asked == ["narcotics"]
    first.append("tampered")  # the caller's list is its own
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs")


def test_a_grant_taken_back_applies_to_the_next_report(
    federation: Federation, asked: list[str]
) -> None:
    rules = DisseminationPolicy(federation)
    report = _report()
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs")
    federation.ungrant("anf", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    assert rules.recipients(report, NOW) == _kids(federation, "customs")
    federation.grant("anf", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs")
    assert len(asked) == 3


def test_a_grant_given_applies_to_the_next_report(federation: Federation) -> None:
    rules = DisseminationPolicy(federation)
    report = _report()
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs")
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PK-SD"], now=NOW)
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs", "fia")


def test_a_revoked_key_applies_to_the_next_report(federation: Federation) -> None:
    rules = DisseminationPolicy(federation)
    report = _report()
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs")
    federation.revoke("anf", reason="laptop stolen", now=NOW)
    assert rules.recipients(report, NOW) == _kids(federation, "customs")


def test_a_revocation_dated_later_in_the_same_snapshot_applies_from_its_instant(
    federation: Federation,
) -> None:
    anf = federation.snapshot.agency("anf")
    later = NOW + timedelta(hours=1)
    keys = tuple(k.model_copy(update={"revoked_at": later}) for k in anf.encryption_keys)
    others = [r for r in federation.snapshot.agencies() if r.id != "anf"]
    snapshot = DirectorySnapshot.of([*others, anf.model_copy(update={"encryption_keys": keys})])
    rules = DisseminationPolicy(snapshot)
    report = _report()
    assert anf.encryption_kid in rules.recipients(report, NOW)
    assert anf.encryption_kid not in rules.recipients(report, later)
    assert anf.encryption_kid not in rules.recipients(report, later + timedelta(days=1))
    assert anf.encryption_kid in rules.recipients(report, later - timedelta(microseconds=1))


def test_a_key_that_expires_stops_receiving_at_its_end(federation: Federation) -> None:
    anf = federation.snapshot.agency("anf")
    end = NOW + timedelta(minutes=30)
    keys = tuple(k.model_copy(update={"valid_until": end}) for k in anf.encryption_keys)
    others = [r for r in federation.snapshot.agencies() if r.id != "anf"]
    rules = DisseminationPolicy(
        DirectorySnapshot.of([*others, anf.model_copy(update={"encryption_keys": keys})])
    )
    report = _report()
    assert anf.encryption_kid in rules.recipients(report, NOW)
    assert anf.encryption_kid not in rules.recipients(report, end)
    assert anf.encryption_kid in rules.recipients(report, NOW)


def test_a_refusal_is_never_remembered(federation: Federation, asked: list[str]) -> None:
    rules = DisseminationPolicy(federation)
    report = _report(named_recipients=("fia",))
    for _ in range(2):
        with pytest.raises(DisseminationError, match="'fia' is not entitled"):
            rules.recipients(report, NOW)
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    assert rules.recipients(report, NOW) == _kids(federation, "anf", "customs", "fia")
    assert len(asked) == 3


def test_every_field_of_the_question_is_part_of_the_key(federation: Federation) -> None:
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    rules = DisseminationPolicy(federation)
    amber, red = _report(), _report(tlp="TLP:RED", named_recipients=("fia",))
    assert rules.recipients(amber, NOW) == _kids(federation, "anf", "customs", "fia")
    assert rules.recipients(red, NOW) == _kids(federation, "customs", "fia")
    trafficking = amber.model_copy(update={"category": "human_trafficking"})
    assert rules.recipients(trafficking, NOW) == _kids(federation, "customs", "fia")
    from_anf = amber.model_copy(update={"sender": "anf"})
    assert rules.recipients(from_anf, NOW) == _kids(federation, "anf", "fia")


def test_the_cache_is_bounded(federation: Federation) -> None:
    cache = policy._RecipientCache(size=3)
    snapshot = federation.snapshot
    for named in ((), ("anf",), ("customs",), ("anf", "customs"), ("customs", "anf")):
        kids = cache.kids(snapshot, _report(named_recipients=named), NOW)
        assert kids == tuple(_kids(federation, "anf", "customs"))
        assert len(cache._answers) <= 3
    assert len(cache._answers) == 3
