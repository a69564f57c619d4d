"""The :class:`AuditWriter`: an agency's acts, chained, signed and sent to its audit topic.

::

    async with AuditWriter.for_home(home, identity, settings) as audit:
        audit.record(Act.PUBLISH, message_id=..., report_id=..., parties=["anf"],
                           digests={"envelope": sha256_hex(envelope)})

:meth:`AuditWriter.record` chains and signs the record and puts it in the home's outbox
(:class:`~broker.audit.state.AuditState`), then returns: it never waits for Kafka, and it
is a plain call (no await), so a hook adds no point where the caller's task could be
cancelled between handing a report over and marking it. A
background task sends the outbox in seq order and takes out what Kafka acknowledged; a send
that fails is logged (``audit.send_failed``) and retried, and whatever is still unsent at
:meth:`~AuditWriter.stop` (after a bounded wait) is sent by the next writer of that home.
An append that fails (a full disk) is logged (``audit.append_failed``) and never raised:
**no audit failure loses or blocks a report**; the cost is a record missing from the trail,
which the log says.

When the home holds no chain state (a new machine, a wiped home), :meth:`start` takes the
head from the last authentic record of the agency's own topic, so the chain goes on
instead of forking from seq 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from aiokafka import AIOKafkaProducer

from broker.audit._kafka import read_topics
from broker.audit.record import (
    ROOT_WRITER,
    AuditRecord,
    inspect,
    sign_audit_record,
)
from broker.audit.state import AuditState
from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import FusionbusError
from broker.federation.snapshot import DirectorySnapshot, SigningKeyRecord
from broker.keys import Identity, SigningKey, kid_of
from broker.provisioning.topics import ensure_topics
from broker.topics import ROOT_AUDIT_TOPIC, audit_topic
from broker.transport import kafka_error, map_kafka_errors

__all__ = ["AuditWriter", "append_record", "own_key"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def own_key(writer: str, key: SigningKey) -> DirectorySnapshot:
    """A directory of one key, ``writer``'s: what a writer checks its own records with, and
    what the root's chain is verified with."""
    record = SigningKeyRecord(
        kid=kid_of(key), agency=writer, key=key.public,
        valid_from=datetime.min.replace(tzinfo=UTC),
    )  # fmt: skip
    return DirectorySnapshot.of_keys([record])


def append_record(
    state: AuditState,
    writer: str,
    key: SigningKey,
    act: str,
    *,
    at: datetime,
    message_id: uuid.UUID | None = None,
    report_id: uuid.UUID | None = None,
    digests: Mapping[str, str] | None = None,
    parties: Iterable[str] = (),
    code: str | None = None,
) -> AuditRecord:
    """Chain, sign and put one record in ``state``'s outbox (blocking; no Kafka): what
    :meth:`AuditWriter.record` does, and what the admin's offline directory commands do."""

    def make(seq: int, prev: str) -> tuple[AuditRecord, bytes]:
        record = AuditRecord(
            writer=writer, seq=seq, prev=prev, at=at, act=act, message_id=message_id,
            report_id=report_id, digests=dict(digests or {}), parties=tuple(parties), code=code,
        )  # fmt: skip
        return record, sign_audit_record(record, key)

    return state.append(make)


