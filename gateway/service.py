"""The gateway's state and its Kafka side: stores, publisher, subscriber, retention.

::

    gateway = Gateway(home, "anf", load_settings(home), site_kafka(home, "anf"))
    async with gateway.running():          # publisher up, subscriber filling the store
        ...                                # serve HTTP (gateway.app)

Everything the HTTP handlers use hangs off one :class:`Gateway`. :meth:`Gateway.running`
starts the agency's directory, a :class:`producers.Publisher` signing as the agency, and a
:class:`consumers.Subscriber` (consumer group ``fusionbus.<agency>.<group>``, delivery state
in the home) over the agency's grants, whose verified reports go to the received store and
from there to every feed reader. A subscriber that fails is logged and started again; when
the directory gives the agency other grants (a live directory, ``[directory] source =
"topic"``: within about a second of the change arriving), the subscriber is replaced by one
over the new grants, in the same consumer group, without a restart of the gateway.

Its operations state: :meth:`Gateway.lag` (the subscriber's, from what its Kafka client
knows), ``quarantined`` (rejections by reason since the gateway started, across subscriber
restarts) and ``metrics`` (:mod:`gateway.metrics`, the registry ``GET /metrics`` serves).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

import structlog

from broker.audit import Act, AuditWriter
from broker.config import KafkaSettings
from broker.errors import AuthorizationError, FusionbusError, TransportError
from broker.federation import Directory
from consumers import (
    Delivery,
    FeedbackDelivery,
    ForwardDelivery,
    Inbox,
    InboxDelivery,
    NoticeDelivery,
    Source,
    SqliteDelivered,
    Subscriber,
    new_group_id,
)
from gateway._files import GatewayFiles
from gateway._site import AgencyDirectory, site_directory
from gateway.cursor import CursorCodec
from gateway.feed import Hub
from gateway.feedback import FeedbackStore
from gateway.idempotency import IdempotencyStore
from gateway.ingest import StatusStore
from gateway.metrics import Live, Metrics
from gateway.received import ReceivedStore
from gateway.sessions import SessionStore
from gateway.settings import GatewaySettings
from gateway.tokens import TokenStore
from producers import FeedbackSender, Outbox, Published, Publisher, Result
from producers.ledger import SentLedger
from schemas import Feedback, Notice, Outcome, Report
from schemas.envelope import RoutingHeader

__all__ = ["Gateway", "Sender"]

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
_RESTART_S = 2.0
_GRANTS_POLL_S = 1.0
Grants = frozenset[tuple[str, str]]
_PRUNE_EVERY_S = 600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Sender(Protocol):
    """What ingest needs of a publisher."""

    async def publish_many(self, reports: Sequence[Report]) -> Sequence[Result]: ...


class Consuming(Protocol):
    """What the gateway reads of its running subscriber."""

    @property
    def consuming(self) -> bool: ...

    def lag(self) -> int | None: ...


@runtime_checkable
class Headed(Protocol):
    """A directory that can say whether it is current (a live one: its signed head)."""

    def head_problem(self, now: datetime) -> str | None: ...


class Gateway:
    """One agency's gateway: its stores, and (while :meth:`running`) its Kafka clients."""

    def __init__(
        self,
        home: Path,
        agency: str,
        settings: GatewaySettings,
        kafka: KafkaSettings,
        *,
        clock: Clock = _utcnow,
    ) -> None:
        self.home = home
        self.agency = agency
        self.settings = settings
        self.kafka = kafka
        self.clock = clock
        self.files = GatewayFiles(home, agency)
        self.tokens = TokenStore(self.files, agency)
        self.idempotency = IdempotencyStore(self.files)
        self.statuses = StatusStore(self.files)
        self.posted: dict[uuid.UUID, str] = {}
        """The category of each report posted since start and not settled yet (metrics)."""
        self.outbox = Outbox(
            self.files.private(self.files.outbox), capacity=settings.outbox_capacity
        )
        self.received = ReceivedStore(self.files)
        self.codec = CursorCodec.for_files(self.files)
        self.hub = Hub()
        self.sessions = SessionStore(self.files)
        self.sender: Sender | None = None
        self.feedback_sender: FeedbackSender | None = None
        self.audit: AuditWriter | None = None
        self.directory: Directory | None = None
        self.feedback = FeedbackStore(self.files)
        self.ledger = SentLedger.for_home(home, agency)
        self.subscribing = False
        self.subscriber: Consuming | None = None
        self.quarantined: Counter[str] = Counter()
        self.metrics = Metrics(self._live)
        self._delivered = SqliteDelivered(self.files.private(self.files.delivered))

    def lag(self) -> int | None:
        """Records the subscriber has not processed yet; ``None`` while unknown (no
        subscriber running, or no fetch answered yet), ``0`` with no grants to follow."""
        if self.subscriber is None:
            return 0 if self.subscribing else None
        return self.subscriber.lag()

    def directory_current(self) -> bool:
        """Whether the directory is running and, when it is a live one, its root-signed head
        is recent and complete (directory files have no head to fall behind)."""
        if self.directory is None:
            return False
        if isinstance(self.directory, Headed):
            return self.directory.head_problem(self.clock()) is None
        return True

    def agencies_of(self, kids: Sequence[str]) -> list[str]:
        """The agencies other than this one whose encryption keys ``kids`` are, sorted."""
        if self.directory is None:
            return []
        snapshot = self.directory.snapshot
        found = {r.agency for k in kids if (r := snapshot.encryption_key(k)) is not None}
        return sorted(found - {self.agency})

    @property
    def consuming(self) -> bool:
        """Whether a subscriber is connected to Kafka and reading."""
        return self.subscriber is not None and self.subscriber.consuming

    def _live(self) -> Live:
        return Live(lag=self.lag(), feed_clients=self.hub.clients, consuming=self.consuming)

    def close(self) -> None:
        stores = (
            self.tokens, self.idempotency, self.statuses, self.received, self.sessions,
            self.feedback, self.ledger, self.outbox,
        )  # fmt: skip
        for store in stores:
            store.close()
        self._delivered.close()

    def settled(self, message_id: uuid.UUID, result: Published | FusionbusError) -> None:
        """Kafka took a posted report (or it was given up): its status, and the metrics once."""
        category = self.posted.pop(message_id, None)
        if isinstance(result, FusionbusError):
            self.statuses.settle(str(message_id), self.clock(), recipients=0, detail=str(result))
            return
        changed = self.statuses.settle(
            str(message_id), self.clock(), recipients=len(result.recipients), detail="",
            sealed_to=self.agencies_of(result.recipients),
        )  # fmt: skip
        if changed:
            if category is None:  # posted before a restart, sent from the outbox since
                sent = self.ledger.get(message_id)
                category = sent.category if sent is not None and sent.category else "other"
            self.metrics.published(category)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Kafka up for the block: publisher, subscriber, retention."""
        abandoned = self.idempotency.abandon_in_flight()
        if abandoned:
            log.warning("gateway.idempotency_abandoned", records=abandoned)
        async with (
            site_directory(self.home, self.agency, self.kafka) as site,
            AuditWriter.for_home(self.home, site.identity(), self.kafka) as audit,
            Publisher(
                site.identity(),
                site.directory,
                site.policy,
                self.kafka,
                audit=audit,
                outbox=self.outbox,
                ack_wait_s=self.settings.ack_wait_s,
                on_settled=self.settled,
            ) as pub,  # fmt: skip
            FeedbackSender(site.identity(), site.directory, self.kafka, audit=audit) as feedback,
        ):
            self.audit = audit
            self.sender = pub
            self.feedback_sender = feedback
            self.directory = site.directory
            tasks = [
                asyncio.create_task(self._subscribe(site), name="gateway.subscriber"),
                asyncio.create_task(self._read_inbox(site), name="gateway.inbox"),
                asyncio.create_task(self._retain(), name="gateway.retention"),
            ]
            try:
                yield
            finally:
                self.sender = None
                self.feedback_sender = None
                self.directory = None
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _subscribe(self, site: AgencyDirectory) -> None:
        """Run a subscriber over the agency's grants; when the directory changes them (a
        live directory), start a new one over the new grants."""
        while True:
            grants = self._grants(site)
            watch = asyncio.create_task(self._grants_change(site, grants))
            if not grants:
                log.warning("gateway.no_grants", agency=self.agency)
                self.subscribing = True  # nothing to receive is a ready state
                await watch
                self.subscribing = False  # until the subscriber over the new grants runs
                continue
            run = asyncio.create_task(self._run_subscriber(site, grants))
            try:
                await asyncio.wait({run, watch}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (watch, run):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if watch.done() and not watch.cancelled():
                log.info("gateway.grants_changed", grants=len(self._grants(site)))
                self.subscribing = False
                continue
            await asyncio.sleep(_RESTART_S)

    async def _run_subscriber(self, site: AgencyDirectory, grants: Grants) -> None:
        subscriber = Subscriber(
            site.identity(), site.directory, self.kafka,
            categories=sorted({c for c, _ in grants}),
            jurisdictions=sorted({j for _, j in grants}),
            group_id=new_group_id(self.agency, self.settings.group),
            delivered=self._delivered, from_beginning=True, clock=self.clock,
            on_reject=self._rejected, receipts=self.feedback_sender, audit=self.audit,
        )  # fmt: skip
        self.subscriber = subscriber
        self.subscribing = True
        try:
            await subscriber.run(self._receive)
        except FusionbusError as exc:
            log.error(  # noqa: TRY400 - the message says it all; no traceback in the log
                "gateway.subscriber_failed", error=type(exc).__name__, detail=str(exc)
            )
        finally:
            self.subscriber = None
            self.subscribing = False

    def _grants(self, site: AgencyDirectory) -> Grants:
        record = site.directory.snapshot.records.get(self.agency)
        if record is None:
            return frozenset()
        return frozenset((g.category, g.jurisdiction) for g in record.grants)

    async def _grants_change(self, site: AgencyDirectory, grants: Grants) -> None:
        """Return once the directory holds other grants of the agency than ``grants``."""
        while self._grants(site) == grants:  # noqa: ASYNC110 - a directory sends no change events
            await asyncio.sleep(_GRANTS_POLL_S)

    async def _read_inbox(self, site: AgencyDirectory) -> None:
        """Keep the feedback recipients send on this agency's reports; restart on failure."""
        while True:
            inbox = Inbox(
                site.identity(), site.directory, self.kafka,
                group_id=new_group_id(self.agency, f"{self.settings.group}-inbox"),
                delivered=self._delivered, clock=self.clock,
                originator_of=self.received.originator_of, on_reject=self._rejected,
            )  # fmt: skip
            try:
                await inbox.run(self._inbox_received)
            except FusionbusError as exc:
                log.error(  # noqa: TRY400 - the message says it all; no traceback in the log
                    "gateway.inbox_failed", error=type(exc).__name__, detail=str(exc)
                )
            except Exception as exc:  # noqa: BLE001 - the reader must outlive a surprise
                log.error(  # noqa: TRY400 - type only: a traceback could hold feedback notes
                    "gateway.inbox_failed", error=type(exc).__name__
                )
            await asyncio.sleep(_RESTART_S)

    async def _inbox_received(self, delivery: InboxDelivery) -> None:
        """Handle one inbox message; a surprise is logged and the message passed over (a
        transport error propagates: the reader starts again and retries it)."""
        try:
            await self._inbox_message(delivery)
        except (TransportError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - one message must not stall the inbox
            log.error(  # noqa: TRY400 - type only: a traceback could hold a note
                "gateway.inbox_message_failed", error=type(exc).__name__,
                source=str(delivery.source),
            )  # fmt: skip

    async def _inbox_message(self, delivery: InboxDelivery) -> None:
        if isinstance(delivery, NoticeDelivery):
            if delivery.notice.action.changes_report:
                await self._notice_received(delivery)
            elif self.feedback.add_answer(delivery, self.clock()):
                log.info(
                    "gateway.forward_answer", report=str(delivery.notice.report_id),
                    action=str(delivery.notice.action), to=delivery.notice.forward_to,
                )  # fmt: skip
        elif isinstance(delivery, ForwardDelivery):
            log.info(
                "gateway.forwarded_in", report=str(delivery.forward.report_id),
                originator=delivery.forward.originator, by=delivery.forward.sender,
            )  # fmt: skip
            if self.audit is not None:
                self.audit.record(
                    Act.DELIVERY, message_id=delivery.forward.message_id,
                    report_id=delivery.forward.report_id,
                    parties=[delivery.forward.originator, delivery.forward.sender],
                    code="forwarded",
                )  # fmt: skip
            await self._receive(delivery.delivery)
        else:
            self._feedback_received(delivery)

    async def _notice_received(self, delivery: NoticeDelivery) -> None:
        """Apply an originator's notice to the store, show the change to every reader, and
        answer ``applied``. A notice on a report not held (yet) is kept, applied when the
        report arrives, and answered then: an answer now would tell whoever sent it
        whether this agency holds that report."""
        notice, now = delivery.notice, self.clock()
        held = self.received.holds(notice.sender, notice.report_id)
        changed = self.received.apply(notice, now)
        log.info(
            "gateway.notice", report=str(notice.report_id), sender=notice.sender,
            action=str(notice.action), held=held, changed=changed is not None,
        )  # fmt: skip
        if changed is not None:
            self.hub.publish(changed)
        else:  # applied before (its answer may not have reached Kafka), or kept, or outranked
            changed = self.received.showing(notice)
            if changed is None:
                return
        await self._applied(notice, RoutingHeader.model_validate_json(changed.header))

    async def _applied(self, notice: Notice, about: RoutingHeader) -> None:
        """Record and answer ``applied`` to the notice's originator."""
        if self.audit is not None:
            self.audit.record(
                Act.APPLIED, message_id=notice.message_id, report_id=notice.report_id,
                parties=[notice.sender], code=str(notice.action),
            )  # fmt: skip
        sender = self.feedback_sender
        if sender is None:
            return
        answer = Feedback(
            message_id=uuid.uuid4(), report_id=notice.report_id, originator=notice.sender,
            sender=self.agency, created_at=self.clock(), outcome=Outcome.APPLIED,
            notice_id=notice.message_id,
        )  # fmt: skip
        try:
            await sender.send(answer, about)
        except AuthorizationError as exc:  # no retry fixes it: the originator has no key
            log.warning("gateway.applied_not_sent", report=str(notice.report_id), error=str(exc))
        # a TransportError propagates: the inbox reader starts again and, the notice not yet
        # marked read, applies it again (nothing changes) and answers again

    def _feedback_received(self, delivery: FeedbackDelivery) -> None:
        if self.feedback.add(delivery, self.clock()):
            log.info(
                "gateway.feedback",
                report=str(delivery.feedback.report_id),
                sender=delivery.feedback.sender,
                outcome=str(delivery.feedback.outcome),
            )

    async def _receive(self, delivery: Delivery) -> None:
        now = self.clock()
        stored = self.received.add(delivery, now)
        if stored is not None:
            self.metrics.delivered(delivery.header.category, delivery.report.created_at, now)
            self.hub.publish(stored)
            if stored.notice is not None:  # its originator's notice came first: answer now
                await self._applied(Notice.model_validate_json(stored.notice), delivery.header)

    async def _rejected(self, _source: Source, reason: str, _detail: str) -> None:
        self.quarantined[reason] += 1
        self.metrics.quarantined(reason)

    async def _retain(self) -> None:
        keep = timedelta(days=self.settings.retention_days)
        ttl = timedelta(seconds=self.settings.idempotency_ttl_s)
        while True:
            now = self.clock()
            dropped = self.received.prune(now - keep)
            if dropped:
                log.info("gateway.retention", dropped=dropped)
            self.idempotency.expire(now, ttl)
            await asyncio.sleep(_PRUNE_EVERY_S)
