"""What a secured embedded cluster needs, and the ``server.properties`` that secure it.

Every listener (clients, inter-broker, controller quorum) speaks TLS and requires a client
certificate; the principal is the certificate's CN; the StandardAuthorizer refuses what no
ACL allows. The controller listener trusts the node CA alone; the client listener (agencies,
the admin, inter-broker traffic) trusts the node CA and the issuing CA of each agency in good
standing, a PEM list the provisioning step replaces on each broker at run time
(:data:`CLIENT_TRUST_CONFIG`, an ``IncrementalAlterConfigs`` per broker) when an agency is
revoked, so its certificate stops completing a handshake without a restart.

Node keys go inline into ``server.properties`` (``ssl.keystore.key``): Kafka accepts an
unencrypted PKCS#8 key only that way (a PEM keystore *file* demands ``ssl.key.password``), so
the file is written 0600 in a 0700 folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from broker.config import KafkaSettings

__all__ = [
    "CLIENT_TRUST_CONFIG",
    "PRINCIPAL_RULES",
    "ClusterTls",
    "NodeTls",
    "security_properties",
]

#: The certificate's CN is the principal: CN=anf,OU=agency,O=fusionbus -> User:anf.
PRINCIPAL_RULES = "RULE:^CN=([^,]+).*$/$1/,DEFAULT"
#: The client listener's trust anchors: a per-broker dynamic config (Kafka refuses it as a
#: cluster-wide default), PEM certificates one after the other.
CLIENT_TRUST_CONFIG = "listener.name.client.ssl.truststore.certificates"


@dataclass(frozen=True, slots=True)
class NodeTls:
    """One node's unencrypted PKCS#8 key and its certificate chain (node, then CA), PEM."""

    key_pem: str
    chain_pem: str

    def __repr__(self) -> str:
        return "NodeTls(key_pem=<secret>, chain_pem=...)"


@dataclass(frozen=True, slots=True)
class ClusterTls:
    """The TLS material of a secured cluster (made by ``broker.provisioning.pki.ClusterPki``).

    ``ca_pem`` is the root CA clients trust to check the brokers; ``node_ca_pem`` is what the
    controller listener trusts; ``client_trust_pem`` is the client listener's starting trust
    (node CA and agency CAs). ``admin`` is the admin principal's client settings (its
    bootstrap is replaced by the cluster's); the readiness probe connects with it.
    ``super_users`` are the node principals and the admin.
    """

    ca_pem: str
    node_ca_pem: str
    client_trust_pem: str
    nodes: Mapping[int, NodeTls]
    admin: KafkaSettings
    super_users: tuple[str, ...]

    def admin_settings(self, bootstrap: str) -> KafkaSettings:
        return self.admin.model_copy(update={"bootstrap": bootstrap})


def _one_line(pem: str) -> str:
    """A PEM block as one ``server.properties`` value (Java reads ``\\n`` as a newline)."""
    return pem.strip().replace("\n", "\\n")


def security_properties(tls: ClusterTls, node_id: int) -> dict[str, str]:
    """The properties that secure node ``node_id``; they replace the plaintext ones."""
    node = tls.nodes.get(node_id)
    if node is None:
        raise KeyError(f"no TLS material for node {node_id}")
    return {
        "listener.security.protocol.map": "CLIENT:SSL,CONTROLLER:SSL",
        "ssl.client.auth": "required",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.key": _one_line(node.key_pem),
        "ssl.keystore.certificate.chain": _one_line(node.chain_pem),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": _one_line(tls.node_ca_pem),
        "listener.name.client.ssl.truststore.type": "PEM",
        CLIENT_TRUST_CONFIG: _one_line(tls.client_trust_pem),
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.principal.mapping.rules": PRINCIPAL_RULES,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(tls.super_users),
        # Agencies get no CREATE: the admin creates topics at grant time.
        "auto.create.topics.enable": "false",
    }
