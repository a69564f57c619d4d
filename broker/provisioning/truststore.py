"""Which agencies' certificates every broker's client listener accepts, set at run time.

Each broker's client listener trusts a PEM list (:data:`~broker.kafka.CLIENT_TRUST_CONFIG`):
the node CA and the issuing CA of every agency in good standing (``broker.provisioning.pki``).
:func:`sync_client_trust` replaces that list on every broker with an ``IncrementalAlterConfigs``
SET, one BROKER resource per call: Kafka refuses a cluster-wide default for a listener's
truststore, checks the new one against the broker's own certificate before taking it, and
keeps it in the KRaft metadata log (it survives a restart and overrides ``server.properties``;
being sensitive, it cannot be read back). A broker applies the change when it replays that
log, a moment after the call returns, so the sync then *checks* it: with a throwaway
:class:`~broker.provisioning.pki.Canary` certificate per agency CA, it dials every broker until
each CA that should be trusted completes a handshake and each retired one is refused.
Connections opened before stay open until they close, which is why ACLs are removed first
(``docs/security.md``).
"""

from __future__ import annotations

import os
import ssl
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import structlog
from confluent_kafka.admin import (  # type: ignore[attr-defined]  # re-exported, not in __all__
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ResourceType,
)

from broker.config import KafkaSettings, confluent_config
from broker.kafka import CLIENT_TRUST_CONFIG
from broker.provisioning.pki import Canary
from broker.transport import map_confluent_errors, try_handshake

__all__ = ["TrustSync", "sync_client_trust"]

log = structlog.get_logger(__name__)

_TIMEOUT_S = 30.0
_PROBE_WAIT_S = 1.0  # a refusal's alert arrives right after the handshake; silence = served


@dataclass(frozen=True, slots=True)
class TrustSync:
    """The brokers told, and how the check went: ``checked_after_s`` is the time from the
    last call until every broker served each trusted agency's canary and refused each
    retired one (None when nothing was to check, or it did not happen in time);
    ``unconfirmed`` says what still disagreed when the wait ran out."""

    brokers: tuple[int, ...]
    checked_after_s: float | None = None
    unconfirmed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Probe:
    broker: int
    host: str
    port: int
    agency: str
    served: bool  # what the new truststore should do with this agency's certificates
    context: ssl.SSLContext


def sync_client_trust(
    settings: KafkaSettings,
    trust_pem: str,
    *,
    trusted: Sequence[Canary] = (),
    retired: Sequence[Canary] = (),
    wait_s: float = 30.0,
) -> TrustSync:
    """Make ``trust_pem`` the client listener's trust on every broker of the cluster
    ``settings`` (the admin's) reaches, then wait up to ``wait_s`` until the canaries of
    ``trusted`` are served and those of ``retired`` refused by every broker. Blocking."""
    admin = AdminClient(confluent_config(settings))
    with map_confluent_errors("listing the brokers"):
        cluster = admin.describe_cluster(request_timeout=_TIMEOUT_S).result()
    nodes = sorted(cluster.nodes, key=lambda node: node.id)
    brokers = tuple(node.id for node in nodes)
    entry = ConfigEntry(CLIENT_TRUST_CONFIG, trust_pem, incremental_operation=AlterConfigOpType.SET)
    for broker in brokers:
        resource = ConfigResource(ResourceType.BROKER, str(broker), incremental_configs=[entry])
        with map_confluent_errors(f"setting broker {broker}'s client truststore"):
            futures = admin.incremental_alter_configs([resource], request_timeout=_TIMEOUT_S)
            futures[resource].result()
    anchors = trust_pem.count("BEGIN CERTIFICATE")
    if not trusted and not retired:
        log.info("truststore.synced", brokers=list(brokers), anchors=anchors)
        return TrustSync(brokers)
    with tempfile.TemporaryDirectory(prefix="fusionbus-canary-") as folder:
        contexts = {
            c.agency: (_context(c, Path(folder)), c in trusted) for c in (*trusted, *retired)
        }
        probes = [
            _Probe(node.id, node.host, node.port, agency, served, context)
            for node in nodes
            for agency, (context, served) in contexts.items()
        ]
        checked, unconfirmed = _until_applied(probes, wait_s)
    log.info(
        "truststore.synced", brokers=list(brokers), anchors=anchors, checked_after_s=checked,
        trusted=[c.agency for c in trusted], retired=[c.agency for c in retired],
        unconfirmed=list(unconfirmed),
    )  # fmt: skip
    return TrustSync(brokers, checked, unconfirmed)


def _context(canary: Canary, folder: Path) -> ssl.SSLContext:
    """A client context presenting ``canary`` (its key only in a 0700 temporary folder, for
    the few seconds of the check: ``ssl`` loads certificates from files alone)."""
    cert, key, root = (folder / f"{canary.agency}.{n}.pem" for n in ("cert", "key", "root"))
    for path, data in ((cert, canary.cert_pem), (key, canary.key_pem), (root, canary.root_pem)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    context = ssl.create_default_context(cafile=str(root))
    context.load_cert_chain(str(cert), str(key))
    key.unlink()
    return context


def _until_applied(probes: list[_Probe], wait_s: float) -> tuple[float | None, tuple[str, ...]]:
    """Dial until every probe finds what it expects; (seconds taken, or None on time-out;
    what still disagrees)."""
    began = time.monotonic()
    pending = probes
    with ThreadPoolExecutor(min(32, len(probes))) as pool:
        while True:
            found = list(
                pool.map(
                    lambda p: try_handshake(p.host, p.port, p.context, timeout_s=_PROBE_WAIT_S),
                    pending,
                )
            )
            pending = [
                p for p, f in zip(pending, found, strict=True)
                if (f.outcome == "served") != p.served
            ]  # fmt: skip
            if not pending:
                return round(time.monotonic() - began, 2), ()
            if time.monotonic() - began > wait_s:
                return None, tuple(
                    f"broker {p.broker} still {'refuses' if p.served else 'serves'} {p.agency}"
                    for p in pending
                )
            time.sleep(0.1)
