"""``fusionbus retract`` and ``fusionbus supersede``: the originator's word on one of its
reports, sent to exactly the agencies it was sealed to.

::

    fusionbus retract MESSAGE_ID --agency customs --reason "wrong container" [--purge]
    fusionbus supersede MESSAGE_ID --agency customs corrected.json [--reason TEXT]

Both look the report up in the home's ledger (:class:`producers.ledger.SentLedger`): only
the home that published a report knows whom it was sealed to, so only it can reach them
all, whatever their grants are now, and nobody else. Each recipient gets a notice
(:class:`schemas.Notice`) on its inbox topic from this agency; its gateway applies it and
answers ``applied`` (``fusionbus status`` shows it). ``supersede`` first publishes the
corrected report (``relations.supersedes`` naming the original) to whoever is entitled to
it now, then sends the notice. See ``docs/cycle.md``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from broker.audit import AuditWriter
from broker.config import KafkaSettings
from broker.envelope import Routing
from broker.errors import ConfigError, FusionbusError, SchemaValidationError
from broker.federation.source import AgencyDirectory, HomeDirectory
from broker.home import kafka_settings, resolve_home
from consumers import FeedbackDelivery, Inbox, InboxDelivery
from fusionbus.cli import _params
from fusionbus.cli._common import BootstrapOpt, HomeOpt
from fusionbus.cli._console import say
from fusionbus.cli.feedback import AgencyOpt, MessageArg
from fusionbus.cli.reports import _parse_reports, _read, _refuse_published
from producers import FeedbackSender, Published, Publisher
from producers.ledger import SentLedger, SentReport
from schemas import Notice, NoticeAction, Outcome, Relations, Report

__all__ = ["retract", "supersede"]

ReasonOpt = Annotated[
    str | None,
    typer.Option(
        parser=_params.printable(2000), metavar="TEXT",
        help="Why, shown to the recipients' people wherever the report is listed.",
    ),
]  # fmt: skip


def _sent(home: Path, agency: str, message_id: uuid.UUID) -> tuple[SentReport, Routing]:
    ledger = SentLedger.for_home(home, agency)
    try:
        sent = ledger.get(message_id)
    finally:
        ledger.close()
    if sent is None:
        raise ConfigError(
            f"report {message_id} was not published by {agency} from this home, so it cannot be "
            "changed from here: only its originator can supersede or retract a report, from the "
            "home (or gateway) that published it, which knows whom it was sealed to"
        )
    if None in (sent.category, sent.jurisdiction, sent.precedence, sent.tlp):
        raise ConfigError(
            f"report {message_id} was published before this home's ledger kept reports' routing, "
            "so its notice cannot be sealed with the report's handling; publish a correction as "
            "a new report instead"
        )
    routing = Routing(
        str(sent.category), str(sent.jurisdiction), str(sent.precedence), str(sent.tlp)
    )
    return sent, routing


async def _told(
    use: AgencyDirectory, settings: KafkaSettings, message_id: uuid.UUID, sealed_to: Sequence[str]
) -> list[str]:
    """Every agency the report was sealed to, and every agency one of them told the agency
    (``forwarded`` feedback in its inbox) it forwarded the report to."""
    forwards: set[str] = set()

    async def keep(delivery: InboxDelivery) -> None:
        if isinstance(delivery, FeedbackDelivery):
            said = delivery.feedback
            if (
                said.report_id == message_id
                and said.outcome is Outcome.FORWARDED
                and said.sender in sealed_to
                and said.forward_to
            ):
                forwards.add(said.forward_to)

    await Inbox(use.identity(), use.directory, settings).run(keep, exit_at_end=True)
    return sorted({*sealed_to, *forwards} - {use.record.id})


def _report_sent(results: dict[str, Published | FusionbusError], notice: Notice) -> None:
    """Say who the notice reached; exit 1 naming those it did not."""
    failed = {a: r for a, r in results.items() if isinstance(r, FusionbusError)}
    for agency, result in results.items():
        if isinstance(result, Published):
            say("{action} notice on {report} sent to {agency}.", action=str(notice.action),
                report=notice.report_id, agency=agency)  # fmt: skip
    for agency, error in failed.items():
        say("Not sent to {agency}: {error}", agency=agency, error=str(error))
    typer.echo(str(notice.message_id))
    if failed:
        say(
            "Run the same command again once that is fixed: recipients that applied the notice "
            "already apply it again harmlessly."
        )
        raise typer.Exit(1)


def retract(  # noqa: PLR0917 - typer maps each parameter to an option
    message_id: MessageArg,
    agency: AgencyOpt,
    reason: Annotated[
        str,
        typer.Option(
            parser=_params.printable(2000),
            metavar="TEXT",
            help="Why it is withdrawn, shown to the recipients' people.",
        ),
    ],
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Sensitive: recipients delete every copy and never display it again (a "
            "plain retraction keeps it listed as withdrawn).",
        ),
    ] = False,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Withdraw one of the agency's reports from every agency it was sealed to; print the
    notice's id."""
    where = resolve_home(home, agency=agency)
    sent, routing = _sent(where, agency, message_id)
    notice = Notice(
        message_id=uuid.uuid4(), report_id=message_id, sender=agency,
        created_at=datetime.now(UTC),
        action=NoticeAction.PURGE if purge else NoticeAction.RETRACT, reason=reason,
    )  # fmt: skip
    if not sent.sealed_to:
        say("Report {id} was sealed to no other agency: nothing to tell anyone.", id=message_id)
        return
    directory = HomeDirectory(where, agency, signs=True)
    settings = kafka_settings(where, bootstrap, agency=agency)

    async def send() -> dict[str, Published | FusionbusError]:
        async with (
            directory.started(settings) as use,
            AuditWriter.for_home(where, use.identity(), settings) as audit,
            FeedbackSender(use.identity(), use.directory, settings, audit=audit) as sender,
        ):
            told = await _told(use, settings, message_id, sent.sealed_to)
            return await sender.notify(notice, routing, told)

    _report_sent(asyncio.run(send()), notice)


