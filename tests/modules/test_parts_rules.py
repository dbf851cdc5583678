"""The parts module's domain rules, one row per rule, then the accepted paths: custody handovers,
condition logs, raw materials, assemblies, installation, removal and harvest at end of life.

Refusals are one table (``REFUSALS``): each row starts from ``supplied`` (helpers.parts), runs
its own set-up, sends one transaction and names the stable code it must fail with. Every row
also checks that the failed transaction changed nothing (state, index rows, state root) yet
consumed its id, so the same signed bytes are refused as a replay afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.parts import queries
from blokauto.modules.parts.messages import (AttestLot, ConditionReading, InstallItem, LogConditions, RegisterLogger,
                                             Ship)
from blokauto.modules.vehicles.handlers import history_head
from blokauto.modules.vehicles.messages import Deregister

from conftest import Chain, K, build_tx
from helpers.parts import (
    VALID_UNTIL,
    AUDIT,
    LOGGER_OEM,
    LOGGER_SUP,
    OEM,
    OEM2,
    SCRAP,
    SHOP,
    SUP,
    SUP2,
    V1,
    V2,
    W1,
    B,
    P,
    assemble,
    batch,
    bom,
    install,
    installations,
    lot,
    material_lot,
    mint,
    mint_batch,
    ok,
    part,
    part_history,
    part_type,
    parts_chain,
    ptype,
    receive,
    register_msg,
    remove,
    ship,
    supplied,
)
from helpers.vehicles import MemoryView, event_types, history, snapshot, vin_for

UNKNOWN_VIN = vin_for("WVW", 77)


# ---------------------------------------------------------------- set-ups (each runs after ``supplied``)


def then(*steps: Callable[[Chain], Any]) -> Callable[[Chain], None]:
    def setup(chain: Chain) -> None:
        for step in steps:
            step(chain)

    return setup


def does(sender: KeyPair, msg: Any, *co: KeyPair) -> Callable[[Chain], Any]:
    return lambda chain: ok(chain, sender, msg, *co)


v2 = does(OEM, register_msg(V2))
s1_in_v1 = does(OEM, install(V1, "BRK:S1"))
pads_in_v1 = does(OEM, install(V1, B("PAD:B1", 2)))
v1_scrapped = does(SCRAP, Deregister(vin=V1, certificate="COD-1"), OEM)
cell_in_pack = does(SUP, assemble("PACK:K1", "CELL:C-1"))
s4_to_oem = does(SUP, ship("oem", "BRK:S4"))
pads_to_shop = does(OEM, ship("shop", "PAD:B1"))
oem_logger = does(OEM, RegisterLogger(logger=LOGGER_OEM.did), LOGGER_OEM)

READING_OK = ConditionReading(time=1_000, temp_dc=200, shock_mg=100, humidity_pct=40)


def log(ref: str, *readings: ConditionReading) -> LogConditions:
    return LogConditions(part=ref, readings=list(readings) or [READING_OK])


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    setup: Callable[[Chain], None] | None
    sender: KeyPair
    msg: Any
    code: str
    detail: dict[str, Any] | None = None


def r(name: str, setup: Any, sender: KeyPair, msg: Any, code: str, **detail: Any) -> Any:
    return pytest.param(Refusal(name, setup, sender, msg, code, detail or None), id=name)


CATALOGUE = [
    r("register_a_part_number_another_supplier_owns", None, SUP2, part_type("BRK"), "part_number_taken",
      supplier="sup"),
    r("mint_a_part_number_of_another_supplier", None, SUP2, mint("BRK", "X1"), "not_the_supplier", supplier="sup"),
    r("manufacturer_mints_a_suppliers_part_number", None, OEM, mint("BRK", "X1"), "not_the_supplier"),
    r("mint_batch_of_another_suppliers_part_number", None, SUP2, mint_batch("PAD", "B9", 5), "not_the_supplier"),
    r("mint_an_unregistered_part_number", None, SUP, mint("NOPE", "X1"), "unknown_part_type"),
    r("mint_a_duplicate_serial", None, SUP, mint("BRK", "S9", "S1"), "part_exists", part="BRK:S1"),
    r("mint_a_serial_listed_twice", None, SUP, mint("BRK", "S8", "S8"), "part_exists"),
    r("mint_a_duplicate_batch", None, SUP, mint_batch("PAD", "B1", 5), "batch_exists"),
    r("mint_a_batch_made_type_with_parts_mint", None, SUP, mint("PAD", "X1"), "wrong_part_kind"),
    r("mint_serials_into_an_unknown_batch", None, SUP, mint("CELL", "C-9", batch="C9"), "unknown_batch"),
    r("mint_a_serial_named_like_a_batch_of_its_part_number", None, SUP, mint("CELL", "C1"), "id_taken"),
    r("mint_a_batch_named_like_a_serial_of_its_part_number", None, SUP, mint_batch("BRK", "S1", 2), "id_taken"),
    r("register_a_lot_twice", None, SUP2, lot("L1", 5), "lot_exists"),
    r("attest_an_unknown_lot", None, AUDIT, AttestLot(lot="L9", standard="RMAP", result="conformant", report="x", valid_until=VALID_UNTIL),
      "unknown_lot"),
]

MATERIALS = [
    r("batch_consumes_more_than_the_lot_holds", None, SUP, mint_batch("PAD", "B9", 5, ("L1", 701)),
      "material_overconsumed", remaining=700, wanted=701),
    r("two_batches_together_exceed_the_lot", does(SUP, mint_batch("PAD", "B8", 5, ("L1", 500))), SUP,
      mint_batch("PAD", "B9", 5, ("L1", 201)), "material_overconsumed", remaining=200),
    r("one_batch_lists_the_lot_twice_and_exceeds_it", None, SUP,
      mint_batch("PAD", "B9", 5, ("L1", 400), ("L1", 301)), "material_overconsumed", remaining=700, wanted=701),
    r("batch_consumes_an_unknown_lot", None, SUP, mint_batch("PAD", "B9", 5, ("L9", 1)), "unknown_lot", lot="L9"),
    r("batch_consumes_a_known_and_an_unknown_lot", None, SUP, mint_batch("PAD", "B9", 5, ("L1", 1), ("L9", 1)),
      "unknown_lot"),
]

CUSTODY = [
    r("ship_by_a_non_custodian", None, SUP2, ship("sup2", "BRK:S4"), "not_custodian", custodian="org:sup"),
    r("ship_by_the_previous_custodian", None, SUP, ship("shop", "BRK:S1"), "not_custodian", custodian="org:oem"),
    r("ship_by_an_outsider", None, K("outsider"), ship("shop", "BRK:S4"), "not_custodian"),
    r("ship_while_in_transit", s4_to_oem, SUP, ship("shop", "BRK:S4"), "not_custodian"),
    r("ship_the_same_part_twice_in_one_message", None, SUP, ship("oem", "BRK:S4", "BRK:S4"), "not_custodian"),
    r("ship_own_part_with_someone_elses", None, SUP, ship("oem", "BRK:S4", "BRK:S1"), "not_custodian",
      item="BRK:S1"),
    r("ship_an_installed_part", s1_in_v1, OEM, ship("shop", "BRK:S1"), "not_custodian", custodian=f"vin:{V1}"),
    r("ship_a_component_inside_an_assembly", cell_in_pack, SUP, ship("oem", "CELL:C-1"), "not_custodian",
      custodian="part:PACK:K1"),
    r("ship_a_never_minted_part", None, SUP, ship("oem", "BRK:S99"), "unknown_part"),
    r("ship_to_a_name_not_a_holder", None, SUP, Ship(items=["BRK:S4"], to="Bob Smith"), "assembly_rule"),
    r("ship_a_batch_by_a_non_custodian", None, SUP, ship("shop", "PAD:B1"), "not_custodian"),
    r("ship_a_batch_while_in_transit", pads_to_shop, OEM, ship("dealer", "PAD:B1"), "not_custodian"),
    r("receive_by_someone_not_named", s4_to_oem, SHOP, receive("BRK:S4"), "not_in_transit"),
    r("receive_something_never_shipped", None, OEM, receive("BRK:S4"), "not_in_transit"),
    r("receive_twice", None, OEM, receive("BRK:S1"), "not_in_transit"),
    r("receive_a_batch_by_someone_not_named", pads_to_shop, K("dealer-admin"), receive("PAD:B1"), "not_in_transit"),
    r("receive_a_batch_twice", then(pads_to_shop, does(SHOP, receive("PAD:B1"))), SHOP, receive("PAD:B1"),
      "not_in_transit"),
]

CONDITIONS = [
    r("log_by_a_member_key_that_is_no_logger", None, SUP, log("BRK:S4"), "not_a_logger"),
    r("log_by_a_logger_of_another_organisation", oem_logger, LOGGER_OEM, log("BRK:S4"), "not_a_logger"),
    r("log_by_an_unregistered_device", None, K("stray-logger"), log("BRK:S4"), "not_a_logger"),
    r("log_by_the_former_custodians_logger", None, LOGGER_SUP, log("BRK:S1"), "not_a_logger"),
    r("log_an_unknown_part", None, LOGGER_SUP, log("BRK:S99"), "unknown_part"),
    r("register_a_competitors_logger_without_the_devices_signature", None, OEM, RegisterLogger(logger=LOGGER_SUP.did),
      "missing_cosigner"),
]

ASSEMBLY = [
    r("assemble_into_a_type_that_is_no_assembly", None, SUP, assemble("BRK:S4", "CELL:C-1"), "wrong_part_kind"),
    r("assemble_a_component_not_in_custody", None, SUP, assemble("PACK:K1", "BRK:S1"), "not_custodian",
      custodian="org:oem"),
    r("assemble_a_component_installed_in_another_assembly",
      then(cell_in_pack, does(SUP, mint("PACK", "K2"))), SUP, assemble("PACK:K2", "CELL:C-1"), "not_custodian",
      custodian="part:PACK:K1"),
    r("assemble_a_component_installed_in_a_vehicle", s1_in_v1, OEM, assemble("PACK:K1", "BRK:S1"),
      "not_custodian"),
    r("assemble_into_an_assembly_not_in_custody", does(SUP, ship("oem", "PACK:K1")), SUP,
      assemble("PACK:K1", "CELL:C-1"), "not_custodian"),
    r("assemble_an_assembly_into_itself", None, SUP, assemble("PACK:K1", "PACK:K1"), "assembly_rule"),
    r("assemble_a_component_listed_twice", None, SUP, assemble("PACK:K1", "CELL:C-1", "CELL:C-1"), "assembly_rule"),
    r("assemble_a_cycle", then(does(SUP, mint("PACK", "K2")), does(SUP, assemble("PACK:K1", "PACK:K2"))), SUP,
      assemble("PACK:K2", "PACK:K1"), "not_custodian"),
    r("assemble_a_never_minted_component", None, SUP, assemble("PACK:K1", "CELL:C-99"), "unknown_part"),
]

INSTALL = [
    r("install_a_never_minted_serial", None, OEM, install(V1, "BRK:S99"), "suspected_counterfeit", part="BRK:S99"),
    r("install_an_unregistered_part_number", None, OEM, install(V1, "FAKE:1"), "suspected_counterfeit"),
    r("install_units_of_a_never_minted_batch", None, OEM, install(V1, B("PAD:B9", 2)), "suspected_counterfeit"),
    r("install_a_part_installed_in_another_vehicle", then(v2, s1_in_v1), OEM, install(V2, "BRK:S1"),
      "installed_elsewhere", location=f"vin:{V1}"),
    r("install_a_part_twice_into_the_same_vehicle", s1_in_v1, OEM, install(V1, "BRK:S1"), "assembly_rule"),
    r("install_a_component_inside_an_assembly", cell_in_pack, OEM, install(V1, "CELL:C-1"), "installed_elsewhere",
      location="part:PACK:K1"),
    r("install_a_part_the_installer_does_not_hold", None, OEM, install(V1, "BRK:S4"), "not_custodian",
      custodian="org:sup"),
    r("workshop_installs_the_manufacturers_part", None, SHOP, install(V1, "BRK:S1"), "not_custodian"),
    r("install_a_part_still_in_transit_to_the_installer", s4_to_oem, OEM, install(V1, "BRK:S4"), "not_custodian"),
    r("install_units_of_a_batch_the_installer_does_not_hold", None, SHOP, install(V1, B("PAD:B1", 2)),
      "not_custodian"),
    r("install_units_of_a_batch_in_transit", pads_to_shop, SHOP, install(V1, B("PAD:B1", 2)), "not_custodian"),
    r("install_more_units_than_the_batch_has", None, OEM, install(V1, B("PAD:B1", 11)), "not_enough_units",
      available=10, wanted=11),
    r("install_more_units_than_are_left", then(v2, does(OEM, install(V1, B("PAD:B1", 8)))), OEM,
      install(V2, B("PAD:B1", 3)), "not_enough_units", available=2),
    r("install_the_same_part_twice_in_one_message", None, OEM, install(V1, "BRK:S1", "BRK:S1"), "assembly_rule"),
    r("install_a_line_naming_a_part_and_a_batch", None, OEM,
      install(V1, InstallItem(part="BRK:S1", batch="PAD:B1")), "assembly_rule"),
    r("install_a_line_naming_nothing", None, OEM, install(V1, InstallItem()), "assembly_rule"),
    r("install_more_units_of_a_batch_already_on_the_bill", pads_in_v1, OEM, install(V1, B("PAD:B1", 2)),
      "assembly_rule"),
    r("install_a_good_part_with_a_counterfeit", None, OEM, install(V1, "BRK:S1", "BRK:S99"), "suspected_counterfeit"),
    r("install_a_serialized_part_as_five_units", None, OEM, install(V1, InstallItem(part="BRK:S1", qty=5)),
      "assembly_rule"),
    r("install_units_of_a_serialized_types_batch",
      then(does(SUP, ship("oem", "CELL:C1")), does(OEM, receive("CELL:C1"))), OEM, install(V1, B("CELL:C1", 2)),
      "wrong_part_kind"),
    r("install_into_an_unknown_vehicle", None, OEM, install(UNKNOWN_VIN, "BRK:S1"), "unknown_vehicle"),
    r("install_into_a_scrapped_vehicle", v1_scrapped, OEM, install(V1, "BRK:S1"), "vehicle_scrapped"),
]

REMOVE = [
    r("remove_a_part_never_installed", None, SHOP, remove(V1, "BRK:S1"), "not_installed"),
    r("remove_a_part_from_the_wrong_vehicle", then(v2, s1_in_v1), SHOP, remove(V2, "BRK:S1"), "not_installed"),
    r("remove_a_part_twice", then(s1_in_v1, does(SHOP, remove(V1, "BRK:S1"))), SHOP, remove(V1, "BRK:S1"),
      "not_installed"),
    r("remove_more_units_than_installed", pads_in_v1, SHOP, remove(V1, B("PAD:B1", 3)), "not_installed"),
    r("remove_a_component_from_inside_an_installed_assembly",
      then(cell_in_pack, does(SUP, ship("oem", "PACK:K1")), does(OEM, receive("PACK:K1")),
           does(OEM, install(V1, "PACK:K1"))), SHOP, remove(V1, "CELL:C-1"), "not_installed"),
    r("remove_a_serialized_part_named_as_a_batch", s1_in_v1, SHOP, remove(V1, B("BRK:S1", 1)), "not_installed"),
    r("remove_batch_units_named_as_a_part", pads_in_v1, SHOP, remove(V1, "PAD:B1"), "not_installed"),
    r("remove_from_an_unknown_vehicle", None, SHOP, remove(UNKNOWN_VIN, "BRK:S1"), "unknown_vehicle"),
    r("workshop_removes_from_a_scrapped_vehicle", then(s1_in_v1, v1_scrapped), SHOP, remove(V1, "BRK:S1"),
      "vehicle_scrapped"),
]

REFUSALS = CATALOGUE + MATERIALS + CUSTODY + CONDITIONS + ASSEMBLY + INSTALL + REMOVE


def rules_chain() -> Chain:
    chain = parts_chain()
    supplied(chain)
    return chain


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing_and_cannot_be_replayed(case: Refusal) -> None:
    chain = rules_chain()
    if case.setup is not None:
        case.setup(chain)
    before = snapshot(chain)
    raw = build_tx(case.sender, case.msg)
    receipt = chain.block(raw).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in (case.detail or {}).items():
        assert receipt.detail[k] == v, receipt.detail
    assert snapshot(chain) == before, "a failed transaction changed the ledger"
    again = chain.block(raw).receipts[0]
    assert (again.ok, again.code) == (False, "replayed_tx")
    assert snapshot(chain) == before


# ---------------------------------------------------------------- refusals that should be clearer or stricter


@pytest.mark.parametrize("scrapped", [False, True], ids=["unknown_vehicle", "scrapped_vehicle"])
def test_install_into_a_vehicle_that_cannot_take_parts_names_the_reason(scrapped: bool) -> None:
    chain = rules_chain()
    if scrapped:
        v1_scrapped(chain)
    receipt = chain.run(OEM, install(V1 if scrapped else UNKNOWN_VIN, "BRK:S1"))
    assert (receipt.ok, receipt.code) == (False, "vehicle_scrapped" if scrapped else "unknown_vehicle")


def test_remove_a_serialized_part_named_as_a_batch_is_a_clean_refusal() -> None:
    chain = rules_chain()
    s1_in_v1(chain)
    before = snapshot(chain)
    receipt = chain.run(SHOP, remove(V1, B("BRK:S1", 1)))
    assert (receipt.ok, receipt.code) == (False, "not_installed"), receipt
    assert snapshot(chain) == before


def test_units_of_a_serialized_types_batch_cannot_be_installed_without_serials() -> None:
    chain = rules_chain()
    ok(chain, SUP, ship("oem", "CELL:C1"))
    ok(chain, OEM, receive("CELL:C1"))
    before = snapshot(chain)
    receipt = chain.run(OEM, install(V1, B("CELL:C1", 3)))
    assert (receipt.ok, receipt.code) == (False, "wrong_part_kind"), receipt
    assert snapshot(chain) == before


def test_a_serialized_part_is_installed_as_exactly_one_unit() -> None:
    """Five units of one serial are refused, changing nothing; the part itself, as one unit, is
    then accepted and counted once on the bill, in the event and in the vehicle's history."""
    chain = rules_chain()
    before = snapshot(chain)
    refused = chain.run(OEM, install(V1, InstallItem(part="BRK:S1", qty=5)))
    assert (refused.ok, refused.code) == (False, "assembly_rule"), refused
    assert refused.detail["reason"] == "BRK:S1 is one serialized part: leave qty at 1, not 5", refused.detail
    assert snapshot(chain) == before
    receipt = ok(chain, OEM, install(V1, InstallItem(part="BRK:S1")))
    (line,) = bom(chain, V1).items
    (ev,) = [e for e in receipt.events if e["type"] == "parts.installed"]
    (item,) = history(chain, V1)[-1]["data"]["items"]
    assert (line.ref, line.kind, line.qty, ev["qty"], item["qty"]) == ("BRK:S1", "part", 1, 1, 1)
    assert (part(chain, "BRK:S1").status, ptype(chain, "BRK").installed) == ("installed", 1)


