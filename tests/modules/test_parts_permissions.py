"""Who may send each parts and recalls message: every message against a key of each kind of
organisation (supplier, another supplier, manufacturer, another manufacturer, workshop, dealer,
recycler, auditor, regulator, insurer), an outsider key and a condition-logger device key.

The table states the intended permissions (from the issue and DESIGN §6), not what the modules
declare, and the matrix is generated from it: one test per (case, actor). A refusal must carry
its stable code and change nothing; an allowed message must change the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.parts.messages import (AttestLot, ConditionReading, IssuePassport, LogConditions, LotOutput,
                                             LotPortion, MergeLots, RecoverMaterial, RegisterLogger, RegisterPartType,
                                             SplitLot, TransformLots)
from blokauto.modules.recalls.messages import CloseCampaign, ConfirmSoftwareRemedy, RecordRemedy
from blokauto.modules.recalls.state import SoftwareFix
from blokauto.modules.vehicles.messages import Deregister

from conftest import Chain, K
from helpers.permissions import expected_code as permission_code
from helpers.parts import (
    VALID_UNTIL,
    ALL_ORGS,
    B,
    LOGGER_SUP,
    OEM,
    OEM2,
    SCRAP,
    SUP,
    V1,
    V3,
    W1,
    Scope,
    admin,
    assemble,
    campaign,
    install,
    lot,
    mint,
    mint_batch,
    ok,
    part_type,
    parts_chain,
    receive,
    register_msg,
    remove,
    ship,
    supplied,
)
from helpers.vehicles import snapshot

#: The actors of the matrix: organisation admin keys (an admin key holds all its organisation's roles).
ORG_ACTORS = ["sup", "sup2", "oem", "oem2", "shop", "dealer", "scrap", "audit", "reg", "ins"]
ACTORS: dict[str, KeyPair] = {
    **{org: admin(org) for org in ORG_ACTORS},
    "outsider": K("outsider"),
    "logger": LOGGER_SUP,  # sup's registered condition-logger device
}
MEMBERS = frozenset(ORG_ACTORS)



def base_chain() -> Chain:
    """``supplied`` plus: PAD batch B2 (5 units) at sup; in V1, installed by oem: HOSE:H1 (under
    oem's open campaign 1, which has an over-the-air remedy), BRK:S1 and 2 units of PAD:B1; W1
    (oem2's) carries 2 units of PAD:B3; V3 carried BRK:S3 when the recycler deregistered it."""
    chain = parts_chain()
    supplied(chain)
    ok(chain, SUP, mint_batch("PAD", "B2", 5))
    ok(chain, SUP, part_type("HOSE"))
    ok(chain, SUP, mint("HOSE", "H1"))
    ok(chain, SUP, ship("oem", "HOSE:H1"))
    ok(chain, OEM, receive("HOSE:H1"))
    ok(chain, OEM2, register_msg(W1))
    ok(chain, OEM, register_msg(V3))
    ok(chain, OEM, install(V1, "HOSE:H1", "BRK:S1", B("PAD:B1", 2)))
    ok(chain, OEM, install(V3, "BRK:S3"))
    ok(chain, SCRAP, Deregister(vin=V3, certificate="COD-3"), OEM)
    ok(chain, SUP, mint_batch("PAD", "B3", 4))
    ok(chain, SUP, ship("oem2", "PAD:B3"))
    ok(chain, OEM2, receive("PAD:B3"))
    ok(chain, OEM2, install(W1, B("PAD:B3", 2)))
    ok(chain, OEM, campaign("C-1", Scope(part_numbers=["HOSE"]), ota_remedy=True,
                            software_fix=SoftwareFix(hardware_id="hose-ctl", min_release_counter=2)))
    return chain


def shipped(item: str, to: str, by: KeyPair = SUP) -> Callable[[Chain], None]:
    def setup(chain: Chain) -> None:
        ok(chain, by, ship(to, item))

    return setup


@dataclass(frozen=True)
class Case:
    """One message sent by each actor in turn.

    ``roles``: the roles that may send it at all (None: any key, the handler decides; "member":
    any organisation key); ``allowed``: actors for which it passes; ``refusal``: the code for an
    actor that holds a right role (or any key, when roles is None) but is still not allowed;
    ``overrides``: actor -> code where a finer rule decides.
    """

    name: str
    msg: Callable[[], Any]
    roles: frozenset[str] | str | None
    allowed: frozenset[str]
    refusal: str = ""
    setup: Callable[[Chain], None] | None = None
    cosigners: tuple[KeyPair, ...] = ()
    overrides: dict[str, str] = field(default_factory=dict)


MAKERS = frozenset({"supplier", "manufacturer"})
READING = [ConditionReading(time=1, temp_dc=215, shock_mg=300, humidity_pct=40)]

CASES: list[Case] = [
    # catalogue and raw materials
    Case("register_part_type", lambda: part_type("NEW-1"), MAKERS, frozenset({"sup", "sup2", "oem", "oem2"})),
    Case("register_material_lot", lambda: lot("L-NEW", 500), frozenset({"supplier"}), frozenset({"sup", "sup2"})),
    Case("attest_material_lot", lambda: AttestLot(lot="L1", standard="RMAP", result="conformant", report="R-1", valid_until=VALID_UNTIL),
         frozenset({"auditor"}), frozenset({"audit"})),
    # lots from lots: only the lot's custodian splits, merges or transforms it
    Case("split_lot", lambda: SplitLot(lot="L1", into=[LotPortion(lot="L1-A", mass_g=100)]), MAKERS,
         frozenset({"sup"}), "not_custodian"),
    Case("merge_lots", lambda: MergeLots(lots=[LotPortion(lot="L1", mass_g=100), LotPortion(lot="L2", mass_g=50)],
                                         into="L-MERGED"), MAKERS, frozenset({"sup"}), "not_custodian",
         setup=lambda c: ok(c, SUP, lot("L2", 100))),
    Case("transform_lots", lambda: TransformLots(inputs=[LotPortion(lot="L1", mass_g=100)],
                                                 outputs=[LotOutput(lot="L-SO4", material="cobalt-sulfate", mass_g=50)],
                                                 process="refining", yield_ppm=600_000),
         MAKERS, frozenset({"sup"}), "not_custodian"),
    # a recycler recovers material from parts it harvested (BRK:S3 out of the deregistered V3)
    Case("recover_material", lambda: RecoverMaterial(parts=["BRK:S3"], lot="L-REC", material="steel", mass_g=900,
                                                     country="DE"),
         frozenset({"recycler"}), frozenset({"scrap"}), setup=lambda c: ok(c, SCRAP, remove(V3, "BRK:S3"))),
    # a battery pack's passport: only the pack's maker
    Case("issue_passport", lambda: IssuePassport(pack="BAT:P1", category="ev", chemistry="NMC811", capacity_wh=83_000,
                                                 nominal_voltage_mv=400_000, mass_g=480_000,
                                                 carbon_footprint_g_per_kwh=61_000, carbon_footprint_report="CF-1",
                                                 due_diligence_report="DD-1"),
         MAKERS, frozenset({"sup"}), "not_the_maker",
         setup=lambda c: (ok(c, SUP, RegisterPartType(part_number="BAT", name="pack", category="battery",
                                                      serialized=True)), ok(c, SUP, mint("BAT", "P1")))),
    # twins: only the organisation that owns the part number mints
    Case("mint_serialized_parts", lambda: mint("BRK", "S9"), MAKERS, frozenset({"sup"}), "not_the_supplier"),
    Case("mint_batch", lambda: mint_batch("PAD", "B9", 5), MAKERS, frozenset({"sup"}), "not_the_supplier"),
    Case("mint_batch_consuming_a_lot", lambda: mint_batch("PAD", "B9", 5, ("L1", 100)), MAKERS,
         frozenset({"sup"}), "not_the_supplier"),
    Case("assemble_cells_into_pack", lambda: assemble("PACK:K1", "CELL:C-1", "CELL:C-2"), MAKERS,
         frozenset({"sup"}), "not_custodian"),
    # custody: the custodian ships, the named receiver receives
    Case("ship_part", lambda: ship("shop", "BRK:S4"), None, frozenset({"sup"}), "not_custodian"),
    Case("ship_batch", lambda: ship("shop", "PAD:B2"), None, frozenset({"sup"}), "not_custodian"),
    Case("ship_removed_part", lambda: ship("sup", "BRK:S1"), None, frozenset({"shop"}), "not_custodian",
         setup=lambda c: ok(c, admin("shop"), remove(V1, "BRK:S1"))),
    Case("receive_part", lambda: receive("BRK:S4"), None, frozenset({"shop"}), "not_in_transit",
         setup=shipped("BRK:S4", "shop")),
    Case("receive_batch", lambda: receive("PAD:B2"), None, frozenset({"shop"}), "not_in_transit",
         setup=shipped("PAD:B2", "shop")),
    # condition logs: a logger device of the custodian signs them
    Case("register_logger", lambda: RegisterLogger(logger=K("new-logger").did), "member", MEMBERS,
         cosigners=(K("new-logger"),)),
    Case("log_conditions_at_supplier", lambda: LogConditions(part="BRK:S4", readings=READING), None,
         frozenset({"logger"}), "not_a_logger"),
    # installation: a manufacturer at build, a workshop at service
    Case("install_at_build", lambda: install(V1, "BRK:S2"), frozenset({"manufacturer", "workshop"}),
         frozenset({"oem"}), "not_custodian", overrides={"oem2": "not_your_vehicle"}),
    Case("install_at_service", lambda: install(V1, "BRK:S5"), frozenset({"manufacturer", "workshop"}),
         frozenset({"shop"}), "not_custodian", overrides={"oem2": "not_your_vehicle"}),
    Case("install_batch_units", lambda: install(V1, B("PAD:B2", 2)), frozenset({"manufacturer", "workshop"}),
         frozenset({"shop"}), "not_custodian", overrides={"oem2": "not_your_vehicle"}, setup=lambda c: (ok(c, SUP, ship("shop", "PAD:B2")),
                                                               ok(c, admin("shop"), receive("PAD:B2")))),
    # oem holds BRK:S2; W1 was built by oem2
    Case("install_into_another_makers_vehicle", lambda: install(W1, "BRK:S2"),
         frozenset({"manufacturer", "workshop"}), frozenset(), "not_custodian",
         overrides={"oem": "not_your_vehicle"}),
    Case("remove_at_service", lambda: remove(V1, "BRK:S1"), frozenset({"workshop", "recycler"}),
         frozenset({"shop"}), "not_installed", overrides={"scrap": "vehicle_not_deregistered"}),
    Case("remove_batch_units", lambda: remove(V1, B("PAD:B1", 1)), frozenset({"workshop", "recycler"}),
         frozenset({"shop"}), "not_installed", overrides={"scrap": "vehicle_not_deregistered"}),
    Case("harvest_from_deregistered_vehicle", lambda: remove(V3, "BRK:S3"), frozenset({"workshop", "recycler"}),
         frozenset({"scrap"}), "vehicle_scrapped"),
    # recalls
    Case("open_campaign", lambda: campaign("C-2", Scope(part_numbers=["PAD"])),
         frozenset({"manufacturer", "regulator"}), frozenset({"oem", "oem2", "reg"})),
    Case("close_campaign", lambda: CloseCampaign(campaign=1, reason="done"), frozenset({"manufacturer", "regulator"}),
         frozenset({"oem", "reg"}), "not_your_campaign"),
    Case("record_workshop_remedy", lambda: RecordRemedy(campaign=1, vin=V1, notes="hose replaced"),
         frozenset({"workshop", "dealer", "manufacturer"}), frozenset({"shop", "dealer"}), "not_your_campaign"),
    # an over-the-air remedy is the vehicle's own manifest (software.report_manifest): nobody attests it
    Case("record_software_remedy", lambda: RecordRemedy(campaign=1, vin=V1, method="software"),
         frozenset({"workshop", "dealer", "manufacturer"}), frozenset(), "remedy_needs_manifest"),
    # anyone may point at the proof on the ledger; here no vehicle runs the fix, so nobody succeeds
    Case("confirm_software_remedy", lambda: ConfirmSoftwareRemedy(campaign=1, vin=V1), None, frozenset(),
         "fix_not_installed"),
]


def expected_code(case: Case, actor: str) -> str | None:
    """None when ``actor`` may do it; else the refusal code (helpers.permissions)."""
    return permission_code(case, actor, ALL_ORGS, MEMBERS)


def _param(case: Case, actor: str) -> Any:
    return pytest.param(case, actor, id=f"{case.name}-{actor}")


MATRIX = [_param(case, actor) for case in CASES for actor in ACTORS]


@pytest.mark.parametrize(("case", "actor"), MATRIX)
def test_permission_matrix(case: Case, actor: str) -> None:
    chain = base_chain()
    if case.setup is not None:
        case.setup(chain)
    before = snapshot(chain)
    receipt = chain.run(ACTORS[actor], case.msg(), *case.cosigners)
    code = expected_code(case, actor)
    if code is None:
        assert receipt.ok, receipt
        assert snapshot(chain) != before
    else:
        assert not receipt.ok, f"{actor} was allowed to {case.name}"
        assert code == "*" or receipt.code == code, receipt
        assert receipt.events == []
        assert snapshot(chain) == before, "a refused transaction changed the ledger"


def test_matrix_covers_every_parts_and_recalls_message() -> None:
    """A new message type must get rows here (and so a decision on who may send it)."""
    from blokauto.modules import default_registry

    declared = {t for t in default_registry().messages if t.split(".")[0] in ("parts", "recalls")}
    covered = {type(case.msg()).__struct_config__.tag for case in CASES}
    assert covered == declared


def test_table_roles_match_the_declarations() -> None:
    """Where the table names roles, they are the roles the modules declare (a role change must be
    decided here too); ANYONE/MEMBER messages leave the decision to the handler."""
    from blokauto.core.module import ANYONE, MEMBER
    from blokauto.modules import default_registry

    messages = default_registry().messages
    for case in CASES:
        declared = messages[type(case.msg()).__struct_config__.tag].roles
        if case.roles is None:
            assert declared == ANYONE, case.name
        elif case.roles == "member":
            assert declared == MEMBER, case.name
        else:
            assert declared == case.roles, case.name


def test_the_logger_device_is_not_a_member() -> None:
    """The logger key only signs readings: for governance it is nobody, so every role-gated
    message refuses it as an unknown signer (not as a wrong role)."""
    chain = base_chain()
    r = chain.run(LOGGER_SUP, mint("BRK", "S9"))
    assert (r.ok, r.code) == (False, "unknown_signer")
