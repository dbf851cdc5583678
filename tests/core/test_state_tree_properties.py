"""Properties of the authenticated state map (``core/smt.py``), checked with hypothesis.

- the root is a function of the final key -> value map only (not of insertion order, batch
  split or deletions on the way), and so is the set of stored nodes (the canonical shape, also
  checked against the shape rules written out independently here);
- every present key has an inclusion proof that verifies with its value and no other; every
  absent key has a non-inclusion proof that verifies, and fails when the key is claimed present;
- any change to a proof (a byte of an entry or of the other leaf, a level dropped or added, the
  terminal kind swapped) makes verification fail;
- the storage encoding of a node round-trips; ``update`` never modifies stored nodes.

The node store is a dict, applied the way ``MemoryLedger`` applies a block's node writes.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any, Iterable

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from blokauto.core import smt
from blokauto.core.smt import StateProof, StateProofError
from blokauto.store.state import IdFilter

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class NodeStore:
    """Committed tree nodes in a dict (hex path -> node), as ``MemoryLedger`` keeps them."""

    def __init__(self) -> None:
        self.nodes: dict[str, smt.Node] = {}
        self.root = smt.EMPTY_ROOT

    def get(self, path: str) -> smt.Node | None:
        return self.nodes.get(path)

    def apply(self, changes: dict[bytes, bytes | None]) -> bytes:
        self.root, writes = smt.update(self.get, changes)
        for p, n in writes.items():
            if n is None:
                self.nodes.pop(p, None)
            else:
                self.nodes[p] = n
        return self.root

    def shape(self) -> dict[str, smt.Node]:
        """The stored nodes, an empty root node counted as no node (both mean the empty map)."""
        return {p: n for p, n in self.nodes.items() if not (p == "" and n == smt.empty_node())}


def built_in_one_batch(final: dict[bytes, bytes]) -> NodeStore:
    store = NodeStore()
    store.apply(dict(final))
    return store


def replay(batches: Iterable[dict[bytes, bytes | None]]) -> tuple[NodeStore, dict[bytes, bytes]]:
    """Apply ``batches`` in order; returns the store and the final map they leave."""
    store, final = NodeStore(), {}
    for batch in batches:
        store.apply(batch)
        for kh, vh in batch.items():
            if vh is None:
                final.pop(kh, None)
            else:
                final[kh] = vh
    return store, final


# ---------------------------------------------------------------- strategies

# Key hashes drawn around a few shared prefixes, so trees get deep and slots often hold a leaf
# that must split or an internal node that must collapse.
_PREFIX_BYTES = st.sampled_from([0x00, 0x01, 0x10, 0x11, 0xFF])
key_hashes = st.builds(lambda prefix, tail: (bytes(prefix) + tail)[:32],
                       st.lists(_PREFIX_BYTES, max_size=5), st.binary(min_size=32, max_size=32))
value_hashes = st.one_of(st.sampled_from([smt.value_hash(v) for v in (b"a", b"b", b"c")]),
                         st.binary(min_size=32, max_size=32))


@st.composite
def histories(draw: Any) -> list[dict[bytes, bytes | None]]:
    """Batches of changes (kh -> vh, None deletes) over a small pool of key hashes."""
    pool = draw(st.lists(key_hashes, min_size=1, max_size=24, unique=True))
    idx = st.integers(0, len(pool) - 1)
    raw = draw(st.lists(st.dictionaries(idx, st.one_of(st.none(), value_hashes), max_size=12), max_size=8))
    return [{pool[i]: vh for i, vh in batch.items()} for batch in raw]


# ---------------------------------------------------------------- (a) the root depends only on the final map


@SETTINGS
@given(histories())
def test_root_depends_only_on_the_final_map(batches: list[dict[bytes, bytes | None]]) -> None:
    store, final = replay(batches)
    reference = built_in_one_batch(final)
    assert store.root == reference.root
    assert (store.root == smt.EMPTY_ROOT) == (not final)


@SETTINGS
@given(st.dictionaries(key_hashes, value_hashes, max_size=30), st.randoms(use_true_random=False), st.data())
def test_root_independent_of_insertion_order_and_batch_split(final: dict[bytes, bytes], rnd: Any, data: Any) -> None:
    items = list(final.items())
    rnd.shuffle(items)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(items)), max_size=6)))
    batches, start = [], 0
    for cut in [*cuts, len(items)]:
        batches.append(dict(items[start:cut]))
        start = cut
    one_by_one, _ = replay({kh: vh} for kh, vh in items)
    split, _ = replay(batches)
    reference = built_in_one_batch(final)
    assert one_by_one.root == split.root == reference.root
    assert one_by_one.shape() == split.shape() == reference.shape()


@SETTINGS
@given(st.dictionaries(key_hashes, value_hashes, max_size=20), st.dictionaries(key_hashes, value_hashes, max_size=20))
def test_intermediate_keys_deleted_again_leave_no_trace(final: dict[bytes, bytes], extra: dict[bytes, bytes]) -> None:
    extra = {kh: vh for kh, vh in extra.items() if kh not in final}
    store, _ = replay([{**extra}, dict(final), {kh: None for kh in extra}])
    reference = built_in_one_batch(final)
    assert store.root == reference.root and store.shape() == reference.shape()


def test_empty_map_has_the_empty_root() -> None:
    kh, vh = smt.key_hash(b"k"), smt.value_hash(b"v")
    store, _ = replay([{kh: vh}, {kh: None}])
    assert store.root == smt.EMPTY_ROOT == NodeStore().apply({})
    assert store.shape() == {}


# ---------------------------------------------------------------- (b) canonical shape


def expected_shape(final: dict[bytes, bytes]) -> tuple[set[str], dict[bytes, str]]:
    """The shape rules, written out: internal nodes at the root and at every prefix at least two
    keys share; each key's leaf in the slot of the shortest prefix only it has."""
    hexes = [kh.hex() for kh in final]
    counts: dict[str, int] = {}
    for h in hexes:
        for n in range(1, 64):
            counts[h[:n]] = counts.get(h[:n], 0) + 1
    internal = {""} | {p for p, c in counts.items() if c >= 2}
    leaf_slot = {}
    for kh in final:
        h = kh.hex()
        n = next(n for n in range(1, 65) if n == 64 or counts[h[:n]] == 1)
        leaf_slot[kh] = h[:n]
    return internal, leaf_slot


