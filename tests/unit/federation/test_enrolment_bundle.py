"""Response bundles: made by the admin, imported by the agency into its own home.

An agency imports only a bundle for the keys its home made, signed by the root it trusts;
a tampered, foreign, stale, oversized or malformed bundle is refused and nothing is written.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from broker._crypto import TlsKey, certificate_pem
from broker.errors import ConfigError
from broker.federation import Federation
from broker.federation.enrolment import (
    BUNDLE_TYP,
    MAX_BUNDLE_BYTES,
    AgencySite,
    BundleClaims,
    read_bundle,
    sign_bundle,
)
from broker.federation.records import PublicJwk, canonical_json, sign_record
from broker.home import HomeLayout
from broker.keys import SigningKey, kid_of
from broker.provisioning.pki import ClusterPki
from tests.unit.federation.conftest import NOW, forge, root_key
from tests.unit.federation.enrol import admitted, enrolled, imported, request
from tests.unit.federation.homes import private_keys


@pytest.fixture
def admin(tmp_path: Path) -> Path:
    home = tmp_path / "admin"
    Federation.init(home, now=NOW)
    return home


def bundle_claims(path: Path) -> BundleClaims:
    return read_bundle(path.read_bytes(), source="b", now=NOW).claims


def files_under(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*") if p.is_file()) if home.exists() else []


def refused_import(site: Path, data: bytes, *fragments: str) -> None:
    before = files_under(site)
    with pytest.raises(ConfigError) as info:
        AgencySite(site).import_bundle(data, source="BUNDLE", now=NOW)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert files_under(site) == before, "a refused bundle changed the home"


def test_an_imported_enrolment_is_usable_and_only_this_home_holds_its_keys(
    admin: Path, tmp_path: Path
) -> None:
    customs_site, anf_site = tmp_path / "customs", tmp_path / "anf"
    enrolled(admin, customs_site, "customs")
    done = enrolled(admin, anf_site, "anf")
    assert not done.rotated
    assert done.directory == 1  # customs' record came with anf's bundle
    site = Federation.load(anf_site)
    assert [r.id for r in site.snapshot.agencies()] == ["anf", "customs"]
    identity = site.identity("anf")
    record = Federation.load(admin).snapshot.agency("anf")
    assert (identity.signing_kid, identity.encryption_kid) == (
        record.signing_kid,
        record.encryption_kid,
    )
    files = ClusterPki(anf_site).agency_files("anf")
    assert files.exist()
    assert files.ca.read_bytes() == (admin / "tls" / "ca.pem").read_bytes()
    assert (anf_site / "federation" / "root.pub.jwk").read_bytes() == (
        admin / "federation" / "root.pub.jwk"
    ).read_bytes()
    assert not HomeLayout(anf_site).request("anf").exists()  # answered
    assert done.fingerprints.root_kid == Federation.load(admin).root_kid
    assert done.fingerprints.tls_key == TlsKey.from_pem(files.key.read_bytes()).fingerprint()
    admin_keys = {k.public for k in private_keys(admin)}
    anf_keys = {k.public for k in private_keys(anf_site)}
    assert len(anf_keys) == 3
    assert not admin_keys & anf_keys
    assert not {k.public for k in private_keys(customs_site)} & anf_keys


def test_importing_the_same_bundle_again_changes_nothing(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    admission = admitted(admin, request(site, "anf"))
    imported(site, admission)
    record = (site / "directory" / "anf.jws").read_bytes()
    again = imported(site, admission)
    assert again.record.revision == 1
    assert (site / "directory" / "anf.jws").read_bytes() == record


def test_a_bundle_for_another_homes_keys_is_refused(admin: Path, tmp_path: Path) -> None:
    real, impostor = tmp_path / "anf", tmp_path / "impostor"
    admission = admitted(admin, request(real, "anf"))
    request(impostor, "anf")  # its own keys, for the same id
    refused_import(impostor, admission.bundle.read_bytes(), "holds no such private key")
    refused_import(tmp_path / "empty", admission.bundle.read_bytes(), "holds no such private key")


def test_a_bundle_whose_certificate_is_for_another_tls_key_is_refused(
    admin: Path, tmp_path: Path
) -> None:
    site, other = tmp_path / "anf", tmp_path / "other"
    admission = admitted(admin, request(site, "anf"))
    claims = bundle_claims(admission.bundle)
    foreign = ClusterPki(admin).issue_from_request(
        "anf", ClusterPki(other).agency_request("anf"), now=NOW
    )
    forged = claims.model_copy(update={"certificate": certificate_pem(foreign).decode()})
    refused_import(site, sign_bundle(forged, root_key(admin)), "certifies a TLS key this home")


def test_every_flipped_byte_of_a_bundle_is_refused(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    data = admitted(admin, request(site, "anf")).bundle.read_bytes().strip()
    for at in range(0, len(data), 97):
        flipped = bytearray(data)
        flipped[at] ^= 0x01
        refused_import(site, bytes(flipped))


def test_a_bundle_from_another_root_is_refused_where_a_root_is_trusted(
    admin: Path, tmp_path: Path
) -> None:
    site = tmp_path / "anf"
    first = admitted(admin, request(site, "anf"))
    imported(site, first)
    rotation = request(site, "anf", rotate=True)
    rogue = tmp_path / "rogue"
    rogue_root = Federation.init(rogue, now=NOW).root_kid
    claims = bundle_claims(admitted(admin, rotation).bundle)
    mallory = root_key(rogue)
    record = read_bundle(sign_bundle(claims, root_key(admin)), source="b", now=NOW).record
    forged = claims.model_copy(
        update={
            "root_key": PublicJwk.of(mallory.public),
            "record": sign_record(record, mallory).decode(),
            "directory": (),
        }
    )
    refused_import(site, sign_bundle(forged, mallory), "this home trusts the federation root")
    assert kid_of(mallory) == rogue_root


def test_a_fresh_home_shows_which_root_signed_so_it_can_be_compared(
    admin: Path, tmp_path: Path
) -> None:
    """With no root.pub.jwk yet, the home trusts the root the bundle carries; the root kid
    it prints is what the agency compares with the admin's, out of band."""
    site = tmp_path / "anf"
    claims = bundle_claims(admitted(admin, request(site, "anf")).bundle)
    mallory = SigningKey.generate()
    record = read_bundle(sign_bundle(claims, root_key(admin)), source="b", now=NOW).record
    forged = claims.model_copy(
        update={
            "root_key": PublicJwk.of(mallory.public),
            "record": sign_record(record, mallory).decode(),
            "directory": (),
        }
    )
    done = AgencySite(site).import_bundle(sign_bundle(forged, mallory), source="b", now=NOW)
    assert done.fingerprints.root_kid == kid_of(mallory) != Federation.load(admin).root_kid


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"id": "fia"}, "holds the record of 'anf', not of 'fia'"),
        ({"ca_certificate": "junk"}, "ca_certificate is not a PEM certificate"),
        ({"issuer_certificate": "junk"}, "issuer_certificate is not a PEM certificate"),
        ({"certificate": "-----BEGIN CERTIFICATE-----\n"}, "certificate is not a PEM"),
        ({"record": "a.b.c"}, "(record)"),
        ({"kafka": {"bootstrap": "no port", "security": "mtls"}}, "kafka.bootstrap"),
        ({"admin": True}, "not a valid response bundle"),
        ({"v": 1}, "not a valid response bundle"),  # single-CA bundles are of the past
        ({"v": 3}, "not a valid response bundle"),
    ],
)
def test_a_root_signed_but_invalid_bundle_is_refused(
    admin: Path, tmp_path: Path, change: dict[str, object], fragment: str
) -> None:
    site = tmp_path / "anf"
    claims = bundle_claims(admitted(admin, request(site, "anf")).bundle)
    payload = orjson.dumps(claims.model_dump(mode="json") | change, option=orjson.OPT_SORT_KEYS)
    root = root_key(admin)
    header = {"alg": "Ed25519", "kid": kid_of(root), "typ": BUNDLE_TYP}
    refused_import(site, forge(payload, root, header), fragment)


