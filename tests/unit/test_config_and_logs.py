from __future__ import annotations

import io
import json
import logging

import pytest
import structlog
from pydantic import ValidationError

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.logs import configure_logging


def test_producers_always_wait_for_all_replicas_and_are_idempotent() -> None:
    kwargs = aiokafka_kwargs(KafkaSettings(bootstrap="127.0.0.1:9092"), "producer")
    assert kwargs["acks"] == "all"
    assert kwargs["enable_idempotence"] is True
    assert kwargs["bootstrap_servers"] == "127.0.0.1:9092"


def test_consumers_commit_explicitly() -> None:
    kwargs = aiokafka_kwargs(KafkaSettings(), "consumer")
    assert kwargs["enable_auto_commit"] is False
    assert "acks" not in kwargs


def test_bootstrap_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUSIONBUS_BOOTSTRAP", "10.0.0.5:9093,10.0.0.6:9093")
    assert KafkaSettings().bootstrap == "10.0.0.5:9093,10.0.0.6:9093"


@pytest.mark.parametrize("bad", ["", "localhost", "a:1,,b:2", "host:port"])
def test_a_malformed_bootstrap_is_rejected(bad: str) -> None:
    with pytest.raises(ValidationError, match="bootstrap"):
        KafkaSettings(bootstrap=bad)


def test_json_logs_are_one_object_per_line() -> None:
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    structlog.get_logger("t").info("kafka.ready", bootstrap="127.0.0.1:9092", nodes=1)
    structlog.get_logger("t").debug("hidden.below.level")
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "kafka.ready"
    assert event["nodes"] == 1
    assert event["level"] == "info"


def test_an_unknown_log_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging("LOUD", stream=io.StringIO())


def test_aiokafkas_own_unclosed_connection_report_is_kept_off_the_error_stream() -> None:
    """aiokafka closes the socket in the connection's ``__del__`` and then reports it through
    asyncio as an error; below DEBUG that report stays off standard error (a command's one
    error paragraph stays the only line), other asyncio errors do not."""
    out = io.StringIO()
    configure_logging("INFO", json=True, stream=out)
    asyncio_log = logging.getLogger("asyncio")
    asyncio_log.error("Unclosed AIOKafkaConnection\nconn: <AIOKafkaConnection host=x port=1>")
    asyncio_log.error("Task exception was never retrieved")
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["Task exception was never retrieved"]
    out = io.StringIO()
    configure_logging("DEBUG", json=True, stream=out)
    asyncio_log.error("Unclosed AIOKafkaConnection\nconn: <AIOKafkaConnection host=x port=1>")
    assert "Unclosed AIOKafkaConnection" in out.getvalue()
