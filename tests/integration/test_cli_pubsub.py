"""Issue 4's "done when", through the ``fusionbus`` command line as an operator runs it.

Each test builds its own federation in its own home with ``federation init`` and ``agency
add|grant``, publishes with ``fusionbus publish`` and reads with ``fusionbus tail``, all as
subprocesses on the session's Kafka. Report topics are shared by every test of the session
(they follow the scheme), so each test uses its own category and area where it can and
always looks only at the message ids it published.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import confluent_kafka
import confluent_kafka.admin
import orjson
import pytest
from aiokafka import ConsumerRecord
from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]
from stdnum import iso6346

from broker.envelope import Reason, Sealer, open_envelope, seal_report
from broker.errors import VerificationError
from broker.federation import DirectorySnapshot, Federation, agency_keys
from broker.kafka import ClusterState, EmbeddedKafka, KafkaDistribution
from broker.keys import Identity
from broker.topics import Header, quarantine_topic, report_topic
from schemas import Report, example_report
from tests.integration.cli_helpers import (
    CLI,
    Fusionbus,
    Json,
    clean_env,
    delivered_ids,
    failed,
    header,
    json_lines,
    produce,
    read_topic,
    run_cli,
)
from tests.integration.test_kafka_cli import java_pids_using


def container_number() -> str:
    """A fresh, valid ISO 6346 container number (owner MSKU, random serial)."""
    stem = f"MSKU{random.randrange(10**6):06d}"
    return stem + str(iso6346.calc_check_digit(stem))


def with_container(report: Json, number: str) -> Json:
    """``report example``'s document about container ``number`` instead of its own."""
    report["subjects"][0]["number"] = number
    report["subjects"][1]["containers"] = [number]
    return report


def encryption_kids(fb: Fusionbus) -> dict[str, str]:
    """Each agency's current encryption key id, as ``agency list --json`` shows them."""
    return {
        line["id"]: line["encryption_kid"] for line in json_lines(fb.ok("agency", "list", "--json"))
    }


def raw_record(bootstrap: str, topic: str, message_id: str) -> ConsumerRecord[bytes, bytes]:
    """The record of ``message_id`` as anyone with read access to ``topic`` sees it."""

    def found(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return any(header(r, Header.MESSAGE_ID) == message_id for r in records)

    records = asyncio.run(read_topic(bootstrap, topic, found))
    [record] = [r for r in records if header(r, Header.MESSAGE_ID) == message_id]
    return record


def test_customs_narcotics_report_reaches_anf_only_and_stays_sealed_to_others(
    kafka: ClusterState, tmp_path: Path
) -> None:
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("narcotics", "PK")], "fia": [("human_trafficking", "PK")]})
    container = container_number()
    report = with_container(fb.example("narcotics", "PKKHI"), container)
    [message_id] = fb.publish("customs", [report])
    assert message_id == report["message_id"]

    # anf, granted narcotics in PK, receives and verifies it (flags instead of env here).
    anf = run_cli(
        "tail", "--agency", "anf", "--json", "--from-beginning", "--exit-at-end",
        "--home", str(fb.home), "--bootstrap", kafka.bootstrap,
    )  # fmt: skip
    assert anf.returncode == 0, failed(anf)
    [line] = [
        x for x in json_lines(anf.stdout) if x.get("report", {}).get("message_id") == message_id
    ]
    topic = report_topic("customs", "PKKHI", "narcotics")
    assert line["topic"] == topic == "fusionbus.reports.customs.pk-sd.narcotics"
    assert line["header"]["sender"] == "customs"
    assert line["header"]["category"] == "narcotics"
    assert line["header"]["jurisdiction"] == "PKKHI"
    assert line["report"]["subjects"][0] == {**report["subjects"][0], "number": container}
    assert line["report"] == report  # every field, as published

    # fia, granted human trafficking only, asks for narcotics and gets nothing of it.
    fia = fb.tail("fia", "--category", "narcotics", "--jurisdiction", "PK")
    assert message_id not in delivered_ids(fia)
    where = f"{topic}/{line['partition']}@{line['offset']}"
    assert where not in {x.get("source") for x in fia}  # skipped quietly, not quarantined

    # Reading the topic's bytes directly does not help a non-recipient.
    record = raw_record(kafka.bootstrap, topic, message_id)
    assert record.value is not None
    assert container.encode() not in record.value
    federation = Federation.load(fb.home)
    now = datetime.now(UTC)
    with pytest.raises(VerificationError) as caught:
        open_envelope(record.value, federation.identity("fia"), federation.snapshot, now)
    assert caught.value.reason == Reason.NOT_RECIPIENT
    opened = open_envelope(record.value, federation.identity("anf"), federation.snapshot, now)
    assert container.encode() in opened.payload  # the same bytes open for a recipient

    # The operator's view: the clear routing header, verified, nothing decrypted.
    raw = fb.tail("customs", "--raw", "--category", "narcotics", "--jurisdiction", "PKKHI")
    [seen] = [x for x in raw if x.get("header", {}).get("message_id") == message_id]
    assert seen["verified"] is True
    assert seen["source"] == where
    assert "report" not in seen
    assert container not in orjson.dumps(seen).decode()
    kids = encryption_kids(fb)
    assert seen["header"]["sender"] == "customs"
    assert (seen["header"]["category"], seen["header"]["jurisdiction"]) == ("narcotics", "PKKHI")
    assert sorted(seen["header"]["recipients"]) == sorted([kids["customs"], kids["anf"]])
    assert kids["fia"] not in seen["header"]["recipients"]


