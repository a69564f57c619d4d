"""The cluster PKI (``broker.provisioning.pki``) and the secured ``server.properties``."""

from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.config import KafkaSettings, aiokafka_kwargs, confluent_config
from broker.errors import ConfigError
from broker.kafka import CLIENT_TRUST_CONFIG, ClusterState, NodeState
from broker.kafka._cluster import server_properties
from broker.provisioning.pki import ClusterPki


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cn(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_ca_nodes_agencies_and_admin_get_the_right_certificates(home: Path) -> None:
    pki = ClusterPki(home)
    tls = pki.cluster_tls(3)
    anf = pki.issue_agency("anf")
    root = cert(pki.ca_cert_path)
    assert path_length(root) == 1
    node_ca, anf_ca = cert(pki.node_ca_cert_path), cert(pki.agency_ca_cert_path("anf"))
    for intermediate in (node_ca, anf_ca):
        intermediate.verify_directly_issued_by(root)
        assert path_length(intermediate) == 0
    assert cn(anf_ca) == "fusionbus agency CA anf"
    leaf = cert(anf.cert)
    leaf.verify_directly_issued_by(anf_ca)  # not by the node CA, not by the root
    assert cert(anf.ca) == root  # what the agency's clients trust to check the brokers
    assert cn(leaf) == "anf"
    assert leaf.subject.rfc4514_string() == "CN=anf,OU=agency,O=fusionbus"  # Kafka's DN order
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    node = cert(home / "tls" / "nodes" / "node-2" / "cert.pem")
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cn(node) == "fusionbus-node-2"
    node.verify_directly_issued_by(node_ca)
    admin = cert(pki.admin_files().cert)
    admin.verify_directly_issued_by(node_ca)
    assert cn(admin) == "fusionbus-admin"
    assert tls.super_users == (
        "User:fusionbus-node-1", "User:fusionbus-node-2", "User:fusionbus-node-3",
        "User:fusionbus-admin",
    )  # fmt: skip
    keys = (home / "tls" / "node-ca.key.pem", home / "tls" / "agency-cas" / "anf" / "ca.key.pem")
    for key in (pki.ca_key_path, *keys, anf.key, pki.admin_files().key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert stat.S_IMODE((home / "agencies" / "anf" / "tls").stat().st_mode) == 0o700


def path_length(certificate: x509.Certificate) -> int | None:
    return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length


def pems(text: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(text.encode())


def test_the_client_listener_trusts_the_node_ca_and_agencies_in_good_standing(
    home: Path,
) -> None:
    pki = ClusterPki(home)
    for agency in ("anf", "fia", "customs"):
        pki.issue_agency(agency)
    trust = pems(pki.client_trust(["fia", "anf", "unknown"]))
    assert [cn(c) for c in trust] == [
        "fusionbus node CA", "fusionbus agency CA anf", "fusionbus agency CA fia",
    ]  # fmt: skip
    assert cert(pki.ca_cert_path) not in trust  # the root signs the CAs, never a client
    tls = pki.cluster_tls(1)
    assert [cn(c) for c in pems(tls.node_ca_pem)] == ["fusionbus node CA"]
    assert len(pems(tls.client_trust_pem)) == 4


def test_a_retired_agency_ca_is_gone_for_good(home: Path) -> None:
    """Revocation retires the agency's CA: its key is destroyed, it leaves the trust, and a
    re-enrolled agency gets a new CA, so its old certificate cannot come back."""
    pki = ClusterPki(home)
    old = cert(pki.issue_agency("fia").cert)
    old_ca = cert(pki.agency_ca_cert_path("fia"))
    assert pki.retire_agency_ca("fia")
    assert not pki.retire_agency_ca("fia")  # nothing in force any more
    assert pki.agency_ca_certificate("fia") is None
    assert pki.trusted_agencies() == []
    assert not (home / "tls" / "agency-cas" / "fia" / "ca.key.pem").exists()
    retired = home / "tls" / "agency-cas" / "fia" / "retired" / f"{old_ca.serial_number:x}.pem"
    assert cert(retired) == old_ca
    assert [cn(c) for c in pems(pki.client_trust(["fia"]))] == ["fusionbus node CA"]
    new = cert(pki.issue_agency("fia").cert)  # re-enrolled: a new key, a new CA
    new_ca = cert(pki.agency_ca_cert_path("fia"))
    assert new_ca.public_key() != old_ca.public_key()
    new.verify_directly_issued_by(new_ca)
    assert new.public_key() != old.public_key()
    assert pems(pki.client_trust(["fia"]))[1] == new_ca


def test_a_single_ca_home_is_refused_with_the_way_out(home: Path) -> None:
    """A home whose CA signed every certificate directly (path length 0) cannot take one
    agency off the truststores; it is refused with what to do, not half-used."""
    from broker._crypto import TlsKey  # noqa: PLC0415 - only this test makes an old CA
    from broker.provisioning import pki as module  # noqa: PLC0415

    key = TlsKey.generate()
    name = module._ca_name("fusionbus cluster CA")
    now = datetime.now(UTC)
    old = key.sign(
        key.with_public_key(
            module._ca(name, name, now, until=now + timedelta(days=9), path_length=0)
        )
    )
    (home / "tls").mkdir(mode=0o700, parents=True)
    (home / "tls" / "ca.pem").write_bytes(old.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(ConfigError, match=r"single-CA layout.*fusionbus up"):
        ClusterPki(home).issue_agency("anf")


def test_issuing_again_keeps_what_is_there(home: Path) -> None:
    pki = ClusterPki(home)
    first = pki.issue_agency("anf").cert.read_bytes()
    assert pki.issue_agency("anf").cert.read_bytes() == first
    assert ClusterPki(home).cluster_tls(1) == ClusterPki(home).cluster_tls(1)


def test_platform_principal_names_are_reserved(home: Path) -> None:
    with pytest.raises(ConfigError, match="reserved"):
        ClusterPki(home).issue_agency("fusionbus-admin")


def test_without_the_ca_key_nothing_is_issued(home: Path) -> None:
    pki = ClusterPki(home)
    pki.ensure_ca()
    pki.ca_key_path.unlink()
    with pytest.raises(ConfigError, match=r"the root CA .* not on this machine"):
        pki.issue_agency("anf")  # its CA would be the first one the root signs
    (home / "tls" / "node-ca.key.pem").unlink()
    with pytest.raises(ConfigError, match=r"the node CA .* not on this machine"):
        pki.issue_admin()


def test_encrypted_keys_with_the_passphrase(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONBUS_PASSPHRASE", "correct horse")
    files = ClusterPki(home).issue_agency("anf")
    assert files.key.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    settings = files.settings("127.0.0.1:9092", "correct horse")
    assert aiokafka_kwargs(settings, "consumer")["security_protocol"] == "SSL"
    wrong = files.settings("127.0.0.1:9092", "wrong")
    with pytest.raises(ConfigError, match="cannot load the TLS files"):
        aiokafka_kwargs(wrong, "consumer")


def test_tls_settings_map_to_aiokafka_and_librdkafka(home: Path) -> None:
    files = ClusterPki(home).issue_agency("anf")
    settings = files.settings("127.0.0.1:9092")
    kwargs = aiokafka_kwargs(settings, "producer")
    assert kwargs["security_protocol"] == "SSL"
    assert kwargs["ssl_context"].check_hostname
    assert confluent_config(settings)["ssl.certificate.location"] == str(files.cert)
    assert "security_protocol" not in aiokafka_kwargs(KafkaSettings(), "admin")
    with pytest.raises(ValueError, match="go together"):
        KafkaSettings(tls_ca_file=files.ca, tls_cert_file=files.cert)


def test_secured_server_properties(home: Path) -> None:
    tls = ClusterPki(home).cluster_tls(1)
    state = ClusterState("id", "4.4.0", [NodeState(1, 9092, 9093)], secure=True)
    props = server_properties(state, state.nodes[0], Path("/d"), tls=tls)
    assert props["listeners"] == "CLIENT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["listener.security.protocol.map"] == "CLIENT:SSL,CONTROLLER:SSL"
    assert props["inter.broker.listener.name"] == "CLIENT"
    assert props["ssl.client.auth"] == "required"
    assert props["ssl.principal.mapping.rules"] == "RULE:^CN=([^,]+).*$/$1/,DEFAULT"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:fusionbus-node-1;User:fusionbus-admin"
    assert props["ssl.truststore.certificates"] == tls.node_ca_pem.strip().replace("\n", "\\n")
    assert props["listener.name.client.ssl.truststore.type"] == "PEM"
    assert props[CLIENT_TRUST_CONFIG] == tls.client_trust_pem.strip().replace("\n", "\\n")
    assert "\n" not in props["ssl.keystore.key"]  # one properties line, \n escapes
    assert props["ssl.keystore.key"].startswith("-----BEGIN PRIVATE KEY-----\\n")
