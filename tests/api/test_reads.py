"""Reads through the real HTTP API, checked the way a distrustful client checks them: receipts and
state values with proofs verified offline against the genesis trust anchor, and every tampered
piece of evidence refused by ``blokauto.verify``."""

from __future__ import annotations

import copy
import threading
from typing import Any

import msgspec
import pytest

from blokauto.core import crypto
from blokauto.core.block import Checkpoint, Genesis, Header, NodeSignature, attest
from blokauto.core.encoding import canonical, to_builtins
from blokauto.modules.governance import state as gov_state
from blokauto.modules.governance.messages import AddMember, Propose, RevokeMember
from blokauto.verify import (
    TrustAnchor,
    VerificationError,
    verify_checkpoint,
    verify_state_evidence,
    verify_tx_evidence,
)

from conftest import JSON_POST, K, build_tx, consortium, now_ms, signed, signed_client, write_chain

HTTP = signed()  # signed with the node's key, which reads everything


@pytest.fixture(scope="module", autouse=True)
def _close_http():
    yield
    HTTP.close()


def add(live: Any, label: str, roles: tuple[str, ...] = ("manufacturer",)) -> bytes:
    return live.tx(K("oem-admin"), AddMember(member=K(label).did, roles=list(roles)), K(label))


def commit(live: Any, raw: bytes) -> dict[str, Any]:
    r = HTTP.post(live.url + "/v1/txs", headers=JSON_POST, params={"wait": 20}, content=raw)
    assert r.status_code == 200, r.text
    return r.json()


def get_json(live: Any, path: str, **params: Any) -> Any:
    r = HTTP.get(live.url + path, params=params or None)
    assert r.status_code == 200, (path, r.status_code, r.text)
    return r.json()


