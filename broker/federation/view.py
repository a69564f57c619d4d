"""The directory as a stream of signed records: :class:`DirectoryView` (sans-IO).

Each record offered (from the ``fusionbus.directory`` topic, key = agency id, value =
the root-signed compact JWS) is accepted only if

* the federation root signed it (:func:`~broker.federation.records.verify_record`),
* it is filed under its own agency id,
* its ``revision`` is above the highest accepted for that agency — the same revision with
  the same bytes is the record already held (a re-delivery) and changes nothing; a lower
  one is a **rollback** (an older, validly signed record replayed, e.g. one from before a
  revocation) and the same revision with other bytes is a conflicting record: both refused,
* and no key of it is listed for another agency.

A refused record is logged and skipped (:meth:`DirectoryView.offer` never raises for bad
input). The latest accepted record per agency is persisted in ``state`` (a JSON file in
the home, written atomically), so after a restart the view starts from it and a replay of
older records is still refused.

The topic also carries the root-signed **head** (:mod:`broker.federation.head`, key
``_head``): every agency's current revision. A record below the revision the newest head
names is refused as a rollback, and one already held is set aside (not used for keys or
recipients) until its current revision arrives — so even a view with no state refuses an
old record that a compacted, rolled-back topic still holds.

What the view accepted so far is its :attr:`~DirectoryView.snapshot`
(:class:`~broker.federation.snapshot.DirectorySnapshot`: the records in use, their keys,
their signed bytes and the head), replaced by a new one whenever a record or head is
accepted; a :class:`~broker.federation.live.LiveDirectory` feeds the view from Kafka in
the background.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import orjson
import structlog

from broker.errors import ConfigError
from broker.federation._home import PUBLIC_FILE_MODE, write_file
from broker.federation.head import HEAD_KEY, HEAD_MAX_AGE, DirectoryHead, verify_head
from broker.federation.records import AgencyRecord, verify_record
from broker.federation.snapshot import DirectorySnapshot
from broker.keys import VerifyKey

__all__ = ["DirectoryView"]

log = structlog.get_logger(__name__)

_STATE_VERSION = 1


class DirectoryView:
    """The verified directory, built record by record, refusing rollbacks."""

    def __init__(
        self, root: VerifyKey, *, state: Path | None = None, origin: str = "the directory topic"
    ) -> None:
        self._root = root
        self._origin = origin
        self._state = state
        self._tokens: dict[str, bytes] = {}
        self._held: dict[str, AgencyRecord] = {}
        """Every accepted record, the newest per agency (persisted)."""
        self._head: DirectoryHead | None = None
        self._head_token: bytes | None = None
        self.snapshot = DirectorySnapshot(origin=origin)
        """The directory as accepted so far: the held records the newest head does not
        show to be superseded. Replaced, never changed, when the view changes."""
        self.accepted = 0
        self.refused = 0
        if state is not None and state.exists():
            self._load_state(state)

    def _load_state(self, state: Path) -> None:
        try:
            data = orjson.loads(state.read_bytes())
            tokens = data["records"] if data.get("v") == _STATE_VERSION else None
        except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{state} is not a directory state file ({exc}); remove it to rebuild it from "
                "the topic (rollback protection restarts from what the topic holds)"
            ) from None
        if not isinstance(tokens, dict):
            raise ConfigError(f"{state}: unknown state format; remove it to rebuild it")
        for agency, token in sorted(tokens.items()):
            record = verify_record(str(token).encode(), self._root, source=f"{state} [{agency}]")
            if record.id != agency:
                raise ConfigError(f"{state}: the record under {agency!r} is {record.id!r}'s")
            self._tokens[agency], self._held[agency] = str(token).encode(), record
        head = data.get("head")
        if isinstance(head, str):
            self._head_token = head.encode()
            self._head = verify_head(self._head_token, self._root, source=f"{state} [head]")
        self._refresh()

    def _refresh(self) -> None:
        """Use the held records the head does not show to be superseded."""
        self.snapshot = self._snapshot_of(self._held, self._tokens)

    def _snapshot_of(
        self, held: dict[str, AgencyRecord], tokens: dict[str, bytes]
    ) -> DirectorySnapshot:
        """ConfigError if a key is listed for two agencies."""
        wanted = self._head.revisions if self._head is not None else {}
        return DirectorySnapshot.of(
            (record for record in held.values() if record.revision >= wanted.get(record.id, 0)),
            tokens=tokens,
            head=self._head,
            origin=self._origin,
        )

    def offer(self, key: bytes | None, value: bytes | None, *, source: str) -> bool:
        """Consider one directory record; True if it changed the view.

        Never raises for bad input: a refused record is counted in :attr:`refused` and
        logged (``directory.refused`` with the reason) and the view stays as it was.
        """
        try:
            return self._accept(key, value, source)
        except ConfigError as exc:
            self.refused += 1
            log.warning("directory.refused", source=source, reason=str(exc))
            return False

    def _accept(self, key: bytes | None, value: bytes | None, source: str) -> bool:
        if value is None:
            raise ConfigError(f"{source}: an empty record (tombstone); agencies are not removed")
        token = value.strip()
        if key == HEAD_KEY:
            return self._accept_head(token, source)
        record = verify_record(token, self._root, source=source)
        if key is None or key != record.id.encode():
            raise ConfigError(
                f"{source}: the record of {record.id!r} is keyed {key!r}; a directory record "
                "must be keyed by its agency id"
            )
        held = self._held.get(record.id)
        if held is not None and record.revision <= held.revision:
            if record.revision == held.revision and token == self._tokens[record.id]:
                return False  # the record already held, delivered again
            raise ConfigError(
                f"{source}: revision {record.revision} of {record.id!r} is not above the "
                f"revision {held.revision} already accepted; refusing it as a rollback"
            )
        current = self._head.revisions.get(record.id, 0) if self._head is not None else 0
        if record.revision < current:
            raise ConfigError(
                f"{source}: revision {record.revision} of {record.id!r} is below the revision "
                f"{current} the directory head of {self._head_issued()} names; refusing it as "
                "a rollback (the topic may have been rolled back and compacted)"
            )
        accepted, tokens = self._held | {record.id: record}, self._tokens | {record.id: token}
        self.snapshot = self._snapshot_of(accepted, tokens)
        self._held, self._tokens = accepted, tokens
        self.accepted += 1
        self._save()
        log.info("directory.accepted", source=source, agency=record.id, revision=record.revision)
        return True

    def _accept_head(self, token: bytes, source: str) -> bool:
        head = verify_head(token, self._root, source=source)
        if self._head is not None and head.issued_at <= self._head.issued_at:
            if token == self._head_token:
                return False  # the head already held, delivered again
            raise ConfigError(
                f"{source}: a directory head of {head.issued_at.isoformat()}, not newer than "
                f"the one of {self._head_issued()} already accepted; refusing it as a rollback"
            )
        self._head, self._head_token = head, token
        self._refresh()
        behind = sorted(
            agency
            for agency, revision in head.revisions.items()
            if (held := self._held.get(agency)) is not None and held.revision < revision
        )
        if behind:
            log.warning("directory.behind_head", agencies=behind, head=head.issued_at.isoformat())
        self.accepted += 1
        self._save()
        log.info("directory.head_accepted", source=source, issued_at=head.issued_at.isoformat())
        return True

    def _head_issued(self) -> str:
        return self._head.issued_at.isoformat() if self._head is not None else "(none)"

    def head_problem(self, now: datetime, *, max_age: timedelta = HEAD_MAX_AGE) -> str | None:
        """Why the directory may not be current at ``now`` (no head, an old head, agencies
        whose current record is missing), or ``None``: a sentence for a warning at start."""
        head = self._head
        if head is None:
            return (
                "the directory topic holds no root-signed head: a rolled-back topic cannot be "
                "detected (the admin publishes one with `fusionbus federation "
                "publish-directory`)"
            )
        if now - head.issued_at > max_age:
            return (
                f"the directory head is from {head.issued_at.isoformat()}, older than "
                f"{max_age}: the topic may have been rolled back, or the admin has not "
                "re-published the directory (`fusionbus federation publish-directory`)"
            )
        missing = sorted(set(head.revisions) - set(self.snapshot.records))
        if missing:
            return (
                f"the directory head names {', '.join(missing)} at revisions this view does "
                "not hold: those agencies are left out until their current records arrive"
            )
        return None

    def _save(self) -> None:
        if self._state is None:
            return
        data: dict[str, object] = {
            "v": _STATE_VERSION,
            "records": {a: t.decode() for a, t in self._tokens.items()},
        }
        if self._head_token is not None:
            data["head"] = self._head_token.decode()
        try:
            write_file(
                self._state, orjson.dumps(data, option=orjson.OPT_SORT_KEYS), mode=PUBLIC_FILE_MODE
            )
        except ConfigError as exc:  # the view in memory is still right; a restart may lag
            log.exception("directory.state_not_saved", state=str(self._state), error=str(exc))

    def revision(self, agency_id: str) -> int | None:
        """The revision accepted for ``agency_id``, or ``None``."""
        record = self._held.get(agency_id)
        return None if record is None else record.revision
