"""The directory a party acting as an agency uses (a CLI command, the gateway): the home's
files, or the live topic.

``[directory] source`` in the home's ``config.toml`` (:class:`broker.home.HomeConfig`)
decides. With ``"files"`` the agency's record is checked at once, before
anything connects; with ``"topic"`` a :class:`~broker.federation.LiveDirectory` reads the
topic first and the check uses its snapshot, so a home whose files were copied before a
revocation seals nothing to the revoked agency and accepts nothing its revoked keys sign.
Either way the agency's own private keys come from the home's key files.

Offline, topic mode refuses to start, even when the home holds the view's cache
(``directory/live-state.json``): sealing or verifying against a directory that may be out
of date is what topic mode exists to prevent, and neither ``publish`` nor ``tail`` can do
anything without Kafka anyway (``docs/federation.md``, "The directory in Kafka").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from broker.config import KafkaSettings
from broker.errors import AuthorizationError, ConfigError, TransportError
from broker.federation.directory import Federation
from broker.federation.live import LiveDirectory
from broker.federation.policy import DisseminationPolicy
from broker.federation.records import AgencyRecord
from broker.federation.snapshot import Directory
from broker.home import DirectorySource, HomeConfig, HomeLayout
from broker.keys import Identity

__all__ = ["AgencyDirectory", "HomeDirectory", "enrolled_and_not_revoked"]


@dataclass(frozen=True)
class AgencyDirectory:
    """What a running party needs: the agency's checked record, the directory (its keys)
    and the dissemination policy over that same directory."""

    federation: Federation
    record: AgencyRecord
    directory: Directory
    policy: DisseminationPolicy

    def identity(self) -> Identity:
        """The agency's private keys from the home, checked against ``record``."""
        return self.federation.identity(self.record.id, record=self.record)


class HomeDirectory:
    """A home's directory for ``agency``: in files mode checked on construction; in topic
    mode when :meth:`started`."""

    def __init__(self, home: Path, agency: str, *, signs: bool = False) -> None:
        self.home = home
        self.agency = agency
        self.signs = signs
        self.source: DirectorySource = HomeConfig.read(home).directory
        self.federation = Federation.load(home)
        self._record: AgencyRecord | None = None
        if self.source.kind == "files":
            self._record = enrolled_and_not_revoked(
                self.federation.snapshot.agency(agency),
                directory=f"the directory in {home}",
                signs=signs,
            )

    @contextlib.asynccontextmanager
    async def started(self, settings: KafkaSettings) -> AsyncIterator[AgencyDirectory]:
        """The directory to use while the block runs (a live one follows the topic)."""
        if self._record is not None:
            fed = self.federation
            yield AgencyDirectory(fed, self._record, fed, DisseminationPolicy(fed))
            return
        topic = self.source.topic
        live = LiveDirectory.for_home(self.home, settings, topic=topic)
        await self._start(live, settings)
        try:
            found = live.snapshot.records.get(self.agency)
            if found is None:
                known = ", ".join(sorted(live.snapshot.records)) or "none"
                raise ConfigError(
                    f"agency {self.agency!r} is not in the directory topic {topic!r} at "
                    f"{settings.bootstrap} (known: {known}); the federation admin enrols it and "
                    "publishes the directory (`fusionbus federation publish-directory`)"
                )
            record = enrolled_and_not_revoked(
                found, directory=f"the directory topic {topic!r}", signs=self.signs
            )
            yield AgencyDirectory(self.federation, record, live, DisseminationPolicy(live))
        finally:
            await live.stop()

    async def _start(self, live: LiveDirectory, settings: KafkaSettings) -> None:
        try:
            await live.start()
        except TransportError as exc:
            cache = HomeLayout(self.home).live_state
            config = HomeLayout(self.home).config
            if cache.is_file():
                raise TransportError(
                    f"cannot read the directory topic {self.source.topic!r} at "
                    f"{settings.bootstrap}: {exc} This home holds a cached directory ({cache}), "
                    "but it is not used: it may predate a revocation, and sealing or verifying "
                    f"reports needs the current directory ({config} says [directory] source = "
                    '"topic"). Retry once Kafka is reachable.',
                    retriable=exc.retriable,
                ) from exc
            raise TransportError(
                f"cannot read the directory topic {self.source.topic!r} at "
                f'{settings.bootstrap}: {exc} ({config} says [directory] source = "topic"). '
                "Retry once Kafka is reachable.",
                retriable=exc.retriable,
            ) from exc


def enrolled_and_not_revoked(
    record: AgencyRecord, *, directory: str, signs: bool = False
) -> AgencyRecord:
    """``record`` (an agency's, from ``directory``: "the directory in HOME", say), checked
    before anything connects to the report topics.

    An agency whose encryption keys are all revoked (or ended) is no recipient and gets no
    ACLs; one about to sign (``signs``) also needs a signing key in force. Such an agency
    is told that, instead of what Kafka would refuse later (a topic, an ACL)."""
    agency = record.id
    now = datetime.now(UTC)
    usages: list[Literal["encryption", "signing"]] = (
        ["encryption", "signing"] if signs else ["encryption"]
    )
    for usage in usages:
        keys = record.encryption_keys if usage == "encryption" else record.signing_keys
        if all(e.revoked_at is not None and e.revoked_at <= now for e in keys):
            raise AuthorizationError(
                f"agency {agency} is revoked: {directory} marks every "
                f"{usage} key of {agency} revoked, so {_EFFECT[usage]} and the cluster gives "
                f"it no access. Ask the federation admin to enrol new keys (`fusionbus agency "
                f"rotate-keys {agency}` on the admin's machine) and to publish the directory."
            )
        if not any(e.usable_at(now) for e in keys):
            until = max(e.valid_until for e in keys).isoformat()
            raise AuthorizationError(
                f"agency {agency} has no {usage} key in force: its keys were valid until "
                f"{until} (or are not valid yet), so {_EFFECT[usage]}. Ask the federation "
                f"admin to rotate them (`fusionbus agency rotate-keys {agency}` on the admin's "
                "machine)."
            )
    return record


_EFFECT = {
    "encryption": "no report is sealed to it",
    "signing": "counterparts reject every report it signs",
}
