"""The cluster PKI (``broker.federation.pki``) and the secured ``server.properties``."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker.config import KafkaSettings, aiokafka_kwargs, confluent_config
from broker.errors import ConfigError
from broker.federation.pki import ClusterPki
from broker.kafka import ClusterState, NodeState
from broker.kafka._cluster import server_properties


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cn(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_ca_nodes_agencies_and_admin_get_the_right_certificates(home: Path) -> None:
    pki = ClusterPki(home)
    tls = pki.cluster_tls(3)
    anf = pki.issue_agency("anf")
    ca = cert(pki.ca_cert_path)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    leaf = cert(anf.cert)
    leaf.verify_directly_issued_by(ca)
    assert cn(leaf) == "anf"
    assert leaf.subject.rfc4514_string() == "CN=anf,OU=agency,O=fusionbus"  # Kafka's DN order
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    node = cert(home / "tls" / "nodes" / "node-2" / "cert.pem")
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cn(node) == "fusionbus-node-2"
    assert cn(cert(pki.admin_files().cert)) == "fusionbus-admin"
    assert tls.super_users == (
        "User:fusionbus-node-1", "User:fusionbus-node-2", "User:fusionbus-node-3",
        "User:fusionbus-admin",
    )  # fmt: skip
    for key in (pki.ca_key_path, anf.key, pki.admin_files().key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert stat.S_IMODE((home / "agencies" / "anf" / "tls").stat().st_mode) == 0o700


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
    with pytest.raises(ConfigError, match="not on this machine"):
        pki.issue_agency("anf")


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
    assert "\n" not in props["ssl.keystore.key"]  # one properties line, \n escapes
    assert props["ssl.keystore.key"].startswith("-----BEGIN PRIVATE KEY-----\\n")