def supersede(  # noqa: PLR0917 - typer maps each parameter to an option
    message_id: MessageArg,
    agency: AgencyOpt,
    source: Annotated[
        str,
        typer.Argument(
            parser=_params.report_source,
            metavar="REPORT.json",
            help="The corrected report; - for stdin.",
        ),
    ],
    reason: ReasonOpt = None,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Publish a corrected report in place of one of the agency's reports, and tell every
    agency the original was sealed to; print the corrected report's id, then the notice's."""
    where = resolve_home(home, agency=agency)
    reports = _parse_reports(_read(source), agency)
    sent, routing = _sent(where, agency, message_id)
    if len(reports) != 1:
        raise SchemaValidationError(
            f"{source} holds {len(reports)} reports; a report is superseded by exactly one"
        )
    given = reports[0]
    if given.message_id == message_id:
        raise SchemaValidationError(
            f"the corrected report has the original's message_id {message_id}; leave "
            "message_id out (a new one is chosen) or give it another"
        )
    relations = given.relations
    corrected = given.model_copy(
        update={
            "relations": Relations(
                supersedes=tuple(dict.fromkeys((*relations.supersedes, message_id))),
                retracts=relations.retracts,
                follows_up=relations.follows_up,
            )
        }
    )
    corrected = Report.model_validate(corrected.model_dump())
    _refuse_published(where, agency, [corrected])
    notice = Notice(
        message_id=uuid.uuid4(), report_id=message_id, sender=agency,
        created_at=datetime.now(UTC), action=NoticeAction.SUPERSEDE,
        reason=reason or f"corrected by report {corrected.message_id}",
        superseded_by=corrected.message_id,
    )  # fmt: skip
    directory = HomeDirectory(where, agency, signs=True)
    settings = kafka_settings(where, bootstrap, agency=agency)

    async def send() -> dict[str, Published | FusionbusError]:
        async with (
            directory.started(settings) as use,
            AuditWriter.for_home(where, use.identity(), settings) as audit,
            Publisher(
                use.identity(), use.directory, use.policy, settings, audit=audit
            ) as publisher,
            FeedbackSender(use.identity(), use.directory, settings, audit=audit) as sender,
        ):
            results = await publisher.publish_many([corrected])
            ledger = SentLedger.for_home(where, agency)
            try:
                ledger.record_published([corrected], results, use.directory, agency)
            finally:
                ledger.close()
            if isinstance(results[0], FusionbusError):
                raise results[0]
            typer.echo(str(corrected.message_id))
            if not sent.sealed_to:
                return {}
            told = await _told(use, settings, message_id, sent.sealed_to)
            return await sender.notify(notice, routing, told)

    results = asyncio.run(send())
    if not results:
        say("The original was sealed to no other agency: nobody to tell.")
        return
    _report_sent(results, notice)
