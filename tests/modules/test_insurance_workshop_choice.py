"""Who assesses a claim: the workshop its holder or insurer chose, nobody else. An auto-opened claim
has none until one is chosen; choosing another drops the estimate the former one made; a claim
filed by the holder may name its workshop at once; only an active workshop can be chosen."""

from __future__ import annotations

from typing import Any

import pytest

from blokauto.modules.insurance.messages import AssessClaim, ChooseWorkshop, DecideClaim, FileClaim
from blokauto.modules.insurance.state import CLAIMS, POLICIES
from blokauto.modules.telemetry.messages import ReportCrash

from helpers.insurance import ALICE, BOB, DEVICE, HOUR, INS, INS2, SHOP, SHOP2, VIN, ok, send, world
from helpers.vehicles import snapshot


def crashed() -> Any:
    chain = world()
    t = POLICIES.get(chain.ledger, 1).start + HOUR
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=t, decel_mms2=0, odometer_m=1_000, airbag=True), at=t + 10)
    return chain


def claim(chain: Any) -> Any:
    return CLAIMS.get(chain.ledger, 1)


@pytest.mark.parametrize("chooser", [ALICE, INS], ids=["holder", "insurer"])
def test_the_chosen_workshop_assesses_and_no_other(chooser: Any) -> None:
    chain = crashed()
    ok(chain, chooser, ChooseWorkshop(claim=1, workshop="shop"))
    r = send(chain, SHOP2, AssessClaim(claim=1, estimate=1))
    assert (r.code, r.detail) == ("not_claim_workshop", {"claim": 1, "chosen": "'shop'", "org": "shop2"}), r
    ok(chain, SHOP, AssessClaim(claim=1, estimate=5_000, reference="e1"))
    assert (claim(chain).status, claim(chain).estimate, claim(chain).workshop) == ("assessed", 5_000, "shop")


def test_choosing_another_workshop_drops_the_former_estimate() -> None:
    chain = crashed()
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=5_000, reference="e1"))
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop2"))
    c = claim(chain)
    assert (c.status, c.estimate, c.estimate_ref, c.workshop) == ("opened", 0, "", "shop2")
    assert send(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=1)).code == "claim_not_assessed"
    assert send(chain, SHOP, AssessClaim(claim=1, estimate=9)).code == "not_claim_workshop"
    ok(chain, SHOP2, AssessClaim(claim=1, estimate=4_000))


def test_choosing_the_same_workshop_again_keeps_its_estimate() -> None:
    chain = crashed()
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=5_000))
    ok(chain, INS, ChooseWorkshop(claim=1, workshop="shop"))
    assert (claim(chain).status, claim(chain).estimate) == ("assessed", 5_000)


REFUSALS = [
    ("an_outsider_chooses", BOB, ChooseWorkshop(claim=1, workshop="shop"), "not_policy_holder"),
    ("another_insurer_chooses", INS2, ChooseWorkshop(claim=1, workshop="shop"), "not_policy_holder"),
    ("a_recycler_is_chosen", ALICE, ChooseWorkshop(claim=1, workshop="scrap"), "not_a_workshop"),
    ("an_unknown_organisation_is_chosen", ALICE, ChooseWorkshop(claim=1, workshop="nobody"), "not_a_workshop"),
    ("an_unknown_claim", ALICE, ChooseWorkshop(claim=9, workshop="shop"), "unknown_claim"),
]


@pytest.mark.parametrize("name,sender,msg,code", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_choosing_is_refused_and_changes_nothing(name: str, sender: Any, msg: Any, code: str) -> None:
    chain = crashed()
    before = snapshot(chain)
    assert send(chain, sender, msg).code == code
    assert snapshot(chain)[:2] == before[:2]


def test_a_decided_claim_keeps_its_workshop() -> None:
    chain = crashed()
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=50_000))
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=50_000))
    assert send(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop2")).code == "claim_decided"


def test_a_filed_claim_names_its_workshop() -> None:
    chain = world()
    t = POLICIES.get(chain.ledger, 1).start + HOUR
    ok(chain, ALICE, FileClaim(policy=1, incident=t, odometer_km=0, workshop="shop2"), at=t + 1)
    assert claim(chain).workshop == "shop2"
    ok(chain, SHOP2, AssessClaim(claim=1, estimate=1_000))
    r = send(chain, ALICE, FileClaim(policy=1, incident=t, odometer_km=0, workshop="scrap"), at=t + 2)
    assert r.code == "not_a_workshop"
