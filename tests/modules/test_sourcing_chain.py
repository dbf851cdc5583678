"""Responsible sourcing end to end: cobalt from two mines and a recycler, lithium from a third mine,
through concentration, refining, precursor and cathode making into two cell batches, a module and a
battery pack; the pack's origins, passport, route, legs, lanes and stock in transit.

The chain (``sourced``, on a MemoryLedger with every block's time chosen, so declared handoff times
and durations are exact)::

    ORE-K  cobalt 100 kg, Kamoto CD (sup)  --concentration 20%-->  CONC-K 20 kg ---\\
    ORE-B  cobalt  50 kg, Bou Azzer MA (sup2) --concentration 20%--> CONC-B 10 kg --+-- refining 20% (15 + 10 kg)
              (CONC-B shipped MAOUZ -> BEANR: 36 h)                                  --> REF-1 cobalt-sulfate 5 kg
    OLD:X1 pack harvested by scrap --recovered--> REC-1 cobalt 2 kg (recycled, DE; shipped DEHAM -> BEANR: 6 h)
    REF-1 4 kg + REC-1 1 kg  --precursor 90%-->  PRE-1 4.5 kg
    ORE-L  lithium 8 kg, Greenbushes AU (sup) --hydroxide 25%--> LIOH-1 2 kg
    PRE-1 4 kg + LIOH-1 1 kg    --cathode 80%-->  CAT-1 4 kg   (cobalt K 48 %, B 32 %, recycled 20 %)
    REC-1 1 kg + LIOH-1 250 g   --cathode 80%-->  CAT-2 1 kg   (cobalt recycled 100 %)
    CELL:C1 (10 cells, 500 g of CAT-1), CELL:C2 (5 cells, 250 g of CAT-2)
    PACK:P1 = MOD:M1 (cells C1-1, C1-2) + cell C2-1: CAT-1 100 g, CAT-2 50 g

so the pack's cobalt is Kamoto 100/150 x 480,000 = 320,000 ppm, Bou Azzer 100/150 x 320,000 =
213,333.3 and recycled (100 x 200,000 + 50 x 1,000,000) / 150 = 466,666.7: largest remainder gives the
one ppm left to the recycled share (its remainder .67 beats .33), 320,000 + 213,333 + 466,667. Its
lithium is all Greenbushes. The consortium voted ``attestation_required:cobalt``; lithium was never
voted, so ORE-L is consumed with no attestation. Four transformation steps separate the pack's
cathode from the mine (concentrate, refined, precursor, cathode), then cells, a module and the pack.

The same queries over a live node (``PartsNode``: SQL for lanes and in_transit) close the file.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Iterator

import pytest

from blokauto.core.errors import NotFound
from blokauto.modules.parts import logistics_queries as lq
from blokauto.modules.parts import queries
from blokauto.modules.parts.messages import Assemble, RegisterPartType
from blokauto.modules.parts.state import PASSPORTS
from blokauto.modules.vehicles.messages import Deregister

from conftest import T0, Chain, now_ms
from helpers.parts import (AUDIT, OEM, SCRAP, SUP, SUP2, V1, VALID_UNTIL, PartsNode, install, mint, mint_batch,
                           parts_chain, receive, register_msg, remove, ship)
from helpers.sourcing import (HOUR, PPM, SourcingView, all_ok, attest, lot_of, passport, receive_lots, recover,
                              registered, require, shares, ship_lots, split, transform)

MIN = 60_000


def at(hours: float) -> int:
    """T0 + ``hours``: the sourced chain's clock."""
    return T0 + int(hours * HOUR)


def battery_type(pn: str, category: str = "battery", assembly: bool = True, mass_g: int = 480_000) -> RegisterPartType:
    return RegisterPartType(part_number=pn, name=pn.lower(), category=category, serialized=True, assembly=assembly,
                            mass_g=mass_g)


