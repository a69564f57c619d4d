"""ACLs computed from the directory (``broker.acls.desired_acls``): pure, no Kafka."""

from __future__ import annotations

from datetime import timedelta

from broker.acls import Acl, desired_acls, platform_topics
from broker.federation import Federation

from .conftest import NOW


def of(acls: frozenset[Acl], who: str) -> set[tuple[str, str, str, str]]:
    return {(a.resource, a.pattern, a.name, a.operation) for a in acls if a.principal == who}


def test_each_agency_reads_exactly_its_granted_topics(federation: Federation) -> None:
    acls = desired_acls(federation.agencies(), now=NOW)
    fia = of(acls, "User:fia")  # human_trafficking in PK-SD only
    reads = {name for kind, _, name, op in fia if kind == "topic" and op == "READ"}
    assert reads == {
        "fusionbus.reports.pk-sd.human_trafficking",
        "fusionbus.quarantine.fia",
        "fusionbus.directory",
    }
    anf = of(acls, "User:anf")  # narcotics + precursors in PK: national -> pk and 7 provinces
    anf_reports = {n for k, _, n, op in anf if op == "READ" and n.startswith("fusionbus.reports.")}
    assert len(anf_reports) == 2 * 8
    assert "fusionbus.reports.pk.narcotics" in anf_reports
    assert "fusionbus.reports.pk-sd.precursor_chemicals" in anf_reports
    assert not any("human_trafficking" in n for n in anf_reports)


def test_every_agency_writes_reports_but_creates_and_alters_nothing(
    federation: Federation,
) -> None:
    acls = desired_acls(federation.agencies(), now=NOW)
    for who in ("User:customs", "User:anf", "User:fia"):
        mine = of(acls, who)
        assert ("topic", "prefixed", "fusionbus.reports.", "WRITE") in mine
        assert ("group", "prefixed", f"fusionbus.{who[5:]}.", "READ") in mine
        assert ("topic", "literal", f"fusionbus.quarantine.{who[5:]}", "WRITE") in mine
        assert ("topic", "literal", "fusionbus.directory", "WRITE") not in mine
        assert {op for *_, op in mine} <= {"READ", "WRITE", "DESCRIBE"}
    # Nobody reads another agency's quarantine or groups.
    assert not any(
        a.name in ("fusionbus.quarantine.anf", "fusionbus.anf.") and a.principal != "User:anf"
        for a in acls
    )


def test_a_revoked_agency_gets_no_acl_at_all(federation: Federation) -> None:
    federation.revoke("fia", reason="compromised", now=NOW)
    acls = desired_acls(federation.agencies(), now=NOW + timedelta(seconds=1))
    assert of(acls, "User:fia") == set()
    assert of(acls, "User:anf")


def test_a_grant_adds_read_acls_and_topics_and_is_idempotent(federation: Federation) -> None:
    before = desired_acls(federation.agencies(), now=NOW)
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PKKHI"], now=NOW)
    after = desired_acls(federation.agencies(), now=NOW)
    added = {str(a) for a in after - before}
    assert added == {
        "User:fia READ topic:literal:fusionbus.reports.pk-sd.narcotics",
        "User:fia DESCRIBE topic:literal:fusionbus.reports.pk-sd.narcotics",
    }
    federation.grant("fia", categories=["narcotics"], jurisdictions=["PKKHI"], now=NOW)
    assert desired_acls(federation.agencies(), now=NOW) == after
    reports, quarantines = platform_topics(federation.agencies())
    assert "fusionbus.reports.pk-sd.narcotics" in reports
    assert quarantines == [f"fusionbus.quarantine.{a}" for a in ("anf", "customs", "fia")]
