"""Who may send each vehicles message: every message against a key of every organisation, an
outsider, the vehicle's private owner, its device key and another vehicle's device key.

The table below states the intended permissions (from the issue and DESIGN §6), not what the
module declares, and the matrix is generated from it: one test per (case, actor). A refusal
must carry its stable code and change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.vehicles.messages import (
    AddDeviceKey,
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
    RevokeDeviceKey,
    RotateDeviceKey,
    TransferTitle,
)
from blokauto.modules.vehicles.state import ORG_PREFIX

from conftest import Chain, K
from helpers.permissions import expected_code as permission_code
from helpers.vehicles import ORGS, WMI, admin, register, register_msg, snapshot, vehicles_chain, vin_for

VIN = vin_for(WMI["oem"], 1)
OTHER_VIN = vin_for(WMI["oem"], 9)
OWNER, BUYER = K("alice"), K("bob")
DEVICE, OTHER_DEVICE, NEW_DEVICE = K("dev-1"), K("dev-9"), K("dev-new")

#: Every actor of the matrix: a founding admin key of each organisation, and keys outside it.
ACTORS: dict[str, KeyPair] = {
    **{org: admin(org) for org in ORGS},
    "outsider": K("outsider"),
    "owner": OWNER,  # the private title holder of VIN
    "device": DEVICE,  # VIN's own device key
    "other_device": OTHER_DEVICE,  # a device key of another vehicle
}


def base_chain() -> Chain:
    """VIN (device dev-1) sold oem -> dealer -> alice; OTHER_VIN (device dev-9) still at oem."""
    chain = vehicles_chain()
    register(chain, VIN, device_keys=[DEVICE.did])
    register(chain, OTHER_VIN, device_keys=[OTHER_DEVICE.did])
    assert chain.run(admin("oem"), TransferTitle(vin=VIN, to=ORG_PREFIX + "dealer"), admin("dealer")).ok
    assert chain.run(admin("dealer"), TransferTitle(vin=VIN, to=OWNER.did), OWNER).ok
    return chain


def with_lien(chain: Chain) -> None:
    assert chain.run(admin("bank"), RecordLien(vin=VIN, amount=1_500_000, currency="EUR"), OWNER).ok


def with_brand(brand: str, by: str) -> Callable[[Chain], None]:
    def setup(chain: Chain) -> None:
        assert chain.run(admin(by), BrandTitle(vin=VIN, brand=brand)).ok

    return setup


@dataclass(frozen=True)
class Case:
    """One message sent by each actor in turn.

    ``roles``: the roles that may send the message at all (None: any key); ``allowed``: the actors
    for which it passes; ``refusal``: the code for an actor that may send but is not allowed here;
    ``cosigners(actor)``: who signs besides the sender.
    """

    name: str
    msg: Callable[[], Any]
    roles: frozenset[str] | None
    allowed: frozenset[str]
    refusal: str = ""
    cosigners: Callable[[str], list[KeyPair]] = lambda actor: []
    setup: Callable[[Chain], None] | None = None
    sender: KeyPair | None = None  # when set, the actor co-signs instead of sending
    overrides: dict[str, str] = field(default_factory=dict)


def signers(*keys: KeyPair) -> Callable[[str], list[KeyPair]]:
    """These co-signers, without the actor itself (a key signs once)."""
    return lambda actor: [k for k in keys if k.did != ACTORS[actor].did]


def brand_case(brand: str, allowed: set[str], setup: Callable[[Chain], None] | None = None) -> Case:
    return Case(f"brand_{brand}", lambda: BrandTitle(vin=VIN, brand=brand, reason="test"),
                frozenset({"insurer", "regulator", "inspector", "recycler", "manufacturer", "police"}),
                frozenset(allowed), "brand_not_allowed", setup=setup)


READERS = {"oem", "oem2", "dealer", "shop", "ins", "reg", "fleet", "device"}

CASES: list[Case] = [
    Case("assign_wmi", lambda: AssignWmi(wmi="SAL", org="oem2"), frozenset({"regulator"}), frozenset({"reg"})),
    Case("register_under_oem_wmi", lambda: register_msg(vin_for(WMI["oem"], 2)), frozenset({"manufacturer"}),
         frozenset({"oem"}), "wmi_not_yours"),
    # a sale: the holder (alice) and the buyer (bob) sign, whoever sends it
    Case("sale_signed_by_buyer_only", lambda: TransferTitle(vin=VIN, to=BUYER.did), None, frozenset({"owner"}),
         "missing_cosigner", signers(BUYER)),
    Case("sale_signed_by_holder_and_buyer", lambda: TransferTitle(vin=VIN, to=BUYER.did), None,
         frozenset(ACTORS), cosigners=signers(OWNER, BUYER)),
    Case("sale_under_lien_signed_by_holder_and_buyer", lambda: TransferTitle(vin=VIN, to=BUYER.did), None,
         frozenset({"bank"}), "missing_cosigner", signers(OWNER, BUYER), with_lien),
    # alice sells to bob and the actor adds a signature nobody asked for
    Case("sale_with_stray_cosigner", lambda: TransferTitle(vin=VIN, to=BUYER.did), None, frozenset({"owner"}),
         "unexpected_signer", signers(BUYER), sender=OWNER),
    Case("record_lien_with_holder", lambda: RecordLien(vin=VIN, amount=900_000, currency="EUR"),
         frozenset({"lender"}), frozenset({"bank"}), cosigners=signers(OWNER)),
    Case("record_lien_without_holder", lambda: RecordLien(vin=VIN, amount=900_000, currency="EUR"),
         frozenset({"lender"}), frozenset(), "missing_cosigner"),
    Case("release_lien", lambda: ReleaseLien(vin=VIN, lien=1), frozenset({"lender"}), frozenset({"bank"}),
         setup=with_lien),
    Case("change_registration", lambda: ChangeRegistration(vin=VIN, usage="taxi", country="FR"),
         frozenset({"regulator"}), frozenset({"reg"})),
    brand_case("salvage", {"ins", "reg"}),
    brand_case("total_loss", {"ins", "reg"}),
    brand_case("flood", {"ins", "reg"}),
    brand_case("fire", {"ins", "reg"}),
    brand_case("hail", {"ins", "reg"}),
    brand_case("junk", {"scrap", "reg"}),
    brand_case("rebuilt", {"reg"}, with_brand("salvage", "ins")),
    # only the vehicle's own manufacturer (or a regulator) buys it back as a lemon
    Case("brand_lemon", lambda: BrandTitle(vin=VIN, brand="lemon", reason="test"),
         frozenset({"insurer", "regulator", "inspector", "recycler", "manufacturer", "police"}),
         frozenset({"oem", "reg"}), "brand_not_allowed", overrides={"oem2": "brand_rule"}),
    brand_case("stolen", {"reg"}),
    brand_case("recovered", {"reg"}, with_brand("stolen", "reg")),
    Case("record_odometer", lambda: RecordOdometer(vin=VIN, value=12_000), None, frozenset(READERS),
         "not_vehicle_device"),
    Case("record_odometer_in_miles", lambda: RecordOdometer(vin=VIN, value=7_500, unit="mi"), None,
         frozenset(READERS), "not_vehicle_device"),
    Case("replace_cluster", lambda: ReplaceCluster(vin=VIN, old_value=12_000, new_value=0),
         frozenset({"workshop"}), frozenset({"shop"})),
    Case("record_service", lambda: RecordService(vin=VIN, odometer=15_000, items=["oil", "filter"]),
         frozenset({"workshop", "dealer"}), frozenset({"shop", "dealer"})),
    Case("record_inspection", lambda: RecordInspection(vin=VIN, odometer=20_000, result="pass"),
         frozenset({"inspector"}), frozenset({"reg"})),
    Case("record_accident", lambda: RecordAccident(vin=VIN, date="2027-03-01", severity="minor",
                                                   impact_areas=["rear"]),
         frozenset({"insurer", "police", "workshop"}), frozenset({"ins", "reg", "shop"})),
    Case("record_accident_total_loss", lambda: RecordAccident(vin=VIN, date="2027-03-01", severity="severe",
                                                              impact_areas=["front"], total_loss=True),
         frozenset({"insurer", "police", "workshop"}), frozenset({"ins", "reg"}), "brand_not_allowed"),
    Case("record_repair", lambda: RecordRepair(vin=VIN, odometer=21_000, items=["bumper"]),
         frozenset({"workshop"}), frozenset({"shop"})),
    # the holder surrenders the title: the owner co-signs the recycler's deregistration
    Case("deregister", lambda: Deregister(vin=VIN, certificate="COD-1"), frozenset({"recycler"}),
         frozenset({"scrap"}), cosigners=signers(OWNER)),
    Case("deregister_without_holder", lambda: Deregister(vin=VIN, certificate="COD-1"), frozenset({"recycler"}),
         frozenset(), "missing_cosigner"),
    # device keys: the holder or the maker revokes; a rotation is signed by old key, new key and one of them
    Case("revoke_device_key", lambda: RevokeDeviceKey(vin=VIN, key=DEVICE.did, reason="lost"), None,
         frozenset({"owner", "oem"}), "not_holder_or_maker"),
    Case("rotate_device_key_with_holder", lambda: RotateDeviceKey(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), None,
         frozenset(ACTORS), cosigners=signers(DEVICE, NEW_DEVICE, OWNER)),
    Case("rotate_device_key_without_holder_or_maker",
         lambda: RotateDeviceKey(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), None, frozenset({"owner", "oem"}),
         "missing_cosigner", signers(DEVICE, NEW_DEVICE)),
    Case("add_device_key", lambda: AddDeviceKey(vin=VIN, key=NEW_DEVICE.did), None, frozenset({"owner"}),
         "missing_cosigner", signers(NEW_DEVICE)),
    Case("add_device_key_with_the_holder", lambda: AddDeviceKey(vin=VIN, key=NEW_DEVICE.did), None, frozenset(ACTORS),
         cosigners=signers(OWNER, NEW_DEVICE)),
]


def expected_code(case: Case, actor: str) -> str | None:
    """None when ``actor`` may do it; else the refusal code (helpers.permissions)."""
    return permission_code(case, actor, ORGS)


MATRIX = [pytest.param(case, actor, id=f"{case.name}-{actor}") for case in CASES for actor in ACTORS]


@pytest.mark.parametrize(("case", "actor"), MATRIX)
def test_permission_matrix(case: Case, actor: str) -> None:
    chain = base_chain()
    if case.setup is not None:
        case.setup(chain)
    before = snapshot(chain)
    if case.sender is None:
        receipt = chain.run(ACTORS[actor], case.msg(), *case.cosigners(actor))
    else:
        receipt = chain.run(case.sender, case.msg(), *case.cosigners(actor), ACTORS[actor])
    code = expected_code(case, actor)
    if code is None:
        assert receipt.ok, receipt
        assert snapshot(chain) != before
    else:
        assert (receipt.ok, receipt.code) == (False, code), receipt
        assert snapshot(chain) == before, "a refused transaction changed the ledger"


def test_matrix_covers_every_vehicles_message() -> None:
    """A new message type must get rows here (and so a decision on who may send it)."""
    from blokauto.modules import default_registry

    declared = {t for t in default_registry().messages if t.startswith("vehicles.")}
    covered = {type(case.msg()).__struct_config__.tag for case in CASES}
    assert covered == declared
    assert {c.name.removeprefix("brand_") for c in CASES if c.name.startswith("brand_")} == {
        "salvage", "junk", "rebuilt", "flood", "fire", "hail", "lemon", "total_loss", "stolen", "recovered"}


def test_brand_table_matches_the_module() -> None:
    """The matrix's brand rows state the same rule as handlers.BRAND_ROLES (by organisation)."""
    from blokauto.modules.vehicles.handlers import BRAND_ROLES

    for case in CASES:
        if case.name.startswith("brand_"):
            brand = case.name.removeprefix("brand_")
            by_roles = {org for org, roles in ORGS.items() if set(roles) & BRAND_ROLES[brand]}
            # an override is an organisation the role allows but a finer rule refuses (lemon: not its maker)
            assert by_roles == set(case.allowed) | set(case.overrides), brand
