"""RFC 9162 tree hashing against the RFC 6962 reference vectors (the Certificate
Transparency test data every implementation checks itself against), and every proof of
every tree up to 40 leaves, with every single-point tampering refused."""

from __future__ import annotations

import pytest

from broker.envelope._merkle import leaf_hash, root_from_proof, tree

DATA = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]  # fmt: skip
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
PROOFS = {  # (index, size): the published inclusion path
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


def test_roots_match_the_reference_for_every_size() -> None:
    leaves = [leaf_hash(d) for d in DATA]
    for size in range(1, 9):
        root, _ = tree(leaves[:size])
        assert root.hex() == ROOTS[size - 1], size


def test_proofs_match_the_reference_and_lead_to_the_root() -> None:
    leaves = [leaf_hash(d) for d in DATA]
    root, proofs = tree(leaves)
    for (index, size), expected in PROOFS.items():
        assert [p.hex() for p in proofs[index]] == expected
        assert root_from_proof(leaves[index], index, size, proofs[index]) == root


@pytest.mark.parametrize("size", range(1, 41))
def test_every_proof_verifies_and_no_tampering_does(size: int) -> None:
    leaves = [leaf_hash(bytes([i, size])) for i in range(size)]
    root, proofs = tree(leaves)
    for index, proof in enumerate(proofs):
        assert root_from_proof(leaves[index], index, size, proof) == root
        assert root_from_proof(leaves[index], index, size, [*proof, root]) is None  # too long
        if proof:
            assert root_from_proof(leaves[index], index, size, proof[:-1]) != root  # too short
            for at in range(len(proof)):
                bent = [*proof]
                bent[at] = bytes([bent[at][0] ^ 1]) + bent[at][1:]
                assert root_from_proof(leaves[index], index, size, bent) != root
        for other in (index + 1, index - 1, size, -1):
            if other != index:
                assert root_from_proof(leaves[index], other, size, proof) != root
        assert root_from_proof(leaf_hash(b"another"), index, size, proof) != root


def test_a_node_cannot_pass_for_a_leaf() -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(4)]
    root, _ = tree(leaves)
    left, [proof_of_left] = tree(leaves[:2])[0], tree([leaves[0]])[1]
    # the left subtree's hash, offered as "leaf 0 of a 2-leaf tree", does not give the root
    # when hashed as a leaf: the 0x00 / 0x01 prefixes keep the two kinds apart
    assert root_from_proof(leaf_hash(left), 0, 2, [tree(leaves[2:])[0]]) != root
    assert proof_of_left == []


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one leaf"):
        tree([])
