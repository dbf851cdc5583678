"""The console's sourcing and logistics views in Chromium: a part's, batch's and lot's Route (handoffs, stays,
legs, where it is now; uPlot chart and table) checked against the item's proven record and history; its Origins
(shares per material, recycled share, the origin lots' attestations; a chart per material), recomputed in the page
from the proven state values the answer lists, each key a reader may not read said so; a battery pack's passport
proven as a state value (an altered answer is not verified); the Supply chain page (slowest lanes and legs, stock
in transit by age).

One node process (the parts consortium of ``helpers.parts``, stopped by its PID) and one page serve the whole
module: a supply chain sent through the SDK as real signed transactions. Cobalt from two mines is refined by sup2
at Kokkola and shipped to sup at Pécs with lithium; a recycler recovers cobalt from a pack harvested from a
deregistered car; sup makes a batch of cells from both, packs of two cells each, issues the passports of two packs
and ships them (places and declared times); one pack is still on the way. Every figure the page shows is compared
with the node's own answer, formatted the page's way (``pct``, ``dur``, ``utc`` below).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blokauto.client import Client
from blokauto.modules.parts import messages as pm
from blokauto.modules.vehicles.messages import AssignWmi, Deregister

from conftest import NodeProcess, now_ms, signed, write_chain
from helpers.console import TEXT_OUTSIDE_SCREEN, badges, go, key_file, open_console, settle, wait_until, zoomed
from helpers.parts import AUDIT, OEM, REG, SCRAP, SUP, SUP2, V1, WMI, admin, parts_genesis, register_msg

pytest_plugins = ["helpers.reports", "helpers.console"]

PACK, OTHER_PACK, ON_THE_WAY, BATCH, REFINED, RECYCLED = "PACK:K1", "PACK:K3", "PACK:K2", "CELL:C1", "CO-REF-1", "REC-CO-1"
YEAR_MS = 365 * 86_400_000
READERS = ("reg", "oem", "sup")


# ---------------------------------------------------------------- the page's formats, in Python


def pct(ppm: int) -> str:
    """Parts per million as the page shows them: 555556 -> "55.5556 %"."""
    whole, frac = divmod(ppm, 10_000)
    return f"{whole:,}.{str(frac).rjust(4, '0').rstrip('0')} %" if frac else f"{whole:,} %"


def dur(ms: int) -> str:
    if ms < 1000:
        return f"{ms} ms"
    s = ms // 1000
    if s < 60:
        return f"{s}.{ms % 1000 // 100} s"
    m = s // 60
    if m < 60:
        return f"{m} min {s % 60} s"
    h = m // 60
    return f"{h} h {m % 60} min" if h < 24 else f"{h // 24} d {h % 24} h"


def utc(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)).strftime("%Y-%m-%d %H:%M:%S UTC")


def who(holder: str) -> str:
    return holder.removeprefix("org:")


def place(loc: str) -> str:
    return "—" if not loc else loc[4:].replace(",", ", ") if loc.startswith("geo:") else loc


# ---------------------------------------------------------------- the node and the page


class SupplyChain:
    def __init__(self, node: NodeProcess, keys: Path) -> None:
        self.node, self.keys = node, keys

    def key(self, org: str) -> Path:
        return self.keys / f"{org}-admin.json"

    def q(self, name: str, reader: str = "reg", **params: Any) -> Any:
        """``parts <name>`` as the node answers it to ``reader``'s key: the result, or (status, code)."""
        with signed(self.node.url, admin(reader)) as http:
            r = http.get(f"/v1/q/parts/{name}", params=params)
        return r.json()["result"] if r.status_code == 200 else (r.status_code, r.json()["error"]["code"])

    def state_status(self, key: str, reader: str) -> int:
        with signed(self.node.url, admin(reader)) as http:
            return http.get(f"/v1/state/{key}").status_code

    def state(self, key: str) -> dict[str, Any]:
        with signed(self.node.url, admin("reg")) as http:
            return http.get(f"/v1/state/{key}").json()