def test_a_red_report_reaches_only_its_named_recipient(kafka: ClusterState, tmp_path: Path) -> None:
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation(
        {"anf": [("precursor_chemicals", "PK")], "fia": [("precursor_chemicals", "PK-PB")]}
    )

    # Naming an agency that is not entitled (fia holds no grant for Sindh) sends nothing.
    refused = fb.example("precursor_chemicals", "PKBQM")
    refused["handling"].update(tlp="TLP:RED", named_recipients=["anf", "fia"])
    result = fb.run("publish", "--agency", "customs", "-", stdin=orjson.dumps(refused).decode())
    assert result.returncode == 1, failed(result)
    assert result.stdout == ""
    assert "named recipient 'fia' is not entitled to precursor_chemicals reports" in result.stderr
    assert "fusionbus agency grant fia" in result.stderr
    assert "Traceback" not in result.stderr

    red = fb.example("precursor_chemicals", "PKLHE")  # Lahore: both anf and fia are entitled
    red["handling"].update(tlp="TLP:RED", named_recipients=["anf"])
    [message_id] = fb.publish("customs", [red])

    anf = delivered_ids(fb.tail("anf"))
    assert anf.count(message_id) == 1
    assert refused["message_id"] not in anf
    assert message_id not in delivered_ids(fb.tail("fia"))

    [seen] = [
        x
        for x in fb.tail(
            "customs", "--raw", "--category", "precursor_chemicals", "--jurisdiction", "PK"
        )
        if x.get("header", {}).get("message_id") in (message_id, refused["message_id"])
    ]
    kids = encryption_kids(fb)
    assert seen["header"]["message_id"] == message_id
    assert seen["header"]["tlp"] == "TLP:RED"
    assert sorted(seen["header"]["recipients"]) == sorted([kids["anf"], kids["customs"]])


def test_an_amber_report_naming_an_agency_outside_its_grants_is_refused_then_delivered(
    kafka: ClusterState, tmp_path: Path
) -> None:
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("arms", "PK-BA")]})
    report = fb.example("arms", "PKGWD")  # Gwadar, in PK-BA
    report["handling"].update(tlp="TLP:AMBER", named_recipients=["fia"])
    report["requested_action"] = "FIA to trace the buyers of the consignment."
    path = tmp_path / "report.json"
    path.write_bytes(orjson.dumps(report))

    # fia holds no grant for arms: publish refuses, names it and the fix, and sends nothing.
    refused = fb.run("publish", "--agency", "customs", str(path))
    assert refused.returncode == 1, failed(refused)
    assert refused.stdout == ""
    message = " ".join(refused.stderr.split())
    assert message.startswith(
        "error: named recipient 'fia' is not entitled to arms reports about PKGWD"
    )
    assert "`fusionbus agency grant fia --category arms --jurisdiction PKGWD`" in message
    assert "remove it from named_recipients" in message
    assert "Traceback" not in refused.stderr
    for tlp in ("TLP:GREEN", "TLP:CLEAR", "TLP:AMBER+STRICT"):
        other = report | {"handling": report["handling"] | {"tlp": tlp}}
        result = fb.run("publish", "--agency", "customs", "-", stdin=orjson.dumps(other).decode())
        assert result.returncode == 1, failed(result)
        assert "named recipient 'fia' is not entitled" in result.stderr
    unknown = report | {"handling": report["handling"] | {"named_recipients": ["fbr"]}}
    result = fb.run("publish", "--agency", "customs", "-", stdin=orjson.dumps(unknown).decode())
    assert result.returncode == 1, failed(result)
    assert "named recipient 'fbr' is not in the federation directory" in result.stderr

    # The fix the message names, on the admin's machine; then the same file reaches fia.
    fb.ok("agency", "grant", "fia", "--category", "arms", "--jurisdiction", "PK-BA")
    [message_id] = fb.ok("publish", "--agency", "customs", str(path)).split()
    assert message_id == report["message_id"]
    assert delivered_ids(fb.tail("fia")).count(message_id) == 1
    # AMBER goes to every entitled agency, and the five refusals sent nothing.
    assert delivered_ids(fb.tail("anf")).count(message_id) == 1


