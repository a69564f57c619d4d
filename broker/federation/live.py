"""The directory in Kafka: :func:`publish_directory` and :class:`LiveDirectory`.

The log-compacted topic ``fusionbus.directory`` holds one record per agency: key = the
agency id, value = the root-signed compact JWS (the same bytes as ``directory/<id>.jws``).
Compaction keeps the latest record per agency, which is the whole directory.

:class:`LiveDirectory` reads the topic from the beginning, feeds every record to a
:class:`~broker.federation.view.DirectoryView` (root signature, rollback and consistency
checks; refused records are logged and skipped), then keeps following it in a background
task. It is a :class:`~broker.federation.snapshot.Directory`: its :attr:`~LiveDirectory.
snapshot` is the view's current :class:`~broker.federation.snapshot.DirectorySnapshot`,
replaced whenever a record is accepted, so a running ``Publisher``/``Subscriber`` given it
sees directory changes within about a second, without a restart::

    async with LiveDirectory.for_home(home, settings) as live:
        policy = DisseminationPolicy(live)
        async with Publisher(identity, live, policy, settings) as publisher:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from broker.config import KafkaSettings, aiokafka_kwargs
from broker.errors import ConfigError, FusionbusError, TransportError
from broker.federation.directory import read_root_public
from broker.federation.head import HEAD_KEY
from broker.federation.snapshot import DirectorySnapshot
from broker.federation.view import DirectoryView
from broker.home import HomeLayout
from broker.provisioning.topics import ensure_topics
from broker.topics import DIRECTORY_TOPIC
from broker.transport import kafka_error, map_kafka_errors

__all__ = ["LiveDirectory", "publish_directory"]

log = structlog.get_logger(__name__)


async def publish_directory(
    settings: KafkaSettings,
    tokens: Mapping[str, bytes],
    *,
    topic: str = DIRECTORY_TOPIC,
    head: bytes | None = None,
) -> int:
    """Write every signed record in ``tokens`` (agency id -> JWS) to the directory topic,
    then the root-signed ``head`` naming their revisions (:mod:`broker.federation.head`).

    Creates the topic (one partition, compacted) if needed; returns once Kafka has
    acknowledged every record. Publishing a record again is harmless: readers ignore a
    revision they already hold. The head goes last, so a reader never sees a head before
    the records it names.
    """
    await ensure_topics(settings, [topic], partitions=1, compacted=True)
    producer = AIOKafkaProducer(**aiokafka_kwargs(settings, "producer"))
    with map_kafka_errors("publishing the directory"):
        await producer.start()
        try:
            sent = [
                await producer.send(topic, key=agency.encode(), value=token)
                for agency, token in sorted(tokens.items())
            ]
            await asyncio.gather(*sent)
            if head is not None:
                await producer.send_and_wait(topic, key=HEAD_KEY, value=head)
        finally:
            await producer.stop()
    log.info("directory.published", topic=topic, records=len(tokens))
    return len(tokens)


class LiveDirectory:
    """The directory as the topic says it is now; follows it in a background task."""

    def __init__(
        self,
        view: DirectoryView,
        settings: KafkaSettings,
        *,
        topic: str = DIRECTORY_TOPIC,
        poll_ms: int = 500,
        catch_up_s: float = 30.0,
    ) -> None:
        self.view = view
        self._settings = settings
        self._topic = topic
        self._poll_ms = poll_ms
        self._catch_up_s = catch_up_s
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def for_home(
        cls, home: Path, settings: KafkaSettings, *, topic: str = DIRECTORY_TOPIC
    ) -> LiveDirectory:
        """Trust ``home``'s ``federation/root.pub.jwk``; keep the rollback state in
        ``directory/live-state.json``. The home needs no other file."""
        layout = HomeLayout(home)
        root = read_root_public(layout.root_public, home)
        layout.directory_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        view = DirectoryView(root, state=layout.live_state, origin=f"the directory topic {topic!r}")
        return cls(view, settings, topic=topic)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Read the topic up to its current end (so the view is complete), then follow it."""
        consumer = AIOKafkaConsumer(**aiokafka_kwargs(self._settings, "consumer"))
        with map_kafka_errors("reading the directory topic"):
            await consumer.start()
        try:
            await self._seek(consumer)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.create_task(self._follow(consumer), name="fusionbus-directory")
        log.info("directory.live", topic=self._topic, agencies=len(self.snapshot.records))
        problem = self.view.head_problem(datetime.now(UTC))
        if problem is not None:
            log.warning("directory.head_stale", topic=self._topic, problem=problem)

    async def _seek(self, consumer: AIOKafkaConsumer) -> None:
        with map_kafka_errors("reading the directory topic"):
            exists = self._topic in await consumer.topics()
        if not exists:
            raise ConfigError(
                f"there is no directory topic {self._topic!r} in Kafka at "
                f"{self._settings.bootstrap}; the federation admin publishes it with "
                "`fusionbus federation publish-directory`"
            )
        # Without a group the consumer takes every partition, from the earliest offset.
        consumer.subscribe([self._topic])
        with map_kafka_errors("reading the directory topic"):
            try:
                await asyncio.wait_for(self._catch_up(consumer), self._catch_up_s)
            except TimeoutError:
                raise TransportError(
                    f"could not read the directory topic {self._topic!r} to its end within "
                    f"{self._catch_up_s:.0f} s",
                    retriable=True,
                ) from None

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        while not consumer.assignment():  # the first fetch waits for the assignment
            await self._poll(consumer)
        assigned = sorted(consumer.assignment())
        ends = await consumer.end_offsets(assigned)
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                await self._poll(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        batch = await consumer.getmany(timeout_ms=self._poll_ms, max_records=1_000)
        for tp, records in batch.items():
            for record in records:
                source = f"{tp.topic}/{tp.partition}@{record.offset}"
                self.view.offer(record.key, record.value, source=source)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        """Apply new records as they come; a Kafka failure is logged and retried."""
        while True:
            try:
                await self._poll(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the follower must outlive any failure
                error = exc if isinstance(exc, FusionbusError) else kafka_error(exc, "following")
                log.warning("directory.follow_failed", topic=self._topic, error=str(error))
                await asyncio.sleep(1.0)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    @property
    def snapshot(self) -> DirectorySnapshot:
        """The directory as accepted so far (the view's current snapshot)."""
        return self.view.snapshot

    def head_problem(self, now: datetime) -> str | None:
        """Why this view may not be current at ``now`` (no head, an old head, records the
        head names that have not arrived), or ``None`` (:meth:`DirectoryView.head_problem`)."""
        return self.view.head_problem(now)
