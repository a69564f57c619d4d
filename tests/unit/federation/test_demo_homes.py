"""``fusionbus up``'s federation without Kafka: one home per agency beside the admin's.

The demo enrols customs, anf and fia through the functions ``agency init``, ``agency add
--request`` and ``agency import`` run. Afterwards no agency private key is anywhere in the
admin's home (``sites/`` stands for the agencies' machines and is no part of it), and each
agency's home holds its own keys and no other — checked by file and by key material.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path

from broker.federation import DisseminationPolicy, Federation
from broker.home import HomeLayout
from fusionbus.cli.demo import DEMO_AGENCIES, enrol_site, refresh_sites, sample_reports
from tests.unit.federation.homes import agency_keys_of, private_keys

ADMINS_OWN = (
    "federation/root.key.pem",
    "tls/ca.key.pem",
    "tls/node-ca.key.pem",
    "tls/agency-cas/*/ca.key.pem",  # the CA that signs an agency's certificate, not its key
    "tls/admin/key.pem",
    "tls/nodes/node-*/key.pem",
    "kafka/node-*/server.properties",  # the node's key, inline
)
"""Where the admin's home may hold private keys: the root's, the CAs' (root, node, each
agency's issuing CA), its own client key, and the Kafka nodes' (the admin runs the embedded
cluster)."""


def demo(where: Path) -> None:
    """What ``up`` does to a fresh home, minus Kafka (a plaintext config: no ACLs)."""
    now = datetime.now(UTC).replace(microsecond=0)
    Federation.init(where, now=now)
    for agency, (name, _) in DEMO_AGENCIES.items():
        enrol_site(where, agency, name)
    federation = Federation.load(where)
    for agency, (_, categories) in DEMO_AGENCIES.items():
        federation.grant(agency, categories=categories, jurisdictions=["PK"], now=now)
    refresh_sites(where, Federation.load(where), "127.0.0.1:9092", secure=False)


def sites_of(where: Path) -> dict[str, Path]:
    return {agency: HomeLayout(where).site(agency) for agency in DEMO_AGENCIES}


def assert_homes_separate(where: Path) -> None:
    """No agency key in the admin's home; each site holds exactly its own agency's keys."""
    sites = sites_of(where)
    keys = agency_keys_of(where, sites)
    admin = private_keys(where, skip=["sites"])
    assert not [k for k in admin if "agencies" in k.path.parts], admin
    for agency, public in keys.items():
        assert not [k for k in admin if k.public in public], f"{agency}'s key in the admin home"
    for agency, site in sites.items():
        held = private_keys(site)
        assert {k.public for k in held} == keys[agency], (agency, held)
        assert all(k.path.is_relative_to(site / "agencies" / agency) for k in held)
        assert not (site / "federation" / "root.key.pem").exists()
        assert not (site / "tls").exists()  # no CA key, no node or admin certificate
    own = [str(k.path.relative_to(where)) for k in admin]
    assert all(any(fnmatch(path, mine) for mine in ADMINS_OWN) for path in own), own


def fingerprint(where: Path) -> dict[str, str]:
    return {
        str(p.relative_to(where)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(where.rglob("*"))
        if p.is_file() and p.name != "config.toml"
    }


def test_up_makes_one_home_per_agency_and_the_admin_holds_no_agency_key(tmp_path: Path) -> None:
    where = tmp_path / "home"
    demo(where)
    assert_homes_separate(where)
    assert (where / "sites").stat().st_mode & 0o777 == 0o700
    for agency, site in sites_of(where).items():
        federation = Federation.load(site)
        assert [r.id for r in federation.snapshot.agencies()] == sorted(DEMO_AGENCIES)
        assert (
            federation.snapshot.agencies() == Federation.load(where).snapshot.agencies()
        )  # grants included
        assert federation.identity(agency).agency == agency
        assert 'bootstrap = "127.0.0.1:9092"' in (site / "config.toml").read_text()


def test_a_second_run_reuses_everything(tmp_path: Path) -> None:
    where = tmp_path / "home"
    demo(where)
    before = fingerprint(where)
    for agency, (name, _) in DEMO_AGENCIES.items():
        enrol_site(where, agency, name)
    refresh_sites(where, Federation.load(where), "127.0.0.1:9092", secure=False)
    assert fingerprint(where) == before


def test_an_interrupted_first_run_is_finished(tmp_path: Path) -> None:
    where = tmp_path / "home"
    demo(where)
    site = HomeLayout(where).site("fia")
    record = HomeLayout(site).record("fia")
    record.unlink()  # as if the import had not happened
    enrol_site(where, "fia", DEMO_AGENCIES["fia"][0])
    assert record.is_file()
    refresh_sites(where, Federation.load(where), "127.0.0.1:9092", secure=False)
    assert_homes_separate(where)


def test_each_sample_reaches_the_agency_it_asks_to_act(tmp_path: Path) -> None:
    where = tmp_path / "home"
    demo(where)
    customs = Federation.load(HomeLayout(where).site("customs"))
    policy = DisseminationPolicy(customs)
    now = datetime.now(UTC)
    for report in sample_reports():
        (named,) = report.handling.named_recipients
        assert (report.requested_action or "").startswith(f"{named.upper()} to ")
        kids = policy.recipients(report, now)
        assert customs.snapshot.agency(named).encryption_kid in kids, report.category
