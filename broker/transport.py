"""The one boundary where the Kafka clients' errors become fusionbus errors.

One translation table per third-party library, as httpx maps httpcore's exceptions:

* :data:`AIOKAFKA_ERRORS` — aiokafka's exception classes (and the error codes its admin
  responses carry, through :func:`kafka_code_error`);
* :data:`CONFLUENT_ERRORS` — confluent-kafka's ``KafkaError`` codes (the ACL admin calls).

``with map_kafka_errors("what we were doing"):`` around any awaited aiokafka call, and
``with map_confluent_errors("..."):`` around a confluent-kafka future, turn an authorization
failure into :class:`AuthorizationError` and anything else into :class:`TransportError`,
keeping the client's notion of ``retriable``, re-raised ``from`` the original. No other
module catches a Kafka client's exception to translate it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from aiokafka import errors as kafka_errors
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka import KafkaException as ConfluentException

from broker.errors import AuthorizationError, FusionbusError, TransportError

__all__ = [
    "AIOKAFKA_ERRORS",
    "CONFLUENT_ERRORS",
    "confluent_error",
    "kafka_code_error",
    "kafka_error",
    "map_confluent_errors",
    "map_kafka_errors",
]

_Translate = Callable[[str, str, bool], FusionbusError]
"""(action, what the client said, retriable) -> our error."""


def _refused(action: str, said: str, retriable: bool) -> FusionbusError:
    return AuthorizationError(
        f"Kafka refused {action}: {said}. Check the agency's grants and the cluster's ACLs "
        "(`fusionbus agency list`; ACLs are changed on the admin's machine)."
    )


def _unreachable(action: str, said: str, retriable: bool) -> FusionbusError:
    return TransportError(
        f"could not reach Kafka while {action}: {said}. Is the cluster running "
        "(`fusionbus kafka status`) and is --bootstrap right?",
        retriable=True,
    )


def _failed(action: str, said: str, retriable: bool) -> FusionbusError:
    return TransportError(f"Kafka failed while {action}: {said}", retriable=retriable)


AIOKAFKA_ERRORS: tuple[tuple[type[kafka_errors.KafkaError], _Translate], ...] = (
    (kafka_errors.TopicAuthorizationFailedError, _refused),
    (kafka_errors.GroupAuthorizationFailedError, _refused),
    (kafka_errors.ClusterAuthorizationFailedError, _refused),
    (kafka_errors.TransactionalIdAuthorizationFailed, _refused),
    (kafka_errors.KafkaConnectionError, _unreachable),
    (kafka_errors.KafkaError, _failed),
)
"""aiokafka exception class -> translation; the first matching row wins."""

CONFLUENT_ERRORS: dict[int, _Translate] = {
    ConfluentError.CLUSTER_AUTHORIZATION_FAILED: _refused,
    ConfluentError.TOPIC_AUTHORIZATION_FAILED: _refused,
    ConfluentError.GROUP_AUTHORIZATION_FAILED: _refused,
    ConfluentError._TRANSPORT: _unreachable,
    ConfluentError._ALL_BROKERS_DOWN: _unreachable,
}
"""confluent-kafka error code -> translation; any other code is a plain failure."""


def _said(exc: kafka_errors.KafkaError) -> str:
    name = type(exc).__name__
    args = ", ".join(str(a) for a in exc.args if str(a))
    return f"{name} ({args})" if args else name


def kafka_error(exc: BaseException, action: str) -> FusionbusError:
    """The fusionbus error for ``exc`` raised while doing ``action`` (e.g. "creating topics")."""
    if isinstance(exc, FusionbusError):
        return exc
    if isinstance(exc, kafka_errors.KafkaError):
        retriable = bool(getattr(exc, "retriable", False))
        for kind, translate in AIOKAFKA_ERRORS:
            if isinstance(exc, kind):
                return translate(action, _said(exc), retriable)
    return TransportError(f"{action} failed: {type(exc).__name__}: {exc}")


def kafka_code_error(code: int, action: str, message: str | None = None) -> FusionbusError:
    """The fusionbus error for a Kafka protocol error ``code`` in an aiokafka response."""
    kind = kafka_errors.for_code(code)
    said = f"{kind.__name__}: {message or kind.description}"
    for row, translate in AIOKAFKA_ERRORS:
        if issubclass(kind, row):
            return translate(action, said, bool(kind.retriable))
    return _failed(action, said, bool(kind.retriable))  # pragma: no cover - KafkaError matches


def confluent_error(exc: ConfluentException, action: str) -> FusionbusError:
    """The fusionbus error for a confluent-kafka ``KafkaException`` raised doing ``action``."""
    error = exc.args[0] if exc.args else None
    if not isinstance(error, ConfluentError):
        return TransportError(f"{action} failed: {type(exc).__name__}: {exc}")
    translate = CONFLUENT_ERRORS.get(error.code(), _failed)
    return translate(action, f"{error.name()}: {error.str()}", bool(error.retriable()))


@contextlib.contextmanager
def map_kafka_errors(action: str) -> Iterator[None]:
    """Translate aiokafka errors raised while doing ``action``, ``from`` the original."""
    try:
        yield
    except kafka_errors.KafkaError as exc:
        raise kafka_error(exc, action) from exc


@contextlib.contextmanager
def map_confluent_errors(action: str) -> Iterator[None]:
    """Translate confluent-kafka errors raised while doing ``action``, ``from`` the original."""
    try:
        yield
    except ConfluentException as exc:
        raise confluent_error(exc, action) from exc