def flushed(live: Any) -> int:
    """Wait until queries and state proofs reflect the newest block; returns its height."""
    h = get_json(live, "/v1/status")["height"]
    assert get_json(live, "/v1/state/gov/active-orgs", min_height=h)["height"] >= h
    return h


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A node (built like conftest's ``live_node``) with some history: single-tx blocks, a
    multi-tx batch, a revoked key and an open proposal."""
    from blokauto.api.server import ApiServer
    from blokauto.node.ordering import NodeConfig
    from blokauto.node.node import Node

    data = tmp_path_factory.mktemp("reads") / "data"
    genesis = write_chain(data)
    node = Node(data, config=NodeConfig(block_interval_ms=50), workers=1)
    node.start()
    server = ApiServer(node, "127.0.0.1", 0)

    class Live:
        pass

    live = Live()
    live.url, live.node, live.genesis, live.data = server.start(), node, genesis, data
    live.tx = lambda sender, msg, *co, **kw: build_tx(sender, msg, *co, chain=genesis.chain,
                                                         expires=kw.pop("expires", now_ms() + 600_000), **kw)
    try:
        live.ids = [commit(live, add(live, "alice"))["id"]]
        batch = [add(live, f"batch-{i}") for i in range(5)]
        r = HTTP.post(live.url + "/v1/txs/batch", headers=JSON_POST, content=b"[" + b",".join(batch) + b"]")
        assert r.json()["accepted"] == 5, r.text
        live.batch_ids = [x["id"] for x in r.json()["results"]]
        for txid in live.batch_ids:
            assert get_json(live, f"/v1/txs/{txid}", wait=20)["receipt"]["ok"]
        live.ids += live.batch_ids
        live.ids.append(commit(live, add(live, "mallory"))["id"])
        live.ids.append(commit(live, live.tx(K("oem-admin"), RevokeMember(member=K("mallory").did)))["id"])
        ev = commit(live, live.tx(K("ins-admin"), Propose(
            action=gov_state.SetParameter(name="max_block_txs", value=5000), note="smaller blocks")))
        assert ev["receipt"]["ok"], ev
        live.ids.append(ev["id"])
        live.proposal = next(e["proposal"] for e in ev["receipt"]["events"] if e["type"] == "governance.proposal_opened")
        flushed(live)
        yield live
    finally:
        server.stop()
        node.stop()


@pytest.fixture(scope="module")
def anchor(chain) -> TrustAnchor:
    return TrustAnchor.from_genesis(chain.genesis)


# ---------------------------------------------------------------- receipts with inclusion proofs


def test_every_receipt_proves_its_inclusion_against_the_genesis_anchor(chain, anchor):
    heights = set()
    for txid in chain.ids:
        ev = get_json(chain, f"/v1/txs/{txid}")
        cp = verify_tx_evidence(ev, anchor)
        assert ev["id"] == txid and ev["receipt"]["tx"] == txid
        assert cp.header.height == ev["height"]
        assert msgspec.json.decode(ev["receipt_raw"]) == ev["receipt"]
        assert msgspec.json.decode(ev["tx_raw"]) == ev["tx"]
        block = get_json(chain, f"/v1/blocks/{ev['height']}")
        assert block["header"] == to_builtins(cp.header)
        assert block["tx_ids"][ev["index"]] == txid
        heights.add(ev["height"])
    assert len(heights) < len(chain.ids)  # some block holds several transactions: proofs are non-trivial


def test_failed_receipt_is_proven_too(chain, anchor):
    ev = commit(chain, chain.tx(K("oem-admin"), AddMember(member=K("wrong-role").did, roles=["insurer"]),
                                K("wrong-role")))
    verify_tx_evidence(ev, anchor)
    assert ev["receipt"]["ok"] is False and ev["receipt"]["code"] == "role_not_held"


def _multi_tx_evidence(chain: Any) -> dict[str, Any]:
    for txid in chain.batch_ids:
        ev = get_json(chain, f"/v1/txs/{txid}")
        if ev["checkpoint"]["header"]["tx_count"] > 1:
            return ev
    pytest.fail("the batch was not cut into a block holding several transactions")


def _flip_hex(s: str, at: int = 0) -> str:
    return s[:at] + ("1" if s[at] == "0" else "0") + s[at + 1:]


def _tamper_receipt_raw(ev):
    ev["receipt_raw"] = ev["receipt_raw"].replace('"ok":true', '"ok":false')


def _tamper_tx_raw(ev):
    tx = msgspec.json.decode(ev["tx_raw"])
    tx["body"]["nonce"] = _flip_hex(tx["body"]["nonce"])
    ev["tx_raw"] = canonical(tx).decode()


def _tamper_index(ev):
    ev["index"] = (ev["index"] + 1) % ev["checkpoint"]["header"]["tx_count"]


def _tamper_tx_proof(ev):
    ev["proof"]["tx"][0] = _flip_hex(ev["proof"]["tx"][0])


def _tamper_receipt_proof(ev):
    ev["proof"]["receipt"] = ev["proof"]["receipt"][:-1]


def _tamper_header_root(ev):
    ev["checkpoint"]["header"]["receipt_root"] = _flip_hex(ev["checkpoint"]["header"]["receipt_root"])


def _tamper_attestation(ev):
    ev["checkpoint"]["attestations"][0]["sig"] = _flip_hex(ev["checkpoint"]["attestations"][0]["sig"], 10)


def _tamper_no_attestation(ev):
    ev["checkpoint"]["attestations"] = []


def _tamper_claimed_id(ev):
    ev["id"] = _flip_hex(ev["id"])


def _tamper_checkpoint_missing(ev):
    del ev["checkpoint"]


@pytest.mark.parametrize("tamper", [
    _tamper_receipt_raw, _tamper_tx_raw, _tamper_index, _tamper_tx_proof, _tamper_receipt_proof,
    _tamper_header_root, _tamper_attestation, _tamper_no_attestation, _tamper_claimed_id,
    _tamper_checkpoint_missing,
], ids=lambda f: f.__name__.removeprefix("_tamper_"))
def test_tampered_receipt_evidence_is_rejected(chain, anchor, tamper):
    ev = _multi_tx_evidence(chain)
    verify_tx_evidence(copy.deepcopy(ev), anchor)
    bad = copy.deepcopy(ev)
    tamper(bad)
    with pytest.raises(VerificationError):
        verify_tx_evidence(bad, anchor)


def test_receipt_evidence_of_one_chain_does_not_verify_against_another(chain):
    ev = get_json(chain, f"/v1/txs/{chain.ids[0]}")
    other = TrustAnchor.from_genesis(consortium(chain="another-chain"))
    with pytest.raises(VerificationError):
        verify_tx_evidence(ev, other)
    same_keys_other_time = TrustAnchor.from_genesis(consortium(chain=chain.genesis.chain, time=1))
    genesis_block = get_json(chain, "/v1/checkpoints/0")
    with pytest.raises(VerificationError):  # block 0 commits to the exact genesis document
        verify_checkpoint(msgspec.convert(genesis_block, Checkpoint), same_keys_other_time)


def test_receipt_field_that_disagrees_with_the_proven_bytes_is_rejected(chain, anchor):
    ev = get_json(chain, f"/v1/txs/{chain.ids[0]}")
    bad = copy.deepcopy(ev)
    bad["receipt"]["ok"] = False
    bad["receipt"]["code"] = "forged"
    with pytest.raises(VerificationError):
        verify_tx_evidence(bad, anchor)


@pytest.mark.parametrize("lie", ["answers-about-another", "claims-the-asked-id"])
def test_sdk_refuses_a_receipt_for_another_transaction(chain, monkeypatch, lie):
    """A node that answers with another transaction's genuine, proven receipt is caught: whether it
    says so (its id) or claims it is the one asked about."""
    asked, other = chain.ids[0], chain.ids[1]
    with signed_client(chain.url, trust=chain.genesis) as c:
        real = c._request

        def swap(method, path, **kw):
            out = real(method, path.replace(asked, other), **kw)
            if lie == "claims-the-asked-id" and isinstance(out, dict) and "id" in out:
                out = {**out, "id": asked}
            return out

        monkeypatch.setattr(c, "_request", swap)
        with pytest.raises(VerificationError, match="transaction"):
            c.receipt(asked, wait=0)


# ---------------------------------------------------------------- state values with proofs


def test_state_value_present_is_proven(chain, anchor):
    did = K("alice").did
    ev = get_json(chain, f"/v1/state/gov/member/{did}")
    cp = verify_state_evidence(ev, anchor)
    assert ev["key"] == f"gov/member/{did}"
    assert ev["value"]["org"] == "oem" and ev["value"]["roles"] == ["manufacturer"] and ev["value"]["status"] == "active"
    assert msgspec.json.decode(ev["raw"]) == ev["value"]
    assert cp.header.height == ev["height"]
    assert cp.header.state_root == get_json(chain, f"/v1/blocks/{ev['height']}")["header"]["state_root"]
    with signed_client(chain.url, trust=chain.genesis) as c:
        sv = c.state(f"gov/member/{K('mallory').did}")
        assert sv.value["status"] == "revoked"


def test_state_value_absent_is_proven(chain, anchor):
    for key in (f"gov/member/{K('never-added').did}", "gov/org/no-such-org", "nothing-here-at-all"):
        ev = get_json(chain, f"/v1/state/{key}")
        assert ev["value"] is None and ev["raw"] is None
        verify_state_evidence(ev, anchor)
    with signed_client(chain.url, trust=chain.genesis) as c:
        assert c.state(f"gov/member/{K('never-added').did}").value is None


def _present_state(chain):
    return get_json(chain, f"/v1/state/gov/member/{K('alice').did}")


def _absent_state(chain):
    return get_json(chain, f"/v1/state/gov/member/{K('never-added').did}")


def _state_raw_value(ev):
    value = msgspec.json.decode(ev["raw"])
    value["status"] = "revoked"
    ev["raw"] = canonical(value).decode()


def _state_claims_absent(ev):
    ev["raw"] = None


def _state_claims_present(ev):
    ev["raw"] = canonical({"did": K("never-added").did, "org": "oem", "roles": ["admin"], "since": 0,
                           "status": "active", "successor": ""}).decode()


def _state_other_key(ev):
    # a proof of absence reused for a key that is present, or one key's proof passed off as another's
    ev["key"] = f"gov/member/{K('alice').did}" if ev["raw"] is None else f"gov/member/{K('batch-0').did}"


def _state_proof_level(ev):
    levels = ev["proof"]["levels"]
    i = next(i for i, lv in enumerate(levels) if lv)
    levels[i][0] = levels[i][0][:2] + _flip_hex(levels[i][0][2:])


def _state_proof_dropped_level(ev):
    ev["proof"]["levels"] = ev["proof"]["levels"][1:]


def _state_proof_terminal(ev):
    ev["proof"]["terminal"] = "empty" if ev["proof"]["terminal"] != "empty" else "leaf"


def _state_checkpoint_root(ev):
    ev["checkpoint"]["header"]["state_root"] = _flip_hex(ev["checkpoint"]["header"]["state_root"])


def _state_attestation_sig(ev):
    ev["checkpoint"]["attestations"][0]["sig"] = _flip_hex(ev["checkpoint"]["attestations"][0]["sig"], 70)


@pytest.mark.parametrize("which", ["present", "absent"])
@pytest.mark.parametrize("tamper", [
    _state_raw_value, _state_claims_absent, _state_claims_present, _state_other_key, _state_proof_level,
    _state_proof_dropped_level, _state_proof_terminal, _state_checkpoint_root, _state_attestation_sig,
], ids=lambda f: f.__name__.removeprefix("_state_"))
def test_tampered_state_evidence_is_rejected(chain, anchor, which, tamper):
    ev = _present_state(chain) if which == "present" else _absent_state(chain)
    verify_state_evidence(copy.deepcopy(ev), anchor)
    if which == "present" and tamper is _state_claims_present:
        tamper = _state_raw_value
    if which == "absent" and tamper in (_state_claims_absent, _state_raw_value):
        tamper = _state_claims_present
    bad = copy.deepcopy(ev)
    tamper(bad)
    with pytest.raises(VerificationError):
        verify_state_evidence(bad, anchor)


def test_tampered_state_value_field_is_rejected(chain, anchor):
    ev = _present_state(chain)
    ev["value"]["status"] = "revoked"
    with pytest.raises(VerificationError):
        verify_state_evidence(ev, anchor)


def test_sdk_refuses_a_state_proof_for_another_key(chain, monkeypatch):
    asked, other = f"gov/member/{K('mallory').did}", f"gov/member/{K('alice').did}"
    with signed_client(chain.url, trust=chain.genesis) as c:
        real = c._request
        monkeypatch.setattr(c, "_request", lambda method, path, **kw: real(method, path.replace(asked, other), **kw))
        try:
            sv = c.state(asked)
        except VerificationError:
            return
        assert sv.key == asked and sv.value["status"] == "revoked"


# ---------------------------------------------------------------- checkpoints


def _checkpoint(chain) -> Checkpoint:
    return msgspec.convert(get_json(chain, "/v1/checkpoints/latest"), Checkpoint)


def test_latest_checkpoint_verifies_and_matches_status(chain, anchor):
    cp = _checkpoint(chain)
    verify_checkpoint(cp, anchor)
    st = get_json(chain, "/v1/status")
    assert cp.header.height <= st["height"]
    assert get_json(chain, "/v1/blocks/latest")["header"]["height"] >= cp.header.height
    assert [a.node for a in cp.attestations] == [K("reg-node").did]
    with signed_client(chain.url, trust=chain.genesis) as c:
        assert c.checkpoint(cp.header.height) == cp


def _attested_by_unknown_key(cp: Checkpoint) -> Checkpoint:
    return Checkpoint(cp.header, [attest(cp.header, K("rogue-node"))])


def _attested_by_member_key(cp: Checkpoint) -> Checkpoint:
    return Checkpoint(cp.header, [attest(cp.header, K("reg-admin"))])


def _forged_signature(cp: Checkpoint) -> Checkpoint:
    a = cp.attestations[0]
    return Checkpoint(cp.header, [NodeSignature(a.node, _flip_hex(a.sig, 3))])


def _signature_of_another_header(cp: Checkpoint) -> Checkpoint:
    other = msgspec.structs.replace(cp.header, time=cp.header.time + 1)
    return Checkpoint(cp.header, [attest(other, K("reg-node"))])


def _header_changed_after_signing(cp: Checkpoint) -> Checkpoint:
    return Checkpoint(msgspec.structs.replace(cp.header, state_root="00" * 32), cp.attestations)


def _same_node_twice(cp: Checkpoint) -> Checkpoint:
    return Checkpoint(cp.header, cp.attestations * 2)


def _no_attestations(cp: Checkpoint) -> Checkpoint:
    return Checkpoint(cp.header, [])


def _malformed_node_key(cp: Checkpoint) -> Checkpoint:
    return Checkpoint(cp.header, [NodeSignature("did:key:zNOTAKEY", cp.attestations[0].sig)])


def _other_chain(cp: Checkpoint) -> Checkpoint:
    h = msgspec.structs.replace(cp.header, chain="another-chain")
    return Checkpoint(h, [attest(h, K("reg-node"))])


@pytest.mark.parametrize("forge", [
    _attested_by_unknown_key, _attested_by_member_key, _forged_signature, _signature_of_another_header,
    _header_changed_after_signing, _same_node_twice, _no_attestations, _other_chain,
], ids=lambda f: f.__name__.lstrip("_"))
def test_forged_checkpoint_is_rejected(chain, anchor, forge):
    cp = _checkpoint(chain)
    with pytest.raises(VerificationError):
        verify_checkpoint(forge(cp), anchor)


def test_unknown_node_key_among_valid_ones_is_rejected(chain, anchor):
    cp = _checkpoint(chain)
    with pytest.raises(VerificationError):
        verify_checkpoint(Checkpoint(cp.header, cp.attestations + [attest(cp.header, K("rogue-node"))]), anchor)


def test_state_evidence_with_a_rogue_checkpoint_is_rejected(chain, anchor):
    ev = _present_state(chain)
    header = msgspec.convert(ev["checkpoint"]["header"], Header)
    ev["checkpoint"]["attestations"] = [to_builtins(attest(header, K("rogue-node")))]
    with pytest.raises(VerificationError):
        verify_state_evidence(ev, anchor)


# ---------------------------------------------------------------- waiting for receipts


def test_submit_without_wait_then_get_with_wait_returns_the_receipt(chain, anchor):
    raw = add(chain, "patient")
    r = HTTP.post(chain.url + "/v1/txs", headers=JSON_POST, content=raw)
    assert r.status_code == 202 and r.json()["status"] == "accepted"
    txid = r.json()["id"]
    ev = get_json(chain, f"/v1/txs/{txid}", wait=20)
    assert ev["id"] == txid and ev["receipt"]["ok"]
    verify_tx_evidence(ev, anchor)


def test_get_with_wait_registered_before_submission_returns_once_committed(chain, anchor):
    raw = add(chain, "early-waiter")
    body = msgspec.json.decode(raw)["body"]
    txid = crypto.tagged_hash(crypto.TAG_TX_ID, canonical(body)).hex()
    r = HTTP.get(f"{chain.url}/v1/txs/{txid}")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_tx"
    got: dict[str, Any] = {}

    def wait() -> None:
        with signed(timeout=40) as c:
            got["r"] = c.get(f"{chain.url}/v1/txs/{txid}", params={"wait": 30})

    t = threading.Thread(target=wait)
    t.start()
    try:
        # the waiter is parked on the node before the transaction exists there
        assert HTTP.post(chain.url + "/v1/txs", headers=JSON_POST, content=raw).status_code == 202
    finally:
        t.join(45)
    assert got["r"].status_code == 200, got["r"].text
    verify_tx_evidence(got["r"].json(), anchor)


def test_post_with_wait_answers_with_the_committed_receipt(chain, anchor):
    r = HTTP.post(chain.url + "/v1/txs", headers=JSON_POST, params={"wait": 20}, content=add(chain, "in-a-hurry"))
    assert r.status_code == 200
    verify_tx_evidence(r.json(), anchor)


def test_get_with_wait_for_a_tx_that_never_comes_answers_unknown_tx(chain):
    r = HTTP.get(f"{chain.url}/v1/txs/{'cd' * 32}", params={"wait": 0.3})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_tx"


# ---------------------------------------------------------------- module queries


def test_query_organisation(chain):
    flushed(chain)
    res = get_json(chain, "/v1/q/governance/organisation", id="oem")
    org = res["result"]
    assert org["id"] == "oem" and org["roles"] == ["manufacturer"] and org["status"] == "active"
    members = {m["did"]: m for m in org["members"]}
    assert "admin" in members[K("oem-admin").did]["roles"]
    assert members[K("alice").did]["roles"] == ["manufacturer"]
    assert members[K("mallory").did]["status"] == "revoked"
    assert res["height"] >= 1


def test_query_member(chain):
    flushed(chain)
    m = get_json(chain, "/v1/q/governance/member", did=K("batch-3").did)["result"]
    assert m["org"] == "oem" and m["status"] == "active"


def test_query_proposals(chain):
    flushed(chain)
    res = get_json(chain, "/v1/q/governance/proposals")["result"]
    assert res["total"] == 1
    p = res["items"][0]
    assert p["id"] == chain.proposal and p["status"] == "open" and p["votes"] == {"ins": True}
    assert p["action"] == {"action": "set_parameter", "name": "max_block_txs", "value": 5000}
    assert get_json(chain, "/v1/q/governance/proposals", status="passed")["result"] == {"items": [], "total": 0}
    assert get_json(chain, "/v1/q/governance/proposal", id=chain.proposal)["result"]["note"] == "smaller blocks"


def test_query_organisations_and_consensus(chain):
    flushed(chain)
    assert {o["id"] for o in get_json(chain, "/v1/q/governance/organisations")["result"]} == {"oem", "ins", "reg"}
    cons = get_json(chain, "/v1/q/governance/consensus")["result"]
    assert cons["quorum"] == 1 and cons["nodes"] == [{"did": K("reg-node").did, "org": "reg"}]


@pytest.mark.parametrize("path,params,status,code", [
    ("/v1/q/governance/proposals", {"limit": "many"}, 400, "invalid_query"),
    ("/v1/q/governance/proposals", {"offset": "-1"}, 400, "invalid_query"),
    ("/v1/q/governance/proposal", {"id": "first"}, 400, "invalid_query"),
    ("/v1/q/governance/organisation", {}, 400, "invalid_query"),
    ("/v1/q/governance/organisations", {"id": "oem"}, 400, "invalid_query"),
    ("/v1/q/governance/organisation", {"id": "no-such-org"}, 404, "not_found"),
    ("/v1/q/governance/member", {"did": "did:key:zNobody"}, 404, "not_found"),
    ("/v1/q/governance/organisations", {"min_height": "soon"}, 400, "invalid_query"),
    ("/v1/q/governance/organisations", {"min_height": "-2"}, 400, "invalid_query"),
    ("/v1/q/governance/organisations", {"min_height": "1_0"}, 400, "invalid_query"),
    ("/v1/q/governance/organisations", {"min_height": " 1"}, 400, "invalid_query"),
    ("/v1/q/governance/organisations", {"min_height": str(2**53)}, 400, "invalid_query"),
    ("/v1/q/governance/organisations", {"min_height": str(2**53 - 1)}, 404, "height_not_reached"),
])
def test_bad_query_parameters_are_refused(chain, path, params, status, code):
    r = HTTP.get(chain.url + path, params=params)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code and err["message"] and isinstance(err["detail"], dict)


def test_a_query_with_min_height_reads_the_write_just_committed(chain):
    """Read your own writes: the query waits until the state it reads holds the block (a query
    without it may answer from the state of a block or two before)."""
    receipt = commit(chain, add(chain, "read-my-write"))
    h = receipt["height"]
    res = get_json(chain, "/v1/q/governance/member", did=K("read-my-write").did, min_height=h)
    assert res["height"] >= h and res["result"]["org"] == "oem"
    with signed_client(chain.url, trust=chain.genesis) as c:
        assert c.query("governance", "member", did=K("read-my-write").did, min_height=h)["org"] == "oem"
    assert get_json(chain, "/v1/q/governance/organisations", min_height=-1)["height"] >= 0


def test_sdk_query(chain):
    flushed(chain)
    with signed_client(chain.url, trust=chain.genesis) as c:
        assert c.query("governance", "organisation", id="ins")["members"][0]["did"] == K("ins-admin").did


# ---------------------------------------------------------------- self-description


def test_messages_list_types_roles_and_schemas(chain):
    msgs = {m["type"]: m for m in get_json(chain, "/v1/messages")}
    add_member = msgs["governance.add_member"]
    assert add_member["module"] == "governance" and add_member["roles"] == ["admin"]
    assert add_member["cosigners"] is True and add_member["doc"]
    assert {"governance.revoke_member", "governance.rotate_key", "governance.propose", "governance.vote"} <= set(msgs)
    for m in msgs.values():
        assert isinstance(m["schema"], dict) and m["schema"]
        assert m["type"].startswith(m["module"] + ".")


def test_params_list_values_and_bounds(chain):
    params = {p["name"]: p for p in get_json(chain, "/v1/params")}
    assert params["max_tx_bytes"]["value"] == 65_536
    assert params["max_tx_ttl_ms"]["value"] == 3_600_000
    assert "vote_threshold_pct" in params
    for p in params.values():
        assert p["min"] <= p["value"] <= p["max"] and p["doc"]


def test_queries_list_paths_and_parameters(chain):
    qs = {q["path"]: q for q in get_json(chain, "/v1/queries")}
    assert qs["/v1/q/governance/organisation"]["params"] is not None
    assert qs["/v1/q/governance/organisations"]["params"] is None
    for path in qs:
        assert HTTP.get(chain.url + path).status_code != 405


def test_genesis_is_the_trust_anchor(chain):
    g = get_json(chain, "/v1/genesis")
    assert g.pop("hash") == chain.genesis.hash().hex()
    assert msgspec.convert(g, Genesis) == chain.genesis
    assert get_json(chain, "/v1/blocks/0")["header"]["prev"] == chain.genesis.hash().hex()


def test_openapi_describes_the_routes(chain):
    doc = get_json(chain, "/schema/openapi.json")
    assert doc["openapi"].startswith("3.")
    for path in ("/v1/txs", "/v1/txs/batch", "/v1/status", "/v1/events", "/v1/q/governance/organisation"):
        assert path in doc["paths"], path
    assert "post" in doc["paths"]["/v1/txs"]


def test_full_block_holds_the_transactions_and_receipts(chain, anchor):
    ev = _multi_tx_evidence(chain)
    block = get_json(chain, f"/v1/blocks/{ev['height']}", full="true")
    assert len(block["txs"]) == len(block["receipts"]) == len(block["tx_ids"]) == block["header"]["tx_count"]
    assert block["txs"][ev["index"]] == ev["tx"]
    assert block["receipts"][ev["index"]] == ev["receipt"]
