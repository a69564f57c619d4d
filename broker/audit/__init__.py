"""The tamper-evident audit trail: every act of an agency, hash-chained, signed, anchored.

Each agency (the *writer*) appends :class:`AuditRecord` s to its own topic
``fusionbus.audit.<agency>``: record ``seq`` names the SHA-256 of record ``seq - 1``
(RFC 8785 bytes), and each is a compact JWS signed by the writer's Ed25519 key
(:mod:`broker.audit.record`). Records hold ids, digests, parties, acts and times, never
report content or key material, so every agency in good standing may read every chain.
:class:`AuditWriter` keeps the chain's head and an outbox in the home and sends in the
background, so an audit failure never loses or blocks a report. The federation root
countersigns the chain heads (:mod:`broker.audit.anchor`) on ``fusionbus.audit-anchors``;
:func:`verify_trail` walks every chain and names the first break of each
(:class:`Break`: modified, dropped, reordered, forged, rewritten). Format, guarantees and
limits: ``docs/audit.md``.
"""

from broker.audit._kafka import publish_anchor, read_audit, read_topics
from broker.audit.anchor import ANCHOR_TYP, Anchor, AnchoredHead, open_anchor, sign_anchor
from broker.audit.chain import AnchorClaim, Break, ChainBreak, ChainResult, Entry, verify_chain
from broker.audit.record import (
    AUDIT_TYP,
    GENESIS,
    ROOT_WRITER,
    Act,
    AuditRecord,
    Inspected,
    canonical,
    inspect,
    record_hash,
    sha256_hex,
    sign_audit_record,
)
from broker.audit.state import AuditState
from broker.audit.trail import Trail, verify_trail
from broker.audit.writer import AuditWriter, append_record, own_key

__all__ = [
    "ANCHOR_TYP",
    "AUDIT_TYP",
    "GENESIS",
    "ROOT_WRITER",
    "Act",
    "Anchor",
    "AnchorClaim",
    "AnchoredHead",
    "AuditRecord",
    "AuditState",
    "AuditWriter",
    "Break",
    "ChainBreak",
    "ChainResult",
    "Entry",
    "Inspected",
    "Trail",
    "append_record",
    "canonical",
    "inspect",
    "open_anchor",
    "own_key",
    "publish_anchor",
    "read_audit",
    "read_topics",
    "record_hash",
    "sha256_hex",
    "sign_anchor",
    "sign_audit_record",
    "verify_chain",
    "verify_trail",
]