def test_forged_tampered_and_replayed_messages_are_quarantined_and_the_next_arrives(
    kafka: ClusterState, tmp_path: Path
) -> None:
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("counterfeit_goods", "PK-IS")]})
    category, area = "counterfeit_goods", "PK-IS"
    topic = report_topic("customs", area, category)
    first = fb.example(category, area)
    [first_id] = fb.publish("customs", [first])

    federation = Federation.load(fb.home)
    trust = federation.snapshot
    kids = [federation.snapshot.agency(a).encryption_kid for a in ("anf", "customs")]

    def now() -> datetime:
        return datetime.now(UTC)

    customs = Sealer(federation.identity("customs"), trust, clock=now)
    # Replayed: the first report's id again, in a new envelope (same key, same partition).
    replayed = seal_report(customs, Report.model_validate(first), kids)
    # Tampered: a genuine envelope with one byte of its ciphertext flipped.
    tampered = bytearray(seal_report(customs, example_report(category, area), kids))
    at = tampered.index(b'"ciphertext":"') + 20
    tampered[at] = ord("A") if tampered[at] != ord("A") else ord("B")
    # Forged: "customs" signing with a key the federation never enrolled.
    mallory = Identity.generate("customs")
    believed = DirectorySnapshot.of_keys(
        agency_keys(
            "customs", mallory.signing_key.public, mallory.encryption_key,
            valid_from=now() - timedelta(days=1),
        )
    )  # fmt: skip
    for kid in kids:
        known = trust.encryption_key(kid)
        assert known is not None
        believed = believed.with_keys(known)
    forged = seal_report(Sealer(mallory, believed, clock=now), example_report(category, area), kids)
    bad = {"unknown_key": forged, "decrypt_failed": bytes(tampered), "replay": replayed}
    offsets = asyncio.run(
        produce(
            kafka.bootstrap,
            topic,
            [(b"forged", forged), (b"tampered", bytes(tampered)), (first_id.encode(), replayed)],
        )
    )
    sources = {f"{topic}/{p}@{o}": reason for (p, o), reason in zip(offsets, bad, strict=True)}
    [last_id] = fb.publish("customs", [fb.example(category, area)])

    lines = fb.tail("anf")
    flagged = {x["source"]: x for x in lines if x.get("quarantined")}
    for source, reason in sources.items():
        assert source in flagged, f"{reason} record {source} was not flagged: {lines}"
        assert flagged[source]["reason"] == reason
    mine = [i for i in delivered_ids(lines) if i in (first_id, last_id)]
    assert sorted(mine) == sorted([first_id, last_id])  # each once, the last one included

    wanted = {value: reason for reason, value in bad.items()}

    def all_kept(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        return wanted.keys() <= {r.value for r in records}

    kept = asyncio.run(read_topic(kafka.bootstrap, quarantine_topic("anf"), all_kept))
    by_value = {r.value: r for r in kept if r.value in wanted}
    assert by_value.keys() == wanted.keys(), "not every rejected record was kept aside"
    for value, record in by_value.items():
        assert header(record, Header.REASON) == wanted[value]
        assert header(record, Header.SOURCE_TOPIC) == topic
        partition = header(record, Header.SOURCE_PARTITION)
        where = f"{topic}/{partition}@{header(record, Header.SOURCE_OFFSET)}"
        assert sources[where] == wanted[value]

    # Without --json the operator sees the same, flagged in words.
    plain = fb.ok("tail", "--agency", "anf", "--from-beginning", "--exit-at-end")
    for source, reason in sources.items():
        assert f"QUARANTINED {reason}:" in plain
        assert source in plain


async def _tail_group(
    fb: Fusionbus, group: str, kill_after: int | None, errors: BinaryIO, sig: int
) -> tuple[list[bytes], int]:
    """Run ``tail --group`` and SIGKILL it once it printed ``kill_after`` lines (else let it
    run to the end); what it printed, and its exit code."""
    args = ["tail", "--agency", "anf", "--group", group, "--json", "--from-beginning"]
    if kill_after is None:
        args.append("--exit-at-end")
    proc = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=errors, env=fb.env, limit=2**24
    )
    assert proc.stdout is not None
    chunks: list[bytes] = []
    async with asyncio.timeout(180):
        while kill_after is None or len(chunks) < kill_after:
            chunk = await proc.stdout.readline()
            if not chunk:
                break
            chunks.append(chunk)
        if kill_after is not None:
            proc.send_signal(sig)
        chunks.extend((await proc.stdout.read()).splitlines(keepends=True))
        return chunks, await proc.wait()


