"""The authenticated state map: a radix-16 sparse Merkle tree over hashed state keys.

Shape rules (they make the tree a pure function of its contents, whatever the order of writes):

- a key's path is the 64 hex nibbles of ``kh = H(TAG_STATE_KEY || key)``;
- an internal node exists at a path prefix iff at least two keys share that prefix;
- a leaf sits in the slot of the shortest prefix that only its key has;
- leaf hash = H(TAG_SMT_LEAF || kh || vh), with vh = H(TAG_STATE_VALUE || value);
- node hash = H(TAG_SMT_NODE || entries), one 33-byte entry (nibble byte || child hash) per
  present child, in nibble order. The empty map's root is H(TAG_SMT_NODE).

Updates are batched per block and functional: ``update`` reads committed nodes through a
getter and returns the new root with the node writes, so the caller commits them with the
block (or throws them away). A proof lists, for each level from the root, the other children's
entries, and ends in the key's leaf (inclusion), an empty slot, or another key's leaf (both
non-inclusion).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Literal

import msgspec

from .crypto import TAG_SMT_LEAF, TAG_SMT_NODE, TAG_STATE_KEY, TAG_STATE_VALUE

_sha256 = hashlib.sha256
_E = b""
_NIB = {c: i for i, c in enumerate("0123456789abcdef")}
_NB = [bytes((i,)) for i in range(16)]

# A node is a list of 32: [0:16] entries (nibble byte + child hash, or b"" when empty) and
# [16:32] leaf data (kh, vh) for slots holding a leaf, else None. Paths are hex prefixes.
Node = list
NodeGetter = Callable[[str], "Node | None"]

EMPTY_ROOT = _sha256(TAG_SMT_NODE).digest()


class StateProofError(ValueError):
    """A state proof does not prove what it claims."""


def key_hash(key: bytes) -> bytes:
    return _sha256(TAG_STATE_KEY + key).digest()


def value_hash(value: bytes) -> bytes:
    return _sha256(TAG_STATE_VALUE + value).digest()


def leaf_hash(kh: bytes, vh: bytes) -> bytes:
    return _sha256(TAG_SMT_LEAF + kh + vh).digest()


def node_hash(node: Node) -> bytes:
    return _sha256(TAG_SMT_NODE + _E.join(node[:16])).digest()


def empty_node() -> Node:
    return [_E] * 16 + [None] * 16


def encode_node(node: Node) -> bytes:
    """Storage form: per present child a flag byte (nibble, +16 for a leaf), the child hash,
    and for a leaf its kh and vh."""
    out = []
    for i in range(16):
        entry = node[i]
        if entry:
            leaf = node[16 + i]
            if leaf is None:
                out.append(entry)
            else:
                out.append(bytes((16 + i,)) + entry[1:] + leaf[0] + leaf[1])
    return _E.join(out)


def decode_node(data: bytes) -> Node:
    node = empty_node()
    pos, n = 0, len(data)
    while pos < n:
        flag = data[pos]
        if flag < 16:
            node[flag] = data[pos:pos + 33]
            pos += 33
        elif flag < 32:
            i = flag - 16
            node[i] = _NB[i] + data[pos + 1:pos + 33]
            node[16 + i] = (data[pos + 33:pos + 65], data[pos + 65:pos + 97])
            pos += 97
        else:
            raise ValueError("corrupt state tree node")
    if pos != n:
        raise ValueError("corrupt state tree node")
    return node


def update(get_node: NodeGetter, changes: dict[bytes, bytes | None]) -> tuple[bytes, dict[str, Node | None]]:
    """Apply ``changes`` (kh -> vh, or None to delete) to the committed tree.

    Returns the new root hash and the node writes (hex path -> node, or None to delete).
    Nodes returned by ``get_node`` are never modified.
    """
    writes: dict[str, Node | None] = {}
    stored = get_node("")
    root = list(stored) if stored is not None else empty_node()
    if changes:
        items = sorted((kh.hex(), kh, vh) for kh, vh in changes.items())
        _update_node(get_node, writes, "", 0, root, items)
        writes[""] = root
    return node_hash(root), writes


def _set_slot(node: Node, nib: int, slot: tuple[bytes, tuple | None] | None) -> None:
    if slot is None:
        node[nib] = _E
        node[16 + nib] = None
    else:
        node[nib] = _NB[nib] + slot[0]
        node[16 + nib] = slot[1]


def _update_node(get_node: NodeGetter, writes: dict, path: str, depth: int, node: Node, items: list) -> None:
    n = len(items)
    start = 0
    while start < n:
        c = items[start][0][depth]
        end = start + 1
        while end < n and items[end][0][depth] == c:
            end += 1
        group = items[start:end] if (start or end != n) else items
        start = end
        nib = _NIB[c]
        child_path = path + c
        if not node[nib]:
            leaves = [x for x in group if x[2] is not None]
            _set_slot(node, nib, _build(writes, child_path, depth + 1, leaves) if leaves else None)
        elif node[16 + nib] is not None:  # a leaf: merge it with the changes and rebuild the slot
            kh0, vh0 = node[16 + nib]
            final = {kh0: vh0}
            for _, kh, vh in group:
                if vh is None:
                    final.pop(kh, None)
                else:
                    final[kh] = vh
            leaves = sorted((kh.hex(), kh, vh) for kh, vh in final.items())
            _set_slot(node, nib, _build(writes, child_path, depth + 1, leaves) if leaves else None)
        else:
            stored = get_node(child_path)
            if stored is None:
                raise KeyError(f"state tree node {child_path!r} is missing")
            child = list(stored)
            _update_node(get_node, writes, child_path, depth + 1, child, group)
            present = 16 - child[:16].count(_E)
            if present == 0:
                writes[child_path] = None
                _set_slot(node, nib, None)
            elif present == 1 and any(child[16:]):
                # a lone leaf moves up to the shortest prefix only its key has
                i = next(i for i in range(16) if child[i])
                writes[child_path] = None
                node[nib] = _NB[nib] + child[i][1:]
                node[16 + nib] = child[16 + i]
            else:
                writes[child_path] = child
                node[nib] = _NB[nib] + _sha256(TAG_SMT_NODE + _E.join(child[:16])).digest()
                node[16 + nib] = None


def _build(writes: dict, path: str, depth: int, leaves: list) -> tuple[bytes, tuple | None]:
    """The slot (hash, leaf data) holding exactly ``leaves`` (sorted by hex kh, at least one)."""
    if len(leaves) == 1:
        _, kh, vh = leaves[0]
        return _sha256(TAG_SMT_LEAF + kh + vh).digest(), (kh, vh)
    node = empty_node()
    n = len(leaves)
    start = 0
    while start < n:
        c = leaves[start][0][depth]
        end = start + 1
        while end < n and leaves[end][0][depth] == c:
            end += 1
        _set_slot(node, _NIB[c], _build(writes, path + c, depth + 1, leaves[start:end]))
        start = end
    writes[path] = node
    return node_hash(node), None


# ---------------------------------------------------------------- proofs


_HEX = frozenset("0123456789abcdef")


def _strict_hex(s: str, what: str) -> bytes:
    """Lowercase hex only (bytes.fromhex also takes upper case and spaces; browsers do not)."""
    if not isinstance(s, str) or len(s) % 2 or not _HEX.issuperset(s):
        raise StateProofError(f"{what} is not lowercase hex")
    return bytes.fromhex(s)


class StateProof(msgspec.Struct, forbid_unknown_fields=True):
    """Proof that a key holds a value (``terminal="leaf"``) or is absent (``"empty"``/``"other"``).

    ``levels[d]`` lists the other children of the node at depth d on the key's path, each as
    66 hex digits: the nibble byte then the child hash.
    """

    levels: list[list[str]]
    terminal: Literal["leaf", "empty", "other"]
    other_kh: str = ""  # for "other": the key hash and value hash of the leaf found instead
    other_vh: str = ""


def prove(get_node: NodeGetter, kh: bytes) -> StateProof:
    hx = kh.hex()
    levels: list[list[str]] = []
    depth = 0
    node = get_node("") or empty_node()
    while True:
        nib = _NIB[hx[depth]]
        levels.append([node[i].hex() for i in range(16) if node[i] and i != nib])
        if not node[nib]:
            return StateProof(levels, "empty")
        leaf = node[16 + nib]
        if leaf is not None:
            if leaf[0] == kh:
                return StateProof(levels, "leaf")
            return StateProof(levels, "other", leaf[0].hex(), leaf[1].hex())
        depth += 1
        child = get_node(hx[:depth])
        if child is None:
            raise KeyError(f"state tree node {hx[:depth]!r} is missing")
        node = child


def root_from_proof(key: bytes, value: bytes | None, proof: StateProof) -> bytes:
    """The root ``proof`` implies for ``key`` holding ``value`` (None: absent)."""
    kh = key_hash(key)
    hx = kh.hex()
    levels = proof.levels
    if not levels or len(levels) > 64:
        raise StateProofError("a state proof has between 1 and 64 levels")
    last = len(levels) - 1
    if value is not None:
        if proof.terminal != "leaf":
            raise StateProofError("the proof shows the key absent, not holding the value")
        current: bytes | None = leaf_hash(kh, value_hash(value))
    elif proof.terminal == "empty":
        current = None
    elif proof.terminal == "other":
        okh, ovh = _strict_hex(proof.other_kh, "the other leaf"), _strict_hex(proof.other_vh, "the other leaf")
        if len(okh) != 32 or len(ovh) != 32 or okh == kh:
            raise StateProofError("the other leaf is malformed or is the key itself")
        if okh.hex()[:last + 1] != hx[:last + 1]:
            raise StateProofError("the other leaf does not sit on the key's path")
        current = leaf_hash(okh, ovh)
    else:
        raise StateProofError("the proof shows the key present; a value is needed")
    for depth in range(last, -1, -1):
        nib = _NIB[hx[depth]]
        entries = []
        for s in levels[depth]:
            e = _strict_hex(s, "a proof entry")
            if len(e) != 33 or e[0] > 15 or e[0] == nib:
                raise StateProofError("a proof entry is malformed or sits in the key's own slot")
            entries.append(e)
        if current is not None:
            entries.append(_NB[nib] + current)
        entries.sort()
        if any(entries[i][0] == entries[i + 1][0] for i in range(len(entries) - 1)):
            raise StateProofError("two proof entries claim the same slot")
        current = _sha256(TAG_SMT_NODE + _E.join(entries)).digest()
    assert current is not None
    return current


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    """Raise ``StateProofError`` unless ``key`` holds ``value`` (or is absent, for None) under ``root``."""
    if root_from_proof(key, value, proof) != root:
        raise StateProofError("the state proof leads to a different root")
