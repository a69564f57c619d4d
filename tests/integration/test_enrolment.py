"""Enrolment by request on the real secured Kafka, as the admin and an agency run it.

An agency enrolled from its own home (``agency init`` there, ``agency add --request`` on the
admin's, ``agency import`` back) publishes and tails with its own certificate, whose key
never left its home; and ``fusionbus up`` leaves no agency private key in the admin's home,
while the next steps it prints run as written.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import orjson

from broker.federation import Federation
from broker.home import DirectorySource, HomeConfig, HomeLayout
from broker.kafka import EmbeddedKafka, KafkaDistribution
from broker.kafka._probe import broker_count
from broker.provisioning.pki import ClusterPki
from broker.topics import DIRECTORY_TOPIC
from gateway.detached import DetachedGateway
from schemas import example_report
from tests.conftest import SecureWorld
from tests.integration.cli_helpers import CLI, clean_env, delivered_ids, failed, json_lines, run_cli
from tests.integration.test_kafka_cli import java_pids_using
from tests.unit.federation.homes import private_keys
from tests.unit.federation.test_demo_homes import assert_homes_separate


def ok(*args: str, stdin: str | None = None) -> str:
    result = run_cli(*args, stdin=stdin)
    assert result.returncode == 0, failed(result)
    return result.stdout


def copy_directory(admin: Path, site: Path) -> None:
    """Hand the site the admin's current records, as copying ``directory/`` does."""
    for record in HomeLayout(admin).directory_dir.glob("*.jws"):
        shutil.copyfile(record, HomeLayout(site).directory_dir / record.name)


def test_an_agency_enrolled_by_request_publishes_and_tails_with_its_own_certificate(
    secure_kafka: SecureWorld, tmp_path: Path
) -> None:
    admin, site = secure_kafka.home, tmp_path / "asf-machine"
    agency = f"asf-{uuid.uuid4().hex[:6]}"  # the session's cluster is shared: a fresh id
    request = ok("agency", "init", agency, "--name", "Airports Security Force", "--home", str(site))
    added = run_cli("agency", "add", "--request", request.strip(), "--home", str(admin))
    assert added.returncode == 0, failed(added)
    assert "Cluster ACLs in sync" in added.stderr
    grant = ("--category", "narcotics", "--jurisdiction", "PK", "--home", str(admin))
    ok("agency", "grant", agency, *grant)
    ok("agency", "import", added.stdout.strip(), "--home", str(site))
    copy_directory(admin, site)  # the grant, and everyone's current records

    assert not HomeLayout(admin).agency_dir(agency).exists()
    files = ClusterPki(site).agency_files(agency)
    assert files.exist()
    own = files.settings(secure_kafka.bootstrap)
    assert asyncio.run(broker_count(own, wait_s=10.0)) == 1  # its own certificate connects
    assert f'bootstrap = "{secure_kafka.bootstrap}"' in (site / "config.toml").read_text()

    # customs (keys on the admin's machine) -> the new agency, in its own home.
    to_asf = example_report("narcotics", "PKKHI")
    sent = ok(
        "publish", "--agency", "customs", "--home", str(admin), stdin=to_asf.model_dump_json()
    )
    assert sent.strip() == str(to_asf.message_id)
    tail = ok(
        "tail", "--agency", agency, "--from-beginning", "--exit-at-end", "--json",
        "--category", "narcotics", "--jurisdiction", "PK-SD", "--home", str(site),
    )  # fmt: skip
    assert str(to_asf.message_id) in delivered_ids(json_lines(tail))

    # The new agency -> anf, published from its own home with its own keys.
    from_asf = example_report("narcotics", "PKBQM").model_copy(update={"sender": agency})
    ok("publish", "--agency", agency, "--home", str(site), stdin=from_asf.model_dump_json())
    anf = ok(
        "tail", "--agency", "anf", "--from-beginning", "--exit-at-end", "--json",
        "--category", "narcotics", "--jurisdiction", "PK-SD", "--home", str(admin),
    )  # fmt: skip
    mine = str(from_asf.message_id)
    [line] = [x for x in json_lines(anf) if x.get("report", {}).get("message_id") == mine]
    assert line["header"]["sender"] == agency
    assert line["topic"] == f"fusionbus.reports.{agency}.pk-sd.narcotics"
    signing = Federation.load(site).snapshot.agency(agency).signing_kid
    assert line["header"]["sender_kid"] == signing
    assert signing in {k.public for k in private_keys(site)}
    assert signing not in {k.public for k in private_keys(admin)}


def try_next(stderr: str) -> list[str]:
    """The commands ``up`` printed under "Try next:"."""
    block = stderr.split("Try next:", 1)[1]
    return [line.strip() for line in block.splitlines() if line.startswith("  fusionbus ")]


