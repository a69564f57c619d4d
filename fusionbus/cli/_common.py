"""Options and look-ups shared by the CLI's commands: home, bootstrap, the federation."""

from __future__ import annotations

import asyncio
import os
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import SecretStr, ValidationError

from broker.config import KafkaSettings, default_home
from broker.errors import AuthorizationError, ConfigError, FusionbusError
from broker.federation import Federation, HomeLayout
from broker.federation.enrolment import KafkaHint
from broker.federation.records import AgencyRecord
from broker.provisioning import provision
from broker.provisioning.pki import ClientFiles, ClusterPki
from broker.topics import DIRECTORY_TOPIC
from fusionbus.cli import _params

__all__ = [
    "BootstrapOpt",
    "DirectorySource",
    "HomeOpt",
    "cluster_is_secure",
    "directory_source",
    "enrolled_and_not_revoked",
    "kafka_hint",
    "kafka_settings",
    "load_federation",
    "resolve_home",
    "sync_cluster",
    "write_config",
]

HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", parser=_params.directory, metavar="DIR",
        help="fusionbus home (default: $FUSIONBUS_HOME, else ~/.fusionbus); a command run "
        "--agency ID uses its sites/ID/ when there is one.",
        show_default=False,
    ),
]  # fmt: skip
BootstrapOpt = Annotated[
    str | None,
    typer.Option(
        "--bootstrap", parser=_params.bootstrap, metavar="HOST:PORT",
        help="Kafka bootstrap servers (default: $FUSIONBUS_BOOTSTRAP, else the home's "
        "config.toml, else 127.0.0.1:9092, the embedded Kafka).",
        show_default=False,
    ),
]  # fmt: skip


def resolve_home(home: Path | None, *, agency: str | None = None) -> Path:
    """``--home``, else ``$FUSIONBUS_HOME``, else ``~/.fusionbus``; for a command acting as
    ``agency`` (``--agency ID``), that agency's own home ``sites/<agency>/`` under it when
    there is one (as ``fusionbus up`` makes them: one home per agency beside the admin's)."""
    where = home if home is not None else default_home()
    if agency is not None:
        site = HomeLayout(where).site(agency)
        if site.is_dir():
            return site
    return where


def _config_table(home: Path, name: str) -> dict[str, object]:
    """The table ``[name]`` of ``<home>/config.toml`` (empty if the file or table is absent)."""
    config = home / "config.toml"
    if not config.is_file():
        return {}
    try:
        table = tomllib.loads(config.read_text()).get(name, {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config} is not valid TOML: {exc}") from exc
    return table if isinstance(table, dict) else {}


def _kafka_table(home: Path) -> dict[str, object]:
    return _config_table(home, "kafka")


@dataclass(frozen=True)
class DirectorySource:
    """Where a home reads the federation directory: its ``directory/*.jws`` files
    (``"files"``), or the log-compacted Kafka topic ``topic`` through a
    :class:`~broker.federation.LiveDirectory` (``"topic"``)."""

    kind: Literal["files", "topic"] = "files"
    topic: str = DIRECTORY_TOPIC


def directory_source(home: Path) -> DirectorySource:
    """``[directory] source`` (``"files"`` when absent) and ``topic`` in
    ``<home>/config.toml``; a ConfigError naming the file, key and value otherwise."""
    table = _config_table(home, "directory")
    config = home / "config.toml"
    kind = table.get("source", "files")
    if kind not in {"files", "topic"}:
        raise ConfigError(
            f"{config}: [directory] source = {kind!r} is not a directory source; expected "
            '"files" (the home\'s directory/*.jws, as the admin hands them over) or "topic" '
            f"(the directory topic in Kafka, followed live). Fix it in {config}."
        )
    topic = table.get("topic", DIRECTORY_TOPIC)
    try:
        _params.topic_name(topic)
    except typer.BadParameter as exc:
        raise ConfigError(
            f"{config}: [directory] topic = {topic!r}: {exc.message}. Fix it in {config}."
        ) from None
    return DirectorySource("topic" if kind == "topic" else "files", str(topic))


def kafka_hint(home: Path) -> KafkaHint | None:
    """Where ``<home>/config.toml`` says the cluster is, for an agency's bundle."""
    table = _kafka_table(home)
    if not table.get("bootstrap"):
        return None
    security: Literal["mtls", "plaintext"] = (
        "mtls" if table.get("security") == "mtls" else "plaintext"
    )
    try:
        return KafkaHint(bootstrap=str(table["bootstrap"]), security=security)
    except ValidationError as exc:
        raise ConfigError(f"{home / 'config.toml'}: {_problems(exc)}") from None


def cluster_is_secure(home: Path) -> bool:
    """Whether ``<home>/config.toml`` records a mutual-TLS cluster (``security = "mtls"``)."""
    return _kafka_table(home).get("security") == "mtls"


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
    home.mkdir(parents=True, exist_ok=True)
    source = directory if directory is not None else directory_source(home)
    mode = "mtls" if secure else "plaintext"
    text = f'# Written by `{by}`.\n[kafka]\nbootstrap = "{bootstrap}"\nsecurity = "{mode}"\n'
    if source != DirectorySource():
        text += f'\n[directory]\nsource = "{source.kind}"\ntopic = "{source.topic}"\n'
    (home / "config.toml").write_text(text)


def kafka_settings(
    home: Path, bootstrap: str | None, *, agency: str | None = None
) -> KafkaSettings:
    """``--bootstrap``, else ``FUSIONBUS_BOOTSTRAP``, else ``[kafka] bootstrap`` in
    ``<home>/config.toml``, else the embedded Kafka's default address.

    If ``config.toml`` says ``security = "mtls"`` (and no ``FUSIONBUS_TLS_*`` variables
    say otherwise), the client presents ``agency``'s certificate
    (``<home>/agencies/<agency>/tls/``), or the admin's (``<home>/tls/admin/``) for
    administrative commands. A key password comes from ``FUSIONBUS_TLS_KEY_PASSWORD``, else
    ``FUSIONBUS_PASSPHRASE`` (which encrypts every key fusionbus writes).
    """
    table = _kafka_table(home)
    if bootstrap is None and not os.environ.get("FUSIONBUS_BOOTSTRAP") and table.get("bootstrap"):
        bootstrap = str(table["bootstrap"])
    try:
        base = KafkaSettings() if bootstrap is None else KafkaSettings(bootstrap=bootstrap)
    except ValidationError as exc:
        raise ConfigError(
            f"the Kafka settings from the environment (FUSIONBUS_*) or {home / 'config.toml'} "
            f"are not valid: {_problems(exc)}. Fix or unset them, or pass --bootstrap "
            "HOST:PORT."
        ) from exc
    if base.tls or table.get("security") != "mtls":
        return base
    pki = ClusterPki(home)
    files = pki.agency_files(agency) if agency is not None else pki.admin_files()
    if not files.exist():
        whose = f"agency {agency!r}" if agency is not None else "the platform admin"
        raise ConfigError(
            f"the cluster in {home / 'config.toml'} is secured (mutual TLS), but the TLS "
            f"files of {whose} are missing ({files.cert.parent}). An agency enrolled by "
            "request gets its certificate in the bundle: `fusionbus agency import BUNDLE "
            f"--home {home}`; one whose keys the admin made gets them from `fusionbus agency "
            "add` (or `fusionbus federation sync-acls`): copy that folder here."
        )
    password = base.tls_key_password
    if password is None and os.environ.get("FUSIONBUS_PASSPHRASE"):
        password = SecretStr(os.environ["FUSIONBUS_PASSPHRASE"])
    return _with_files(base, files, password)


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']} (got {e.get('input')!r})"
        for e in exc.errors()
    )


