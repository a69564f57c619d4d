"""The audit trail on real Kafka, through the command line as users run it.

A report is published, delivered and acknowledged with ``fusionbus publish``, ``tail`` and
``receipt``; the admin anchors the chains' heads; ``fusionbus audit verify`` finds every
chain intact and ``audit show --report ID`` prints the report's life across both agencies.
Then an attacker tampers as a Kafka super user or an agency with its own credentials could:
a record appended under another agency's key is named forged, and the receiver's chain,
re-written from seq 0 with its own key after its head was anchored, is named rewritten.
Each test has its own federation, with agency ids no other test uses.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import TopicAuthorizationFailedError

from broker._jose import b64d
from broker.audit import (
    GENESIS,
    ROOT_WRITER,
    Act,
    AuditRecord,
    Entry,
    read_topics,
    record_hash,
    sha256_hex,
    sign_audit_record,
)
from broker.config import KafkaSettings, aiokafka_kwargs
from broker.federation import Federation
from broker.home import write_config
from broker.kafka import ClusterState
from broker.keys import SigningKey
from broker.provisioning.pki import ClusterPki
from broker.topics import AUDIT_ANCHOR_TOPIC, ROOT_AUDIT_TOPIC, audit_topic, report_topic
from schemas import example_report
from tests.conftest import SecureWorld
from tests.integration.cli_helpers import (
    Fusionbus,
    clean_env,
    delivered_ids,
    failed,
    json_lines,
    produce,
    run_cli,
)

CATEGORY, AREA = "migrant_smuggling", "PK-GB"  # few other tests read or write these topics
CONTENT = ("heroin", "csqu3054383")  # the example report's drug and container: no record


@dataclass(frozen=True)
class World:
    fb: Fusionbus
    sender: str
    receiver: str

    @property
    def settings(self) -> KafkaSettings:
        return KafkaSettings(bootstrap=self.fb.bootstrap)

    def key(self, agency: str) -> SigningKey:
        return Federation.load(self.fb.home).identity(agency).signing_key

    def chain(self, agency: str) -> list[Entry]:
        topic = audit_topic(agency)
        return asyncio.run(read_topics(self.settings, [topic])).get(topic, [])

    def verify(self) -> tuple[int, dict[str, Any], str]:
        """``audit verify --json``: exit code, this federation's chains by writer, stderr."""
        result = self.fb.run("audit", "verify", "--json")
        chains = {line["writer"]: line for line in json_lines(result.stdout) if "writer" in line}
        assert set(chains) - {ROOT_WRITER} == {self.sender, self.receiver}, failed(result)
        return result.returncode, chains, result.stderr


@pytest.fixture
def world(kafka: ClusterState, tmp_path: Path) -> World:
    tag = uuid.uuid4().hex[:6]
    sender, receiver = f"audout{tag}", f"audin{tag}"
    home = tmp_path / "home"
    now = datetime.now(UTC).replace(microsecond=0)
    federation = Federation.init(home, now=now)
    federation.add_agency(sender, "Sending agency", now=now)
    federation.add_agency(receiver, "Receiving agency", now=now)
    federation.grant(receiver, categories=[CATEGORY], jurisdictions=[AREA], now=now)
    write_config(home, kafka.bootstrap, secure=False, by="tests/integration/test_audit.py")
    return World(Fusionbus(home, kafka.bootstrap), sender, receiver)


def report() -> dict[str, Any]:
    document = example_report(CATEGORY, AREA).model_dump(mode="json")
    for name in ("message_id", "created_at", "sender"):
        del document[name]
    document["handling"]["named_recipients"] = []  # it names anf, not in this federation
    return document


def life(world: World) -> str:
    """Publish a report, deliver it, acknowledge it; its id."""
    [message_id] = world.fb.publish(world.sender, [report()])
    assert delivered_ids(world.fb.tail(world.receiver)) == [message_id]
    world.fb.ok("receipt", message_id, "--agency", world.receiver, "--kind", "acknowledged")
    return message_id


