"""``fusionbus audit verify|show|anchor``: the tamper-evident audit trail (``docs/audit.md``).

``verify`` and ``show`` read every audit topic and the anchors' topic, as an agency
(``--agency ID``, with its certificate and directory) or as the admin (its home's
directory); ``anchor`` is the admin's: it verifies every chain and has the federation root
countersign the heads. Output for scripts goes to standard output (``--json``: one JSON
object per line); every value read from Kafka is shown as data, never as terminal markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer

from broker.audit import (
    ROOT_WRITER,
    Act,
    Anchor,
    AnchoredHead,
    AuditState,
    AuditWriter,
    ChainResult,
    Trail,
    append_record,
    publish_anchor,
    read_audit,
    sha256_hex,
    sign_anchor,
    verify_trail,
)
from broker.config import KafkaSettings
from broker.federation import Federation, LiveDirectory
from broker.federation.directory import read_root_public
from broker.federation.snapshot import DirectorySnapshot
from broker.federation.source import HomeDirectory
from broker.home import HomeConfig, HomeLayout, kafka_settings, resolve_home
from fusionbus.cli import _params
from fusionbus.cli._common import BootstrapOpt, HomeOpt
from fusionbus.cli._console import json_line, line, out_console, say

__all__ = ["audit_app", "record_admin_act", "send_admin_acts"]

log = structlog.get_logger(__name__)

audit_app = typer.Typer(
    help="The tamper-evident audit trail: verify every chain, show a report's life, anchor "
    "the chains' heads.",
    no_args_is_help=True,
)

ActAsOpt = Annotated[
    str | None,
    typer.Option(
        "--agency", parser=_params.agency_id, metavar="ID",
        help="Read as this agency (its certificate and directory); default: as the admin.",
    ),
]  # fmt: skip
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def _emit(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _report_id(value: object) -> uuid.UUID:
    text = value if isinstance(value, str) else str(value)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text[:60]!r} is not a report id: expected a UUID such as `publish` prints"
        ) from None


@contextlib.asynccontextmanager
async def _directory(
    where: Path, agency: str | None, settings: KafkaSettings
) -> AsyncIterator[DirectorySnapshot]:
    """The directory to check signers against: the agency's (files or topic), or the
    admin home's."""
    if agency is not None:
        async with HomeDirectory(where, agency).started(settings) as use:
            yield use.directory.snapshot
        return
    source = HomeConfig.read(where).directory
    if source.kind == "topic":
        async with LiveDirectory.for_home(where, settings, topic=source.topic) as live:
            yield live.snapshot
        return
    yield Federation.load(where).snapshot


async def _trail(where: Path, agency: str | None, settings: KafkaSettings) -> Trail:
    root = read_root_public(HomeLayout(where).root_public, where)
    async with _directory(where, agency, settings) as snapshot:
        topics, anchors = await read_audit(settings)
        return verify_trail(topics, anchors, snapshot, root, kept=_kept(where))


def _kept(where: Path) -> list[tuple[str, bytes]]:
    """The anchors this home keeps (``audit anchor`` wrote them here), as (where, token)."""
    path = HomeLayout(where).kept_anchors
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return []
    return [(f"{path} line {n}", token) for n, token in enumerate(lines, 1) if token.strip()]


def _keep(where: Path, token: bytes) -> None:
    path = HomeLayout(where).kept_anchors
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with path.open("ab") as kept:
        kept.write(token + b"\n")


def _settings(
    home: Path | None, agency: str | None, bootstrap: str | None
) -> tuple[Path, KafkaSettings]:
    where = resolve_home(home, agency=agency)
    return where, kafka_settings(where, bootstrap, agency=agency)


