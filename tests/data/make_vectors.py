"""Regenerate ``blokauto-vectors.json``: the byte-level formats of blokauto, pinned.

    .venv/bin/python tests/data/make_vectors.py

The committed file is the reference: ``tests/core/test_vectors_blokauto.py`` recomputes every value
with the current code and compares. Regenerate only when a format change is intended (it
forks every existing chain), and say so in the commit. Everything here is deterministic: fixed
keys (``KeyPair.from_label``), fixed nonces and expiries, Ed25519 signatures (deterministic).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

HERE = Path(__file__).resolve().parent
OUT = HERE / "blokauto-vectors.json"
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))  # the tests folder, for conftest.consortium()

from conftest import consortium  # noqa: E402

from blokauto.core import smt  # noqa: E402
from blokauto.core.chain import MemoryLedger  # noqa: E402
from blokauto.core.crypto import KeyPair  # noqa: E402
from blokauto.core.encoding import MAX_SAFE_INT, canonical  # noqa: E402
from blokauto.core.tx import Message, make_body, sign, tx_id  # noqa: E402
from blokauto.modules import default_registry  # noqa: E402
from blokauto.modules.governance.messages import AddMember, Propose, RevokeMember, RotateKey, Vote  # noqa: E402
from blokauto.modules.governance.state import AdmitOrganisation, SetParameter  # noqa: E402

FORMAT = "blokauto-vectors/1"


# ---------------------------------------------------------------- (a) canonical encoding


class VectorRecord(msgspec.Struct, frozen=True):
    """Fields declared out of order on purpose: the canonical form sorts them."""

    zulu: int
    alpha: str
    mike: list[int]
    nested: dict[str, int]
    flag: bool = False


class VectorTagged(msgspec.Struct, tag="vector.tagged", tag_field="type", frozen=True):
    """A tagged Struct, as every transaction message is: the tag sorts among the fields."""

    zulu: int
    alpha: str


def encoding_cases() -> list[tuple[str, Any]]:
    return [
        ("empty_object", {}),
        ("literals", [True, False, None, "", [], {}]),
        ("nested_dicts_sorted_at_every_level",
         {"b": {"z": 1, "a": {"d": [3, {"y": None, "x": True}], "c": False}}, "a": [], "ab": {}, "B": 0}),
        ("keys_sorted_by_code_point_not_utf16",
         {"\uffff": 1, "\U0001f697": 2, "\ufb01": 3, "B": 4, "a": 5, "_": 6, "10": 7, "9": 8, "\u00e9": 9}),
        ("unicode_raw_utf8", {"text": "Gr\u00fc\u00dfe, \u65e5\u672c, \U0001f697 \u00e9"}),
        ("line_and_paragraph_separators_raw", "a\u2028b\u2029c"),
        ("control_characters_escaped",
         "\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x7f\u0080\u009f"),
        ("quotes_backslash_slash_html", "\"'\\/<>&</script>"),
        ("integers_javascript_safe", [0, 1, -1, 255, 1 << 32, MAX_SAFE_INT, -MAX_SAFE_INT]),
        ("struct_fields_sorted",
         VectorRecord(zulu=MAX_SAFE_INT, alpha="\u2028", mike=[3, 1, 2], nested={"y": 2, "x": 1})),
        ("tagged_struct", VectorTagged(zulu=0, alpha="a")),
        ("struct_inside_dict", {"z": VectorTagged(zulu=1, alpha="b"), "a": [VectorRecord(1, "", [], {})]}),
    ]


def build_encoding() -> list[dict[str, Any]]:
    out = []
    for name, value in encoding_cases():
        data = canonical(value)
        out.append({
            "name": name,
            "kind": type(value).__name__ if isinstance(value, msgspec.Struct) else "json",
            "value": msgspec.to_builtins(value),
            "canonical": data.decode("utf-8"),
            "canonical_hex": data.hex(),
        })
    return out


# ---------------------------------------------------------------- (b) transactions

CHAIN = "test-chain"
EXPIRES = 1_800_000_600_000


def K(label: str) -> KeyPair:
    return KeyPair.from_label(label)


def transaction_cases() -> list[tuple[str, str, Message, list[str], str]]:
    """(name, sender label, message, co-signer labels, nonce)."""
    return [
        ("add_member_cosigned_by_new_key", "oem-admin",
         AddMember(member=K("oem-worker").did, roles=["manufacturer", "admin"]), ["oem-worker"],
         "000102030405060708090a0b0c0d0e0f"),
        ("propose_admit_organisation", "oem-admin",
         Propose(action=AdmitOrganisation(id="dealer-one", name="Dealer One \u2014 M\u00fcller & S\u00f6hne",
                                          roles=["dealer", "workshop"], admins=[K("dealer-admin").did],
                                          nodes=[K("dealer-node").did]),
                 note="first dealer\u2028second line"),
         [], "ffffffffffffffffffffffffffffffff"),
        ("propose_set_parameter", "ins-admin",
         Propose(action=SetParameter(name="vote_threshold_pct", value=75)), [], "0123456789abcdef0123456789abcdef"),
        ("vote_on_proposal", "reg-admin", Vote(proposal=MAX_SAFE_INT, approve=False), [],
         "00000000000000000000000000000001"),
        ("revoke_member_with_reason", "oem-admin", RevokeMember(member=K("oem-worker").did, reason="lost \"key\"\n"),
         [], "deadbeefdeadbeefdeadbeefdeadbeef"),
        ("rotate_key", "ins-admin", RotateKey(new_key=K("ins-admin-2").did), ["ins-admin-2"],
         "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"),
    ]


def build_transactions() -> list[dict[str, Any]]:
    out = []
    for name, sender, msg, cosigners, nonce in transaction_cases():
        body = make_body(CHAIN, K(sender).did, msg, nonce=nonce, expires=EXPIRES)
        tx = sign(body, K(sender), *[K(c) for c in cosigners])
        out.append({
            "name": name,
            "chain": CHAIN,
            "sender": sender,
            "cosigners": cosigners,
            "nonce": nonce,
            "expires": EXPIRES,
            "msg": msgspec.to_builtins(msg),
            "body": canonical(body).decode("utf-8"),
            "tx_id": tx_id(body).hex(),
            "sigs": [{"signer": s.signer, "sig": s.sig} for s in tx.sigs],
            "tx": canonical(tx).decode("utf-8"),
        })
    return out


# ---------------------------------------------------------------- (c) state tree

STATE_ENTRIES: list[tuple[str, str]] = (
    [(f"veh/vin/WBA0000000000{i:04d}", f'{{"n":{i},"owner":"o{i % 5}"}}') for i in range(24)]
    + [("gov/org/oem", '{"id":"oem","name":"Test Motors"}'), ("gov/active-orgs", '["ins","oem","reg"]'),
       ("gov/next-proposal", "1"), ("x", "")]
)
PROVE_PRESENT = "veh/vin/WBA00000000000006"  # deep: its leaf sits below three internal nodes
PROVE_ABSENT_OTHER = "veh/vin/absent5855"  # its slot, three levels down, holds another key's leaf
PROVE_ABSENT_EMPTY = "veh/vin/absent1003"  # its slot, three levels down, is empty


def state_tree(entries: list[tuple[str, str]]) -> tuple[bytes, dict[str, smt.Node]]:
    nodes: dict[str, smt.Node] = {}
    root, writes = smt.update(nodes.get, {smt.key_hash(k.encode()): smt.value_hash(v.encode()) for k, v in entries})
    for path, node in writes.items():
        if node is not None:
            nodes[path] = node
    return root, nodes


def build_state_tree() -> dict[str, Any]:
    root, nodes = state_tree(STATE_ENTRIES)
    values = dict(STATE_ENTRIES)
    proofs = []
    for key, expect in ((PROVE_PRESENT, "leaf"), (PROVE_ABSENT_OTHER, "other"), (PROVE_ABSENT_EMPTY, "empty")):
        proof = smt.prove(nodes.get, smt.key_hash(key.encode()))
        if proof.terminal != expect:  # the chosen keys no longer show the intended case
            raise SystemExit(f"{key}: expected a {expect!r} proof, got {proof.terminal!r}; pick another key")
        proofs.append({"key": key, "value": values.get(key), "proof": msgspec.to_builtins(proof)})
    return {
        "empty_root": smt.EMPTY_ROOT.hex(),
        "entries": [{"key": k, "value": v} for k, v in STATE_ENTRIES],
        "root": root.hex(),
        "node_paths": sorted(nodes),
        "proofs": proofs,
    }


# ---------------------------------------------------------------- (d) identities and genesis


def build_identities() -> dict[str, Any]:
    alice = K("alice")
    return {"label": "alice", "seed_hex": alice.seed.hex(), "public_key_hex": alice.public_key.hex(),
            "did": alice.did}


def build_genesis() -> dict[str, Any]:
    genesis = consortium()
    ledger = MemoryLedger(default_registry(), genesis)
    head = ledger.head
    return {
        "genesis": msgspec.to_builtins(genesis),
        "genesis_hash": genesis.hash().hex(),
        "header": msgspec.to_builtins(head),
        "header_hash": head.hash().hex(),
    }


def build() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "about": "blokauto's own byte-level vectors; regenerate with tests/data/make_vectors.py only for an "
                 "intended format change",
        "encoding": build_encoding(),
        "transactions": build_transactions(),
        "state_tree": build_state_tree(),
        "identity": build_identities(),
        "genesis": build_genesis(),
    }


def render(vectors: dict[str, Any]) -> str:
    """The file's exact text: ASCII only (escapes keep U+2028 and controls visible), stable order."""
    return json.dumps(vectors, indent=1, ensure_ascii=True) + "\n"


def main() -> None:
    OUT.write_text(render(build()), encoding="ascii")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
