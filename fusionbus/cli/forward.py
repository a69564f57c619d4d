"""``fusionbus forward`` and ``fusionbus consent``: passing a received report on, with the
originator's consent where its handling asks for it, and the originator's answer.

::

    fusionbus forward MESSAGE_ID --agency anf --to fia [--note TEXT]      # forward it
    fusionbus forward MESSAGE_ID --agency anf --to fia --ask [--note TEXT] # ask consent first
    fusionbus consent MESSAGE_ID --agency customs --forwarder anf --to fia --reason TEXT [--decline]

``forward`` finds the report among what the agency may read (as ``receipt`` does) and seals
a :class:`schemas.Forward` carrying the originator's own signed content to the other
agency's inbox; the originator is told (``forwarded`` feedback). A report whose handling
limits onward sharing (``TLP:RED``, ``TLP:AMBER+STRICT``, ``no_onward_dissemination``) is
forwarded only with the originator's signed consent naming that agency, which ``forward``
looks for in the agency's inbox and carries along; without it, it refuses and says how to
ask. ``consent`` is the originator's answer, sent to the asking recipient alone.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from broker.audit import AuditWriter
from broker.config import KafkaSettings
from broker.envelope.forward import needs_consent
from broker.errors import ConfigError, DisseminationError
from broker.federation.source import AgencyDirectory, HomeDirectory
from broker.home import kafka_settings, resolve_home
from consumers import Inbox, InboxDelivery, NoticeDelivery
from fusionbus.cli import _params
from fusionbus.cli._common import BootstrapOpt, HomeOpt
from fusionbus.cli._console import say
from fusionbus.cli.feedback import AgencyOpt, MessageArg, find_delivery
from fusionbus.cli.notices import _sent
from producers import FeedbackSender
from schemas import Feedback, Forward, Notice, NoticeAction, Outcome

__all__ = ["consent", "forward"]

ToOpt = Annotated[
    str,
    typer.Option(
        "--to", parser=_params.agency_id, metavar="ID", help="The agency to forward it to."
    ),
]
NoteOpt = Annotated[
    str | None,
    typer.Option(parser=_params.printable(2000), metavar="TEXT", help="Why, for its people."),
]


def forward(  # noqa: PLR0917 - typer maps each parameter to an option
    message_id: MessageArg,
    agency: AgencyOpt,
    to: ToOpt,
    ask: Annotated[
        bool, typer.Option("--ask", help="Ask the originator's consent instead of forwarding.")
    ] = False,
    note: NoteOpt = None,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Forward a report the agency received to another agency, with the originator's own
    signature (and consent, where the handling needs it); print the forward's id."""
    if to == agency:
        raise typer.BadParameter("a report is forwarded to another agency", param_hint="--to")
    where = resolve_home(home, agency=agency)
    directory = HomeDirectory(where, agency, signs=True)
    settings = kafka_settings(where, bootstrap, agency=agency)

    async def act() -> str:
        async with directory.started(settings) as use:
            found = await find_delivery(use, settings, message_id, None)
            report, original = found.report, found.header
            withdrawn, answer = await _inbox_word(use, settings, message_id, original.sender, to)
            if withdrawn is not None:
                raise ConfigError(
                    f"{original.sender} {_DONE[withdrawn.action]} report {message_id} "
                    f"({withdrawn.reason}); it is not forwarded"
                )
            if to == original.sender:
                raise ConfigError(f"{to} is the report's originator: it has the report")
            if to not in use.directory.snapshot.records:
                raise ConfigError(f"{to} is not an agency of the directory")
            async with (
                AuditWriter.for_home(where, use.identity(), settings) as audit,
                FeedbackSender(use.identity(), use.directory, settings, audit=audit) as sender,
            ):
                if ask:
                    request = Feedback(
                        message_id=uuid.uuid4(), report_id=message_id,
                        originator=original.sender, sender=agency, created_at=datetime.now(UTC),
                        outcome=Outcome.FORWARD_REQUESTED, forward_to=to, note=note,
                    )  # fmt: skip
                    await sender.send(request, original)
                    say(
                        "Asked {originator} to let {agency} forward {id} to {to}.",
                        originator=original.sender, agency=agency, id=message_id, to=to,
                    )  # fmt: skip
                    return str(request.message_id)
                signed_consent = None
                why = needs_consent(report)
                if why is not None:
                    signed_consent = answer
                    if signed_consent is None:
                        raise DisseminationError(
                            f"report {message_id} may be forwarded only with {original.sender}'s "
                            f"consent ({why}), and {agency}'s inbox holds none for {to}: ask "
                            f"with `fusionbus forward {message_id} --agency {agency} --to {to} "
                            "--ask`, then forward once the originator consented"
                        )
                item = Forward(
                    message_id=uuid.uuid4(), sender=agency, created_at=datetime.now(UTC),
                    report_id=message_id, originator=original.sender, to=to,
                    original=found.signed.decode("ascii"),
                    consent=None if signed_consent is None else signed_consent.decode("ascii"),
                    note=note,
                )  # fmt: skip
                await sender.forward(item, original)
                say("Forwarded {id} to {to}; {originator} was told.", id=message_id, to=to,
                    originator=original.sender)  # fmt: skip
                return str(item.message_id)

    typer.echo(asyncio.run(act()))


