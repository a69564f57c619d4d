"""The one boundary where aiokafka's errors become fusionbus errors.

``with map_kafka_errors("what we were doing"):`` around any awaited aiokafka call turns an
authorization failure into :class:`AuthorizationError` and any other ``KafkaError`` into
:class:`TransportError`, keeping aiokafka's ``retriable`` flag, re-raised ``from`` the original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from aiokafka import errors as kafka_errors

from broker.errors import AuthorizationError, TransportError

__all__ = ["map_kafka_errors"]

_AUTHZ = (
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.GroupAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.TransactionalIdAuthorizationFailed,
)


@contextlib.contextmanager
def map_kafka_errors(action: str) -> Iterator[None]:
    """Translate aiokafka errors raised while doing ``action`` (e.g. "creating topics")."""
    try:
        yield
    except _AUTHZ as exc:
        raise AuthorizationError(
            f"Kafka refused {action}: {type(exc).__name__}. Check the agency's grants and the "
            "cluster's ACLs."
        ) from exc
    except kafka_errors.KafkaConnectionError as exc:
        raise TransportError(
            f"could not reach Kafka while {action}: {exc}. Is the cluster running "
            "(`fusionbus kafka status`) and is --bootstrap right?",
            retriable=True,
        ) from exc
    except kafka_errors.KafkaError as exc:
        raise TransportError(
            f"Kafka failed while {action}: {type(exc).__name__}: {exc}",
            retriable=bool(getattr(exc, "retriable", False)),
        ) from exc
