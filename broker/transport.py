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

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from aiokafka import errors as kafka_errors
from confluent_kafka import KafkaError as ConfluentError
from confluent_kafka import KafkaException as ConfluentException

from broker.config import KafkaSettings, ssl_context
from broker.errors import AuthorizationError, FusionbusError, TransportError

__all__ = [
    "AIOKAFKA_ERRORS",
    "CONFLUENT_ERRORS",
    "Handshake",
    "SendFault",
    "confluent_error",
    "kafka_code_error",
    "kafka_error",
    "map_confluent_errors",
    "map_kafka_errors",
    "send_fault",
    "start_client",
    "tls_refusal",
    "try_handshake",
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


def _rebalanced(action: str, said: str, retriable: bool) -> FusionbusError:
    return TransportError(
        f"Kafka refused {action}: the consumer group rebalanced meanwhile ({said}), as after "
        "a lost connection; the group's new generation commits from its next batch on",
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
    (kafka_errors.CommitFailedError, _rebalanced),
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


SendFault = Literal["permanent", "transient"]
"""What a failed send means for a report: ``permanent`` — Kafka will never take it as it is
(the topic is not granted or invalid, the record too large); ``transient`` — send the same
bytes again later, through a new producer (a dead leader, a timeout, an unreachable cluster,
an idempotent producer stuck on its sequence numbers)."""

_PERMANENT_SEND_ERRORS: tuple[type[kafka_errors.KafkaError], ...] = (
    kafka_errors.TopicAuthorizationFailedError,
    kafka_errors.ClusterAuthorizationFailedError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.InvalidTopicError,
    kafka_errors.UnsupportedVersionError,
)


def send_fault(exc: BaseException) -> SendFault:
    """How a send that raised ``exc`` failed (aiokafka's ``OutOfOrderSequenceNumber``,
    ``UnknownProducerId`` and ``InvalidProducerEpoch`` are not retriable for the producer that
    raised them, but are for a new one: they are ``transient``)."""
    if isinstance(exc, (AuthorizationError, *_PERMANENT_SEND_ERRORS)):
        return "permanent"
    if isinstance(exc.__cause__, _PERMANENT_SEND_ERRORS):
        return "permanent"
    return "transient"


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


class _Startable(Protocol):
    async def start(self) -> None: ...


async def start_client(client: _Startable, settings: KafkaSettings, action: str) -> None:
    """``await client.start()`` for an aiokafka client, its errors translated; when it cannot
    reach the cluster over TLS, a handshake probe tells a refused certificate (revoked, or
    not this cluster's) or an unverifiable broker apart from a cluster that is down."""
    try:
        with map_kafka_errors(action):
            await client.start()
    except TransportError as exc:
        if settings.tls_cert_file is None:
            raise
        refusal = await asyncio.to_thread(tls_refusal, settings, action)
        if refusal is None:
            raise
        raise refusal from exc


@dataclass(frozen=True, slots=True)
class Handshake:
    """What one TLS connection attempt to a broker found: ``served`` (the broker accepted
    the client certificate and waits for a request), ``refused`` with what it said, or
    ``unreachable`` (no TCP connection); ``unverified`` carries the broker certificate's
    verification failure."""

    outcome: Literal["served", "refused", "unreachable", "unverified"]
    said: str = ""


def try_handshake(
    host: str, port: int, context: ssl.SSLContext, *, timeout_s: float = 3.0
) -> Handshake:
    """Connect to ``host:port`` over TLS with ``context`` and wait for the broker's first
    word. A broker that accepted the client certificate waits for a request, so the read
    times out; one that refused it sends an alert (TLS 1.3 delivers it on the first read
    after the handshake) or closes the connection. Blocking; takes up to ``timeout_s``."""
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:
        return Handshake("unreachable", f"{type(exc).__name__}: {exc}")
    found = Handshake("refused", "the broker closed the connection")
    try:
        with raw, context.wrap_socket(raw, server_hostname=host) as tls:
            if tls.recv(1) != b"":  # pragma: no cover - a broker speaks only when asked
                found = Handshake("served")
    except ssl.SSLCertVerificationError as exc:
        found = Handshake("unverified", str(exc.verify_message))
    except TimeoutError:
        found = Handshake("served")
    except ssl.SSLError as exc:
        found = Handshake("refused", exc.reason or str(exc))
    except OSError as exc:
        found = Handshake("refused", f"{type(exc).__name__}: {exc}")
    return found


def tls_refusal(
    settings: KafkaSettings, action: str, *, timeout_s: float = 3.0
) -> FusionbusError | None:
    """Why the first bootstrap broker turns this TLS client away, or None if it does not (or
    cannot be reached at all). Blocking."""
    host, _, port = settings.bootstrap.split(",")[0].strip().rpartition(":")
    host = host.strip("[]")
    if not port.isdigit():
        return None
    found = try_handshake(host, int(port), ssl_context(settings), timeout_s=timeout_s)
    if found.outcome == "unverified":
        return TransportError(
            f"could not verify the broker at {host}:{port} while {action}: {found.said}. The "
            f"cluster CA file ({settings.tls_ca_file}) is not the one that certified this "
            f"cluster, or the broker's certificate does not name {host}."
        )
    if found.outcome != "refused":
        return None
    return AuthorizationError(
        f"the cluster refused this client's TLS certificate while {action} ({found.said}): "
        "the federation admin has revoked this agency (its certificate authority left the "
        "brokers' truststores), or the certificate was not issued for this cluster. Ask "
        "the federation admin; `fusionbus agency list` shows the agency's state."
    )
