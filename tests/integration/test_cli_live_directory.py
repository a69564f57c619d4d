"""``publish`` and ``tail`` on the live directory (``[directory] source = "topic"``).

A home whose directory files were copied before a revocation (a stale home) must not seal
to the revoked agency, nor accept a report signed with a revoked key, once the admin has
published the directory to its topic: in topic mode the CLI reads the topic, not the files.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy, Federation, publish_directory
from broker.home import HomeLayout
from broker.kafka import ClusterState
from producers import Published, Publisher
from schemas import example_report
from tests.integration.cli_helpers import failed, json_lines, run_cli


@pytest.fixture
def admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Federation:
    monkeypatch.delenv("FUSIONBUS_PASSPHRASE", raising=False)
    now = datetime.now(UTC) - timedelta(minutes=1)
    fed = Federation.init(tmp_path / "admin", now=now)
    for agency, name in (("customs", "Pakistan Customs"), ("anf", "ANF"), ("fia", "FIA")):
        fed.add_agency(agency, name, now=now)
    fed.grant("customs", categories=["cash_smuggling"], jurisdictions=["PK"], now=now)
    fed.grant("anf", categories=["narcotics"], jurisdictions=["PK"], now=now)
    fed.grant("fia", categories=["cash_smuggling"], jurisdictions=["PK"], now=now)
    return fed


def stale_site(admin: Federation, where: Path, agency: str, config: str) -> Path:
    """An agency's machine as a copy made now would leave it: the trust anchor, its own
    keys, the directory files as they are now, and ``config.toml``."""
    source, target = HomeLayout(admin.home), HomeLayout(where)
    target.federation_dir.mkdir(parents=True, mode=0o700)
    shutil.copy(source.root_public, target.root_public)
    shutil.copytree(source.agency_dir(agency), target.agency_dir(agency))
    shutil.copytree(source.directory_dir, target.directory_dir)
    (where / "config.toml").write_text(config)
    return where


def topic_config(bootstrap: str, topic: str) -> str:
    return (
        f'[kafka]\nbootstrap = "{bootstrap}"\n\n[directory]\nsource = "topic"\ntopic = "{topic}"\n'
    )


def cli(*args: str, stdin: str | None = None) -> str:
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 0, failed(result)
    return result.stdout


def test_a_stale_home_in_topic_mode_seals_no_report_to_an_agency_revoked_in_the_topic(
    kafka: ClusterState, admin: Federation, topic: str, tmp_path: Path
) -> None:
    site = stale_site(admin, tmp_path / "customs", "customs", topic_config(kafka.bootstrap, topic))
    fia_kid = admin.snapshot.agency("fia").encryption_kid
    admin.revoke("fia", reason="compromised laptop", now=datetime.now(UTC))
    cli("federation", "publish-directory", "--home", str(admin.home), "--topic", topic,
        "--bootstrap", kafka.bootstrap)  # fmt: skip
    assert fia_kid in {e.kid for e in Federation.load(site).snapshot.agency("fia").encryption_keys}
    assert (
        Federation.load(site).snapshot.agency("fia").encryption_key_at(datetime.now(UTC))
        is not None
    )

    named = example_report("cash_smuggling", "PKTOR")  # asks fia to act
    refused = run_cli("publish", "--agency", "customs", "--home", str(site),
                      stdin=named.model_dump_json())  # fmt: skip
    assert refused.returncode == 1, failed(refused)
    assert "named recipient 'fia' has no encryption key valid" in " ".join(refused.stderr.split())
    handling = named.handling.model_copy(update={"named_recipients": ()})
    report = named.model_copy(update={"handling": handling})
    sent = cli("publish", "--agency", "customs", "--home", str(site),
               stdin=report.model_dump_json())  # fmt: skip
    assert sent.strip() == str(report.message_id)

    raw = cli(
        "tail", "--agency", "customs", "--raw", "--json", "--from-beginning", "--exit-at-end",
        "--category", "cash_smuggling", "--jurisdiction", "PKTOR", "--home", str(site),
    )  # fmt: skip
    [mine] = [
        x for x in json_lines(raw)
        if x.get("header", {}).get("message_id") == str(report.message_id)
    ]  # fmt: skip
    assert mine["verified"] is True
    assert mine["header"]["recipients"] == [admin.snapshot.agency("customs").encryption_kid]
    assert fia_kid not in mine["header"]["recipients"]


def test_tail_in_topic_mode_rejects_a_report_signed_with_a_key_revoked_in_the_topic(
    kafka: ClusterState, admin: Federation, topic: str, tmp_path: Path
) -> None:
    settings = KafkaSettings(bootstrap=kafka.bootstrap)
    started = datetime.now(UTC) - timedelta(seconds=1)
    site = stale_site(admin, tmp_path / "anf", "anf", topic_config(kafka.bootstrap, topic))

    async def send() -> tuple[str, int, int]:
        async with Publisher(
            admin.identity("customs"), admin.snapshot, DisseminationPolicy(admin), settings
        ) as publisher:
            receipt = await publisher.publish(example_report("narcotics", "PKKHI"))
        assert isinstance(receipt, Published)  # no outbox: acknowledged or raised
        return receipt.topic, receipt.partition, receipt.offset

    where = asyncio.run(send())
    admin.revoke(
        "customs", kid=admin.snapshot.agency("customs").signing_kid, reason="stolen", now=started
    )
    # No head: the reader must say so on standard error, in one line.
    asyncio.run(publish_directory(settings, admin.snapshot.signed_records(), topic=topic))

    result = run_cli(
        "tail", "--agency", "anf", "--json", "--from-beginning", "--exit-at-end",
        "--category", "narcotics", "--jurisdiction", "PK-SD", "--home", str(site),
    )  # fmt: skip
    assert result.returncode == 0, failed(result)
    source = "{}/{}@{}".format(*where)
    [mine] = [x for x in json_lines(result.stdout) if x.get("source") == source]
    assert mine["quarantined"] is True
    assert mine["reason"] == "revoked_key"
    [warning] = [x for x in result.stderr.splitlines() if "directory.head_stale" in x]
    assert "no root-signed head" in warning


def test_a_bad_directory_source_is_one_clear_error(admin: Federation, tmp_path: Path) -> None:
    site = stale_site(
        admin, tmp_path / "customs", "customs",
        '[kafka]\nbootstrap = "127.0.0.1:9"\n[directory]\nsource = "kafka"\n',
    )  # fmt: skip
    result = run_cli("tail", "--agency", "customs", "--home", str(site))
    assert result.returncode == 1, failed(result)
    message = " ".join(result.stderr.split())
    assert message.startswith("error:"), message
    assert str(site / "config.toml") in message
    assert "[directory] source" in message
    assert "'kafka'" in message
    assert '"files"' in message
    assert '"topic"' in message
    assert "Traceback" not in result.stderr


def test_an_unreachable_kafka_is_refused_even_with_a_cached_directory(
    admin: Federation, tmp_path: Path
) -> None:
    site = stale_site(
        admin, tmp_path / "customs", "customs", topic_config("127.0.0.1:9", "fusionbus.directory")
    )
    cache = HomeLayout(site).live_state
    cache.write_text('{"v": 1, "records": {}}')
    for command in ("publish", "tail"):
        result = run_cli(
            command, "--agency", "customs", "--home", str(site),
            stdin=example_report("cash_smuggling", "PKTOR").model_dump_json(),
        )  # fmt: skip
        assert result.returncode == 1, failed(result)
        message = " ".join(result.stderr.split())
        assert message.startswith("error:"), message
        assert "directory topic" in message
        assert str(cache) in message
        assert "Traceback" not in result.stderr