def test_a_reports_life_is_on_the_trail_of_each_agency_and_verifies(world: World) -> None:
    message_id = life(world)
    code, chains, _ = world.verify()
    assert code == 0
    assert (chains[world.sender]["intact"], chains[world.sender]["records"]) == (True, 1)
    assert chains[world.receiver]["intact"]
    assert chains[world.receiver]["records"] >= 2  # and any other test's junk it quarantined

    shown = json_lines(world.fb.ok("audit", "show", "--report", message_id, "--json"))
    assert [(r["writer"], r["act"]) for r in shown] == [
        (world.sender, "publish"),
        (world.receiver, "delivery"),
        (world.receiver, "feedback"),
    ]
    assert shown[0]["parties"] == [world.receiver]
    assert shown[1]["digests"]["envelope"] == shown[0]["digests"]["envelope"]  # the same bytes
    text = world.fb.ok("audit", "show", "--report", message_id)
    assert f"{world.sender}#0 publish" in text
    assert f"{world.receiver}#1 feedback" in text
    for entry in [*world.chain(world.sender), *world.chain(world.receiver)]:
        payload = b64d(entry.value.split(b".")[1]).decode()
        assert not any(word in payload.lower() for word in CONTENT)  # ids, digests, parties

    # A record the receiver's consumer rejects is on its trail, with the reason, never content.
    junk = orjson.dumps({"not": "an envelope", "nonce": uuid.uuid4().hex})
    asyncio.run(produce(world.fb.bootstrap, report_topic(world.sender, AREA, CATEGORY),
                        [(b"junk", junk)]))  # fmt: skip
    assert any(line.get("quarantined") for line in world.fb.tail(world.receiver))
    rejected = [r for r in _records(world.chain(world.receiver)) if r.act == "quarantine"]
    assert ("malformed", sha256_hex(junk)) in [(r.code, r.digests["envelope"]) for r in rejected]

    # A home that lost its chain state takes the head from its topic and goes on.
    for path in (world.fb.home / "state" / world.sender).glob("audit.sqlite*"):
        path.unlink()
    world.fb.publish(world.sender, [report()])
    assert [r.seq for r in _records(world.chain(world.sender))] == [0, 1]
    assert world.verify()[0] == 0


def test_a_forged_record_and_a_chain_rewritten_after_anchoring_are_named(world: World) -> None:
    life(world)
    [second] = world.fb.publish(world.sender, [report()])
    # The admin's act goes on the root's chain (offline), and out with the next anchor.
    world.fb.ok("agency", "grant", world.receiver, "--category", "wildlife", "--jurisdiction", AREA)
    heads = dict(line.split()[:2] for line in world.fb.ok("audit", "anchor").splitlines())
    anchored = len(world.chain(world.receiver)) - 1
    assert heads == {world.sender: "1", world.receiver: str(anchored), ROOT_WRITER: "0"}
    code, chains, _ = world.verify()
    assert code == 0
    assert (chains[ROOT_WRITER]["intact"], chains[ROOT_WRITER]["records"]) == (True, 1)
    [act] = _records(_root_chain(world))
    signed = (world.fb.home / "directory" / f"{world.receiver}.jws").read_bytes().strip()
    assert (act.act, act.parties, act.digests["record"]) == (
        "grant_change",
        (world.receiver,),
        sha256_hex(signed),
    )
    again = world.fb.run("audit", "anchor")
    assert again.returncode == 0, failed(again)
    assert "nothing new to anchor" in again.stderr

    # An agency with its own credentials appends a record under the sender's name.
    head = _records(world.chain(world.sender))[-1]
    forged = AuditRecord(
        writer=world.sender, seq=2, prev=record_hash(head), at=datetime.now(UTC),
        act=Act.RETRACTION, report_id=uuid.UUID(second),
    )  # fmt: skip
    topic = audit_topic(world.sender)
    value = sign_audit_record(forged, world.key(world.receiver))
    asyncio.run(produce(world.fb.bootstrap, topic, [(b"", value)]))
    code, chains, stderr = world.verify()
    assert code == 1, stderr
    assert chains[world.sender]["break"]["kind"] == "forged"
    assert chains[world.sender]["break"]["seq"] == 2
    assert chains[world.receiver]["intact"]
    assert "not intact" in stderr

    # A super user empties the receiver's topic and its own key signs a new history.
    asyncio.run(_empty(world.settings, audit_topic(world.receiver)))
    values, prev = [], GENESIS
    for seq in range(3):
        record = AuditRecord(
            writer=world.receiver, seq=seq, prev=prev, at=datetime.now(UTC), act=Act.DELIVERY,
            report_id=uuid.uuid4(),
        )  # fmt: skip
        values.append((b"", sign_audit_record(record, world.key(world.receiver))))
        prev = record_hash(record)
    asyncio.run(produce(world.fb.bootstrap, audit_topic(world.receiver), values))
    code, chains, _ = world.verify()
    assert code == 1
    assert chains[world.receiver]["break"]["kind"] == "rewritten"
    assert chains[world.receiver]["break"]["seq"] == anchored  # the anchored head
    plain = world.fb.run("audit", "verify")
    assert plain.returncode == 1
    assert f"{world.receiver}: BROKEN" in plain.stdout
    assert "rewritten after anchoring" in plain.stdout

    # Deleting the anchors from Kafka as well does not help: the admin's home keeps them.
    asyncio.run(_empty(world.settings, AUDIT_ANCHOR_TOPIC))
    code, chains, _ = world.verify()
    assert (code, chains[world.receiver]["break"]["kind"]) == (1, "rewritten")