@audit_app.command("verify")
def verify(
    agency: ActAsOpt = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Walk every agency's audit chain and its anchors; name the first break of each.

    Exit 0 when every chain is intact, 1 when one is not (modified, dropped, reordered,
    forged, or rewritten after anchoring) or an anchor is not the root's.
    """
    where, settings = _settings(home, agency, bootstrap)
    trail = asyncio.run(_trail(where, agency, settings))
    anchored = _anchored(trail.anchors)
    for chain in trail.chains:
        _show_chain(chain, anchored.get(chain.writer), as_json=as_json)
    for problem in trail.bad_anchors:
        if as_json:
            _emit(json_line({"anchor": "forged", "detail": problem}))
        else:
            out_console.print(line(("ANCHOR", "bold red"), f" {problem}"))
    if trail.unknown:
        say(
            "note: {count} audit topic(s) of writers this directory does not list were not "
            "checked (e.g. {first}).",
            count=len(trail.unknown), first=trail.unknown[0],
        )  # fmt: skip
    if not trail.intact:
        broken = len(trail.breaks) + len(trail.bad_anchors)
        say(
            "the audit trail is not intact: {broken} break(s); the first of each is shown "
            "above (docs/audit.md says what each means).",
            broken=broken,
        )
        raise typer.Exit(1)
    say("every audit chain is intact ({chains} chain(s)).", chains=len(trail.chains))


def _anchored(anchors: tuple[Anchor, ...]) -> dict[str, AnchoredHead]:
    latest: dict[str, AnchoredHead] = {}
    for anchor in sorted(anchors, key=lambda a: a.issued_at):
        latest.update(anchor.heads)
    return latest


def _show_chain(chain: ChainResult, anchored: AnchoredHead | None, *, as_json: bool) -> None:
    head = chain.head
    found = chain.first_break
    if as_json:
        document: dict[str, Any] = {
            "writer": chain.writer,
            "intact": found is None,
            "records": len(chain.records),
            "head": None if head is None else {"seq": head[0], "hash": head[1]},
            "anchored": None if anchored is None else anchored.model_dump(),
            "break": None
            if found is None
            else {"kind": str(found.kind), "seq": found.seq, "offset": found.offset,
                  "detail": found.detail},
        }  # fmt: skip
        _emit(json_line(document))
        return
    if found is not None:
        out_console.print(line((f"{chain.writer}: BROKEN", "bold red"), f" {found}"))
        return
    where = "empty" if head is None else f"{len(chain.records)} record(s), head {head[1][:16]}"
    mark = "" if anchored is None else f", anchored at seq {anchored.seq}"
    out_console.print(line((f"{chain.writer}: intact", "green"), f" ({where}{mark})"))


@audit_app.command("show")
def show(
    report_id: Annotated[
        uuid.UUID,
        typer.Option("--report", parser=_report_id, metavar="ID", help="The report's id."),
    ],
    agency: ActAsOpt = None,
    as_json: JsonOpt = False,
    home: HomeOpt = None,
    bootstrap: BootstrapOpt = None,
) -> None:
    """Print a report's whole life across agencies: every audit record naming it, in time
    order (publish, deliveries, receipts, feedback, quarantines, ...)."""
    where, settings = _settings(home, agency, bootstrap)
    trail = asyncio.run(_trail(where, agency, settings))
    life = trail.life_of(report_id)
    for record in life:
        if as_json:
            _emit(json_line(record.model_dump(mode="json")))
            continue
        parties = ",".join(record.parties) or "-"
        digest = record.digests.get("envelope", "")[:16] or "-"
        code = f" {record.code}" if record.code else ""
        out_console.print(
            line(
                f"{record.at:%Y-%m-%d %H:%M:%S}Z ",
                (f"{record.writer}#{record.seq}", "bold"),
                f" {record.act}{code} parties={parties} message={record.message_id} "
                f"envelope={digest}",
            )
        )
    if trail.breaks or trail.bad_anchors:
        say("note: the audit trail is not intact; run `fusionbus audit verify` to see where.")
    if not life:
        say(
            "no audit record names report {report}: check the id (`publish` prints it), or "
            "whether the agencies that handled it run with auditing (the CLI and the gateway "
            "do).",
            report=report_id,
        )
        raise typer.Exit(1)


@audit_app.command("anchor")
def anchor(home: HomeOpt = None, bootstrap: BootstrapOpt = None) -> None:
    """Verify every chain and have the federation root countersign the heads (admin only).

    Prints each anchored head (writer, seq, hash). A broken chain is anchored up to its
    first break, and the command exits 1 naming it.
    """
    where, settings = _settings(home, None, bootstrap)
    federation = Federation.load(where)
    root = federation.root_key()

    async def run() -> tuple[Trail, int | None]:
        await send_admin_acts(where, federation, settings)
        trail = await _trail(where, None, settings)
        heads = trail.heads()
        if not heads or heads == _anchored(trail.anchors):
            return trail, None
        token = sign_anchor(heads, root, now=datetime.now(UTC))
        offset = await publish_anchor(settings, token)
        _keep(where, token)
        return trail, offset

    trail, offset = asyncio.run(run())
    for writer, head in sorted(trail.heads().items()):
        typer.echo(f"{writer} {head.seq} {head.hash}")
    if offset is None:
        say("nothing new to anchor: every chain's head is anchored already (or empty).")
    else:
        say("anchored {count} chain head(s) (fusionbus.audit-anchors@{offset}).",
            count=len(trail.heads()), offset=offset)  # fmt: skip
    if not trail.intact:
        for found in trail.breaks:
            say("{found}", found=found)
        for problem in trail.bad_anchors:
            say("{problem}", problem=problem)
        say("the trail has breaks (above); the broken chains were anchored up to them.")
        raise typer.Exit(1)


def record_admin_act(
    home: Path, federation: Federation, act: Act, agency: str, *, code: str | None = None
) -> None:
    """Put an act of the admin on ``agency``'s record on the root's chain, in the home's
    outbox (``<home>/state/_root/``): the directory commands work offline, so the record is
    sent by the next ``federation publish-directory`` or ``audit anchor``. Its digest is
    the SHA-256 of the signed directory record the act produced. A failure is logged
    (``audit.append_failed``), never raised: the directory change is made either way."""
    token = federation.snapshot.signed_records().get(agency)
    digests = {"record": sha256_hex(token)} if token is not None else {}
    try:
        state = AuditState.for_home(home, ROOT_WRITER)
    except (OSError, sqlite3.Error) as exc:
        log.error("audit.append_failed", act=act, error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400 - the message says it
        return
    try:
        append_record(
            state, ROOT_WRITER, federation.root_key(), act, at=datetime.now(UTC),
            digests=digests, parties=[agency], code=code,
        )  # fmt: skip
    except (OSError, sqlite3.Error, ValueError) as exc:
        log.error("audit.append_failed", act=act, error=f"{type(exc).__name__}: {exc}")  # noqa: TRY400 - the message says it
    finally:
        state.close()


async def send_admin_acts(home: Path, federation: Federation, settings: KafkaSettings) -> None:
    """Send the root's outbox to ``fusionbus.audit-root`` (what is left stays queued)."""
    async with AuditWriter.for_root(home, federation.root_key(), settings):
        pass  # starting sends the outbox; stopping waits for Kafka's answer
