"""The gateway's Prometheus metrics, in a registry of its own (one per gateway, so several
gateways in one process never share or clash).

::

    metrics = Metrics(live=lambda: Live(lag=12, feed_clients=3, consuming=True))
    metrics.published("narcotics")           # counters move as the gateway works
    body, media_type = metrics.exposition()  # what GET /metrics answers

Every label has a bounded set of values: category codes (a fixed registered set), reason
codes (:class:`broker.errors.Reason`) and HTTP status codes. No label or value carries
report text, an id or a token. The gauges are read when scraped, from :class:`Live`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from broker.errors import Reason
from schemas import is_registered_category

__all__ = ["LATENCY_BUCKETS", "PREFIX", "Live", "Metrics"]

PREFIX = "fusionbus_gateway_"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds from a report's ``created_at`` to its storing in the receiving gateway."""
_REASONS = frozenset(str(reason) for reason in Reason)
_OTHER = "other"
"""The label value of a category code that is not registered (never the code itself)."""


@dataclass(frozen=True, slots=True)
class Live:
    """The gateway's state at scrape time: lag (``None`` when unknown), feed readers and
    whether its subscriber is consuming."""

    lag: int | None
    feed_clients: int
    consuming: bool


def _category(code: str) -> str:
    return code if is_registered_category(code) else _OTHER


class _LiveCollector:
    def __init__(self, live: Callable[[], Live]) -> None:
        self._live = live

    def collect(self) -> Iterator[Metric]:
        now = self._live()
        lag = GaugeMetricFamily(
            f"{PREFIX}consumer_lag",
            "Records on the subscriber's assigned partitions not processed yet "
            "(absent while unknown).",
        )
        if now.lag is not None:
            lag.add_metric([], now.lag)
        yield lag
        yield GaugeMetricFamily(
            f"{PREFIX}feed_clients", "Live feed readers connected.", value=now.feed_clients
        )
        yield GaugeMetricFamily(
            f"{PREFIX}subscriber_up",
            "1 while the subscriber is consuming from Kafka, else 0.",
            value=1 if now.consuming else 0,
        )


class Metrics:
    """Counters the gateway moves, and gauges read from ``live`` at each scrape."""

    def __init__(self, live: Callable[[], Live]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._published = Counter(
            f"{PREFIX}reports_published", "Reports this gateway published (acknowledged by "
            "Kafka), by category.", ["category"], registry=registry,
        )  # fmt: skip
        self._delivered = Counter(
            f"{PREFIX}reports_delivered", "Reports received, verified and stored (once per "
            "report), by category.", ["category"], registry=registry,
        )  # fmt: skip
        self._quarantined = Counter(
            f"{PREFIX}quarantined", "Records the subscriber rejected and quarantined, by "
            "reason code.", ["reason"], registry=registry,
        )  # fmt: skip
        self._ingest = Counter(
            f"{PREFIX}ingest_requests", "Ingest POSTs answered, by HTTP status code.",
            ["status"], registry=registry,
        )  # fmt: skip
        self._latency = Histogram(
            f"{PREFIX}end_to_end_latency_seconds", "From a report's created_at to its "
            "storing in this gateway.", buckets=LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        for reason in Reason:  # every reason is a series from the start, at 0
            self._quarantined.labels(reason=str(reason))
        registry.register(_LiveCollector(live))

    def published(self, category: str) -> None:
        self._published.labels(category=_category(category)).inc()

    def delivered(self, category: str, created_at: datetime, stored_at: datetime) -> None:
        self._delivered.labels(category=_category(category)).inc()
        self._latency.observe(max(0.0, (stored_at - created_at).total_seconds()))

    def quarantined(self, reason: str) -> None:
        self._quarantined.labels(reason=reason if reason in _REASONS else _OTHER).inc()

    def ingest_answered(self, status: int) -> None:
        self._ingest.labels(status=str(status)).inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of every metric, and its media type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