def build() -> Chain:
    chain = parts_chain()
    require(chain)  # attestation_required:cobalt = 1, by a vote
    # hour 1: mines, part types, the old pack that will be recycled
    all_ok(chain,
           (SUP, registered("ORE-K", 100_000, mine="Kamoto", country="CD", location="CDKWZ")),
           (SUP2, registered("ORE-B", 50_000, mine="Bou Azzer", country="MA", location="MAOUZ")),
           (SUP, registered("ORE-L", 8_000, material="lithium", mine="Greenbushes", country="AU",
                            location="geo:-33.85,116.06")),
           (AUDIT, attest("ORE-K", report="RMAP-K")),
           (AUDIT, attest("ORE-B", report="RMAP-B")),
           (SUP, battery_type("CELL", "cell", assembly=False)),
           (SUP, battery_type("MOD", "module")),
           (SUP, battery_type("PACK")),
           (SUP, battery_type("OLD")),
           (SUP, mint("OLD", "X1")),
           time=at(1))
    # the old pack: sold at hour 1.5, received at 2.5 (no place, no `at`: the blocks' times)
    all_ok(chain, (SUP, ship("oem", "OLD:X1")), time=at(1.5))
    all_ok(chain, (OEM, receive("OLD:X1")), (OEM, register_msg(V1)), (OEM, install(V1, "OLD:X1")), time=at(2.5))
    # hour 2: concentration at the mines
    all_ok(chain,
           (SUP, transform("concentration", [("ORE-K", 100_000)], [("CONC-K", "cobalt-concentrate", 20_000)],
                           yield_ppm=200_000, location="CDKWZ")),
           (SUP2, transform("concentration", [("ORE-B", 50_000)], [("CONC-B", "cobalt-concentrate", 10_000)],
                            yield_ppm=200_000, location="MAOUZ")),
           (SUP, transform("hydroxide", [("ORE-L", 8_000)], [("LIOH-1", "lithium-hydroxide", 2_000)],
                           yield_ppm=250_000)),
           time=at(3))
    # the concentrate's sea leg, recorded late: shipped at 3.5 h, received at 39.5 h (36 h)
    all_ok(chain, (SUP2, ship_lots("sup", "CONC-B", location="MAOUZ", at=at(3.5))), time=at(5))
    all_ok(chain, (SUP, receive_lots("CONC-B", location="BEANR", at=at(39.5))), time=at(40))
    # end of life: the old pack harvested and recovered; the cobalt shipped to sup (6 h)
    all_ok(chain, (SCRAP, Deregister(vin=V1, certificate="COD-1"), OEM), (SCRAP, remove(V1, "OLD:X1")),
           (SCRAP, recover("REC-1", "OLD:X1", material="cobalt", mass_g=2_000, country="DE", location="DEHAM")),
           (AUDIT, attest("REC-1", report="RMAP-R")),
           time=at(41))
    all_ok(chain, (SCRAP, ship_lots("sup", "REC-1", location="DEHAM", at=at(41))), time=at(42))
    all_ok(chain, (SUP, receive_lots("REC-1", location="BEANR", at=at(47))), time=at(48))
    # refining, precursor, cathodes
    all_ok(chain,
           (SUP, transform("refining", [("CONC-K", 15_000), ("CONC-B", 10_000)],
                           [("REF-1", "cobalt-sulfate", 5_000)], yield_ppm=200_000, location="BEANR")),
           (SUP, transform("precursor", [("REF-1", 4_000), ("REC-1", 1_000)], [("PRE-1", "precursor-nmc", 4_500)],
                           yield_ppm=900_000)),
           (SUP, transform("cathode", [("PRE-1", 4_000), ("LIOH-1", 1_000)], [("CAT-1", "cathode-nmc", 4_000)],
                           yield_ppm=800_000)),
           (SUP, transform("cathode", [("REC-1", 1_000), ("LIOH-1", 250)], [("CAT-2", "cathode-nmc", 1_000)],
                           yield_ppm=800_000)),
           time=at(50))
    # cells, a module, packs
    all_ok(chain,
           (SUP, mint_batch("CELL", "C1", 10, ("CAT-1", 500))),
           (SUP, mint_batch("CELL", "C2", 5, ("CAT-2", 250))),
           (SUP, mint("CELL", "C1-1", "C1-2", "C1-3", batch="C1")),
           (SUP, mint("CELL", "C2-1", batch="C2")),
           (SUP, mint("MOD", "M1")),
           (SUP, mint("PACK", "P1", "P2", "P3")),
           (SUP, Assemble(assembly="MOD:M1", components=["CELL:C1-1", "CELL:C1-2"])),
           (SUP, Assemble(assembly="PACK:P1", components=["MOD:M1", "CELL:C2-1"])),
           (SUP, passport("PACK:P1")),
           time=at(60))
    # the packs' road legs: P1 20 h, P3 30 h on the same lane; P2 and the rest of LIOH-1 still on the way
    all_ok(chain, (SUP, ship("oem", "PACK:P1", "PACK:P3")), time=at(70))
    all_ok(chain, (SUP, ship_lots("oem", items=("PACK:P2",), location="HUPEC", at=at(71))),
           (SUP, ship_lots("sup2", "LIOH-1", location="HUPEC", at=at(71.5))), time=at(72))
    all_ok(chain, (OEM, receive_lots(items=("PACK:P1",), location="DEWOB", at=at(90))), time=at(91))
    all_ok(chain, (OEM, receive_lots(items=("PACK:P3",), location="DEWOB", at=at(100))), time=at(101))
    all_ok(chain, (SUP, passport("PACK:P1", chemistry="NMC811-rev")), time=at(102))  # a second version
    chain.block(time=at(110))  # "now" for the queries: an empty block at hour 110
    return chain