def build(c: Client) -> None:
    """The supply chain, as real signed transactions (each must pass)."""
    def send(msg: Any, sender: Any, *cosigners: Any) -> Any:
        info = c.send(msg, sender, *cosigners)
        assert info.ok, (type(msg).__name__, info.error)
        return info

    until = now_ms() + YEAR_MS
    # upstream: sup2 mines, audits by AUDIT, refines at Kokkola, ships to sup at Pécs
    send(pm.RegisterLot(lot="ORE-KAM-1", material="cobalt", mass_g=1_000_000, mine="Kamoto", country="CD", location="CDKWZ"), SUP2)
    send(pm.RegisterLot(lot="ORE-MUT-1", material="cobalt", mass_g=500_000, mine="Mutanda", country="CD",
                        location="geo:-10.78,25.8"), SUP2)
    send(pm.RegisterLot(lot="LI-GRB-1", material="lithium", mass_g=200_000, mine="Greenbushes", country="AU", location="AUBUY"), SUP2)
    for lot in ("ORE-KAM-1", "ORE-MUT-1", "LI-GRB-1"):
        send(pm.AttestLot(lot=lot, standard="RMAP", result="conformant", report=f"FMA-{lot}", valid_until=until), AUDIT)
    refined = send(pm.TransformLots(inputs=[pm.LotPortion(lot="ORE-KAM-1", mass_g=400_000),
                                            pm.LotPortion(lot="ORE-MUT-1", mass_g=200_000)],
                                    outputs=[pm.LotOutput(lot=REFINED, material="cobalt", mass_g=54_000)],
                                    process="refining", yield_ppm=100_000, location="FIKOK"), SUP2)
    send(pm.Ship(lots=[REFINED, "LI-GRB-1"], to="org:sup", location="FIKOK", at=refined.checkpoint.header.time + 1), SUP2)
    send(pm.Receive(lots=[REFINED, "LI-GRB-1"], location="HUPEC"), SUP)
    # a recycled source: a pack harvested from a deregistered car
    send(pm.RegisterPartType(part_number="OLD", name="old pack", category="battery", serialized=True,
                               mass_g=450_000), SUP)
    send(pm.MintParts(part_number="OLD", serials=["R1"], produced="2020-01-02", plant="Pecs", location="HUPEC"), SUP)
    send(pm.Ship(items=["OLD:R1"], to="org:oem", location="HUPEC"), SUP)
    send(pm.Receive(items=["OLD:R1"], location="DEDGF"), OEM)
    send(AssignWmi(wmi=WMI["oem"], org="oem"), REG)
    send(register_msg(V1), OEM)
    send(pm.Install(vin=V1, items=[pm.InstallItem(part="OLD:R1")]), OEM)
    send(Deregister(vin=V1, certificate="COD-2027-1"), SCRAP, OEM)
    send(pm.Remove(vin=V1, items=[pm.InstallItem(part="OLD:R1")]), SCRAP)
    send(pm.RecoverMaterial(parts=["OLD:R1"], lot=RECYCLED, material="cobalt", mass_g=6_000, country="DE",
                            location="DEHAM"), SCRAP)
    send(pm.Ship(lots=[RECYCLED], to="org:sup", location="DEHAM"), SCRAP)
    send(pm.Receive(lots=[RECYCLED], location="HUPEC"), SUP)
    # cells and packs at Pécs
    send(pm.RegisterPartType(part_number="CELL", name="NMC cell", category="battery", serialized=True), SUP)
    send(pm.RegisterPartType(part_number="PACK", name="83 kWh pack", category="battery", serialized=True, assembly=True), SUP)
    send(pm.MintBatch(part_number="CELL", batch="C1", quantity=6, produced="2027-01-05", plant="Pecs", location="HUPEC",
                      materials=[pm.MaterialUse(lot=REFINED, mass_g=30_000), pm.MaterialUse(lot=RECYCLED, mass_g=6_000),
                                 pm.MaterialUse(lot="LI-GRB-1", mass_g=8_000)]), SUP)
    send(pm.MintParts(part_number="CELL", serials=[f"C-{i}" for i in range(1, 7)], produced="2027-01-05", plant="Pecs",
                      batch="C1", location="HUPEC"), SUP)
    made = send(pm.MintParts(part_number="PACK", serials=["K1", "K2", "K3"], produced="2027-01-06", plant="Pecs",
                             location="HUPEC"), SUP)
    for i, pack in enumerate([PACK, ON_THE_WAY, OTHER_PACK]):
        send(pm.Assemble(assembly=pack, components=[f"CELL:C-{2 * i + 1}", f"CELL:C-{2 * i + 2}"]), SUP)
    for pack, kwh in ((PACK, 83_000), (OTHER_PACK, 77_000)):
        send(pm.IssuePassport(pack=pack, category="ev", chemistry="NMC811", capacity_wh=kwh, nominal_voltage_mv=400_000,
                              mass_g=450_500, carbon_footprint_g_per_kwh=61_000, carbon_footprint_report=f"CF-{pack}",
                              due_diligence_report="DD-2027"), SUP)
    t = made.checkpoint.header.time
    send(pm.Ship(items=[PACK], to="org:oem", location="HUPEC", at=t + 1), SUP)  # declared: shipped when made, recorded later
    send(pm.Receive(items=[PACK], location="DEDGF"), OEM)
    send(pm.Ship(items=[OTHER_PACK], to="org:shop", location="HUPEC", at=t + 2), SUP)
    send(pm.Receive(items=[OTHER_PACK], location="DEMUC"), admin("shop"))
    send(pm.Ship(items=[ON_THE_WAY], to="org:oem", location="HUPEC"), SUP)  # still on the way


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SupplyChain]:
    data = tmp_path_factory.mktemp("sourcing") / "data"
    write_chain(data, parts_genesis(time=now_ms() - 1000))
    node = NodeProcess(data)
    try:
        with Client(node.url, trust=data / "genesis.json") as c:
            build(c)
            height = c.status()["height"]
        keys = data.parent / "console-keys"
        keys.mkdir()
        for org in READERS:
            key_file(keys, admin(org), f"{org}-admin")
        sc = SupplyChain(node, keys)
        with signed(node.url, admin("reg")) as http:  # the queries reflect the last block before any test reads
            assert http.get("/v1/state/parts/p/" + PACK, params={"min_height": height}).status_code == 200
        yield sc
    finally:
        node.stop()


