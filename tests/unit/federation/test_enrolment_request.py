"""Enrolment requests: made in the agency's home, verified and admitted in the admin's.

Every defect of a request is refused with one ConfigError naming what is wrong: a forged
JWS, a CSR for another CN or with a broken signature, a request replayed for an enrolled
id, a reserved id, a stale request, someone else's key, an oversized or malformed file.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from cryptography import x509

from broker._crypto import TlsKey, certificate_pem
from broker.errors import ConfigError
from broker.federation import Federation
from broker.federation.enrolment import (
    MAX_REQUEST_BYTES,
    REQUEST_TYP,
    RequestClaims,
    make_request,
    read_request,
)
from broker.federation.records import JWS_TYP, PublicJwk, canonical_json
from broker.keys import DecryptionKey, SigningKey, kid_of, load_private_pem
from broker.provisioning.pki import ClusterPki
from tests.unit.federation.conftest import NOW, forge
from tests.unit.federation.enrol import admitted, claims_of, enrolled, request, signed


@pytest.fixture
def admin(tmp_path: Path) -> Path:
    home = tmp_path / "admin"
    Federation.init(home, now=NOW)
    return home


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return tmp_path / "anf-site"


def signing_key_of(site: Path, agency: str = "anf") -> SigningKey:
    key = load_private_pem((site / "agencies" / agency / "signing.key.pem").read_bytes())
    assert isinstance(key, SigningKey)
    return key


def refused(token: bytes, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        read_request(token, source="REQ", now=NOW)
    message = str(info.value)
    assert message.startswith("REQ"), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_request_carries_public_keys_and_a_csr_and_verifies(site: Path) -> None:
    token = request(site, "anf")
    parsed = read_request(token, source="REQ", now=NOW)
    assert parsed.id == "anf"
    assert parsed.claims.name == "Anti Narcotics Force"
    assert not parsed.endorsed
    assert "PRIVATE" not in claims_of(token).model_dump_json()  # public keys and a CSR only
    assert parsed.claims.signing_key.kid == kid_of(signing_key_of(site))
    fingerprints = parsed.fingerprints()
    tls = ClusterPki(site).agency_files("anf").key.read_bytes()
    assert fingerprints.tls_key == TlsKey.from_pem(tls).fingerprint()
    assert (site / "agencies" / "anf" / "signing.key.pem").stat().st_mode & 0o777 == 0o600
    assert (site / "agencies" / "anf").stat().st_mode & 0o777 == 0o700
    assert (site / "agencies" / "anf" / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600


def test_making_the_request_again_reuses_the_keys(site: Path) -> None:
    first = read_request(request(site, "anf"), source="1", now=NOW)
    later = NOW + timedelta(hours=1)
    again = read_request(request(site, "anf", None, now=later), source="2", now=later)
    assert again.claims.signing_key == first.claims.signing_key
    assert again.claims.encryption_key == first.claims.encryption_key
    assert again.fingerprints().tls_key == first.fingerprints().tls_key
    assert again.claims.created_at == later
    assert again.claims.name == first.claims.name  # remembered from the pending request


def test_the_first_request_needs_a_name(site: Path) -> None:
    with pytest.raises(ConfigError, match="needs its full name"):
        request(site, "anf", None)


def test_every_flipped_byte_is_refused(site: Path) -> None:
    token = request(site, "anf").strip()
    for at in range(0, len(token), 5):
        flipped = bytearray(token)
        flipped[at] ^= 0x01
        with pytest.raises(ConfigError):
            read_request(bytes(flipped), source="REQ", now=NOW)


def test_a_request_signed_by_another_key_than_it_carries_is_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    mallory = SigningKey.generate()
    refused(signed(claims, mallory), "not by the Ed25519 key its signing_key names")
    header = {"alg": "Ed25519", "kid": claims.signing_key.kid, "typ": REQUEST_TYP}
    refused(forge(canonical_json(claims), mallory, header), "request signature does not verify")


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": REQUEST_TYP},
        {"alg": "Ed25519", "typ": JWS_TYP},
        {"alg": "Ed25519", "typ": REQUEST_TYP, "jwk": {}},
    ],
)
def test_other_jws_headers_are_refused(site: Path, header: dict[str, object]) -> None:
    claims = claims_of(request(site, "anf"))
    key = signing_key_of(site)
    refused(forge(canonical_json(claims), key, header | {"kid": kid_of(key)}), "unexpected JWS")


def test_a_csr_for_another_cn_is_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    other = certificate_pem(ClusterPki(site).agency_request("fia")).decode()
    forged = claims.model_copy(update={"csr": other})
    refused(signed(forged, signing_key_of(site)), "CSR asks for CN=fia", "agency 'anf'")


def test_a_csr_whose_signature_does_not_verify_is_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    body = "".join(claims.csr.strip().splitlines()[1:-1])
    der = bytearray(base64.b64decode(body))
    der[-3] ^= 0x01  # inside the ECDSA signature
    encoded = base64.b64encode(bytes(der)).decode()
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    pem = "\n".join(
        ["-----BEGIN CERTIFICATE REQUEST-----", *lines, "-----END CERTIFICATE REQUEST-----", ""]
    )
    assert x509.load_pem_x509_csr(pem.encode()).is_signature_valid is False
    forged = claims.model_copy(update={"csr": pem})
    refused(signed(forged, signing_key_of(site)), "CSR's signature does not verify")


@pytest.mark.parametrize(
    ("csr", "fragment"),
    [
        ("not a PEM", "not a usable PEM certificate request"),
        ("junk before\n{csr}", "exactly one PEM certificate request"),
    ],
)
def test_a_malformed_csr_is_refused(site: Path, csr: str, fragment: str) -> None:
    claims = claims_of(request(site, "anf"))
    forged = claims.model_copy(update={"csr": csr.format(csr=claims.csr)})
    refused(signed(forged, signing_key_of(site)), fragment)


def test_a_reserved_id_is_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    tls = certificate_pem(ClusterPki(site).agency_request("fusionbus-admin")).decode()
    forged = claims.model_copy(update={"id": "fusionbus-admin", "csr": tls})
    refused(signed(forged, signing_key_of(site)), "reserved for the platform")


def test_stale_and_future_requests_are_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    key = signing_key_of(site)
    old = claims.model_copy(update={"created_at": NOW - timedelta(days=31)})
    refused(signed(old, key), "more than 30 days ago", "fusionbus agency init anf")
    future = claims.model_copy(update={"created_at": NOW + timedelta(hours=1)})
    refused(signed(future, key), "in the future")


def test_an_unendorsed_rotation_request_is_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    forged = claims.model_copy(update={"rotates": PublicJwk.of(SigningKey.generate().public)})
    refused(signed(forged, signing_key_of(site)), "not endorsed")


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        (b"a" * (MAX_REQUEST_BYTES + 1), f"over {MAX_REQUEST_BYTES} bytes"),
        (b"", "not a signed enrolment request"),
        (b"only.two", "not a signed enrolment request"),
        ("h\u00e9.p.s".encode(), "non-ASCII"),
        (b"e30.e30.", "not a signed enrolment request"),
        (b"e30=.e30.e30", "not canonical base64url"),
        (b"W10.e30.e30", "header is not a JSON object"),
    ],
)
def test_oversized_and_malformed_files_are_refused(token: bytes, fragment: str) -> None:
    refused(token, fragment)


def test_payloads_other_than_a_canonical_valid_request_are_refused(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    key = signing_key_of(site)
    header = {"alg": "Ed25519", "kid": kid_of(key), "typ": REQUEST_TYP}
    value = claims.model_dump(mode="json")
    indented = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    refused(forge(indented, key, header), "not the request's canonical JSON")
    for change in ({"admin": True}, {"v": 2}, {"kind": "agency"}, {"name": "A\u202eB"}):
        payload = orjson.dumps(value | change, option=orjson.OPT_SORT_KEYS)
        refused(forge(payload, key, header), "signed but not a valid enrolment request")
    swapped = value | {"encryption_key": value["signing_key"]}
    payload = orjson.dumps(swapped, option=orjson.OPT_SORT_KEYS)
    refused(forge(payload, key, header), "encryption_key must be an X25519 key")
    refused(forge(b"{}", key, header), "carries no signing_key")
    refused(forge(b"[]", key, header), "payload is not a JSON object")


# -- admission on the admin's machine ---------------------------------------------------------


def test_the_admin_enrols_from_the_request_without_any_private_key(admin: Path, site: Path) -> None:
    token = request(site, "anf")
    admission = admitted(admin, token)
    record = Federation.load(admin).snapshot.agency("anf")
    assert admission.record == record
    assert record.revision == 1
    assert record.signing_kid == claims_of(token).signing_key.kid
    assert not (admin / "agencies").exists()
    assert admission.bundle == admin / "enrolment" / "anf.bundle.jws"
    fingerprints = admission.fingerprints
    assert fingerprints.root_kid == Federation.load(admin).root_kid
    assert fingerprints.certificate is not None
    assert read_request(token, source="x", now=NOW).fingerprints().tls_key == fingerprints.tls_key


def test_a_request_replayed_for_an_existing_id_is_refused(admin: Path, site: Path) -> None:
    token = request(site, "anf")
    admitted(admin, token)
    before = (admin / "directory" / "anf.jws").read_bytes()
    with pytest.raises(ConfigError, match="'anf' is already enrolled"):
        admitted(admin, token)
    other = request(site.parent / "impostor", "anf")  # a fresh request for the same id
    with pytest.raises(ConfigError, match="'anf' is already enrolled"):
        admitted(admin, other)
    assert (admin / "directory" / "anf.jws").read_bytes() == before


def test_a_request_with_another_agencys_encryption_key_is_refused(
    admin: Path, site: Path, tmp_path: Path
) -> None:
    anf = claims_of(request(site, "anf"))
    admitted(admin, request(site, "anf"))
    mallory_site = tmp_path / "mallory"
    mallory = claims_of(request(mallory_site, "mallory", "Mallory"))
    forged = mallory.model_copy(update={"encryption_key": anf.encryption_key})
    with pytest.raises(ConfigError, match="listed for both 'anf' and 'mallory'"):
        admitted(admin, signed(forged, signing_key_of(mallory_site, "mallory")))
    assert not (admin / "directory" / "mallory.jws").exists()
    assert not (admin / "enrolment" / "mallory.bundle.jws").exists()


def test_without_the_root_key_nothing_is_written(admin: Path, site: Path) -> None:
    (admin / "federation" / "root.key.pem").unlink()
    with pytest.raises(ConfigError, match="not on this machine"):
        admitted(admin, request(site, "anf"))
    assert not (admin / "directory" / "anf.jws").exists()
    assert not (admin / "enrolment").exists()


# -- rotation -------------------------------------------------------------------------------


def test_a_rotation_request_is_endorsed_by_the_current_key(admin: Path, site: Path) -> None:
    enrolled(admin, site, "anf")
    old = Federation.load(site).snapshot.agency("anf")
    token = request(site, "anf", rotate=True)
    parsed = read_request(token, source="ROT", now=NOW)
    assert parsed.endorsed
    assert parsed.claims.rotates is not None
    assert parsed.claims.rotates.kid == old.signing_kid
    again = read_request(request(site, "anf", rotate=True), source="ROT", now=NOW)
    assert again.claims.signing_key == parsed.claims.signing_key  # the staged keys reused
    assert Federation.load(site).identity("anf").signing_kid == old.signing_kid  # still


def test_a_rotation_endorsed_by_another_key_is_refused(admin: Path, site: Path) -> None:
    enrolled(admin, site, "anf")
    rotation = request(site, "anf", rotate=True)
    inner = read_request(rotation, source="x", now=NOW).claims
    mallory = SigningKey.generate()
    forged_claims = inner.model_copy(update={"rotates": PublicJwk.of(mallory.public)})
    new_key = _staged_signing_key(site, inner)
    forged = make_request(forged_claims, new_key, endorse=mallory)
    with pytest.raises(ConfigError, match="current signing key is"):
        admitted(admin, forged)


def _staged_signing_key(site: Path, claims: RequestClaims) -> SigningKey:
    path = site / "agencies" / "anf" / f"signing.{claims.signing_key.kid}.key.pem"
    key = load_private_pem(path.read_bytes())
    assert isinstance(key, SigningKey)
    return key


def test_an_endorsement_that_does_not_verify_is_refused(site: Path) -> None:
    admin = site.parent / "admin"
    Federation.init(admin, now=NOW)
    enrolled(admin, site, "anf")
    rotation = bytearray(request(site, "anf", rotate=True).strip())
    # Another base64url letter in the endorsement's signature (flipping a bit of the ASCII
    # byte could make it '@' or ',', which is refused as bad base64url instead).
    rotation[-2] = ord("B") if rotation[-2] == ord("A") else ord("A")
    refused(bytes(rotation), "endorsement signature does not verify")


def test_a_replayed_rotation_and_a_revoked_agencys_rotation_are_refused(
    admin: Path, site: Path
) -> None:
    enrolled(admin, site, "anf")
    token = request(site, "anf", rotate=True)
    admitted(admin, token)
    with pytest.raises(ConfigError, match="already lists the keys of this request"):
        admitted(admin, token)
    fresh = site.parent / "fia-site"
    enrolled(admin, fresh, "fia")
    rotation = request(fresh, "fia", rotate=True)
    Federation.load(admin).revoke("fia", reason="laptop stolen", now=NOW)
    with pytest.raises(ConfigError, match="is revoked, so a request it endorses proves nothing"):
        admitted(admin, rotation)


def test_a_rotation_request_for_an_unknown_agency_is_refused(admin: Path, site: Path) -> None:
    other_admin = site.parent / "other-admin"
    Federation.init(other_admin, now=NOW)
    enrolled(other_admin, site, "anf")
    with pytest.raises(ConfigError, match="'anf' is not in the directory"):
        admitted(admin, request(site, "anf", rotate=True))


def test_the_legacy_rotation_says_where_the_keys_of_a_requested_agency_are(
    admin: Path, site: Path
) -> None:
    enrolled(admin, site, "anf")
    with pytest.raises(ConfigError, match="agency init anf --rotate"):
        Federation.load(admin).rotate_keys("anf", now=NOW)


def test_an_x25519_key_cannot_stand_in_for_a_signing_key(site: Path) -> None:
    claims = claims_of(request(site, "anf"))
    value = claims.model_dump(mode="json")
    value["signing_key"] = PublicJwk.of(DecryptionKey.generate().public).model_dump()
    with pytest.raises(ValueError, match="signing_key must be an Ed25519 key"):
        RequestClaims.model_validate(value)