def test_a_serial_cannot_shadow_a_batch_of_the_same_part_number() -> None:
    chain = rules_chain()
    chain.run(SUP, mint("CELL", "C1"))  # CELL:C1 is the batch of cells C-1..C-3: this should be refused
    ok(chain, SUP, ship("oem", "CELL:C1"))
    assert batch(chain, "CELL:C1").custodian == "transit:org:oem", "the batch could not be shipped"


# ---------------------------------------------------------------- catalogue, twins and raw materials


def test_minted_twins_carry_their_attributes_and_first_history_entry() -> None:
    chain = rules_chain()
    p = part(chain, "CELL:C-2")
    assert (p.part_number, p.serial, p.supplier, p.produced, p.plant, p.batch) == (
        "CELL", "C-2", "sup", "2027-01-05", "Plant A", "C1")
    assert (p.custodian, p.status, p.location) == ("org:sup", "in_stock", "")
    (entry,) = part_history(chain, "CELL:C-2")
    assert entry["type"] == "minted" and entry["org"] == "sup"
    assert entry["data"] == {"produced": "2027-01-05", "plant": "Plant A", "batch": "C1", "custodian": "org:sup"}
    b = batch(chain, "PAD:B1")
    assert (b.quantity, b.in_stock, b.installed, b.supplier, b.custodian) == (10, 10, 0, "sup", "org:oem")
    t = ptype(chain, "BRK")
    assert (t.supplier, t.serialized, t.assembly, t.limits.max_temp_dc) == ("sup", True, False, 400)


