"""The whole trail: every writer's chain and every anchor, verified together (pure).

:func:`verify_trail` is what ``fusionbus audit verify`` and ``audit anchor`` run over what
they read from Kafka: it opens each anchor with the root key (a value on the anchors' topic
the root did not sign is itself a break: someone other than the admin wrote there), then
walks the chain of every writer that has an audit topic or is named by an anchor, so a
writer whose topic vanished after it was anchored is reported too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from broker._crypto import VerifyKey
from broker.audit.anchor import Anchor, AnchoredHead, open_anchor
from broker.audit.chain import AnchorClaim, ChainBreak, ChainResult, Entry, verify_chain
from broker.audit.record import AuditRecord
from broker.errors import ConfigError
from broker.federation.snapshot import DirectorySnapshot
from broker.topics import AUDIT_ANCHOR_TOPIC, audit_writer_of

__all__ = ["Trail", "verify_trail"]


@dataclass(frozen=True, slots=True)
class Trail:
    """What :func:`verify_trail` found: each chain (by writer), the anchors that verified,
    and the values of the anchors' topic that did not (with why)."""

    chains: tuple[ChainResult, ...]
    anchors: tuple[Anchor, ...]
    bad_anchors: tuple[str, ...]

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
) -> Trail:
    """Verify the values of every audit topic (``topics``, by topic name) and the anchors'
    topic (``anchors``) against ``directory`` and the federation ``root`` key."""
    opened: list[tuple[Anchor, str]] = []
    bad: list[str] = []
    for entry in anchors:
        source = f"{AUDIT_ANCHOR_TOPIC}@{entry.offset}"
        try:
            opened.append((open_anchor(entry.value, root, source=source), source))
        except ConfigError as exc:
            bad.append(f"forged anchor: {exc}")
    by_writer: dict[str, list[Entry]] = {}
    for topic, entries in topics.items():
        writer = audit_writer_of(topic)
        if writer is not None:
            by_writer[writer] = list(entries)
    claims: dict[str, list[AnchorClaim]] = {}
    for anchor, source in opened:
        for writer, head in anchor.heads.items():
            claim = AnchorClaim(head.seq, head.hash, anchor.issued_at, source)
            claims.setdefault(writer, []).append(claim)
            by_writer.setdefault(writer, [])
    chains = tuple(
        verify_chain(writer, by_writer[writer], directory, claims.get(writer, ()))
        for writer in sorted(by_writer)
    )
    return Trail(chains, tuple(a for a, _ in opened), tuple(bad))
