"""The console's explorer in Chromium: the newest blocks, a block's transactions with their receipts,
one transaction, each with a badge the page settles itself against the trust anchor.

A node that rewrites a header, a receipt or an attestation in flight is caught by the badge; a
reader who may not read a receipt sees "not yours to read"; a trust anchor that changes under a
pinned browser stops every check; the page runs under its own Content-Security-Policy and works
with the keyboard alone.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from blokauto.core.block import Header, attest
from blokauto.core.encoding import to_builtins

from helpers.console import KEY_LOADED, TEXT_OUTSIDE_SCREEN, badges, go, open_console, settle, wait_until, zoomed

pytest_plugins = ["helpers.reports", "helpers.console"]


def head(world: Any) -> int:
    return world.node.http.get("/v1/status").json()["height"]


def test_the_explorer_lists_the_newest_blocks_each_verified(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    rows = console.eval_on_selector_all("#blocks tbody tr", "(rs) => rs.map((r) => r.cells[0].textContent)")
    top = head(world)
    assert [int(h) for h in rows] == list(range(top, top - 20, -1))
    states = [b["state"] for b in badges(console)]
    assert states == ["verified"] * 20, badges(console)
    assert console.errors == []


def test_older_blocks_page_down_to_genesis(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/explorer/3", data=world.data, name="kba-admin")
    rows = console.eval_on_selector_all("#blocks tbody tr", "(rs) => rs.map((r) => r.cells[0].textContent)")
    assert rows == ["2", "1", "0"]
    assert {b["state"] for b in badges(console)} == {"verified"}


def test_a_block_shows_its_transactions_with_proven_receipts(console: Any, world: Any) -> None:
    block = world.node.http.get("/v1/blocks/5").json()
    open_console(console, world.node.url, "#/block/5", data=world.data, name="kba-admin")
    ids = console.eval_on_selector_all("#txs tbody tr a", "(as) => as.map((a) => a.getAttribute('href'))")
    assert ids == [f"#/tx/{i}" for i in block["tx_ids"]]
    assert {b["state"] for b in badges(console)} == {"verified"}  # the header and each receipt (a regulator reads all)


def failed_tx(world: Any) -> str:
    """A failed transaction of the demo (the refused second settlement of the energy interval)."""
    for height in range(head(world), 0, -1):
        for txid in world.node.http.get(f"/v1/blocks/{height}").json()["tx_ids"]:
            ev = world.node.http.get(f"/v1/txs/{txid}").json()
            if not ev["receipt"]["ok"]:
                return txid
    raise AssertionError("the demo records refused transactions; none found")


def test_a_failed_transaction_shows_its_code_and_sentence(console: Any, world: Any) -> None:
    txid = failed_tx(world)
    ev = world.node.http.get(f"/v1/txs/{txid}").json()
    open_console(console, world.node.url, f"#/tx/{txid}", data=world.data, name="kba-admin")
    assert badges(console)[0]["state"] == "verified"
    text = console.inner_text("#view")
    assert ev["receipt"]["code"] in text
    assert console.inner_text("#failure") == ev["message"] and ev["message"]


def test_a_receipt_the_reader_may_not_read_says_so(console: Any, world: Any, tmp_path: Any) -> None:
    from blokauto.core.crypto import KeyPair
    from helpers.console import key_file

    stranger = key_file(tmp_path, KeyPair.from_label("console-stranger"), "stranger")
    # a member of an organisation that signed nothing in block 1 (the first vote) reads blocks, not its receipts
    open_console(console, world.node.url, "#/block/1", data=world.data, name="stopwell-brakes-admin")
    assert badges(console)[0]["state"] == "verified"  # the header: any known key
    assert "not yours to read" in console.inner_text("#txs")
    go(console, "#/explorer")
    open_console(console, world.node.url, "#/explorer", key=stranger)  # a key nobody knows
    assert console.locator("#view [data-code]").get_attribute("data-code") == "unknown_caller"


TAMPER = {
    "state root": lambda b: b["header"].__setitem__("state_root", "ab" * 32),
    "time": lambda b: b["header"].__setitem__("time", b["header"]["time"] + 1),
    "signature": lambda b: b["attestations"][0].__setitem__("sig", "00" * 64),
    "attestation dropped": lambda b: b["attestations"].clear(),
}


@pytest.mark.parametrize("what", sorted(TAMPER))
def test_a_block_rewritten_in_flight_fails_its_badge(console: Any, world: Any, what: str) -> None:
    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:  # before the key is loaded: the refusal, as it is
            return route.fulfill(response=answer)
        page = answer.json()
        TAMPER[what](page["blocks"][1])
        route.fulfill(response=answer, body=json.dumps(page))

    console.route("**/v1/blocks?*", rewrite)
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    states = [b["state"] for b in badges(console)]
    assert states[1] == "failed" and states[0] == states[2] == "verified", badges(console)


RECEIPT_TAMPER = {
    "receipt says ok": lambda ev: ev.__setitem__("receipt_raw", ev["receipt_raw"].replace('"ok":false', '"ok":true')),
    "convenience field disagrees": lambda ev: ev["receipt"].__setitem__("code", ""),
    "a padded proof": lambda ev: ev["proof"].__setitem__("tx", ev["proof"]["tx"] + ["00" * 32]),
    "message from another block": lambda ev: ev.__setitem__("index", ev["index"] + 1),
}


@pytest.mark.parametrize("what", sorted(RECEIPT_TAMPER))
def test_a_receipt_rewritten_in_flight_fails_its_badge(console: Any, world: Any, what: str) -> None:
    txid = failed_tx(world)

    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        ev = answer.json()
        RECEIPT_TAMPER[what](ev)
        route.fulfill(response=answer, body=json.dumps(ev))

    console.route(f"**/v1/txs/{txid}*", rewrite)
    open_console(console, world.node.url, f"#/tx/{txid}", data=world.data, name="kba-admin")
    assert badges(console)[0]["state"] == "failed", badges(console)
    assert console.query_selector("#failure") is None  # nothing of it is shown as verified


def test_a_forged_block_signed_by_the_real_node_key_still_needs_the_header_it_signed(console: Any, world: Any) -> None:
    """A header re-signed by the node key verifies as a checkpoint: the explorer shows what the node
    key signed, and the state root it shows is that header's, not one pasted beside it."""
    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        page = answer.json()
        b = page["blocks"][0]
        forged = msgspec.convert({**b["header"], "state_root": "cd" * 32}, Header)
        b["header"] = to_builtins(forged)
        b["attestations"] = [to_builtins(attest(forged, world.node_key))]
        route.fulfill(response=answer, body=json.dumps(page))

    console.route("**/v1/blocks?*", rewrite)
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    assert badges(console)[0]["state"] == "verified"  # an equivocating node key: the network page finds the fork
    assert console.eval_on_selector("#blocks tbody tr", "(r) => r.cells[3].querySelector('code').title") == "cd" * 32


