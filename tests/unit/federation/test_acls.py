"""ACLs computed from the directory (``broker.provisioning.acls.desired_acls``): pure, no Kafka."""

from __future__ import annotations

from datetime import timedelta

from broker.federation import Federation
from broker.provisioning.acls import Acl, desired_acls, platform_topics
from broker.topics import report_topic

from .conftest import NOW

AGENCIES = ("anf", "customs", "fia")


def of(acls: frozenset[Acl], who: str) -> set[tuple[str, str, str, str]]:
    return {(a.resource, a.pattern, a.name, a.operation) for a in acls if a.principal == who}


def test_each_agency_reads_exactly_its_granted_topics_of_every_sender(
    federation: Federation,
) -> None:
    acls = desired_acls(federation.snapshot.agencies(), now=NOW)
    fia = of(acls, "User:fia")  # human_trafficking in PK-SD only
    reads = {name for kind, _, name, op in fia if kind == "topic" and op == "READ"}
    assert reads == {
        *(report_topic(sender, "PK-SD", "human_trafficking") for sender in AGENCIES),
        "fusionbus.quarantine.fia",
        "fusionbus.directory",
        "fusionbus.inbox.fia.",  # prefixed: every inbox topic of fia
        "fusionbus.audit.",  # prefixed: every agency's audit chain (no content)
        "fusionbus.audit-anchors",
        "fusionbus.audit-root",  # the admin's acts on the directory
    }
    anf = of(acls, "User:anf")  # narcotics + precursors in PK: national -> pk and 7 provinces
    anf_reports = {n for k, _, n, op in anf if op == "READ" and n.startswith("fusionbus.reports.")}
    assert len(anf_reports) == 3 * 2 * 8  # senders x categories x areas
    assert "fusionbus.reports.customs.pk.narcotics" in anf_reports
    assert "fusionbus.reports.fia.pk-sd.precursor_chemicals" in anf_reports
    assert "fusionbus.reports.anf.pk-sd.narcotics" in anf_reports
    assert not any("human_trafficking" in n for n in anf_reports)


def test_every_agency_writes_only_its_own_reports_and_creates_and_alters_nothing(
    federation: Federation,
) -> None:
    acls = desired_acls(federation.snapshot.agencies(), now=NOW)
    for agency in AGENCIES:
        mine = of(acls, f"User:{agency}")
        writes = {(kind, pattern, name) for kind, pattern, name, op in mine if op == "WRITE"}
        assert writes == {
            ("topic", "prefixed", f"fusionbus.reports.{agency}."),
            ("topic", "literal", f"fusionbus.quarantine.{agency}"),
            *(("topic", "literal", f"fusionbus.inbox.{to}.{agency}") for to in AGENCIES
              if to != agency),
            ("topic", "literal", f"fusionbus.audit.{agency}"),
        }  # fmt: skip
        assert ("group", "prefixed", f"fusionbus.{agency}.", "READ") in mine
        assert {op for *_, op in mine} <= {"READ", "WRITE"}
    # Nobody reads another agency's quarantine or groups.
    assert not any(
        a.name in ("fusionbus.quarantine.anf", "fusionbus.anf.") and a.principal != "User:anf"
        for a in acls
    )


def test_no_acl_lets_an_agency_describe_a_report_topic_it_may_not_read(
    federation: Federation,
) -> None:
    # Kafka implies DESCRIBE (ListOffsets, OffsetsForTimes) from READ and WRITE only; no
    # explicit DESCRIBE and no WRITE wider than the agency's own prefix may exist.
    acls = desired_acls(federation.snapshot.agencies(), now=NOW)
    assert not any(a.operation == "DESCRIBE" for a in acls)
    narcotics = report_topic("customs", "PK-BA", "narcotics")

    def covers(acl: Acl) -> bool:
        if acl.resource != "topic":
            return False
        return (
            narcotics.startswith(acl.name) if acl.pattern == "prefixed" else acl.name == narcotics
        )

    assert {a.principal for a in acls if covers(a)} == {"User:customs", "User:anf"}
    assert {a.operation for a in acls if covers(a) and a.principal == "User:anf"} == {"READ"}


