"""The directory head: one root-signed record naming every agency's current revision.

A reader that keeps state (``live-state.json``) refuses an older record it has seen
superseded. A reader *without* state — a new machine, a wiped home — cannot tell an old,
validly signed record from the current one: a Kafka super user (the cluster operator, who
is not trusted with the directory) can append a pre-revocation record and let compaction
drop the newer one. The head closes that gap: it lists the revision of every agency's
current record, so a record below the head's revision is a rollback even to a reader that
never saw the newer record. The head itself is ordered by ``issued_at`` (a reader refuses a
head not newer than the one it holds), and is re-issued whenever the directory is published;
a head older than :data:`HEAD_MAX_AGE` is reported at start (``directory.head_stale``),
since an operator who rolls back the head as well can only serve an *old* one.

On the directory topic the head is keyed :data:`HEAD_KEY`, which no agency id can be.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Literal

import orjson
from pydantic import Field, ValidationError

from broker._crypto import SigningKey, VerifyKey
from broker._jose import b64d, sign_compact, signing_input, split_compact
from broker.errors import ConfigError
from broker.federation.records import MAX_RECORD_BYTES, _Frozen, validation_problems
from broker.keys import kid_of
from schemas import AgencyId, UtcDatetime

__all__ = ["HEAD_KEY", "HEAD_MAX_AGE", "HEAD_TYP", "DirectoryHead", "sign_head", "verify_head"]

HEAD_KEY = b"_head"
"""The head's key on the directory topic (agency ids start with a letter)."""
HEAD_TYP = "fusionbus-directory-head+jws"
HEAD_MAX_AGE = timedelta(days=7)
"""A head older than this is reported as stale when a reader starts: the admin re-issues it
at least this often (``fusionbus federation publish-directory``)."""
_ALG = "Ed25519"


class DirectoryHead(_Frozen):
    """What the root says the directory is at ``issued_at``: each agency's revision."""

    v: Literal[1] = 1
    kind: Literal["head"] = "head"
    issued_at: UtcDatetime
    revisions: dict[AgencyId, int] = Field(max_length=10_000)

    def canonical(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


def sign_head(revisions: Mapping[str, int], root: SigningKey, *, now: datetime) -> bytes:
    """The compact JWS of a head naming ``revisions`` (agency id -> revision) at ``now``."""
    head = DirectoryHead(issued_at=now, revisions=dict(revisions))
    header = {"alg": _ALG, "kid": kid_of(root), "typ": HEAD_TYP}
    return sign_compact(header, head.canonical(), root, sort_keys=True)


def verify_head(token: bytes, root: VerifyKey, *, source: str) -> DirectoryHead:
    """The head in ``token`` if the federation ``root`` signed it; else ConfigError."""
    if len(token) > MAX_RECORD_BYTES * 4:
        raise ConfigError(f"{source}: over {MAX_RECORD_BYTES * 4} bytes; no head is that large")
    try:
        header_b64, payload_b64, signature_b64 = split_compact(token.strip())
        header = orjson.loads(b64d(header_b64))
        signature = b64d(signature_b64)
        payload = b64d(payload_b64)
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{source}: not a signed directory head ({exc})") from None
    if header != {"alg": _ALG, "kid": kid_of(root), "typ": HEAD_TYP}:
        raise ConfigError(
            f"{source}: the head's JWS header is not alg {_ALG}, typ {HEAD_TYP} and the "
            "federation root's kid; refusing it"
        )
    if not root.verify(signature, signing_input(header_b64, payload_b64)):
        raise ConfigError(f"{source}: the root signature of the head does not verify")
    try:
        head = DirectoryHead.model_validate_json(payload)
    except ValidationError as exc:
        raise ConfigError(f"{source}: signed but not a head: {validation_problems(exc)}") from None
    if head.canonical() != payload:
        raise ConfigError(f"{source}: the signed head is not in its canonical JSON form")
    return head
