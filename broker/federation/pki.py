"""The cluster's TLS PKI: one CA, a certificate per Kafka node, per agency, for the admin.

Mutual TLS is how Kafka knows who is connecting (``docs/security.md``): each party holds an
ECDSA P-256 key and a certificate the cluster CA signed; Kafka maps the certificate's CN to
the principal ``User:<CN>`` its ACLs name. Files (keys PKCS#8 PEM, 0600, in 0700 folders,
encrypted with ``FUSIONBUS_PASSPHRASE`` if set)::

    <home>/tls/ca.pem                       the cluster CA certificate (public)
    <home>/tls/ca.key.pem                   its private key: only on the admin's machine
    <home>/tls/admin/{cert,key,ca}.pem      the platform admin, CN=fusionbus-admin
    <home>/tls/nodes/node-<id>/{cert,key}.pem   Kafka node <id>, CN=fusionbus-node-<id>,
                                            SAN the node's hosts (default 127.0.0.1, localhost)
    <home>/agencies/<id>/tls/{cert,key,ca}.pem  agency <id>, CN=<id>
    <home>/agencies/<id>/tls/next.key.pem   a rotation's new key, until its certificate comes

An agency enrolled by request makes its key in its own home and sends a PKCS#10 request
(:meth:`ClusterPki.agency_request`); the admin issues the certificate from it
(:meth:`ClusterPki.issue_from_request`) without seeing the key, and the agency installs it
(:meth:`ClusterPki.install_agency_certificate`). :meth:`ClusterPki.issue_agency` makes key and
certificate in one home, for agencies enrolled with their keys made on the admin's machine.
Issuing there is idempotent: a certificate already there, issued by the current CA, for the
same key, and valid for at least another 30 days is kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import SecretStr

from broker._crypto import TlsKey, certificate_pem
from broker.config import KafkaSettings
from broker.errors import ConfigError
from broker.federation._home import (
    PRIVATE_FILE_MODE,
    PUBLIC_FILE_MODE,
    KeySettings,
    private_dir,
    read_private_bytes,
    replace_file,
    write_file,
)
from broker.kafka import ClusterTls, NodeTls

__all__ = [
    "ADMIN_PRINCIPAL",
    "LOOPBACK_HOSTS",
    "ClientFiles",
    "ClusterPki",
    "node_principal",
    "refuse_reserved",
]

ADMIN_PRINCIPAL = "fusionbus-admin"
_RESERVED_PREFIX = "fusionbus-"
_CA_DAYS = 3650
_LEAF_DAYS = 397
_RENEW_BEFORE = timedelta(days=30)
#: The names a node certificate carries unless told otherwise: the embedded cluster's.
LOOPBACK_HOSTS: tuple[str, ...] = ("127.0.0.1", "localhost")


def node_principal(node_id: int) -> str:
    return f"fusionbus-node-{node_id}"


def refuse_reserved(agency: str) -> None:
    """ConfigError if ``agency`` would name one of the platform's own principals."""
    if agency.startswith(_RESERVED_PREFIX):
        raise ConfigError(
            f"agency id {agency!r}: ids starting with {_RESERVED_PREFIX!r} are reserved "
            "for the platform's own principals (nodes, admin)"
        )


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """Where one TLS client's files are: what ``KafkaSettings`` needs to connect."""

    ca: Path
    cert: Path
    key: Path

    def settings(self, bootstrap: str, key_password: str | None = None) -> KafkaSettings:
        return KafkaSettings(
            bootstrap=bootstrap,
            tls_ca_file=self.ca,
            tls_cert_file=self.cert,
            tls_key_file=self.key,
            tls_key_password=SecretStr(key_password) if key_password else None,
        )

    def exist(self) -> bool:
        return self.ca.is_file() and self.cert.is_file() and self.key.is_file()


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fusionbus"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class ClusterPki:
    """The CA and certificates in one home. ``now`` is injectable for tests."""

    def __init__(self, home: Path, *, settings: KeySettings | None = None) -> None:
        self.home = home
        self.tls_dir = home / "tls"
        self._settings = settings or KeySettings()

    # -- paths ------------------------------------------------------------------------------

    @property
    def ca_cert_path(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.tls_dir / "ca.key.pem"

    def admin_files(self) -> ClientFiles:
        folder = self.tls_dir / "admin"
        return ClientFiles(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")

    def agency_files(self, agency: str) -> ClientFiles:
        folder = self.home / "agencies" / agency / "tls"
        return ClientFiles(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")

    def _node_dir(self, node_id: int) -> Path:
        return self.tls_dir / "nodes" / f"node-{node_id}"

    # -- the CA -----------------------------------------------------------------------------

    def ensure_ca(self, *, now: datetime | None = None) -> x509.Certificate:
        """The CA certificate, creating the CA (key and self-signed certificate) if absent."""
        now = now or datetime.now(UTC)
        if self.ca_cert_path.is_file():
            return self.ca_certificate()
        private_dir(self.tls_dir)
        key = TlsKey.generate()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fusionbus"),
                x509.NameAttribute(NameOID.COMMON_NAME, "fusionbus cluster CA"),
            ]
        )
        ski = key.subject_key_identifier()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
        )
        cert = key.sign(key.with_public_key(builder))
        self._write_key(self.ca_key_path, key)
        write_file(self.ca_cert_path, _pem(cert), mode=PUBLIC_FILE_MODE, exclusive=True)
        return cert

    def ca_certificate(self) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(
                f"no cluster CA in {self.tls_dir}; run `fusionbus kafka start --secure --home "
                f"{self.home}` (or `fusionbus up`) on the admin's machine"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"{self.ca_cert_path} is not a PEM certificate: {exc}") from exc

    def _ca_key(self) -> TlsKey:
        if not self.ca_key_path.exists():
            raise ConfigError(
                f"the cluster CA key {self.ca_key_path} is not on this machine; certificates "
                "are issued on the admin's machine"
            )
        return self._read_key(self.ca_key_path)

    # -- issuing ----------------------------------------------------------------------------

    def issue_admin(self, *, now: datetime | None = None) -> ClientFiles:
        files = self.admin_files()
        self._issue(files.cert, files.key, ADMIN_PRINCIPAL, "admin", client=True, now=now)
        self._copy_ca(files.ca)
        return files

    def issue_agency(self, agency: str, *, now: datetime | None = None) -> ClientFiles:
        """A client certificate with CN = ``agency``: Kafka's principal ``User:<agency>``."""
        refuse_reserved(agency)
        files = self.agency_files(agency)
        self._issue(files.cert, files.key, agency, "agency", client=True, now=now)
        self._copy_ca(files.ca)
        return files

    # -- enrolment by request: the agency's key never leaves its home ---------------------

    def _pending_key(self, agency: str) -> Path:
        return self.agency_files(agency).key.with_name("next.key.pem")

    def agency_request(
        self, agency: str, *, pending: bool = False
    ) -> x509.CertificateSigningRequest:
        """A PKCS#10 request (CN = ``agency``) for the agency's TLS key in this home, made
        first if there is none. ``pending`` is a rotation's new key (``tls/next.key.pem``),
        kept apart from the key in use until its certificate is imported."""
        path = self._pending_key(agency) if pending else self.agency_files(agency).key
        if not path.exists():
            self._write_key(path, TlsKey.generate())
        builder = x509.CertificateSigningRequestBuilder().subject_name(_name(agency, "agency"))
        return self._read_key(path).sign_request(builder)

    def issue_from_request(
        self, agency: str, request: x509.CertificateSigningRequest, *, now: datetime
    ) -> x509.Certificate:
        """The CA's client certificate for ``agency`` over the public key of ``request``,
        which :mod:`broker.federation.enrolment` has checked. The subject is set here, not
        copied from the request; no private key of the agency is involved."""
        refuse_reserved(agency)
        ca = self.ensure_ca(now=now)
        ca_key = self._ca_key()
        public = request.public_key()
        builder = _leaf(agency, "agency", ca, now, client=True).public_key(public)
        ski = x509.SubjectKeyIdentifier.from_public_key(public)
        return ca_key.sign(builder.add_extension(ski, critical=False))

    def holds_agency_key(self, agency: str, certificate: x509.Certificate) -> bool:
        """Whether this home holds the TLS key ``certificate`` certifies (in use or pending)."""
        for path in (self.agency_files(agency).key, self._pending_key(agency)):
            if path.is_file() and self._read_key(path).holds(certificate):
                return True
        return False

    def install_agency_certificate(
        self, agency: str, certificate: x509.Certificate, ca: x509.Certificate
    ) -> ClientFiles:
        """Put ``certificate`` and the cluster ``ca`` where Kafka clients look for them; a
        pending key the certificate certifies first replaces the key in use. Refuses a
        certificate for a key this home does not hold."""
        files = self.agency_files(agency)
        pending = self._pending_key(agency)
        if not (files.key.is_file() and self._read_key(files.key).holds(certificate)):
            if not (pending.is_file() and self._read_key(pending).holds(certificate)):
                raise ConfigError(
                    f"the certificate for {agency!r} certifies a TLS key this home "
                    f"({self.home}) does not hold; import the bundle made for this home's "
                    "request"
                )
            replace_file(pending, files.key)
        write_file(files.cert, _pem(certificate), mode=PUBLIC_FILE_MODE)
        write_file(files.ca, _pem(ca), mode=PUBLIC_FILE_MODE)
        return files

    def issue_node(
        self, node_id: int, *, hosts: Sequence[str] = LOOPBACK_HOSTS, folder: Path | None = None,
        now: datetime | None = None,
    ) -> tuple[Path, Path]:  # fmt: skip
        """Node ``node_id``'s certificate and key in ``folder`` (default
        ``tls/nodes/node-<id>``), naming ``hosts`` (IP addresses or DNS names: what clients
        and peers dial) as its SAN; one that names other hosts is issued again."""
        if not hosts:
            raise ConfigError(f"node {node_id}'s certificate needs at least one host name")
        self.ensure_ca(now=now)  # first: it makes tls/ private
        if folder is None:
            private_dir(self.tls_dir / "nodes")
            folder = self._node_dir(node_id)
        cert, key = folder / "cert.pem", folder / "key.pem"
        self._issue(cert, key, node_principal(node_id), "node", client=False, now=now, hosts=hosts)
        return cert, key

    def node_tls(
        self, node_id: int, *, hosts: Sequence[str] = LOOPBACK_HOSTS, folder: Path | None = None,
        now: datetime | None = None,
    ) -> NodeTls:  # fmt: skip
        """Node ``node_id``'s unencrypted key and chain for ``server.properties``, issuing
        them first if missing (:meth:`issue_node`)."""
        ca = self.ensure_ca(now=now)
        cert_path, key_path = self.issue_node(node_id, hosts=hosts, folder=folder, now=now)
        key = self._read_key(key_path)
        chain = cert_path.read_text() + _pem(ca).decode()
        return NodeTls(key_pem=key.to_pem().decode(), chain_pem=chain)

    def cluster_tls(
        self, nodes: int, *, hosts: Sequence[str] | None = None, now: datetime | None = None
    ) -> ClusterTls:
        """Everything an :class:`~broker.kafka.EmbeddedKafka` of ``nodes`` nodes needs to run
        secured, issuing what is missing (node certificates, the admin's). ``hosts`` names
        each node's address (node ``i`` is ``hosts[i - 1]``); default: loopback names."""
        if hosts is not None and len(hosts) != nodes:
            raise ConfigError(f"{nodes} nodes need {nodes} hosts, got {len(hosts)}")
        ca = self.ensure_ca(now=now)
        node_tls: dict[int, NodeTls] = {}
        for node_id in range(1, nodes + 1):
            names = LOOPBACK_HOSTS if hosts is None else (hosts[node_id - 1],)
            node_tls[node_id] = self.node_tls(node_id, hosts=names, now=now)
        admin = self.issue_admin(now=now)
        supers = tuple(f"User:{node_principal(i)}" for i in range(1, nodes + 1))
        return ClusterTls(
            ca_pem=_pem(ca).decode(),
            nodes=node_tls,
            admin=admin.settings("127.0.0.1:9092", self._password()),
            super_users=(*supers, f"User:{ADMIN_PRINCIPAL}"),
        )

    def _password(self) -> str | None:
        secret = self._settings.passphrase_bytes()
        return secret.decode() if secret else None

    def _issue(
        self, cert_path: Path, key_path: Path, cn: str, unit: str, *, client: bool,
        now: datetime | None, hosts: Sequence[str] = LOOPBACK_HOSTS,
    ) -> None:  # fmt: skip
        now = now or datetime.now(UTC)
        ca = self.ensure_ca(now=now)
        if (
            cert_path.is_file()
            and key_path.is_file()
            and self._current(cert_path, key_path, ca, now, None if client else hosts)
        ):
            return
        ca_key = self._ca_key()
        private_dir(key_path.parent)
        key = TlsKey.generate()
        builder = key.with_public_key(_leaf(cn, unit, ca, now, client=client, hosts=hosts))
        cert = ca_key.sign(builder.add_extension(key.subject_key_identifier(), critical=False))
        # Key first, then the certificate: a crash leaves no certificate without its key.
        key_path.unlink(missing_ok=True)
        self._write_key(key_path, key)
        write_file(cert_path, _pem(cert), mode=PUBLIC_FILE_MODE)

    def _current(
        self, cert_path: Path, key_path: Path, ca: x509.Certificate, now: datetime,
        hosts: Sequence[str] | None = None,
    ) -> bool:  # fmt: skip
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            cert.verify_directly_issued_by(ca)
            if hosts is not None:
                names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                if set(names.value) != set(_san(hosts)):
                    return False
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            return False
        fresh = cert.not_valid_after_utc - now > _RENEW_BEFORE
        return fresh and self._read_key(key_path).holds(cert)

    def _copy_ca(self, target: Path) -> None:
        write_file(target, self.ca_cert_path.read_bytes(), mode=PUBLIC_FILE_MODE)

    def _write_key(self, path: Path, key: TlsKey) -> None:
        private_dir(path.parent)
        write_file(
            path, key.to_pem(self._settings.passphrase_bytes()), mode=PRIVATE_FILE_MODE,
            exclusive=True,
        )  # fmt: skip

    def _read_key(self, path: Path) -> TlsKey:
        data, passphrase = read_private_bytes(path, self._settings)
        try:
            return TlsKey.from_pem(data, passphrase)
        except ValueError as exc:
            raise ConfigError(f"TLS key {path}: {exc}") from exc


def _pem(cert: x509.Certificate) -> bytes:
    return certificate_pem(cert)


def _san(hosts: Sequence[str]) -> list[x509.GeneralName]:
    """Each host as an IP address entry if it is one, else as a DNS name."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _leaf(
    cn: str, unit: str, ca: x509.Certificate, now: datetime, *, client: bool,
    hosts: Sequence[str] = LOOPBACK_HOSTS,
) -> x509.CertificateBuilder:  # fmt: skip
    """A leaf certificate for ``cn`` issued by ``ca``, all but its public key and SKI."""
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    usages = [usage] if client else [usage, ExtendedKeyUsageOID.CLIENT_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, unit))
        .issuer_name(ca.subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + timedelta(days=_LEAF_DAYS), ca.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if not client:  # a node: the names clients and peers dial
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    return builder
