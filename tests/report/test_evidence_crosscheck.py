"""The browser verifier's checks of transaction and state evidence (what the console's badges rest
on) agree with blokauto.verify's: RFC 9162 inclusion over every leaf of trees of 1 to 40 leaves,
and real ``/v1/txs`` and ``/v1/state`` answers, genuine and altered one field at a time."""

from __future__ import annotations

import copy
import json
from typing import Any, Callable, Iterator

import pytest

from blokauto.core import merkle
from blokauto.core.encoding import to_builtins
from blokauto.report.html import verifier_script
from blokauto.verify import TrustAnchor, VerificationError
from blokauto.verify._evidence import verify_state_evidence, verify_tx_evidence

pytest_plugins = ["helpers.reports"]


@pytest.fixture(scope="module")
def js(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    blank = tmp_path_factory.mktemp("blank-evidence") / "blank.html"
    blank.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>")
    page = browser.new_page()
    try:
        page.goto(blank.as_uri())
        page.add_script_tag(content=verifier_script())
        yield page
    finally:
        page.close()


def leaves(n: int) -> list[bytes]:
    return [f"leaf {i} of {n}".encode() for i in range(n)]


def test_inclusion_roots_agree_with_python_for_every_leaf_of_small_trees(js: Any) -> None:
    cases = []
    for n in range(1, 41):
        data = leaves(n)
        hashes = [merkle.leaf_hash(d) for d in data]
        for i in range(n):
            cases.append([i, n, data[i].decode(), [h.hex() for h in merkle.inclusion_proof(hashes, i)],
                          merkle.root(data).hex()])
    got = js.evaluate("""async (cases) => {
        const V = window.BlokautoVerifier, te = new TextEncoder(), out = [];
        for (const [i, n, leaf, proof] of cases) out.push(await V.rootFromInclusion(i, n, te.encode(leaf), proof));
        return out; }""", cases)
    assert got == [c[4] for c in cases]


#: A bad proof: how it is made, and whether its shape alone is refused (else it only leads to another root).
BAD_PROOFS: dict[str, tuple[Callable[[int, int, list[str]], tuple[int, int, list[str]]], bool]] = {
    "a hash too many": (lambda i, n, p: (i, n, p + ["00" * 32]), True),
    "a hash missing": (lambda i, n, p: (i, n, p[:-1]), True),
    "a hash changed": (lambda i, n, p: (i, n, [("11" * 32)] + p[1:]), False),
    "index beyond the tree": (lambda i, n, p: (n, n, p), True),
    "another index": (lambda i, n, p: ((i + 1) % n, n, p), False),
    "a short hash": (lambda i, n, p: (i, n, ["00" * 31] + p[1:]), True),
}


@pytest.mark.parametrize("what", sorted(BAD_PROOFS))
def test_a_bad_inclusion_proof_fails_in_both_verifiers(js: Any, what: str) -> None:
    n, i = 13, 6
    data = leaves(n)
    proof = [h.hex() for h in merkle.inclusion_proof([merkle.leaf_hash(d) for d in data], i)]
    make, refused_by_shape = BAD_PROOFS[what]
    index, size, bad = make(i, n, proof)
    root = merkle.root(data).hex()
    with pytest.raises((merkle.ProofError, ValueError)):
        merkle.verify_inclusion(index, size, merkle.leaf_hash(data[i]), [bytes.fromhex(h) for h in bad],
                                bytes.fromhex(root))
    js_root = js.evaluate("""async ([i, n, leaf, proof]) => {
        try { return await window.BlokautoVerifier.rootFromInclusion(i, n, new TextEncoder().encode(leaf), proof); }
        catch (e) { return 'refused: ' + e.message; } }""", [index, size, data[i].decode(), bad])
    assert js_root != root
    if refused_by_shape:  # not merely another root: refused as a proof that cannot be one of this tree
        assert js_root.startswith("refused: "), js_root


def evidence_samples(world: Any) -> list[tuple[str, dict[str, Any]]]:
    http = world.node.http
    txs = http.get("/v1/blocks/7").json()["tx_ids"] + http.get("/v1/blocks/40").json()["tx_ids"]
    out = [("tx", http.get(f"/v1/txs/{t}").json()) for t in txs]
    for key in [f"veh/v/{world.old['vin']}", f"parts/bom/{world.old['vin']}", "gov/consensus", "veh/v/WZZ3E5C20NM999999"]:
        out.append(("state", http.get(f"/v1/state/{key}").json()))
    return out


ALTER: dict[str, Callable[[str, dict[str, Any]], None]] = {
    "genuine": lambda kind, ev: None,
    "header state root": lambda kind, ev: ev["checkpoint"]["header"].__setitem__("state_root", "ab" * 32),
    "attestation signature": lambda kind, ev: ev["checkpoint"]["attestations"][0].__setitem__("sig", "00" * 64),
    "no attestation": lambda kind, ev: ev["checkpoint"].__setitem__("attestations", []),
    "raw bytes": lambda kind, ev: ev.__setitem__(*(("tx_raw", ev["tx_raw"].replace('"nonce":"', '"nonce":"0'))
                                                   if kind == "tx" else ("raw", (ev["raw"] or "") + " "))),
    "decoded field": lambda kind, ev: ev.__setitem__(*(("receipt", {**ev["receipt"], "ok": not ev["receipt"]["ok"]})
                                                       if kind == "tx" else ("value", {"forged": 1}))),
    "height": lambda kind, ev: ev.__setitem__("height", ev["height"] + 1),
    # what only one check catches: bytes altered with their decoded copy kept in step, a claimed id
    "proven bytes with their copy": lambda kind, ev: (
        ev.update(receipt_raw=ev["receipt_raw"].replace('"ok":', '"ok":!').replace('"ok":!true', '"ok":false')
                  .replace('"ok":!false', '"ok":true'))
        or ev.update(receipt=json.loads(ev["receipt_raw"]))) if kind == "tx" else (
        ev.update(raw=json.dumps({"forged": 1}, separators=(",", ":"))) or ev.update(value={"forged": 1})),
    "claimed id or key": lambda kind, ev: ev.__setitem__(*(("id", "ab" * 32) if kind == "tx" else ("key", "veh/v/X"))),
}


@pytest.mark.parametrize("alteration", sorted(ALTER))
def test_tx_and_state_evidence_get_the_same_verdict_in_python_and_javascript(js: Any, world: Any,
                                                                             alteration: str) -> None:
    anchor = TrustAnchor.from_genesis(world.genesis)
    for kind, genuine in evidence_samples(world):
        ev = copy.deepcopy(genuine)
        ALTER[alteration](kind, ev)
        try:
            (verify_tx_evidence if kind == "tx" else verify_state_evidence)(json.loads(json.dumps(ev)), anchor)
            py = True
        except (VerificationError, KeyError, ValueError, TypeError):
            py = False
        js_ok = js.evaluate("""async ([kind, ev, genesis]) => {
            const V = window.BlokautoVerifier;
            const anchors = await V.followConsensus(await V.anchorFromGenesis(genesis), []);
            try { await (kind === 'tx' ? V.verifyTxEvidence : V.verifyStateEvidence)(ev, anchors); return true; }
            catch (e) { if (e instanceof V.VerificationError) return false; return 'crashed: ' + e.message; } }""",
                            [kind, ev, to_builtins(world.genesis)])
        assert js_ok == py, (alteration, kind, ev.get("key") or ev.get("id"), py, js_ok)
        assert py is (alteration == "genuine"), (alteration, kind)


def test_a_leaf_just_past_the_end_of_a_one_leaf_tree_is_refused(js: Any) -> None:
    """Index 1 of a tree of 1 with an empty proof would hash to the tree's root if the bound were off by one."""
    got = js.evaluate("""async () => {
        try { return await window.BlokautoVerifier.rootFromInclusion(1, 1, new TextEncoder().encode('only'), []); }
        catch (e) { return 'refused: ' + e.message; } }""")
    assert got.startswith("refused: "), got
    with pytest.raises(merkle.ProofError):
        merkle.verify_inclusion(1, 1, merkle.leaf_hash(b"only"), [], merkle.root([b"only"]))
