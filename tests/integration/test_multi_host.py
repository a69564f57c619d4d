"""Several hosts on one machine: a secured 3-node Kafka, each node on its own address, and
three agencies, each in its own home holding only its own keys.

The "hosts" are loopback addresses, 127.0.10.1 to 127.0.10.3 (Linux routes all of
127.0.0.0/8 to ``lo``, so they need no set-up and leave nothing behind). They were chosen
over network namespaces with veth links: every process then binds and dials a distinct
address (client, inter-broker and controller listeners alike), each node's certificate
names only its own address and clients verify it, which is what this test is about; while
namespaces would add root-only set-up, a teardown that a killed test run can skip, and no
check that loopback aliases lack. Ports are picked free on each address, so parallel runs
do not collide. A partition between hosts, the one thing namespaces would add, is not
tested here.

The admin's home runs the cluster (CA, node and admin certificates) and the directory; the
agencies enrol by request (``agency init`` in their own home, ``agency add --request`` in
the admin's, ``agency import`` back), so no agency's private key exists outside its home.
Shown: customs -> anf delivered through the cluster; fia refused by Kafka on narcotics by
every broker; fia's revocation (directory, then ``provision``: ACLs, then every broker's
client truststore without fia's CA) refused by every broker within seconds -- first on its
open connection, by the ACLs, then at any new TLS handshake -- the times printed per host::

    .venv/bin/pytest tests/integration/test_multi_host.py -s -k revocation

Last, the files ``fusionbus kafka config`` writes for a real machine start a node as
they are.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.protocol.metadata import MetadataRequest
from cryptography import x509

from broker.config import KafkaSettings, aiokafka_kwargs, ssl_context
from broker.errors import KafkaRuntimeError
from broker.federation import Federation
from broker.home import HomeLayout, write_config
from broker.kafka import ClusterState, EmbeddedKafka, KafkaDistribution
from broker.kafka._probe import broker_count
from broker.provisioning import provision
from broker.provisioning.pki import ClusterPki
from broker.topics import report_topic
from schemas import example_report
from tests.integration.cli_helpers import delivered_ids, failed, json_lines, run_cli
from tests.unit.federation.homes import agency_keys_of, private_keys

HOSTS = ("127.0.10.1", "127.0.10.2", "127.0.10.3")
AGENCIES = {
    "customs": ("Pakistan Customs", "contraband"),
    "anf": ("Anti Narcotics Force", "narcotics"),
    "fia": ("Federal Investigation Agency", "human_trafficking"),
}
REFUSAL_DEADLINE_S = 60.0  # generous: two shared cores; seconds are expected

pytestmark = pytest.mark.cluster


@dataclass(frozen=True)
class Sites:
    """The admin's home, running the cluster, and each agency's own home."""

    admin: Path
    homes: dict[str, Path]
    state: ClusterState

    @property
    def bootstrap(self) -> str:
        return self.state.bootstrap

    def settings(self, agency: str, host: str) -> KafkaSettings:
        """``agency``'s certificate, from its own home, dialling only the broker at ``host``."""
        [node] = [n for n in self.state.nodes if n.host == host]
        return ClusterPki(self.homes[agency]).agency_files(agency).settings(node.bootstrap)


def ok(*args: str, stdin: str | None = None) -> str:
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 0, failed(result)
    return result.stdout


def enrol(admin: Path, homes: dict[str, Path]) -> None:
    """Each agency makes its keys and request in its own home; the admin admits and grants
    it; the agency imports the bundle; each home gets the admin's current directory. The
    agencies' own steps run side by side, as on separate machines; the admin's one by one."""
    with ThreadPoolExecutor(len(AGENCIES)) as machines:
        made = {
            a: machines.submit(ok, "agency", "init", a, "--name", name, "--home", str(homes[a]))
            for a, (name, _) in AGENCIES.items()
        }
        requests = {a: future.result().strip() for a, future in made.items()}
        bundles = {a: ok("agency", "add", "--request", requests[a], "--home", str(admin)).strip()
                   for a in AGENCIES}  # fmt: skip
        for agency, (_, category) in AGENCIES.items():
            grant = ("--category", category, "--jurisdiction", "PK", "--home", str(admin))
            ok("agency", "grant", agency, *grant)
        imports = [
            machines.submit(ok, "agency", "import", bundles[a], "--home", str(homes[a]))
            for a in AGENCIES
        ]
        for future in imports:
            future.result()
    for home in homes.values():
        for record in HomeLayout(admin).directory_dir.glob("*.jws"):
            shutil.copyfile(record, HomeLayout(home).directory_dir / record.name)


