"""From a POSTed body to reports ready to publish, and the status of each report posted.

::

    reports = parse_report(body, agency="customs", now=now)          # or raises Problem
    reports = parse_batch(body, agency="customs", now=now, limit=500)
    statuses = StatusStore(files); statuses.accepted(ids, token, now); statuses.published(...)

A body is filled in as ``fusionbus publish`` fills a report in: ``message_id``,
``created_at``, ``sender`` (this gateway's agency) and ``schema_version`` when absent. Every
report of a batch is validated before anything is published; the problem names each wrong
field by JSON Pointer (``/3/handling/tlp`` is the fourth report's TLP) with the message the
command line gives. A report naming another sender is refused: a gateway signs only as its
own agency.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from gateway._files import GatewayFiles, connect
from gateway.problems import FieldError, Problem
from schemas import Report

__all__ = ["ReportStatus", "StatusStore", "parse_batch", "parse_report"]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            400,
            "malformed-json",
            "The body is not JSON",
            detail=f"the request body is not JSON ({exc}); send one report as a JSON object "
            "(or, to /v1/reports:batch, a JSON array of them)",
        ) from exc


def _fill(document: object, agency: str, now: datetime, pointer: str) -> Report | list[FieldError]:
    if not isinstance(document, dict):
        return [FieldError(pointer, f"{pointer or 'body'}: expected a JSON object (a report)")]
    sender = document.get("sender", agency)
    if sender != agency:
        return [
            FieldError(
                f"{pointer}/sender",
                f"sender: got {str(sender)[:40]!r}; this gateway publishes as {agency!r} only "
                f'(leave sender out, or set "sender": "{agency}")',
            )
        ]
    filled = {
        "message_id": str(uuid.uuid4()),
        "created_at": now.isoformat(),
        "sender": agency,
        "schema_version": "1.0",
        **document,
    }
    try:
        return Report.model_validate(filled)
    except ValidationError as exc:
        return Problem.field_errors(exc, pointer)


def parse_report(body: bytes, *, agency: str, now: datetime) -> Report:
    """One report from a JSON object, filled in and validated, or a Problem."""
    result = _fill(_json(body), agency, now, "")
    if isinstance(result, Report):
        return result
    raise Problem.invalid(result)


def parse_batch(body: bytes, *, agency: str, now: datetime, limit: int) -> list[Report]:
    """Reports from a JSON array, all valid, or a Problem naming every wrong field."""
    documents = _json(body)
    if not isinstance(documents, list) or not documents:
        raise Problem.invalid([FieldError("", "body: expected a non-empty JSON array of reports")])
    if len(documents) > limit:
        raise Problem(
            413,
            "batch-too-large",
            "Too many reports in one batch",
            detail=f"the batch holds {len(documents)} reports; at most {limit} go in one "
            "request: split it",
        )
    reports: list[Report] = []
    errors: list[FieldError] = []
    for number, document in enumerate(documents):
        result = _fill(document, agency, now, f"/{number}")
        if isinstance(result, Report):
            reports.append(result)
        else:
            errors.extend(result)
    if errors:
        raise Problem.invalid(errors)
    return reports


@dataclass(frozen=True, slots=True)
class ReportStatus:
    """Where a posted report stands: ``accepted`` (being sealed and sent), ``queued`` (sealed,
    in the outbox, waiting for Kafka), ``published`` (Kafka acknowledged it) or ``failed``
    (refused, or its envelope expired in the outbox)."""

    message_id: str
    state: str
    accepted_at: str
    updated_at: str
    recipients: int
    detail: str
    sealed_to: str = ""
    """The agencies (other than this one) it was sealed to, comma-separated."""

    @property
    def agencies(self) -> list[str]:
        return [a for a in self.sealed_to.split(",") if a]

    def document(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "status": self.state,
            "accepted_at": self.accepted_at,
            "updated_at": self.updated_at,
            "recipients": self.recipients,
            "sealed_to": self.agencies,
            **({"detail": self.detail} if self.detail else {}),
        }


_SCHEMA = """
CREATE TABLE IF NOT EXISTS status (
    message_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    accepted_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    recipients INTEGER NOT NULL DEFAULT 0,
    detail TEXT NOT NULL DEFAULT '',
    sealed_to TEXT NOT NULL DEFAULT ''
)
"""


class StatusStore:
    """The status of each report posted, in ``<home>/gateway/<agency>/ingest.sqlite``."""

    def __init__(self, files: GatewayFiles) -> None:
        self._db = connect(files, files.ingest)
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(status)")}
        if "sealed_to" not in columns:  # a store made before the column existed
            self._db.execute("ALTER TABLE status ADD COLUMN sealed_to TEXT NOT NULL DEFAULT ''")

    def close(self) -> None:
        self._db.close()

    def accepted(self, message_ids: list[str], now: datetime) -> None:
        moment = now.isoformat()
        self._db.executemany(
            "INSERT INTO status (message_id, state, accepted_at, updated_at) "
            "VALUES (?, 'accepted', ?, ?) ON CONFLICT (message_id) DO UPDATE SET "
            "state = 'accepted', updated_at = excluded.updated_at, detail = ''",
            [(m, moment, moment) for m in message_ids],
        )

    def queue(self, message_id: str, now: datetime, *, sealed_to: Sequence[str]) -> None:
        """Sealed and kept in the outbox, waiting for Kafka (unless already settled: the
        outbox may have sent it while the answer was being written)."""
        self._db.execute(
            "UPDATE status SET state = 'queued', updated_at = ?, sealed_to = ?, detail = "
            "'waiting in the outbox for Kafka' WHERE message_id = ? AND state = 'accepted'",
            (now.isoformat(), ",".join(sealed_to), message_id),
        )

    def settle(
        self,
        message_id: str,
        now: datetime,
        *,
        recipients: int,
        detail: str,
        sealed_to: Sequence[str] = (),
    ) -> bool:
        """``published`` to ``recipients`` keys (of the agencies ``sealed_to``), or
        ``failed`` with ``detail``; whether the report was still unsettled (``accepted`` or
        ``queued``) and is settled now."""
        state = "failed" if detail else "published"
        cursor = self._db.execute(
            "UPDATE status SET state = ?, updated_at = ?, recipients = ?, detail = ?, "
            "sealed_to = ? WHERE message_id = ? AND state IN ('accepted', 'queued')",
            (state, now.isoformat(), recipients, detail, ",".join(sealed_to), message_id),
        )
        return cursor.rowcount > 0

    def recent(self, limit: int) -> list[ReportStatus]:
        """The ``limit`` reports posted last, newest first."""
        rows = self._db.execute(
            "SELECT message_id, state, accepted_at, updated_at, recipients, detail, sealed_to "
            "FROM status ORDER BY accepted_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [ReportStatus(*row) for row in rows]

    def get(self, message_id: str) -> ReportStatus | None:
        row = self._db.execute(
            "SELECT message_id, state, accepted_at, updated_at, recipients, detail, sealed_to "
            "FROM status "
            "WHERE message_id = ?",
            (message_id,),
        ).fetchone()
        return None if row is None else ReportStatus(*row)
