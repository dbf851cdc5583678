"""Property tests for parts: random sequences of mint, ship, receive, install, remove, assemble
and end of life over a few parts, batches, vehicles and organisations, applied block by block.

Each operation is drawn abstractly (which item, which vehicle, whose key) and turned into a
signed transaction against the ledger as it stands before its block, so most are sent by the
right organisation and some are not (and fail). After every block:

- a part is never in two places: an installed part's location names exactly one bill of
  materials line or one assembly, and nothing else lists it; a part that is not installed is
  listed nowhere;
- custody is a single chain: replaying a part's history entries (minted, shipped, received,
  installed, removed, assembled) from its first custodian, each step starts from the custodian
  the previous one left, and ends at the part's record; the history hash chain covers them all;
- batch counters add up. The rule the code keeps (``mint_batch``, ``_install_batch``, ``remove``):
  units removed from a vehicle do not return to stock, they are written off on the vehicle's
  removed list, so for a batch of batch-made parts quantity == in_stock + installed + units on
  removed lists, and installed == the units on bills now. For the batch of a serialized type,
  installed == its parts now in a vehicle, at any depth of assembly;
- a part type's ``installed`` counter == the units of that part number in vehicles, nested parts
  included; the installation index (what recalls resolve against) has exactly those as open rows;
- replaying the same blocks on a fresh ledger gives the same receipts and state roots.

And through a live node: a campaign's progress always adds up (affected == remedied +
outstanding) across random remedy sequences, and matches a model of which remedies count.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any, Iterator

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blokauto.core.crypto import KeyPair
from blokauto.modules.parts.spec import INSTALLATIONS, PART_HISTORY
from blokauto.modules.parts.state import BATCHES, BOMS, PART_TYPES, PARTS, Part
from blokauto.modules.recalls.messages import CloseCampaign, RecordRemedy
from blokauto.modules.recalls.state import SoftwareFix
from blokauto.modules.vehicles.handlers import history_head
from blokauto.modules.vehicles.messages import AssignWmi, Deregister

from conftest import Chain, build_tx
from helpers.parts import (
    OEM,
    OEM2,
    REG,
    SCRAP,
    SHOP,
    SUP,
    WMI,
    B,
    BatchRef,
    P,
    PartsNode,
    Scope,
    admin,
    assemble,
    campaign,
    install,
    mint,
    mint_batch,
    ok,
    part_type,
    parts_chain,
    receive,
    register_msg,
    remove,
    ship,
    vin_for,
)

VINS = [vin_for(WMI["oem"], i) for i in (1, 2, 3)]
ORGS = ["sup", "oem", "shop", "scrap", "oem2"]
SERIALS = ["BRK:S1", "BRK:S2", "BRK:S3", "PACK:K1", "PACK:K2", "CELL:C1", "CELL:C2", "CELL:C3"]
MINTABLE = ["BRK:S4", "CELL:C4", "PACK:K3"]  # minted by an operation (a second attempt fails)
PARTS_POOL = SERIALS + MINTABLE
BATCH_REFS = ["PAD:B1", "CELL:CB"]  # shipped and received whole; only PAD:B1 is installed by units
ITEMS = PARTS_POOL + BATCH_REFS
ASSEMBLIES = ["PACK:K1", "PACK:K2", "PACK:K3"]


def setup_chain() -> Chain:
    """sup owns BRK, PACK (assembly), CELL (in batch CB) and PAD (batch B1, 6 units). oem holds
    BRK:S1, BRK:S2, PACK:K2, CELL:C3 and PAD:B1; shop holds BRK:S3; the rest is at sup, and
    MINTABLE is not minted yet. oem registered V1..V3 (only V3 may be scrapped)."""
    chain = parts_chain()
    ok(chain, SUP, part_type("BRK"))
    ok(chain, SUP, part_type("PACK", assembly=True))
    ok(chain, SUP, part_type("CELL"))
    ok(chain, SUP, part_type("PAD", serialized=False))
    ok(chain, SUP, mint_batch("PAD", "B1", 6))
    ok(chain, SUP, mint_batch("CELL", "CB", 4))
    ok(chain, SUP, mint("BRK", "S1", "S2", "S3"))
    ok(chain, SUP, mint("PACK", "K1", "K2"))
    ok(chain, SUP, mint("CELL", "C1", "C2", "C3", batch="CB"))
    at_oem = ["BRK:S1", "BRK:S2", "PACK:K2", "CELL:C3", "PAD:B1"]
    ok(chain, SUP, ship("oem", *at_oem))
    ok(chain, OEM, receive(*at_oem))
    ok(chain, SUP, ship("shop", "BRK:S3"))
    ok(chain, SHOP, receive("BRK:S3"))
    for vin in VINS:
        ok(chain, OEM, register_msg(vin))
    return chain


# ---------------------------------------------------------------- abstract operations


who = st.one_of(st.just("auto"), st.just("auto"), st.just("auto"), st.sampled_from(ORGS))
#: ``smart`` picks the item among those the operation can apply to now (index modulo their number)
smart = st.booleans()
OPS = {
    "mint": st.tuples(st.just("mint"), st.integers(0, len(MINTABLE) - 1), who),
    "ship": st.tuples(st.just("ship"), st.integers(0, len(ITEMS) - 1),
                      st.sampled_from(["oem", "oem", "shop", "shop", "sup", "scrap"]), who),
    "receive": st.tuples(st.just("receive"), st.integers(0, 30), who, smart),
    # item index len(PARTS_POOL) is a line of PAD:B1 units
    "install": st.tuples(st.just("install"), st.integers(0, len(VINS) - 1), st.integers(0, 30), st.integers(1, 4),
                         who, smart),
    "remove": st.tuples(st.just("remove"), st.integers(0, len(VINS) - 1), st.integers(0, 30), st.integers(1, 4),
                        st.sampled_from(["shop", "shop", "scrap"]), smart),
    "assemble": st.tuples(st.just("assemble"), st.integers(0, len(ASSEMBLIES) - 1), st.integers(0, 30), who, smart),
    "scrap": st.tuples(st.just("scrap"), st.just(len(VINS) - 1)),
}
WEIGHTS = ["mint", "ship", "ship", "receive", "receive", "install", "install", "install", "remove", "remove",
           "assemble", "assemble", "scrap"]
op = st.sampled_from(WEIGHTS).flatmap(lambda kind: OPS[kind])
blocks_st = st.lists(st.lists(op, min_size=1, max_size=4), min_size=1, max_size=12)


def _org_of(holder: str) -> str | None:
    return holder[4:] if holder.startswith("org:") else None


def _key(name: str | None, fallback: str = "oem") -> KeyPair:
    return admin(name if name in ORGS else fallback)


def _pick(i: int, candidates: list[Any], fallback: list[Any], use_candidates: bool) -> Any:
    pool = candidates if use_candidates and candidates else fallback
    return pool[i % len(pool)]


def to_tx(chain: Chain, o: tuple) -> bytes | None:
    """A signed transaction for the abstract operation against the ledger now (None: nothing to send)."""
    state = chain.ledger
    kind = o[0]
    parts = {ref: p for ref in PARTS_POOL if (p := PARTS.get(state, ref)) is not None}
    if kind == "mint":
        pn, serial = MINTABLE[o[1]].split(":")
        return build_tx(_key(o[2] if o[2] != "auto" else "sup"), mint(pn, serial))
    if kind == "ship":
        ref, to, sender = ITEMS[o[1]], o[2], o[3]
        rec = PARTS.get(state, ref) or BATCHES.get(state, ref)
        if rec is None:
            return None
        return build_tx(_key(_org_of(rec.custodian) if sender == "auto" else sender), ship(to, ref))
    if kind == "receive":
        _, i, sender, use = o
        moving = [r for r, p in parts.items() if p.status == "in_transit"]
        moving += [r for r in BATCH_REFS if BATCHES.get(state, r).custodian.startswith("transit:")]
        ref = _pick(i, moving, ITEMS, use)
        p = parts.get(ref)
        b = BATCHES.get(state, ref)
        target = p.transit_to if p is not None else b.custodian.removeprefix("transit:") if b is not None else ""
        return build_tx(_key(_org_of(target) if sender == "auto" else sender), receive(ref))
    if kind == "install":
        _, v, i, qty, sender, use = o
        vin = VINS[v]
        ready = [P(r) for r, p in parts.items() if p.status in ("in_stock", "removed")
                 and _org_of(p.custodian) in ("oem", "shop")]
        if _org_of(BATCHES.get(state, "PAD:B1").custodian) in ("oem", "shop"):
            ready.append(B("PAD:B1", qty))
        line = _pick(i, ready, [P(r) for r in PARTS_POOL] + [B("PAD:B1", qty)], use)
        if sender == "auto":
            rec = BATCHES.get(state, line.batch) if line.batch else parts.get(line.part)
            sender = _org_of(rec.custodian) if rec is not None else "oem"
        return build_tx(_key(sender if sender in ("oem", "shop", "oem2") else "oem"), install(vin, line))
    if kind == "remove":
        _, v, i, qty, sender, use = o
        fitted = [(vin, P(x.ref) if x.kind == "part" else B(x.ref, min(qty, x.qty)))
                  for vin in VINS if (bill := BOMS.get(state, vin)) is not None for x in bill.items]
        vin, line = _pick(i, fitted, [(VINS[v], P(r)) for r in PARTS_POOL] + [(VINS[v], B("PAD:B1", qty))], use)
        return build_tx(admin(sender), remove(vin, line))
    if kind == "assemble":
        _, ai, i, sender, use = o
        a = ASSEMBLIES[ai]
        rec = parts.get(a)
        holder = rec.custodian if rec is not None else ""
        loose = [r for r, p in parts.items() if p.custodian == holder and p.status == "in_stock" and r != a]
        c = _pick(i, loose, PARTS_POOL, use)
        if sender == "auto":
            sender = _org_of(holder) or "sup"
        return build_tx(_key(sender if sender in ("sup", "oem", "oem2") else "sup"), assemble(a, c))
    if kind == "scrap":
        return build_tx(SCRAP, Deregister(vin=VINS[o[1]], certificate=f"COD-{o[1]}"), OEM)
    raise AssertionError(kind)


# ---------------------------------------------------------------- invariants


def all_parts(chain: Chain) -> dict[str, Part]:
    prefix = PARTS.prefix.encode()
    return {k[len(prefix):].decode(): PARTS.decode(v) for k, v in chain.ledger.state.items() if k.startswith(prefix)}


def vehicle_of(parts: dict[str, Part], p: Part) -> str | None:
    """The VIN a part is in, at any depth of assembly (None if it is in no vehicle)."""
    seen = set()
    while p.status == "installed" and p.id not in seen:
        seen.add(p.id)
        if p.location.startswith("vin:"):
            return p.location[4:]
        p = parts[p.location.removeprefix("part:")]
    return None


def check_locations(parts: dict[str, Part], boms: dict[str, Any]) -> None:
    on_bill: dict[str, str] = {}
    for vin, bill in boms.items():
        for line in bill.items:
            if line.kind == "part":
                assert line.ref not in on_bill, f"{line.ref} is on two bills of materials"
                on_bill[line.ref] = vin
    inside: dict[str, str] = {}
    for a in parts.values():
        for c in a.components:
            assert c not in inside, f"{c} is inside two assemblies"
            inside[c] = a.id
    for p in parts.values():
        if p.status == "installed":
            assert p.custodian == p.location, p
            if p.location.startswith("vin:"):
                assert on_bill.get(p.id) == p.location[4:] and p.id not in inside, p
            else:
                assert inside.get(p.id) == p.location.removeprefix("part:") and p.id not in on_bill, p
        else:
            assert p.location == "" and p.id not in on_bill and p.id not in inside, p
        assert (p.status == "in_transit") == (p.transit_to != ""), p


def check_custody_chain(chain: Chain, p: Part) -> None:
    rows = sorted((r for r in chain.ledger.index[PART_HISTORY.name].values() if r["part"] == p.id),
                  key=lambda r: r["seq"])
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    assert history_head(r["entry"] for r in rows) == (p.history.count, p.history.head)
    cust = status = transit = ""
    for r in rows:
        e = msgspec.json.decode(r["entry"])
        d, org = e["data"], "org:" + e["org"]
        t = e["type"]
        if t == "minted":
            assert cust == ""
            cust, status = d["custodian"], "in_stock"
        elif t == "shipped":
            assert status in ("in_stock", "removed") and d["from"] == cust, (p.id, e)
            status, transit = "in_transit", d["to"]
        elif t == "received":
            assert status == "in_transit" and d["by"] == transit and d["from"] == cust, (p.id, e)
            cust, status, transit = transit, "in_stock", ""
        elif t == "installed":
            assert status in ("in_stock", "removed") and cust == org, (p.id, e)
            cust, status = "vin:" + d["vin"], "installed"
        elif t == "removed":
            assert status == "installed" and cust == "vin:" + d["vin"], (p.id, e)
            cust, status = org, "removed"
        elif t == "assembled":
            assert status == "in_stock" and cust == org, (p.id, e)
            cust, status = "part:" + d["into"], "installed"
        else:
            assert t in ("components_added", "conditions"), t
    assert (cust, status, transit) == (p.custodian, p.status, p.transit_to), p


def check(chain: Chain) -> None:
    parts = all_parts(chain)
    boms = {vin: b for vin in VINS if (b := BOMS.get(chain.ledger, vin)) is not None}
    check_locations(parts, boms)
    for p in parts.values():
        check_custody_chain(chain, p)
    in_vehicle = {p.id: v for p in parts.values() if (v := vehicle_of(parts, p)) is not None}
    # batch-made parts: nothing appears or vanishes
    pad = BATCHES.get(chain.ledger, "PAD:B1")
    on_bills = sum(line.qty for b in boms.values() for line in b.items if line.ref == pad.id)
    written_off = sum(x.qty for b in boms.values() for x in b.removed if x.ref == pad.id)
    assert pad.installed == on_bills
    assert pad.quantity == pad.in_stock + pad.installed + written_off, pad
    # the batch of a serialized type counts its parts in vehicles
    cb = BATCHES.get(chain.ledger, "CELL:CB")
    assert cb.installed == sum(1 for ref in in_vehicle if parts[ref].batch == "CB"), cb
    assert cb.in_stock == cb.quantity  # never installed by units in these sequences
    # part type counters: units in vehicles, nested included
    units: Counter[str] = Counter()
    for ref in in_vehicle:
        units[parts[ref].part_number] += 1
    for b in boms.values():
        for line in b.items:
            if line.kind == "batch":
                units[line.part_number] += line.qty
    for pn in ("BRK", "PACK", "CELL", "PAD"):
        assert PART_TYPES.get(chain.ledger, pn).installed == units[pn], pn
    # the installation index: open rows are exactly what vehicles carry now
    open_rows = [r for r in chain.ledger.index[INSTALLATIONS.name].values() if r["removed"] == 0]
    assert {(r["ref"], r["vin"]) for r in open_rows if r["serial"]} == set(in_vehicle.items())
    top = {line.ref for b in boms.values() for line in b.items}
    for r in open_rows:
        if r["serial"]:
            assert (r["via"] or r["ref"]) in top and (r["via"] == "") == (r["ref"] in top), r
    batch_units = Counter()
    for r in open_rows:
        if not r["serial"]:
            batch_units[(r["ref"], r["vin"])] += r["qty"]
    assert batch_units == Counter({(line.ref, vin): line.qty for vin, b in boms.items() for line in b.items
                                   if line.kind == "batch"})


def replay(chain: Chain) -> Chain:
    fresh = Chain(chain.genesis)
    for outcome in chain.ledger.blocks[1:]:
        again = fresh.ledger.add_block([fresh.ledger.check(raw) for raw in outcome.txs], time=outcome.header.time)
        assert again.receipts == outcome.receipts
        assert again.header == outcome.header
    return fresh


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(blocks=blocks_st)
def test_random_part_lifecycles_keep_every_invariant(blocks: list[list[tuple]]) -> None:
    chain = setup_chain()
    check(chain)
    for ops in blocks:
        raws = [raw for o in ops if (raw := to_tx(chain, o)) is not None]
        chain.block(*raws)
        check(chain)
    fresh = replay(chain)
    assert fresh.root == chain.root
    assert fresh.ledger.index == chain.ledger.index


def test_the_generator_reaches_deep_states() -> None:
    """A fixed sequence the random one can also draw: cells into a pack at the supplier, that
    pack into another at the manufacturer, into a car, removed, shipped on, fitted to another car
    and harvested at its end of life; every invariant holds at each block."""
    chain = setup_chain()
    steps = [
        (SUP, assemble("PACK:K1", "CELL:C1", "CELL:C2")),
        (SUP, ship("oem", "PACK:K1")),
        (OEM, receive("PACK:K1")),
        (OEM, assemble("PACK:K2", "PACK:K1", "CELL:C3")),
        (OEM, install(VINS[0], "PACK:K2", "BRK:S1", B("PAD:B1", 4))),
        (SHOP, remove(VINS[0], "PACK:K2", B("PAD:B1", 1))),
        (SHOP, ship("oem", "PACK:K2")),
        (OEM, receive("PACK:K2")),
        (OEM, install(VINS[1], "PACK:K2", B("PAD:B1", 2))),
        (SCRAP, Deregister(vin=VINS[1], certificate="COD-1"), OEM),
        (SCRAP, remove(VINS[1], "PACK:K2", B("PAD:B1", 2))),
    ]
    for sender, msg, *co in steps:
        ok(chain, sender, msg, *co)
        check(chain)
    assert PART_TYPES.get(chain.ledger, "CELL").installed == 0
    assert BATCHES.get(chain.ledger, "PAD:B1").in_stock == 0
    assert replay(chain).root == chain.root


# ---------------------------------------------------------------- campaign progress on a live node


AFFECTED_OEM = 4  # V1..V4 carry PAD:B1 units; V5 carries none; oem2's W1 carries PAD:B1 units too


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PartsNode, list[str]]]:
    with PartsNode(tmp_path_factory.mktemp("progress")) as node:
        vins = [vin_for(WMI["oem"], i) for i in range(1, 6)]
        w1 = vin_for(WMI["oem2"], 1)
        node.all(*[(REG, AssignWmi(wmi=wmi, org=org)) for org, wmi in WMI.items()],
                 *[(OEM, register_msg(v)) for v in vins], (OEM2, register_msg(w1)),
                 (SUP, part_type("PAD", serialized=False)), (SUP, mint_batch("PAD", "B1", 40)),
                 (SUP, ship("oem", "PAD:B1")), (OEM, receive("PAD:B1")),
                 *[(OEM, install(v, B("PAD:B1", 2))) for v in vins[:4]],
                 (OEM, ship("oem2", "PAD:B1")), (OEM2, receive("PAD:B1")), (OEM2, install(w1, B("PAD:B1", 2))))
        yield node, vins + [w1]


_campaigns = itertools.count(1)
remedy_step = st.one_of(
    st.tuples(st.just("remedy"), st.integers(0, 5), st.sampled_from(["shop", "dealer"]),
              st.sampled_from(["workshop", "workshop", "software"])),
    st.tuples(st.just("close")),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(by_regulator=st.booleans(), ota=st.booleans(), steps=st.lists(remedy_step, min_size=1, max_size=6))
def test_campaign_progress_always_adds_up(fleet: tuple[PartsNode, list[str]], by_regulator: bool, ota: bool,
                                         steps: list[tuple]) -> None:
    node, vins = fleet
    opener = REG if by_regulator else OEM
    out = node.must(opener, campaign(f"P-{next(_campaigns)}", Scope(batches=[BatchRef(part_number="PAD", batch="B1")]),
                                     ota_remedy=ota, software_fix=SoftwareFix(hardware_id="pad-ctl", min_release_counter=1)
                                     if ota else None))
    cid = next(e["campaign"] for e in out["receipt"]["events"] if e["type"] == "recalls.campaign_opened")
    affected = set(vins[:4]) | ({vins[5]} if by_regulator else set())
    remedied: set[str] = set()
    is_open = True
    for step in steps:
        if step[0] == "close":
            r = node.send(opener, CloseCampaign(campaign=cid))["receipt"]
            assert r["ok"] is is_open, r
            is_open = False
        else:
            _, i, who, method = step
            vin = vins[i]
            r = node.send(admin(who), RecordRemedy(campaign=cid, vin=vin, method=method))["receipt"]
            expected = ("campaign_closed" if not is_open else
                        "not_your_campaign" if method == "software" and not ota else
                        "remedy_needs_manifest" if method == "software" else
                        "not_affected" if vin not in affected else
                        "already_remedied" if vin in remedied else None)
            assert (r["ok"], r.get("code") or None) == (expected is None, expected), (step, r)
            if expected is None:
                remedied.add(vin)
        res = node.q("recalls", "affected", campaign=cid, limit=100)
        p = res["progress"]
        assert p["affected"] == p["remedied"] + p["outstanding"]
        assert p == {"affected": len(affected), "remedied": len(remedied), "outstanding": len(affected - remedied)}
        assert {v["vin"] for v in res["vehicles"]} == affected
        assert {v["vin"] for v in res["vehicles"] if v["remedied"]} == remedied
