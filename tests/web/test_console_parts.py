"""The console's parts pages in Chromium: the search form, a part's custody and assembly graph (Cytoscape)
down to its batch's material lots and their attestations, the same facts as a table, a batch and a lot.

The facts the page draws are compared with the node's own answers (the demo's battery pack VP-83:VP83-0001,
its batch VP-83:P1 and cobalt lot CO-KAM-0042, and an assembly of cells this module makes itself). The
part's badge proves its record and that the history drawn hashes to the head the record commits to: a node
that rewrites the record, edits or drops a history entry, or forges a checkpoint is caught, and so is a
vehicle's bill of parts that does not list the part. A reader who took no part in a part's story sees the
refusal with its code; the pages work with the keyboard alone and at 200 % zoom.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote, unquote

import pytest

from blokauto.keystore import KeyStore

from conftest import signed
from helpers.console import TEXT_OUTSIDE_SCREEN, badges, go, open_console, settle, wait_until, zoomed

pytest_plugins = ["helpers.reports", "helpers.console"]

PACK, BATCH, LOT = "VP-83:VP83-0001", "VP-83:P1", "CO-KAM-0042"


def http_as(world: Any, key: str | None) -> Any:
    return world.node.http if key is None else signed(world.node.url, KeyStore(Path(world.data) / "keys").load(key))


def q(world: Any, name: str, key: str | None = None, **params: Any) -> Any:
    """``parts <name>`` as the node answers it: to its own key (reads everything) or to ``key``."""
    http = http_as(world, key)
    r = http.get(f"/v1/q/parts/{name}", params=params)
    if key is not None:
        http.close()
    return r.json()["result"] if r.status_code == 200 else (r.status_code, r.json()["error"]["code"])


def facts(page: Any) -> list[tuple[str, str, str, str]]:
    """The graph's facts as the page's table lists them: (from, relation, to, block)."""
    return [tuple(r) for r in page.eval_on_selector_all(
        "#facts tbody tr", "(rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.replace(/\\s+/g, ' ').trim()))")]


def badge_of(page: Any, what: str) -> dict[str, str]:
    return page.eval_on_selector(f"#view .badge[data-what='{what}']",
                                 "(b) => ({state: b.dataset.state, text: b.textContent})")


def lot_source(m: dict[str, Any]) -> str:
    """Where the graph says a batch's lot came from: its mine, recovered in a country, or made from other lots."""
    return f"{m['mine']}, {m['country']}" if m["mine"] else f"recovered, {m['country']}" if m["country"] else "made from other lots"


def utc_day(ms: int) -> str:
    """The day (UTC) the page shows an attestation valid until."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def holder_label(h: str) -> str:
    if h.startswith("vin:"):
        return f"vehicle {h[4:]}"
    return f"assembly {h[5:]}" if h.startswith("part:") else h.removeprefix("org:")


def custodians(history: list[dict[str, Any]]) -> list[str]:
    """The part's custodians in order, from its history as the node lists it."""
    out = []
    for e in history:
        d = e["data"]
        nxt = {"minted": d.get("custodian"), "received": d.get("by"), "installed": f"vin:{d.get('vin')}",
               "assembled": f"part:{d.get('into')}", "removed": f"org:{e['org']}"}.get(e["type"])
        if nxt:
            out.append(nxt)
    return out


# ---------------------------------------------------------------- what the pages show


def test_a_part_page_draws_its_custody_batch_lots_and_attestations(console: Any, world: Any) -> None:
    t = q(world, "trace", id=PACK)
    chain = custodians(t["history"])
    assert chain[0] == "org:voltcell" and chain[-1].startswith("vin:")
    open_console(console, world.node.url, f"#/part/{quote(PACK)}", data=world.data, name="kba-admin")
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)
    assert f"its {len(t['history'])} history entries" in badge_of(console, f"part {PACK}")["text"]
    rows = facts(console)
    custody = [r for r in rows if "(custodian " in r[1]]
    assert [r[2] for r in custody] == [f"{i + 1}. {holder_label(h)}" for i, h in enumerate(chain)]
    assert [r[3] for r in custody] == [f"block {e['height']}" for e in t["history"]
                                       if e["type"] in ("minted", "received", "assembled", "installed", "removed")]
    assert (f"{PACK} {t['type']['name']}", "made in", f"batch {BATCH}", "—") in rows
    for m in t["materials"]:
        assert any(r[1] == f"made with {m['mass_g'] // 1000} kg of" and r[2].startswith(f"lot {m['lot']}") for r in rows)
        for a in m["attestations"]:
            assert any(r[0] == f"auditor {a['auditor']}" and r[1].startswith(f"attested {a['result']}")
                       and a["standard"] in r[1] and r[3] == f"block {a['height']}" for r in rows), (a, rows)
    nodes = {r[0] for r in rows} | {r[2] for r in rows}
    assert console.get_attribute("#graph", "data-nodes") == str(len(nodes))
    assert console.locator("#graph canvas").count() >= 1  # drawn by Cytoscape
    assert "the same facts are in the table" in console.get_attribute("#graph", "aria-label").lower()
    history = console.eval_on_selector_all("#history tbody tr", "(rs) => rs.map((r) => r.cells[1].textContent)")
    assert history == [e["type"].replace("_", " ") for e in t["history"]]
    assert console.errors == []


