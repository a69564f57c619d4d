"""Anchors: the federation root countersigns each writer's chain head (seq and hash).

A writer holds its own signing key, so on its own a chain only proves that the writer said
these things in this order: the writer (or whoever holds its key) could sign a fresh chain
from seq 0 and, with a Kafka super user's help, put it in place of the old one. An anchor
takes that away. The admin reads every chain, verifies it, and has the root sign the heads
of the intact ones; from then on a chain whose record at an anchored seq is not the
anchored one, or that ends before it, was rewritten after anchoring.

An anchor is a compact JWS signed by the root key, as directory records are
(:func:`broker.federation.records.sign_document`, canonical JSON, ``typ``
:data:`ANCHOR_TYP`), on the topic ``fusionbus.audit-anchors``, which only the admin writes
and which is never compacted: every anchor ever issued stays there, and each one must fit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from broker._crypto import SigningKey, VerifyKey
from broker.audit.record import Writer
from broker.federation.records import (
    _Frozen,
    open_signed,
    parse_signed,
    root_signed,
    sign_document,
)
from schemas import UtcDatetime

__all__ = ["ANCHOR_TYP", "Anchor", "AnchoredHead", "open_anchor", "sign_anchor"]

ANCHOR_TYP = "fusionbus-audit-anchor+jws"


class AnchoredHead(_Frozen):
    """The last record of a chain when it was anchored: its seq and its hash."""

    seq: int = Field(ge=0, le=2**53 - 1)
    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Anchor(_Frozen):
    """What the root says the chains' heads were at ``issued_at``."""

    v: Literal[1] = 1
    kind: Literal["audit-anchor"] = "audit-anchor"
    issued_at: UtcDatetime
    heads: dict[Writer, AnchoredHead] = Field(max_length=10_000)


def sign_anchor(heads: Mapping[str, AnchoredHead], root: SigningKey, *, now: datetime) -> bytes:
    """The compact JWS of an anchor of ``heads`` (writer -> head) at ``now``, root-signed."""
    return sign_document(Anchor(issued_at=now, heads=dict(heads)), root, typ=ANCHOR_TYP)


def open_anchor(token: bytes, root: VerifyKey, *, source: str) -> Anchor:
    """The anchor in ``token`` if the federation ``root`` signed it; else ConfigError."""
    signed_by = root_signed(root, typ=ANCHOR_TYP, what="audit anchor")
    payload = open_signed(token, signed_by, source=source)
    return parse_signed(payload, Anchor, what="audit anchor", source=source)