@pytest.fixture
def sourced() -> Chain:
    """Built for each test (about 50 ms), so each test's reads are its own (a mutation run ties a test
    to the code its own set-up ran)."""
    return build()


def view(chain: Chain) -> SourcingView:
    return SourcingView(chain)


PACK_COBALT = {"ORE-B": 213_333, "ORE-K": 320_000, "REC-1": 466_667}


# ---------------------------------------------------------------- mass balance and origins along the chain


def test_each_step_carries_its_inputs_origins_by_mass(sourced: Chain) -> None:
    expected = {
        "CONC-K": {"cobalt": {"ORE-K": PPM}},
        "REF-1": {"cobalt": {"ORE-B": 400_000, "ORE-K": 600_000}},  # 10 kg and 15 kg of concentrate
        "PRE-1": {"cobalt": {"ORE-B": 320_000, "ORE-K": 480_000, "REC-1": 200_000}},
        "CAT-1": {"cobalt": {"ORE-B": 320_000, "ORE-K": 480_000, "REC-1": 200_000}, "lithium": {"ORE-L": PPM}},
        "CAT-2": {"cobalt": {"REC-1": PPM}, "lithium": {"ORE-L": PPM}},
        "REC-1": {"cobalt": {"REC-1": PPM}},
    }
    for lot_id, want in expected.items():
        assert shares(lot_of(sourced, lot_id).origins) == want, lot_id
    steps = {i: lot_of(sourced, i).step for i in ("ORE-K", "CONC-K", "REF-1", "PRE-1", "CAT-1", "LIOH-1", "CAT-2")}
    assert steps == {"ORE-K": 0, "CONC-K": 1, "REF-1": 2, "PRE-1": 3, "CAT-1": 4, "LIOH-1": 1, "CAT-2": 2}
    masses = {i: (lot_of(sourced, i).mass_g, lot_of(sourced, i).consumed_g)
              for i in ("ORE-K", "CONC-K", "CONC-B", "REF-1", "REC-1", "PRE-1", "LIOH-1", "CAT-1", "CAT-2")}
    assert masses == {"ORE-K": (100_000, 100_000), "CONC-K": (20_000, 15_000), "CONC-B": (10_000, 10_000),
                      "REF-1": (5_000, 4_000), "REC-1": (2_000, 2_000), "PRE-1": (4_500, 4_000),
                      "LIOH-1": (2_000, 1_250), "CAT-1": (4_000, 500), "CAT-2": (1_000, 250)}
    cat = lot_of(sourced, "CAT-1")
    assert (cat.process, [(m.lot, m.mass_g) for m in cat.made_from], cat.producer, cat.custodian) == (
        "transform:cathode", [("PRE-1", 4_000), ("LIOH-1", 1_000)], "sup", "org:sup")
    rec = lot_of(sourced, "REC-1")
    assert (rec.process, rec.recovered_from, rec.origins[0].recycled, rec.origins[0].country) == (
        "recovered", ["OLD:X1"], True, "DE")