def test_a_batch_and_a_lot_show_their_materials_attestations_and_uses(console: Any, world: Any) -> None:
    b, lot = q(world, "batch", id=BATCH), q(world, "lot", id=LOT)
    open_console(console, world.node.url, f"#/batch/{quote(BATCH)}", data=world.data, name="voltcell-admin")
    text = console.inner_text("#batch")
    assert f"Quantity\t{b['quantity']}" in text or f"Quantity\n{b['quantity']}" in text
    assert [r[2] for r in facts(console) if r[1].startswith("made with")] == [
        f"lot {m['lot']} {m['material']} · {lot_source(m)}" for m in b["materials"]]
    attested = console.eval_on_selector_all("#attestations tbody tr",
                                            "(rs) => rs.map((r) => [...r.cells].map((c) => c.textContent))")
    assert [(r[0], r[1], r[3]) for r in attested] == [
        (m["lot"], a["auditor"], a["result"].replace("_", " ").replace("non conformant", "not conformant"))
        for m in b["materials"] for a in m["attestations"]]
    assert all(r[6] == f"valid until {utc_day(a['valid_until'])}" for m in b["materials"] for a in m["attestations"]
               for r in attested if r[4] == a["report"])
    go(console, f"#/lot/{quote(LOT)}")
    uses = [r[2] for r in facts(console) if r[1].endswith("used by")]
    assert uses == [f"batch {u['batch']}" for u in lot["used_by"]]
    assert (f"{lot['mine']} ({lot['country']})" if lot["process"] == "mined"
            else f"transformation: {lot['process'].removeprefix('transform:')}") in console.inner_text("#lot")
    assert console.locator("#graph canvas").count() >= 1


def send_all(world: Any, steps: list[tuple[Any, str]]) -> int:
    from blokauto.client import Client

    keys = KeyStore(Path(world.data) / "keys")
    height = 0
    with Client(world.node.url, trust=Path(world.data) / "genesis.json") as c:
        for msg, who in steps:
            info = c.send(msg, keys.load(who))
            assert info.ok, (type(msg).__name__, info.error)
            height = info.height
    return height


@pytest.fixture(scope="module")
def assembly(world: Any) -> dict[str, Any]:
    """A pack of two cells whose batch used a lithium lot an auditor found not conformant (this module's own)."""
    from blokauto.modules.parts import messages as parts

    volt = "voltcell-admin"
    send_all(world, [
        (parts.RegisterLot(lot="CT-LI-1", material="lithium", mass_g=50_000, mine="Greenbushes", country="AU"), volt),
        (parts.AttestLot(lot="CT-LI-1", standard="IRMA", result="non_conformant", report="CT-2025-7",
                         valid_until=int(time.time() * 1000) + 365 * 86_400_000),
         "fairmine-audit-admin"),
        (parts.RegisterPartType(part_number="CT-PACK", name="test pack", category="battery", serialized=True,
                                assembly=True), volt),
        (parts.RegisterPartType(part_number="CT-CELL", name="test cell", category="battery", serialized=True), volt),
        (parts.MintBatch(part_number="CT-CELL", batch="C1", quantity=2, produced="2025-02-03", plant="Pecs",
                         materials=[parts.MaterialUse(lot="CT-LI-1", mass_g=1_500)]), volt),
        (parts.MintParts(part_number="CT-CELL", serials=["C-1", "C-2"], produced="2025-02-03", plant="Pecs", batch="C1"),
         volt),
        (parts.MintParts(part_number="CT-PACK", serials=["K1"], produced="2025-02-04", plant="Pecs"), volt),
        (parts.Assemble(assembly="CT-PACK:K1", components=["CT-CELL:C-1", "CT-CELL:C-2"]), volt),
    ])
    return {"pack": "CT-PACK:K1", "cells": ["CT-CELL:C-1", "CT-CELL:C-2"]}


