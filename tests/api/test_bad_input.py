"""Hostile and broken input through the real HTTP API: every refusal is a 4xx with a stable code,
a sentence and a detail object, and it changes nothing on the ledger.

Each row builds one bad request against a fresh node (committing any set-up it needs first),
sends it, checks the answer, then checks that height, head, state root and the committed
transaction count did not move, and that the next good transaction is the only one committed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import httpx
import msgspec
import pytest

from blokauto.core import crypto
from blokauto.core.encoding import canonical
from blokauto.core.errors import (
    AuthError,
    BadSignature,
    MalformedTx,
    MissingCosigner,
    ReplayedTx,
    RevokedKey,
    RoleNotAllowed,
    TxExpired,
    UnknownSigner,
    WrongChain,
)
from blokauto.modules.governance.messages import AddMember, RevokeMember, RotateKey

from conftest import JSON_POST, K, build_tx, now_ms, signed_client, write_chain
from conftest import signed as signed_http_client

ADD = "governance.add_member"
MAX_TX_BYTES = 65_536


# ---------------------------------------------------------------- building raw transactions


def body(live: Any, sender: crypto.KeyPair | str, msg: dict[str, Any], *, chain: str | None = None,
         expires: int | None = None, nonce: str | None = None) -> dict[str, Any]:
    return {"chain": live.genesis.chain if chain is None else chain,
            "sender": sender if isinstance(sender, str) else sender.did,
            "msg": msg, "nonce": nonce or os.urandom(16).hex(),
            "expires": now_ms() + 600_000 if expires is None else expires}


def sig(b: dict[str, Any], key: crypto.KeyPair) -> dict[str, str]:
    txid = crypto.tagged_hash(crypto.TAG_TX_ID, canonical(b))
    return {"signer": key.did, "sig": key.sign(crypto.TAG_TX_SIG + txid).hex()}


def signed(b: dict[str, Any], *keys: crypto.KeyPair) -> dict[str, Any]:
    return {"body": b, "sigs": [sig(b, k) for k in keys]}


def enc(tx: Any) -> bytes:
    return canonical(tx)


def add_member_msg(new: crypto.KeyPair, roles: list[str] | None = None) -> dict[str, Any]:
    return {"type": ADD, "member": new.did, "roles": roles or ["manufacturer"]}


HTTP = signed_http_client()  # one keep-alive connection pool for the whole file, signing with the node's key
_PREFIX = [""]


def U(label: str) -> crypto.KeyPair:
    """A deterministic key unique to the running test (tests may share one node)."""
    return K(f"{_PREFIX[0]}/{label}")


@pytest.fixture(autouse=True)
def _unique_keys(request):
    _PREFIX[0] = request.node.name


@pytest.fixture(scope="module", autouse=True)
def _close_http():
    yield
    HTTP.close()


def good_add(live: Any, label: str) -> bytes:
    return live.tx(K("oem-admin"), AddMember(member=U(label).did, roles=["manufacturer"]), U(label))


def commit(live: Any, raw: bytes) -> dict[str, Any]:
    """Submit and wait for the receipt; the set-up of a case must succeed."""
    r = HTTP.post(live.url + "/v1/txs", headers=JSON_POST, params={"wait": 20}, content=raw, timeout=30)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["receipt"]["ok"], ev["receipt"]
    return ev


def add_manufacturer(live: Any, label: str) -> crypto.KeyPair:
    commit(live, good_add(live, label))
    return U(label)


# ---------------------------------------------------------------- checking answers and the ledger


def snapshot(url: str) -> dict[str, Any]:
    st = HTTP.get(url + "/v1/status", timeout=10).json()
    return {k: st[k] for k in ("height", "head", "state_root", "committed_txs", "pending")}


def assert_refusal(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert set(err) == {"code", "message", "detail"}, err
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"].strip(), err
    assert isinstance(err["detail"], dict), err
    return err


def assert_item_refusal(item: dict[str, Any], code: str) -> None:
    assert "id" not in item, item
    err = item["error"]
    assert set(err) == {"code", "message", "detail"} and err["code"] == code and err["message"].strip(), err


def assert_only_next_good_tx_commits(live: Any, before: dict[str, Any], label: str = "next-good") -> None:
    """The engine had its chance to include anything it wrongly took; only this one goes in."""
    ev = commit(live, good_add(live, label))
    after = snapshot(live.url)
    assert ev["height"] == before["height"] + 1
    assert after["committed_txs"] == before["committed_txs"] + 1
    assert after["height"] == before["height"] + 1
    block = HTTP.get(f"{live.url}/v1/blocks/{ev['height']}", timeout=10).json()
    assert block["tx_ids"] == [ev["id"]]
    assert block["header"]["prev"] == before["head"]
    prev = HTTP.get(f"{live.url}/v1/blocks/{before['height']}", timeout=10).json()
    assert prev["header"]["state_root"] == before["state_root"]


# ---------------------------------------------------------------- the table


@dataclass
class Bad:
    content: bytes | None
    status: int
    code: str
    method: str = "POST"
    path: str = "/v1/txs"


Case = Callable[[Any], Bad]
CASES: list[Case] = []


def case(fn: Case) -> Case:
    CASES.append(fn)
    return fn


def tx_json(live: Any) -> dict[str, Any]:
    """A valid transaction as plain JSON, to break in one place."""
    return msgspec.json.decode(good_add(live, "victim"))


@case
def malformed_json_truncated(live):
    return Bad(b'{"body": {"chain": ', 400, "malformed_tx")


@case
def malformed_json_not_utf8(live):
    return Bad(b"\xff\xfe\x00garbage", 400, "malformed_tx")


@case
def empty_body(live):
    return Bad(b"", 400, "malformed_tx")


@case
def json_array_instead_of_tx(live):
    return Bad(b"[]", 400, "malformed_tx")


@case
def expires_as_string(live):
    tx = tx_json(live)
    tx["body"]["expires"] = str(tx["body"]["expires"])
    return Bad(enc(tx), 400, "malformed_tx")


@case
def expires_as_float(live):
    tx = tx_json(live)
    tx["body"]["expires"] = float(tx["body"]["expires"]) + 0.5
    return Bad(enc(tx), 400, "malformed_tx")


@case
def expires_as_integral_float_resigned(live):
    # 1.8e12 is "the same number" to a JavaScript client; hashed data holds integers only.
    b = body(live, K("oem-admin"), add_member_msg(U("f")))
    b["expires"] = float(b["expires"])
    return Bad(enc(signed(b, K("oem-admin"), U("f"))), 400, "malformed_tx")


@case
def expires_negative(live):
    tx = tx_json(live)
    tx["body"]["expires"] = -1
    return Bad(enc(tx), 400, "malformed_tx")


@case
def expires_beyond_javascript_safe_integer(live):
    tx = tx_json(live)
    tx["body"]["expires"] = 2**53
    return Bad(enc(tx), 400, "malformed_tx")


@case
def missing_nonce(live):
    tx = tx_json(live)
    del tx["body"]["nonce"]
    return Bad(enc(tx), 400, "malformed_tx")


@case
def missing_sigs(live):
    tx = tx_json(live)
    del tx["sigs"]
    return Bad(enc(tx), 400, "malformed_tx")


@case
def nonce_not_hex(live):
    b = body(live, K("oem-admin"), add_member_msg(U("n")), nonce="z" * 32)
    return Bad(enc(signed(b, K("oem-admin"), U("n"))), 400, "malformed_tx")


@case
def unknown_extra_field_in_body(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    b["priority"] = 1
    return Bad(enc(signed(b, K("oem-admin"), U("x"))), 400, "malformed_tx")


@case
def unknown_extra_field_in_message(live):
    msg = {**add_member_msg(U("x")), "admin": True}
    b = body(live, K("oem-admin"), msg)
    return Bad(enc(signed(b, K("oem-admin"), U("x"))), 400, "malformed_tx")


@case
def unknown_extra_field_in_signature(live):
    tx = tx_json(live)
    tx["sigs"][0]["weight"] = 2
    return Bad(enc(tx), 400, "malformed_tx")


@case
def message_field_of_wrong_type(live):
    b = body(live, K("oem-admin"), {"type": ADD, "member": U("x").did, "roles": "manufacturer"})
    return Bad(enc(signed(b, K("oem-admin"), U("x"))), 400, "malformed_tx")


@case
def signature_not_hex(live):
    tx = tx_json(live)
    tx["sigs"][0]["sig"] = "zz" * 64
    return Bad(enc(tx), 400, "malformed_tx")


@case
def oversized_body(live):
    return Bad(b"{" + b" " * MAX_TX_BYTES + b"}", 413, "tx_too_large")


@case
def oversized_validly_signed_tx(live):
    b = body(live, K("oem-admin"), {"type": "governance.revoke_member", "member": U("nobody").did,
                                    "reason": "x" * MAX_TX_BYTES})
    return Bad(enc(signed(b, K("oem-admin"))), 413, "tx_too_large")


@case
def unknown_message_type(live):
    b = body(live, K("oem-admin"), {"type": "governance.dissolve_consortium"})
    return Bad(enc(signed(b, K("oem-admin"))), 400, "unknown_message")


@case
def unknown_module(live):
    b = body(live, K("oem-admin"), {"type": "casino.place_bet", "amount": 5})
    return Bad(enc(signed(b, K("oem-admin"))), 400, "unknown_message")


@case
def wrong_chain_id(live):
    raw = build_tx(K("oem-admin"), AddMember(member=U("x").did, roles=["manufacturer"]), U("x"),
                   chain="another-chain", expires=now_ms() + 600_000)
    return Bad(raw, 400, "wrong_chain")


@case
def expired(live):
    return Bad(live.tx(K("oem-admin"), AddMember(member=U("x").did, roles=["manufacturer"]), U("x"),
                       expires=now_ms() - 60_000), 400, "tx_expired")


@case
def expiry_too_far(live):
    return Bad(live.tx(K("oem-admin"), AddMember(member=U("x").did, roles=["manufacturer"]), U("x"),
                       expires=now_ms() + 3 * 3_600_000), 400, "expiry_too_far")


@case
def replayed_same_bytes(live):
    raw = good_add(live, "first")
    commit(live, raw)
    return Bad(raw, 409, "replayed_tx")


@case
def replayed_with_other_whitespace(live):
    raw = good_add(live, "first")
    commit(live, raw)
    pretty = msgspec.json.format(raw, indent=3)
    assert pretty != raw
    return Bad(pretty, 409, "replayed_tx")


@case
def replayed_with_signatures_reordered(live):
    raw = good_add(live, "first")
    commit(live, raw)
    tx = msgspec.json.decode(raw)
    tx["sigs"].reverse()
    return Bad(enc(tx), 409, "replayed_tx")


@case
def replayed_after_failed_receipt(live):
    # A transaction that failed at execution consumed its id: the attempt cannot be replayed.
    raw = live.tx(K("oem-admin"), AddMember(member=U("x").did, roles=["insurer"]), U("x"))
    r = HTTP.post(live.url + "/v1/txs", headers=JSON_POST, params={"wait": 20}, content=raw, timeout=30)
    assert r.status_code == 200 and r.json()["receipt"]["code"] == "role_not_held", r.text
    return Bad(raw, 409, "replayed_tx")


@case
def bad_cosignature_bytes_flipped(live):
    tx = tx_json(live)
    s = bytearray(bytes.fromhex(tx["sigs"][1]["sig"]))
    s[5] ^= 0x01
    tx["sigs"][1]["sig"] = s.hex()
    return Bad(enc(tx), 401, "bad_signature")


@case
def bad_sender_signature_bytes_flipped(live):
    tx = tx_json(live)
    s = bytearray(bytes.fromhex(tx["sigs"][0]["sig"]))
    s[40] ^= 0x80
    tx["sigs"][0]["sig"] = s.hex()
    return Bad(enc(tx), 401, "bad_signature")


@case
def signature_claimed_for_another_key(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    forged = sig(b, U("mallory"))
    forged["signer"] = U("x").did
    return Bad(enc({"body": b, "sigs": [sig(b, K("oem-admin")), forged]}), 401, "bad_signature")


@case
def signature_over_another_body(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    other = {**b, "nonce": os.urandom(16).hex()}
    return Bad(enc({"body": b, "sigs": [sig(other, K("oem-admin")), sig(b, U("x"))]}), 401, "bad_signature")


@case
def signer_not_a_did_key(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    return Bad(enc({"body": b, "sigs": [sig(b, K("oem-admin")), {"signer": "did:web:evil.example", "sig": "00" * 64}]}),
               401, "bad_signature")


@case
def sender_did_not_sign(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    return Bad(enc(signed(b, U("x"))), 401, "missing_signature")


@case
def no_signatures_at_all(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    return Bad(enc({"body": b, "sigs": []}), 401, "missing_signature")


@case
def missing_cosignature_of_new_key(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    return Bad(enc(signed(b, K("oem-admin"))), 403, "missing_cosigner")


@case
def rotate_key_without_new_key_signature(live):
    w = add_manufacturer(live, "rot")
    return Bad(live.tx(w, RotateKey(new_key=U("rot2").did)), 403, "missing_cosigner")


@case
def unexpected_extra_signer(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    return Bad(enc(signed(b, K("oem-admin"), U("x"), K("ins-admin"))), 401, "unexpected_signer")


@case
def duplicate_signer(live):
    b = body(live, K("oem-admin"), add_member_msg(U("x")))
    return Bad(enc(signed(b, K("oem-admin"), K("oem-admin"), U("x"))), 400, "duplicate_signer")


@case
def new_member_key_not_a_valid_did(live):
    b = body(live, K("oem-admin"), {"type": ADD, "member": "did:key:z6MkNOTAKEY", "roles": ["manufacturer"]})
    return Bad(enc(signed(b, K("oem-admin"))), 400, "invalid_key")


@case
def key_of_wrong_role(live):
    w = add_manufacturer(live, "line-worker")
    return Bad(live.tx(w, AddMember(member=U("y").did, roles=["manufacturer"]), U("y")), 403, "role_not_allowed")


@case
def unknown_key(live):
    return Bad(live.tx(U("stranger"), AddMember(member=U("y").did, roles=["manufacturer"]), U("y")), 403,
               "unknown_signer")


@case
def node_key_is_not_a_member_key(live):
    return Bad(live.tx(K("reg-node"), RevokeMember(member=K("reg-admin").did)), 403, "unknown_signer")


@case
def revoked_key(live):
    w = add_manufacturer(live, "fired")
    commit(live, live.tx(K("oem-admin"), RevokeMember(member=w.did, reason="left the company")))
    return Bad(live.tx(w, RevokeMember(member=w.did)), 403, "revoked_key")


@case
def rotated_key(live):
    w = add_manufacturer(live, "old")
    commit(live, live.tx(w, RotateKey(new_key=U("new").did), U("new")))
    return Bad(live.tx(w, RevokeMember(member=w.did)), 403, "revoked_key")


@case
def revoked_key_as_extra_cosigner(live):
    w = add_manufacturer(live, "fired")
    commit(live, live.tx(K("oem-admin"), RevokeMember(member=w.did)))
    return Bad(live.tx(K("oem-admin"), AddMember(member=U("y").did, roles=["manufacturer"]), U("y"), w), 403,
               "revoked_key")


@case
def wait_parameter_not_a_number(live):
    return Bad(good_add(live, "w"), 400, "bad_request", path="/v1/txs?wait=soon")


@case
def tx_id_not_hex(live):
    return Bad(None, 400, "bad_tx_id", "GET", "/v1/txs/" + "zz" * 32)


@case
def tx_id_too_short(live):
    return Bad(None, 400, "bad_tx_id", "GET", "/v1/txs/abcd")


@case
def tx_id_upper_case(live):
    return Bad(None, 400, "bad_tx_id", "GET", "/v1/txs/" + "AB" * 32)


@case
def tx_id_unknown(live):
    return Bad(None, 404, "unknown_tx", "GET", "/v1/txs/" + "ab" * 32)


@case
def block_height_not_reached(live):
    return Bad(None, 404, "height_not_reached", "GET", "/v1/blocks/999")


@case
def negative_block_height(live):
    return Bad(None, 400, "bad_request", "GET", "/v1/blocks/-1")


@case
def checkpoint_height_not_reached(live):
    return Bad(None, 404, "height_not_reached", "GET", "/v1/checkpoints/999")


@case
def block_full_flag_not_boolean(live):
    return Bad(None, 400, "bad_request", "GET", "/v1/blocks/0?full=maybe")


@case
def batch_not_an_array(live):
    return Bad(b'{"txs": []}', 400, "malformed_tx", path="/v1/txs/batch")


@case
def batch_not_json(live):
    return Bad(b"[{,]", 400, "malformed_tx", path="/v1/txs/batch")


@case
def batch_too_large(live):
    return Bad(b"[" + b",".join([b"{}"] * 5001) + b"]", 413, "batch_too_large", path="/v1/txs/batch")


@case
def unknown_route(live):
    return Bad(None, 404, "not_found", "GET", "/v1/vehicles-for-sale")


@case
def unknown_query(live):
    return Bad(None, 404, "unknown_query", "GET", "/v1/q/governance/secrets")


@case
def wrong_method_put_tx(live):
    return Bad(good_add(live, "w"), 405, "method_not_allowed", "PUT", "/v1/txs")


@case
def wrong_method_get_submit(live):
    return Bad(None, 405, "method_not_allowed", "GET", "/v1/txs")


@case
def wrong_method_delete_status(live):
    return Bad(None, 405, "method_not_allowed", "DELETE", "/v1/status")


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory):
    """One node for the whole table, built like conftest's ``live_node`` (each row takes its own baseline)."""
    from blokauto.api.server import ApiServer
    from blokauto.node.ordering import NodeConfig
    from blokauto.node.node import Node

    data = tmp_path_factory.mktemp("bad-input") / "data"
    genesis = write_chain(data)
    node = Node(data, config=NodeConfig(block_interval_ms=20), workers=1)
    node.start()
    server = ApiServer(node, "127.0.0.1", 0)

    class Live:
        pass

    live = Live()
    live.url, live.node, live.genesis, live.data = server.start(), node, genesis, data
    live.tx = lambda sender, msg, *co, **kw: build_tx(sender, msg, *co, chain=genesis.chain,
                                                         expires=kw.pop("expires", now_ms() + 600_000), **kw)
    try:
        yield live
    finally:
        server.stop()
        node.stop()


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_refused_with_stable_code_and_nothing_changes(shared_node, make):
    bad = make(shared_node)
    before = snapshot(shared_node.url)
    r = HTTP.request(bad.method, shared_node.url + bad.path, content=bad.content, timeout=30,
                      headers={"content-type": "application/json"} if bad.content is not None else None)
    assert_refusal(r, bad.status, bad.code)
    assert snapshot(shared_node.url) == before
    assert_only_next_good_tx_commits(shared_node, before)