def test_mint_emits_minted_event() -> None:
    chain = rules_chain()
    receipt = ok(chain, SUP, mint("BRK", "S10", "S11"))
    assert receipt.events == [{"type": "parts.minted", "part_number": "BRK", "count": 2, "batch": ""}]


def test_a_manufacturer_mints_the_parts_it_makes_itself() -> None:
    chain = rules_chain()
    ok(chain, OEM, part_type("OEM-ECU"))
    ok(chain, OEM, mint("OEM-ECU", "E1"))
    assert part(chain, "OEM-ECU:E1").custodian == "org:oem"
    assert chain.run(SUP, mint("OEM-ECU", "E2")).code == "not_the_supplier"


def test_lot_consumption_is_exact_to_the_gram_and_attested_by_auditors() -> None:
    chain = rules_chain()
    assert material_lot(chain, "L1").consumed_g == 300
    ok(chain, AUDIT, AttestLot(lot="L1", standard="RMAP", result="conformant", report="FMA-1", valid_until=VALID_UNTIL))
    ok(chain, AUDIT, AttestLot(lot="L1", standard="OECD-DDG", result="non_conformant", report="FMA-2", valid_until=VALID_UNTIL))
    ok(chain, SUP, mint_batch("PAD", "B7", 5, ("L1", 700)))  # exactly what is left
    lot_ = material_lot(chain, "L1")
    assert (lot_.mass_g, lot_.consumed_g) == (1000, 1000)
    assert [(a.auditor, a.standard, a.result) for a in lot_.attestations] == [
        ("audit", "RMAP", "conformant"), ("audit", "OECD-DDG", "non_conformant")]
    assert chain.run(SUP, mint_batch("PAD", "B6", 5, ("L1", 1))).code == "material_overconsumed"
    view = MemoryView(chain)
    used = queries.lot(view, queries.RefQuery(id="L1"))["used_by"]
    assert used == [{"batch": "PAD:B1", "mass_g": 300}, {"batch": "PAD:B7", "mass_g": 700}]