@pytest.fixture(scope="module")
def page(browser: Any, chain: SupplyChain) -> Iterator[Any]:
    """One page for the module, signed in as the regulator (``sign_in`` changes the key)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    p = ctx.new_page()
    p.errors = []
    p.on("pageerror", lambda e: p.errors.append(str(e)))
    try:
        open_console(p, chain.node.url, "#/parts", key=chain.key("reg"))
        yield p
    finally:
        ctx.close()


def sign_in(page: Any, chain: SupplyChain, org: str) -> None:
    page.set_input_files("#keyfile", str(chain.key(org)))
    wait_until(page, f"document.getElementById('who').textContent.indexOf('signing as {org}-admin') === 0")


def rows(page: Any, table: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"#{table} tbody tr", "(rs) => rs.map((r) => [...r.cells].map((c) => "
                                                           "c.textContent.replace(/\\s+/g, ' ').trim()))")


def badge_of(page: Any, what: str) -> dict[str, str]:
    return page.eval_on_selector(f"#view .badge[data-what='{what}']", "(b) => ({state: b.dataset.state, text: b.textContent})")


def chart_drawn(page: Any, chart: str, bars: int) -> None:
    assert page.locator(f"#{chart} canvas").count() >= 1, chart  # drawn by uPlot
    assert page.get_attribute(f"#{chart}", "data-bars") == str(bars)
    assert page.get_attribute(f"#{chart}", "role") == "img"
    assert "the same facts are in the table beside the chart" in page.get_attribute(f"#{chart}", "aria-label").lower()


# ---------------------------------------------------------------- what each view must show


def route_rows(r: dict[str, Any], height: int) -> tuple[list[list[str]], list[list[str]]]:
    """The handoffs table and the steps table (each stay, then the leg that left it) the page must show."""
    handoffs = [[str(h["seq"]), h["kind"], who(h["party"]), who(h["receiver"]), place(h["location"]), utc(h["time"]),
                 f"block {h['height']}"] for h in r["handoffs"]]
    steps: list[list[str]] = []
    for i, s in enumerate(r["stays"]):
        steps.append([f"stay with {who(s['custodian'])} at {place(s['location'])}", utc(s["from"]),
                      utc(s["until"]) if s["until"] else "now", dur(s["dwell_ms"]) if s["until"] else f"{dur(s['dwell_ms'])} by block {height}"])
        if i < len(r["legs"]):
            g = r["legs"][i]
            steps.append([f"leg {who(g['sender'])} → {who(g['receiver'])}, {place(g['origin'])} → {place(g['destination'])}",
                          utc(g["shipped"]), utc(g["received"]), dur(g["duration_ms"])])
    if r["now"]["in_transit"]:
        n = r["now"]
        steps.append([f"in transit {who(n['sender'])} → {who(n['receiver'])}, from {place(n['origin'])}, not yet received",
                      utc(n["shipped"]), "now", f"{dur(n['for_ms'])} by block {height}"])
    return handoffs, [[str(i + 1), *s] for i, s in enumerate(steps)]


def assert_route(page: Any, chain: SupplyChain, item: str, reader: str = "reg") -> dict[str, Any]:
    r = chain.q("route", reader, id=item)
    height = chain.node.http.get("/v1/status").json()["height"]
    handoffs, steps = route_rows(r, height)
    assert rows(page, "handoffs") == handoffs
    assert rows(page, "route-steps") == steps
    chart_drawn(page, "route-chart", len(steps))
    return r


def origin_rows(material: dict[str, Any]) -> list[list[str]]:
    return [[o["lot"], o["mine"] or "(recovered)", o["country"], pct(o["ppm"]), "recycled" if o["recycled"] else "mined"]
            for o in material["origins"]]


def assert_origins(page: Any, o: dict[str, Any], prefix: str) -> None:
    for m in o["materials"]:
        assert rows(page, f"{prefix}-{m['material']}") == origin_rows(m), m["material"]
        chart_drawn(page, f"{prefix}-{m['material']}-chart", len(m["origins"]))
        heading = page.inner_text(f"#view [data-material='{m['material']}'] h3")
        assert f"recycled {pct(m['recycled_ppm'])}" in heading


# ---------------------------------------------------------------- the tests


def test_a_regulator_sees_a_packs_route_and_origins_verified_and_opens_its_passport(page: Any, chain: SupplyChain) -> None:
    sign_in(page, chain, "reg")
    go(page, f"#/part/{quote(PACK)}")
    assert {b["state"] for b in badges(page)} == {"verified"}, badges(page)
    r = assert_route(page, chain, PACK)
    assert [h["kind"] for h in r["handoffs"]] == ["made", "shipped", "received"]
    assert "3 handoffs, each in the proven history" in badge_of(page, f"route of {PACK}")["text"]
    assert page.inner_text("#route-now").startswith(f"With {who(r['now']['custodian'])} at {r['now']['location']}")
    o = chain.q("origin", id=PACK)
    assert_origins(page, o, "origins")
    cobalt = next(m for m in o["materials"] if m["material"] == "cobalt")
    assert cobalt["recycled_ppm"] > 0 and len(cobalt["origins"]) == 3  # two mines and the recycler's lot
    assert f"recomputed here from {len(o['keys'])} proven state values" in badge_of(page, f"origins of {PACK}")["text"]
    assert [r[0] for r in rows(page, "origin-keys")] == o["keys"]
    attested = rows(page, "origins-cobalt-attestations")
    assert [a[0] for a in attested] == [x["lot"] for x in cobalt["origins"] for _ in x["attestations"]]
    page.focus("#passport-link a")  # the passport, by keyboard
    page.keyboard.press("Enter")
    wait_until(page, "document.getElementById('view').dataset.page === 'passport'")
    settle(page)
    assert badge_of(page, f"passport of {PACK}")["state"] == "verified"
    go(page, "#/part/OLD:R1")  # its route ended with its last receipt; its proven record says what came after
    assert badge_of(page, "route of OLD:R1")["state"] == "verified"
    assert page.inner_text("#route-now").startswith("Scrapped (its material recovered); its last handoff: with oem at DEDGF")
    assert page.errors == []


def test_a_pack_passport_shows_its_declared_fields_and_computed_origins_proven(page: Any, chain: SupplyChain) -> None:
    sign_in(page, chain, "oem")  # anyone who signs reads a passport
    go(page, f"#/passport/{quote(PACK)}")
    state = badge_of(page, f"passport of {PACK}")
    p = chain.state(f"parts/passport/{PACK}")["value"]
    assert state["state"] == "verified" and f"version {p['version']}" in state["text"], state
    declared = page.inner_text("#passport-declared")
    for words in ("83 kWh", "400 V", "450.5 kg", "61 kg CO₂e per kWh", "NMC811", "electric vehicle battery (ev)",
                  f"CF-{PACK}", "DD-2027", f"block {p['height']}"):
        assert words in declared, words
    assert rows(page, "passport-recycled") == [[r["material"], pct(r["ppm"])] for r in p["recycled"]]
    by_material: dict[str, dict[str, Any]] = {}
    for s in p["materials"]:
        by_material.setdefault(s["material"], {"material": s["material"], "origins": []})["origins"].append(s)
    for m in by_material.values():
        assert rows(page, f"passport-{m['material']}") == origin_rows(m)
        chart_drawn(page, f"passport-{m['material']}-chart", len(m["origins"]))
    assert [r[0] for r in rows(page, "passport-attestations")] == [a["lot"] for a in p["attestations"]]
    go(page, f"#/passport/{quote(ON_THE_WAY)}")  # a pack without one: proven absent
    assert "proven absent" in badge_of(page, f"passport of {ON_THE_WAY}")["text"]
    assert page.locator("#passport-none").count() == 1
    assert page.errors == []


def test_a_batch_and_a_lot_show_their_route_and_origins_verified(page: Any, chain: SupplyChain) -> None:
    sign_in(page, chain, "reg")
    for kind, item, hash in (("batch", BATCH, f"#/batch/{quote(BATCH)}"), ("lot", REFINED, f"#/lot/{REFINED}"),
                             ("lot", RECYCLED, f"#/lot/{RECYCLED}")):
        go(page, hash)
        assert {b["state"] for b in badges(page)} == {"verified"}, (item, badges(page))
        assert badge_of(page, f"{kind} {item}")["text"].startswith("✓ verified · record")
        r = assert_route(page, chain, item)
        assert "the latest the proven record's" in badge_of(page, f"route of {item}")["text"]
        assert_origins(page, chain.q("origin", id=item), "origins")
        if item == REFINED:  # made at the refinery, shipped and received at Pécs: one leg
            assert [(g["origin"], g["destination"]) for g in r["legs"]] == [("FIKOK", "HUPEC")]
        if item == RECYCLED:
            assert "recycled 100 %" in page.inner_text("#view [data-material='cobalt'] h3")
    assert page.errors == []


def test_the_automaker_sees_which_origin_state_values_are_not_its_to_read(page: Any, chain: SupplyChain) -> None:
    o = chain.q("origin", "oem", id=PACK)  # the pack is the automaker's: it reads the origins query
    readable = {k: chain.state_status(k, "oem") for k in o["keys"]}
    assert readable[f"parts/p/{PACK}"] == 200 and sorted(set(readable.values())) == [200, 403]
    sign_in(page, chain, "oem")
    go(page, f"#/part/{quote(PACK)}")
    assert badge_of(page, f"part {PACK}")["state"] == "verified"
    assert badge_of(page, f"route of {PACK}")["state"] == "verified"
    for k, status in readable.items():
        state = badge_of(page, f"state {k}")
        assert (state["state"], status) in {("verified", 200), ("unreadable", 403)}, (k, state)
        if status == 403:
            assert state["text"] == "cannot check: not yours to read (not_a_party)"
    summary = badge_of(page, f"origins of {PACK}")
    refused = sum(1 for s in readable.values() if s == 403)
    assert summary["state"] == "unreadable" and f"{refused} of {len(o['keys'])} state values" in summary["text"], summary
    assert_origins(page, o, "origins")  # still shown, as the node computed them
    assert page.errors == []


def forged_value(ev: dict[str, Any], change: Callable[[dict[str, Any]], None]) -> None:
    v = json.loads(ev["raw"])
    change(v)
    ev["raw"] = json.dumps(v, separators=(",", ":"), sort_keys=True)
    ev["value"] = v


PASSPORT_TAMPER: dict[str, Callable[[dict[str, Any], SupplyChain], None]] = {
    "a declared capacity raised": lambda ev, _: forged_value(ev, lambda v: v.__setitem__("capacity_wh", 95_000)),
    "a recycled share raised": lambda ev, _: forged_value(ev, lambda v: v["recycled"][0].__setitem__("ppm", 500_000)),
    "another pack's genuine passport": lambda ev, c: (ev.clear(), ev.update(c.state(f"parts/passport/{OTHER_PACK}"))),
    "the checkpoint's signature": lambda ev, _: ev["checkpoint"]["attestations"][0].__setitem__("sig", "00" * 64),
}


@pytest.mark.parametrize("what", sorted(PASSPORT_TAMPER))
def test_an_altered_passport_answer_is_not_verified(page: Any, chain: SupplyChain, what: str) -> None:
    seen: list[str] = []

    def handle(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        PASSPORT_TAMPER[what](body, chain)
        seen.append(route.request.url)
        route.fulfill(response=answer, body=json.dumps(body))

    def matches(url: str) -> bool:
        return unquote(url).split("?")[0].endswith(f"/v1/state/parts/passport/{PACK}")

    sign_in(page, chain, "reg")
    page.route(matches, handle)
    try:
        go(page, f"#/passport/{quote(PACK)}")
    finally:
        page.unroute(matches, handle)
    assert seen
    state = badge_of(page, f"passport of {PACK}")
    assert state["state"] == "failed" and state["text"].startswith("✗ not verified"), state
    assert page.locator("#passport-declared").count() == 0 and page.locator("#passport-unverified").count() == 1
    go(page, f"#/passport/{quote(PACK)}")  # the genuine answer, once more
    assert badge_of(page, f"passport of {PACK}")["state"] == "verified"


def swap_shares(body: dict[str, Any]) -> None:
    origins = next(m for m in body["result"]["materials"] if m["material"] == "cobalt")["origins"]
    origins[0]["ppm"], origins[1]["ppm"] = origins[1]["ppm"], origins[0]["ppm"]


def earlier_shipment(body: dict[str, Any]) -> None:
    """The shipment moved a day earlier, the stay and leg computed from it consistently (a slow leg invented)."""
    r = body["result"]
    r["handoffs"][1]["time"] -= 86_400_000
    r["stays"][0].update(until=r["handoffs"][1]["time"], dwell_ms=r["stays"][0]["dwell_ms"] - 86_400_000)
    r["legs"][0].update(shipped=r["handoffs"][1]["time"], duration_ms=r["legs"][0]["duration_ms"] + 86_400_000)


def drop_handoff(body: dict[str, Any]) -> None:
    hs = body["result"]["handoffs"]
    hs.pop(0)
    for i, h in enumerate(hs):
        h["seq"] = i + 1


#: (query, what the page must say) per rewrite of the node's answer for the pack
ANSWER_TAMPER: dict[str, tuple[str, Callable[[dict[str, Any]], None], str]] = {
    "a shipment a day earlier": ("route", earlier_shipment, "proven history entry 4 (shipped)"),
    "a handoff dropped and the rest renumbered": ("route", drop_handoff, "the proven record counts 3"),
    "two mines' shares swapped": ("origin", swap_shares, "the proven state gives"),
    "a state value left out of keys": ("origin", lambda b: b["result"]["keys"].remove(f"parts/b/{BATCH}"), "does not list"),
}


@pytest.mark.parametrize("what", sorted(ANSWER_TAMPER))
def test_a_route_or_origins_answer_rewritten_in_flight_fails_its_badge(page: Any, chain: SupplyChain, what: str) -> None:
    query, change, words = ANSWER_TAMPER[what]

    def handle(route: Any) -> None:
        answer = route.fetch()
        body = answer.json()
        change(body)
        route.fulfill(response=answer, body=json.dumps(body))

    def matches(url: str) -> bool:
        return f"/v1/q/parts/{query}?" in url

    sign_in(page, chain, "reg")
    page.route(matches, handle)
    try:
        go(page, f"#/part/{quote(PACK)}")
    finally:
        page.unroute(matches, handle)
    state = badge_of(page, f"{'route' if query == 'route' else 'origins'} of {PACK}")
    assert state["state"] == "failed" and words in state["text"], state
    assert badge_of(page, f"part {PACK}")["state"] == "verified"


def test_the_supply_chain_page_ranks_slow_lanes_and_ages_stock_in_transit(page: Any, chain: SupplyChain) -> None:
    sign_in(page, chain, "sup")
    go(page, "#/supply/part_number/PACK")
    lanes, legs, transit = (chain.q(n, "sup", part_number="PACK") for n in ("lanes", "legs", "in_transit"))
    assert len(lanes["lanes"]) == 2 and transit["items"] == 1
    assert rows(page, "lanes") == [[str(i + 1), f"{who(x['sender'])} → {who(x['receiver'])}",
                                    f"{place(x['origin'])} → {place(x['destination'])}", str(x["legs"]), dur(x["mean_ms"]),
                                    dur(x["min_ms"]), dur(x["max_ms"])] for i, x in enumerate(lanes["lanes"])]
    chart_drawn(page, "lanes-chart", len(lanes["lanes"]))
    assert rows(page, "transit") == [[t["item"], t["kind"], t["product"], f"{who(t['sender'])} at {place(t['origin'])}",
                                      who(t["receiver"]), utc(t["since"]), dur(t["for_ms"]), f"{t['qty']} part"]
                                     for t in transit["in_transit"]]
    assert rows(page, "transit-ages")[0] == ["under 1 hour", "1", "1 part"]  # the pack shipped moments ago
    chart_drawn(page, "transit-chart", 6)
    assert rows(page, "legs") == [[g["item"], g["kind"], g["product"], f"{who(g['sender'])} at {place(g['origin'])}",
                                   f"{who(g['receiver'])} at {place(g['destination'])}", utc(g["shipped"]), utc(g["received"]),
                                   dur(g["duration_ms"]), f"block {g['height']}"] for g in legs["legs"]]
    go(page, "#/supply/supplier/sup")  # everything sup makes: the old pack's leg too
    assert len(rows(page, "legs")) == len(chain.q("legs", "sup", supplier="sup")["legs"]) == len(legs["legs"]) + 1
    sign_in(page, chain, "oem")  # the part number's supplier's to read, not a customer's
    assert chain.q("lanes", "oem", part_number="PACK") == (403, "not_a_party")
    go(page, "#/supply/part_number/PACK")
    assert page.get_attribute("#view [data-code]", "data-code") == "not_a_party"
    assert page.errors == []


LOTS = st.sampled_from([("cobalt", "A"), ("cobalt", "B"), ("cobalt", "C"), ("lithium", "D"), ("lithium", "E"), ("nickel", "F")])
#: Round shares and equal weights often, so that remainders tie (a third each) and the tie-break counts.
SHARES = st.one_of(st.sampled_from([1_000_000, 500_000, 333_333, 1]), st.integers(0, 10**6))
INPUTS = st.lists(st.tuples(st.one_of(st.just(1), st.integers(0, 10**9)), st.one_of(st.just(1), st.integers(1, 10**4)),
                            st.lists(st.tuples(LOTS, SHARES, st.booleans()), min_size=1, max_size=4, unique_by=lambda o: o[0])),
                  min_size=1, max_size=5)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=INPUTS)
@example(inputs=[(1, 1, [(("cobalt", lot), 1_000_000, False)]) for lot in "CAB"])  # a third each: the tie goes to lot A
def test_the_pages_mass_balance_gives_the_ledgers_shares(page: Any, inputs: list[Any]) -> None:
    """The page recomputes origins with its own ``mix`` (BigInt rationals, largest remainder): on any inputs
    it must give the ledger's shares to the ppm, ties included, or a genuine answer would fail its badge."""
    from fractions import Fraction

    from blokauto.modules.parts.origins import mix
    from blokauto.modules.parts.state import Origin

    ours = [{"material": o.material, "lot": o.lot, "mine": o.mine, "country": o.country, "ppm": o.ppm, "recycled": o.recycled}
            for o in mix((Fraction(n, d), [Origin(m, lot, f"mine {lot}", "CD", ppm, rec) for (m, lot), ppm, rec in origins])
                         for n, d, origins in inputs)]
    cases = [[str(n), str(d), [{"material": m, "lot": lot, "mine": f"mine {lot}", "country": "CD", "ppm": ppm, "recycled": rec}
                               for (m, lot), ppm, rec in origins]] for n, d, origins in inputs]
    theirs = page.evaluate("(cs) => { const S = Console.sourcing; "
                           "return S.mix(cs.map(([n, d, os]) => [S.Q.of(BigInt(n), BigInt(d)), os])); }", cases)
    assert theirs == ours


def test_at_200_percent_zoom_no_sourcing_text_leaves_the_screen(browser: Any, chain: SupplyChain) -> None:
    ctx = zoomed(browser)
    p = ctx.new_page()
    try:
        open_console(p, chain.node.url, f"#/part/{quote(PACK)}", key=chain.key("reg"))
        for hash in [f"#/part/{quote(PACK)}", f"#/passport/{quote(PACK)}", "#/supply/part_number/PACK", f"#/lot/{REFINED}"]:
            go(p, hash)
            assert p.evaluate(TEXT_OUTSIDE_SCREEN) == [], hash
    finally:
        ctx.close()