def test_the_documented_commands_run_as_written(world: World) -> None:
    """docs/audit.md's commands, with this test's agencies and report put in."""
    message_id = life(world)
    doc = (Path(__file__).parents[2] / "docs" / "audit.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)
    commands = [shlex.split(line.split("#")[0]) for line in block.splitlines() if line.strip()]
    assert len(commands) == 5
    names = {"customs": world.sender, "anf": world.receiver, "REPORT_ID": message_id}
    for words in commands:
        assert words[0] == "fusionbus"
        args = [names.get(w, w) for w in words[1:] if w != "[--json]"]
        result = world.fb.run(*args)
        assert result.returncode == 0, f"{words}\n{failed(result)}"


def _root_chain(world: World) -> list[Entry]:
    """This federation's records on the root's topic (other tests' federations share it)."""
    found = asyncio.run(read_topics(world.settings, [ROOT_AUDIT_TOPIC]))[ROOT_AUDIT_TOPIC]
    root = Federation.load(world.fb.home).root_kid
    return [e for e in found if orjson.loads(b64d(e.value.split(b".")[0]))["kid"] == root]


def _records(entries: list[Entry]) -> list[AuditRecord]:
    return [AuditRecord.model_validate(orjson.loads(b64d(e.value.split(b".")[1]))) for e in entries]


async def _empty(settings: KafkaSettings, topic: str) -> None:
    """Delete every record of ``topic`` (what a super user may do with DeleteRecords)."""
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings, "admin"))
    await admin.start()
    try:
        part = TopicPartition(topic, 0)
        found = await read_topics(settings, [topic])
        end = found[topic][-1].offset + 1
        await admin.delete_records({part: RecordsToDelete(before_offset=end)})
    finally:
        await admin.close()


def test_on_a_secured_cluster_an_agency_writes_only_its_own_chain_and_reads_them_all(
    secure_kafka: SecureWorld,
) -> None:
    """mTLS and the directory's ACLs: anf's publish and tail land on the chains; fia's
    certificate cannot write customs' chain; anf verifies every chain with its own."""
    home = ["--home", str(secure_kafka.home)]
    env = clean_env()
    report = example_report("narcotics", "PKKHI")
    sent = run_cli("publish", "--agency", "customs", *home, stdin=report.model_dump_json(), env=env)
    assert sent.returncode == 0, failed(sent)
    tail = run_cli(
        "tail", "--agency", "anf", "--from-beginning", "--exit-at-end", "--json", *home, env=env
    )
    assert tail.returncode == 0, failed(tail)

    pki = ClusterPki(secure_kafka.home)
    fia = pki.agency_files("fia").settings(secure_kafka.bootstrap)
    with pytest.raises(TopicAuthorizationFailedError):
        asyncio.run(_write(fia, audit_topic("customs"), b"not signed by customs"))

    anchored = run_cli("audit", "anchor", *home, env=env)  # the admin's certificate
    assert anchored.returncode == 0, failed(anchored)
    verified = run_cli("audit", "verify", "--agency", "anf", "--json", *home, env=env)
    assert verified.returncode == 0, failed(verified)
    chains = {line["writer"]: line for line in json_lines(verified.stdout)}
    assert chains["customs"]["intact"]
    assert chains["anf"]["intact"]
    assert chains["customs"]["anchored"] is not None
    shown = run_cli(
        "audit", "show", "--report", str(report.message_id), "--agency", "fia", "--json", *home,
        env=env,
    )  # fmt: skip
    assert shown.returncode == 0, failed(shown)  # fia reads the trail, not the report
    acts = [(r["writer"], r["act"]) for r in json_lines(shown.stdout)]
    assert acts[0] == ("customs", "publish")
    assert ("anf", "delivery") in acts[1:]  # once per tail from the beginning


async def _write(settings: KafkaSettings, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