def test_lot_used_by_adds_up_to_consumed_when_a_batch_lists_a_lot_twice() -> None:
    chain = rules_chain()
    ok(chain, SUP, mint_batch("PAD", "B7", 5, ("L1", 100), ("L1", 200)))
    view = MemoryView(chain)
    res = queries.lot(view, queries.RefQuery(id="L1"))
    assert sum(u["mass_g"] for u in res["used_by"]) == res["consumed_g"] == 600


def cobalt_battery(chain: Chain) -> None:
    """Cells of batch C2 (50 g of lot L1's cobalt) in module MOD:M1 in pack PACK:K1, installed in V1."""
    ok(chain, AUDIT, AttestLot(lot="L1", standard="RMAP", result="conformant", report="FMA-2027-1", valid_until=VALID_UNTIL))
    ok(chain, SUP, part_type("MOD", assembly=True))
    ok(chain, SUP, mint_batch("CELL", "C2", 2, ("L1", 50)))
    ok(chain, SUP, mint("CELL", "C2-1", "C2-2", batch="C2"))
    ok(chain, SUP, mint("MOD", "M1"))
    ok(chain, SUP, assemble("MOD:M1", "CELL:C2-1", "CELL:C2-2"))
    ok(chain, SUP, assemble("PACK:K1", "MOD:M1", "CELL:C-1"))
    ok(chain, SUP, ship("oem", "PACK:K1"))
    ok(chain, OEM, receive("PACK:K1"))
    ok(chain, OEM, install(V1, P("PACK:K1", "floor"), B("PAD:B1", 4)))


