"""A fusionbus home: the one owner of its layout -- every path, the TLS files, ``config.toml``.

The CLI, the services, the benchmarks and the tests all find a home's files here, and read
or write its ``config.toml`` here; nothing else spells a path under a home. Layout (the
federation's files: ``docs/federation.md``; the TLS files: ``docs/security.md``)::

    <home>/config.toml                    where the cluster is, its mode, the directory source
    <home>/federation/root.pub.jwk        the trust anchor, handed to every party out of band
    <home>/federation/root.key.pem        the root private key (admin's machine only), 0600
    <home>/directory/<agency>.jws         one root-signed AgencyRecord per agency
    <home>/directory/.accepted-revisions.json   the rollback guard of the file store
    <home>/directory/live-state.json      what this home accepted from the directory topic
    <home>/audit/anchors.jws              the audit anchors written here (``docs/audit.md``)
    <home>/agencies/<agency>/             an agency's keys (signing, encryption, JWKS, tls/)
    <home>/enrolment/<agency>.{request,bundle}.jws   enrolment made or issued here
    <home>/sites/<agency>/                a demo agency's own home (``fusionbus up``)
    <home>/tls/                           the cluster's CAs, the admin's and nodes' files

``config.toml``::

    [kafka]
    bootstrap = "127.0.0.1:9092"
    security = "mtls"            # or "plaintext"
    [directory]
    source = "topic"             # or "files" (the default)
    topic = "fusionbus.directory"
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, ValidationError

from broker.config import KafkaSettings, default_home
from broker.errors import ConfigError
from broker.topics import DIRECTORY_TOPIC

__all__ = [
    "ClientFiles",
    "DirectorySource",
    "HomeConfig",
    "HomeLayout",
    "kafka_settings",
    "problems",
    "resolve_home",
    "write_config",
]

_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


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


@dataclass(frozen=True, slots=True)
class HomeLayout:
    """Where each file lives under ``home``."""

    home: Path

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    # -- the federation ------------------------------------------------------------------

    @property
    def federation_dir(self) -> Path:
        return self.home / "federation"

    @property
    def root_public(self) -> Path:
        return self.federation_dir / "root.pub.jwk"

    @property
    def root_private(self) -> Path:
        return self.federation_dir / "root.key.pem"

    @property
    def directory_dir(self) -> Path:
        return self.home / "directory"

    def record(self, agency: str) -> Path:
        return self.directory_dir / f"{agency}.jws"

    @property
    def accepted_revisions(self) -> Path:
        """The highest revision this home accepted per agency (the rollback guard)."""
        return self.directory_dir / ".accepted-revisions.json"

    @property
    def live_state(self) -> Path:
        """The latest record accepted per agency from the directory topic."""
        return self.directory_dir / "live-state.json"

    @property
    def kept_anchors(self) -> Path:
        """Every audit anchor ``fusionbus audit anchor`` wrote from here, one JWS a line: a
        copy no Kafka super user can delete (``docs/audit.md``)."""
        return self.home / "audit" / "anchors.jws"

    # -- agencies' keys -------------------------------------------------------------------

    @property
    def agencies_dir(self) -> Path:
        return self.home / "agencies"

    def agency_dir(self, agency: str) -> Path:
        return self.agencies_dir / agency

    def signing_key(self, agency: str) -> Path:
        return self.agency_dir(agency) / "signing.key.pem"

    def encryption_key(self, agency: str) -> Path:
        return self.agency_dir(agency) / "encryption.key.pem"

    def kept_key(self, agency: str, usage: Literal["signing", "encryption"], kid: str) -> Path:
        """A key file named by its kid: an older decryption key kept after a rotation, or a
        new key written before the rotation's record is (``<usage>.<kid>.key.pem``)."""
        return self.agency_dir(agency) / f"{usage}.{kid}.key.pem"

    def jwks(self, agency: str) -> Path:
        return self.agency_dir(agency) / f"{agency}.jwks.json"

    def agency_tls(self, agency: str) -> ClientFiles:
        """``agency``'s Kafka client files: ``ca.pem`` (the root CA), ``cert.pem``, ``key.pem``."""
        folder = self.agency_dir(agency) / "tls"
        return ClientFiles(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")

    def pending_tls_key(self, agency: str) -> Path:
        """A rotation's new TLS key, until its certificate is imported."""
        return self.agency_dir(agency) / "tls" / "next.key.pem"

    # -- enrolment and demo sites ---------------------------------------------------------

    @property
    def enrolment_dir(self) -> Path:
        """Enrolment requests made here, and response bundles issued here."""
        return self.home / "enrolment"

    def request(self, agency: str) -> Path:
        """The enrolment (or rotation) request ``agency init`` wrote, to hand to the admin."""
        return self.enrolment_dir / f"{agency}.request.jws"

    def bundle(self, agency: str) -> Path:
        """The response bundle the admin issued for ``agency``, to hand back to it."""
        return self.enrolment_dir / f"{agency}.bundle.jws"

    @property
    def sites_dir(self) -> Path:
        return self.home / "sites"

    def site(self, agency: str) -> Path:
        """``agency``'s own home under a demo admin home (``fusionbus up``): it stands for
        the agency's machine, and is no part of the admin's home."""
        return self.sites_dir / agency

    # -- the cluster's TLS files (the admin's machine) ------------------------------------

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    @property
    def root_ca(self) -> Path:
        """The root CA certificate; its key is :attr:`root_ca_key`."""
        return self.tls_dir / "ca.pem"

    @property
    def root_ca_key(self) -> Path:
        return self.tls_dir / "ca.key.pem"

    @property
    def node_ca(self) -> Path:
        return self.tls_dir / "node-ca.pem"

    @property
    def node_ca_key(self) -> Path:
        return self.tls_dir / "node-ca.key.pem"

    @property
    def agency_cas_dir(self) -> Path:
        return self.tls_dir / "agency-cas"

    def agency_ca_dir(self, agency: str) -> Path:
        """``agency``'s issuing CA in force (``ca.pem``, ``ca.key.pem``) and ``retired/``."""
        return self.agency_cas_dir / agency

    @property
    def nodes_tls_dir(self) -> Path:
        return self.tls_dir / "nodes"

    def node_tls_dir(self, node_id: int) -> Path:
        return self.nodes_tls_dir / f"node-{node_id}"

    @property
    def admin_tls(self) -> ClientFiles:
        folder = self.tls_dir / "admin"
        return ClientFiles(folder / "ca.pem", folder / "cert.pem", folder / "key.pem")

    @property
    def kafka_dir(self) -> Path:
        """The embedded cluster's nodes (configuration, data, logs)."""
        return self.home / "kafka"


@dataclass(frozen=True)
class DirectorySource:
    """Where a home reads the federation directory: its ``directory/*.jws`` files
    (``"files"``), or the log-compacted Kafka topic ``topic``, followed live (``"topic"``)."""

    kind: Literal["files", "topic"] = "files"
    topic: str = DIRECTORY_TOPIC


@dataclass(frozen=True)
class HomeConfig:
    """What ``<home>/config.toml`` says (everything optional: a home without the file is a
    plaintext home on the embedded cluster's default address, reading files)."""

    bootstrap: str | None = None
    secure: bool = False
    directory: DirectorySource = DirectorySource()

    @classmethod
    def read(cls, home: Path) -> HomeConfig:
        """The home's configuration; a ConfigError naming the file, key and value."""
        path = HomeLayout(home).config
        try:
            data = tomllib.loads(path.read_text()) if path.is_file() else {}
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from exc
        kafka, directory = _table(data, "kafka"), _table(data, "directory")
        bootstrap = kafka.get("bootstrap")
        return cls(
            bootstrap=str(bootstrap) if bootstrap else None,
            secure=kafka.get("security") == "mtls",
            directory=_directory_source(directory, path),
        )

    def write(self, home: Path, *, by: str) -> None:
        """Write this configuration (``by``: the command that did, in a comment)."""
        home.mkdir(parents=True, exist_ok=True)
        mode = "mtls" if self.secure else "plaintext"
        text = f"# Written by `{by}`.\n[kafka]\n"
        if self.bootstrap is not None:
            text += f'bootstrap = "{self.bootstrap}"\n'
        text += f'security = "{mode}"\n'
        if self.directory != DirectorySource():
            source = self.directory
            text += f'\n[directory]\nsource = "{source.kind}"\ntopic = "{source.topic}"\n'
        HomeLayout(home).config.write_text(text)


def _table(data: dict[str, object], name: str) -> dict[str, object]:
    table = data.get(name, {})
    return table if isinstance(table, dict) else {}


def _directory_source(table: dict[str, object], path: Path) -> DirectorySource:
    kind = table.get("source", "files")
    if kind not in {"files", "topic"}:
        raise ConfigError(
            f"{path}: [directory] source = {kind!r} is not a directory source; expected "
            '"files" (the home\'s directory/*.jws, as the admin hands them over) or "topic" '
            f"(the directory topic in Kafka, followed live). Fix it in {path}."
        )
    topic = table.get("topic", DIRECTORY_TOPIC)
    if not isinstance(topic, str) or _TOPIC.fullmatch(topic) is None or topic in {".", ".."}:
        raise ConfigError(
            f"{path}: [directory] topic = {topic!r} is not a Kafka topic name: expected 1 to "
            f"249 letters, digits, '.', '_' or '-', like {DIRECTORY_TOPIC}. Fix it in {path}."
        )
    return DirectorySource("topic" if kind == "topic" else "files", topic)


def resolve_home(home: Path | None, *, agency: str | None = None) -> Path:
    """``home``, else ``$FUSIONBUS_HOME``, else ``~/.fusionbus``; for a party acting as
    ``agency``, that agency's own home ``sites/<agency>/`` under it when there is one (as
    ``fusionbus up`` makes them: one home per agency beside the admin's)."""
    where = home if home is not None else default_home()
    if agency is not None:
        site = HomeLayout(where).site(agency)
        if site.is_dir():
            return site
    return where


def kafka_settings(
    home: Path, bootstrap: str | None = None, *, agency: str | None = None
) -> KafkaSettings:
    """``bootstrap``, else ``FUSIONBUS_BOOTSTRAP``, else ``[kafka] bootstrap`` in
    ``<home>/config.toml``, else the embedded Kafka's default address.

    If ``config.toml`` says ``security = "mtls"`` (and no ``FUSIONBUS_TLS_*`` variables
    say otherwise), the client presents ``agency``'s certificate
    (``<home>/agencies/<agency>/tls/``), or the admin's (``<home>/tls/admin/``) for
    administrative work. A key password comes from ``FUSIONBUS_TLS_KEY_PASSWORD``, else
    ``FUSIONBUS_PASSPHRASE`` (which encrypts every key fusionbus writes).
    """
    config = HomeConfig.read(home)
    if bootstrap is None and not os.environ.get("FUSIONBUS_BOOTSTRAP") and config.bootstrap:
        bootstrap = config.bootstrap
    try:
        base = KafkaSettings() if bootstrap is None else KafkaSettings(bootstrap=bootstrap)
    except ValidationError as exc:
        raise ConfigError(
            f"the Kafka settings from the environment (FUSIONBUS_*) or {home / 'config.toml'} "
            f"are not valid: {problems(exc)}. Fix or unset them, or pass --bootstrap "
            "HOST:PORT."
        ) from exc
    if base.tls or not config.secure:
        return base
    layout = HomeLayout(home)
    files = layout.agency_tls(agency) if agency is not None else layout.admin_tls
    if not files.exist():
        whose = f"agency {agency!r}" if agency is not None else "the platform admin"
        raise ConfigError(
            f"the cluster in {layout.config} is secured (mutual TLS), but the TLS "
            f"files of {whose} are missing ({files.cert.parent}). An agency enrolled by "
            "request gets its certificate in the bundle: `fusionbus agency import BUNDLE "
            f"--home {home}`; one whose keys the admin made gets them from `fusionbus agency "
            "add` (or `fusionbus federation sync-acls`): copy that folder here."
        )
    password = base.tls_key_password
    if password is None and os.environ.get("FUSIONBUS_PASSPHRASE"):
        password = SecretStr(os.environ["FUSIONBUS_PASSPHRASE"])
    return KafkaSettings.model_validate(
        base.model_dump()
        | {
            "tls_ca_file": files.ca,
            "tls_cert_file": files.cert,
            "tls_key_file": files.key,
            "tls_key_password": password,
        }
    )


def problems(exc: ValidationError) -> str:
    """A pydantic error as one line: each field, what is wrong, what was given."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']} (got {e.get('input')!r})"
        for e in exc.errors()
    )


def write_config(
    home: Path,
    bootstrap: str,
    *,
    secure: bool,
    by: str,
    directory: DirectorySource | None = None,
) -> None:
    """Record where the cluster is and its mode, for every later command, and where the
    home reads the directory (``directory``; by default, what the file said before)."""
    source = directory if directory is not None else HomeConfig.read(home).directory
    HomeConfig(bootstrap, secure, source).write(home, by=by)
