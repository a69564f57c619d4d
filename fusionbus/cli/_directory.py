"""The directory a command acting as an agency uses: the home's files, or the live topic.

``[directory] source`` in the home's ``config.toml`` (:func:`~fusionbus.cli._common.
directory_source`) decides. With ``"files"`` the agency's record is checked at once, before
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
from pathlib import Path

from broker.config import KafkaSettings
from broker.errors import ConfigError, TransportError
from broker.federation import Directory, DisseminationPolicy, Federation, LiveDirectory
from broker.federation.records import AgencyRecord
from broker.home import DirectorySource, HomeConfig, HomeLayout
from broker.keys import Identity
from fusionbus.cli._common import enrolled_and_not_revoked

__all__ = ["AgencyDirectory", "HomeDirectory"]


@dataclass(frozen=True)
class AgencyDirectory:
    """What a running command needs: the agency's checked record, the directory (its keys)
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