def _with_files(
    base: KafkaSettings, files: ClientFiles, password: SecretStr | None
) -> KafkaSettings:
    return KafkaSettings.model_validate(
        base.model_dump()
        | {
            "tls_ca_file": files.ca,
            "tls_cert_file": files.cert,
            "tls_key_file": files.key,
            "tls_key_password": password,
        }
    )


def sync_cluster(
    federation: Federation, home: Path, *, certify: Sequence[AgencyRecord] = ()
) -> str:
    """On a secured cluster: issue TLS certificates for those of ``certify`` whose keys this
    home holds (enrolled with ``agency add ID --name``; an agency enrolled by request got
    its certificate in its bundle and keeps its key), create the topics the grants need and
    make the ACLs and the brokers' TLS trust match the directory
    (:func:`broker.provisioning.provision`). Returns a sentence for the user (empty on a
    plaintext cluster, where there are no ACLs)."""
    if not cluster_is_secure(home):
        return ""
    pki = ClusterPki(home)
    for record in certify:
        if federation.holds_keys(record.id):
            pki.issue_agency(record.id)
    settings = kafka_settings(home, None)
    now = datetime.now(UTC)
    try:
        done = asyncio.run(provision(settings, federation.snapshot.agencies(), now=now, pki=pki))
    except FusionbusError as exc:
        raise type(exc)(
            f"the directory in {home} was updated, but the cluster's topics, ACLs and TLS "
            f"trust were not: {exc} Fix that, then run `fusionbus federation sync-acls "
            f"--home {home}`."
        ) from exc
    return done.summary()


def load_federation(home: Path) -> Federation:
    return Federation.load(home)


def enrolled_and_not_revoked(
    record: AgencyRecord, *, directory: str, signs: bool = False
) -> AgencyRecord:
    """``record`` (an agency's, from ``directory``: "the directory in HOME", say), checked
    before anything connects to the report topics.

    An agency whose encryption keys are all revoked (or ended) is no recipient and gets no
    ACLs; one about to sign (``signs``) also needs a signing key in force. Such an agency
    is told that, instead of what Kafka would refuse later (a topic, an ACL)."""
    agency = record.id
    now = datetime.now(UTC)
    usages: list[Literal["encryption", "signing"]] = (
        ["encryption", "signing"] if signs else ["encryption"]
    )
    for usage in usages:
        keys = record.encryption_keys if usage == "encryption" else record.signing_keys
        if all(e.revoked_at is not None and e.revoked_at <= now for e in keys):
            raise AuthorizationError(
                f"agency {agency} is revoked: {directory} marks every "
                f"{usage} key of {agency} revoked, so {_EFFECT[usage]} and the cluster gives "
                f"it no access. Ask the federation admin to enrol new keys (`fusionbus agency "
                f"rotate-keys {agency}` on the admin's machine) and to publish the directory."
            )
        if not any(e.usable_at(now) for e in keys):
            until = max(e.valid_until for e in keys).isoformat()
            raise AuthorizationError(
                f"agency {agency} has no {usage} key in force: its keys were valid until "
                f"{until} (or are not valid yet), so {_EFFECT[usage]}. Ask the federation "
                f"admin to rotate them (`fusionbus agency rotate-keys {agency}` on the admin's "
                "machine)."
            )
    return record


_EFFECT = {
    "encryption": "no report is sealed to it",
    "signing": "counterparts reject every report it signs",
}