def test_an_assembly_shows_its_components_and_a_cell_the_assembly_it_went_into(console: Any, world: Any,
                                                                              assembly: dict[str, Any]) -> None:
    pack = q(world, "part", id=assembly["pack"])
    assert pack["components"] == assembly["cells"]
    open_console(console, world.node.url, f"#/part/{quote(assembly['pack'])}", data=world.data, name="kba-admin")
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)
    assert sorted(r[0] for r in facts(console) if r[1] == "component of") == assembly["cells"]
    go(console, f"#/part/{quote(assembly['cells'][0])}")
    assert badge_of(console, f"part {assembly['cells'][0]}")["state"] == "verified"
    rows = facts(console)
    assert any(r[1].startswith("assembled into") and r[2] == f"2. assembly {assembly['pack']}" for r in rows), rows
    bad = console.eval_on_selector_all("#facts tbody td .bad-text", "(es) => es.map((e) => e.textContent)")
    until = q(world, "lot", id="CT-LI-1")["attestations"][0]["valid_until"]
    assert bad == [f"attested NOT conformant (IRMA, report CT-2025-7; valid until {utc_day(until)})"]
    assert console.inner_text("#attestations").count("not conformant") == 1


# ---------------------------------------------------------------- who reads what


@pytest.mark.parametrize("hash, query, params", [
    (f"#/part/{quote(PACK)}", "trace", {"id": PACK}),
    (f"#/batch/{quote(BATCH)}", "batch", {"id": BATCH}),
    (f"#/lot/{quote(LOT)}", "lot", {"id": LOT}),
])
def test_a_workshop_that_took_no_part_sees_the_refusal_with_its_code(console: Any, world: Any, hash: str, query: str,
                                                                     params: dict[str, str]) -> None:
    status, code = q(world, query, key="meister-werkstatt-admin", **params)
    assert (status, code) == (403, "not_a_party")
    open_console(console, world.node.url, hash, data=world.data, name="meister-werkstatt-admin")
    refusal = console.locator("#view [data-code]")
    assert refusal.get_attribute("data-code") == code and "Not yours to read" in refusal.inner_text()
    assert console.locator("#graph").count() == 0 and console.locator("#facts").count() == 0


def test_a_supplier_reads_its_parts_story_and_the_badge_says_whether_it_could_prove_it(console: Any, world: Any) -> None:
    with http_as(world, "voltcell-admin") as http:
        proof = http.get(f"/v1/state/parts/p/{PACK}")
    open_console(console, world.node.url, f"#/part/{quote(PACK)}", data=world.data, name="voltcell-admin")
    assert len(facts(console)) >= 5  # the trace is the supplier's to read
    state = badge_of(console, f"part {PACK}")
    if proof.status_code == 200:
        assert state["state"] == "verified", state
    else:  # the node does not serve this reader the part's raw record: the page says it cannot check, not "verified"
        assert state["state"] == "unreadable" and proof.json()["error"]["code"] in state["text"], state
        assert "Not verified" in console.inner_text("#part")


# ---------------------------------------------------------------- answers rewritten in flight


