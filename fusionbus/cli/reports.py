"""``fusionbus publish``, ``fusionbus tail`` and ``fusionbus report example``."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from pydantic import ValidationError

from broker.audit import AuditWriter
from broker.errors import FusionbusError, SchemaValidationError
from broker.federation.source import HomeDirectory
from broker.home import kafka_settings, resolve_home
from broker.shutdown import until_signalled
from consumers import (
    Delivery,
    Inbox,
    InboxDelivery,
    NoticeDelivery,
    Rejected,
    Source,
    SqliteDelivered,
    Subscriber,
    Verified,
    new_group_id,
)
from consumers.intake import RawVerdict
from consumers.raw import tail_raw
from fusionbus.cli import _params
from fusionbus.cli._common import BootstrapOpt, HomeOpt
from fusionbus.cli._console import err_console, json_line, line, out_console, say
from producers import Backlog, Outbox, Publisher, Queued, Result
from producers.ledger import SentLedger
from schemas import Notice, NoticeAction, Report, describe_validation_error, example_report

__all__ = ["publish", "report_app", "tail"]

report_app = typer.Typer(help="Work with report documents.", no_args_is_help=True)

AgencyOpt = Annotated[
    str,
    typer.Option(
        "--agency", parser=_params.agency_id, metavar="ID",
        help="The agency id to act as, e.g. anf.",
    ),
]  # fmt: skip


@report_app.command("example")
def example(
    category: Annotated[
        str,
        typer.Option(
            parser=_params.category, metavar="CATEGORY", help="Trafficking category code."
        ),
    ] = "narcotics",
    jurisdiction: Annotated[
        str,
        typer.Option(
            parser=_params.jurisdiction,
            metavar="JURISDICTION",
            help="Country, subdivision or UN/LOCODE place.",
        ),
    ] = "PKKHI",
) -> None:
    """Print a valid, realistic example report as JSON (a starting point to edit).

    It names the agency whose mandate covers the category (anf: narcotics,
    precursors; fia: human trafficking, migrant and cash smuggling) in
    handling.named_recipients. Publish refuses a named agency without a grant
    for the report, so edit the list to fit your federation.
    """
    try:
        report = example_report(category, jurisdiction)
    except ValidationError as exc:
        raise SchemaValidationError(_describe("example", exc)) from exc
    typer.echo(orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2).decode())


WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        parser=_params.wait_seconds,
        metavar="SECONDS",
        help="How long to wait for Kafka before leaving reports queued in the outbox.",
    ),
]


def publish(
    agency: AgencyOpt,
    source: Annotated[
        str,
        typer.Argument(
            parser=_params.report_source,
            metavar="FILE",
            help="A JSON report, or JSON lines of reports; - for stdin.",
        ),
    ] = "-",
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
    wait: WaitOpt = 15.0,
) -> None:
    """Sign, encrypt and publish reports; print one message id per line.

    Every report is validated before anything is sent. ``message_id``, ``created_at``,
    ``sender`` and ``schema_version`` are filled in when absent. Each report is sealed and
    kept in the agency's outbox (``<home>/state/<agency>/outbox.sqlite``) before it is sent:
    when Kafka cannot be reached within --wait, the reports stay queued there, are counted as
    accepted (exit 0), and are sent in order by the next ``publish`` or ``fusionbus outbox
    --send``.
    """
    where = resolve_home(home, agency=agency)
    directory = HomeDirectory(where, agency, signs=True)
    reports = _parse_reports(_read(source), agency)
    settings = kafka_settings(where, bootstrap, agency=agency)

    _refuse_published(where, agency, reports)
    outbox = Outbox.for_home(where, agency)

    async def send() -> tuple[list[Result], Backlog]:
        async with (
            directory.started(settings) as use,
            AuditWriter.for_home(where, use.identity(), settings) as audit,
            Publisher(
                use.identity(), use.directory, use.policy, settings, audit=audit,
                outbox=outbox, ack_wait_s=wait,
            ) as publisher,
        ):  # fmt: skip
            results = await publisher.publish_many(reports)
            ledger = SentLedger.for_home(where, agency)
            try:
                ledger.record_published(reports, results, use.directory, agency)
            finally:
                ledger.close()
            return results, outbox.backlog()

    try:
        results, backlog = asyncio.run(send())
    finally:
        outbox.close()
    failed = queued = 0
    for number, (report, result) in enumerate(zip(reports, results, strict=True), start=1):
        if isinstance(result, FusionbusError):
            failed += 1
            err_console.print(
                line((f"report {number} ({report.message_id}) was NOT sent:", "red"), f" {result}")
            )
            continue
        queued += isinstance(result, Queued)
        typer.echo(str(report.message_id))
    if queued:
        say(
            "{queued} of {total} reports are queued in the outbox: Kafka did not take them "
            "within {wait} s. They are kept, and sent in order by the next `fusionbus publish` "
            "or `fusionbus outbox --send --agency {agency}` ({backlog} waiting in all, the "
            "oldest for {age}).",
            queued=queued, total=len(reports), wait=f"{wait:g}", agency=agency,
            backlog=backlog.queued, age=age_text(backlog.oldest_age_s(datetime.now(UTC))),
        )  # fmt: skip
    if failed:
        say("{sent} of {total} reports were sent.", sent=len(reports) - failed, total=len(reports))
        raise typer.Exit(1)


def age_text(seconds: float) -> str:
    """``3 h 12 min``, ``4 min 5 s``, ``12 s``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def tail(  # noqa: PLR0917 - typer maps each parameter to an option
    agency: AgencyOpt,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            parser=_params.category,
            metavar="CATEGORY",
            help="Repeatable (default: the categories of the agency's grants).",
        ),
    ] = None,
    jurisdiction: Annotated[
        list[str] | None,
        typer.Option(
            "--jurisdiction",
            parser=_params.jurisdiction,
            metavar="JURISDICTION",
            help="Repeatable; covers its subtree (default: the jurisdictions of the grants).",
        ),
    ] = None,
    from_beginning: Annotated[bool, typer.Option("--from-beginning")] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=_params.moment,
            metavar="TIME",
            help="Start at a time: ISO 8601 (2026-11-28T09:00Z) or an age (90m, 2h).",
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option(parser=_params.whole_number(1), metavar="N", help="Exit after N reports."),
    ] = None,
    exit_at_end: Annotated[
        bool, typer.Option("--exit-at-end", help="Exit once caught up.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    raw: Annotated[
        bool, typer.Option("--raw", help="Show clear routing metadata only; do not decrypt.")
    ] = False,
    group: Annotated[
        str | None,
        typer.Option(
            parser=_params.group_name,
            metavar="NAME",
            help="Resume as this named consumer group: commit progress, and skip what was "
            "shown before a restart (state in <home>/state/). Stopped by SIGTERM or Ctrl-C it "
            "shows nothing twice; after a SIGKILL the report being shown may be shown again.",
        ),
    ] = None,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Follow the reports the agency may read (like kcat -C)."""
    where = resolve_home(home, agency=agency)
    directory = HomeDirectory(where, agency)
    settings = kafka_settings(where, bootstrap, agency=agency)
    delivered = None
    if group is not None and not raw:
        delivered = SqliteDelivered(where / "state" / agency / f"{group}.delivered.sqlite")

    async def follow() -> None:
        async with directory.started(settings) as use:
            grants = use.record.grants
            categories = category or sorted({g.category for g in grants})
            jurisdictions = jurisdiction or sorted({g.jurisdiction for g in grants})
            if not categories or not jurisdictions:
                raise SchemaValidationError(
                    f"{agency} has no grants to follow; pass --category and --jurisdiction, or "
                    f"grant some with `fusionbus agency grant {agency} --category ... "
                    "--jurisdiction ...`."
                )
            if raw:
                await tail_raw(
                    use.directory, settings, _raw_printer(as_json),
                    categories=categories, jurisdictions=jurisdictions,
                    from_beginning=from_beginning or since is not None, limit=count,
                    exit_at_end=exit_at_end,
                )  # fmt: skip
                return
            async with AuditWriter.for_home(where, use.identity(), settings) as audit:
                subscriber = Subscriber(
                    use.identity(), use.directory, settings,
                    categories=categories, jurisdictions=jurisdictions,
                    from_beginning=from_beginning, since=since,
                    on_reject=_reject_printer(as_json), delivered=delivered,
                    group_id=None if group is None else new_group_id(agency, group), audit=audit,
                )  # fmt: skip
                notices = Notices(as_json, history=from_beginning or since is not None)
                inbox = Inbox(use.identity(), use.directory, settings)
                await inbox.run(notices.read, exit_at_end=True)  # what was said before
                notices.live = True
                await _with_notices(
                    subscriber.run(
                        _printer(as_json, notices), limit=count, exit_at_end=exit_at_end
                    ),
                    inbox.run(notices.read, exit_at_end=exit_at_end),
                    exit_at_end=exit_at_end,
                )

    try:
        asyncio.run(_until_signalled(follow()))
    finally:
        if delivered is not None:
            delivered.close()


async def _until_signalled(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work``; SIGTERM or SIGINT stops it at its next await and waits while it commits
    what it showed and closes its clients, so `kill PID` or Ctrl-C never shows a report twice
    on the next run, and tail exits 0. A second signal during that drain (Kafka unreachable)
    exits at once with 128 + the signal's number (:mod:`broker.shutdown`)."""
    await until_signalled(work)


_PRECEDENCE_STYLE = {
    "FLASH": "bold white on red",
    "IMMEDIATE": "bold yellow",
    "PRIORITY": "cyan",
    "ROUTINE": "dim",
}


async def _with_notices(
    reports: Coroutine[Any, Any, None], inbox: Coroutine[Any, Any, None], *, exit_at_end: bool
) -> None:
    """Follow the reports and the inbox together; done when the reports are (and, with
    ``exit_at_end``, the inbox caught up too)."""
    notices = asyncio.ensure_future(inbox)
    try:
        await reports
        if exit_at_end:
            await notices
    finally:
        notices.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await notices


_MARK = {"supersede": "SUPERSEDED", "retract": "RETRACTED", "purge": "PURGED"}


class Notices:
    """The originators' notices from the agency's inbox: printed as they come (and, with
    ``history``, those sent before), and the one in force on each report, which the report
    printer marks (a purged report is not printed at all)."""

    def __init__(self, as_json: bool, *, history: bool) -> None:
        self.as_json = as_json
        self.history = history
        self.live = False
        self.in_force: dict[tuple[str, uuid.UUID], Notice] = {}

    async def read(self, delivery: InboxDelivery) -> None:
        if not isinstance(delivery, NoticeDelivery) or not delivery.notice.action.changes_report:
            return
        notice = delivery.notice
        key = (notice.sender, notice.report_id)
        held = self.in_force.get(key)
        if held is None or notice.action.rank >= held.action.rank:
            self.in_force[key] = notice
        if self.live or self.history:
            self.show(notice)

    def show(self, notice: Notice) -> None:
        if self.as_json:
            sys.stdout.write(json_line({"notice": notice.model_dump(mode="json")}) + "\n")
            sys.stdout.flush()
            return
        parts: list[str | tuple[str, str]] = [
            (f"{_MARK[notice.action]:<9}", "bold magenta"),
            f" {notice.created_at:%Y-%m-%d %H:%M}Z ",
            (notice.sender, "bold"),
            f" {notice.report_id}",
        ]
        if notice.superseded_by is not None:
            parts.append(f" by {notice.superseded_by}")
        if notice.action is not NoticeAction.PURGE:
            parts.append(f": {notice.reason}")
        out_console.print(line(*parts))


def _printer(as_json: bool, notices: Notices | None = None) -> Any:
    async def show(delivery: Delivery) -> None:
        report, header = delivery.report, delivery.header
        notice = (
            None if notices is None else notices.in_force.get((header.sender, header.message_id))
        )
        if notice is not None and notice.action is NoticeAction.PURGE:
            return  # purged by its originator: never shown
        if as_json:
            record = {
                "topic": delivery.topic,
                "partition": delivery.partition,
                "offset": delivery.offset,
                "header": header.model_dump(mode="json"),
                "report": report.model_dump(mode="json"),
            }
            late = delivery.late_by_s
            if late is not None:
                record["late_by_s"] = round(late, 1)
            if notice is not None:
                record["notice"] = notice.model_dump(mode="json")
            sys.stdout.write(json_line(record) + "\n")
            sys.stdout.flush()
            return
        style = _PRECEDENCE_STYLE.get(header.precedence, "")
        marked: list[str | tuple[str, str]] = []
        if notice is not None:
            marked = [(f"[{_MARK[notice.action]}: {notice.reason}] ", "bold magenta")]
        late = delivery.late_by_s
        if late is not None:
            marked.append((f"[LATE: sent {age_text(late)} after it was written] ", "yellow"))
        out_console.print(
            line(
                *marked,
                (f"{header.precedence:<9}", style),
                f" {header.created_at:%Y-%m-%d %H:%M}Z ",
                (header.sender, "bold"),
                f" {header.category} {header.jurisdiction} {header.tlp}  {report.title}",
                *(
                    [(f"  [{', '.join(report.handling.conditions)}]", "yellow")]
                    if report.handling.conditions
                    else []
                ),
            )
        )

    return show


def _reject_printer(as_json: bool) -> Any:
    async def flag(source: Source, reason: str, detail: str) -> None:
        if as_json:
            record = {
                "quarantined": True,
                "reason": reason,
                "detail": detail,
                "source": str(source),
            }
            sys.stdout.write(json_line(record) + "\n")
            sys.stdout.flush()
        else:
            out_console.print(line(("QUARANTINED", "bold red"), f" {reason}: {detail} ({source})"))

    return flag


def _raw_printer(as_json: bool) -> Any:
    async def show(source: Source, verdict: RawVerdict) -> None:
        if not isinstance(verdict, Verified | Rejected):
            return  # skipped: outside the requested categories or jurisdictions
        header = verdict.header if isinstance(verdict, Verified) else None
        if as_json:
            record: dict[str, Any] = {"source": str(source), "verified": header is not None}
            if header is not None:
                record["header"] = header.model_dump(mode="json")
            if isinstance(verdict, Rejected):
                record["reason"] = str(verdict.reason)
            sys.stdout.write(json_line(record) + "\n")
            sys.stdout.flush()
        elif header is not None:
            out_console.print(
                line(
                    f"{header.precedence:<9} {header.created_at:%Y-%m-%d %H:%M}Z {header.sender} "
                    f"{header.category} {header.jurisdiction} {header.tlp} "
                    f"to {len(header.recipients)} key(s) ({source})"
                )
            )
        else:
            reason = verdict.reason if isinstance(verdict, Rejected) else "unknown"
            out_console.print(line(("UNVERIFIED", "bold red"), f" {reason} ({source})"))

    return show


def _read(source: str) -> str:
    where = "standard input" if source == "-" else repr(source)
    try:
        return sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaValidationError(f"cannot read {where}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SchemaValidationError(
            f"{where} is not UTF-8 text (byte {exc.start}); nothing was published: pass a "
            "JSON report, or JSON lines of reports"
        ) from exc


def _refuse_published(home: Path, agency: str, reports: list[Report]) -> None:
    """Refuse reports whose message id this home published before: recipients would
    quarantine a second envelope with the same id as a replay."""
    ledger = SentLedger.for_home(home, agency)
    try:
        again = [str(r.message_id) for r in reports if ledger.sealed_to(r.message_id) is not None]
    finally:
        ledger.close()
    if again:
        raise SchemaValidationError(
            f"{', '.join(again[:5])}{' ...' if len(again) > 5 else ''}: published from this home "
            "before; a report is published once (recipients refuse a second envelope with the "
            "same message_id as a replay). Leave message_id out to publish it as a new report; "
            "nothing was published."
        )


def _parse_reports(text: str, agency: str) -> list[Report]:
    """One JSON document, or JSON lines; all valid, or a SchemaValidationError naming lines."""
    stripped = text.strip()
    if not stripped:
        raise SchemaValidationError("no report given: pass a JSON file, or JSON lines on stdin")
    try:
        documents = [(1, orjson.loads(stripped))]
    except orjson.JSONDecodeError:
        documents = []
        for number, row in enumerate(text.splitlines(), start=1):
            if row.strip():
                try:
                    documents.append((number, orjson.loads(row)))
                except orjson.JSONDecodeError as exc:
                    raise SchemaValidationError(
                        f"line {number} is not JSON ({exc}); nothing was published"
                    ) from exc
    reports, problems = [], []
    now = datetime.now(UTC).isoformat()
    for number, document in documents:
        if not isinstance(document, dict):
            problems.append(f"line {number}: expected a JSON object (a report)")
            continue
        filled = {
            "message_id": str(uuid.uuid4()),
            "created_at": now,
            "sender": agency,
            "schema_version": "1.0",
            **document,
        }
        try:
            reports.append(Report.model_validate(filled))
        except ValidationError as exc:
            problems.append(_describe(f"line {number}", exc))
    if problems:
        raise SchemaValidationError(
            "invalid report(s); nothing was published:\n" + "\n".join(problems)
        )
    return reports


def _describe(where: str, exc: ValidationError) -> str:
    return "\n".join(f"{where}: {problem}" for problem in describe_validation_error(exc))