def tail_group(
    fb: Fusionbus, group: str, *, kill_after: int | None, log: Path, sig: int = signal.SIGKILL
) -> tuple[list[Json], int]:
    """Every complete line a ``tail --group`` run printed, and how many were torn by the
    kill (a line cut short is not a report shown: it will be shown again)."""
    with log.open("ab") as errors:
        chunks, code = asyncio.run(_tail_group(fb, group, kill_after, errors, sig))
    if kill_after is None or sig != signal.SIGKILL:
        assert code == 0, log.read_text()
    else:
        assert code == -signal.SIGKILL, f"tail ended before it was killed:\n{log.read_text()}"
    whole = [orjson.loads(c) for c in chunks if c.endswith(b"\n")]
    return whole, len(chunks) - len(whole)


def test_a_killed_tail_resumes_as_its_group_losing_nothing(
    kafka: ClusterState, tmp_path: Path
) -> None:
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("wildlife", "PK-GB")]})
    template = fb.example("wildlife", "PK-GB")
    del template["message_id"]  # publish gives each its own and prints it
    ids = fb.publish("customs", [template] * 500)
    assert len(set(ids)) == 500

    group = f"desk-{uuid.uuid4().hex[:8]}"
    printed: list[str] = []
    kills = torn = 0
    for kill_after in (120, 120, 120, None):
        lines, broken = tail_group(fb, group, kill_after=kill_after, log=tmp_path / "tail.err")
        printed += delivered_ids(lines)
        torn += broken
        kills += kill_after is not None
        assert kill_after is None or len(set(printed) & set(ids)) < len(ids), "not mid-stream"

    mine = [i for i in printed if i in set(ids)]
    assert set(mine) == set(ids), f"{len(set(ids) - set(mine))} reports were lost"
    duplicates = len(mine) - len(set(mine))
    print(f"kills={kills} duplicates={duplicates} torn_lines={torn}")
    assert duplicates <= kills, f"{duplicates} duplicates after {kills} kills"


def test_publish_refuses_bad_input_and_sends_nothing(kafka: ClusterState, tmp_path: Path) -> None:
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("contraband", "PK")]})
    good = fb.example("contraband", "PKGWD")
    bad = fb.example("contraband", "PKGWD")
    number = container_number()
    bad["subjects"][0]["number"] = number[:-1] + str((int(number[-1]) + 1) % 10)
    source = tmp_path / "reports.jsonl"
    source.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(bad) + b"\n")

    result = fb.run("publish", "--agency", "customs", str(source))
    assert result.returncode == 1, failed(result)
    assert result.stdout == ""  # no message id: nothing was sent
    assert "nothing was published" in result.stderr
    assert "line 2: subjects[0].container.number" in result.stderr
    assert "expected an ISO 6346 container number like CSQU3054383" in result.stderr
    assert "line 1" not in result.stderr

    not_json = fb.run(
        "publish", "--agency", "customs", "-", stdin="container MSKU1234565 at Gwadar\n"
    )
    assert not_json.returncode == 1, failed(not_json)
    assert "line 1 is not JSON" in not_json.stderr
    assert "nothing was published" in not_json.stderr

    unknown = fb.run("publish", "--agency", "dea", "-", stdin=orjson.dumps(good).decode())
    assert unknown.returncode == 1, failed(unknown)
    assert "agency 'dea' is not in the directory" in unknown.stderr
    assert "known: anf, customs, fia" in unknown.stderr

    for outcome in (result, not_json, unknown):
        assert "Traceback" not in outcome.stderr
    # A later good report arrives; the valid first line of the refused file never did.
    [sentinel] = fb.publish("customs", [fb.example("contraband", "PKGWD")])
    anf = delivered_ids(fb.tail("anf"))
    assert sentinel in anf
    assert good["message_id"] not in anf


