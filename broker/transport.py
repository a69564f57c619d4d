"""The one boundary where aiokafka's errors become fusionbus errors.

``with map_kafka_errors("what we were doing"):`` around any awaited aiokafka call turns an
authorization failure into :class:`AuthorizationError` and any other ``KafkaError`` into
:class:`TransportError`, keeping aiokafka's ``retriable`` flag, re-raised ``from`` the original.
:func:`kafka_error` does the same translation for an error already caught (a failed send in a
batch).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiokafka import errors as kafka_errors

from broker.errors import AuthorizationError, FusionbusError, TransportError

__all__ = ["kafka_error", "map_kafka_errors"]

_AUTHZ = (
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
)


def kafka_error(exc: BaseException, action: str) -> FusionbusError:
    """The fusionbus error for ``exc`` raised while doing ``action`` (e.g. "creating topics")."""
    if isinstance(exc, FusionbusError):
        return exc
    if isinstance(exc, _AUTHZ):
        return AuthorizationError(
            f"Kafka refused {action}: {type(exc).__name__}. Check the agency's grants and the "
            "cluster's ACLs."
        )
    if isinstance(exc, kafka_errors.KafkaConnectionError):
        return TransportError(
            f"could not reach Kafka while {action}: {exc}. Is the cluster running "
            "(`fusionbus kafka status`) and is --bootstrap right?",
            retriable=True,
        )
    if isinstance(exc, kafka_errors.KafkaError):
        return TransportError(
            f"Kafka failed while {action}: {type(exc).__name__}: {exc}",
            retriable=bool(getattr(exc, "retriable", False)),
        )
    return TransportError(f"{action} failed: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def map_kafka_errors(action: str) -> Iterator[None]:
    """Translate aiokafka errors raised while doing ``action``, ``from`` the original."""
    try:
        yield
    except kafka_errors.KafkaError as exc:
        raise kafka_error(exc, action) from exc