def test_the_packs_origin_answers_every_mine_and_the_recycled_share(sourced: Chain) -> None:
    res = lq.origin(view(sourced), lq.ItemQuery(id="PACK:P1"))
    assert (res["id"], res["kind"], res["steps"]) == ("PACK:P1", "part", 4)
    assert [(x["lot"], x["process"], x["step"]) for x in res["lots"]] == [
        ("CAT-1", "transform:cathode", 4), ("CAT-2", "transform:cathode", 2)]
    by = {m["material"]: m for m in res["materials"]}
    assert sorted(by) == ["cobalt", "lithium"]
    assert {o["lot"]: o["ppm"] for o in by["cobalt"]["origins"]} == PACK_COBALT
    assert {o["lot"]: o["ppm"] for o in by["lithium"]["origins"]} == {"ORE-L": PPM}
    for m in by.values():
        assert sum(o["ppm"] for o in m["origins"]) == PPM
    assert (by["cobalt"]["recycled_ppm"], by["lithium"]["recycled_ppm"]) == (466_667, 0)
    where = {o["lot"]: (o["mine"], o["country"], o["producer"], o["recycled"],
                        [(a["auditor"], a["result"], a["report"]) for a in o["attestations"]])
             for m in by.values() for o in m["origins"]}
    assert where == {
        "ORE-K": ("Kamoto", "CD", "sup", False, [("audit", "conformant", "RMAP-K")]),
        "ORE-B": ("Bou Azzer", "MA", "sup2", False, [("audit", "conformant", "RMAP-B")]),
        "REC-1": ("", "DE", "scrap", True, [("audit", "conformant", "RMAP-R")]),
        "ORE-L": ("Greenbushes", "AU", "sup", False, []),  # lithium: never voted, never attested
    }


def test_the_exact_rational_shares_round_to_the_answer(sourced: Chain) -> None:
    """The pack's shares computed here from the masses alone, as exact fractions, and rounded by
    largest remainder: the same numbers."""
    cat1 = {"ORE-K": Fraction(15, 25) * Fraction(4, 5), "ORE-B": Fraction(10, 25) * Fraction(4, 5),
            "REC-1": Fraction(1, 5)}
    cat2 = {"REC-1": Fraction(1)}
    w1, w2 = Fraction(2 * 500, 10), Fraction(1 * 250, 5)  # two cells of C1, one of C2
    exact = {k: (w1 * cat1.get(k, 0) + w2 * cat2.get(k, 0)) / (w1 + w2) * PPM for k in cat1}
    floors = {k: int(v) for k, v in exact.items()}
    left = PPM - sum(floors.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - floors[k]), k))[:left]:
        floors[k] += 1
    assert floors == PACK_COBALT


def test_a_batch_and_a_lot_answer_their_own_origins(sourced: Chain) -> None:
    c2 = lq.origin(view(sourced), lq.ItemQuery(id="CELL:C2"))
    assert c2["kind"] == "batch" and {m["material"]: m["recycled_ppm"] for m in c2["materials"]} == {
        "cobalt": PPM, "lithium": 0}
    pre = lq.origin(view(sourced), lq.ItemQuery(id="PRE-1"))
    assert pre["kind"] == "lot" and shares(o | {"material": m["material"]} for m in pre["materials"]
                                           for o in m["origins"]) == {
        "cobalt": {"ORE-B": 320_000, "ORE-K": 480_000, "REC-1": 200_000}}
    cell = lq.origin(view(sourced), lq.ItemQuery(id="CELL:C1-3"))  # a loose cell of C1: CAT-1's shares
    assert {o["lot"]: o["ppm"] for m in cell["materials"] if m["material"] == "cobalt" for o in m["origins"]} == {
        "ORE-B": 320_000, "ORE-K": 480_000, "REC-1": 200_000}


