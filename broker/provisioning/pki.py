"""The cluster's TLS PKI: a root CA, a node CA, one issuing CA per agency, and the leaves.

Mutual TLS is how Kafka knows who is connecting (``docs/security.md``): each party holds an
ECDSA P-256 key and a certificate; Kafka maps the certificate's CN to the principal
``User:<CN>`` its ACLs name. The hierarchy exists so that revoking an agency reaches the TLS
handshake::

    root CA (path length 1)        in no broker truststore; clients trust it to check brokers
    |-- node CA (path length 0)    signs the Kafka nodes and the platform admin
    `-- agency CA <id> (length 0)  one per agency; signs only that agency's client certificate

A broker's client listener trusts the node CA and the CA of every agency in good standing
(:meth:`ClusterPki.client_trust`); revoking an agency retires its CA
(:meth:`ClusterPki.retire_agency_ca`: the key is destroyed) and the provisioning step
removes it from every broker's truststore, so the agency's certificate no longer completes a
handshake. A re-enrolled agency gets a new CA: nothing its old certificate can do comes back.

Files (keys PKCS#8 PEM, 0600, in 0700 folders, encrypted with ``FUSIONBUS_PASSPHRASE`` if set)::

    <home>/tls/ca.pem, ca.key.pem           the root CA; its key only on the admin's machine
    <home>/tls/node-ca.pem, node-ca.key.pem the node CA
    <home>/tls/agency-cas/<id>/ca.pem, ca.key.pem   agency <id>'s issuing CA in force
    <home>/tls/agency-cas/<id>/retired/<serial>.pem the CAs it had before (no key kept)
    <home>/tls/admin/{cert,key,ca}.pem      the platform admin, CN=fusionbus-admin
    <home>/tls/nodes/node-<id>/{cert,key}.pem   Kafka node <id>, CN=fusionbus-node-<id>,
                                            SAN the node's hosts (default 127.0.0.1, localhost)
    <home>/agencies/<id>/tls/{cert,key,ca}.pem  agency <id>, CN=<id> (``ca.pem``: the root)
    <home>/agencies/<id>/tls/next.key.pem   a rotation's new key, until its certificate comes

An agency enrolled by request makes its key in its own home and sends a PKCS#10 request
(:meth:`ClusterPki.agency_request`); the admin issues the certificate from it
(:meth:`ClusterPki.issue_from_request`) without seeing the key, and the agency installs it
(:meth:`ClusterPki.install_agency_certificate`). :meth:`ClusterPki.issue_agency` makes key and
certificate in one home, for agencies enrolled with their keys made on the admin's machine.
Issuing there is idempotent: a certificate already there, issued by the CA now in force, for
the same key, and valid for at least another 30 days is kept.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from broker._crypto import TlsKey, certificate_pem
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
from broker.home import ClientFiles, HomeLayout
from broker.kafka import ClusterTls, NodeTls

__all__ = [
    "ADMIN_PRINCIPAL",
    "LOOPBACK_HOSTS",
    "Canary",
    "ClusterPki",
    "node_principal",
    "refuse_reserved",
]

ADMIN_PRINCIPAL = "fusionbus-admin"
_RESERVED_PREFIX = "fusionbus-"
_CA_DAYS = 3650
_LEAF_DAYS = 397
_RENEW_BEFORE = timedelta(days=30)
_CANARY_LIFE = timedelta(minutes=15)
CANARY_PRINCIPAL = "fusionbus-canary"
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
class Canary:
    """A throwaway client certificate under one agency's CA, held in memory only: a probe
    of whether the brokers accept that CA's certificates. Its principal
    (``User:fusionbus-canary``) has no ACL, so it can do nothing but complete a handshake."""

    agency: str
    cert_pem: bytes
    key_pem: bytes
    root_pem: bytes

    def __repr__(self) -> str:
        return f"Canary(agency={self.agency!r}, key_pem=<secret>)"


def _name(common_name: str, unit: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fusionbus"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


class ClusterPki:
    """The CAs and certificates in one home. ``now`` is injectable for tests."""

    def __init__(self, home: Path, *, settings: KeySettings | None = None) -> None:
        self.home = home
        self._layout = HomeLayout(home)
        self.tls_dir = self._layout.tls_dir
        self._settings = settings or KeySettings()

    # -- paths (broker.home owns them) --------------------------------------------------------

    @property
    def ca_cert_path(self) -> Path:
        """The root CA certificate: what every client trusts to check the brokers."""
        return self._layout.root_ca

    @property
    def ca_key_path(self) -> Path:
        return self._layout.root_ca_key

    @property
    def node_ca_cert_path(self) -> Path:
        return self._layout.node_ca

    def _agency_ca_dir(self, agency: str) -> Path:
        return self._layout.agency_ca_dir(agency)

    def agency_ca_cert_path(self, agency: str) -> Path:
        """Agency ``agency``'s issuing CA in force (absent until its first certificate)."""
        return self._agency_ca_dir(agency) / "ca.pem"

    def admin_files(self) -> ClientFiles:
        return self._layout.admin_tls

    def agency_files(self, agency: str) -> ClientFiles:
        return self._layout.agency_tls(agency)

    def _node_dir(self, node_id: int) -> Path:
        return self._layout.node_tls_dir(node_id)

    # -- the CAs ----------------------------------------------------------------------------

    def ensure_ca(self, *, now: datetime | None = None) -> x509.Certificate:
        """The root CA certificate, creating the root and the node CA if absent."""
        now = now or datetime.now(UTC)
        if not self.ca_cert_path.is_file():
            private_dir(self.tls_dir)
            key = TlsKey.generate()
            name = _ca_name("fusionbus root CA")
            builder = _ca(name, name, now, until=now + timedelta(days=_CA_DAYS), path_length=1)
            ski = key.subject_key_identifier()
            cert = key.sign(key.with_public_key(builder).add_extension(ski, critical=False))
            self._write_key(self.ca_key_path, key)
            write_file(self.ca_cert_path, _pem(cert), mode=PUBLIC_FILE_MODE, exclusive=True)
        root = self.ca_certificate()
        if not self.node_ca_cert_path.is_file():
            self._new_ca(self._layout.node_ca.with_suffix(""), "fusionbus node CA", root, now)
        return root

    def ca_certificate(self) -> x509.Certificate:
        root = self._load_certificate(self.ca_cert_path)
        constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
        if constraints.path_length == 0:
            raise ConfigError(
                f"the cluster CA in {self.tls_dir} is of the single-CA layout (path length 0), "
                "which cannot take an agency off the brokers' truststores. For the local "
                f"demo: stop it (`fusionbus kafka stop --home {self.home}`), remove "
                f"{self.tls_dir} and {self.home / 'kafka'}, and run `fusionbus up` again; a "
                "deployed federation makes a new root and re-enrols each agency's TLS key "
                "(docs/security.md, 'Revocation at the TLS layer')"
            )
        return root

    def node_ca_certificate(self) -> x509.Certificate:
        return self._load_certificate(self.node_ca_cert_path)

    def agency_ca_certificate(self, agency: str) -> x509.Certificate | None:
        """Agency ``agency``'s issuing CA in force, or None (never issued, or retired)."""
        path = self.agency_ca_cert_path(agency)
        return self._load_certificate(path) if path.is_file() else None

    def _load_certificate(self, path: Path) -> x509.Certificate:
        try:
            return x509.load_pem_x509_certificate(path.read_bytes())
        except FileNotFoundError:
            raise ConfigError(
                f"no cluster CA in {self.tls_dir}; run `fusionbus kafka start --secure --home "
                f"{self.home}` (or `fusionbus up`) on the admin's machine"
            ) from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not a PEM certificate: {exc}") from exc

    def _new_ca(
        self, stem: Path, common_name: str, root: x509.Certificate, now: datetime
    ) -> x509.Certificate:
        """An intermediate CA (path length 0) signed by the root: ``<stem>.pem`` and
        ``<stem>.key.pem``, key first."""
        until = min(now + timedelta(days=_CA_DAYS), root.not_valid_after_utc)
        builder = _ca(_ca_name(common_name), root.subject, now, until=until, path_length=0)
        key = TlsKey.generate()
        builder = (
            key.with_public_key(builder)
            .add_extension(key.subject_key_identifier(), critical=False)
            .add_extension(_authority(root), critical=False)
        )
        cert = self._key(self.ca_key_path, "the root CA").sign(builder)
        key_path = stem.with_name(stem.name + ".key.pem")
        key_path.unlink(missing_ok=True)
        self._write_key(key_path, key)
        write_file(stem.with_name(stem.name + ".pem"), _pem(cert), mode=PUBLIC_FILE_MODE)
        return cert

    def _issuer(self, agency: str | None, now: datetime) -> tuple[x509.Certificate, TlsKey]:
        """The CA that signs ``agency``'s certificate (the node CA for ``None``: nodes, the
        admin), made first if the agency has none in force."""
        root = self.ensure_ca(now=now)
        if agency is None:
            stem, what = self._layout.node_ca.with_suffix(""), "the node CA"
        else:
            folder = private_dir(self._agency_ca_dir(agency))
            stem, what = folder / "ca", f"agency {agency}'s CA"
            if not (folder / "ca.pem").is_file():
                self._new_ca(stem, f"fusionbus agency CA {agency}", root, now)
        cert = self._load_certificate(stem.with_name(stem.name + ".pem"))
        return cert, self._key(stem.with_name(stem.name + ".key.pem"), what)

    def retire_agency_ca(self, agency: str) -> bool:
        """Take ``agency``'s issuing CA out of force: its certificate moves to ``retired/``
        and its key is destroyed, so :meth:`client_trust` no longer names it and nothing it
        signed can be trusted again. Returns whether there was one."""
        folder = self._agency_ca_dir(agency)
        current = folder / "ca.pem"
        if not current.is_file():
            return False
        serial = format(self._load_certificate(current).serial_number, "x")
        (folder / "ca.key.pem").unlink(missing_ok=True)
        replace_file(current, private_dir(folder / "retired") / f"{serial}.pem")
        return True

    def canary(self, agency: str, *, now: datetime | None = None) -> Canary | None:
        """A :class:`Canary` under ``agency``'s CA in force (None if it has none); nothing
        is written."""
        if self.agency_ca_certificate(agency) is None:
            return None
        now = now or datetime.now(UTC)
        issuer, issuer_key = self._issuer(agency, now)
        key = TlsKey.generate()
        builder = _leaf(CANARY_PRINCIPAL, "canary", issuer, now, client=True, life=_CANARY_LIFE)
        builder = key.with_public_key(builder)
        cert = issuer_key.sign(builder.add_extension(key.subject_key_identifier(), critical=False))
        return Canary(agency, _pem(cert), key.to_pem(), self.ca_cert_path.read_bytes())

    def client_trust(self, agencies: Iterable[str]) -> str:
        """The client listener's trust anchors, PEM: the node CA (peers, the admin) and the
        CA in force of each of ``agencies`` that has one."""
        self.ensure_ca()
        parts = [self.node_ca_cert_path.read_text()]
        for agency in sorted(set(agencies)):
            path = self.agency_ca_cert_path(agency)
            if path.is_file():
                parts.append(path.read_text())
        return "".join(parts)

    def trusted_agencies(self) -> list[str]:
        """The agencies with an issuing CA in force."""
        folder = self._layout.agency_cas_dir
        if not folder.is_dir():
            return []
        return sorted(p.parent.name for p in folder.glob("*/ca.pem"))

    def _key(self, path: Path, what: str) -> TlsKey:
        if not path.exists():
            raise ConfigError(
                f"the key of {what} ({path}) is not on this machine; certificates are issued "
                "on the admin's machine"
            )
        return self._read_key(path)

    # -- issuing ----------------------------------------------------------------------------

    def issue_admin(self, *, now: datetime | None = None) -> ClientFiles:
        files = self.admin_files()
        self._issue(files.cert, files.key, ADMIN_PRINCIPAL, "admin", client=True, now=now)
        self._copy_ca(files.ca)
        return files

    def issue_agency(self, agency: str, *, now: datetime | None = None) -> ClientFiles:
        """A client certificate with CN = ``agency`` (Kafka's principal ``User:<agency>``),
        signed by the agency's own CA."""
        refuse_reserved(agency)
        files = self.agency_files(agency)
        self._issue(
            files.cert, files.key, agency, "agency", client=True, now=now, agency=agency
        )  # fmt: skip
        self._copy_ca(files.ca)
        return files

    # -- enrolment by request: the agency's key never leaves its home ---------------------

    def _pending_key(self, agency: str) -> Path:
        return self._layout.pending_tls_key(agency)

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
        """The agency CA's client certificate for ``agency`` over the public key of
        ``request``, which :mod:`broker.federation.enrolment` has checked. The subject is set
        here, not copied from the request; no private key of the agency is involved."""
        refuse_reserved(agency)
        issuer, issuer_key = self._issuer(agency, now)
        public = request.public_key()
        builder = _leaf(agency, "agency", issuer, now, client=True).public_key(public)
        ski = x509.SubjectKeyIdentifier.from_public_key(public)
        return issuer_key.sign(builder.add_extension(ski, critical=False))

    def holds_agency_key(self, agency: str, certificate: x509.Certificate) -> bool:
        """Whether this home holds the TLS key ``certificate`` certifies (in use or pending)."""
        for path in (self.agency_files(agency).key, self._pending_key(agency)):
            if path.is_file() and self._read_key(path).holds(certificate):
                return True
        return False

    def install_agency_certificate(
        self, agency: str, certificate: x509.Certificate, ca: x509.Certificate
    ) -> ClientFiles:
        """Put ``certificate`` and the root ``ca`` where Kafka clients look for them; a
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
            private_dir(self._layout.nodes_tls_dir)
            folder = self._node_dir(node_id)
        cert, key = folder / "cert.pem", folder / "key.pem"
        self._issue(cert, key, node_principal(node_id), "node", client=False, now=now, hosts=hosts)
        return cert, key

    def node_tls(
        self, node_id: int, *, hosts: Sequence[str] = LOOPBACK_HOSTS, folder: Path | None = None,
        now: datetime | None = None,
    ) -> NodeTls:  # fmt: skip
        """Node ``node_id``'s unencrypted key and chain (node, node CA) for
        ``server.properties``, issuing them first if missing (:meth:`issue_node`)."""
        cert_path, key_path = self.issue_node(node_id, hosts=hosts, folder=folder, now=now)
        key = self._read_key(key_path)
        chain = cert_path.read_text() + _pem(self.node_ca_certificate()).decode()
        return NodeTls(key_pem=key.to_pem().decode(), chain_pem=chain)

    def cluster_tls(
        self, nodes: int, *, hosts: Sequence[str] | None = None, now: datetime | None = None
    ) -> ClusterTls:
        """Everything an :class:`~broker.kafka.EmbeddedKafka` of ``nodes`` nodes needs to run
        secured, issuing what is missing (node certificates, the admin's). ``hosts`` names
        each node's address (node ``i`` is ``hosts[i - 1]``); default: loopback names. The
        client listener starts out trusting every agency CA in force; the provisioning step
        narrows that to the directory's agencies in good standing."""
        if hosts is not None and len(hosts) != nodes:
            raise ConfigError(f"{nodes} nodes need {nodes} hosts, got {len(hosts)}")
        root = self.ensure_ca(now=now)
        node_tls: dict[int, NodeTls] = {}
        for node_id in range(1, nodes + 1):
            names = LOOPBACK_HOSTS if hosts is None else (hosts[node_id - 1],)
            node_tls[node_id] = self.node_tls(node_id, hosts=names, now=now)
        admin = self.issue_admin(now=now)
        supers = tuple(f"User:{node_principal(i)}" for i in range(1, nodes + 1))
        return ClusterTls(
            ca_pem=_pem(root).decode(),
            node_ca_pem=_pem(self.node_ca_certificate()).decode(),
            client_trust_pem=self.client_trust(self.trusted_agencies()),
            nodes=node_tls,
            admin=admin.settings("127.0.0.1:9092", self._password()),
            super_users=(*supers, f"User:{ADMIN_PRINCIPAL}"),
        )

    def _password(self) -> str | None:
        secret = self._settings.passphrase_bytes()
        return secret.decode() if secret else None

    def _issue(
        self, cert_path: Path, key_path: Path, cn: str, unit: str, *, client: bool,
        now: datetime | None, hosts: Sequence[str] = LOOPBACK_HOSTS, agency: str | None = None,
    ) -> None:  # fmt: skip
        now = now or datetime.now(UTC)
        issuer, issuer_key = self._issuer(agency, now)
        if (
            cert_path.is_file()
            and key_path.is_file()
            and self._current(cert_path, key_path, issuer, now, None if client else hosts)
        ):
            return
        private_dir(key_path.parent)
        key = TlsKey.generate()
        builder = key.with_public_key(_leaf(cn, unit, issuer, now, client=client, hosts=hosts))
        cert = issuer_key.sign(builder.add_extension(key.subject_key_identifier(), critical=False))
        # Key first, then the certificate: a crash leaves no certificate without its key.
        key_path.unlink(missing_ok=True)
        self._write_key(key_path, key)
        write_file(cert_path, _pem(cert), mode=PUBLIC_FILE_MODE)

    def _current(
        self, cert_path: Path, key_path: Path, issuer: x509.Certificate, now: datetime,
        hosts: Sequence[str] | None = None,
    ) -> bool:  # fmt: skip
        try:
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            cert.verify_directly_issued_by(issuer)
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


def _ca_name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "fusionbus"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _authority(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _ca(
    subject: x509.Name, issuer: x509.Name, now: datetime, *, until: datetime, path_length: int
) -> x509.CertificateBuilder:
    """A CA certificate's builder, all but its public key (and, below the root, its AKI)."""
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(usage, critical=True)
    )


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
    hosts: Sequence[str] = LOOPBACK_HOSTS, life: timedelta = timedelta(days=_LEAF_DAYS),
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
        .not_valid_after(min(now + life, ca.not_valid_after_utc))
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
        .add_extension(_authority(ca), critical=False)
    )
    if not client:  # a node: the names clients and peers dial
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    return builder