# ---------------------------------------------------------------- batches


def post_batch(live: Any, raws: list[bytes]) -> dict[str, Any]:
    r = HTTP.post(live.url + "/v1/txs/batch", headers=JSON_POST, content=b"[" + b",".join(raws) + b"]", timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def test_two_identical_txs_in_one_batch_commit_once(live_node):
    before = snapshot(live_node.url)
    raw = good_add(live_node, "twin")
    out = post_batch(live_node, [raw, raw])
    assert out["accepted"] == 1
    first, second = out["results"]
    assert_item_refusal(second, "replayed_tx")
    ev = HTTP.get(f"{live_node.url}/v1/txs/{first['id']}", params={"wait": 20}, timeout=30).json()
    assert ev["receipt"]["ok"]
    after = snapshot(live_node.url)
    assert after["committed_txs"] == before["committed_txs"] + 1
    block = HTTP.get(f"{live_node.url}/v1/blocks/{ev['height']}", timeout=10).json()
    assert block["tx_ids"] == [first["id"]]
    assert_only_next_good_tx_commits(live_node, after)


def test_mixed_batch_answers_each_item_and_commits_only_the_good_one(live_node):
    before = snapshot(live_node.url)
    good = good_add(live_node, "good")
    huge = enc(signed(body(live_node, K("oem-admin"), {"type": "governance.revoke_member", "member": K("n").did,
                                                       "reason": "x" * MAX_TX_BYTES}), K("oem-admin")))
    other_chain = build_tx(K("oem-admin"), AddMember(member=K("oc").did, roles=["manufacturer"]), K("oc"),
                           chain="another-chain", expires=now_ms() + 600_000)
    stranger = live_node.tx(K("stranger"), AddMember(member=K("s").did, roles=["manufacturer"]), K("s"))
    out = post_batch(live_node, [good, huge, b"{}", b"17", other_chain, stranger, good])
    results = out["results"]
    assert out["accepted"] == 1 and "id" in results[0]
    for item, code in zip(results[1:], ["tx_too_large", "malformed_tx", "malformed_tx", "wrong_chain",
                                        "unknown_signer", "replayed_tx"]):
        assert_item_refusal(item, code)
    ev = HTTP.get(f"{live_node.url}/v1/txs/{results[0]['id']}", params={"wait": 20}, timeout=30).json()
    assert ev["receipt"]["ok"]
    after = snapshot(live_node.url)
    assert after["committed_txs"] == before["committed_txs"] + 1
    assert_only_next_good_tx_commits(live_node, after)


def test_empty_batch_is_accepted_as_nothing(live_node):
    before = snapshot(live_node.url)
    assert post_batch(live_node, []) == {"accepted": 0, "results": []}
    assert_only_next_good_tx_commits(live_node, before)


# ---------------------------------------------------------------- domain rules and other organisations


def test_admin_of_another_organisation_cannot_revoke_our_member(live_node):
    """Organisation ownership is a domain rule (design §3): the attempt is recorded with a failure
    receipt and a stable code, and changes no state."""
    w = add_manufacturer(live_node, "oem-worker")
    before = snapshot(live_node.url)
    r = HTTP.post(live_node.url + "/v1/txs", headers=JSON_POST, params={"wait": 20},
                   content=live_node.tx(K("ins-admin"), RevokeMember(member=w.did, reason="hostile")), timeout=30)
    assert r.status_code == 200, r.text
    ev = r.json()
    assert ev["receipt"]["ok"] is False
    assert ev["receipt"]["code"] == "not_your_organisation"
    assert ev["receipt"]["events"] == []
    after = snapshot(live_node.url)
    assert after["state_root"] == before["state_root"]
    assert after["committed_txs"] == before["committed_txs"] + 1
    st = HTTP.get(f"{live_node.url}/v1/state/gov/member/{w.did}", params={"min_height": after["height"]},
                   timeout=20).json()
    assert st["value"]["status"] == "active" and st["value"]["org"] == "oem"


def test_key_of_another_organisation_cannot_sell_its_vehicle(live_node):
    """The title holder is organisation oem: a transfer signed only by ins-admin lacks oem's signature."""
    from blokauto.modules.vehicles import messages as veh

    vin = "WZZ3E5C22NM400117"
    commit(live_node, live_node.tx(K("reg-admin"), veh.AssignWmi(wmi="WZZ", org="oem")))
    commit(live_node, live_node.tx(K("oem-admin"), veh.RegisterVehicle(
        vin=vin, make="Test", model="T1", model_year=2022, body="sedan", powertrain="bev", plant="P",
        build_date="2022-06-14", country="DE")))
    buyer = K("buyer")
    before = snapshot(live_node.url)
    r = HTTP.post(live_node.url + "/v1/txs", headers=JSON_POST,
                   content=live_node.tx(K("ins-admin"), veh.TransferTitle(vin=vin, to=buyer.did), buyer), timeout=30)
    assert_refusal(r, 403, "missing_cosigner")
    assert snapshot(live_node.url) == before
    assert_only_next_good_tx_commits(live_node, before)


# ---------------------------------------------------------------- inputs that must not take the node down


DEPTH = 30_000  # nesting that fits well under max_tx_bytes


def test_deeply_nested_tx_is_malformed_and_node_keeps_working(live_node):
    before = snapshot(live_node.url)
    deep = (b'{"body":{"chain":"c","sender":"s","msg":' + b"[" * DEPTH + b"]" * DEPTH
            + b',"nonce":"00","expires":1},"sigs":[]}')
    assert len(deep) < MAX_TX_BYTES
    r = HTTP.post(live_node.url + "/v1/txs", headers=JSON_POST, content=deep, timeout=5)
    assert_refusal(r, 400, "malformed_tx")
    assert_only_next_good_tx_commits(live_node, before)


def test_deeply_nested_batch_is_malformed(live_node):
    before = snapshot(live_node.url)
    r = HTTP.post(live_node.url + "/v1/txs/batch", headers=JSON_POST, content=b"[" + b"[" * DEPTH + b"]" * DEPTH + b"]", timeout=10)
    assert_refusal(r, 400, "malformed_tx")
    assert_only_next_good_tx_commits(live_node, before)


@pytest.mark.parametrize("path", ["/v1/blocks/99999999999999999999", "/v1/checkpoints/99999999999999999999"])
def test_a_height_beyond_two_to_the_53_is_a_bad_request(live_node, path):
    r = HTTP.get(live_node.url + path, timeout=10)
    assert_refusal(r, 400, "bad_request")


# ---------------------------------------------------------------- the SDK raises the matching class


def test_sdk_raises_the_refusal_class_the_node_answered_with(live_node):
    live = live_node
    with signed_client(live.url, trust=live.genesis) as c:
        fired = K("fired")
        c.send(AddMember(member=fired.did, roles=["manufacturer"]), K("oem-admin"), fired).raise_for_status()
        c.send(RevokeMember(member=fired.did), K("oem-admin")).raise_for_status()
        before = snapshot(live.url)

        with pytest.raises(RevokedKey) as e:
            c.send(RevokeMember(member=fired.did), fired)
        assert isinstance(e.value, AuthError) and e.value.http_status == 403
        assert e.value.detail["signer"] == fired.did and e.value.detail["status"] == "revoked"
        assert fired.did in e.value.message

        tx = c.sign(c.build(AddMember(member=K("once").did, roles=["manufacturer"]), K("oem-admin")),
                    K("oem-admin"), K("once"))
        info = c.receipt(c.submit(tx))
        assert info.ok
        with pytest.raises(ReplayedTx) as e:
            c.submit(tx)
        assert e.value.detail["tx_id"] == info.id and e.value.detail["height"] == info.height
        before = snapshot(live.url)

        with pytest.raises(RoleNotAllowed):
            c.send(AddMember(member=K("z").did, roles=["manufacturer"]), K("once"), K("z"))
        with pytest.raises(UnknownSigner):
            c.send(AddMember(member=K("z").did, roles=["manufacturer"]), K("nobody"), K("z"))
        with pytest.raises(MissingCosigner):
            c.send(AddMember(member=K("z").did, roles=["manufacturer"]), K("oem-admin"))
        with pytest.raises(WrongChain):
            c.submit(build_tx(K("oem-admin"), AddMember(member=K("z").did, roles=["manufacturer"]), K("z"),
                              chain="another-chain", expires=now_ms() + 60_000))
        with pytest.raises(TxExpired):
            c.submit(live.tx(K("oem-admin"), AddMember(member=K("z").did, roles=["manufacturer"]), K("z"),
                             expires=now_ms() - 1000))
        with pytest.raises(MalformedTx):
            c.submit(b'{"body": 1}')
        flipped = msgspec.json.decode(canonical(c.sign(c.build(AddMember(member=K("z").did, roles=["manufacturer"]),
                                                              K("oem-admin")), K("oem-admin"), K("z"))))
        flipped["sigs"][1]["sig"] = ("0" if flipped["sigs"][1]["sig"][0] != "0" else "1") + flipped["sigs"][1]["sig"][1:]
        with pytest.raises(BadSignature):
            c.submit(enc(flipped))
        assert snapshot(live.url) == before
    assert_only_next_good_tx_commits(live, before)
