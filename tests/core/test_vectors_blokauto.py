"""blokauto's own committed vectors: any change to a byte-level format fails here.

``data/blokauto-vectors.json`` pins canonical encoding, transaction ids and signatures, the state
tree's root and proofs, a did:key and the test consortium's genesis header. Every value is
recomputed with the current code (through ``data/make_vectors.py``, which this test imports but
never runs as a writer) and compared with the committed file. The committed values are also
checked on their own (signatures verify, proofs verify and break when tampered with), so the
file is usable as conformance data by another implementation, such as the browser verifier.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from typing import Any

import msgspec
import pytest

from blokauto.core import crypto, smt
from blokauto.core.encoding import MAX_SAFE_INT, canonical
from blokauto.core.tx import check_stateless
from blokauto.modules import default_registry

from conftest import DATA

VECTORS_FILE = DATA / "blokauto-vectors.json"
COMMITTED: dict[str, Any] = json.loads(VECTORS_FILE.read_text(encoding="ascii"))


def _load_make_vectors():
    spec = importlib.util.spec_from_file_location("blokauto_make_vectors", DATA / "make_vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MV = _load_make_vectors()
REGENERATE = "if the format change is intended, run tests/data/make_vectors.py and say so in the commit"


def _by_name(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in rows}


def test_vectors_file_has_every_section():
    assert COMMITTED["format"] == MV.FORMAT
    assert set(COMMITTED) == {"format", "about", "encoding", "transactions", "state_tree", "identity", "genesis"}
    assert len(COMMITTED["encoding"]) >= 10 and len(COMMITTED["transactions"]) >= 5


def test_committed_file_is_exactly_what_make_vectors_writes():
    """Nobody edited the file by hand (or forgot to regenerate it after changing the generator)."""
    assert MV.render(MV.build()) == VECTORS_FILE.read_text(encoding="ascii"), REGENERATE


# ---------------------------------------------------------------- (a) canonical encoding

ENCODING = _by_name(COMMITTED["encoding"])


@pytest.mark.parametrize("name, value", MV.encoding_cases(), ids=[n for n, _ in MV.encoding_cases()])
def test_canonical_encoding_matches_committed_bytes(name, value):
    row = ENCODING[name]
    got = canonical(value)
    assert got.hex() == row["canonical_hex"], f"canonical({name}) changed: {got!r}; {REGENERATE}"
    assert got == row["canonical"].encode("utf-8")
    assert msgspec.to_builtins(value) == row["value"]


def test_every_committed_encoding_case_is_still_generated():
    assert sorted(ENCODING) == sorted(n for n, _ in MV.encoding_cases())


@pytest.mark.parametrize("name", sorted(ENCODING))
def test_committed_canonical_bytes_are_canonical_json_of_their_value(name):
    """Independent of the generator: the bytes parse back to the value, and re-encoding the parsed
    value (a Struct becomes a dict with the same sorted keys) gives the same bytes."""
    row = ENCODING[name]
    data = bytes.fromhex(row["canonical_hex"])
    assert json.loads(data) == row["value"]
    assert canonical(json.loads(data)) == data


def test_canonical_form_escapes_controls_and_keeps_separators_raw():
    """The rules a browser verifier must follow, spelled out (JSON.stringify does the same)."""
    assert canonical("\x00\x1f\x7f") == b'"\\u0000\\u001f\x7f"'
    assert canonical("\b\t\n\f\r") == b'"\\b\\t\\n\\f\\r"'
    assert canonical("\u2028\u2029") == '"\u2028\u2029"'.encode("utf-8")
    assert canonical({"\U0001f697": 0, "\uffff": 1}) == '{"\uffff":1,"\U0001f697":0}'.encode("utf-8")
    assert canonical(MAX_SAFE_INT) == b"9007199254740991"


# canonical() encodes what it is given; the integers-only, JavaScript-safe rule is enforced
# where values enter (see the module docstring of blokauto.core.encoding). These check each gate.


@pytest.mark.parametrize("value", [1.5, float("nan"), MAX_SAFE_INT + 1, -1],
                         ids=["float", "nan", "max_safe_plus_one", "negative"])
def test_a_message_with_a_float_or_unsafe_integer_is_refused_at_decode(value):
    from blokauto.core.crypto import KeyPair
    from blokauto.core.errors import MalformedTx
    from blokauto.core.tx import make_body, sign
    from blokauto.modules import default_registry
    from blokauto.modules.governance.messages import Vote

    body = make_body("c", KeyPair.from_label("a").did, Vote(proposal=1, approve=True), nonce="0" * 32, expires=1)
    raw = canonical(sign(body, KeyPair.from_label("a"))).replace(b'"proposal":1', b'"proposal":' + msgspec.json.encode(value))
    with pytest.raises(MalformedTx):
        default_registry().codec.decode(raw)


@pytest.mark.parametrize("value", [MAX_SAFE_INT + 1, 1.5], ids=["unsafe_int", "float"])
def test_a_state_value_out_of_range_fails_the_transaction_instead_of_entering_state(value):
    from blokauto.core.encoding import Uint
    from blokauto.core.errors import ValueOutOfRange
    from blokauto.core.state import Item, Overlay

    item = Item("test/counter", int)
    bounded = Item("test/uint", Uint)
    state = Overlay(_EmptyReader())
    with pytest.raises(ValueOutOfRange):
        bounded.put(state, value)
    assert state.writes == {}
    item.put(state, 7)
    assert state.writes == {b"test/counter": b"7"}


class _EmptyReader:
    def get(self, key: bytes) -> bytes | None:
        return None


# ---------------------------------------------------------------- (b) transactions

TRANSACTIONS = _by_name(COMMITTED["transactions"])


@functools.cache
def _fresh_transactions() -> dict[str, dict[str, Any]]:
    return _by_name(MV.build_transactions())


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_transaction_body_id_and_signatures_match_committed(name):
    row, fresh = TRANSACTIONS[name], _fresh_transactions()[name]
    for field in ("chain", "sender", "cosigners", "nonce", "expires", "msg", "body", "tx_id", "sigs", "tx"):
        assert fresh[field] == row[field], f"{name}: {field} changed; {REGENERATE}"
    assert fresh == row


def test_every_committed_transaction_is_still_generated():
    assert sorted(TRANSACTIONS) == sorted(_fresh_transactions())


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_committed_transaction_passes_stateless_checks_with_its_id(name):
    """The committed bytes alone: decode, id = H(tag || body), every signature verifies."""
    row = TRANSACTIONS[name]
    raw = row["tx"].encode("utf-8")
    checked = check_stateless(raw, default_registry().codec, chain=row["chain"], max_bytes=1 << 20)
    assert checked.id.hex() == row["tx_id"]
    assert checked.raw == raw  # decoding and re-encoding is the identity on canonical bytes
    assert crypto.tagged_hash(crypto.TAG_TX_ID, row["body"].encode("utf-8")).hex() == row["tx_id"]
    assert raw.startswith(b'{"body":' + row["body"].encode("utf-8") + b',"sigs":')
    signers = {MV.K(label).did for label in [row["sender"], *row["cosigners"]]}
    assert {s["signer"] for s in row["sigs"]} == signers
    for s in row["sigs"]:
        key = crypto.public_key_from_did(s["signer"])
        message = crypto.TAG_TX_SIG + bytes.fromhex(row["tx_id"])
        assert crypto.verify_signature(key, bytes.fromhex(s["sig"]), message)


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_committed_signature_does_not_verify_for_another_transaction(name):
    row = TRANSACTIONS[name]
    others = [r for n, r in TRANSACTIONS.items() if n != name]
    sig = bytes.fromhex(row["sigs"][0]["sig"])
    key = crypto.public_key_from_did(row["sigs"][0]["signer"])
    for other in others:
        assert not crypto.verify_signature(key, sig, crypto.TAG_TX_SIG + bytes.fromhex(other["tx_id"]))
    # and not over the bare id: the domain tag is part of what is signed
    assert not crypto.verify_signature(key, sig, bytes.fromhex(row["tx_id"]))


# ---------------------------------------------------------------- (c) state tree

TREE = COMMITTED["state_tree"]
ENTRIES = [(e["key"], e["value"]) for e in TREE["entries"]]


def test_state_tree_root_matches_committed():
    assert smt.EMPTY_ROOT.hex() == TREE["empty_root"]
    assert ENTRIES == MV.STATE_ENTRIES
    root, nodes = MV.state_tree(ENTRIES)
    assert root.hex() == TREE["root"], REGENERATE
    assert sorted(nodes) == TREE["node_paths"]


def test_state_tree_proofs_match_committed():
    fresh = MV.build_state_tree()
    assert fresh["proofs"] == TREE["proofs"], REGENERATE


def test_state_tree_root_does_not_depend_on_write_order_or_batching():
    """The same contents reached in several blocks, with an overwrite and a delete, give the
    committed root: the tree is a function of its contents."""
    nodes: dict[str, smt.Node] = {}

    def commit(changes: dict[bytes, bytes | None]) -> bytes:
        root, writes = smt.update(nodes.get, changes)
        for path, node in writes.items():
            if node is None:
                nodes.pop(path, None)
            else:
                nodes[path] = node
        return root

    kv = [(smt.key_hash(k.encode()), smt.value_hash(v.encode())) for k, v in ENTRIES]
    stray = smt.key_hash(b"veh/vin/temporary")
    commit({kh: vh for kh, vh in kv[1::2]} | {stray: smt.value_hash(b"soon gone")})
    commit({kh: smt.value_hash(b"old") for kh, _ in reversed(kv[::2])})
    root = commit({kh: vh for kh, vh in kv[::2]} | {stray: None})
    assert root.hex() == TREE["root"]
    assert commit({kh: None for kh, _ in kv}) == smt.EMPTY_ROOT
    assert set(nodes) <= {""}


PROOFS = {p["key"]: p for p in TREE["proofs"]}


def _proof(key: str) -> smt.StateProof:
    return msgspec.convert(PROOFS[key]["proof"], smt.StateProof)


def _value(key: str) -> bytes | None:
    v = PROOFS[key]["value"]
    return None if v is None else v.encode("utf-8")


@pytest.mark.parametrize("key", sorted(PROOFS))
def test_committed_state_proof_verifies(key):
    proof = _proof(key)
    smt.verify_proof(bytes.fromhex(TREE["root"]), key.encode(), _value(key), proof)
    assert proof.terminal == {MV.PROVE_PRESENT: "leaf", MV.PROVE_ABSENT_OTHER: "other",
                              MV.PROVE_ABSENT_EMPTY: "empty"}[key]


def _flip_hex(s: str, pos: int = -1) -> str:
    c = s[pos]
    return s[:pos] + ("1" if c == "0" else "0") + (s[pos + 1:] if pos != -1 else "")


def _tampered(key: str, how: str) -> tuple[bytes, bytes | None, dict[str, Any]]:
    """(root, value, proof builtins) for one tampering of a committed proof."""
    root = bytes.fromhex(TREE["root"])
    value = _value(key)
    p = copy.deepcopy(PROOFS[key]["proof"])
    deepest = max(i for i, lv in enumerate(p["levels"]) if lv)
    if how == "other_root":
        root = smt.EMPTY_ROOT
    elif how == "wrong_value":
        value = b'{"n":6,"owner":"mallory"}'
    elif how == "claims_absent":
        value = None
    elif how == "claims_present":
        value = b'{"n":6,"owner":"o1"}'
    elif how == "flipped_sibling_hash":
        p["levels"][deepest][0] = _flip_hex(p["levels"][deepest][0])
    elif how == "sibling_moved_to_other_slot":
        entry = p["levels"][deepest][0]
        taken = {int(x[:2], 16) for x in p["levels"][deepest]} | {int(smt.key_hash(key.encode()).hex()[deepest], 16)}
        free = min(set(range(16)) - taken)
        p["levels"][deepest][0] = f"{free:02x}" + entry[2:]
    elif how == "dropped_sibling":
        p["levels"][deepest].pop(0)
    elif how == "dropped_level":
        p["levels"].pop()
    elif how == "extra_level":
        p["levels"].append([])
    elif how == "entry_in_own_slot":
        nib = smt.key_hash(key.encode()).hex()[0]
        p["levels"][0].append("0" + nib + "00" * 32)
    elif how == "terminal_empty":
        p["terminal"] = "empty"
    elif how == "terminal_other":
        p["terminal"] = "other"
        p["other_kh"], p["other_vh"] = PROOFS[MV.PROVE_ABSENT_OTHER]["proof"]["other_kh"], "00" * 32
    elif how == "other_value_changed":
        p["other_vh"] = _flip_hex(p["other_vh"])
    elif how == "other_is_the_key_itself":
        p["other_kh"] = smt.key_hash(key.encode()).hex()
    elif how == "other_off_the_path":
        p["other_kh"] = _flip_hex(p["other_kh"], 0)
    elif how == "not_hex":
        p["levels"][0][0] = "zz" + p["levels"][0][0][2:]
    else:
        raise AssertionError(how)
    return root, value, p


TAMPERING = [
    (MV.PROVE_PRESENT, how) for how in (
        "other_root", "wrong_value", "claims_absent", "flipped_sibling_hash", "sibling_moved_to_other_slot",
        "dropped_sibling", "dropped_level", "extra_level", "entry_in_own_slot", "terminal_empty", "terminal_other",
        "not_hex")
] + [
    (MV.PROVE_ABSENT_OTHER, how) for how in (
        "other_root", "claims_present", "flipped_sibling_hash", "dropped_sibling", "dropped_level", "extra_level",
        "entry_in_own_slot", "terminal_empty", "other_value_changed", "other_is_the_key_itself",
        "other_off_the_path", "not_hex")
] + [
    (MV.PROVE_ABSENT_EMPTY, how) for how in (
        "other_root", "claims_present", "flipped_sibling_hash", "sibling_moved_to_other_slot", "dropped_sibling",
        "dropped_level", "extra_level", "entry_in_own_slot", "terminal_other", "not_hex")
]


@pytest.mark.parametrize("key, how", TAMPERING, ids=[f"{k.rsplit('/', 1)[-1]}-{h}" for k, h in TAMPERING])
def test_tampered_state_proof_is_rejected(key, how):
    root, value, p = _tampered(key, how)
    proof = msgspec.convert(p, smt.StateProof)
    with pytest.raises(smt.StateProofError):
        smt.verify_proof(root, key.encode(), value, proof)


def test_proof_for_one_key_does_not_prove_another():
    present = _proof(MV.PROVE_PRESENT)
    with pytest.raises(smt.StateProofError):
        smt.verify_proof(bytes.fromhex(TREE["root"]), b"veh/vin/WBA00000000000020", _value(MV.PROVE_PRESENT), present)


# ---------------------------------------------------------------- (d) did:key and genesis


def test_did_key_of_known_seed():
    ident = COMMITTED["identity"]
    alice = crypto.KeyPair.from_label(ident["label"])
    assert alice.seed.hex() == ident["seed_hex"]
    assert alice.public_key.hex() == ident["public_key_hex"]
    assert alice.did == ident["did"]
    assert crypto.public_key_from_did(ident["did"]).hex() == ident["public_key_hex"]
    assert crypto.KeyPair(bytes.fromhex(ident["seed_hex"])).did == ident["did"]


def test_genesis_header_hash_of_test_consortium():
    """Covers the genesis document's form, every module's genesis state (through the state root)
    and the header's form. It changes when a module adds genesis state: regenerate then."""
    committed, fresh = COMMITTED["genesis"], MV.build_genesis()
    assert fresh["genesis"] == committed["genesis"], "the test consortium changed"
    assert fresh["genesis_hash"] == committed["genesis_hash"], f"the genesis document's hash changed; {REGENERATE}"
    assert fresh["header"] == committed["header"], f"block 0 changed (see which field); {REGENERATE}"
    assert fresh["header_hash"] == committed["header_hash"], REGENERATE