class AuditWriter:
    """Writes one writer's audit chain: an agency's to ``fusionbus.audit.<agency>``
    (:meth:`for_home`), or the federation root's to ``fusionbus.audit-root``
    (:meth:`for_root`)."""

    def __init__(
        self,
        writer: str,
        key: SigningKey,
        settings: KafkaSettings,
        state: AuditState,
        *,
        topic: str | None = None,
        clock: Clock = _utcnow,
        retry_s: float = 2.0,
        stop_wait_s: float = 10.0,
    ) -> None:
        self.agency = writer
        self.topic = topic if topic is not None else audit_topic(writer)
        self._key = key
        self._settings = settings
        self._state = state
        self._clock = clock
        self._retry_s = retry_s
        self._stop_wait_s = stop_wait_s
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_home(
        cls, home: Path, identity: Identity, settings: KafkaSettings, *, clock: Clock = _utcnow
    ) -> AuditWriter:
        """The writer of ``identity`` with its state in ``<home>/state/<agency>/``."""
        state = AuditState.for_home(home, identity.agency)
        return cls(identity.agency, identity.signing_key, settings, state, clock=clock)

    @classmethod
    def for_root(cls, home: Path, root: SigningKey, settings: KafkaSettings) -> AuditWriter:
        """The federation root's writer (the admin's acts), state in ``<home>/state/_root/``."""
        state = AuditState.for_home(home, ROOT_WRITER)
        return cls(ROOT_WRITER, root, settings, state, topic=ROOT_AUDIT_TOPIC)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Recover the head if the home has none, then start sending in the background.
        Kafka being away is no error here: records wait in the outbox."""
        try:
            await ensure_topics(self._settings, [self.topic], partitions=1, retained=True)
            if self._state.head() is None:
                await self._recover()
        except FusionbusError as exc:
            # not a warning: records wait in the outbox, and the command that needed Kafka
            # says itself (once) that it cannot reach it
            log.info("audit.start_degraded", topic=self.topic, error=str(exc))
        self._task = asyncio.create_task(self._send_loop(), name="fusionbus-audit")
        self._wake.set()

    async def _recover(self) -> None:
        found = await read_topics(self._settings, [self.topic], last=100)
        mine = own_key(self.agency, self._key)
        heads = [
            (item.record.seq, item.hash)
            for entry in found.get(self.topic, [])
            if (item := inspect(entry.value, writer=self.agency, directory=mine)).authentic
            and item.record is not None
            and item.hash is not None
        ]
        if heads:
            seq, digest = max(heads)
            self._state.adopt(seq, digest)
            log.info("audit.recovered", topic=self.topic, seq=seq)

    def record(
        self,
        act: str,
        *,
        message_id: uuid.UUID | None = None,
        report_id: uuid.UUID | None = None,
        digests: Mapping[str, str] | None = None,
        parties: Iterable[str] = (),
        code: str | None = None,
    ) -> AuditRecord | None:
        """Chain, sign and queue one record; ``None`` (and a log line) if it could not be
        appended. Never raises for an audit failure and never waits: it is a local append
        (a signature and a SQLite commit), with no await, so a caller's task cannot be
        cancelled inside it."""
        try:
            record = append_record(
                self._state, self.agency, self._key, act, at=self._clock(),
                message_id=message_id, report_id=report_id, digests=digests, parties=parties,
                code=code,
            )  # fmt: skip
        except (OSError, sqlite3.Error, ValueError) as exc:
            log.error("audit.append_failed", act=act, error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400 - no traceback: the message says it
            return None
        self._wake.set()
        return record

    async def flush(self) -> int:
        """Send the outbox now; how many records are still unsent."""
        async with self._lock:
            with self._state.sending() as held:
                if held:
                    await self._send_pending()
            return len(self._state.pending())

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                if await self.flush():
                    await asyncio.sleep(self._retry_s)
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the sender must outlive any failure
                error = exc if isinstance(exc, FusionbusError) else kafka_error(exc, "auditing")
                log.warning("audit.send_failed", topic=self.topic, error=str(error))
                await self._drop_producer()
                await asyncio.sleep(self._retry_s)
                self._wake.set()

    async def _send_pending(self) -> None:
        pending = self._state.pending()
        if not pending:
            return
        producer = await self._producer_started()
        with map_kafka_errors("sending audit records"):
            futures = [await producer.send(self.topic, value=value) for _, value in pending]
        acked: list[int] = []
        failure: BaseException | None = None
        for (seq, _), future in zip(pending, futures, strict=True):
            try:
                await future
            except Exception as exc:  # noqa: BLE001 - the first failure ends the round
                failure = exc
                break
            acked.append(seq)
        self._state.sent(acked)
        if failure is not None:
            raise kafka_error(failure, "sending audit records") from failure

    async def _producer_started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(**aiokafka_kwargs(self._settings, "producer"))
            try:
                with map_kafka_errors("connecting the audit writer"):
                    await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def stop(self) -> None:
        """Send what is pending (waiting at most ``stop_wait_s``), then stop; whatever is
        left stays in the outbox for the next writer of this home."""
        task, self._task = self._task, None
        if task is not None:
            try:  # let a send in progress finish, so no record goes out twice
                await asyncio.wait_for(self._lock.acquire(), self._stop_wait_s)
            except TimeoutError:
                task.cancel()  # Kafka is not answering: what was sent may be sent again
            else:
                task.cancel()
                self._lock.release()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        left = 0
        try:
            left = await asyncio.wait_for(self.flush(), self._stop_wait_s)
        except (TimeoutError, FusionbusError) as exc:
            left = len(self._state.pending())
            log.warning("audit.send_failed", topic=self.topic, error=str(exc) or "timed out")
        finally:
            await self._drop_producer()
            self._state.close()
        if left:
            log.warning("audit.unsent", topic=self.topic, records=left)
