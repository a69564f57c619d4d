"""Merkle tree hashing exactly as RFC 9162 (Certificate Transparency v2) §2.1 defines it,
over SHA-256: the tree head of a batch of envelopes and each one's inclusion proof.

* a leaf's hash is ``SHA-256(0x00 || leaf data)``, an interior node's
  ``SHA-256(0x01 || left || right)`` — the prefixes keep a leaf from passing as a node;
* a tree of ``n > 1`` leaves splits at ``k``, the largest power of two below ``n``;
* an inclusion proof is the list of sibling hashes from the leaf up (§2.1.3.1), checked by
  the algorithm of §2.1.3.2, which also refuses a proof of the wrong length.

Tested against the RFC 6962 reference roots and proofs (tests/unit/envelope/test_merkle.py)
and, independently, by the Node verifier in tests/interop/.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["leaf_hash", "node_hash", "proof_length", "root_from_proof", "tree"]

_LEAF, _NODE = b"\x00", b"\x01"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root of a tree over ``leaves`` (leaf hashes, at least one) and the inclusion
    proof of every leaf, in order: O(n log n) hashes for all of them together."""
    count = len(leaves)
    if count == 0:
        raise ValueError("a batch has at least one leaf")
    if count == 1:
        return leaves[0], [[]]
    split = 1 << ((count - 1).bit_length() - 1)  # the largest power of two below count
    left, left_proofs = tree(leaves[:split])
    right, right_proofs = tree(leaves[split:])
    proofs = [[*p, right] for p in left_proofs] + [[*p, left] for p in right_proofs]
    return node_hash(left, right), proofs


def proof_length(index: int, size: int) -> int:
    """How many hashes the inclusion proof of leaf ``index`` in a tree of ``size`` has."""
    length = 0
    while size > 1:
        split = 1 << ((size - 1).bit_length() - 1)
        if index < split:
            size = split
        else:
            index, size = index - split, size - split
        length += 1
    return length


def root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` leads ``leaf`` (a leaf hash, at ``index`` of ``size``) to, or
    ``None`` when the proof cannot belong to such a tree (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return None  # a proof longer than the tree is deep
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return node if sn == 0 else None
