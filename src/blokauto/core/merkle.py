"""RFC 9162 (Certificate Transparency v2) Merkle trees: roots, inclusion and consistency proofs.

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), and the empty tree hashes
to SHA-256(""). Proofs are lists of 32-byte hashes ordered from the leaf upwards, exactly as
any CT library produces and checks them. The ``verify_*`` functions raise ``ProofError``.
"""

from __future__ import annotations

import hashlib

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()


class ProofError(ValueError):
    """A Merkle proof does not prove what it claims."""


def leaf_hash(data: bytes) -> bytes:
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: list[bytes]) -> bytes:
    """Merkle tree hash (MTH) of a list of leaf hashes, bottom-up in O(n)."""
    if not hashes:
        return EMPTY_ROOT
    level = hashes
    while len(level) > 1:
        nxt = [_sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            nxt.append(level[-1])  # an unpaired right node is promoted unchanged (RFC 9162 2.1.1)
        level = nxt
    return level[0]


def root(leaves: list[bytes]) -> bytes:
    """Merkle tree hash of a list of leaf data."""
    return root_from_leaf_hashes([_sha256(b"\x00" + d).digest() for d in leaves])


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(hashes: list[bytes], index: int) -> list[bytes]:
    """Audit path (RFC 9162 2.1.3.1) for leaf ``index`` among ``hashes`` (leaf hashes)."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} outside a tree of {len(hashes)}")
    path: list[bytes] = []
    lo, hi = 0, len(hashes)
    # Walk down from the root, remembering the sibling subtree at each split.
    siblings: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            siblings.append((lo + k, hi))
            hi = lo + k
        else:
            siblings.append((lo, lo + k))
            lo = lo + k
    for a, b in reversed(siblings):
        path.append(root_from_leaf_hashes(hashes[a:b]))
    return path


def consistency_proof(hashes: list[bytes], old_size: int) -> list[bytes]:
    """Consistency proof (RFC 9162 2.1.4.1) from the first ``old_size`` leaves to all of them."""
    n = len(hashes)
    if not 0 < old_size <= n:
        raise ValueError(f"cannot prove consistency from size {old_size} to {n}")
    if old_size == n:
        return []

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        size = hi - lo
        if m == size:
            return [] if complete else [root_from_leaf_hashes(hashes[lo:hi])]
        k = _largest_power_of_two_below(size)
        if m <= k:
            return subproof(m, lo, lo + k, complete) + [root_from_leaf_hashes(hashes[lo + k:hi])]
        return subproof(m - k, lo + k, hi, False) + [root_from_leaf_hashes(hashes[lo:lo + k])]

    return subproof(old_size, 0, n, True)


def _inner_proof_size(index: int, size: int) -> int:
    return (index ^ (size - 1)).bit_length()


def _decompose(index: int, size: int) -> tuple[int, int]:
    inner = _inner_proof_size(index, size)
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: list[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: list[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree of ``size``."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    if len(leaf) != 32:
        raise ProofError(f"a leaf hash has 32 bytes, not {len(leaf)}")
    inner, border = _decompose(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"the proof has {len(proof)} hashes; a leaf at {index} of {size} needs {inner + border}")
    res = _chain_inner(leaf, proof[:inner], index)
    return _chain_border_right(res, proof[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], expected_root: bytes) -> None:
    """Raise ``ProofError`` unless ``leaf`` (a leaf hash) is at ``index`` in the tree ``expected_root``."""
    got = root_from_inclusion_proof(index, size, leaf, proof)
    if got != expected_root:
        raise ProofError("the inclusion proof leads to a different root")


def verify_consistency(size1: int, size2: int, proof: list[bytes], root1: bytes, root2: bytes) -> None:
    """Raise ``ProofError`` unless the tree ``root2`` of ``size2`` extends the tree ``root1`` of ``size1``."""
    if size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == 0:
        raise ProofError("a consistency proof from an empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("the consistency proof is empty")
    inner, border = _decompose(size1 - 1, size2)
    shift = ((size1 & -size1).bit_length() - 1)
    inner -= shift
    if size1 == 1 << shift:
        seed, start = root1, 0
    else:
        seed, start = proof[0], 1
    if len(proof) != start + inner + border:
        raise ProofError(f"the proof has {len(proof)} hashes; {start + inner + border} expected")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError("the consistency proof does not lead to the old root")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError("the consistency proof does not lead to the new root")
