"""The secured cluster (mutual TLS + ACLs from the directory), exercised as users run it.

The session fixture ``secure_kafka`` runs a 1-node cluster with a federation of customs
(contraband in PK), anf (narcotics in PK) and fia (human trafficking in PK). Each agency
writes only its own topics, ``fusionbus.reports.<agency>.<area>.<category>``.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from aiokafka.protocol.offset import OffsetRequest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient

from broker.config import KafkaSettings, aiokafka_kwargs, confluent_config
from broker.envelope import header_for
from broker.federation import Federation
from broker.kafka import KafkaDistribution
from broker.kafka._probe import broker_count
from broker.provisioning.pki import ClusterPki
from broker.topics import report_topic
from producers import routing_headers
from schemas import example_report
from tests.conftest import SecureWorld
from tests.unit.envelope.forge import forge

CLI = [sys.executable, "-m", "fusionbus"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=180, input=stdin, check=False
    )


def refused(settings: KafkaSettings) -> None:
    """Connecting with ``settings`` fails (the TLS handshake, or no TLS at all)."""

    async def connect() -> int:
        return await broker_count(settings, wait_s=10.0)

    with pytest.raises((KafkaConnectionError, TimeoutError)):
        asyncio.run(connect())


def test_the_admin_certificate_connects(secure_kafka: SecureWorld) -> None:
    admin = ClusterPki(secure_kafka.home).admin_files().settings(secure_kafka.bootstrap)
    assert asyncio.run(broker_count(admin, wait_s=10.0)) == 1


def test_a_client_without_a_certificate_is_refused(secure_kafka: SecureWorld) -> None:
    ca = ClusterPki(secure_kafka.home).ca_cert_path
    # TLS, trusting the cluster CA, but presenting no client certificate.
    refused(KafkaSettings(bootstrap=secure_kafka.bootstrap, tls_ca_file=ca))
    # No TLS at all.
    refused(KafkaSettings(bootstrap=secure_kafka.bootstrap))


def test_a_certificate_from_an_unknown_ca_is_refused(
    secure_kafka: SecureWorld, tmp_path: Path
) -> None:
    # A rogue CA issues a certificate saying CN=anf; the client trusts the real cluster CA.
    rogue = ClusterPki(tmp_path / "rogue").issue_agency("anf")
    real_ca = ClusterPki(secure_kafka.home).ca_cert_path
    refused(
        KafkaSettings(
            bootstrap=secure_kafka.bootstrap,
            tls_ca_file=real_ca,
            tls_cert_file=rogue.cert,
            tls_key_file=rogue.key,
        )
    )


def test_customs_to_anf_over_mtls(secure_kafka: SecureWorld) -> None:
    home = str(secure_kafka.home)
    report = example_report("narcotics", "PKKHI")
    sent = run("publish", "--agency", "customs", "--home", home, stdin=report.model_dump_json())
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == str(report.message_id)

    tail = run(
        "tail", "--agency", "anf", "--from-beginning", "--exit-at-end", "--json", "--home", home
    )
    assert tail.returncode == 0, tail.stderr
    lines = [orjson.loads(line) for line in tail.stdout.splitlines()]
    got = [x for x in lines if x.get("report", {}).get("message_id") == str(report.message_id)]
    assert len(got) == 1
    assert got[0]["header"]["sender"] == "customs"
    assert got[0]["topic"] == "fusionbus.reports.customs.pk-sd.narcotics"


LATEST, EARLIEST = -1, -2  # ListOffsets' special timestamps; any other is epoch ms


def list_offsets(
    world: SecureWorld, agency: str, topic: str, timestamp: int
) -> list[tuple[int, int]]:
    """Kafka's answer to a ListOffsets request (``end_offsets``, ``offsets_for_times``) sent
    with ``agency``'s certificate straight to the broker for every partition of ``topic``:
    (error code, offset) per partition, error code 0 when it answered.

    Straight to the broker, as a client that knows the topic's name can: a refused metadata
    request stops a well-behaved client early, but proves nothing about ListOffsets itself.
    """
    pki = ClusterPki(world.home)
    admin = AdminClient(confluent_config(pki.admin_files().settings(world.bootstrap)))
    partitions = sorted(admin.list_topics(topic, timeout=30).topics[topic].partitions)
    settings = pki.agency_files(agency).settings(world.bootstrap)

    async def ask() -> list[tuple[int, int]]:
        client = AIOKafkaClient(**aiokafka_kwargs(settings, "admin"))
        await client.bootstrap()
        try:
            [node] = client.cluster.brokers()
            request = OffsetRequest(-1, 0, [(topic, [(p, timestamp) for p in partitions])])
            response = await client.send(node.nodeId, request)
        finally:
            await client.close()
        # (partition, error_code, timestamp, offset[, leader_epoch]) per partition
        return [(row[1], row[3]) for _, rows in response.topics for row in rows]

    answers = asyncio.run(ask())
    assert len(answers) == len(partitions)
    return answers


def test_fia_cannot_count_or_time_narcotics_reports(secure_kafka: SecureWorld) -> None:
    # Traffic analysis: without READ on narcotics, fia must not learn how many narcotics
    # reports a province's topic holds (end offsets) or when they came (offsets for times).
    home, bootstrap = secure_kafka.home, secure_kafka.bootstrap
    report = example_report("narcotics", "PKKHI")  # sender: customs
    sent = run(
        "publish", "--agency", "customs", "--home", str(home), stdin=report.model_dump_json()
    )
    assert sent.returncode == 0, sent.stderr
    topic = report_topic(report.sender, report.jurisdiction, report.category)
    # anf is granted narcotics: Kafka answers it, and the topic holds records.
    answered = list_offsets(secure_kafka, "anf", topic, LATEST)
    assert {code for code, _ in answered} == {0}
    assert sum(end for _, end in answered) >= 1
    for timestamp in (LATEST, EARLIEST, 0):
        refused = list_offsets(secure_kafka, "fia", topic, timestamp)
        assert {code for code, _ in refused} == {TopicAuthorizationFailedError.errno}, refused
    # A well-behaved client learns nothing either: the topic's metadata is refused.
    fia = AdminClient(confluent_config(ClusterPki(home).agency_files("fia").settings(bootstrap)))
    seen = fia.list_topics(topic, timeout=30).topics[topic]
    assert seen.error is not None
    assert seen.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert not seen.partitions


def test_fia_cannot_read_narcotics_kafka_says_so(secure_kafka: SecureWorld) -> None:
    tail = run(
        "tail", "--agency", "fia", "--category", "narcotics", "--jurisdiction", "PK-SD",
        "--from-beginning", "--exit-at-end", "--home", str(secure_kafka.home),
    )  # fmt: skip
    assert tail.returncode == 1
    message = tail.stderr.strip()
    assert "Traceback" not in message
    assert len(message.splitlines()) == 1, message  # one paragraph
    assert "TopicAuthorizationFailedError" in message
    assert report_topic("fia", "PK-SD", "narcotics") in message  # the only one fia can see
    assert "User:fia" in message
    assert "fusionbus agency grant fia" in message


def test_fia_reads_what_it_is_granted(secure_kafka: SecureWorld) -> None:
    tail = run(
        "tail", "--agency", "fia", "--from-beginning", "--exit-at-end",
        "--home", str(secure_kafka.home),
    )  # fmt: skip
    assert tail.returncode == 0, tail.stderr


def test_fia_cannot_publish_as_customs(secure_kafka: SecureWorld) -> None:
    report = example_report("narcotics", "PKKHI")  # sender: customs
    sent = run(
        "publish", "--agency", "fia", "--home", str(secure_kafka.home),
        stdin=report.model_dump_json(),
    )  # fmt: skip
    assert sent.returncode == 1
    assert "names sender 'customs'" in sent.stderr
    assert "signs as 'fia'" in sent.stderr
    assert sent.stdout == ""


def test_agencies_cannot_create_topics_and_are_told_who_does(secure_kafka: SecureWorld) -> None:
    # Nobody holds a grant for arms, so its topics were never created; customs may write
    # report topics but not create them.
    report = example_report("arms", "PKKHI")
    sent = run(
        "publish", "--agency", "customs", "--home", str(secure_kafka.home),
        stdin=report.model_dump_json(),
    )  # fmt: skip
    assert sent.returncode == 1
    assert "Traceback" not in sent.stderr
    assert "Kafka refused creating topic 'fusionbus.reports.customs.pk-sd.arms'" in sent.stderr
    assert "the federation admin creates them" in sent.stderr


def test_fia_cannot_write_customs_topics_and_its_forgery_is_quarantined_by_anf(
    secure_kafka: SecureWorld,
) -> None:
    # fia writes an envelope whose signed header names customs and customs' key, signed
    # with its own key. Kafka refuses it on customs' topic (fia's certificate may write
    # fusionbus.reports.fia.* only); on fia's own topic anf reads it and quarantines it.
    home = secure_kafka.home
    federation = Federation.load(home)
    fia, customs, anf = (federation.snapshot.agency(a) for a in ("fia", "customs", "anf"))
    fia_key = federation.identity("fia").signing_key
    report = example_report("narcotics", "PKKHI")  # sender: customs
    header = header_for(report, customs.signing_kid, [anf.encryption_kid])
    routing = header.model_copy(update={"version": 1}).model_dump(mode="json")  # forge: v1
    envelope = forge(
        clear=routing, signed=routing, payload=report.model_dump_json().encode(),
        to=[federation.identity("anf").encryption_key],
        inner_key=fia_key, inner_kid=customs.signing_kid,
        outer_key=fia_key, outer_kid=customs.signing_kid,
    )  # fmt: skip
    fia_settings = ClusterPki(home).agency_files(fia.id).settings(secure_kafka.bootstrap)

    async def write(sender: str) -> None:
        producer = AIOKafkaProducer(**aiokafka_kwargs(fia_settings, "producer"))
        await producer.start()
        try:
            topic = report_topic(sender, report.jurisdiction, report.category)
            await producer.send_and_wait(topic, envelope, headers=routing_headers(report))
        finally:
            await producer.stop()

    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(write("customs"))
    asyncio.run(write("fia"))
    tail = run(
        "tail", "--agency", "anf", "--from-beginning", "--exit-at-end", "--json",
        "--home", str(home),
    )  # fmt: skip
    assert tail.returncode == 0, tail.stderr
    lines = [orjson.loads(line) for line in tail.stdout.splitlines()]
    assert not any(x.get("report", {}).get("message_id") == str(report.message_id) for x in lines)
    assert any(x.get("quarantined") and x["reason"] == "bad_signature" for x in lines), lines


@pytest.mark.cluster
def test_three_node_secure_start_and_stop(kafka_dist: KafkaDistribution, tmp_path: Path) -> None:
    home = tmp_path / "home"
    started = run(
        "kafka", "start", "--secure", "--nodes", "3", "--port", "0", "--heap-mb", "256",
        "--home", str(home),
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        assert "mutual TLS on every listener" in started.stderr
        bootstrap = started.stdout.strip().splitlines()[-1]
        assert 'security = "mtls"' in (home / "config.toml").read_text()
        for node in (1, 2, 3):
            props = (home / "kafka" / f"node-{node}" / "server.properties").read_text()
            assert "CONTROLLER:SSL" in props
            assert "ssl.client.auth=required" in props
            assert (
                home / "kafka" / f"node-{node}" / "server.properties"
            ).stat().st_mode & 0o077 == 0
        admin = ClusterPki(home).admin_files().settings(bootstrap)
        assert asyncio.run(broker_count(admin, wait_s=10.0)) == 3
        refused(KafkaSettings(bootstrap=bootstrap))
    finally:
        stopped = run("kafka", "stop", "--data-dir", str(home / "kafka"))
    assert stopped.returncode == 0, stopped.stderr


def test_grant_and_revoke_drive_the_acls(secure_kafka: SecureWorld) -> None:
    home = str(secure_kafka.home)
    added = run("agency", "add", "pcg", "--name", "Pakistan Coast Guards", "--home", home)
    assert added.returncode == 0, added.stderr
    assert (secure_kafka.home / "agencies" / "pcg" / "tls" / "cert.pem").is_file()
    tail_narcotics = (
        "tail", "--agency", "pcg", "--category", "narcotics", "--jurisdiction", "PK-SD",
        "--from-beginning", "--exit-at-end", "--home", home,
    )  # fmt: skip
    before = run(*tail_narcotics)
    assert before.returncode == 1
    assert "TopicAuthorizationFailedError" in before.stderr

    granted = run(
        "agency", "grant", "pcg", "--category", "narcotics", "--jurisdiction", "PK-SD",
        "--home", home,
    )  # fmt: skip
    assert granted.returncode == 0, granted.stderr
    # READ on pk-sd narcotics of each sender: customs, anf, fia, pcg, and any agency another
    # test of this session enrolled in the shared home (test_enrolment's, granted one
    # category in PK).
    senders = len(Federation.load(secure_kafka.home).snapshot.agencies())
    assert f"Cluster ACLs in sync: {senders} added, 0 removed." in granted.stderr
    again = run(
        "agency", "grant", "pcg", "--category", "narcotics", "--jurisdiction", "PK-SD",
        "--home", home,
    )  # fmt: skip
    assert "Cluster ACLs in sync: 0 added, 0 removed." in again.stderr
    allowed = run(*tail_narcotics)
    assert allowed.returncode == 0, allowed.stderr

    revoked = run("agency", "revoke", "pcg", "--reason", "test", "--home", home)
    assert revoked.returncode == 0, revoked.stderr
    # pcg's 5 base ACLs and 4 of the audit trail (WRITE its chain, READ every chain, the
    # root's and the anchors), its inbox READ and its WRITE to each other agency's inbox, its
    # READs, everyone's WRITE to pcg's inbox, and everyone's READ on pcg's topics: 8 areas of
    # PK for each other agency's one category (customs contraband, anf narcotics, fia human
    # trafficking, ...): 44 with the three of the fixture alone.
    removed = 5 + 4 + 1 + 2 * (senders - 1) + senders + 8 * (senders - 1)
    assert f"0 added, {removed} removed" in revoked.stderr
    assert "Retired the TLS CA of pcg" in revoked.stderr
    after = run(*tail_narcotics)
    assert after.returncode == 1
    assert "agency pcg is revoked" in after.stderr
    # The subscriber stops early; Kafka itself no longer completes pcg's TLS handshake (the
    # broker takes its new truststore within about a second). On a connection opened before
    # the revocation the ACLs refuse it: tests/integration/test_multi_host.py.
    topic = report_topic("customs", "PK-SD", "narcotics")
    deadline = time.monotonic() + 30
    while True:
        try:
            list_offsets(secure_kafka, "pcg", topic, LATEST)
        except KafkaConnectionError:
            break
        assert time.monotonic() < deadline, "the broker still completes pcg's handshake"
        time.sleep(0.2)


def test_up_runs_the_demo_secured_without_an_extra_step(
    kafka_dist: KafkaDistribution, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    try:
        first = run("up", "--home", str(home), "--port", "0", "--no-gateways")
        assert first.returncode == 0, first.stderr
        assert "mutual TLS on every listener" in first.stderr
        assert "WARNING" not in first.stderr
        bootstrap = first.stdout.strip().splitlines()[-1]
        assert 'security = "mtls"' in (home / "config.toml").read_text()
        tail = run(
            "tail", "--agency", "anf", "--from-beginning", "--exit-at-end", "--json",
            "--home", str(home),
        )  # fmt: skip
        assert tail.returncode == 0, tail.stderr
        assert any(
            orjson.loads(x)["header"]["sender"] == "customs" for x in tail.stdout.splitlines()
        )
        refused(KafkaSettings(bootstrap=bootstrap))
    finally:
        run("kafka", "stop", "--data-dir", str(home / "kafka"))
