"""``fusionbus status`` and ``fusionbus receipt``: the originator's view of who received a
report and what came of it, and a recipient's feedback on a report it received.

::

    fusionbus status MESSAGE_ID --agency customs [--json]         # per recipient, per stage
    fusionbus receipt MESSAGE_ID --agency anf --kind acknowledged
    fusionbus receipt MESSAGE_ID --agency anf --kind outcome --outcome seizure \\
        --quantity 72 --unit kg --note "31 bags"
    fusionbus receipt MESSAGE_ID --agency anf --kind outcome --outcome seizure \\
        --quantity 72.5 --unit kg --replaces FEEDBACK_ID           # amend (or --withdraw)

``status`` reads the agency's whole inbox (``fusionbus.inbox.<agency>.*``) once and, for a
report ``publish`` sent from this home, lists every agency it was sealed to
(:class:`producers.ledger.SentLedger`), leaving out feedback from any other. ``receipt``
finds the report among what the agency may read (its grants' topics, from the beginning,
or from ``--since``), so it can seal the feedback with the report's handling; the gateway's
``POST /v1/reports/{id}/feedback`` does the same from its store, at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer
from pydantic import ValidationError

from broker.audit import AuditWriter
from broker.config import KafkaSettings
from broker.errors import ConfigError, SchemaValidationError
from broker.federation.source import AgencyDirectory, HomeDirectory
from broker.home import kafka_settings, resolve_home
from consumers import (
    Delivery,
    FeedbackDelivery,
    Inbox,
    InboxDelivery,
    Subscriber,
    outsiders,
    recipient_states,
)
from fusionbus.cli import _params
from fusionbus.cli._common import BootstrapOpt, HomeOpt
from fusionbus.cli._console import json_line, line, out_console, say
from producers import FeedbackSender
from producers.ledger import SentLedger
from schemas import Feedback, Outcome, describe_validation_error
from schemas.envelope import RoutingHeader

__all__ = ["receipt", "status"]

AgencyOpt = Annotated[
    str,
    typer.Option(
        "--agency", parser=_params.agency_id, metavar="ID", help="The agency to act as, e.g. anf."
    ),
]
_STAGES = ("received", "acknowledged", "actioned", "outcome")


def _message_id(value: object) -> uuid.UUID:
    text = value if isinstance(value, str) else str(value)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text[:60]!r} is not a message id: expected a UUID such as `publish` prints"
        ) from None


_KINDS = ("acknowledged", "actioned", "outcome")
_RESULTS = tuple(str(o) for o in Outcome if o.is_result)


def _kind(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if text not in _KINDS:
        raise typer.BadParameter(
            f"{text[:40]!r} is not a kind of receipt: expected acknowledged, actioned or "
            "outcome (received is sent by the subscriber itself)"
        )
    return text


def _outcome(value: object) -> Outcome:
    text = value if isinstance(value, str) else str(value)
    if text not in _RESULTS:
        raise typer.BadParameter(
            f"{text[:40]!r} is not an outcome: expected one of {', '.join(_RESULTS)}"
        )
    return Outcome(text)


def _quantity(value: object) -> Decimal:
    text = value if isinstance(value, str) else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise typer.BadParameter(f"{text[:40]!r} is not a number, like 72 or 12.5") from None
    if not number.is_finite() or number <= 0:
        raise typer.BadParameter(f"{text[:40]!r}: expected a number greater than 0")
    digits = number.as_tuple()
    decimals = -digits.exponent if isinstance(digits.exponent, int) else 0
    if len(digits.digits) > 12 or decimals > 3:
        raise typer.BadParameter(
            f"{text[:40]!r}: expected at most 12 digits, 3 of them after the point"
        )
    return number


MessageArg = Annotated[
    uuid.UUID,
    typer.Argument(parser=_message_id, metavar="MESSAGE_ID", help="The report's message id."),
]


def status(
    message_id: MessageArg,
    agency: AgencyOpt,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per recipient.")] = False,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Show what each recipient said about one of the agency's reports (from its inbox)."""
    where = resolve_home(home, agency=agency)
    directory = HomeDirectory(where, agency)
    settings = kafka_settings(where, bootstrap, agency=agency)
    found: list[Feedback] = []

    async def keep(delivery: InboxDelivery) -> None:
        if isinstance(delivery, FeedbackDelivery) and delivery.feedback.report_id == message_id:
            found.append(delivery.feedback)

    async def read() -> None:
        async with directory.started(settings) as use:
            await Inbox(use.identity(), use.directory, settings).run(keep, exit_at_end=True)

    asyncio.run(read())
    ledger = SentLedger.for_home(where, agency)
    try:
        sealed_to = ledger.sealed_to(message_id)
    finally:
        ledger.close()
    if sealed_to is None:
        say(
            "Note: {id} was not published from this home, so whom it was sealed to is not known "
            "here; feedback from any agency is shown.",
            id=message_id,
        )
    elif strangers := outsiders(found, sealed_to):
        say(
            "Ignored feedback from {agencies}: {id} was not sealed to them.",
            agencies=", ".join(strangers), id=message_id,
        )  # fmt: skip
    states = recipient_states(found, sealed_to=sealed_to)
    if not states:
        say("No recipient has given feedback on {id} yet (its inbox holds none).", id=message_id)
        return
    for state in states.values():
        document = state.document()
        if as_json:
            typer.echo(json_line({"report_id": str(message_id), **document}))
            continue
        parts: list[str | tuple[str, str]] = [(f"{state.agency:<10}", "bold")]
        for name in _STAGES:
            stage = document[name]
            if not isinstance(stage, dict):
                parts.append(f"  {name}: -")
                continue
            text = f"  {name}: {stage['at']}"
            if "outcome" in stage:
                text = f"  {stage['outcome']} {stage.get('quantity', '')}{stage.get('unit', '')}"
                text = f"{text.rstrip()} at {stage['at']}"
            parts.append(text)
            if "note" in stage:
                parts.append(f" ({stage['note']})")
        applied = document["applied"]
        if isinstance(applied, list) and applied:
            parts.append(f"  applied: {applied[-1]['at']}")
        forwards = document["forwards"]
        for forward in forwards if isinstance(forwards, list) else ():
            kind = str(forward["kind"]).replace("_", " ")
            parts.append(f"  {kind} {forward['forward_to']} at {forward['at']}")
        out_console.print(line(*parts))


