"""Tests written from a mutation run (mutmut 3) over the sourcing rules (``parts/materials.py``,
``parts/origins.py``, ``parts/logistics.py``, ``handlers.recover_material`` and
``handlers.issue_passport``, with the shipping of parts and batches in ``handlers._ship_or_receive``):
each test pins what some mutant changed without any other sourcing test failing.

- the exact detail of each refusal (``EXACT``): a receipt records its code and detail (hashed into the
  block), and the sentence a person reads is rendered from them, so every field is pinned, not only a
  word of the sentence;
- what each step records on its lots, every field: mine and country only on a mined or split lot,
  ``made_from``, ``process``, ``step``, ``inherited``, ``used`` and the handoff; the
  ``parts.lot_made`` events; the consumption index rows with their heights;
- the handoff, leg and transit index rows, whole, for a lot, a batch and a part shipped twice from
  places other than where they were made (the leg's origin is the shipment's place, the next
  shipment's the receipt's), and the part history entries that carry place and time;
- a passport's and a recovery's history entries and events, and a recycled share summed over two
  recycled origins, one sorting before the mines;
- each cap at its bound (a lot and a passport of 256 origins pass, 257 do not, nor 257 inherited
  attestations, nor a conformance check reading more than 1,000 lots), a recovery of exactly the
  declared mass of a pack and what is inside it, a legacy lot with no
  recorded origins (its own origin), and ``origins.mix``'s rounding: the ppm left by the floors go
  to the largest remainders (also as a property), an input of weight 0 anywhere is ignored.

Score over those functions: 1,196 of 1,338 mutants killed by the other sourcing tests (89.4 %),
1,326 with these (99.1 %). The 12 left: 9 equivalent (in ``mix``, ``weight_of``'s values are never
read, only its keys: 4; an input of weight 0, and a material with no positive share, change nothing
either way: 2, ``w < 0`` and ``break``; a held time for a handoff with no previous time, ``since``
0, which no item has: 2; a lot's custodian normalised on shipment, "" only on lots from before
custody of lots: 1), and 3 moving the conformance walk's cap of 1,000 by one visit, left open while
the walk counts paths rather than lots (strict xfail in test_sourcing_refusals).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blokauto.core.crypto import KeyPair
from blokauto.modules.parts.materials import lot_origins
from blokauto.modules.parts.messages import RegisterPartType, Ship
from blokauto.modules.parts.origins import PPM, mix, recycled_ppm
from blokauto.modules.parts.spec import HANDOFFS, LEGS, LOT_USES, TRANSIT
from blokauto.modules.parts.state import PASSPORTS, Attestation, Handoff, LotInput, MaterialLot, Origin

from conftest import T0, Chain, K, build_tx
from helpers.parts import (AUDIT, OEM, SCRAP, SUP, SUP2, V1, VALID_UNTIL, assemble, batch, mint, mint_batch, ok, part,
                           part_history, receive, ship)
from helpers.sourcing import (DAY, HOUR, all_ok, attest, attested, does, harvested, installed, lot_of, merge,
                              ore_in_transit, passport, receive_lots, recover, registered, required, run_at, sentence,
                              ship_lots, split, then, transform, world)
from helpers.vehicles import snapshot

SHORT = T0 + 600_000
RULE = "attestation_required:cobalt is 1"
BACKDATE = 7 * DAY


def rows(chain: Chain, table: Any, **where: Any) -> list[dict[str, Any]]:
    return [r for r in chain.ledger.index[table.name].values() if all(r[k] == v for k, v in where.items())]


def at(hours: float) -> int:
    return T0 + int(hours * HOUR)


# ---------------------------------------------------------------- every refusal's detail, exact


@dataclass(frozen=True)
class Exact:
    setup: Callable[[Chain], None] | None
    sender: KeyPair
    msg: Any
    code: str
    detail: dict[str, Any]
    time: int | None = None


def x(name: str, setup: Any, sender: KeyPair, msg: Any, code: str, time: int | None = None, **detail: Any) -> Any:
    return pytest.param(Exact(setup, sender, msg, code, detail, time), id=name)


def nc(lot: str, use: str, reason: str, auditor: str) -> dict[str, Any]:
    return {"lot": lot, "use": use, "reason": reason, "rule": RULE, "auditor": auditor}


E1 = "consumed into batch ELEC:E1"
BATCH = mint_batch("ELEC", "E1", 10, ("ORE", 100))

EXACT = [
    x("split_listed_twice", None, SUP, split("ORE", ("A", 1), ("A", 1)), "assembly_rule",
      reason="a lot is listed twice in the split"),
    x("split_into_itself", None, SUP, split("ORE", ("ORE", 1)), "assembly_rule",
      reason="a lot is listed twice in the split"),
    x("merge_input_listed_twice", None, SUP, merge("M", ("ORE", 1), ("ORE", 2)), "assembly_rule",
      reason="a lot is listed twice in the inputs"),
    x("transform_input_listed_twice", None, SUP, transform("t", [("ORE", 1), ("ORE", 1)], [("C", "x", 1)]),
      "assembly_rule", reason="a lot is listed twice in the inputs"),
    x("transform_output_listed_twice", None, SUP, transform("t", [("ORE", 9)], [("C", "x", 1), ("C", "y", 1)]),
      "assembly_rule", reason="a lot is listed twice in the outputs"),
    x("merge_into_a_new_lot_it_lists", None, SUP, merge("X", ("X", 1), ("ORE", 1)), "assembly_rule",
      reason="the merged lot must be a new lot, not one of its inputs"),
    x("transform_output_an_input", None, SUP, transform("t", [("ORE", 9)], [("ORE", "x", 1)]), "assembly_rule",
      reason="an output of a transformation must be a new lot, not one of its inputs"),
    x("merge_two_materials", None, SUP, merge("M", ("ORE", 1), ("NI", 1)), "wrong_material",
      reason="a merge takes lots of one material, not cobalt, nickel; a process that combines materials is a "
             "transformation (parts.transform_lots)"),
    x("split_beyond_what_is_left", None, SUP, split("ORE", ("A", 6_000), ("B", 4_001)), "mass_balance",
      what="Splitting lot 'ORE'", reason="the new lots weigh 10001 g, the lot has 10000 g left"),
    x("transform_beyond_the_yield", None, SUP,
      transform("roast", [("ORE", 600), ("ORE2", 400)], [("C", "x", 300), ("T", "y", 201)], yield_ppm=500_000),
      "mass_balance", what="Transformation 'roast'",
      reason="its outputs weigh 501 g; 1000 g of inputs at a yield of 500000 ppm make at most 500 g"),
    x("batch_beyond_what_is_left", None, SUP, mint_batch("ELEC", "E1", 10, ("ORE", 10_001)),
      "material_overconsumed", lot="ORE", remaining=10_000, material="cobalt", wanted=10_001),
    x("merge_beyond_what_is_left", does(SUP, split("NI", ("N1", 3_000))), SUP, merge("M", ("N1", 1), ("NI", 1_001)),
      "material_overconsumed", lot="NI", remaining=1_000, material="nickel", wanted=1_001),
    x("ship_a_consumed_lot", does(SUP, split("ORE", ("S", 10_000))), SUP, ship_lots("oem", "ORE"),
      "material_overconsumed", lot="ORE", remaining=0, material="cobalt", wanted=1),
    x("ship_a_lot_in_transit", ore_in_transit, SUP, ship_lots("oem", "ORE"), "lot_in_transit", lot="ORE",
      to="org:sup2"),
    x("split_a_lot_in_transit", ore_in_transit, SUP, split("ORE", ("A", 1)), "lot_in_transit", lot="ORE",
      to="org:sup2"),
    x("ship_anothers_lot", None, SUP2, ship_lots("oem", "ORE"), "not_custodian", item="lot ORE", custodian="org:sup",
      action="ship"),
    x("split_anothers_lot", None, SUP2, split("ORE", ("A", 1)), "not_custodian", item="lot ORE",
      custodian="org:sup", action="split"),
    x("batch_of_anothers_lot", None, SUP, mint_batch("ELEC", "E1", 1, ("OREB", 1)), "not_custodian",
      item="lot OREB", custodian="org:sup2", action="consume"),
    x("receive_a_lot_held", None, SUP2, receive_lots("ORE"), "not_in_transit", item="lot ORE", receiver=SUP2.did,
      status="held by org:sup"),
    x("receive_a_lot_shipped_to_another", ore_in_transit, OEM, receive_lots("ORE"), "not_in_transit",
      item="lot ORE", receiver=OEM.did, status="in transit to org:sup2"),
    x("unknown_lot", None, SUP, split("NOPE", ("A", 1)), "unknown_lot", lot="NOPE"),
    x("lot_exists", None, SUP, split("ORE", ("ORE2", 1)), "lot_exists", lot="ORE2"),
    x("ship_to_an_organisation_that_is_not", None, SUP, ship_lots("org:nosuch", "ORE"), "assembly_rule",
      reason="org:nosuch is no active organisation of the consortium: nobody could receive the shipment"),
    x("ship_to_org_and_no_id", None, SUP, Ship(to="org:", lots=["ORE"]), "assembly_rule",
      reason="'org:' is not a custodian: use org:<id> or a did:key"),
    x("ship_to_an_org_with_a_slash", None, SUP, Ship(to="org:sup/x", lots=["ORE"]), "assembly_rule",
      reason="'org:sup/x' is not a custodian: use org:<id> or a did:key"),
    x("ship_to_a_bad_did_key", None, SUP, Ship(to="did:key:zNOPE", lots=["ORE"]), "assembly_rule",
      reason="'did:key:zNOPE' is not a custodian: use org:<id> or a did:key"),
    x("no_attestation", required, SUP, BATCH, "lot_not_conformant", **nc("ORE", E1, "it has no attestation", "none")),
    x("own_attestation_non_conformant", then(required, attested("ORE", "non_conformant", report="FMA-9")), SUP, BATCH,
      "lot_not_conformant", **nc("ORE", E1, "its RMAP attestation is non-conformant (report FMA-9)", "audit")),
    x("own_attestation_expired", then(required, attested("ORE", valid_until=SHORT)), SUP, BATCH, "lot_not_conformant",
      time=SHORT, **nc("ORE", E1, f"its RMAP attestation expired at {SHORT} (block time {SHORT})", "audit")),
    x("inherited_attestation_non_conformant",
      then(required, attested("ORE", "non_conformant"), does(SUP, split("ORE", ("S", 10)))), SUP,
      mint_batch("ELEC", "E1", 1, ("S", 1)), "lot_not_conformant",
      **nc("S", E1, "its RMAP attestation (inherited from lot 'ORE') is non-conformant (report FMA-1)", "audit")),
    x("merged_from_an_unattested_lot",
      then(attested("ORE"), does(SUP, merge("M", ("ORE", 10), ("ORE2", 10))), required), SUP,
      mint_batch("ELEC", "E1", 1, ("M", 1)), "lot_not_conformant",
      **nc("M", E1, "it was split or merged from lot 'ORE2', which has no attestation, and has none of its own",
           "none")),
    x("merged_input_non_conformant", then(required, attested("ORE"), attested("ORE2", "non_conformant", report="R7")),
      SUP, merge("M", ("ORE", 10), ("ORE2", 10)), "lot_not_conformant",
      **nc("ORE2", "merged into lot M", "its RMAP attestation is non-conformant (report R7)", "audit")),
    x("transformed_input_unattested", required, SUP, transform("roast", [("NI", 1), ("ORE", 1)], [("C", "x", 1)]),
      "lot_not_conformant", **nc("ORE", "transformed by roast", "it has no attestation", "none")),
    x("ship_after_the_block", None, SUP, ship_lots("sup2", "ORE", at=at(10) + 1), "bad_handoff_time", time=at(10),
      item="lot ORE", at=at(10) + 1, reason="after the block's time", backdate_ms=BACKDATE, since=T0 + 3),
    x("ship_before_the_backdate_window", None, SUP, ship_lots("sup2", "ORE", at=at(200) - BACKDATE - 1),
      "bad_handoff_time", time=at(200), item="lot ORE", at=at(200) - BACKDATE - 1, reason="too long before the block",
      backdate_ms=BACKDATE, since=T0 + 3),
    x("ship_before_it_was_made", None, SUP, ship_lots("sup2", "ORE", at=T0 + 2), "bad_handoff_time", item="lot ORE",
      at=T0 + 2, reason="before its previous handoff", backdate_ms=BACKDATE, since=T0 + 3),
    x("ship_a_part_before_it_was_made", None, SUP, ship_lots("oem", items=("GEAR:G1",), at=T0 + 2),
      "bad_handoff_time", item="GEAR:G1", at=T0 + 2, reason="before its previous handoff", backdate_ms=BACKDATE,
      since=T0 + 3),
    x("ship_a_lot_before_its_last_split", lambda c: all_ok(c, (SUP, split("ORE", ("S", 1))), time=at(5)), SUP,
      ship_lots("sup2", "ORE", at=at(5) - 1), "bad_handoff_time", time=at(6), item="lot ORE", at=at(5) - 1,
      reason="before its previous handoff", backdate_ms=BACKDATE, since=at(5)),
    x("recover_a_part_listed_twice", harvested, SCRAP, recover("REC", "GEAR:G2", "GEAR:G2"), "assembly_rule",
      reason="a part is listed twice"),
    x("recover_a_part_with_no_serial", harvested, SCRAP, recover("REC", "GEAR:"), "unknown_part", part="GEAR:"),
    x("recover_an_installed_part", installed, SCRAP, recover("REC", "GEAR:G2"), "not_recoverable", part="GEAR:G2",
      status="installed", custodian=f"vin:{V1}"),
    x("recover_more_than_the_parts_declare", harvested, SCRAP, recover("REC", "GEAR:G2", mass_g=5_001),
      "mass_balance", what="Recovering lot 'REC'",
      reason="5001 g cannot come from parts whose types declare 5000 g (a part type's supplier declares its mass_g; "
             "undeclared counts 0 g)"),
    x("recover_more_than_a_pack_and_its_gear_declare",
      then(does(SUP, assemble("PACK:K1", "GEAR:G1")), does(SUP, ship("scrap", "PACK:K1")),
           does(SCRAP, receive("PACK:K1"))), SCRAP, recover("REC", "PACK:K1", mass_g=5_001), "mass_balance",
      what="Recovering lot 'REC'",
      reason="5001 g cannot come from parts whose types declare 5000 g (a part type's supplier declares its mass_g; "
             "undeclared counts 0 g)"),
    x("batch_names_a_lot_with_0_g", None, SUP, mint_batch("ELEC", "E0", 1, ("ORE2", 5), ("ORE", 0)), "mass_balance",
      what="Batch ELEC:E0", reason="it lists lot 'ORE' with 0 g; list only what it consumed"),
    x("ship_to_itself", None, SUP, ship_lots("sup", "ORE"), "assembly_rule",
      reason="lot ORE is held by org:sup: a shipment goes to another custodian"),
    x("ship_to_its_own_key", None, SUP, ship_lots(SUP.did, "ORE"), "assembly_rule",
      reason="lot ORE is held by org:sup: a shipment goes to another custodian"),
    x("passport_of_no_battery", None, SUP, passport("GEAR:G1"), "not_a_battery_pack", part="GEAR:G1",
      category="test"),
    x("passport_by_another", None, SUP2, passport("PACK:K1"), "not_the_maker", part="PACK:K1", maker="sup"),
    x("attest_at_the_block_time", None, AUDIT, attest("ORE", valid_until=at(3)), "assembly_rule", time=at(3),
      reason=f"valid_until must be after the block's time {at(3)} and at most {5 * 366 * DAY} ms later "
             f"(attestation_max_ms), not {at(3)}"),
]


@pytest.mark.parametrize("case", EXACT)
def test_each_refusal_records_its_whole_detail(case: Exact) -> None:
    chain = world()
    if case.setup is not None:
        case.setup(chain)
    expires = {} if case.time is None else {"expires": case.time + HOUR // 2}
    before = snapshot(chain)
    receipt = chain.block(build_tx(case.sender, case.msg, **expires), time=case.time).receipts[0]
    assert (receipt.ok, receipt.code, receipt.detail, receipt.events) == (False, case.code, case.detail, []), \
        sentence(receipt) if receipt.code else receipt
    assert snapshot(chain) == before


# ---------------------------------------------------------------- what each step records, whole


def fields(lot: MaterialLot) -> dict[str, Any]:
    """Every field of a lot (so a comparison names the field that differs)."""
    return msgspec.structs.asdict(lot)


def origin(material: str, lot: str, mine: str = "Kamoto", country: str = "CD", ppm: int = PPM,
           recycled: bool = False) -> Origin:
    return Origin(material, lot, mine, country, ppm, recycled)


def test_a_split_records_its_children_whole_and_when_the_lot_was_used() -> None:
    chain = world()
    attested("ORE")(chain)
    (receipt,) = all_ok(chain, (SUP, split("ORE", ("S1", 600), ("S2", 400), location="BEANR")), time=at(2))
    h = chain.ledger.head.height
    att = Attestation("audit", "RMAP", "conformant", "FMA-1", h - 1, VALID_UNTIL, "ORE")
    assert fields(lot_of(chain, "S1")) == fields(MaterialLot(
        "S1", "cobalt", 600, 0, "Kamoto", "CD", "sup", custodian="org:sup", origins=[origin("cobalt", "ORE")],
        made_from=[LotInput("ORE", 600)], process="split", step=0, inherited=[att],
        handoff=Handoff(at(2), "BEANR", 1)))
    assert (lot_of(chain, "ORE").consumed_g, lot_of(chain, "ORE").used) == (1_000, at(2))
    assert receipt.events == [
        {"type": "parts.lot_made", "lot": "S1", "material": "cobalt", "mass_g": 600, "process": "split"},
        {"type": "parts.lot_made", "lot": "S2", "material": "cobalt", "mass_g": 400, "process": "split"}]
    assert sorted((r["batch"], r["mass_g"], r["height"]) for r in rows(chain, LOT_USES, lot="ORE")) == [
        ("lot/S1", 600, h), ("lot/S2", 400, h)]
    # a split of the split records the attestation as made for ORE; one of an unattested lot, none
    all_ok(chain, (SUP, split("S1", ("S11", 100))), (SUP, split("ORE2", ("U1", 100))), (SUP, split("U1", ("U11", 10))))
    assert (lot_of(chain, "S11").inherited, lot_of(chain, "U11").inherited) == ([att], [])


def test_a_merge_records_its_lot_whole_with_each_attestation_once() -> None:
    chain = world()
    attested("ORE")(chain)
    h_att = chain.ledger.head.height
    all_ok(chain, (SUP, split("ORE", ("S1", 600), ("S2", 400))),
           (SUP, transform("calcine", [("ORE2", 1_000)], [("C1", "cobalt", 500)])))
    (receipt,) = all_ok(chain, (SUP, merge("M", ("S1", 600), ("S2", 400), ("C1", 500), location="geo:51.22,4.4")),
                        time=at(3))
    h = chain.ledger.head.height
    assert fields(lot_of(chain, "M")) == fields(MaterialLot(
        "M", "cobalt", 1_500, 0, "", "", "sup", custodian="org:sup",
        origins=[origin("cobalt", "ORE", ppm=666_667), origin("cobalt", "ORE2", ppm=333_333)],
        made_from=[LotInput("S1", 600), LotInput("S2", 400), LotInput("C1", 500)], process="merge", step=1,
        inherited=[Attestation("audit", "RMAP", "conformant", "FMA-1", h_att, VALID_UNTIL, "ORE")],
        handoff=Handoff(at(3), "geo:51.22,4.4", 1)))
    assert receipt.events == [{"type": "parts.lot_made", "lot": "M", "material": "cobalt", "mass_g": 1_500,
                               "process": "merge"}]
    assert [(r["lot"], r["mass_g"], r["height"]) for r in rows(chain, LOT_USES, batch="lot/M")] == [
        ("S1", 600, h), ("S2", 400, h), ("C1", 500, h)]
    assert [lot_of(chain, i).used for i in ("S1", "S2", "C1")] == [at(3)] * 3


def test_a_transformation_records_its_outputs_whole() -> None:
    chain = world()
    all_ok(chain, (SUP, split("ORE", ("S", 1_000))))
    (receipt,) = all_ok(chain, (SUP, transform("smelt", [("S", 800), ("NI", 200)],
                                               [("ALLOY", "alloy", 600), ("SLAG", "slag", 300)], yield_ppm=900_000)),
                        time=at(4))
    h = chain.ledger.head.height
    mixed = [origin("cobalt", "ORE"), origin("nickel", "NI", "Sorowako", "ID")]
    assert fields(lot_of(chain, "SLAG")) == fields(MaterialLot(
        "SLAG", "slag", 300, 0, "", "", "sup", custodian="org:sup", origins=mixed,
        made_from=[LotInput("S", 800), LotInput("NI", 200)], process="transform:smelt", step=1,
        handoff=Handoff(at(4), "", 1)))
    assert [e["lot"] for e in receipt.events] == ["ALLOY", "SLAG"] and receipt.events[0] == {
        "type": "parts.lot_made", "lot": "ALLOY", "material": "alloy", "mass_g": 600, "process": "transform:smelt"}
    assert sorted((r["lot"], r["batch"], r["mass_g"], r["height"]) for r in rows(chain, LOT_USES, batch="lot/ALLOY")) \
        == [("NI", "lot/ALLOY", 200, h), ("S", "lot/ALLOY", 800, h)]
    assert lot_of(chain, "NI").used == at(4)
    all_ok(chain, (SUP, split("SLAG", ("SLAG-1", 100))))  # a split keeps the step of what it splits
    assert lot_of(chain, "SLAG-1").step == 1


def test_a_registration_a_batch_and_a_recovery_record_what_they_should() -> None:
    chain = world()
    ore = lot_of(chain, "ORE")
    assert fields(ore) == fields(MaterialLot("ORE", "cobalt", 10_000, 0, "Kamoto", "CD", "sup", custodian="org:sup",
                                             origins=[origin("cobalt", "ORE")], handoff=Handoff(T0 + 3, "CDKWZ", 1)))
    assert rows(chain, HANDOFFS, item="lot/ORE") == [
        {"item": "lot/ORE", "seq": 1, "kind": "made", "party": "org:sup", "receiver": "", "location": "CDKWZ",
         "time": T0 + 3, "held_ms": 0, "height": 3}]
    all_ok(chain, (SUP, mint_batch("ELEC", "E1", 10, ("ORE", 40), ("ORE", 60))), time=at(1))
    assert rows(chain, LOT_USES, lot="ORE") == [{"lot": "ORE", "batch": "ELEC:E1", "mass_g": 100,
                                                 "height": chain.ledger.head.height}]
    assert lot_of(chain, "ORE").used == at(1)
    harvested(chain)
    (receipt,) = all_ok(chain, (SCRAP, recover("REC", "GEAR:G2", material="cobalt", mass_g=700, country="DE",
                                               location="DEHAM")), time=at(2))
    assert fields(lot_of(chain, "REC")) == fields(MaterialLot(
        "REC", "cobalt", 700, 0, "", "DE", "scrap", custodian="org:scrap",
        origins=[origin("cobalt", "REC", "", "DE", recycled=True)], process="recovered", recovered_from=["GEAR:G2"],
        handoff=Handoff(at(2), "DEHAM", 1)))
    assert receipt.events == [{"type": "parts.lot_made", "lot": "REC", "material": "cobalt", "mass_g": 700,
                               "process": "recovered"}]
    entry = part_history(chain, "GEAR:G2")[-1]
    assert (entry["type"], entry["data"], part(chain, "GEAR:G2").status) == (
        "recycled", {"lot": "REC", "material": "cobalt"}, "scrapped")


def test_a_recycler_recovers_exactly_what_a_pack_and_what_is_inside_it_declare() -> None:
    """PACK declares nothing, the gear inside it 5 kg: 5,000 g is the bound, and it is reached."""
    chain = world()
    all_ok(chain, (SUP, assemble("PACK:K1", "GEAR:G1")), (SUP, ship("scrap", "PACK:K1")), (SCRAP, receive("PACK:K1")))
    ok(chain, SCRAP, recover("REC", "PACK:K1", mass_g=5_000))
    assert (lot_of(chain, "REC").mass_g, part(chain, "PACK:K1").status) == (5_000, "scrapped")


def test_a_legacy_lot_with_no_recorded_origins_is_its_own_origin() -> None:
    legacy = MaterialLot("OLD", "cobalt", 10, 0, "Mutanda", "CD", "sup")
    assert lot_origins(legacy) == [Origin("cobalt", "OLD", "Mutanda", "CD", PPM)]


# ---------------------------------------------------------------- handoffs, legs and transit, whole


def test_a_lot_shipped_twice_records_every_handoff_leg_and_transit_row() -> None:
    """Made at CDKWZ, shipped from DEHAM (declared 2 h before its block), received at BEANR, shipped on
    with no place (from where it was received), received with no place."""
    chain = world()
    made = T0 + 3
    all_ok(chain, (SUP, ship_lots("sup2", "ORE", location="DEHAM", at=at(8))), time=at(10))
    h1 = chain.ledger.head.height
    assert rows(chain, TRANSIT) == [{"item": "lot/ORE", "kind": "lot", "product": "cobalt", "supplier": "sup",
                                     "sender": "org:sup", "receiver": "org:sup2", "origin": "DEHAM", "since": at(8),
                                     "qty": 10_000}]
    assert lot_of(chain, "ORE").handoff == Handoff(at(8), "DEHAM", 2)
    all_ok(chain, (SUP2, receive_lots("ORE", location="BEANR", at=at(20))), time=at(21))
    h2 = chain.ledger.head.height
    assert rows(chain, TRANSIT) == []
    assert (lot_of(chain, "ORE").handoff, lot_of(chain, "ORE").custodian) == (Handoff(at(20), "BEANR", 3), "org:sup2")
    all_ok(chain, (SUP2, ship_lots("oem", "ORE")), time=at(30))
    assert rows(chain, TRANSIT)[0]["origin"] == "BEANR" and rows(chain, TRANSIT)[0]["sender"] == "org:sup2"
    all_ok(chain, (OEM, receive_lots("ORE")), time=at(31))
    h4 = chain.ledger.head.height
    assert rows(chain, HANDOFFS, item="lot/ORE") == [
        {"item": "lot/ORE", "seq": 1, "kind": "made", "party": "org:sup", "receiver": "", "location": "CDKWZ",
         "time": made, "held_ms": 0, "height": 3},
        {"item": "lot/ORE", "seq": 2, "kind": "shipped", "party": "org:sup", "receiver": "org:sup2",
         "location": "DEHAM", "time": at(8), "held_ms": at(8) - made, "height": h1},
        {"item": "lot/ORE", "seq": 3, "kind": "received", "party": "org:sup2", "receiver": "", "location": "BEANR",
         "time": at(20), "held_ms": 0, "height": h2},
        {"item": "lot/ORE", "seq": 4, "kind": "shipped", "party": "org:sup2", "receiver": "org:oem",
         "location": "BEANR", "time": at(30), "held_ms": 10 * HOUR, "height": h4 - 1},
        {"item": "lot/ORE", "seq": 5, "kind": "received", "party": "org:oem", "receiver": "", "location": "",
         "time": at(31), "held_ms": 0, "height": h4}]
    assert rows(chain, LEGS, item="lot/ORE") == [
        {"item": "lot/ORE", "seq": 3, "kind": "lot", "product": "cobalt", "supplier": "sup", "sender": "org:sup",
         "receiver": "org:sup2", "origin": "DEHAM", "destination": "BEANR", "shipped": at(8), "received": at(20),
         "duration_ms": 12 * HOUR, "height": h2},
        {"item": "lot/ORE", "seq": 5, "kind": "lot", "product": "cobalt", "supplier": "sup", "sender": "org:sup2",
         "receiver": "org:oem", "origin": "BEANR", "destination": "", "shipped": at(30), "received": at(31),
         "duration_ms": 1 * HOUR, "height": h4}]


def test_a_batch_shipped_and_received_records_its_units_and_the_sender() -> None:
    chain = world()
    all_ok(chain, (SUP, mint_batch("ELEC", "E1", 10)), time=at(1))
    all_ok(chain, (SUP, ship_lots("oem", items=("ELEC:E1",), location="HUPEC", at=at(1.5))), time=at(2))
    assert rows(chain, TRANSIT) == [{"item": "ELEC:E1", "kind": "batch", "product": "ELEC", "supplier": "sup",
                                     "sender": "org:sup", "receiver": "org:oem", "origin": "HUPEC", "since": at(1.5),
                                     "qty": 10}]
    assert (batch(chain, "ELEC:E1").custodian, batch(chain, "ELEC:E1").shipped_by) == ("transit:org:oem", "org:sup")
    all_ok(chain, (OEM, receive_lots(items=("ELEC:E1",), location="DEWOB", at=at(3.5))), time=at(4))
    b = batch(chain, "ELEC:E1")
    assert (b.custodian, b.shipped_by, b.handoff) == ("org:oem", "", Handoff(at(3.5), "DEWOB", 3))
    assert rows(chain, LEGS, item="ELEC:E1") == [
        {"item": "ELEC:E1", "seq": 3, "kind": "batch", "product": "ELEC", "supplier": "sup", "sender": "org:sup",
         "receiver": "org:oem", "origin": "HUPEC", "destination": "DEWOB", "shipped": at(1.5), "received": at(3.5),
         "duration_ms": 2 * HOUR, "height": chain.ledger.head.height}]
    assert [(r["seq"], r["kind"], r["party"], r["held_ms"]) for r in rows(chain, HANDOFFS, item="ELEC:E1")] == [
        (1, "made", "org:sup", 0), (2, "shipped", "org:sup", HOUR // 2), (3, "received", "org:oem", 0)]


def test_a_part_shipped_with_place_and_time_records_them_in_its_history_and_legs() -> None:
    chain = world()
    all_ok(chain, (SUP, ship_lots("oem", items=("GEAR:G1",), location="DEHAM", at=at(1))), time=at(2))
    assert rows(chain, TRANSIT)[0] | {"since": 0} == {"item": "GEAR:G1", "kind": "part", "product": "GEAR",
                                                      "supplier": "sup", "sender": "org:sup", "receiver": "org:oem",
                                                      "origin": "DEHAM", "since": 0, "qty": 1}
    all_ok(chain, (OEM, receive_lots(items=("GEAR:G1",), location="DEWOB", at=at(5))), time=at(6))
    shipped, received = part_history(chain, "GEAR:G1")[-2:]
    assert (shipped["type"], shipped["data"]) == ("shipped", {"from": "org:sup", "to": "org:oem", "location": "DEHAM",
                                                              "at": at(1)})
    assert (received["type"], received["data"]) == ("received", {"from": "org:sup", "by": "org:oem",
                                                                 "location": "DEWOB", "at": at(5)})
    (leg,) = rows(chain, LEGS, item="GEAR:G1")
    assert (leg["kind"], leg["sender"], leg["receiver"], leg["duration_ms"]) == ("part", "org:sup", "org:oem", 4 * HOUR)


def test_a_lot_shipped_to_a_person_is_received_by_that_key_only() -> None:
    chain = world()
    alice = K("alice")
    ok(chain, SUP, ship_lots(alice.did, "ORE"))
    assert chain.run(K("bob"), receive_lots("ORE")).code == "not_in_transit"
    ok(chain, alice, receive_lots("ORE", location="DEHAM"))
    assert lot_of(chain, "ORE").custodian == alice.did
    (leg,) = rows(chain, LEGS, item="lot/ORE")
    assert (leg["sender"], leg["receiver"], leg["destination"]) == ("org:sup", alice.did, "DEHAM")
    ok(chain, alice, ship_lots("sup2", "ORE"))  # the key that holds it hands it on


def test_a_shipment_may_be_dated_at_the_lots_last_use_not_before() -> None:
    chain = world()
    all_ok(chain, (SUP, mint_batch("ELEC", "E1", 1, ("ORE", 1))), time=at(5))
    assert run_at(chain, at(6), SUP, ship_lots("sup2", "ORE", at=at(5) - 1)).code == "bad_handoff_time"
    assert run_at(chain, at(6) + 1, SUP, ship_lots("sup2", "ORE", at=at(5))).ok
    all_ok(chain, (SUP2, receive_lots("ORE", at=at(5))), time=at(7))  # a receipt is bound by the shipment only


# ---------------------------------------------------------------- passports and recovered content


def test_a_passport_sums_recycled_content_over_every_recycled_origin_and_is_recorded_as_issued() -> None:
    """Two recycled cobalt lots (AREC sorts before the mine's lot ORE, ZREC after it) in one cell batch:
    the recycled share is both of theirs, whatever the order of the origins."""
    chain = world()
    harvested(chain)
    all_ok(chain, (SUP, mint("GEAR", "G3")), (SUP, ship("scrap", "GEAR:G3")), (SCRAP, receive("GEAR:G3")))
    all_ok(chain, (SCRAP, recover("AREC", "GEAR:G2", mass_g=1_000)), (SCRAP, recover("ZREC", "GEAR:G3", mass_g=1_000)),
           (SCRAP, ship_lots("sup", "AREC", "ZREC")), (SUP, receive_lots("AREC", "ZREC")))
    all_ok(chain, (SUP, RegisterPartType(part_number="CELL", name="cell", category="cell", serialized=True)),
           (SUP, mint_batch("CELL", "C1", 2, ("AREC", 100), ("ORE", 200), ("ZREC", 100))),
           (SUP, mint("CELL", "c1", batch="C1")), (SUP, assemble("PACK:K1", "CELL:c1")))
    (receipt,) = all_ok(chain, (SUP, passport("PACK:K1")))
    p = PASSPORTS.get(chain.ledger, "PACK:K1")
    assert [(o.lot, o.ppm, o.recycled) for o in p.materials] == [
        ("AREC", 250_000, True), ("ORE", 500_000, False), ("ZREC", 250_000, True)]
    assert [(r.material, r.ppm) for r in p.recycled] == [("cobalt", 500_000)]
    assert receipt.events == [{"type": "parts.passport_issued", "pack": "PACK:K1", "version": 1}]
    entry = part_history(chain, "PACK:K1")[-1]
    assert (entry["type"], entry["data"]) == ("passport_issued", {"version": 1})
    ok(chain, SUP, passport("PACK:K1"))
    assert part_history(chain, "PACK:K1")[-1]["data"] == {"version": 2} and PASSPORTS.get(chain.ledger,
                                                                                          "PACK:K1").version == 2


def test_recycled_ppm_sums_every_recycled_origin_of_a_material() -> None:
    origins = [Origin("cobalt", "A", "", "DE", 100, True), Origin("cobalt", "B", "m", "CD", 700),
               Origin("cobalt", "C", "", "DE", 200, True), Origin("nickel", "N", "m", "ID", PPM)]
    assert recycled_ppm(origins) == {"cobalt": 300, "nickel": 0}


# ---------------------------------------------------------------- caps at their bound


def merged_groups(chain: Chain, lots: list[str], into: str, grams: int) -> None:
    """Merge ``lots`` (each ``grams``) in groups of at most 100 into G1, G2 ..., then those into ``into``."""
    groups = [lots[i:i + 100] for i in range(0, len(lots), 100)]
    all_ok(chain, *((SUP, merge(f"G{n}", *((i, grams) for i in group))) for n, group in enumerate(groups)))
    all_ok(chain, (SUP, merge(into, *((f"G{n}", grams * len(group)) for n, group in enumerate(groups)))))


def test_a_lot_and_a_passport_may_carry_256_origins_and_no_more() -> None:
    """M carries 256 cobalt origins. A pack whose cell consumed M alone has a passport of 256 origins;
    one whose cell also consumed nickel (257) is refused its passport."""
    chain = world()
    all_ok(chain, *((SUP, registered(f"O{i:03d}", 10)) for i in range(256)))
    merged_groups(chain, [f"O{i:03d}" for i in range(256)], "M", 10)
    assert len(lot_of(chain, "M").origins) == 256
    all_ok(chain, (SUP, RegisterPartType(part_number="CELL", name="cell", category="cell", serialized=True)),
           (SUP, mint_batch("CELL", "C1", 1, ("M", 10))), (SUP, mint_batch("CELL", "C2", 1, ("M", 10), ("NI", 10))),
           (SUP, mint("CELL", "c1", batch="C1")), (SUP, mint("CELL", "c2", batch="C2")), (SUP, mint("PACK", "K2")),
           (SUP, assemble("PACK:K1", "CELL:c1")), (SUP, assemble("PACK:K2", "CELL:c2")))
    ok(chain, SUP, passport("PACK:K1"))
    assert len(PASSPORTS.get(chain.ledger, "PACK:K1").materials) == 256
    receipt = chain.run(SUP, passport("PACK:K2"))
    assert (receipt.ok, receipt.code, receipt.detail) == (False, "too_many_origins", {
        "what": "The passport of PACK:K2", "count": 257, "kind": "origins (material and origin lot pairs)",
        "limit": 256})


def test_a_lot_may_not_inherit_257_distinct_attestations() -> None:
    chain = world()
    children = [f"S{i:03d}" for i in range(257)]
    for lo in range(0, 257, 100):
        ok(chain, SUP, split("ORE", *((c, 10) for c in children[lo:lo + 100])))
    all_ok(chain, *((AUDIT, attest(c, report=f"R-{c}")) for c in children))
    groups = [children[i:i + 100] for i in range(0, 257, 100)]
    all_ok(chain, *((SUP, merge(f"G{n}", *((c, 10) for c in group))) for n, group in enumerate(groups)))
    receipt = chain.run(SUP, merge("M", *((f"G{n}", 10 * len(group)) for n, group in enumerate(groups))))
    assert (receipt.ok, receipt.code, receipt.detail) == (False, "too_many_origins", {
        "what": "Lot 'M'", "count": 257, "kind": "inherited attestations", "limit": 256})


def test_a_conformance_walk_stops_past_1000_lots_and_says_so() -> None:
    """1,001 sacks split from an attested lot, merged back 100 at a time, then into one lot: a check
    of that lot would read more than 1,000 lots behind it, and is refused naming what and how many."""
    chain = world()
    attested("ORE")(chain)
    required(chain)
    sacks = [f"S{i:04d}" for i in range(1_001)]
    for lo in range(0, 1_001, 100):
        ok(chain, SUP, split("ORE", *((s, 5) for s in sacks[lo:lo + 100])))
    groups = [sacks[i:i + 100] for i in range(0, 1_001, 100)]
    all_ok(chain, *((SUP, merge(f"G{n:02d}", *((s, 5) for s in g))) for n, g in enumerate(groups) if len(g) > 1))
    all_ok(chain, (SUP, merge("M", *((f"G{n:02d}", 5 * len(g)) for n, g in enumerate(groups) if len(g) > 1),
                              (groups[-1][0], 5))))
    receipt = chain.run(SUP, mint_batch("ELEC", "E1", 1, ("M", 5)))
    assert (receipt.ok, receipt.code, receipt.detail) == (False, "too_many_origins", {
        "what": "The audit trail of lot 'M'", "count": 1_001, "kind": "distinct split and merged lots behind it",
        "limit": 1_000})


# ---------------------------------------------------------------- origins.mix's rounding


def test_mix_gives_the_ppm_left_to_the_largest_remainder_not_the_largest_share() -> None:
    """600,000.2 and 399,999.8 ppm: the floors leave one ppm, and it goes to the share whose
    remainder is larger (.8), the smaller share."""
    a, b = Origin("cobalt", "A", "", "CD", PPM), Origin("cobalt", "B", "", "CD", PPM)
    out = mix([(3_000_001, [a]), (1_999_999, [b])])
    assert [(o.lot, o.ppm) for o in out] == [("A", 600_000), ("B", 400_000)]


def test_mix_keeps_a_share_of_one_ppm() -> None:
    tiny, rest = Origin("cobalt", "A", "", "CD", 1), Origin("cobalt", "B", "", "CD", PPM - 1)
    assert [(o.lot, o.ppm) for o in mix([(1, [tiny, rest])])] == [("A", 1), ("B", PPM - 1)]


def test_mix_ignores_an_input_of_weight_0_wherever_it_is() -> None:
    a, b = Origin("cobalt", "A", "", "CD", PPM), Origin("nickel", "B", "", "ID", PPM)
    zero = Origin("cobalt", "Z", "", "CD", PPM)
    expected = [Origin("cobalt", "A", "", "CD", PPM), Origin("nickel", "B", "", "ID", PPM)]
    assert mix([(0, [zero]), (5, [a]), (7, [b])]) == mix([(5, [a]), (0, [zero]), (7, [b])]) == expected


@st.composite
def weighted(draw: Any) -> list[tuple[int, list[Origin]]]:
    lots = draw(st.lists(st.sampled_from("ABCDEFG"), min_size=2, max_size=7, unique=True))
    return [(draw(st.integers(1, 10**7)), [Origin("cobalt", lot, "", "CD", PPM)]) for lot in lots]


@settings(max_examples=150, deadline=None)
@given(weighted())
def test_mix_rounds_up_exactly_the_largest_remainders(inputs: list[tuple[int, list[Origin]]]) -> None:
    """Largest remainder: every share rounded up had a remainder at least as large as every share
    rounded down (ties to the key that sorts first)."""
    total = sum(w for w, _ in inputs)
    exact = {o[0].lot: Fraction(w * PPM, total) for w, o in inputs}
    got = {o.lot: o.ppm for o in mix(inputs)}
    up = [(exact[k] - int(exact[k]), k) for k in exact if got[k] == int(exact[k]) + 1]
    down = [(exact[k] - int(exact[k]), k) for k in exact if got[k] == int(exact[k]) and exact[k] != int(exact[k])]
    assert all(got[k] - int(exact[k]) in (0, 1) for k in exact)
    if up and down:
        assert min(r for r, _ in up) >= max(r for r, _ in down)
        for ru, ku in up:
            for rd, kd in down:
                assert ru > rd or (ru == rd and ku < kd)
