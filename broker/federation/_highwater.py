"""The file store's rollback guard: the highest revision accepted per agency, persisted.

A directory file copied back over a newer one — say the record from before a revocation —
is still validly signed by the root; only memory tells it is old. Every load and store of a
home records the highest revision it accepted for each agency in
``directory/.accepted-revisions.json``; a record below that revision is refused as a
rollback from then on. (A home that never saw the newer record cannot tell: that is what
the root-signed directory head on the topic is for, see :mod:`broker.federation.head`.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from broker.errors import ConfigError
from broker.federation._home import PUBLIC_FILE_MODE, write_file
from broker.federation.records import AgencyRecord

__all__ = ["RevisionGuard"]

_VERSION = 1


class RevisionGuard:
    """Refuses records below the highest revision accepted before in this home."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._highest: dict[str, int] = {}
        if path.is_file():
            try:
                data = orjson.loads(path.read_bytes())
                highest = data["revisions"] if data.get("v") == _VERSION else None
            except (OSError, orjson.JSONDecodeError, AttributeError, KeyError, TypeError):
                highest = None
            if not isinstance(highest, dict) or not all(
                isinstance(k, str) and type(v) is int for k, v in highest.items()
            ):
                raise ConfigError(
                    f"{path} is not a revision record; restore it from a backup (removing it "
                    "turns off the rollback guard until the directory is loaded again)"
                )
            self._highest = dict(highest)

    def check(self, record: AgencyRecord, *, source: str) -> None:
        """ConfigError (``rollback``) if ``record`` is older than one accepted here."""
        highest = self._highest.get(record.id, 0)
        if record.revision < highest:
            raise ConfigError(
                f"{source}: rollback — revision {record.revision} of {record.id!r}, but this "
                f"home accepted revision {highest} before; refusing the older record (a copy "
                "from before a change such as a revocation). Restore the current record from "
                "the admin (a new bundle, or the directory topic)."
            )

    def accept(self, records: Iterable[AgencyRecord]) -> None:
        """Remember the revisions of ``records`` (only ever upwards); persist if changed."""
        changed = False
        for record in records:
            if record.revision > self._highest.get(record.id, 0):
                self._highest[record.id] = record.revision
                changed = True
        if changed:
            data = {"v": _VERSION, "revisions": dict(sorted(self._highest.items()))}
            write_file(self._path, orjson.dumps(data), mode=PUBLIC_FILE_MODE)