def test_materials_of_finds_the_mine_and_auditor_of_the_cobalt_in_a_battery() -> None:
    chain = rules_chain()
    cobalt_battery(chain)
    res = queries.materials_of(MemoryView(chain), queries.MaterialsQuery(vin=V1))
    (l1,) = res["lots"]
    assert (l1["lot"], l1["material"], l1["mine"], l1["country"], l1["producer"]) == ("L1", "cobalt", "Kamoto", "CD",
                                                                                      "sup")
    assert sorted(l1["via"]) == ["CELL:C2", "PAD:B1"]  # through the cells two levels down, and the pads
    assert [(a["auditor"], a["result"], a["standard"]) for a in l1["attestations"]] == [("audit", "conformant", "RMAP")]
    (cobalt,) = res["materials"]  # the vehicle's cobalt, all from one mine
    assert [(o["lot"], o["mine"], o["ppm"]) for o in cobalt["origins"]] == [("L1", "Kamoto", 1_000_000)]
    from blokauto.modules.parts import logistics_queries

    pack = logistics_queries.origin(MemoryView(chain), logistics_queries.ItemQuery(id="PACK:K1"))  # for one pack
    assert pack["kind"] == "part" and pack["materials"][0]["origins"][0]["mine"] == "Kamoto"
    trace = queries.trace(MemoryView(chain), queries.TraceQuery(id="CELL:C2-1"))
    assert [m["lot"] for m in trace["materials"]] == ["L1"]
    assert [e["type"] for e in trace["history"]] == ["minted", "assembled"]