def receipt(  # noqa: PLR0917 - typer maps each parameter to an option
    message_id: MessageArg,
    agency: AgencyOpt,
    kind: Annotated[
        str,
        typer.Option(parser=_kind, metavar="KIND", help="acknowledged, actioned or outcome."),
    ],
    outcome: Annotated[
        Outcome | None,
        typer.Option(
            parser=_outcome,
            metavar="OUTCOME",
            help="With --kind outcome: seizure, arrest, no_trace, false_positive or other.",
        ),
    ] = None,
    quantity: Annotated[
        Decimal | None,
        typer.Option(parser=_quantity, metavar="N", help="How much was seized (with --unit)."),
    ] = None,
    unit: Annotated[
        str | None,
        typer.Option(parser=_params.printable(200), metavar="UNIT", help="kg, l, pieces, PKR, ..."),
    ] = None,
    note: Annotated[
        str | None, typer.Option(parser=_params.printable(2000), metavar="TEXT")
    ] = None,
    replaces: Annotated[
        uuid.UUID | None,
        typer.Option(
            parser=_message_id, metavar="FEEDBACK_ID", help="Amend this earlier feedback."
        ),
    ] = None,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Withdraw the feedback --replaces names.")
    ] = False,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=_params.moment,
            metavar="TIME",
            help="Look for the report from this time on (default: the topics' beginning).",
        ),
    ] = None,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Tell the originator of a report the agency received that it was acknowledged or
    actioned, or what came of it; print the receipt's id."""
    if (kind == "outcome") != (outcome is not None):
        raise typer.BadParameter(
            "--outcome goes with --kind outcome, and --kind outcome needs it",
            param_hint="--outcome",
        )
    said = outcome if outcome is not None else Outcome(kind)
    where = resolve_home(home, agency=agency)
    directory = HomeDirectory(where, agency, signs=True)
    settings = kafka_settings(where, bootstrap, agency=agency)

    async def give() -> Feedback:
        async with directory.started(settings) as use:
            about = await _find(use, settings, message_id, since)
            try:
                item = Feedback(
                    message_id=uuid.uuid4(), report_id=message_id, originator=about.sender,
                    sender=agency, created_at=datetime.now(UTC), outcome=said,
                    quantity=quantity, unit=unit, note=note, replaces=replaces,
                    withdrawn=withdraw,
                )  # fmt: skip
            except ValidationError as exc:
                raise SchemaValidationError(
                    "the feedback is not valid: " + "; ".join(describe_validation_error(exc))
                ) from None
            async with (
                AuditWriter.for_home(where, use.identity(), settings) as audit,
                FeedbackSender(use.identity(), use.directory, settings, audit=audit) as sender,
            ):
                await sender.send(item, about)
            return item

    sent = asyncio.run(give())
    if withdraw:
        say("Withdrawal of {earlier} on {report} sent to {to}.", earlier=replaces,
            report=message_id, to=sent.originator)  # fmt: skip
    else:
        say("Receipt {outcome} on {report} sent to {to}.", outcome=str(said), report=message_id,
            to=sent.originator)  # fmt: skip
    typer.echo(str(sent.message_id))


async def _find(
    use: AgencyDirectory, settings: KafkaSettings, message_id: uuid.UUID, since: datetime | None
) -> RoutingHeader:
    """The verified header of report ``message_id`` among what the agency may read."""
    return (await find_delivery(use, settings, message_id, since)).header


async def find_delivery(
    use: AgencyDirectory, settings: KafkaSettings, message_id: uuid.UUID, since: datetime | None
) -> Delivery:
    """Report ``message_id``, verified, among what the agency may read (its grants' topics
    from the beginning, or from ``since``)."""
    grants = use.record.grants
    if not grants:
        raise ConfigError(f"{use.record.id} has no grants, so it received no report to answer")
    found: list[Delivery] = []

    async def keep(delivery: Delivery) -> None:
        if delivery.header.message_id == message_id:
            found.append(delivery)

    subscriber = Subscriber(
        use.identity(), use.directory, settings,
        categories=sorted({g.category for g in grants}),
        jurisdictions=sorted({g.jurisdiction for g in grants}),
        from_beginning=True, since=since,
    )  # fmt: skip
    await subscriber.run(keep, exit_at_end=True)
    if not found:
        raise ConfigError(
            f"{use.record.id} received no report {message_id} (looked through its grants' "
            "topics; an expired report is no longer there): check the id, or pass --since"
        )
    header = found[-1].header
    if header.sender == use.record.id:
        raise ConfigError(
            f"report {message_id} is {use.record.id}'s own: receipts go to its originator"
        )
    return found[-1]