def test_a_node_serving_another_genesis_than_the_pinned_one_is_not_trusted(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    console.evaluate("(c) => localStorage.setItem('blokauto.anchor.' + c, 'ff'.repeat(32))", world.genesis.chain)
    console.reload()
    wait_until(console, "document.getElementById('anchor').className === 'bad-text'")
    assert "pinned" in console.inner_text("#anchor")
    console.set_input_files("#keyfile", str(world.data / "keys" / "kba-admin.json"))
    wait_until(console, KEY_LOADED)
    settle(console)
    assert {b["reason"].split(":")[0] for b in badges(console)} == {"no trust anchor"}, badges(console)
    console.set_input_files("#anchorfile", str(world.data / "genesis.json"))  # the user's own copy re-pins it
    wait_until(console, "document.getElementById('anchor').className === 'ok-text'")
    settle(console)
    assert {b["state"] for b in badges(console)} == {"verified"}


def test_an_anchor_file_of_another_consortium_is_refused(console: Any, world: Any, tmp_path: Any) -> None:
    other = tmp_path / "genesis.json"
    other.write_bytes(msgspec.json.encode(world.other_genesis))
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    console.set_input_files("#anchorfile", str(other))
    wait_until(console, "!document.getElementById('problem').hidden")
    assert "not a node of your consortium" in console.inner_text("#problem")


def test_the_explorer_finds_a_block_a_transaction_and_a_vin_with_the_keyboard_alone(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    console.focus("#find")
    console.keyboard.type("7")
    console.keyboard.press("Enter")
    settle(console)
    assert console.evaluate("location.hash") == "#/block/7"
    txid = world.node.http.get("/v1/blocks/7").json()["tx_ids"][0]
    go(console, "#/explorer")
    console.focus("#find")
    console.keyboard.type(txid.upper())
    console.keyboard.press("Enter")
    settle(console)
    assert console.evaluate("location.hash") == f"#/tx/{txid}"
    go(console, "#/explorer")
    console.focus("#find")
    console.keyboard.type("not a thing")
    console.keyboard.press("Enter")
    assert "is not a block height" in console.inner_text("#problem")


def test_every_control_is_reachable_with_tab(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/explorer", data=world.data, name="kba-admin")
    console.evaluate("document.activeElement.blur()")
    seen = []
    for _ in range(60):
        console.keyboard.press("Tab")
        seen.append(console.evaluate("document.activeElement.id || document.activeElement.getAttribute('href') || "
                                     "document.activeElement.tagName"))
    for control in ["#/explorer", "#/vehicle", "#/recalls", "#/parts", "#/consent", "#/organisation", "#/network",
                    "keyfile", "anchorfile", "find"]:
        assert control in seen, (control, seen)


def test_the_console_runs_under_its_content_security_policy(console: Any, world: Any) -> None:
    violations: list[str] = []
    console.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    response = console.goto(f"{world.node.url}/console")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    open_console(console, world.node.url, "#/vehicle/" + world.old["vin"], data=world.data, name="kba-admin")
    go(console, "#/network")
    assert violations == [] and console.errors == []


def test_at_200_percent_zoom_no_text_leaves_the_screen(browser: Any, world: Any) -> None:
    ctx = zoomed(browser)
    page = ctx.new_page()
    try:
        for hash in ["#/explorer", "#/block/5", "#/network", f"#/vehicle/{world.old['vin']}"]:
            open_console(page, world.node.url, hash, data=world.data, name="kba-admin")
            wide = page.evaluate(TEXT_OUTSIDE_SCREEN)
            assert wide == [], (hash, wide)
    finally:
        ctx.close()