# ---------------------------------------------------------------- custody and condition logs


def test_ship_then_receive_passes_custody_and_transit_is_visible() -> None:
    chain = rules_chain()
    receipt = ok(chain, SUP, ship("shop", "BRK:S4"))
    assert receipt.events == [{"type": "parts.custody_changed", "item": "BRK:S4", "custodian": "org:sup",
                               "status": "in_transit"}]
    p = queries.part(MemoryView(chain), queries.RefQuery(id="BRK:S4"))
    assert (p["status"], p["custodian"], p["transit_to"]) == ("in_transit", "org:sup", "org:shop")
    receipt = ok(chain, SHOP, receive("BRK:S4"))
    assert receipt.events == [{"type": "parts.custody_changed", "item": "BRK:S4", "custodian": "org:shop",
                               "status": "in_stock"}]
    p = part(chain, "BRK:S4")
    assert (p.status, p.custodian, p.transit_to) == ("in_stock", "org:shop", "")
    shipped, received = part_history(chain, "BRK:S4")[1:]
    assert [(e["type"], e["data"]) for e in (shipped, received)] == [  # no place given; at the block's time
        ("shipped", {"from": "org:sup", "to": "org:shop", "location": "", "at": shipped["time"]}),
        ("received", {"from": "org:sup", "by": "org:shop", "location": "", "at": received["time"]})]


def test_a_batch_in_transit_is_visible_and_received_whole() -> None:
    chain = rules_chain()
    ok(chain, SUP, mint_batch("PAD", "B2", 5))
    ok(chain, SUP, ship("shop", "PAD:B2"))
    assert queries.batch(MemoryView(chain), queries.RefQuery(id="PAD:B2"))["custodian"] == "transit:org:shop"
    ok(chain, SHOP, receive("PAD:B2"))
    b = batch(chain, "PAD:B2")
    assert (b.custodian, b.in_stock) == ("org:shop", 5)


def test_a_part_shipped_to_a_person_is_received_by_that_key() -> None:
    chain = rules_chain()
    alice = K("alice")
    ok(chain, SHOP, ship(alice.did, "BRK:S5"))
    assert chain.run(K("bob"), receive("BRK:S5")).code == "not_in_transit"
    ok(chain, alice, receive("BRK:S5"))
    ok(chain, alice, ship("shop", "BRK:S5"))  # the key that holds it may hand it on
    assert part(chain, "BRK:S5").transit_to == "org:shop"


def test_condition_breaches_are_flagged_on_the_part() -> None:
    chain = rules_chain()
    hot = ConditionReading(time=2_000, temp_dc=450, shock_mg=100, humidity_pct=40)
    dropped = ConditionReading(time=3_000, temp_dc=200, shock_mg=6_000, humidity_pct=40)
    damp = ConditionReading(time=4_000, temp_dc=200, shock_mg=100, humidity_pct=90)
    receipt = ok(chain, LOGGER_SUP, log("BRK:S4", READING_OK, hot, dropped, damp))
    assert event_types(receipt) == ["parts.condition_breach"]
    assert receipt.events[0]["part"] == "BRK:S4" and receipt.events[0]["limit"] == "temperature at reading 1"
    assert part(chain, "BRK:S4").breaches == 3
    entry = part_history(chain, "BRK:S4")[-1]
    assert entry["type"] == "conditions" and entry["by"] == LOGGER_SUP.did
    assert entry["data"] == {"readings": 4, "from": 1_000, "to": 4_000, "min_temp_dc": 200, "max_temp_dc": 450,
                             "max_shock_mg": 6_000, "max_humidity_pct": 90,
                             "breaches": ["temperature at reading 1", "shock at reading 2", "humidity at reading 3"]}
    receipt = ok(chain, LOGGER_SUP, log("BRK:S4", READING_OK))  # within limits: logged, nothing flagged
    assert receipt.events == [] and part(chain, "BRK:S4").breaches == 3
    assert part_history(chain, "BRK:S4")[-1]["data"]["breaches"] == []