def test_the_passport_holds_the_origins_the_recycled_content_and_the_origin_attestations(sourced: Chain) -> None:
    p = PASSPORTS.get(sourced.ledger, "PACK:P1")
    assert p is not None
    assert (p.version, p.manufacturer, p.issuer, p.part_number, p.serial, p.chemistry, p.time) == (
        2, "sup", SUP.did, "PACK", "P1", "NMC811-rev", at(102))
    assert shares(p.materials) == {"cobalt": PACK_COBALT, "lithium": {"ORE-L": PPM}}
    assert [(s.lot, s.mine, s.country, s.recycled) for s in p.materials] == [
        ("ORE-B", "Bou Azzer", "MA", False), ("ORE-K", "Kamoto", "CD", False), ("REC-1", "", "DE", True),
        ("ORE-L", "Greenbushes", "AU", False)]
    assert [(r.material, r.ppm) for r in p.recycled] == [("cobalt", 466_667), ("lithium", 0)]
    assert [(a.lot, a.auditor, a.report, a.result, a.valid_until) for a in p.attestations] == [
        ("ORE-B", "audit", "RMAP-B", "conformant", VALID_UNTIL),
        ("ORE-K", "audit", "RMAP-K", "conformant", VALID_UNTIL),
        ("REC-1", "audit", "RMAP-R", "conformant", VALID_UNTIL)]
    answer = lq.passport(view(sourced), lq.ItemQuery(id="PACK:P1"))
    origin = lq.origin(view(sourced), lq.ItemQuery(id="PACK:P1"))
    assert shares(answer["materials"]) == shares(o | {"material": m["material"]} for m in origin["materials"]
                                                 for o in m["origins"])
    assert answer["recycled"] == [{"material": "cobalt", "ppm": 466_667}, {"material": "lithium", "ppm": 0}]


# ---------------------------------------------------------------- where and how long


def test_a_lots_route_has_its_stays_and_legs_from_the_declared_times(sourced: Chain) -> None:
    res = lq.route(view(sourced), lq.ItemQuery(id="CONC-B"))
    assert [(h["seq"], h["kind"], h["party"], h["receiver"], h["location"], h["time"], h["held_ms"])
            for h in res["handoffs"]] == [
        (1, "made", "org:sup2", "", "MAOUZ", at(3), 0),
        (2, "shipped", "org:sup2", "org:sup", "MAOUZ", at(3.5), 30 * MIN),
        (3, "received", "org:sup", "", "BEANR", at(39.5), 0)]
    assert res["legs"] == [{"sender": "org:sup2", "receiver": "org:sup", "origin": "MAOUZ", "shipped": at(3.5),
                            "destination": "BEANR", "received": at(39.5), "duration_ms": 36 * HOUR}]
    assert res["stays"] == [
        {"custodian": "org:sup2", "location": "MAOUZ", "from": at(3), "until": at(3.5), "dwell_ms": 30 * MIN},
        {"custodian": "org:sup", "location": "BEANR", "from": at(39.5), "until": 0, "dwell_ms": at(110) - at(39.5)}]
    assert res["now"] == {"in_transit": False, "custodian": "org:sup", "location": "BEANR"}
    assert res["as_of"] == at(110)


def test_a_route_in_transit_says_since_when(sourced: Chain) -> None:
    res = lq.route(view(sourced), lq.ItemQuery(id="LIOH-1"))
    assert res["now"] == {"in_transit": True, "sender": "org:sup", "receiver": "org:sup2", "origin": "HUPEC",
                          "shipped": at(71.5), "for_ms": at(110) - at(71.5)}
    pack = lq.route(view(sourced), lq.ItemQuery(id="PACK:P1"))
    assert [(h["kind"], h["location"], h["time"]) for h in pack["handoffs"]] == [
        ("made", "", at(60)), ("shipped", "", at(70)), ("received", "DEWOB", at(90))]
    assert pack["legs"][0]["duration_ms"] == 20 * HOUR


def test_legs_of_a_part_number_and_of_a_supplier_slowest_first(sourced: Chain) -> None:
    packs = lq.legs(view(sourced), lq.ProductQuery(part_number="PACK"))
    assert [(x["item"], x["duration_ms"]) for x in packs["legs"]] == [("PACK:P3", 30 * HOUR), ("PACK:P1", 20 * HOUR)]
    sup2 = lq.legs(view(sourced), lq.ProductQuery(supplier="sup2"))  # the lots sup2 produced
    assert [(x["item"], x["kind"], x["product"], x["duration_ms"]) for x in sup2["legs"]] == [
        ("CONC-B", "lot", "cobalt-concentrate", 36 * HOUR)]
    scrap = lq.legs(view(sourced), lq.ProductQuery(supplier="scrap"))
    assert [(x["item"], x["origin"], x["destination"], x["duration_ms"]) for x in scrap["legs"]] == [
        ("REC-1", "DEHAM", "BEANR", 6 * HOUR)]