def test_an_inbox_is_read_by_its_agency_alone_and_written_by_its_one_sender(
    federation: Federation,
) -> None:
    acls = desired_acls(federation.snapshot.agencies(), now=NOW)
    topic = "fusionbus.inbox.customs.anf"  # anf's notices to customs

    def covers(acl: Acl) -> bool:
        return acl.resource == "topic" and (
            topic.startswith(acl.name) if acl.pattern == "prefixed" else acl.name == topic
        )

    assert {(a.principal, a.operation) for a in acls if covers(a)} == {
        ("User:customs", "READ"),
        ("User:anf", "WRITE"),
    }
    _, _, inboxes = platform_topics(federation.snapshot.agencies(), now=NOW)
    assert len(inboxes) == 3 * 2
    assert topic in inboxes
    # A grant changes no inbox: notices reach an agency whatever it is granted.
    federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)
    after = desired_acls(federation.snapshot.agencies(), now=NOW)
    assert {a for a in after if "inbox" in a.name} == {a for a in acls if "inbox" in a.name}


def test_a_revoked_agency_gets_no_acl_and_its_topics_are_no_longer_read(
    federation: Federation,
) -> None:
    federation.revoke("fia", reason="compromised", now=NOW)
    later = NOW + timedelta(seconds=1)
    acls = desired_acls(federation.snapshot.agencies(), now=later)
    assert of(acls, "User:fia") == set()
    assert of(acls, "User:anf")
    assert not any(a.name.startswith("fusionbus.reports.fia.") for a in acls)
    reports, quarantines, inboxes = platform_topics(federation.snapshot.agencies(), now=later)
    assert not any(t.startswith("fusionbus.reports.fia.") for t in reports)
    assert "fusionbus.quarantine.fia" in quarantines
    assert inboxes == ["fusionbus.inbox.anf.customs", "fusionbus.inbox.customs.anf"]


def test_a_grant_adds_read_acls_and_topics_and_is_idempotent(federation: Federation) -> None:
    before = desired_acls(federation.snapshot.agencies(), now=NOW)
    federation.grant("fia", categories=["arms"], jurisdictions=["PKKHI"], now=NOW)
    after = desired_acls(federation.snapshot.agencies(), now=NOW)
    added = {str(a) for a in after - before}
    assert added == {
        f"User:fia READ topic:literal:fusionbus.reports.{sender}.pk-sd.arms" for sender in AGENCIES
    }
    federation.grant("fia", categories=["arms"], jurisdictions=["PKKHI"], now=NOW)
    assert desired_acls(federation.snapshot.agencies(), now=NOW) == after
    reports, quarantines, _ = platform_topics(federation.snapshot.agencies(), now=NOW)
    assert {f"fusionbus.reports.{s}.pk-sd.arms" for s in AGENCIES} <= set(reports)
    assert quarantines == [f"fusionbus.quarantine.{a}" for a in AGENCIES]


def test_the_admin_creates_every_topic_the_acls_name(federation: Federation) -> None:
    acls = desired_acls(federation.snapshot.agencies(), now=NOW)
    reports, _, _ = platform_topics(federation.snapshot.agencies(), now=NOW)
    read = {a.name for a in acls if a.operation == "READ" and a.name.startswith("fusionbus.rep")}
    assert set(reports) == read
    assert len(reports) == 3 * (8 + 8 + 8 + 1)  # senders x (contraband, narcotics, precursors
    # in PK; human_trafficking in PK-SD)


def test_a_new_agency_can_be_read_by_everyone_granted_at_once(federation: Federation) -> None:
    before = desired_acls(federation.snapshot.agencies(), now=NOW)
    federation.add_agency("pcg", "Pakistan Coast Guards", now=NOW)
    added = desired_acls(federation.snapshot.agencies(), now=NOW) - before
    assert Acl("User:anf", "topic", "literal", report_topic("pcg", "PK", "narcotics"), "READ") in (
        added
    )
    assert Acl("User:pcg", "topic", "prefixed", "fusionbus.reports.pcg.", "WRITE") in added


def test_an_audit_chain_is_written_by_its_writer_alone_and_read_by_every_agency(
    federation: Federation,
) -> None:
    acls = desired_acls(federation.snapshot.agencies(), now=NOW)
    topic = "fusionbus.audit.anf"

    def covers(acl: Acl, name: str) -> bool:
        return acl.resource == "topic" and (
            name.startswith(acl.name) if acl.pattern == "prefixed" else acl.name == name
        )

    assert {(a.principal, a.operation) for a in acls if covers(a, topic)} == {
        ("User:anf", "WRITE"),
        *((f"User:{agency}", "READ") for agency in AGENCIES),
    }
    anchors = {(a.principal, a.operation) for a in acls if covers(a, "fusionbus.audit-anchors")}
    assert anchors == {(f"User:{agency}", "READ") for agency in AGENCIES}  # the admin writes it