def test_a_minimum_temperature_is_a_limit_too() -> None:
    chain = rules_chain()
    ok(chain, SUP, part_type("COLD", min_temp_dc=-200))
    ok(chain, SUP, mint("COLD", "X1"))
    receipt = ok(chain, LOGGER_SUP, log("COLD:X1", ConditionReading(time=1, temp_dc=-250)))
    assert event_types(receipt) == ["parts.condition_breach"] and part(chain, "COLD:X1").breaches == 1


def test_the_receivers_logger_logs_while_in_transit_and_the_senders_no_longer_after() -> None:
    chain = rules_chain()
    oem_logger(chain)
    s4_to_oem(chain)
    ok(chain, LOGGER_OEM, log("BRK:S4"))
    ok(chain, LOGGER_SUP, log("BRK:S4"))  # still the custodian's until received
    ok(chain, OEM, receive("BRK:S4"))
    ok(chain, LOGGER_OEM, log("BRK:S4"))
    assert chain.run(LOGGER_SUP, log("BRK:S4")).code == "not_a_logger"


# ---------------------------------------------------------------- assemblies and installation


def test_installing_a_part_puts_it_on_the_bill_and_in_the_vehicles_custody() -> None:
    chain = rules_chain()
    receipt = ok(chain, OEM, install(V1, P("BRK:S1", "front left"), B("PAD:B1", 4, "front axle")))
    h = chain.ledger.head.height
    assert [e for e in receipt.events if e["type"] == "parts.installed"] == [
        {"type": "parts.installed", "vin": V1, "ref": "BRK:S1", "qty": 1},
        {"type": "parts.installed", "vin": V1, "ref": "PAD:B1", "qty": 4}]
    p = part(chain, "BRK:S1")
    assert (p.status, p.location, p.custodian) == ("installed", f"vin:{V1}", f"vin:{V1}")
    assert [(i.ref, i.kind, i.qty, i.position, i.height) for i in bom(chain, V1).items] == [
        ("BRK:S1", "part", 1, "front left", h), ("PAD:B1", "batch", 4, "front axle", h)]
    b = batch(chain, "PAD:B1")
    assert (b.in_stock, b.installed) == (6, 4)
    assert (ptype(chain, "BRK").installed, ptype(chain, "PAD").installed) == (1, 4)
    assert part_history(chain, "BRK:S1")[-1]["data"] == {"vin": V1, "position": "front left"}


def test_install_and_remove_append_to_the_vehicle_history() -> None:
    chain = rules_chain()
    ok(chain, OEM, install(V1, P("BRK:S1", "front left"), B("PAD:B1", 4)))
    ok(chain, SHOP, remove(V1, "BRK:S1", B("PAD:B1", 2)))
    entries = history(chain, V1)
    assert [e["type"] for e in entries] == ["birth", "parts_installed", "parts_removed"]
    assert (entries[1]["org"], entries[2]["org"]) == ("oem", "shop")
    assert entries[1]["data"]["items"] == [
        {"part": "BRK:S1", "batch": "", "qty": 1, "position": "front left"},
        {"part": "", "batch": "PAD:B1", "qty": 4, "position": ""}]
    assert [(i["part"], i["batch"], i["qty"]) for i in entries[2]["data"]["items"]] == [
        ("BRK:S1", "", 1), ("", "PAD:B1", 2)]


def test_assembly_of_modules_of_cells_installs_and_counts_every_level() -> None:
    chain = rules_chain()
    cobalt_battery(chain)
    assert part(chain, "PACK:K1").components == ["MOD:M1", "CELL:C-1"]
    cell = part(chain, "CELL:C2-1")
    assert (cell.status, cell.location, cell.custodian) == ("installed", "part:MOD:M1", "part:MOD:M1")
    assert {t: ptype(chain, t).installed for t in ("PACK", "MOD", "CELL")} == {"PACK": 1, "MOD": 1, "CELL": 3}
    assert (batch(chain, "CELL:C2").installed, batch(chain, "CELL:C1").installed) == (2, 1)
    rows = {r["ref"]: (r["vin"], r["via"], r["removed"]) for r in installations(chain) if r["vin"] == V1}
    assert rows["CELL:C2-1"] == (V1, "PACK:K1", 0) and rows["MOD:M1"] == (V1, "PACK:K1", 0)
    assert rows["PACK:K1"] == (V1, "", 0)
    items = queries.bom(MemoryView(chain), queries.VinQuery(vin=V1))["items"]
    assert sorted(items[0]["components"]) == ["CELL:C-1", "CELL:C2-1", "CELL:C2-2", "MOD:M1"]
    # out again: every level leaves the counters and the installation index
    ok(chain, SHOP, remove(V1, "PACK:K1"))
    assert {t: ptype(chain, t).installed for t in ("PACK", "MOD", "CELL")} == {"PACK": 0, "MOD": 0, "CELL": 0}
    h = chain.ledger.head.height
    assert {r["ref"]: r["removed"] for r in installations(chain) if r["vin"] == V1 and r["ref"] != "PAD:B1"} == {
        "PACK:K1": h, "MOD:M1": h, "CELL:C-1": h, "CELL:C2-1": h, "CELL:C2-2": h}
    assert part(chain, "CELL:C2-1").location == "part:MOD:M1"  # still inside its module