_DONE = {
    NoticeAction.SUPERSEDE: "superseded",
    NoticeAction.RETRACT: "retracted",
    NoticeAction.PURGE: "purged",
}


async def _inbox_word(
    use: AgencyDirectory, settings: KafkaSettings, report_id: uuid.UUID, originator: str, to: str
) -> tuple[Notice | None, bytes | None]:
    """What the originator said about ``report_id`` in the agency's inbox: the notice in
    force that changed it (supersede, retract, purge), if any, and its latest answer to
    forwarding it to ``to``'s signed notice, if that answer is a consent."""
    changes: list[Notice] = []
    answers: list[NoticeDelivery] = []

    async def keep(delivery: InboxDelivery) -> None:
        if not isinstance(delivery, NoticeDelivery):
            return
        notice = delivery.notice
        if notice.report_id != report_id or notice.sender != originator:
            return
        if notice.action.changes_report:
            changes.append(notice)
        elif notice.forward_to == to:
            answers.append(delivery)

    await Inbox(use.identity(), use.directory, settings).run(keep, exit_at_end=True)
    in_force = max(changes, key=lambda n: (n.action.rank, n.created_at), default=None)
    if not answers:
        return in_force, None
    latest = max(answers, key=lambda d: (d.notice.created_at, str(d.notice.message_id)))
    if latest.notice.action is not NoticeAction.CONSENT:
        say("{originator} declined: {reason}", originator=originator, reason=latest.notice.reason)
        return in_force, None
    return in_force, latest.signed


def consent(  # noqa: PLR0917 - typer maps each parameter to an option
    message_id: MessageArg,
    agency: AgencyOpt,
    forwarder: Annotated[
        str,
        typer.Option(
            parser=_params.agency_id, metavar="ID", help="The recipient that asked to forward it."
        ),
    ],
    to: ToOpt,
    reason: Annotated[
        str,
        typer.Option(parser=_params.printable(2000), metavar="TEXT", help="Why, for its people."),
    ],
    decline: Annotated[bool, typer.Option("--decline", help="Refuse instead.")] = False,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Answer a recipient's request to forward one of the agency's reports: consent (or
    --decline), sent to that recipient alone; print the answer's id."""
    if to in (agency, forwarder):
        raise typer.BadParameter(
            "expected a third agency: not the originator, not the forwarder", param_hint="--to"
        )
    where = resolve_home(home, agency=agency)
    sent, routing = _sent(where, agency, message_id)
    if forwarder not in sent.sealed_to:
        raise ConfigError(
            f"report {message_id} was not sealed to {forwarder}, so it has nothing to forward"
        )
    notice = Notice(
        message_id=uuid.uuid4(), report_id=message_id, sender=agency,
        created_at=datetime.now(UTC), reason=reason, forward_to=to,
        action=NoticeAction.DECLINE if decline else NoticeAction.CONSENT,
    )  # fmt: skip
    directory = HomeDirectory(where, agency, signs=True)
    settings = kafka_settings(where, bootstrap, agency=agency)

    async def send() -> None:
        async with (
            directory.started(settings) as use,
            AuditWriter.for_home(where, use.identity(), settings) as audit,
            FeedbackSender(use.identity(), use.directory, settings, audit=audit) as sender,
        ):
            results = await sender.notify(notice, routing, [forwarder])
        error = results[forwarder]
        if isinstance(error, Exception):
            raise error

    asyncio.run(send())
    say(
        "{answer} to {forwarder} forwarding {id} to {to} sent.",
        answer="Declined" if decline else "Consent", forwarder=forwarder, id=message_id, to=to,
    )  # fmt: skip
    typer.echo(str(notice.message_id))