def check_shape(store: NodeStore, final: dict[bytes, bytes]) -> None:
    internal, leaf_slot = expected_shape(final)
    shape = store.shape()
    assert set(shape) == (internal if final else set())
    found: dict[bytes, str] = {}
    for path, node in shape.items():
        for i in range(16):
            entry, leaf = node[i], node[16 + i]
            child = path + "0123456789abcdef"[i]
            if not entry:
                assert leaf is None and child not in shape
                continue
            assert entry[0] == i and len(entry) == 33
            if leaf is None:  # an internal child: stored, and its hash is the entry's
                assert entry[1:] == smt.node_hash(shape[child])
            else:
                kh, vh = leaf
                assert final[kh] == vh and entry[1:] == smt.leaf_hash(kh, vh)
                found[kh] = child
    assert found == leaf_slot
    assert store.root == (smt.node_hash(shape[""]) if final else smt.EMPTY_ROOT)


@SETTINGS
@given(histories())
def test_stored_nodes_after_any_history_equal_the_ones_built_from_scratch(batches: list[dict]) -> None:
    store, final = replay(batches)
    reference = built_in_one_batch(final)
    assert store.shape() == reference.shape()
    check_shape(store, final)
    check_shape(reference, final)


@SETTINGS
@given(histories())
def test_update_never_modifies_stored_nodes(batches: list[dict]) -> None:
    store = NodeStore()
    for batch in batches:
        before = copy.deepcopy(store.nodes)
        objects = {p: n for p, n in store.nodes.items()}
        smt.update(store.get, batch)  # computed and thrown away: nothing committed
        assert store.nodes == before
        assert all(store.nodes[p] is objects[p] for p in objects)
        store.apply(batch)