def test_a_workshop_removes_a_part_which_continues_its_history_elsewhere() -> None:
    chain = rules_chain()
    v2(chain)
    ok(chain, OEM, install(V1, "BRK:S1"))
    receipt = ok(chain, SHOP, remove(V1, "BRK:S1"))
    assert {"type": "parts.removed", "vin": V1, "ref": "BRK:S1", "qty": 1} in receipt.events
    p = part(chain, "BRK:S1")
    assert (p.status, p.custodian, p.location) == ("removed", "org:shop", "")
    assert [(x.ref, x.kind, x.qty) for x in bom(chain, V1).removed] == [("BRK:S1", "part", 1)]
    assert bom(chain, V1).items == []
    ok(chain, SHOP, install(V2, "BRK:S1"))
    assert [e["type"] for e in part_history(chain, "BRK:S1")] == [
        "minted", "shipped", "received", "installed", "removed", "installed"]
    raws = [r["entry"] for r in sorted((r for r in chain.ledger.index["ix_parts_history"].values()
                                        if r["part"] == "BRK:S1"), key=lambda r: r["seq"])]
    p = part(chain, "BRK:S1")
    assert history_head(raws) == (p.history.count, p.history.head)  # the hash chain covers every entry


def test_removed_batch_units_leave_the_count_and_do_not_return_to_stock() -> None:
    """Batch units are not twins: removed ones are written off (recorded on the bill's removed list),
    so quantity == in_stock + installed + removed units, per batch."""
    chain = rules_chain()
    ok(chain, OEM, install(V1, B("PAD:B1", 4)))
    ok(chain, SHOP, remove(V1, B("PAD:B1", 1)))
    b = batch(chain, "PAD:B1")
    assert (b.quantity, b.in_stock, b.installed) == (10, 6, 3)
    assert [(i.ref, i.qty) for i in bom(chain, V1).items] == [("PAD:B1", 3)]
    assert [(x.ref, x.qty) for x in bom(chain, V1).removed] == [("PAD:B1", 1)]
    assert b.quantity == b.in_stock + b.installed + sum(x.qty for x in bom(chain, V1).removed)


def test_a_recycler_harvests_parts_from_a_scrapped_vehicle() -> None:
    chain = rules_chain()
    cobalt_battery(chain)
    ok(chain, SCRAP, Deregister(vin=V1, certificate="COD-1"), OEM)
    receipt = ok(chain, SCRAP, remove(V1, "PACK:K1"))
    assert {"type": "parts.removed", "vin": V1, "ref": "PACK:K1", "qty": 1} in receipt.events
    pack = part(chain, "PACK:K1")
    assert (pack.status, pack.custodian) == ("removed", "org:scrap")
    assert [e["type"] for e in part_history(chain, "PACK:K1")][-3:] == ["received", "installed", "removed"]
    assert part_history(chain, "PACK:K1")[-1]["org"] == "scrap"
    assert [e["type"] for e in history(chain, V1)][-2:] == ["deregistered", "parts_removed"]
    # harvested, it re-enters the supply chain with its history (and its cells)
    ok(chain, SCRAP, ship("sup", "PACK:K1"))
    ok(chain, SUP, receive("PACK:K1"))
    assert part(chain, "PACK:K1").custodian == "org:sup" and part(chain, "PACK:K1").components == ["MOD:M1", "CELL:C-1"]
    assert [e["type"] for e in part_history(chain, "PACK:K1")][-2:] == ["shipped", "received"]
    assert ptype(chain, "CELL").installed == 0


def test_an_installer_cannot_refit_a_part_it_only_used_to_hold() -> None:
    """After the workshop removes it, the part is the workshop's: the manufacturer that fitted it
    cannot install it again."""
    chain = rules_chain()
    v2(chain)
    ok(chain, OEM, install(V1, "BRK:S1"))
    ok(chain, SHOP, remove(V1, "BRK:S1"))
    assert chain.run(OEM, install(V2, "BRK:S1")).code == "not_custodian"


def test_oem2_builds_with_its_own_stock() -> None:
    chain = rules_chain()
    ok(chain, OEM2, register_msg(W1))
    ok(chain, SUP, ship("oem2", "BRK:S4"))
    ok(chain, OEM2, receive("BRK:S4"))
    ok(chain, OEM2, install(W1, "BRK:S4"))
    assert part(chain, "BRK:S4").location == f"vin:{W1}"


def test_a_logger_registered_by_one_organisation_cannot_be_claimed_by_another_even_with_its_signature() -> None:
    chain = rules_chain()
    before = snapshot(chain)
    receipt = chain.run(OEM, RegisterLogger(logger=LOGGER_SUP.did), LOGGER_SUP)
    assert (receipt.ok, receipt.code) == (False, "assembly_rule"), receipt
    assert "already registered by 'sup'" in receipt.detail["reason"]
    assert snapshot(chain) == before
