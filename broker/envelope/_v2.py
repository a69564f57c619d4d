"""Version 2's hashing: what a leaf of a batch's Merkle tree covers, and the tree head
the sender signs. See ``docs/envelope.md`` ("Version 2")."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from broker._jose import b64d, b64e, signing_input
from broker.envelope._checks import b64_field, jws_header, sender_key, split_detached
from broker.envelope._merkle import leaf_hash, root_from_proof
from broker.envelope._wire import (
    BATCH_MEMBER,
    BATCH_TYP,
    Limits,
    ParsedEnvelope,
    parse_envelope,
)
from broker.errors import Reason, VerificationError

if TYPE_CHECKING:
    from broker.federation.snapshot import Directory, SigningKeyRecord

__all__ = [
    "LEAF_LABEL",
    "SALT_BYTES",
    "SALT_LABEL",
    "PendingEnvelope",
    "VerifiedBatches",
    "check_batch",
    "is_evidence_v2",
    "leaf_of",
    "tree_head",
    "verify_evidence",
]

LEAF_LABEL = b"fusionbus-leaf-v2\x00"
SALT_LABEL = b"fusionbus-salt-v2\x00"


@dataclass(frozen=True, slots=True)
class PendingEnvelope:
    """A version-2 envelope waiting for its batch's signature and its inclusion proof."""

    kids: tuple[str, ...]
    hash: bytes
    protected: bytes
    commit: bytes
    recipients_json: bytes
    iv: bytes
    ciphertext: bytes
    tag: bytes

    def envelope(self, sig: bytes, size: bytes, index: int, proof: list[bytes]) -> bytes:
        path = b'"' + b'","'.join(b64e(p) for p in proof) + b'"' if proof else b""
        return b"".join(
            (
                b'{"protected":"',
                self.protected,
                b'","unprotected":{"',
                BATCH_MEMBER.encode(),
                b'":{"sig":"',
                sig,
                b'","size":',
                size,
                b',"index":',
                str(index).encode(),
                b',"path":[',
                path,
                b'],"commit":"',
                self.commit,
                b'"}},"recipients":',
                self.recipients_json,
                b',"iv":"',
                self.iv,
                b'","ciphertext":"',
                self.ciphertext,
                b'","tag":"',
                self.tag,
                b'"}',
            )
        )


def leaf_of(digest_input: bytes, commit: bytes) -> bytes:
    """The leaf hash of one envelope: ``leaf_hash(LEAF_LABEL || SHA-256(D) || commit)``, with
    ``D`` what version 1's outer signature covered (protected header, iv, ciphertext, tag
    and every recipient's kid, epk and wrapped key) and ``commit`` the content commitment."""
    return leaf_hash(LEAF_LABEL + hashlib.sha256(digest_input).digest() + commit)


def tree_head(root: bytes, size: int) -> bytes:
    """The signed payload: exactly ``{"root":"<base64url root>","size":<size>}``."""
    return b'{"root":"' + b64e(root) + b'","size":' + str(size).encode() + b"}"


VerifiedBatches = OrderedDict[tuple[str, bytes, bytes], None]
"""(signing kid, signing input, signature) of batch signatures that verified."""


def check_batch(
    parsed: ParsedEnvelope,
    record: SigningKeyRecord,
    limits: Limits,
    commit: bytes,
    verified: VerifiedBatches | None = None,
) -> None:
    """Version 2: the envelope's leaf, led by its proof to a root the sender signed. A
    signature already verified (``verified``, kept by the caller) is not verified again; the
    caller has checked the sender's key is usable now, so a revoked key's batches fail."""
    batch = parsed.batch
    assert batch is not None  # noqa: S101 - only called for version 2
    leaf = leaf_of(parsed.digest_input(), commit)
    root = root_from_proof(leaf, batch.index, batch.size, batch.path)
    if root is None:
        raise VerificationError(
            Reason.BAD_SIGNATURE,
            f"the inclusion proof cannot place leaf {batch.index} in a tree of {batch.size}",
        )
    header_b64, signature = split_detached(batch.sig, "the batch signature")
    signed = signing_input(header_b64, b64e(tree_head(root, batch.size)))
    key = (record.kid, signed, signature)
    if verified is not None and key in verified:
        verified.move_to_end(key)
        return
    jws_header(header_b64.decode("ascii"), record.kid, BATCH_TYP, limits)
    if not record.key.verify(b64_field(signature, "batch signature"), signed):
        raise VerificationError(
            Reason.BAD_SIGNATURE, "the batch signature does not verify over this tree head"
        )
    if verified is not None:
        verified[key] = None
        if len(verified) > _VERIFIED_BATCHES:
            verified.popitem(last=False)


_VERIFIED_BATCHES = 4096


SALT_BYTES = 32
"""An HMAC-SHA256 output: the salt of a content commitment is exactly this long."""


def is_evidence_v2(signed: bytes) -> bool:
    """Whether ``signed`` is version-2 evidence: its first part decodes to a JSON object with a
    ``protected`` member (an envelope, in any spelling); a version-1 inner JWS's first part
    is a JWS header. Anything undecodable is left to the version-1 checks to refuse."""
    first = signed.split(b".", 1)[0]
    try:
        value = orjson.loads(b64d(first))
    except (ValueError, orjson.JSONDecodeError):
        return False
    return isinstance(value, dict) and "protected" in value


def verify_evidence(
    signed: bytes, directory: Directory, now: datetime, limits: Limits
) -> tuple[ParsedEnvelope, SigningKeyRecord, bytes]:
    """Version 2 evidence: the envelope, the payload and its salt. The payload's
    commitment, the envelope's leaf, its proof and the batch signature are checked; no
    content key is needed or revealed."""
    try:
        envelope_b64, payload_b64, salt_b64 = signed.split(b".")
    except ValueError:
        raise VerificationError(
            Reason.MALFORMED, "version-2 evidence is envelope.payload.salt"
        ) from None
    data, payload, salt = (
        b64_field(envelope_b64, "evidence envelope"),
        b64_field(payload_b64, "evidence payload"),
        b64_field(salt_b64, "evidence salt"),
    )
    if len(salt) != SALT_BYTES:  # else bytes could move between the salt and the payload
        raise VerificationError(
            Reason.MALFORMED, f"the evidence's salt is {len(salt)} bytes, not {SALT_BYTES}"
        )
    parsed = parse_envelope(data, limits)
    if parsed.batch is None:
        raise VerificationError(Reason.MALFORMED, "version-2 evidence holds a version-1 envelope")
    record = sender_key(parsed.header, directory, now)
    commit = hashlib.sha256(salt + payload).digest()
    if commit != parsed.batch.commit:
        raise VerificationError(
            Reason.BAD_SIGNATURE, "the payload and salt are not what the sender committed to"
        )
    check_batch(parsed, record, limits, commit)
    return parsed, record, payload