def run_as_written(command: str, cwd: Path) -> str:
    """Run one printed command as a shell would (``fusionbus`` being our CLI, ``> FILE``
    writing standard output to FILE); its standard output."""
    words = shlex.split(command)
    target = None
    if ">" in words:
        at = words.index(">")
        words, target = words[:at], words[at + 1]
    result = subprocess.run(
        [*CLI, *words[1:]], capture_output=True, text=True, timeout=300, env=clean_env(),
        cwd=cwd, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{command}\n{failed(result)}"
    if target is not None:
        (cwd / target).write_text(result.stdout)
    return result.stdout


def files_of(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and "kafka" not in p.relative_to(home).parts[:1]
        and p.name not in {"config.toml", "gateway.log", "live-state.json"}
        and p.suffix not in {".sqlite", ".sqlite-wal", ".sqlite-shm"}
    }  # fmt: skip


_DASHBOARD = re.compile(
    r"^  (?P<agency>[a-z]+) +(?P<url>http://\S+)/  token (?P<token>\S+)(?P<note>.*)$"
)


def dashboards(stderr: str) -> dict[str, tuple[str, str, str]]:
    """The dashboards ``up`` printed: agency -> (URL, token, note)."""
    found = {}
    for line in stderr.splitlines():
        if (match := _DASHBOARD.match(line)) is not None:
            found[match["agency"]] = (match["url"], match["token"], match["note"].strip())
    return found


def whoami(url: str, token: str) -> httpx.Response:
    return httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def wait_for_report(url: str, token: str, category: str) -> dict[str, object]:
    """The first report of ``category`` anf's gateway received (it subscribes on start)."""
    deadline = time.monotonic() + 90
    while True:
        answer = httpx.get(
            f"{url}/v1/reports", params={"category": category},
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        if items := answer.json()["items"]:
            found: dict[str, object] = items[0]
            return found
        assert time.monotonic() < deadline, f"no {category} report reached {url}"
        time.sleep(0.5)


def stop_gateways(home: Path) -> None:
    for agency in ("customs", "anf", "fia"):
        DetachedGateway(HomeLayout(home).site(agency), agency).stop()


def test_up_keeps_every_agency_key_out_of_the_admins_home_and_its_next_steps_run(  # noqa: PLR0915 - one story
    kafka_dist: KafkaDistribution, tmp_path: Path
) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    try:
        first = run_cli(
            "up", "--home", str(home), "--port", "0", "--gateway-port", "0", env=clean_env()
        )
        assert first.returncode == 0, failed(first)
        assert "each enrolled by request from its own home" in " ".join(first.stderr.split())
        assert_homes_separate(home)
        for agency in ("customs", "anf", "fia"):  # the sites follow the directory topic
            site = HomeLayout(home).site(agency)
            assert HomeConfig.read(site).directory == DirectorySource("topic", DIRECTORY_TOPIC)
        assert HomeConfig.read(home).directory == DirectorySource("files")
        steps = try_next(first.stderr)
        assert len(steps) == 6, first.stderr
        outputs = {step: run_as_written(step, work) for step in steps}
        anf = outputs[steps[0]]
        assert "customs narcotics PKKHI" in anf
        fia = json_lines(outputs[steps[1]])
        assert {x["header"]["category"] for x in fia} >= {"human_trafficking", "cash_smuggling"}
        published = outputs[steps[3]].strip()
        assert published == orjson.loads((work / "report.json").read_text())["message_id"]
        assert "anf" in outputs[steps[5]]
        for agency in ("anf", "fia", "customs"):  # the tails and publish read the topic
            assert HomeLayout(HomeLayout(home).site(agency)).live_state.is_file()
        assert_homes_separate(home)  # running them added no key anywhere

        # Each agency's gateway runs, and the printed token logs in to it as an operator.
        boards = dashboards(first.stderr)
        assert sorted(boards) == ["anf", "customs", "fia"], first.stderr
        for agency, (url, token, note) in boards.items():
            assert note == ""
            assert whoami(url, token).json() == {
                "agency": agency, "token_id": token.split("_")[2], "role": "operator",
            }  # fmt: skip
        anf_url, anf_token, _ = boards["anf"]
        sample = wait_for_report(anf_url, anf_token, "narcotics")
        assert sample["header"]["sender"] == "customs"  # type: ignore[index]
        assert whoami(anf_url, boards["fia"][1]).status_code == 401  # fia's token, anf's gateway
        second = run_cli(
            "gateway", "--agency", "anf", "--home", str(home), "--listen", "127.0.0.1:0",
            env=clean_env(),
        )  # fmt: skip
        assert second.returncode == 1, failed(second)
        assert "anf's gateway already runs in" in second.stderr

        before = files_of(home)
        again = run_cli(
            "up", "--home", str(home), "--port", "0", "--gateway-port", "0", env=clean_env()
        )
        assert again.returncode == 0, failed(again)
        assert "Using the federation already in" in again.stderr
        assert files_of(home) == before  # every key, record, certificate and bundle reused
        reboards = dashboards(again.stderr)
        for agency, (url, token, note) in reboards.items():  # the same gateways, new tokens
            assert (url, note) == (boards[agency][0], "(already running)")
            assert whoami(url, token).status_code == 200
            assert whoami(url, boards[agency][1]).status_code == 401  # the first one revoked

        pids = [DetachedGateway(HomeLayout(home).site(a), a).running() for a in boards]
        stop = run_cli("down", "--home", str(home), env=clean_env())
        assert stop.returncode == 0, failed(stop)
        assert "Stopped the gateway of anf" in stop.stderr
        assert java_pids_using(home) == []
        for running in pids:
            assert running is not None
            assert not Path(f"/proc/{running.pid}").exists()
    finally:
        stop_gateways(home)
        EmbeddedKafka(home / "kafka").stop()
