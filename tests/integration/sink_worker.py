"""A subscriber in its own process, for the consumer kill tests (``test_consumer_faults``).

::

    python -m tests.integration.sink_worker --bootstrap HOST:PORT --seed SEED \\
        --category CATEGORY --jurisdiction AREA --db app.sqlite --group GROUP \\
        --mode sink|plain [--work-ms 1] [--exit-at-end]

It rebuilds the test's world from ``SEED`` (:func:`world`: the same agencies and keys as the
test that publishes), subscribes as the recipient to ``CATEGORY`` in ``AREA`` and writes
every report handed over as a row of the table ``received`` (no unique key: a report
written twice shows as two rows):

- ``sink``: through :class:`consumers.SqliteSink`, the row and the delivery mark in one
  transaction (``--work-ms`` of blocking work inside it, an application's own computation);
- ``plain``: a plain handler that commits the row on its own connection and then awaits
  ``--work-ms`` (an application's follow-up I/O), the mark in a separate
  :class:`consumers.SqliteDelivered` file — the at-least-once path.

It runs until killed, or with ``--exit-at-end`` until caught up with the topic. It logs
aiokafka's lines with times and its pid (``SINK_WORKER_DEBUG=1``: every request).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broker.config import KafkaSettings
from broker.federation import DirectorySnapshot, agency_keys
from broker.keys import Identity
from consumers import Delivered, Delivery, SqliteDelivered, SqliteSink, Subscriber
from consumers.delivered import open_private

TABLE = (
    "CREATE TABLE IF NOT EXISTS received ("
    " report_id TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,"
    " pid INTEGER NOT NULL, at REAL NOT NULL)"
)


@dataclass(frozen=True)
class World:
    sender: Identity
    recipient: Identity
    directory: DirectorySnapshot
    category: str
    jurisdiction: str
    """What the sender reports on and the recipient subscribes to: a pair no other test
    subscribes to broadly, so that no other subscriber reads (and skips) these reports."""


def _seeded(seed: str) -> Callable[[int], bytes]:
    counter = itertools.count()

    def random(n: int) -> bytes:
        return hashlib.shake_256(f"{seed}/{next(counter)}".encode()).digest(n)

    return random


def world(seed: str, category: str, jurisdiction: str) -> World:
    """The sender ``cus-<seed>`` and the recipient ``anf-<seed>`` with keys derived from
    ``seed`` (the same in the test and in every worker it starts)."""
    ids = []
    for name in ("cus", "anf"):
        agency = f"{name}-{seed}"
        random = _seeded(f"{seed}/{agency}")
        ids.append(Identity.generate(agency, random))
    since = datetime.now(UTC) - timedelta(days=1)
    keys = [
        key
        for ident in ids
        for key in agency_keys(
            ident.agency, ident.signing_key.public, ident.encryption_key, valid_from=since
        )
    ]
    return World(ids[0], ids[1], DirectorySnapshot.of_keys(keys), category, jurisdiction)


def _row(delivery: Delivery) -> tuple[str, int, int, int, float]:
    report_id = str(delivery.report.message_id)
    return (report_id, delivery.partition, delivery.offset, os.getpid(), time.time())


async def _main(args: argparse.Namespace) -> None:
    w = world(args.seed, args.category, args.jurisdiction)
    settings = KafkaSettings(bootstrap=args.bootstrap)
    work_s = args.work_ms / 1000

    def subscriber(delivered: Delivered) -> Subscriber:
        return Subscriber(
            w.recipient, w.directory, settings, categories=[w.category],
            jurisdictions=[w.jurisdiction], group_id=args.group, delivered=delivered,
            group_instance_id=f"{args.group}.worker",
        )  # fmt: skip

    if args.mode == "sink":

        def write(db: sqlite3.Connection, delivery: Delivery) -> None:
            db.execute("INSERT INTO received VALUES (?, ?, ?, ?, ?)", _row(delivery))
            time.sleep(work_s)  # the application's own work, inside its transaction

        with SqliteSink(args.db, write, setup=lambda db: db.execute(TABLE)) as sink:
            await subscriber(sink.delivered).run(sink, exit_at_end=args.exit_at_end)
        return

    app = open_private(args.db)
    app.execute(TABLE)
    delivered = SqliteDelivered(args.db.with_suffix(".delivered.sqlite"))

    async def handler(delivery: Delivery) -> None:
        app.execute("INSERT INTO received VALUES (?, ?, ?, ?, ?)", _row(delivery))
        await asyncio.sleep(work_s)  # the application's follow-up I/O, after its write

    try:
        await subscriber(delivered).run(handler, exit_at_end=args.exit_at_end)
    finally:
        delivered.close()
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--seed", required=True)
    parser.add_argument("--category", required=True)
    parser.add_argument("--jurisdiction", required=True)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--mode", choices=["sink", "plain"], required=True)
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--exit-at-end", action="store_true")
    args = parser.parse_args()
    level = logging.DEBUG if os.environ.get("SINK_WORKER_DEBUG") else logging.INFO
    logging.basicConfig(format="%(asctime)s %(process)d %(name)s %(message)s", level=level)
    logging.getLogger(__name__).info("worker.started mode=%s", args.mode)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