@pytest.fixture(scope="module")
def sites(
    kafka_dist: KafkaDistribution, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sites]:
    root = tmp_path_factory.mktemp("multi-host")
    admin = root / "admin"
    homes = {agency: root / f"{agency}-machine" for agency in AGENCIES}
    Federation.init(admin, now=datetime.now(UTC))
    tls = ClusterPki(admin).cluster_tls(len(HOSTS), hosts=HOSTS)
    cluster = EmbeddedKafka(
        admin / "kafka", nodes=len(HOSTS), port=0, heap_mb=384, secure=tls, hosts=HOSTS,
        ready_timeout=180,
    )  # fmt: skip
    try:
        try:
            state = cluster.start(kafka_dist)
        except KafkaRuntimeError as exc:
            pytest.fail(f"the 3-host secured Kafka did not start: {exc}", pytrace=False)
        write_config(admin, state.bootstrap, secure=True, by="tests/integration/test_multi_host.py")
        enrol(admin, homes)
        yield Sites(admin, homes, state)
    finally:
        cluster.stop()


def topic_error(settings: KafkaSettings, host: str, topic: str) -> int:
    """The error code the broker at ``host`` answers a Metadata request for ``topic`` with,
    sent with ``settings``' certificate to that broker itself (0: described)."""

    async def ask() -> int:
        client = AIOKafkaClient(**aiokafka_kwargs(settings, "admin"))
        await client.bootstrap()
        try:
            [node] = [b.nodeId for b in client.cluster.brokers() if b.host == host]
            response = await client.send(node, MetadataRequest([topic], False))
        finally:
            await client.close()
        [(code, *_)] = response.topics
        return int(code)

    return asyncio.run(ask())


