"""``fusionbus outbox``: what waits in an agency's outbox for Kafka, and sending it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from broker.audit import AuditWriter
from broker.config import KafkaSettings
from broker.federation.source import HomeDirectory
from broker.home import kafka_settings, resolve_home
from fusionbus.cli._common import BootstrapOpt, HomeOpt
from fusionbus.cli._console import json_line, say
from fusionbus.cli.reports import AgencyOpt, WaitOpt, age_text
from producers import Outbox, Publisher
from producers.outbox import Backlog

__all__ = ["outbox"]

_PROGRESS_EVERY_S = 5.0


def outbox(  # noqa: PLR0917 - typer maps each parameter to an option
    agency: AgencyOpt,
    send: Annotated[
        bool, typer.Option("--send", help="Send what is queued, in order, then report.")
    ] = False,
    wait: WaitOpt = 60.0,
    discard: Annotated[
        bool,
        typer.Option("--discard", help="Forget the reports that expired or were refused."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Show the agency's outbox: reports accepted by ``publish`` and not taken by Kafka yet
    (how many, since when), and those that will not be sent (expired while waiting, or
    refused by Kafka). With --send, send the queued ones and wait up to --wait seconds for
    the outbox to empty (exit 1 if it did not)."""
    where = resolve_home(home, agency=agency)
    box = Outbox.for_home(where, agency)
    try:
        if send:
            settings = kafka_settings(where, bootstrap, agency=agency)
            directory = HomeDirectory(where, agency, signs=True)
            emptied = asyncio.run(_send(box, where, directory, settings, wait))
        else:
            emptied = True
        _show(agency, box, as_json=as_json)
        if discard:
            say("Discarded {n} reports that will not be sent.", n=box.discard())
    finally:
        box.close()
    if not emptied:
        say(
            "The outbox is not empty after {wait} s: Kafka did not take every report. They stay "
            "queued; run this again once the cluster is reachable (`fusionbus kafka status`).",
            wait=f"{wait:g}",
        )
        raise typer.Exit(1)


async def _send(
    box: Outbox, where: Path, directory: HomeDirectory, settings: KafkaSettings, wait: float
) -> bool:
    start = box.backlog().queued
    deadline = time.monotonic() + wait
    async with (
        directory.started(settings) as use,
        AuditWriter.for_home(where, use.identity(), settings) as audit,
        Publisher(
            use.identity(), use.directory, use.policy, settings, audit=audit, outbox=box
        ) as publisher,
    ):
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return box.backlog().queued == 0
            if await publisher.wait_sent(min(left, _PROGRESS_EVERY_S)):
                say("Sent {n} reports; the outbox is empty.", n=start)
                return True
            queued = box.backlog().queued
            say("Sent {sent} of {total}; {left} still queued.", sent=start - queued, total=start,
                left=queued)  # fmt: skip


def _show(agency: str, box: Outbox, *, as_json: bool) -> None:
    now = datetime.now(UTC)
    backlog: Backlog = box.backlog()
    stuck = box.stuck()
    if as_json:
        not_sent = [
            {
                "message_id": s.message_id, "topic": s.topic, "state": s.state,
                "accepted_at": s.accepted_at.isoformat(), "expires_at": s.expires_at.isoformat(),
                "detail": s.detail,
            }
            for s in stuck
        ]  # fmt: skip
        typer.echo(json_line({"agency": agency, **backlog.document(now), "not_sent": not_sent}))
        return
    if backlog.queued:
        typer.echo(
            f"{backlog.queued} reports queued for Kafka; the oldest accepted "
            f"{age_text(backlog.oldest_age_s(now))} ago."
        )
    else:
        typer.echo("Nothing queued: Kafka has taken every report accepted.")
    for s in stuck:
        typer.echo(f"{s.message_id}  {s.state}  accepted {s.accepted_at.isoformat()}: {s.detail}")
