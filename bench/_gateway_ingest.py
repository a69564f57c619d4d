"""The ingest half of ``bench.gateway``: the same reports through the ``Publisher`` and
through the gateway over HTTP, each to Kafka's acknowledgement (see ``bench.gateway``)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from bench._gateway_site import INGEST, BenchError, GatewayProcess, Site, note, wait_ready
from broker.config import KafkaSettings
from broker.federation import DisseminationPolicy, Federation
from producers import Publisher
from schemas import Report

if TYPE_CHECKING:
    from bench.gateway import Options

__all__ = ["REPORT_BYTES", "measure_ingest"]

REPORT_BYTES = 1024
T = TypeVar("T")

Send = Callable[[], Awaitable[int]]


async def _timed(gateway: GatewayProcess, count: int, send: Send) -> dict[str, float]:
    """Run ``send`` (which returns the number of failed reports); its figures."""
    gateway_cpu, own_cpu, started = gateway.cpu_s(), time.process_time(), time.monotonic()
    failed = await send()
    seconds = time.monotonic() - started
    if failed:
        raise BenchError(f"{failed} of {count} reports were not published")
    return {
        "reports_per_s": count / seconds,
        "gateway_cpu_ms": (gateway.cpu_s() - gateway_cpu) * 1000 / count,
        "own_cpu_ms": (time.process_time() - own_cpu) * 1000 / count,
    }


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _unpublished(answer: httpx.Response, expected: int) -> int:
    if answer.status_code != 202:
        return expected
    body = answer.json()
    items = body.get("reports", [body])
    return sum(item["status"] != "published" for item in items)


class _Ingest:
    def __init__(
        self,
        site: Site,
        publisher: Publisher,
        gateway: GatewayProcess,
        token: str,
        options: Options,
    ) -> None:
        self.template = site.template(INGEST, REPORT_BYTES)
        self.document = self.template.model_dump(mode="json")
        self.publisher, self.gateway, self.options = publisher, gateway, options
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def _reports(self, count: int) -> list[Report]:
        now = datetime.now(UTC)
        update = {"created_at": now}
        return [
            self.template.model_copy(update=update | {"message_id": uuid.uuid4()})
            for _ in range(count)
        ]

    def _documents(self, count: int) -> list[dict[str, Any]]:
        now = datetime.now(UTC).isoformat()
        return [
            self.document | {"message_id": str(uuid.uuid4()), "created_at": now}
            for _ in range(count)
        ]

    async def publisher_round(self, count: int) -> dict[str, float]:
        batches = _chunks(self._reports(count), self.options.batch)

        async def send() -> int:
            failed = 0
            for batch in batches:
                results = await self.publisher.publish_many(batch)
                failed += sum(isinstance(result, Exception) for result in results)
            return failed

        return await _timed(self.gateway, count, send)

    async def publisher_single_round(self, count: int) -> dict[str, float]:
        reports = iter(self._reports(count))

        async def task() -> int:
            failed = 0
            for report in reports:  # the tasks share one iterator: each report is sent once
                results = await self.publisher.publish_many([report])
                failed += sum(isinstance(result, Exception) for result in results)
            return failed

        async def send() -> int:
            return sum(await asyncio.gather(*(task() for _ in range(self.options.concurrency))))

        return await _timed(self.gateway, count, send)

    async def batch_round(self, http: httpx.AsyncClient, count: int) -> dict[str, float]:
        bodies = [
            orjson.dumps(list(c)) for c in _chunks(self._documents(count), self.options.batch)
        ]
        url = f"{self.gateway.url}/v1/reports:batch"

        async def send() -> int:
            failed = 0
            for body in bodies:
                answer = await http.post(url, content=body, headers=self.headers)
                failed += _unpublished(answer, len(orjson.loads(body)))
            return failed

        return await _timed(self.gateway, count, send)

    async def single_round(self, http: httpx.AsyncClient, count: int) -> dict[str, float]:
        bodies = iter([orjson.dumps(d) for d in self._documents(count)])
        url = f"{self.gateway.url}/v1/reports"

        async def client() -> int:
            failed = 0
            for body in bodies:  # the clients share one iterator: each body is sent once
                failed += _unpublished(await http.post(url, content=body, headers=self.headers), 1)
            return failed

        async def send() -> int:
            return sum(await asyncio.gather(*(client() for _ in range(self.options.concurrency))))

        return await _timed(self.gateway, count, send)


async def measure_ingest(
    site: Site, bootstrap: str, token: str, options: Options
) -> tuple[dict[str, list[dict[str, float]]], float]:
    """Every round's figures per path, and the gateway's RSS at the end."""
    rounds: dict[str, list[dict[str, float]]] = {}
    federation = Federation.load(site.home)
    directory = federation.snapshot
    settings = KafkaSettings(bootstrap=bootstrap)
    gateway = GatewayProcess(site.home, site.sender, site.home / "gateway-ingest.log")
    limits = httpx.Limits(max_connections=options.concurrency + 2)
    try:
        async with (
            Publisher(
                federation.identity(site.sender), directory, DisseminationPolicy(directory),
                settings,
            ) as publisher,
            httpx.AsyncClient(timeout=60, limits=limits) as http,
        ):  # fmt: skip
            await wait_ready(http, gateway)
            ingest = _Ingest(site, publisher, gateway, token, options)
            paths: dict[str, tuple[Callable[[int], Awaitable[dict[str, float]]], int]] = {
                "publisher": (ingest.publisher_round, options.count),
                "batch": (functools.partial(ingest.batch_round, http), options.count),
                "publisher-single": (ingest.publisher_single_round, options.singles),
                "single": (functools.partial(ingest.single_round, http), options.singles),
            }
            for run, _ in paths.values():
                await run(options.warmup)
            for _ in range(options.repeats):
                for name, (run, count) in paths.items():
                    rounds.setdefault(name, []).append(await run(count))
                    note(f"ingest {name}: {rounds[name][-1]['reports_per_s']:,.0f}/s")
            return rounds, gateway.rss_mb()
    finally:
        gateway.stop()