def rewrite_json(page: Any, matches: Callable[[str], bool], change: Callable[[Any], None]) -> list[str]:
    seen: list[str] = []

    def handle(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        body = answer.json()
        change(body)
        seen.append(route.request.url)
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(lambda url: matches(unquote(url)), handle)
    return seen


def forged_value(ev: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    v = json.loads(ev["raw"])
    change(v)
    ev["raw"] = json.dumps(v, separators=(",", ":"), sort_keys=True)
    ev["value"] = v


def edit_entry(body: dict[str, Any]) -> None:
    entry = next(e for e in body["result"]["history"] if e["type"] == "received")
    entry["data"]["by"] = "org:TAMPERED-holder"


PART_TAMPER: dict[str, tuple[str, Callable[[Any], None]]] = {
    "the record's custodian": (f"/v1/state/parts/p/{PACK}",
                               lambda ev: forged_value(ev, lambda v: v.__setitem__("custodian", "org:TAMPERED-holder"))),
    "the record's history head": (f"/v1/state/parts/p/{PACK}",
                                  lambda ev: forged_value(ev, lambda v: v["history"].__setitem__("head", "ab" * 32))),
    "the checkpoint's signature": (f"/v1/state/parts/p/{PACK}",
                                   lambda ev: ev["checkpoint"]["attestations"][0].__setitem__("sig", "00" * 64)),
    "a history entry edited": ("/v1/q/parts/trace?", edit_entry),
    "a history entry dropped": ("/v1/q/parts/trace?", lambda body: body["result"]["history"].pop(1)),
    "the trace's record": ("/v1/q/parts/trace?",
                           lambda body: body["result"]["part"].__setitem__("custodian", "org:TAMPERED-holder")),
}


@pytest.mark.parametrize("what", sorted(PART_TAMPER))
def test_a_part_rewritten_in_flight_fails_its_badge(console: Any, world: Any, what: str) -> None:
    path, change = PART_TAMPER[what]
    seen = rewrite_json(console, lambda u: path in u and "offset=" not in u, change)  # the first page of a trace
    open_console(console, world.node.url, f"#/part/{quote(PACK)}", data=world.data, name="kba-admin")
    assert seen
    state = badge_of(console, f"part {PACK}")
    assert state["state"] == "failed", state
    assert "Not verified" in console.inner_text("#part")  # what is drawn is the node's answer, and says so


@pytest.mark.parametrize("how", ["its bill of parts rewritten", "the part placed in another vehicle"])
def test_a_vehicle_whose_proven_bill_of_parts_lacks_the_part_fails_the_installed_in_badge(console: Any, world: Any,
                                                                                           how: str) -> None:
    vin = q(world, "part", id=PACK)["location"].removeprefix("vin:")
    other = q(world, "part", id="VP-83:VP83-0002")["location"].removeprefix("vin:")  # another car, with its own pack
    others_bom = world.node.http.get(f"/v1/state/parts/bom/{other}").json()["value"]["items"]
    assert other != vin and PACK not in [i["ref"] for i in others_bom]
    if how == "its bill of parts rewritten":
        rewrite_json(console, lambda u: u.endswith(f"/v1/state/parts/bom/{vin}"), lambda ev: forged_value(
            ev, lambda v: v.__setitem__("items", [i for i in v["items"] if i["ref"] != PACK])))
    else:  # the node says the part sits in another car: that car's genuine, proven bill of parts does not list it
        def move(body: Any) -> None:
            body["result"]["part"].update(location=f"vin:{other}", custodian=f"vin:{other}")
        rewrite_json(console, lambda u: "/v1/q/parts/trace?" in u, move)
        vin = other
    open_console(console, world.node.url, f"#/part/{quote(PACK)}", data=world.data, name="kba-admin")
    assert badge_of(console, f"{PACK} in {vin}")["state"] == "failed"
    assert badge_of(console, f"part {PACK}")["state"] == ("verified" if how == "its bill of parts rewritten" else "failed")


# ---------------------------------------------------------------- keyboard and zoom


def focused(page: Any) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.getAttribute('href') || "
                         "document.activeElement.tagName")


def tab_to(page: Any, target: str, most: int = 80) -> None:
    for _ in range(most):
        page.keyboard.press("Tab")
        if focused(page) == target:
            return
    raise AssertionError(f"Tab never reached {target}")


def test_the_parts_pages_work_with_the_keyboard_alone(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/parts", data=world.data, name="kba-admin")
    console.focus("#find-part")
    console.keyboard.type(PACK)
    console.keyboard.press("Enter")
    settle(console)
    assert unquote(console.evaluate("location.hash")) == f"#/part/{PACK}"
    tab_to(console, f"#/batch/{quote(BATCH, safe='')}")  # the batch, in the graph's table
    console.keyboard.press("Enter")
    wait_until(console, "document.getElementById('view').dataset.page === 'batch'")
    settle(console)
    assert unquote(console.evaluate("location.hash")) == f"#/batch/{BATCH}"
    tab_to(console, f"#/lot/{quote(LOT, safe='')}")
    console.keyboard.press("Enter")
    wait_until(console, "document.getElementById('view').dataset.page === 'lot'")  # the link's page, not the one left
    settle(console)
    assert console.inner_text("h1").startswith(f"Material lot {LOT}")  # and its badge
    go(console, "#/parts")
    console.focus("#find-part")
    console.keyboard.press("Tab")
    assert focused(console) == "find-batch"
    console.keyboard.type(BATCH)
    console.keyboard.press("Enter")
    settle(console)
    assert unquote(console.evaluate("location.hash")) == f"#/batch/{BATCH}"
    go(console, "#/parts")
    console.focus("#find-lot")
    console.keyboard.press("Enter")
    assert "Type a part id" in console.inner_text("#problem")


def test_at_200_percent_zoom_no_parts_text_leaves_the_screen(browser: Any, world: Any) -> None:
    ctx = zoomed(browser)
    page = ctx.new_page()
    try:
        for hash in ["#/parts", f"#/part/{quote(PACK)}", f"#/batch/{quote(BATCH)}", f"#/lot/{quote(LOT)}"]:
            open_console(page, world.node.url, hash, data=world.data, name="kba-admin")
            wide = page.evaluate(TEXT_OUTSIDE_SCREEN)
            assert wide == [], (hash, wide)
            graph = page.evaluate("() => [...document.querySelectorAll('#graph, #graph canvas')]"
                                  ".every((g) => g.getBoundingClientRect().right <= document.documentElement.clientWidth)")
            assert graph, hash  # the graph itself fits: Cytoscape draws to its box's width
    finally:
        ctx.close()
