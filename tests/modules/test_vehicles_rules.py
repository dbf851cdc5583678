"""The vehicles module's domain rules, one row per rule, and its queries through a live node.

Refusals are one table (``REFUSALS``): each row sets up a ledger, sends one transaction and
names the stable code it must fail with. Every row also checks that the failed transaction
changed nothing (state, index rows, state root) yet consumed its id, so the same signed bytes
are refused as a replay afterwards: the failed attempt is on record, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import httpx
import msgspec
import pytest

from blokauto.core.crypto import KeyPair
from blokauto.core.encoding import canonical
from blokauto.modules.vehicles import queries
from blokauto.modules.vehicles.handlers import history_head
from blokauto.modules.vehicles.messages import (
    AssignWmi,
    BrandTitle,
    ChangeRegistration,
    Deregister,
    RecordAccident,
    RecordInspection,
    RecordLien,
    RecordOdometer,
    RecordRepair,
    RecordService,
    ReleaseLien,
    ReplaceCluster,
    TransferTitle,
)
from blokauto.modules.vehicles.state import ORG_PREFIX

from conftest import Chain, K, build_tx
from helpers.vehicles import (
    WMI,
    MemoryView,
    admin,
    assign_wmi,
    event_types,
    history,
    history_rows,
    holders,
    register,
    register_msg,
    snapshot,
    vehicle,
    vehicles_chain,
    vin_for,
)

VIN = vin_for(WMI["oem"], 1)
ALICE, BOB, CAROL = K("alice"), K("bob"), K("carol")
DEVICE = K("dev-1")
NA_VIN = "1HGCM82633A004352"  # a published North American VIN with a valid check digit ('3')

_VALUES = {**{str(d): d for d in range(10)}, "A": 1, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6, "G": 7, "H": 8,
           "J": 1, "K": 2, "L": 3, "M": 4, "N": 5, "P": 7, "R": 9, "S": 2, "T": 3, "U": 4, "V": 5, "W": 6,
           "X": 7, "Y": 8, "Z": 9}
_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def na_check_digit(vin: str) -> str:
    """The North American check digit (49 CFR 565.15), written out independently of the module."""
    r = sum(_VALUES[c] * w for c, w in zip(vin, _WEIGHTS)) % 11
    return "X" if r == 10 else str(r)


def with_digit(vin: str, digit: str) -> str:
    return vin[:8] + digit + vin[9:]


def wrong_digits(vin: str) -> list[str]:
    right = na_check_digit(vin)
    return [with_digit(vin, d) for d in "0123456789X" if d != right]


# ---------------------------------------------------------------- set-ups


def born(chain: Chain) -> None:
    """VIN registered by oem (device key dev-1), title at the manufacturer."""
    register(chain, VIN, device_keys=[DEVICE.did])


def at_dealer(chain: Chain) -> None:
    born(chain)
    assert chain.run(admin("oem"), TransferTitle(vin=VIN, to=ORG_PREFIX + "dealer"), admin("dealer")).ok


def owned(chain: Chain) -> None:
    """VIN sold new to alice through the dealer."""
    at_dealer(chain)
    assert chain.run(admin("dealer"), TransferTitle(vin=VIN, to=ALICE.did), ALICE).ok


def liened(chain: Chain) -> None:
    owned(chain)
    assert chain.run(admin("bank"), RecordLien(vin=VIN, amount=2_000_000, currency="EUR"), ALICE).ok


def stolen(chain: Chain) -> None:
    owned(chain)
    assert chain.run(admin("reg"), BrandTitle(vin=VIN, brand="stolen", reason="reported 2027-04-01")).ok


def scrapped(chain: Chain) -> None:
    owned(chain)
    assert chain.run(admin("scrap"), Deregister(vin=VIN, certificate="COD-2027-001"), ALICE).ok


def then(*steps: Callable[[Chain], None]) -> Callable[[Chain], None]:
    def setup(chain: Chain) -> None:
        for step in steps:
            step(chain)

    return setup


def na_wmi(chain: Chain) -> None:
    for wmi in ("1HG", "1M8", "111"):
        assign_wmi(chain, wmi, "oem")


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    setup: Callable[[Chain], None] | None
    sender: KeyPair
    msg: Any
    code: str
    cosigners: tuple[KeyPair, ...] = ()
    detail: dict[str, Any] | None = None  # fields the receipt's detail must carry


def r(name: str, setup: Any, sender: KeyPair, msg: Any, code: str, *cosigners: KeyPair, **detail: Any) -> Any:
    return pytest.param(Refusal(name, setup, sender, msg, code, cosigners, detail or None), id=name)


OEM, OEM2, DEALER, SHOP, INS, BANK, REG, SCRAP, FLEET = (admin(o) for o in (
    "oem", "oem2", "dealer", "shop", "ins", "bank", "reg", "scrap", "fleet"))

VIN_REFUSALS = [
    r("vin_length_16", None, OEM, register_msg(VIN[:16]), "invalid_vin"),
    r("vin_length_18", None, OEM, register_msg(VIN + "1"), "invalid_vin"),
    r("vin_lowercase", None, OEM, register_msg(VIN.lower()), "invalid_vin"),
    r("vin_lowercase_letter_in_serial", None, OEM, register_msg(VIN[:11] + "a" + VIN[12:]), "invalid_vin"),
    *[r(f"vin_with_letter_{c}", None, OEM, register_msg(VIN[:10] + c + VIN[11:]), "invalid_vin") for c in "IOQ"],
    r("vin_with_letter_I_in_wmi", None, OEM, register_msg("WIW" + VIN[3:]), "invalid_vin"),
    r("vin_with_symbol", None, OEM, register_msg(VIN[:16] + "-"), "invalid_vin"),
    r("vin_with_space", None, OEM, register_msg(VIN[:16] + " "), "invalid_vin"),
    *[r(f"na_vin_check_digit_{bad[8]}_not_3", na_wmi, OEM, register_msg(bad), "invalid_vin")
      for bad in wrong_digits(NA_VIN)],
    r("na_vin_digit_instead_of_X", na_wmi, OEM, register_msg(with_digit("1M8GDM9AXKP042788", "0")), "invalid_vin"),
    *[r(f"na_vin_starting_{c}_wrong_check_digit", None, OEM,
        register_msg(with_digit(c + NA_VIN[1:], "X" if na_check_digit(c + NA_VIN[1:]) != "X" else "0")),
        "invalid_vin") for c in "2345"],
]

WMI_REFUSALS = [
    r("register_under_another_makers_wmi", None, OEM2, register_msg(VIN), "wmi_not_yours", wmi="WVW", owner="'oem'"),
    r("register_under_unassigned_wmi", None, OEM, register_msg("SALZZZ1JZ00000001"), "wmi_not_yours",
      wmi="SAL", owner="no organisation"),
    r("register_na_vin_under_unassigned_wmi", None, OEM, register_msg(NA_VIN), "wmi_not_yours", wmi="1HG"),
    r("assign_wmi_to_a_dealer", None, REG, AssignWmi(wmi="SAL", org="dealer"), "not_a_manufacturer", org="dealer"),
    r("assign_wmi_to_unknown_org", None, REG, AssignWmi(wmi="SAL", org="nobody"), "not_a_manufacturer"),
    r("assign_wmi_twice_to_another_maker", None, REG, AssignWmi(wmi="WVW", org="oem2"), "wmi_taken", org="oem"),
    r("assign_wmi_twice_to_the_same_maker", None, REG, AssignWmi(wmi="WVW", org="oem"), "wmi_taken"),
    r("assign_wmi_with_letter_O", None, REG, AssignWmi(wmi="WO1", org="oem"), "invalid_vin"),
    r("assign_wmi_of_two_chars", None, REG, AssignWmi(wmi="WV", org="oem"), "invalid_vin"),
    r("register_twice", born, OEM, register_msg(VIN), "vehicle_exists"),
    r("register_twice_with_other_details", born, OEM, register_msg(VIN, model="Other", model_year=2028),
      "vehicle_exists"),
    r("register_implausible_model_year", None, OEM, register_msg(VIN, model_year=1700), "invalid_field"),
    r("register_same_device_key_twice", None, OEM, register_msg(VIN, device_keys=[DEVICE.did, DEVICE.did]),
      "invalid_field"),
    r("register_odometer_limit_below_9999", None, OEM, register_msg(VIN, odometer_limit_km=999), "invalid_field"),
]

TITLE_REFUSALS = [
    r("dealer_takes_title_without_manufacturer", born, DEALER, TransferTitle(vin=VIN, to="org:dealer"),
      "missing_cosigner"),
    r("manufacturer_sells_without_dealer_signature", born, OEM, TransferTitle(vin=VIN, to="org:dealer"),
      "missing_cosigner"),
    r("buyer_takes_title_alone", owned, BOB, TransferTitle(vin=VIN, to=BOB.did), "missing_cosigner"),
    r("seller_sells_without_buyer_signature", owned, ALICE, TransferTitle(vin=VIN, to=BOB.did), "missing_cosigner"),
    r("stranger_sells_with_buyer_signature", owned, CAROL, TransferTitle(vin=VIN, to=BOB.did), "missing_cosigner",
      BOB),
    r("dealer_sells_for_owner_without_owner_signature", owned, DEALER, TransferTitle(vin=VIN, to=BOB.did),
      "missing_cosigner", BOB),
    r("previous_owner_sells_again", then(owned, lambda c: c.run(ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB)),
      ALICE, TransferTitle(vin=VIN, to=CAROL.did), "missing_cosigner", CAROL),
    r("sale_to_the_current_holder", owned, ALICE, TransferTitle(vin=VIN, to=ALICE.did), "same_holder"),
    r("sale_to_a_name", owned, ALICE, TransferTitle(vin=VIN, to="Bob Smith"), "invalid_holder"),
    r("sale_to_unknown_org", owned, ALICE, TransferTitle(vin=VIN, to="org:nobody"), "invalid_holder"),
    r("sale_to_bad_did", owned, ALICE, TransferTitle(vin=VIN, to="did:key:z6Mknotakey"), "invalid_holder"),
    r("sale_of_unknown_vehicle", None, ALICE, TransferTitle(vin=vin_for("WVW", 77), to=BOB.did), "unknown_vehicle"),
    r("sale_of_stolen_vehicle", stolen, ALICE, TransferTitle(vin=VIN, to=BOB.did), "vehicle_stolen", BOB),
    r("sale_under_lien_without_lender", liened, ALICE, TransferTitle(vin=VIN, to=BOB.did), "missing_cosigner", BOB),
    r("sale_under_lien_signed_by_another_lender", liened, ALICE, TransferTitle(vin=VIN, to=BOB.did),
      "missing_cosigner", BOB, K("bank2-admin")),
    r("lien_without_holder_signature", owned, BANK, RecordLien(vin=VIN, amount=1, currency="EUR"),
      "missing_cosigner"),
    r("lien_signed_by_previous_holder", owned, BANK, RecordLien(vin=VIN, amount=1, currency="EUR"),
      "missing_cosigner", DEALER),
    r("lien_by_a_non_lender", owned, DEALER, RecordLien(vin=VIN, amount=1, currency="EUR"), "role_not_allowed",
      ALICE),
    r("lien_release_by_another_lender", liened, K("bank2-admin"), ReleaseLien(vin=VIN, lien=1), "lien_not_yours",
      lender="bank"),
    r("lien_release_of_unknown_lien", liened, BANK, ReleaseLien(vin=VIN, lien=2), "unknown_lien"),
    r("lien_release_twice", then(liened, lambda c: c.run(BANK, ReleaseLien(vin=VIN, lien=1))), BANK,
      ReleaseLien(vin=VIN, lien=1), "unknown_lien"),
    r("registration_change_without_change", owned, REG, ChangeRegistration(vin=VIN), "invalid_field"),
    r("registration_change_by_a_dealer", owned, DEALER, ChangeRegistration(vin=VIN, usage="taxi"),
      "role_not_allowed"),
]

BRAND_REFUSALS = [
    r("rebuilt_without_salvage", owned, REG, BrandTitle(vin=VIN, brand="rebuilt"), "brand_rule"),
    r("recovered_when_not_stolen", owned, REG, BrandTitle(vin=VIN, brand="recovered"), "brand_rule"),
    r("stolen_twice", stolen, REG, BrandTitle(vin=VIN, brand="stolen"), "brand_rule"),
    r("flood_twice", then(owned, lambda c: c.run(INS, BrandTitle(vin=VIN, brand="flood"))), INS,
      BrandTitle(vin=VIN, brand="flood"), "brand_rule"),
    r("salvage_by_a_workshop", owned, SHOP, BrandTitle(vin=VIN, brand="salvage"), "role_not_allowed"),
    r("stolen_by_an_insurer", owned, INS, BrandTitle(vin=VIN, brand="stolen"), "brand_not_allowed"),
    r("lemon_by_an_insurer", owned, INS, BrandTitle(vin=VIN, brand="lemon"), "brand_not_allowed"),
    r("total_loss_accident_by_a_workshop", owned, SHOP,
      RecordAccident(vin=VIN, date="2027-05-01", severity="severe", impact_areas=["front"], total_loss=True),
      "brand_not_allowed"),
    r("deregister_a_stolen_vehicle", stolen, SCRAP, Deregister(vin=VIN, certificate="COD-9"), "vehicle_stolen"),
    r("brand_unknown_vehicle", None, REG, BrandTitle(vin=vin_for("WVW", 77), brand="flood"), "unknown_vehicle"),
]

ODOMETER_REFUSALS = [
    r("reading_by_an_outsider", owned, CAROL, RecordOdometer(vin=VIN, value=10), "not_vehicle_device"),
    r("reading_by_the_owner", owned, ALICE, RecordOdometer(vin=VIN, value=10), "not_vehicle_device"),
    r("reading_by_a_lender", owned, BANK, RecordOdometer(vin=VIN, value=10), "not_vehicle_device"),
    r("reading_by_another_vehicles_device",
      then(owned, lambda c: register(c, vin_for("WVW", 2), device_keys=[K("dev-2").did])),
      K("dev-2"), RecordOdometer(vin=VIN, value=10), "not_vehicle_device"),
    r("reading_of_unknown_vehicle", None, SHOP, RecordOdometer(vin=vin_for("WVW", 77), value=10), "unknown_vehicle"),
    r("repair_of_an_accident_not_yet_recorded", owned, SHOP, RecordRepair(vin=VIN, odometer=10, items=["x"],
                                                                        accident=99), "invalid_field"),
]

#: Every write to a vehicle after its certificate of destruction, correctly signed.
SCRAPPED_WRITES: list[tuple[str, KeyPair, Any, tuple[KeyPair, ...]]] = [
    ("sale", ALICE, TransferTitle(vin=VIN, to=BOB.did), (BOB,)),
    ("lien", BANK, RecordLien(vin=VIN, amount=1, currency="EUR"), (ALICE,)),
    ("registration_change", REG, ChangeRegistration(vin=VIN, usage="taxi"), ()),
    ("brand", INS, BrandTitle(vin=VIN, brand="flood"), ()),
    ("stolen_report", REG, BrandTitle(vin=VIN, brand="stolen"), ()),
    ("reading", SHOP, RecordOdometer(vin=VIN, value=10), ()),
    ("device_reading", DEVICE, RecordOdometer(vin=VIN, value=10), ()),
    ("cluster_replacement", SHOP, ReplaceCluster(vin=VIN, old_value=10, new_value=0), ()),
    ("service", SHOP, RecordService(vin=VIN, odometer=10, items=["oil"]), ()),
    ("inspection", REG, RecordInspection(vin=VIN, odometer=10, result="pass"), ()),
    ("accident", INS, RecordAccident(vin=VIN, date="2027-05-01", severity="minor", impact_areas=["rear"]), ()),
    ("repair", SHOP, RecordRepair(vin=VIN, odometer=10, items=["x"]), ()),
    ("second_deregistration", SCRAP, Deregister(vin=VIN, certificate="COD-2"), ()),
]
SCRAPPED_REFUSALS = [r(f"{name}_after_scrapping", scrapped, sender, msg, "vehicle_scrapped", *co)
                     for name, sender, msg, co in SCRAPPED_WRITES]

REFUSALS = VIN_REFUSALS + WMI_REFUSALS + TITLE_REFUSALS + BRAND_REFUSALS + ODOMETER_REFUSALS + SCRAPPED_REFUSALS


def rules_chain() -> Chain:
    """The test consortium plus a second lender (bank2), WMIs of oem and oem2 assigned."""
    return vehicles_chain(extra=[("bank2", ["lender"])])


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing_and_cannot_be_replayed(case: Refusal) -> None:
    chain = rules_chain()
    if case.setup is not None:
        case.setup(chain)
    before = snapshot(chain)
    raw = build_tx(case.sender, case.msg, *case.cosigners)
    receipt = chain.block(raw).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in (case.detail or {}).items():
        assert receipt.detail[k] == v, receipt.detail
    assert snapshot(chain) == before, "a failed transaction changed the ledger"
    again = chain.block(raw).receipts[0]
    assert (again.ok, again.code) == (False, "replayed_tx")
    assert snapshot(chain) == before


# ---------------------------------------------------------------- a VIN with '/' must not stop the chain


@pytest.mark.parametrize("sender,msg,cosigners", [
    pytest.param(K("outsider"), RecordOdometer(vin="WVW/ZZ1JZ00000001", value=1), (), id="reading_by_anyone"),
    pytest.param(K("outsider"), TransferTitle(vin="A/B", to=BOB.did), (BOB,), id="sale_by_anyone"),
    pytest.param(REG, BrandTitle(vin="WVW/", brand="stolen"), (), id="brand_by_police"),
])
def test_vin_with_slash_is_refused_not_a_crash(sender: KeyPair, msg: Any, cosigners: tuple) -> None:
    chain = rules_chain()
    height = chain.ledger.head.height
    receipt = chain.block(build_tx(sender, msg, *cosigners)).receipts[0]
    assert not receipt.ok and receipt.code in {"invalid_vin", "unknown_vehicle"}
    assert chain.ledger.head.height == height + 1


# ---------------------------------------------------------------- VINs that are accepted


EU_VIN_ANY_NINTH = [with_digit(VIN, c) for c in "0123456789XZAHJPRS"]


@pytest.mark.parametrize("vin", [
    pytest.param(NA_VIN, id="na_known_good_1HGCM82633A004352"),
    pytest.param("1M8GDM9AXKP042788", id="na_check_digit_X"),
    pytest.param("11111111111111111", id="na_all_ones"),
    *[pytest.param(v, id=f"european_ninth_char_{v[8]}") for v in EU_VIN_ANY_NINTH],
])
def test_valid_vin_is_registered(vin: str) -> None:
    chain = rules_chain()
    na_wmi(chain)
    receipt = chain.run(OEM, register_msg(vin))
    assert receipt.ok, receipt
    v = vehicle(chain, vin)
    assert v is not None and v.manufacturer == "oem" and v.holder == "org:oem" and v.owners == 0
    assert [e["type"] for e in history(chain, vin)] == ["birth"]
    assert holders(chain)[vin] == ["org:oem"]
    assert "vehicles.registered" in event_types(receipt)


def test_check_digit_applies_only_to_north_american_vins() -> None:
    """The same VIN body with a wrong check digit: refused after 1-5, accepted elsewhere."""
    body = "HGCM82633A004352"
    chain = rules_chain()
    for first in "123456789ABJKLSTVWXYZ":
        vin = first + body
        wrong = with_digit(vin, "X" if na_check_digit(vin) != "X" else "0")
        assign_wmi(chain, wrong[:3], "oem")
        receipt = chain.run(OEM, register_msg(wrong))
        assert receipt.ok is (first not in "12345"), (wrong, receipt)


def test_each_maker_registers_under_its_own_wmi() -> None:
    chain = rules_chain()
    v2 = vin_for(WMI["oem2"], 1)
    assert chain.run(OEM2, register_msg(v2)).ok
    assert vehicle(chain, v2).manufacturer == "oem2" and vehicle(chain, v2).holder == "org:oem2"
    assert chain.run(OEM, register_msg(VIN)).ok
    assert vehicle(chain, VIN).manufacturer == "oem"


# ---------------------------------------------------------------- title: manufacturer -> dealer -> owner


def test_title_passes_manufacturer_dealer_owner() -> None:
    chain = rules_chain()
    born(chain)
    assert chain.run(OEM, TransferTitle(vin=VIN, to="org:dealer"), DEALER).ok
    assert (vehicle(chain, VIN).holder, vehicle(chain, VIN).owners) == ("org:dealer", 0)
    receipt = chain.run(DEALER, TransferTitle(vin=VIN, to=ALICE.did), ALICE)
    assert receipt.ok and "vehicles.title_transferred" in event_types(receipt)
    v = vehicle(chain, VIN)
    assert (v.holder, v.owners, v.holder_since) == (ALICE.did, 1, chain.ledger.head.time)
    assert holders(chain)[VIN] == [ALICE.did]
    last = history(chain, VIN)[-1]
    assert last["type"] == "title_transfer"
    assert last["data"] == {"from": "org:dealer", "to": ALICE.did, "usage": "private", "owner": True, "owner_number": 1}


def test_private_sale_needs_seller_and_buyer() -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(BOB, TransferTitle(vin=VIN, to=BOB.did), ALICE).ok  # the buyer may send it
    assert vehicle(chain, VIN).holder == BOB.did
    assert chain.run(BOB, TransferTitle(vin=VIN, to=CAROL.did), CAROL).ok  # or the seller
    assert (vehicle(chain, VIN).holder, vehicle(chain, VIN).owners) == (CAROL.did, 3)


def test_dealer_sells_for_owner_with_owner_signature() -> None:
    chain = rules_chain()
    owned(chain)
    receipt = chain.run(DEALER, TransferTitle(vin=VIN, to=BOB.did), ALICE, BOB)
    assert receipt.ok, receipt
    entry = history(chain, VIN)[-1]
    assert (entry["by"], entry["org"], entry["data"]["from"], entry["data"]["to"]) == (DEALER.did, "dealer",
                                                                                      ALICE.did, BOB.did)


def test_stolen_vehicle_sold_after_recovery() -> None:
    chain = rules_chain()
    stolen(chain)
    assert vehicle(chain, VIN).status == "stolen" and "stolen" in vehicle(chain, VIN).brands
    assert chain.run(REG, BrandTitle(vin=VIN, brand="recovered")).ok
    v = vehicle(chain, VIN)
    assert v.status == "active" and "stolen" not in v.brands and "recovered" in v.brands
    assert chain.run(ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB).ok


def test_lien_follows_the_vehicle_until_released() -> None:
    chain = rules_chain()
    liened(chain)
    v = vehicle(chain, VIN)
    assert [(lien.id, lien.lender, lien.amount, lien.currency) for lien in v.liens] == [(1, "bank", 2_000_000, "EUR")]
    assert chain.run(ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, BANK).ok  # the lender co-signs the sale
    assert vehicle(chain, VIN).liens == v.liens  # the lien stays on the title
    assert not chain.run(BOB, TransferTitle(vin=VIN, to=CAROL.did), CAROL).ok
    receipt = chain.run(BANK, ReleaseLien(vin=VIN, lien=1))
    assert receipt.ok and vehicle(chain, VIN).liens == []
    assert history(chain, VIN)[-1]["data"] == {"lien": 1, "lender": "bank"}
    assert chain.run(BOB, TransferTitle(vin=VIN, to=CAROL.did), CAROL).ok  # no lender needed now


def test_two_liens_need_both_lenders() -> None:
    chain = rules_chain()
    liened(chain)
    assert chain.run(K("bank2-admin"), RecordLien(vin=VIN, amount=5, currency="USD"), ALICE).ok
    assert [lien.id for lien in vehicle(chain, VIN).liens] == [1, 2]
    assert chain.run(ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, BANK).code == "missing_cosigner"
    assert chain.run(ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, BANK, K("bank2-admin")).ok


def test_owner_count_skips_trade_holders() -> None:
    """Manufacturer and dealer holders are in the trade; a fleet or a person is an owner."""
    chain = rules_chain()
    born(chain)
    steps = [  # (current holder's key, new holder, new holder's key, owners after)
        (OEM, "org:dealer", DEALER, 0),
        (DEALER, ALICE.did, ALICE, 1),
        (ALICE, "org:fleet", FLEET, 2),
        (FLEET, "org:dealer", DEALER, 2),
        (DEALER, BOB.did, BOB, 3),
        (BOB, "org:oem2", OEM2, 3),
        (OEM2, "org:ins", INS, 4),
    ]
    for seller, to, buyer, owners in steps:
        receipt = chain.run(seller, TransferTitle(vin=VIN, to=to), buyer)
        assert receipt.ok, (to, receipt)
        assert (vehicle(chain, VIN).holder, vehicle(chain, VIN).owners) == (to, owners)
        assert holders(chain)[VIN] == [to]
    transfers = [e["data"] for e in history(chain, VIN) if e["type"] == "title_transfer"]
    assert [t["owner"] for t in transfers] == [False, True, True, False, True, False, True]
    assert [t["owner_number"] for t in transfers] == [0, 1, 2, 0, 3, 0, 4]


def test_usage_and_country_change_by_regulator() -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(REG, ChangeRegistration(vin=VIN, usage="taxi")).ok
    v = vehicle(chain, VIN)
    assert (v.usage, v.country) == ("taxi", "DE")
    assert history(chain, VIN)[-1]["data"]["from_usage"] == "private"
    assert chain.run(REG, ChangeRegistration(vin=VIN, country="FR")).ok
    v = vehicle(chain, VIN)
    assert (v.usage, v.country) == ("taxi", "FR")
    assert history(chain, VIN)[-1]["data"]["from_country"] == "DE"
    assert chain.run(REG, ChangeRegistration(vin=VIN, usage="private", country="AT")).ok
    assert (vehicle(chain, VIN).usage, vehicle(chain, VIN).country) == ("private", "AT")
    assert chain.run(ALICE, TransferTitle(vin=VIN, to="org:fleet", usage="rental"), FLEET).ok
    assert vehicle(chain, VIN).usage == "rental"


# ---------------------------------------------------------------- brands


def test_rebuilt_only_after_salvage() -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(INS, BrandTitle(vin=VIN, brand="salvage", reason="flooded")).ok
    receipt = chain.run(REG, BrandTitle(vin=VIN, brand="rebuilt", reason="passed rebuild inspection"))
    assert receipt.ok and "vehicles.branded" in event_types(receipt)
    assert vehicle(chain, VIN).brands == ["salvage", "rebuilt"]


def test_total_loss_accident_applies_salvage() -> None:
    chain = rules_chain()
    owned(chain)
    receipt = chain.run(INS, RecordAccident(vin=VIN, date="2027-05-01", severity="severe", impact_areas=["front"],
                                            airbags_deployed=True, structural_damage=True, total_loss=True))
    assert receipt.ok, receipt
    v = vehicle(chain, VIN)
    assert set(v.brands) == {"total_loss", "salvage"} and v.accidents == 1
    assert [e["type"] for e in history(chain, VIN)][-3:] == ["accident", "brand", "brand"]
    assert [e["brand"] for e in receipt.events if e["type"] == "vehicles.branded"] == ["total_loss", "salvage"]


def test_total_loss_declared_by_police_regulator() -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(REG, RecordAccident(vin=VIN, date="2027-05-01", severity="severe", impact_areas=["roof"],
                                         total_loss=True)).ok
    assert "salvage" in vehicle(chain, VIN).brands


# ---------------------------------------------------------------- odometer


def reading_entry(chain: Chain) -> dict[str, Any]:
    return history(chain, VIN)[-1]


@pytest.mark.parametrize("reporter,org", [(SHOP, "shop"), (INS, "ins"), (FLEET, "fleet"), (DEVICE, "")],
                         ids=["workshop", "insurer", "fleet", "device"])
def test_odometer_rollback_is_recorded_and_flagged(reporter: KeyPair, org: str) -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=10_000)).ok
    receipt = chain.run(reporter, RecordOdometer(vin=VIN, value=9_000))
    assert receipt.ok, receipt  # the claim is kept as evidence
    flagged = [e for e in receipt.events if e["type"] == "vehicles.odometer_flagged"]
    assert flagged == [{"type": "vehicles.odometer_flagged", "vin": VIN, "flag": "suspected_rollback",
                        "value_km": 9_000, "max_km": 10_000}]
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.rollbacks, o.readings, o.km, o.max_km) == ("not_actual", 1, 2, 9_000, 10_000)
    entry = reading_entry(chain)
    assert entry["type"] == "odometer" and entry["data"]["flag"] == "suspected_rollback"
    assert (entry["by"], entry["org"]) == (reporter.did, org)
    assert entry["data"]["source"] == ("device" if org == "" else "organisation")
    # a later honest reading does not clear the status
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=11_000)).ok
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.rollbacks, o.max_km) == ("not_actual", 1, 11_000)
    assert "flag" not in reading_entry(chain)["data"]


@pytest.mark.parametrize("sender,msg", [
    (SHOP, RecordService(vin=VIN, odometer=9_000, items=["oil"])),
    (DEALER, RecordService(vin=VIN, odometer=9_000, items=["oil"])),
    (REG, RecordInspection(vin=VIN, odometer=9_000, result="pass")),
    (SHOP, RecordRepair(vin=VIN, odometer=9_000, items=["door"])),
    (SHOP, ReplaceCluster(vin=VIN, old_value=9_000, new_value=0)),
], ids=["service_by_workshop", "service_by_dealer", "inspection", "repair", "cluster_replacement_understated"])
def test_rollback_in_any_reading_is_flagged(sender: KeyPair, msg: Any) -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=10_000)).ok
    receipt = chain.run(sender, msg)
    assert receipt.ok and "vehicles.odometer_flagged" in event_types(receipt)
    assert vehicle(chain, VIN).odometer.status == "not_actual"
    assert reading_entry(chain)["data"]["flag"] == "suspected_rollback"


@pytest.mark.parametrize("unit,old,new,later,km", [
    ("km", 150_000, 0, 500, 150_500),
    ("km", 150_000, 20, 30, 150_010),
    ("mi", 100_000, 0, 10, 160_950),  # 160 934 km + 16 km
])
def test_no_rollback_after_cluster_replacement(unit: str, old: int, new: int, later: int, km: int) -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=old, unit=unit)).ok
    receipt = chain.run(SHOP, ReplaceCluster(vin=VIN, old_value=old, new_value=new, unit=unit))
    assert receipt.ok and "vehicles.odometer_flagged" not in event_types(receipt)
    assert reading_entry(chain)["type"] == "cluster_replaced"
    receipt = chain.run(SHOP, RecordOdometer(vin=VIN, value=later, unit=unit))
    assert receipt.ok and "vehicles.odometer_flagged" not in event_types(receipt)
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.km, o.max_km, o.rollbacks) == ("actual", km, km, 0)
    assert reading_entry(chain)["data"]["km"] == km


def test_without_cluster_replacement_the_same_reading_is_a_rollback() -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=150_000)).ok
    assert "vehicles.odometer_flagged" in event_types(chain.run(SHOP, RecordOdometer(vin=VIN, value=500)))


@pytest.mark.parametrize("miles,km", [(0, 0), (1, 1), (3, 4), (100, 160), (1_000, 1_609), (62_137, 99_999),
                                      (621_371, 999_999)])
def test_miles_are_converted_to_whole_km(miles: int, km: int) -> None:
    """1 mi = 1.609344 km exactly, rounded down."""
    chain = rules_chain()
    owned(chain)
    assert chain.run(DEVICE, RecordOdometer(vin=VIN, value=miles, unit="mi")).ok
    assert vehicle(chain, VIN).odometer.km == km
    data = reading_entry(chain)["data"]
    assert (data["value"], data["unit"], data["km"]) == (miles, "mi", km)


@pytest.mark.parametrize("value,unit", [(100_000, "km"), (62_138, "mi"), (5_000_000, "km")])
def test_reading_beyond_mechanical_limit_is_flagged(value: int, unit: str) -> None:
    chain = rules_chain()
    register(chain, VIN, odometer_limit_km=99_999)
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=50_000)).ok
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=99_999)).ok  # the limit itself is fine
    assert vehicle(chain, VIN).odometer.status == "actual"
    receipt = chain.run(SHOP, RecordOdometer(vin=VIN, value=value, unit=unit))
    assert receipt.ok
    assert [e["flag"] for e in receipt.events if e["type"] == "vehicles.odometer_flagged"] == [
        "exceeds_mechanical_limits"]
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.max_km, o.rollbacks) == ("exceeds_mechanical_limits", 99_999, 0)
    assert reading_entry(chain)["data"]["flag"] == "exceeds_mechanical_limits"
    # the impossible value is not the new maximum: a plausible next reading is no rollback
    receipt = chain.run(SHOP, RecordOdometer(vin=VIN, value=99_999))
    assert "vehicles.odometer_flagged" not in event_types(receipt)


def test_cluster_replacement_with_impossible_old_value_does_not_inflate_later_readings() -> None:
    chain = rules_chain()
    register(chain, VIN, odometer_limit_km=99_999)
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=50_000)).ok
    receipt = chain.run(SHOP, ReplaceCluster(vin=VIN, old_value=5_000_000, new_value=0))
    assert receipt.ok and reading_entry(chain)["data"]["flag"] == "exceeds_mechanical_limits"
    assert chain.run(SHOP, RecordOdometer(vin=VIN, value=100)).ok
    assert vehicle(chain, VIN).odometer.km == 50_100  # offset from the trusted maximum, as after a rollback claim
    assert vehicle(chain, VIN).odometer.max_km == 50_100


# ---------------------------------------------------------------- end of life


def test_scrapped_vehicle_keeps_its_history_readable() -> None:
    chain = rules_chain()
    owned(chain)
    assert chain.run(SHOP, RecordService(vin=VIN, odometer=30_000, items=["brakes"])).ok
    receipt = chain.run(SCRAP, Deregister(vin=VIN, certificate="COD-2027-001"), ALICE)
    assert receipt.ok and "vehicles.deregistered" in event_types(receipt)
    v = vehicle(chain, VIN)
    assert (v.status, v.certificate, v.holder) == ("scrapped", "COD-2027-001", ALICE.did)
    assert VIN not in holders(chain)
    view = MemoryView(chain)
    h = queries.history(view, queries.HistoryQuery(vin=VIN))
    assert [e["type"] for e in h["entries"]] == ["birth", "title_transfer", "title_transfer", "service",
                                                "deregistered"]
    assert (h["total"], h["head"]) == (v.history.count, v.history.head)
    assert queries.vehicle(view, queries.VinQuery(vin=VIN))["status"] == "scrapped"
    assert queries.vehicles_of(view, queries.HolderQuery(holder=ALICE.did))["total"] == 0


# ---------------------------------------------------------------- history hash


def test_history_head_recomputes_from_entries_and_detects_tampering() -> None:
    chain = rules_chain()
    owned(chain)
    for value in (1_000, 2_000, 1_500):
        assert chain.run(DEVICE, RecordOdometer(vin=VIN, value=value)).ok
    rows = history_rows(chain, VIN)
    v = vehicle(chain, VIN)
    raws = [r["entry"] for r in rows]
    assert [r["seq"] for r in rows] == list(range(1, v.history.count + 1))
    assert history_head(raws) == (v.history.count, v.history.head)
    assert all(canonical(msgspec.json.decode(raw)) == raw for raw in raws)
    assert history_head(raws[:-1])[1] != v.history.head  # dropped
    assert history_head([raws[1], raws[0], *raws[2:]])[1] != v.history.head  # reordered
    altered = msgspec.json.decode(raws[-1])
    altered["data"]["value"] = 3_000
    assert history_head([*raws[:-1], canonical(altered)])[1] != v.history.head  # altered


# ---------------------------------------------------------------- queries through a live node


def test_queries_through_the_http_api(live_node: Any) -> None:
    oem, reg, dev = K("oem-admin"), K("reg-admin"), K("dev-live")
    with live_node.client(trust=live_node.genesis) as c:
        assert c.send(AssignWmi(wmi="WVW", org="oem"), reg).ok
        born_at = c.send(register_msg(VIN, device_keys=[dev.did]), oem)
        assert born_at.ok
        sent = [born_at]
        for value, reporter in ((100, oem), (2_000, dev), (1_500, oem), (4_000, dev), (6_000, oem)):
            sent.append(c.send(RecordOdometer(vin=VIN, value=value), reporter))
        sent.append(c.send(TransferTitle(vin=VIN, to=ALICE.did), oem, ALICE))
        assert all(info.ok for info in sent)

    def get(path: str, **params: Any) -> httpx.Response:
        return live_node.http.get(path, params=params, timeout=30)

    rec = get("/v1/q/vehicles/vehicle", vin=VIN)
    assert rec.status_code == 200
    v = rec.json()["result"]
    assert (v["vin"], v["holder"], v["owners"], v["manufacturer"]) == (VIN, ALICE.did, 1, "oem")
    assert (v["odometer"]["status"], v["odometer"]["rollbacks"], v["odometer"]["max_km"]) == ("not_actual", 1, 6_000)
    assert v["history"]["count"] == len(sent) and set(v["decoded"]) == {"manufacturer", "country", "region"}

    pages = []
    for offset in range(0, len(sent), 3):
        page = get("/v1/q/vehicles/history", vin=VIN, limit=3, offset=offset)
        assert page.status_code == 200
        body = page.json()["result"]
        assert (body["vin"], body["total"], body["head"]) == (VIN, len(sent), v["history"]["head"])
        assert len(body["entries"]) == min(3, len(sent) - offset)
        pages += body["entries"]
    assert [e["seq"] for e in pages] == list(range(1, len(sent) + 1))
    for entry, info in zip(pages, sent):
        assert (entry["tx"], entry["height"]) == (info.id, info.height)
        assert entry["by"] in {oem.did, dev.did} and entry["org"] in {"oem", ""}
        assert entry["time"] >= live_node.genesis.time
    assert [e["org"] for e in pages[1:6]] == ["oem", "", "oem", "", "oem"]
    assert [e["data"].get("flag") for e in pages[1:6]] == [None, None, "suspected_rollback", None, None]
    assert history_head(canonical(e) for e in pages) == (len(sent), v["history"]["head"])
    beyond = get("/v1/q/vehicles/history", vin=VIN, limit=3, offset=len(sent)).json()["result"]
    assert beyond["entries"] == [] and beyond["total"] == len(sent)

    mine = get("/v1/q/vehicles/vehicles_of", holder=ALICE.did).json()["result"]
    assert mine["total"] == 1 and [x["vin"] for x in mine["vehicles"]] == [VIN]
    assert mine["vehicles"][0]["since"] == sent[-1].checkpoint.header.time
    assert get("/v1/q/vehicles/vehicles_of", holder="org:oem").json()["result"]["total"] == 0

    wmi = get("/v1/q/vehicles/wmi", wmi="WVW").json()["result"]
    assert (wmi["wmi"], wmi["org"]) == ("WVW", "oem")
    assert get("/v1/q/vehicles/wmi", wmi="SAL").json()["result"]["org"] is None

    for path in ("/v1/q/vehicles/vehicle", "/v1/q/vehicles/history"):
        missing = get(path, vin=vin_for("WVW", 404))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path,params,statuses", [
    ("/v1/q/vehicles/vehicle", {"vin": "WVW/ZZ1JZ00000001"}, {400, 404}),
    ("/v1/q/vehicles/history", {"vin": "WVW/ZZ1JZ00000001"}, {400, 404}),
    ("/v1/q/vehicles/wmi", {"wmi": "W/W"}, {200, 400, 404}),  # "no organisation" would do too
], ids=["vehicle", "history", "wmi"])
def test_query_with_slash_in_key_is_not_a_server_error(live_node: Any, path: str, params: dict[str, str],
                                                       statuses: set[int]) -> None:
    answer = live_node.http.get(path, params=params, timeout=30)
    assert answer.status_code in statuses, answer.text