def test_each_node_is_dialled_at_its_own_address_and_its_certificate_names_it(
    sites: Sites,
) -> None:
    assert [n.host for n in sites.state.nodes] == list(HOSTS)
    admin = ClusterPki(sites.admin).admin_files()
    for node in sites.state.nodes:
        # Each broker alone, as a client that knows only its address, sees all three.
        assert asyncio.run(broker_count(admin.settings(node.bootstrap), wait_s=20.0)) == 3
        props = (sites.admin / "kafka" / f"node-{node.node_id}" / "server.properties").read_text()
        assert f"listeners=CLIENT://{node.host}:{node.client_port}," in props
        assert f"CONTROLLER://{node.host}:{node.controller_port}" in props
        cert_path = sites.admin / "tls" / "nodes" / f"node-{node.node_id}" / "cert.pem"
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [str(n.value) for n in names] == [node.host]
    # Clients check the name: node 1's certificate is no good for node 2's address.
    context = ssl_context(admin.settings(sites.bootstrap))
    first = sites.state.nodes[0]
    with (
        socket.create_connection((first.host, first.client_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"),
    ):
        context.wrap_socket(raw, server_hostname=HOSTS[1])


def test_each_agency_home_holds_only_its_own_keys(sites: Sites) -> None:
    keys = agency_keys_of(sites.admin, sites.homes)
    admin_held = {k.public for k in private_keys(sites.admin, skip=["kafka"])}
    for agency, home in sites.homes.items():
        held = private_keys(home)
        assert {k.public for k in held} == keys[agency], (agency, held)
        assert not keys[agency] & admin_held, f"{agency}'s key in the admin's home"
        assert not (home / "tls").exists()  # no CA key, no node or admin certificate


def test_customs_to_anf_is_delivered_through_the_cluster(sites: Sites) -> None:
    report = example_report("narcotics", "PKKHI")
    customs, anf = str(sites.homes["customs"]), str(sites.homes["anf"])
    sent = ok("publish", "--agency", "customs", "--home", customs, stdin=report.model_dump_json())
    assert sent.strip() == str(report.message_id)
    tail = ok(
        "tail", "--agency", "anf", "--from-beginning", "--exit-at-end", "--json",
        "--category", "narcotics", "--jurisdiction", "PK-SD", "--home", anf,
    )  # fmt: skip
    assert str(report.message_id) in delivered_ids(json_lines(tail))


def test_fia_is_refused_narcotics_by_kafka_on_every_broker(sites: Sites) -> None:
    tail = run_cli(
        "tail", "--agency", "fia", "--category", "narcotics", "--jurisdiction", "PK-SD",
        "--from-beginning", "--exit-at-end", "--home", str(sites.homes["fia"]),
    )  # fmt: skip
    assert tail.returncode == 1, failed(tail)
    assert "TopicAuthorizationFailedError" in tail.stderr
    assert "Traceback" not in tail.stderr
    narcotics = report_topic("customs", "PK-SD", "narcotics")
    refused = TopicAuthorizationFailedError.errno
    for host in HOSTS:
        assert topic_error(sites.settings("fia", host), host, narcotics) == refused
        assert topic_error(sites.settings("anf", host), host, narcotics) == 0


async def until_refused(
    settings: KafkaSettings, host: str, topic: str, ready: asyncio.Event, start: asyncio.Event
) -> float:
    """Connect to the broker at ``host``, check it describes ``topic``, set ``ready``; from
    the moment ``start`` is set, ask again every 20 ms until it refuses. The monotonic time
    of the first refusal."""
    client = AIOKafkaClient(**aiokafka_kwargs(settings, "admin"))
    await client.bootstrap()
    try:
        [node] = [b.nodeId for b in client.cluster.brokers() if b.host == host]
        response = await client.send(node, MetadataRequest([topic], False))
        assert response.topics[0][0] == 0, f"{host} refused fia before the revocation"
        ready.set()
        await start.wait()
        deadline = time.monotonic() + REFUSAL_DEADLINE_S
        while time.monotonic() < deadline:
            response = await client.send(node, MetadataRequest([topic], False))
            if response.topics[0][0] == TopicAuthorizationFailedError.errno:
                return time.monotonic()
            await asyncio.sleep(0.02)
    finally:
        await client.close()
    raise AssertionError(f"{host} still answered fia {REFUSAL_DEADLINE_S:.0f} s after the revoke")


def tls_accepts(settings: KafkaSettings) -> bool:
    """Whether a new TLS connection with ``settings``' certificate is served: the handshake
    and one ApiVersions round trip (under TLS 1.3 the broker's refusal of a client
    certificate reaches the client on its first read, not in the handshake)."""
    host, port = settings.bootstrap.rsplit(":", 1)
    request = struct.pack(">hhih", 18, 0, 1, 5) + b"probe"  # ApiVersions v0, client "probe"
    try:
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            ssl_context(settings).wrap_socket(raw, server_hostname=host) as tls,
        ):
            tls.sendall(struct.pack(">i", len(request)) + request)
            return len(tls.recv(4)) == 4
    except (OSError, ssl.SSLError):
        return False


async def until_handshake_refused(settings: KafkaSettings) -> float:
    deadline = time.monotonic() + REFUSAL_DEADLINE_S
    while time.monotonic() < deadline:
        if not await asyncio.to_thread(tls_accepts, settings):
            return time.monotonic()
        await asyncio.sleep(0.05)
    raise AssertionError(f"{settings.bootstrap} still completes fia's TLS handshake")


def test_revocation_of_fia_is_refused_by_every_host_within_seconds(sites: Sites) -> None:
    granted = report_topic("customs", "PK-SD", "human_trafficking")  # fia's own grant
    for host in HOSTS:
        assert tls_accepts(sites.settings("fia", host)), f"{host} refused fia's handshake early"

    async def revoke_and_watch() -> tuple[float, float, list[float], list[float]]:
        start, ready = asyncio.Event(), [asyncio.Event() for _ in HOSTS]
        probes = [
            asyncio.create_task(until_refused(sites.settings("fia", h), h, granted, r, start))
            for h, r in zip(HOSTS, ready, strict=True)
        ]
        all_ready = asyncio.ensure_future(asyncio.gather(*(r.wait() for r in ready)))
        watched: list[asyncio.Future[Any]] = [*probes, all_ready]
        await asyncio.wait(watched, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        for probe in probes:
            if probe.done():  # before the start: it failed
                probe.result()
        assert all_ready.done(), "a broker did not answer fia within 60 s"
        began = time.monotonic()
        start.set()
        now = datetime.now(UTC)
        federation = Federation.load(sites.admin)
        federation.revoke("fia", reason="multi-host revocation test", now=now)
        pki = ClusterPki(sites.admin)
        admin = pki.admin_files().settings(sites.bootstrap)
        handshakes = [
            asyncio.create_task(until_handshake_refused(sites.settings("fia", h))) for h in HOSTS
        ]
        done = await provision(admin, federation.snapshot.agencies(), now=now, pki=pki)
        synced = time.monotonic()
        assert done.acls.deleted, "the revocation removed no ACL"
        assert done.retired == ("fia",)
        assert done.trusted == ("anf", "customs")
        assert done.brokers == (1, 2, 3)
        refused = await asyncio.gather(*probes)
        return began, synced, refused, await asyncio.gather(*handshakes)

    began, synced, refused, cut = asyncio.run(revoke_and_watch())

    def per_host(times: list[float]) -> str:
        return ", ".join(f"{h} {t - began:.2f} s" for h, t in zip(HOSTS, times, strict=True))

    print(
        f"\nmulti-host: revoke -> fia refused on its open connection (ACLs), per broker: "
        f"{per_host(refused)}; new TLS handshakes of fia refused, per broker: {per_host(cut)} "
        f"(directory, ACLs and truststores done after {synced - began:.2f} s)"
    )
    assert all(t - began < REFUSAL_DEADLINE_S for t in [*refused, *cut])
    # The agencies still granted are served by every broker, on new connections too (their
    # CAs stayed in the truststores); fia's handshake stays refused; its own CLI fails.
    for host in HOSTS:
        narcotics = report_topic("customs", "PK-SD", "narcotics")
        assert topic_error(sites.settings("anf", host), host, narcotics) == 0
        assert tls_accepts(sites.settings("customs", host))
        assert not tls_accepts(sites.settings("fia", host))
    # Its home still holds the directory from before the revocation: Kafka refuses anyway.
    tail = run_cli(
        "tail", "--agency", "fia", "--from-beginning", "--exit-at-end",
        "--home", str(sites.homes["fia"]),
    )  # fmt: skip
    assert tail.returncode == 1, failed(tail)
    assert "refused this client's TLS certificate" in tail.stderr, failed(tail)
    assert "has revoked this agency" in tail.stderr, failed(tail)
    assert "Traceback" not in tail.stderr


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def test_the_files_kafka_config_writes_start_a_node_as_they_are(
    kafka_dist: KafkaDistribution, tmp_path: Path
) -> None:
    host = "127.0.11.1"
    home, out, data = tmp_path / "admin", tmp_path / "out", tmp_path / "data"
    client_port, controller_port = _free_port(host), _free_port(host)
    bootstrap = ok(
        "kafka", "config", "--hosts", host, "--out", str(out), "--home", str(home),
        "--port", str(client_port), "--controller-port", str(controller_port),
        "--listen", host, "--log-dir", str(data),
    )  # fmt: skip
    assert bootstrap.strip() == f"{host}:{client_port}"
    folder = out / "node-1"
    props, logs = folder / "server.properties", tmp_path / "logs"
    ident = orjson.loads((out / "cluster.json").read_bytes())["cluster_id"]
    java = [
        str(kafka_dist.java), "-Xmx256m", f"-Dkafka.logs.dir={logs}",
        f"-Dlog4j2.configurationFile={folder / 'log4j2.properties'}",
        "-cp", kafka_dist.classpath,
    ]  # fmt: skip
    formatted = subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "-t", ident, "-c", str(props)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr
    node = subprocess.Popen(
        [*java, "kafka.Kafka", str(props)], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        admin = ClusterPki(home).admin_files().settings(bootstrap.strip())
        deadline, seen = time.monotonic() + 120, 0
        while seen < 1 and time.monotonic() < deadline and node.poll() is None:
            try:
                seen = asyncio.run(broker_count(admin, wait_s=5.0))
            except (KafkaConnectionError, TimeoutError, OSError):  # not up yet
                time.sleep(0.5)
        log = logs / "server.log"
        assert seen == 1, log.read_text()[-3000:] if log.exists() else "no server.log"
        anonymous = KafkaSettings(bootstrap=bootstrap.strip(), tls_ca_file=home / "tls" / "ca.pem")
        with pytest.raises((KafkaConnectionError, TimeoutError)):  # no client certificate
            asyncio.run(broker_count(anonymous, wait_s=5.0))
    finally:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait(timeout=10)
