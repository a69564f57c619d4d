"""Feedback at the gateway: what recipients said about this agency's reports, and the
feedback this agency gives on reports it received.

::

    store = FeedbackStore(files)
    store.add(delivery, now)                  # from the gateway's inbox reader
    store.for_report(report_id)               # every feedback on one report, any sender
    feedback = parse_feedback(body, about=header, agency="anf", now=now)   # POST body

The store holds feedback messages (no report content; a note may hold text, so the file is
0600 like the others). Recipients' states are computed from it on each read
(:func:`consumers.recipient_states`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from consumers import FeedbackDelivery, NoticeDelivery
from gateway._files import GatewayFiles, connect
from gateway.problems import FieldError, Problem
from schemas import Feedback
from schemas._base import AgencyId, Text
from schemas.envelope import RoutingHeader

__all__ = [
    "FEEDBACK_FIELDS",
    "FeedbackStore",
    "parse_act",
    "parse_feedback",
    "parse_retraction",
]

FEEDBACK_FIELDS = frozenset({"outcome", "quantity", "unit", "note", "replaces", "withdrawn"})
"""What a POST of feedback may say; the rest is filled in by the gateway."""
_TEXT: TypeAdapter[str] = TypeAdapter(Text)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    message_id TEXT PRIMARY KEY,
    report_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    received_at TEXT NOT NULL,
    feedback TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_report ON feedback (report_id);
CREATE TABLE IF NOT EXISTS answers (
    notice_id TEXT PRIMARY KEY,
    report_id TEXT NOT NULL,
    originator TEXT NOT NULL,
    forward_to TEXT NOT NULL,
    action TEXT NOT NULL,
    received_at TEXT NOT NULL,
    signed TEXT NOT NULL
);
"""


class FeedbackStore:
    """Feedback on this agency's reports, in ``<home>/gateway/<agency>/feedback.sqlite``."""

    def __init__(self, files: GatewayFiles) -> None:
        self._db = connect(files, files.feedback)
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, delivery: FeedbackDelivery, now: datetime) -> bool:
        """Keep ``delivery``'s feedback; False if it was kept before."""
        feedback = delivery.feedback
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO feedback (message_id, report_id, sender, received_at, "
            "feedback) VALUES (?, ?, ?, ?, ?)",
            (
                str(feedback.message_id), str(feedback.report_id), feedback.sender,
                now.isoformat(), feedback.model_dump_json(),
            ),
        )  # fmt: skip
        return cursor.rowcount == 1

    def add_answer(self, delivery: NoticeDelivery, now: datetime) -> bool:
        """Keep an originator's answer (consent or decline) to this agency's request to
        forward one of its reports; False if it was kept before."""
        notice = delivery.notice
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO answers (notice_id, report_id, originator, forward_to, "
            "action, received_at, signed) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                str(notice.message_id), str(notice.report_id), notice.sender,
                str(notice.forward_to), str(notice.action), now.isoformat(),
                delivery.signed.decode("ascii"),
            ),
        )  # fmt: skip
        return cursor.rowcount == 1

    def answer(self, report_id: str, originator: str, forward_to: str) -> tuple[str, bytes] | None:
        """The originator's latest answer to forwarding ``report_id`` to ``forward_to``:
        (``consent`` or ``decline``, its signed notice), or None."""
        row = self._db.execute(
            "SELECT action, signed FROM answers WHERE report_id = ? AND originator = ? AND "
            "forward_to = ? ORDER BY rowid DESC LIMIT 1",
            (report_id, originator, forward_to),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]).encode("ascii"))

    def for_report(self, report_id: str) -> list[Feedback]:
        rows = self._db.execute(
            "SELECT feedback FROM feedback WHERE report_id = ? ORDER BY rowid", (report_id,)
        )
        return [Feedback.model_validate_json(row[0]) for row in rows]


def parse_feedback(body: bytes, *, about: RoutingHeader, agency: str, now: datetime) -> Feedback:
    """The feedback a POST body asks this agency to give on the report ``about``; a 400 or
    422 Problem naming each field otherwise."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            400, "malformed-json", "The body is not JSON",
            detail=f"the request body is not JSON ({exc}); send a JSON object such as "
            '{"outcome": "acknowledged"}',
        ) from exc  # fmt: skip
    if not isinstance(document, dict):
        raise Problem.invalid(
            [FieldError("", "body: expected a JSON object of feedback")], what="feedback"
        )
    unknown = sorted(set(document) - FEEDBACK_FIELDS)
    if unknown:
        raise Problem.invalid(
            [
                FieldError(
                    f"/{name}",
                    f"{name}: not a field of feedback here; send "
                    f"{', '.join(sorted(FEEDBACK_FIELDS))} (the gateway fills in the rest)",
                )
                for name in unknown
            ],
            what="feedback",
        )
    if document.get("outcome") == "received":
        raise Problem.invalid(
            [
                FieldError(
                    "/outcome",
                    "outcome: received is sent by the gateway's subscriber itself when it "
                    "stores a report; send acknowledged, actioned or what came of it",
                )
            ],
            what="feedback",
        )
    filled = {
        **document,
        "message_id": str(uuid.uuid4()),
        "report_id": str(about.message_id),
        "originator": about.sender,
        "sender": agency,
        "created_at": now.isoformat(),
    }
    try:
        return Feedback.model_validate(filled)
    except ValidationError as exc:
        raise Problem.invalid(Problem.field_errors(exc, ""), what="feedback") from None


def parse_retraction(body: bytes) -> tuple[str, bool]:
    """The reason and purge flag a POST of a retraction gives; a 400 or 422 otherwise."""
    act = parse_act(
        body, {"reason": "text", "purge": "flag"}, required=frozenset({"reason"}),
        what="retraction",
    )  # fmt: skip
    return str(act["reason"]), bool(act.get("purge", False))


_AGENCY: TypeAdapter[str] = TypeAdapter(AgencyId)
_KINDS: dict[str, tuple[TypeAdapter[Any], str]] = {
    "agency": (_AGENCY, "an agency id, like fia"),
    "text": (_TEXT, "1 to 2,000 characters with no control codes"),
    "flag": (TypeAdapter(bool), "true or false"),
}


def parse_act(
    body: bytes, fields: dict[str, str], *, required: frozenset[str], what: str
) -> dict[str, Any]:
    """A small JSON object of named fields (each of a kind in ``_KINDS``): the values, or a
    400 or 422 Problem naming every wrong field."""
    try:
        document: Any = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Problem(
            400, "malformed-json", "The body is not JSON",
            detail=f"the request body is not JSON ({exc}); send a JSON object of "
            f"{', '.join(sorted(fields))}",
        ) from exc  # fmt: skip
    if not isinstance(document, dict):
        raise Problem.invalid(
            [FieldError("", f"body: expected a JSON object of {', '.join(sorted(fields))}")],
            what=what,
        )
    errors = [
        FieldError(f"/{name}", f"{name}: not a field here; send {', '.join(sorted(fields))}")
        for name in sorted(set(document) - set(fields))
    ]
    errors += [
        FieldError(f"/{name}", f"{name}: required") for name in sorted(required - set(document))
    ]
    values: dict[str, Any] = {}
    for name, kind in fields.items():
        if name not in document:
            continue
        adapter, form = _KINDS[kind]
        try:
            values[name] = adapter.validate_python(document[name], strict=True)
        except ValidationError:
            errors.append(FieldError(f"/{name}", f"{name}: expected {form}"))
    if errors:
        raise Problem.invalid(errors, what=what)
    return values
