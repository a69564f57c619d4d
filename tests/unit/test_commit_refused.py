"""A commit Kafka refuses because the group rebalanced is a retriable TransportError."""

from __future__ import annotations

from aiokafka import errors as kafka_errors

from broker.errors import TransportError
from broker.transport import kafka_error


def test_a_commit_refused_after_a_rebalance_is_retriable() -> None:
    error = kafka_error(kafka_errors.CommitFailedError("rebalanced"), "committing offsets")
    assert isinstance(error, TransportError)
    assert error.retriable
    assert "the consumer group rebalanced meanwhile" in str(error)


def test_other_commit_failures_keep_the_clients_notion_of_retriable() -> None:
    error = kafka_error(kafka_errors.GroupAuthorizationFailedError(), "committing offsets")
    assert not isinstance(error, TransportError)  # refused: an AuthorizationError
    failed = kafka_error(kafka_errors.InvalidCommitOffsetSizeError(), "committing offsets")
    assert isinstance(failed, TransportError)
    assert not failed.retriable
