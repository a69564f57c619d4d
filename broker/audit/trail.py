"""The whole trail: every writer's chain and every anchor, verified together (pure).

:func:`verify_trail` is what ``fusionbus audit verify`` and ``audit anchor`` run over what
they read from Kafka. It opens each anchor with the federation root key. A value whose JWS
header names the root's kid but does not verify is a break (someone forged the root's
countersignature); one that names another key is only counted (:attr:`Trail.foreign`): an
anchor only ever adds checks, so ignoring one cannot hide a break. It then walks the chain
of every writer of the federation (the directory's agencies) and of every writer an anchor
names, so a writer whose topic vanished after it was anchored is reported too, and the
root's own chain (``fusionbus.audit-root``: the admin's acts), checked with the root key;
there too, a value signed by another key is counted, not walked.
Audit topics of writers the directory does not know are listed, not walked
(:attr:`Trail.unknown`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from broker._crypto import VerifyKey
from broker._jose import b64d, split_compact
from broker.audit.anchor import Anchor, AnchoredHead, open_anchor
from broker.audit.chain import AnchorClaim, ChainBreak, ChainResult, Entry, verify_chain
from broker.audit.record import ROOT_WRITER, AuditRecord
from broker.errors import ConfigError
from broker.federation.snapshot import DirectorySnapshot, SigningKeyRecord
from broker.keys import kid_of
from broker.topics import AUDIT_ANCHOR_TOPIC, ROOT_AUDIT_TOPIC, audit_writer_of

__all__ = ["Trail", "verify_trail"]


@dataclass(frozen=True, slots=True)
class Trail:
    """What :func:`verify_trail` found: each chain (by writer), the anchors that verified,
    and the values of the anchors' topic that did not (with why)."""

    chains: tuple[ChainResult, ...]
    anchors: tuple[Anchor, ...]
    bad_anchors: tuple[str, ...]
    foreign: int = 0
    """Values of the anchors' or the root's topic signed by another key than this
    federation's root (another federation's, or a forger's: ignoring them hides nothing)."""
    unknown: tuple[str, ...] = ()
    """Audit topics of writers the directory does not list."""

    @property
    def intact(self) -> bool:
        return not self.bad_anchors and all(c.first_break is None for c in self.chains)

    @property
    def breaks(self) -> list[ChainBreak]:
        return [c.first_break for c in self.chains if c.first_break is not None]

    def heads(self) -> dict[str, AnchoredHead]:
        """The head of every chain with records, up to its first break: what an anchor of
        this trail countersigns."""
        return {
            c.writer: AnchoredHead(seq=c.head[0], hash=c.head[1])
            for c in self.chains
            if c.head is not None
        }

    def life_of(self, report_id: uuid.UUID) -> list[AuditRecord]:
        """Every authentic record naming ``report_id`` (as report or message), in time
        order (then writer and seq), across all writers."""
        found = [
            r for c in self.chains for r in c.authentic if report_id in (r.report_id, r.message_id)
        ]
        return sorted(found, key=lambda r: (r.at, r.writer, r.seq))


def verify_trail(
    topics: Mapping[str, Sequence[Entry]],
    anchors: Sequence[Entry],
    directory: DirectorySnapshot,
    root: VerifyKey,
    *,
    writers: Iterable[str] | None = None,
    kept: Sequence[tuple[str, bytes]] = (),
) -> Trail:
    """Verify the values of the audit topics (``topics``, by topic name) and of the anchors'
    topic (``anchors``) against ``directory`` and the federation ``root`` key. ``writers``:
    whose chains to walk (default: the directory's agencies), besides those anchored.
    ``kept``: anchors kept outside Kafka, as (where, token), checked as those on the topic."""
    opened: list[tuple[Anchor, str]] = []
    bad: list[str] = []
    foreign = 0
    root_kid = kid_of(root)
    sources = [(f"{AUDIT_ANCHOR_TOPIC}@{e.offset}", e.value) for e in anchors]
    for source, token in [*sources, *kept]:
        if _kid_of_token(token) not in (root_kid, None):
            foreign += 1
            continue
        try:
            opened.append((open_anchor(token, root, source=source), source))
        except ConfigError as exc:
            bad.append(f"forged anchor: {exc}")
    chosen = set(directory.records if writers is None else writers)
    claims: dict[str, list[AnchorClaim]] = {}
    for anchor, source in opened:
        for writer, head in anchor.heads.items():
            claims.setdefault(writer, []).append(
                AnchorClaim(head.seq, head.hash, anchor.issued_at, source)
            )
    chosen |= claims.keys()
    by_writer: dict[str, list[Entry]] = {writer: [] for writer in chosen}
    unknown = []
    for topic, entries in topics.items():
        owner = audit_writer_of(topic)
        if owner in chosen:
            by_writer[owner] = list(entries)
        elif owner is not None:
            unknown.append(topic)
    root_entries = by_writer.pop(ROOT_WRITER, [])
    chains = [
        verify_chain(writer, by_writer[writer], directory, claims.get(writer, ()))
        for writer in sorted(by_writer)
    ]
    if ROOT_AUDIT_TOPIC in topics or ROOT_WRITER in claims:  # the admin's acts
        root_entries = []
        for entry in topics.get(ROOT_AUDIT_TOPIC, ()):
            if _kid_of_token(entry.value) in (root_kid, None):
                root_entries.append(entry)
            else:
                foreign += 1
        chains.append(
            verify_chain(ROOT_WRITER, root_entries, _root_only(root), claims.get(ROOT_WRITER, ()))
        )
    return Trail(
        tuple(chains), tuple(a for a, _ in opened), tuple(bad), foreign, tuple(sorted(unknown))
    )


def _root_only(root: VerifyKey) -> DirectorySnapshot:
    """The directory the root's chain is checked against: the root key alone, always valid
    (the federation root is not rotated)."""
    since = datetime.min.replace(tzinfo=UTC)
    return DirectorySnapshot.of_keys([SigningKeyRecord(kid_of(root), ROOT_WRITER, root, since)])


def _kid_of_token(token: bytes) -> str | None:
    """The ``kid`` a compact JWS's header names, or ``None`` if it names none."""
    try:
        header = orjson.loads(b64d(split_compact(token.strip())[0]))
    except (ValueError, orjson.JSONDecodeError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None