def test_up_brings_up_a_demo_federation_idempotently_and_stops_cleanly(
    kafka_dist: KafkaDistribution, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    env = clean_env()
    try:
        first = run_cli("up", "--home", str(home), "--port", "0", "--no-gateways", env=env)
        assert first.returncode == 0, failed(first)
        bootstrap = first.stdout.strip().splitlines()[-1]
        host, _, port = bootstrap.rpartition(":")
        assert host == "127.0.0.1"
        assert port.isdigit()
        assert port != "9092"
        root = (home / "federation" / "root.pub.jwk").read_bytes()

        listed = json_lines(
            run_cli("agency", "list", "--home", str(home), "--json", env=env).stdout
        )
        assert {x["id"] for x in listed} == {"customs", "anf", "fia"}

        def samples() -> list[Json]:
            tail = run_cli(
                "tail", "--home", str(home), "--agency", "anf", "--from-beginning",
                "--exit-at-end", "--json", env=env,
            )  # fmt: skip
            assert tail.returncode == 0, failed(tail)
            return [x for x in json_lines(tail.stdout) if "report" in x]

        [narcotics] = [x for x in samples() if x["report"]["category"] == "narcotics"]
        assert narcotics["header"]["sender"] == "customs"
        assert narcotics["report"]["jurisdiction"] == "PKKHI"

        # A standard Kafka client that is not ours (librdkafka, as kcat uses) works with the
        # admin certificate the README names.
        assert standard_client_round_trip(bootstrap, home / "tls" / "admin")

        again = run_cli("up", "--home", str(home), "--port", "0", "--no-gateways", env=env)
        assert again.returncode == 0, failed(again)
        assert again.stdout.strip().splitlines()[-1] == bootstrap
        assert "Using the federation already in" in again.stderr
        assert (home / "federation" / "root.pub.jwk").read_bytes() == root
        relisted = run_cli("agency", "list", "--home", str(home), "--json", env=env)
        assert json_lines(relisted.stdout) == listed  # the same records, no new keys
        # The samples were not published again.
        assert [x for x in samples() if x["report"]["category"] == "narcotics"] == [narcotics]

        stop = run_cli("kafka", "stop", "--data-dir", str(home / "kafka"), env=env)
        assert stop.returncode == 0, failed(stop)
        assert java_pids_using(home) == []
    finally:
        EmbeddedKafka(home / "kafka").stop()  # nothing left behind, whatever failed above


def test_a_tail_stopped_by_sigterm_resumes_showing_nothing_twice(
    kafka: ClusterState, tmp_path: Path
) -> None:
    """SIGTERM stops tail after the batch in hand (at most 500 reports), committed: the next
    run starts after it. More reports than one batch make the stop land mid-stream."""
    fb = Fusionbus(tmp_path / "home", kafka.bootstrap)
    fb.federation({"anf": [("cultural_property", "PK-GB")]})
    template = fb.example("cultural_property", "PK-GB")
    del template["message_id"]
    ids = fb.publish("customs", [template] * 1200)

    group = f"desk-{uuid.uuid4().hex[:8]}"
    first, torn = tail_group(
        fb, group, kill_after=80, log=tmp_path / "tail.err", sig=signal.SIGTERM
    )
    assert torn == 0
    shown_first = [i for i in delivered_ids(first) if i in set(ids)]
    assert 80 <= len(shown_first) < len(ids), "the stop did not land mid-stream"
    rest, torn = tail_group(fb, group, kill_after=None, log=tmp_path / "tail.err")
    mine = shown_first + [i for i in delivered_ids(rest) if i in set(ids)]
    assert set(mine) == set(ids), f"{len(set(ids) - set(mine))} reports were lost"
    assert len(mine) == len(set(mine)), f"{len(mine) - len(set(mine))} shown twice"


def standard_client_round_trip(bootstrap: str, admin: Path) -> bool:
    """librdkafka (confluent-kafka), with the admin's certificate: create, produce, consume."""
    tls: dict[str, str | int | float | bool] = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "ssl",
        "ssl.ca.location": str(admin / "ca.pem"),
        "ssl.certificate.location": str(admin / "cert.pem"),
        "ssl.key.location": str(admin / "key.pem"),
    }
    topic = f"standard-client-{uuid.uuid4().hex[:8]}"
    client = confluent_kafka.admin.AdminClient(tls)
    for future in client.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=60)  # secured nodes create no topic on first use
    producer = confluent_kafka.Producer({**tls, "acks": "all"})
    errors: list[object] = []
    producer.produce(topic, value=b"hello", on_delivery=lambda err, _: errors.append(err))
    assert producer.flush(60) == 0
    assert errors == [None]
    consumer = confluent_kafka.Consumer(
        {**tls, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got = None
    deadline = time.monotonic() + 60
    while got is None and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got = msg.value()
    consumer.close()
    return got == b"hello"