# ---------------------------------------------------------------- (c) inclusion and non-inclusion proofs


def _clustered(prefix: str, n: int) -> list[bytes]:
    """Keys whose hashes share ``prefix``, so proofs run several levels deep."""
    out, i = [], 0
    while len(out) < n:
        k = f"{prefix}:{i}".encode()
        if smt.key_hash(k).hex().startswith(prefix):
            out.append(k)
        i += 1
    return out


KEYS: list[bytes] = (_clustered("0000", 3) + _clustered("000", 3) + _clustered("00", 3) + _clustered("7", 3)
                     + [f"gov/member/k{i}".encode() for i in range(30)])
values = st.binary(max_size=24)
maps = st.dictionaries(st.sampled_from(KEYS), values, max_size=len(KEYS))


def build_map(m: dict[bytes, bytes]) -> NodeStore:
    return built_in_one_batch({smt.key_hash(k): smt.value_hash(v) for k, v in m.items()})


def proof_for(store: NodeStore, key: bytes) -> StateProof:
    proof = smt.prove(store.get, smt.key_hash(key))
    # a proof travels as canonical JSON: check the decoded copy
    return msgspec.json.decode(msgspec.json.encode(proof), type=StateProof)


def verifies(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> bool:
    try:
        smt.verify_proof(root, key, value, proof)
    except StateProofError:
        return False
    return True


@SETTINGS
@given(maps, values)
def test_inclusion_proof_verifies_with_the_value_and_no_other(m: dict[bytes, bytes], other: bytes) -> None:
    store = build_map(m)
    for key, value in m.items():
        proof = proof_for(store, key)
        assert proof.terminal == "leaf"
        smt.verify_proof(store.root, key, value, proof)
        assert smt.root_from_proof(key, value, proof) == store.root
        if other != value:
            assert not verifies(store.root, key, other, proof)
        assert not verifies(store.root, key, None, proof), "a present key proved absent"
        assert not verifies(smt.EMPTY_ROOT, key, value, proof)


@SETTINGS
@given(maps, values)
def test_non_inclusion_proof_verifies_and_fails_when_the_key_is_claimed_present(m: dict[bytes, bytes],
                                                                               claimed: bytes) -> None:
    store = build_map(m)
    for key in KEYS:
        if key in m:
            continue
        proof = proof_for(store, key)
        assert proof.terminal in ("empty", "other")
        smt.verify_proof(store.root, key, None, proof)
        assert not verifies(store.root, key, claimed, proof)
        if proof.terminal == "other":  # the leaf found instead is a real one, on the key's path
            okh = bytes.fromhex(proof.other_kh)
            assert okh != smt.key_hash(key) and okh in {smt.key_hash(k) for k in m}


@SETTINGS
@given(maps, st.sampled_from(KEYS), values)
def test_proof_from_before_an_update_fails_after_it(m: dict[bytes, bytes], key: bytes, value: bytes) -> None:
    assume(m.get(key) != value)
    store = build_map(m)
    old = proof_for(store, key)
    store.apply({smt.key_hash(key): smt.value_hash(value)})
    assert not verifies(store.root, key, m.get(key), old)
    smt.verify_proof(store.root, key, value, proof_for(store, key))


# ---------------------------------------------------------------- (d) tampered proofs fail


def _claim(m: dict[bytes, bytes], key: bytes) -> bytes | None:
    return m.get(key)


def tampered_entries(proof: StateProof, mask: int) -> Iterable[StateProof]:
    """Every proof with one byte of one level entry XORed with ``mask``."""
    for d, level in enumerate(proof.levels):
        for j, entry in enumerate(level):
            raw = bytes.fromhex(entry)
            for pos in range(len(raw)):
                changed = raw[:pos] + bytes((raw[pos] ^ mask,)) + raw[pos + 1:]
                levels = [list(lv) for lv in proof.levels]
                levels[d][j] = changed.hex()
                yield msgspec.structs.replace(proof, levels=levels)


def tampered_other_leaf(proof: StateProof, mask: int) -> Iterable[StateProof]:
    for field in ("other_kh", "other_vh"):
        raw = bytes.fromhex(getattr(proof, field))
        for pos in range(len(raw)):
            yield msgspec.structs.replace(proof, **{field: (raw[:pos] + bytes((raw[pos] ^ mask,)) + raw[pos + 1:]).hex()})


def reshaped(proof: StateProof, extra_entry: str) -> Iterable[StateProof]:
    """The proof with a level dropped, or with a level (empty or holding one entry) added."""
    n = len(proof.levels)
    for d in range(n):
        yield msgspec.structs.replace(proof, levels=proof.levels[:d] + proof.levels[d + 1:])
    for d in range(n + 1):
        for added in ([], [extra_entry]):
            yield msgspec.structs.replace(proof, levels=proof.levels[:d] + [added] + proof.levels[d:])


def terminal_swapped(proof: StateProof, m: dict[bytes, bytes], key: bytes) -> Iterable[tuple[StateProof, bytes | None]]:
    """The proof with another terminal kind, each with the claims that kind could support."""
    some_leaf = next(iter(sorted(smt.key_hash(k) for k in m if k != key)), smt.key_hash(b"elsewhere"))
    other = dict(other_kh=some_leaf.hex(), other_vh=smt.value_hash(b"x" * 25).hex())  # no map value is 25 bytes
    value = m.get(key, b"claimed")
    for terminal in ("leaf", "empty", "other"):
        if terminal == proof.terminal:
            continue
        fields = other if terminal == "other" else dict(other_kh="", other_vh="")
        swapped = msgspec.structs.replace(proof, terminal=terminal, **fields)
        for claim in (value, None):
            yield swapped, claim
    if proof.terminal == "other":  # the same kind, pointing at a different leaf
        yield msgspec.structs.replace(proof, **other), None


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(maps.filter(bool), st.sampled_from(KEYS), st.integers(1, 255), st.binary(min_size=32, max_size=32),
       st.integers(0, 15))
def test_any_tampered_proof_fails(m: dict[bytes, bytes], key: bytes, mask: int, junk: bytes, nib: int) -> None:
    store = build_map(m)
    claim = _claim(m, key)
    proof = proof_for(store, key)
    smt.verify_proof(store.root, key, claim, proof)
    extra = (bytes((nib,)) + junk).hex()
    candidates: list[tuple[StateProof, bytes | None]] = [(p, claim) for p in tampered_entries(proof, mask)]
    candidates += [(p, claim) for p in reshaped(proof, extra)]
    candidates += list(terminal_swapped(proof, m, key))
    if proof.terminal == "other":
        candidates += [(p, claim) for p in tampered_other_leaf(proof, mask)]
    for bad, bad_claim in candidates:
        assert not verifies(store.root, key, bad_claim, bad), (bad, bad_claim)


def test_malformed_proofs_are_refused_with_a_reason() -> None:
    store = build_map({k: b"v" for k in KEYS[:12]})
    key = KEYS[0]
    good = proof_for(store, key)
    assert len(good.levels) >= 4  # clustered keys: the proof is deep
    for bad in [
        msgspec.structs.replace(good, levels=[]),
        msgspec.structs.replace(good, levels=[[]] * 65),
        msgspec.structs.replace(good, levels=[["zz" * 33], *good.levels[1:]]),
        msgspec.structs.replace(good, levels=[[("10" + "00" * 32)], *good.levels[1:]]),  # nibble 16
        msgspec.structs.replace(good, levels=[[good.levels[0][0][:-2]], *good.levels[1:]]),  # 32 bytes
        msgspec.structs.replace(good, levels=[[good.levels[0][0]] * 2, *good.levels[1:]]),  # same slot twice
    ]:
        with pytest.raises(StateProofError):
            smt.verify_proof(store.root, key, b"v", bad)
    # the key's own slot cannot also appear among the other entries
    own = smt.key_hash(key).hex()[0]
    bad = msgspec.structs.replace(good, levels=[[("0" + own) + "00" * 32], *good.levels[1:]])
    with pytest.raises(StateProofError):
        smt.verify_proof(store.root, key, b"v", bad)
    # "other" naming the key itself, or a leaf off the key's path, is refused
    absent = b"absent key"
    assert absent not in KEYS
    p = proof_for(store, absent)
    kh = smt.key_hash(absent)
    for okh in (kh, bytes(32) if kh.hex()[0] != "0" else b"\xff" * 32):
        bad = msgspec.structs.replace(p, terminal="other", other_kh=okh.hex(), other_vh=smt.value_hash(b"v").hex())
        with pytest.raises(StateProofError):
            smt.verify_proof(store.root, absent, None, bad)


# ---------------------------------------------------------------- (e) node encoding


@st.composite
def nodes(draw: Any) -> smt.Node:
    node = smt.empty_node()
    for i in range(16):
        kind = draw(st.sampled_from(["empty", "node", "leaf"]))
        if kind == "empty":
            continue
        node[i] = bytes((i,)) + draw(st.binary(min_size=32, max_size=32))
        if kind == "leaf":
            node[16 + i] = (draw(st.binary(min_size=32, max_size=32)), draw(st.binary(min_size=32, max_size=32)))
    return node


def entry_boundaries(data: bytes) -> set[int]:
    out, pos = {0}, 0
    while pos < len(data):
        pos += 33 if data[pos] < 16 else 97
        out.add(pos)
    return out


@SETTINGS
@given(nodes())
def test_node_encoding_round_trips(node: smt.Node) -> None:
    data = smt.encode_node(node)
    back = smt.decode_node(data)
    assert back == node and smt.node_hash(back) == smt.node_hash(node)
    assert smt.encode_node(back) == data


@SETTINGS
@given(nodes(), st.data())
def test_truncated_or_corrupt_node_encoding_is_refused(node: smt.Node, data: Any) -> None:
    enc = smt.encode_node(node)
    assume(enc)
    cut = data.draw(st.integers(1, len(enc) - 1).filter(lambda c: c not in entry_boundaries(enc)))
    with pytest.raises(ValueError):
        smt.decode_node(enc[:cut])
    flag = data.draw(st.integers(32, 255))
    with pytest.raises(ValueError):
        smt.decode_node(enc + bytes((flag,)) + bytes(32))


@SETTINGS
@given(histories())
def test_every_stored_node_round_trips_through_its_storage_form(batches: list[dict]) -> None:
    store, _ = replay(batches)
    for node in store.nodes.values():
        assert smt.decode_node(smt.encode_node(node)) == node


# ---------------------------------------------------------------- the replay window's id filter


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=300, unique=True))
def test_the_id_filter_never_forgets_an_id_it_was_given(ids: list[bytes]) -> None:
    f = IdFilter(capacity=len(ids) or 1)
    for txid in ids:
        f.add(txid)
    assert all(txid in f for txid in ids)
    assert f.count == len(ids)


def test_the_id_filter_rarely_claims_an_id_it_was_not_given() -> None:
    f = IdFilter(capacity=10_000)
    for i in range(10_000):
        f.add(hashlib.sha256(b"in-%d" % i).digest())
    false = sum(hashlib.sha256(b"out-%d" % i).digest() in f for i in range(20_000))
    assert false < 20_000 * 0.02  # ~0.8% expected at capacity with 10 bits and 6 probes per id