def test_lanes_rank_sender_receiver_and_places_by_mean_duration(sourced: Chain) -> None:
    res = lq.lanes(view(sourced), lq.ProductQuery(supplier="sup"))
    assert res["lanes"] == [
        {"sender": "org:sup", "receiver": "org:oem", "origin": "", "destination": "DEWOB", "legs": 2,
         "mean_ms": 25 * HOUR, "min_ms": 20 * HOUR, "max_ms": 30 * HOUR},
        {"sender": "org:sup", "receiver": "org:oem", "origin": "", "destination": "", "legs": 1,
         "mean_ms": 1 * HOUR, "min_ms": 1 * HOUR, "max_ms": 1 * HOUR}]  # OLD:X1, at the blocks' times


def test_stock_in_transit_counts_items_and_units(sourced: Chain) -> None:
    res = lq.in_transit(view(sourced), lq.ProductQuery(supplier="sup"))
    assert (res["items"], res["units"], res["as_of"]) == (2, {"lot": 750, "part": 1}, at(110))  # LIOH-1's 750 g left
    assert [(x["item"], x["kind"], x["product"], x["qty"], x["origin"], x["since"], x["for_ms"])
            for x in res["in_transit"]] == [
        ("PACK:P2", "part", "PACK", 1, "HUPEC", at(71), at(110) - at(71)),
        ("LIOH-1", "lot", "lithium-hydroxide", 750, "HUPEC", at(71.5), at(110) - at(71.5))]
    packs = lq.in_transit(view(sourced), lq.ProductQuery(part_number="PACK"))
    assert (packs["items"], packs["units"], [x["item"] for x in packs["in_transit"]]) == (1, {"part": 1}, ["PACK:P2"])


def test_materials_of_a_lot_consumed_by_its_made_lots_are_listed(sourced: Chain) -> None:
    res = queries.lot(view(sourced), queries.RefQuery(id="LIOH-1"))
    assert sorted((u["batch"], u["mass_g"]) for u in res["used_by"]) == [("lot/CAT-1", 1_000), ("lot/CAT-2", 250)]
    assert res["consumed_g"] == 1_250


@pytest.mark.parametrize("query,params,error", [
    pytest.param(lq.origin, lq.ItemQuery(id="NOPE"), NotFound, id="origin_of_an_unknown_lot"),
    pytest.param(lq.origin, lq.ItemQuery(id="PACK:P9"), NotFound, id="origin_of_an_unknown_part"),
    pytest.param(lq.origin, lq.ItemQuery(id="lot/CAT-1"), NotFound, id="origin_of_an_index_item_id"),
    pytest.param(lq.route, lq.ItemQuery(id="NOPE"), NotFound, id="route_of_an_unknown_lot"),
    pytest.param(lq.passport, lq.ItemQuery(id="PACK:P2"), NotFound, id="passport_never_issued"),
    pytest.param(lq.passport, lq.ItemQuery(id="PACK/P1"), NotFound, id="passport_of_a_malformed_id"),
])
def test_sourcing_queries_refuse_what_they_cannot_answer(sourced: Chain, query: Any, params: Any,
                                                         error: type) -> None:
    with pytest.raises(error):
        query(view(sourced), params)


def test_a_part_number_and_a_supplier_together_narrow_and_neither_is_everything(sourced: Chain) -> None:
    """The schema cannot say "exactly one", so both filter together, and neither asks for everything
    (the read policy lets only regulators, police and nodes ask that)."""
    both = lq.legs(view(sourced), lq.ProductQuery(part_number="PACK", supplier="sup"))["legs"]
    assert both == lq.legs(view(sourced), lq.ProductQuery(part_number="PACK"))["legs"]
    assert lq.legs(view(sourced), lq.ProductQuery(part_number="PACK", supplier="sup2"))["legs"] == []
    everything = lq.lanes(view(sourced), lq.ProductQuery())["lanes"]
    by_sup = lq.lanes(view(sourced), lq.ProductQuery(supplier="sup"))["lanes"]
    assert sum(x["legs"] for x in everything) >= sum(x["legs"] for x in by_sup) > 0
    assert lq.product_parties(view(sourced), lq.ProductQuery()) == set()


