"""Forged, altered and misfiled directory records, and unsafe key files, are refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from broker.errors import ConfigError
from broker.federation import JWS_TYP, AgencyRecord, Federation, canonical_json, sign_record
from broker.home import HomeLayout
from broker.keys import DecryptionKey, SigningKey, kid_of
from tests.unit.federation.conftest import NOW, forge, publish, record_dict, root_key


def refused(home: Path, *fragments: str) -> str:
    with pytest.raises(ConfigError) as info:
        Federation.load(home)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_flipped_byte_anywhere_is_refused(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("anf")
    original = path.read_bytes()
    for at in range(0, len(original) - 1, 7):
        flipped = bytearray(original)
        flipped[at] ^= 0x01
        path.write_bytes(bytes(flipped))
        refused(home, str(path))
    path.write_bytes(original)
    Federation.load(home)


def test_a_record_re_signed_by_another_key_is_refused(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("anf")
    record = federation.snapshot.agency("anf").with_grants([], now=NOW)
    mallory = SigningKey.generate()
    path.write_bytes(sign_record(record, mallory))
    refused(home, str(path), "not by the federation root", kid_of(mallory))


def test_a_record_claiming_the_root_kid_but_signed_by_another_key_is_refused(
    federation: Federation, home: Path
) -> None:
    path = HomeLayout(home).record("anf")
    header = {"alg": "Ed25519", "kid": federation.root_kid, "typ": JWS_TYP}
    payload = canonical_json(federation.snapshot.agency("anf"))
    path.write_bytes(forge(payload, SigningKey.generate(), header))
    refused(home, str(path), "root signature does not verify")


def test_an_unsigned_record_is_refused(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("anf")
    path.write_bytes(canonical_json(federation.snapshot.agency("anf")))
    refused(home, str(path), "not a signed directory record")
    token = sign_record(federation.snapshot.agency("anf"), root_key(home))
    path.write_bytes(token.rsplit(b".", 1)[0] + b".")
    refused(home, str(path), "not a signed directory record")


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": JWS_TYP},
        {"alg": "EdDSA", "typ": JWS_TYP},
        {"alg": "Ed25519", "typ": "fusionbus-envelope+jws"},
        {"alg": "Ed25519", "typ": JWS_TYP, "crit": ["b64"], "b64": False},
        {"alg": "Ed25519", "typ": JWS_TYP, "jwk": {}},
    ],
)
def test_other_jws_headers_are_refused(
    federation: Federation, home: Path, header: dict[str, object]
) -> None:
    root = root_key(home)
    path = HomeLayout(home).record("anf")
    path.write_bytes(
        forge(
            canonical_json(federation.snapshot.agency("anf")), root, header | {"kid": kid_of(root)}
        )
    )
    refused(home, str(path), "unexpected JWS header")


def test_a_record_filed_under_another_agency_is_refused(federation: Federation, home: Path) -> None:
    layout = HomeLayout(home)
    layout.record("fia").write_bytes(layout.record("anf").read_bytes())
    refused(home, str(layout.record("fia")), "agency 'anf'", "file name says 'fia'")


def test_a_truncated_jwk_in_a_root_signed_record_is_refused(
    federation: Federation, home: Path
) -> None:
    value = record_dict(federation.snapshot.agency("anf"))
    value["encryption_keys"][0]["jwk"]["x"] = value["encryption_keys"][0]["jwk"]["x"][:20]
    path = HomeLayout(home).record("anf")
    path.write_bytes(forge(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), root_key(home)))
    refused(home, str(path), "signed but not a valid agency record", "encryption_keys.0.jwk")


def test_a_jwk_whose_kid_is_not_its_thumbprint_is_refused(
    federation: Federation, home: Path
) -> None:
    value = record_dict(federation.snapshot.agency("anf"))
    value["signing_keys"][0]["jwk"]["kid"] = federation.snapshot.agency("fia").signing_kid
    path = HomeLayout(home).record("anf")
    path.write_bytes(forge(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), root_key(home)))
    refused(home, str(path), "thumbprint")


def test_swapped_key_kinds_are_refused(federation: Federation, home: Path) -> None:
    value = record_dict(federation.snapshot.agency("anf"))
    value["signing_keys"], value["encryption_keys"] = (
        value["encryption_keys"],
        value["signing_keys"],
    )
    path = HomeLayout(home).record("anf")
    path.write_bytes(forge(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), root_key(home)))
    refused(home, str(path), "must be Ed25519 keys")


def test_a_non_canonical_payload_is_refused(federation: Federation, home: Path) -> None:
    value = record_dict(federation.snapshot.agency("anf"))
    path = HomeLayout(home).record("anf")
    path.write_bytes(forge(orjson.dumps(value, option=orjson.OPT_INDENT_2), root_key(home)))
    refused(home, str(path), "not the record's canonical JSON")


def test_unknown_fields_and_format_versions_are_refused(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("anf")
    for change in ({"v": 2}, {"admin": True}, {"kind": "root"}):
        value = record_dict(federation.snapshot.agency("anf")) | change
        path.write_bytes(forge(orjson.dumps(value, option=orjson.OPT_SORT_KEYS), root_key(home)))
        refused(home, str(path), "signed but not a valid agency record")


def test_one_key_listed_for_two_agencies_is_refused(federation: Federation, home: Path) -> None:
    value = record_dict(federation.snapshot.agency("fia"))
    value["encryption_keys"] = record_dict(federation.snapshot.agency("anf"))["encryption_keys"]
    publish(home, AgencyRecord.model_validate(value))
    refused(home, "listed for both 'anf' and 'fia'")


def test_an_oversized_record_is_refused_before_parsing(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("anf")
    path.write_bytes(b"a" * 70_000)
    refused(home, str(path), "over 65536 bytes")


@pytest.mark.parametrize(
    "text",
    [
        b'{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHU',
        b'{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPa"}',
        b'{"kty":"OKP","crv":"X25519","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}',
        b"[]",
        b"",
    ],
)
def test_a_broken_root_anchor_is_refused(federation: Federation, home: Path, text: bytes) -> None:
    path = HomeLayout(home).root_public
    path.write_bytes(text)
    refused(home, str(path))


def test_another_root_anchor_refuses_every_record(federation: Federation, home: Path) -> None:
    other = home.parent / "other"
    Federation.init(other, now=NOW)
    HomeLayout(home).root_public.write_bytes(HomeLayout(other).root_public.read_bytes())
    refused(home, "not by the federation root")


@pytest.mark.parametrize("loose", [0o640, 0o604, 0o660, 0o644, 0o700])
def test_a_private_key_others_can_read_is_refused(
    federation: Federation, home: Path, loose: int
) -> None:
    path = HomeLayout(home).signing_key("anf")
    path.chmod(loose)
    message = ""
    if loose & 0o077:
        with pytest.raises(ConfigError) as info:
            federation.identity("anf")
        message = str(info.value)
        assert str(path) in message
        assert f"{loose:04o}" in message
        assert f"chmod 600 {path}" in message
    else:
        assert federation.identity("anf").agency == "anf"


def test_a_group_readable_root_key_is_refused(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).root_private
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        federation.grant("fia", categories=["arms"], jurisdictions=["PK"], now=NOW)


def test_a_loose_private_directory_is_refused_when_writing(
    federation: Federation, home: Path
) -> None:
    HomeLayout(home).agencies_dir.chmod(0o755)
    with pytest.raises(ConfigError, match="chmod 700"):
        federation.add_agency("fbr", "FBR", now=NOW)


def test_a_key_file_that_is_not_a_key_is_refused(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).encryption_key("anf")
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ConfigError, match=str(path)):
        federation.identity("anf")
    path.unlink()
    path.write_bytes(SigningKey.generate().to_pem())
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="expected X25519"):
        federation.identity("anf")


def test_a_key_swapped_for_another_agencys_is_refused(federation: Federation, home: Path) -> None:
    layout = HomeLayout(home)
    path = layout.encryption_key("anf")
    path.write_bytes(layout.encryption_key("fia").read_bytes())
    with pytest.raises(ConfigError, match="the directory lists"):
        federation.identity("anf")
    assert isinstance(DecryptionKey.generate(), DecryptionKey)


def test_expired_records_still_load(federation: Federation, home: Path) -> None:
    federation.add_agency("old", "Old", now=NOW - timedelta(days=800), valid_for=timedelta(days=1))
    assert Federation.load(home).snapshot.agency("old").encryption_key_at(NOW) is None


def test_a_directory_entry_that_is_not_a_file_is_refused(
    federation: Federation, home: Path
) -> None:
    (HomeLayout(home).directory_dir / "odd.jws").mkdir()
    refused(home, "cannot read", "odd.jws")


def test_a_huge_record_file_is_not_read_whole(federation: Federation, home: Path) -> None:
    path = HomeLayout(home).record("anf")
    with path.open("wb") as out:
        out.truncate(50 * 2**20)  # sparse: 50 MiB of zeros
    refused(home, str(path), "over 65536 bytes")