def test_a_certificate_not_issued_by_the_bundled_ca_is_refused(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    claims = bundle_claims(admitted(admin, request(site, "anf")).bundle)
    other_ca = ClusterPki(tmp_path / "other-admin").ensure_ca(now=NOW)
    forged = claims.model_copy(update={"ca_certificate": certificate_pem(other_ca).decode()})
    refused_import(site, sign_bundle(forged, root_key(admin)), "under the self-signed")


def test_a_certificate_not_issued_by_the_bundled_agency_ca_is_refused(
    admin: Path, tmp_path: Path
) -> None:
    """The issuing CA must be the one that signed the certificate, and a CA the root signed
    for issuing leaves only (path length 0): the node CA, say, is refused."""
    site = tmp_path / "anf"
    claims = bundle_claims(admitted(admin, request(site, "anf")).bundle)
    ClusterPki(admin).issue_agency("fia")
    fia_ca = ClusterPki(admin).agency_ca_cert_path("fia").read_text()
    forged = claims.model_copy(update={"issuer_certificate": fia_ca})
    refused_import(site, sign_bundle(forged, root_key(admin)), "issued by the agency CA")
    root = ClusterPki(admin).ca_cert_path.read_text()
    forged = claims.model_copy(update={"issuer_certificate": root})
    refused_import(site, sign_bundle(forged, root_key(admin)), "issued by the agency CA")


def test_a_directory_record_signed_by_another_key_is_refused(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    claims = bundle_claims(admitted(admin, request(site, "anf")).bundle)
    record = read_bundle(sign_bundle(claims, root_key(admin)), source="b", now=NOW).record
    stranger = sign_record(record.model_copy(update={"id": "fia"}), SigningKey.generate())
    forged = claims.model_copy(update={"directory": (stranger.decode(),)})
    refused_import(site, sign_bundle(forged, root_key(admin)), "not by the federation root")


def test_an_expired_certificate_and_other_headers_are_refused(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    data = admitted(admin, request(site, "anf")).bundle.read_bytes()
    with pytest.raises(ConfigError, match="the certificate is valid from"):
        AgencySite(site).import_bundle(data, source="b", now=NOW + timedelta(days=400))
    claims = bundle_claims(admitted(admin, request(tmp_path / "fia", "fia", "FIA")).bundle)
    root = root_key(admin)
    for header in ({"alg": "none"}, {"alg": "Ed25519", "typ": "fusionbus-directory+jws"}):
        forged = forge(canonical_json(claims), root, header | {"kid": kid_of(root)})
        refused_import(site, forged, "unexpected JWS header")


def test_oversized_and_malformed_bundles_are_refused(tmp_path: Path) -> None:
    site = tmp_path / "anf"
    refused_import(site, b"x" * (MAX_BUNDLE_BYTES + 1), f"over {MAX_BUNDLE_BYTES} bytes")
    refused_import(site, b"", "not a signed response bundle")
    refused_import(site, b"{}", "not a signed response bundle")
    key = SigningKey.generate()
    header = {"alg": "Ed25519", "kid": kid_of(key), "typ": BUNDLE_TYP}
    refused_import(site, forge(b"{}", key, header), "carries no root_key")
    refused_import(site, forge(b"[1]", key, header), "payload is not a JSON object")


def test_a_rotation_bundle_installs_the_new_keys_and_keeps_the_old_decryption_key(
    admin: Path, tmp_path: Path
) -> None:
    site = tmp_path / "anf"
    enrolled(admin, site, "anf")
    old = Federation.load(site).snapshot.agency("anf")
    old_tls = ClusterPki(site).agency_files("anf").key.read_bytes()
    done = imported(site, admitted(admin, request(site, "anf", rotate=True)))
    assert done.rotated
    record = Federation.load(site).snapshot.agency("anf")
    assert record == Federation.load(admin).snapshot.agency("anf")
    assert record.revision == old.revision + 1
    assert record.signing_kid != old.signing_kid
    identity = Federation.load(site).identity("anf")
    assert set(identity.decryption_keys) == {old.encryption_kid, record.encryption_kid}
    assert identity.signing_kid == record.signing_kid
    folder = site / "agencies" / "anf"
    assert sorted(p.name for p in folder.glob("signing*")) == ["signing.key.pem"]
    assert (folder / f"encryption.{old.encryption_kid}.key.pem").stat().st_mode & 0o777 == 0o600
    files = ClusterPki(site).agency_files("anf")
    assert files.key.read_bytes() != old_tls
    assert not (files.key.parent / "next.key.pem").exists()
    assert TlsKey.from_pem(files.key.read_bytes()).fingerprint() == done.fingerprints.tls_key
    assert old.signing_kid not in {k.public for k in private_keys(site)}  # destroyed


def test_an_older_bundle_is_refused_as_a_rollback(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    first = admitted(admin, request(site, "anf"))
    imported(site, first)
    federation = Federation.load(admin)
    federation.grant("anf", categories=["narcotics"], jurisdictions=["PK"], now=NOW)
    AgencySite(site).install_directory(federation.snapshot.signed_records().values())
    assert Federation.load(site).snapshot.agency("anf").revision == 2
    refused_import(site, first.bundle.read_bytes(), "older than the revision 2", "rollback")


def test_install_directory_never_rolls_a_record_back(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    enrolled(admin, site, "anf")
    enrolled(admin, tmp_path / "fia", "fia")
    federation = Federation.load(admin)
    old = federation.snapshot.signed_records()["fia"]
    federation.grant("fia", categories=["human_trafficking"], jurisdictions=["PK"], now=NOW)
    new = Federation.load(admin).snapshot.signed_records()["fia"]
    assert AgencySite(site).install_directory([new]) == 1
    AgencySite(site).install_directory([old])
    assert Federation.load(site).snapshot.agency("fia").revision == 2


def test_the_admins_home_refuses_to_make_or_import_agency_keys(admin: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="it is the admin's home"):
        AgencySite(admin).request("anf", name="ANF", now=NOW)
    data = admitted(admin, request(tmp_path / "anf", "anf")).bundle.read_bytes()
    with pytest.raises(ConfigError, match="it is the admin's home"):
        AgencySite(admin).import_bundle(data, source="b", now=NOW)
    assert not (admin / "agencies").exists()


def test_an_enrolled_agency_rotates_instead_of_enrolling_again(admin: Path, tmp_path: Path) -> None:
    site = tmp_path / "anf"
    enrolled(admin, site, "anf")
    with pytest.raises(ConfigError, match=r"already enrolled.*--rotate"):
        request(site, "anf")
    with pytest.raises(ConfigError, match="is not enrolled"):
        request(tmp_path / "new", "anf", rotate=True)
