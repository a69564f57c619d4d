"""Drive the ``fusionbus`` command line as a user runs it: subprocesses, real streams.

:class:`Fusionbus` binds the CLI to one home and one Kafka through ``FUSIONBUS_HOME`` and
``FUSIONBUS_BOOTSTRAP`` (tests that exercise the ``--home``/``--bootstrap`` flags call
:func:`run_cli` with a clean environment). The aiokafka helpers read and write topics
directly, as an agency with topic access but no keys could.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from broker.config import KafkaSettings, aiokafka_kwargs

CLI = [sys.executable, "-m", "fusionbus"]
Json = dict[str, Any]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any ``FUSIONBUS_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUSIONBUS_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m fusionbus ARGS``; its exit code, stdout and stderr, never raising."""
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(env) if env is not None else clean_env(),
        check=False,
    )


def json_lines(stdout: str) -> list[Json]:
    """Every line of ``stdout`` parsed as one JSON object."""
    return [orjson.loads(line) for line in stdout.splitlines() if line.strip()]


def failed(result: subprocess.CompletedProcess[str]) -> str:
    """What to show when a command did not do what the test expected."""
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


@dataclass(frozen=True)
class Fusionbus:
    """The CLI of one fusionbus home, talking to one Kafka."""

    home: Path
    bootstrap: str

    @property
    def env(self) -> dict[str, str]:
        return clean_env(FUSIONBUS_HOME=str(self.home), FUSIONBUS_BOOTSTRAP=self.bootstrap)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, stdin=stdin, env=self.env)

    def ok(self, *args: str, stdin: str | None = None) -> str:
        """Run a command that must succeed; its stdout."""
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, failed(result)
        return result.stdout

    def federation(self, grants: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        """``federation init``, ``agency add`` customs, anf and fia, then each (category,
        jurisdiction) grant, as an administrator types them."""
        self.ok("federation", "init")
        for agency, name in AGENCIES.items():
            assert self.ok("agency", "add", agency, "--name", name) == f"{agency}\n"
        for agency, pairs in grants.items():
            for category, jurisdiction in pairs:
                self.ok(
                    "agency", "grant", agency, "--category", category,
                    "--jurisdiction", jurisdiction,
                )  # fmt: skip

    def example(self, category: str, jurisdiction: str) -> Json:
        """``report example`` as a JSON document to edit."""
        document: Json = orjson.loads(
            self.ok("report", "example", "--category", category, "--jurisdiction", jurisdiction)
        )
        return document

    def publish(self, agency: str, documents: Sequence[Json]) -> list[str]:
        """Publish JSON lines from stdin; the message ids printed, one per report."""
        ids = self.ok("publish", "--agency", agency, "-", stdin=as_json_lines(documents))
        return ids.split()

    def tail(self, agency: str, *args: str) -> list[Json]:
        """``tail --json --from-beginning --exit-at-end``: every line it printed."""
        out = self.ok(
            "tail", "--agency", agency, "--json", "--from-beginning", "--exit-at-end", *args
        )
        return json_lines(out)


AGENCIES = {
    "customs": "Pakistan Customs, Intelligence & Investigations (FBR)",
    "anf": "Anti Narcotics Force",
    "fia": "Federal Investigation Agency",
}


def as_json_lines(documents: Sequence[Json]) -> str:
    return "".join(orjson.dumps(d).decode() + "\n" for d in documents)


def delivered_ids(lines: Sequence[Json]) -> list[str]:
    """The message ids of the reports a ``tail --json`` handed over, in order."""
    return [line["report"]["message_id"] for line in lines if "report" in line]


# -- straight to the topics, with aiokafka -------------------------------------------------


async def produce(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]
) -> list[tuple[int, int]]:
    """Write (key, value) records in order; their (partition, offset)."""
    producer = AIOKafkaProducer(**aiokafka_kwargs(KafkaSettings(bootstrap=bootstrap), "producer"))
    await producer.start()
    try:
        where = []
        for key, value in records:
            meta = await producer.send_and_wait(topic, value=value, key=key)
            where.append((meta.partition, meta.offset))
        return where
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    done: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    *,
    deadline_s: float = 60.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the beginning until ``done(records so far)`` (or time is up)."""
    consumer = AIOKafkaConsumer(
        topic, **aiokafka_kwargs(KafkaSettings(bootstrap=bootstrap), "consumer")
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + deadline_s
    try:
        while not done(records) and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    """A Kafka record header's value as text, or ``None``."""
    for key, value in record.headers:
        if key == name:
            return bytes(value).decode()
    return None