def test_a_shipments_held_time_counts_from_the_receipt_not_from_the_last_use() -> None:
    """sup2 receives L at hour 10, splits a piece off at hour 20 and ships L at hour 25: it held L
    15 h (the route's stay says so), but the shipment's handoff row says 5 h. The bound on a declared
    time (not before the last use) is passed to ``logistics.shipped`` as the handoff's ``since``,
    which also measures ``held_ms``; the bound and the held time need separate values."""
    chain = parts_chain()
    all_ok(chain, (SUP, registered("L", 1_000)), time=at(1))
    all_ok(chain, (SUP, ship_lots("sup2", "L")), time=at(2))
    all_ok(chain, (SUP2, receive_lots("L")), time=at(10))
    all_ok(chain, (SUP2, split("L", ("S", 10))), time=at(20))
    all_ok(chain, (SUP2, ship_lots("sup", "L")), time=at(25))
    res = lq.route(SourcingView(chain), lq.ItemQuery(id="L"))
    assert res["stays"][1]["dwell_ms"] == 15 * HOUR
    assert res["handoffs"][-1]["held_ms"] == 15 * HOUR


# ---------------------------------------------------------------- the same queries over a live node


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PartsNode]:
    n = PartsNode(tmp_path_factory.mktemp("sourcing-chain"))
    try:
        yield n
    finally:
        n.close()


def made_at(node: PartsNode, lot_id: str) -> int:
    return node.q("parts", "route", id=lot_id)["handoffs"][0]["time"]


def after(t: int) -> None:
    """Wait until the wall clock has passed ``t`` (a declared handoff time may not be after its block)."""
    while now_ms() <= t + 5:
        time.sleep(0.01)


def test_lanes_legs_and_stock_in_transit_over_a_live_node(node: PartsNode) -> None:
    """Declared times on a node are bounded by its blocks' wall-clock times and by each lot's making:
    each leg ships at the lot's making and is received a fixed number of ms later (the test waits
    for the clock to pass it), so every duration is exact."""
    for lot_id in ("NA", "NB", "NC", "ND"):
        node.must(SUP, registered(lot_id, 1_000 + len(lot_id), location="DEHAM"))
    t = {lot_id: made_at(node, lot_id) for lot_id in ("NA", "NB", "NC", "ND")}
    node.all((SUP, ship_lots("sup2", "NA", location="DEHAM", at=t["NA"])),
             (SUP, ship_lots("sup2", "NB", location="DEHAM", at=t["NB"])),
             (SUP, ship_lots("oem", "NC", location="DEHAM", at=t["NC"])),
             (SUP, ship_lots("oem", "ND", location="DEHAM", at=t["ND"])))
    for lot_id, who, ms, place in (("NC", OEM, 100, "DEWOB"), ("NA", SUP2, 300, "BEANR"), ("NB", SUP2, 500, "BEANR")):
        after(t[lot_id] + ms)
        node.must(who, receive_lots(lot_id, location=place, at=t[lot_id] + ms))
    lanes = node.q("parts", "lanes", supplier="sup")["lanes"]
    assert lanes == [
        {"sender": "org:sup", "receiver": "org:sup2", "origin": "DEHAM", "destination": "BEANR", "legs": 2,
         "mean_ms": 400, "min_ms": 300, "max_ms": 500},
        {"sender": "org:sup", "receiver": "org:oem", "origin": "DEHAM", "destination": "DEWOB", "legs": 1,
         "mean_ms": 100, "min_ms": 100, "max_ms": 100}]
    legs = node.q("parts", "legs", supplier="sup")["legs"]
    assert [(x["item"], x["duration_ms"]) for x in legs] == [("NB", 500), ("NA", 300), ("NC", 100)]
    stock = node.q("parts", "in_transit", supplier="sup")
    assert (stock["items"], stock["units"]) == (1, {"lot": 1_002})
    (row,) = stock["in_transit"]
    assert (row["item"], row["kind"], row["product"], row["receiver"], row["since"], row["qty"]) == (
        "ND", "lot", "cobalt", "org:oem", t["ND"], 1_002)
    assert row["for_ms"] >= t["NB"] + 500 - t["ND"]  # the view's block is NB's receipt or later
    route = node.q("parts", "route", id="NA")
    assert route["legs"] == [{"sender": "org:sup", "receiver": "org:sup2", "origin": "DEHAM", "shipped": t["NA"],
                              "destination": "BEANR", "received": t["NA"] + 300, "duration_ms": 300}]
    assert node.q("parts", "origin", id="NA")["materials"][0]["origins"][0]["ppm"] == PPM
