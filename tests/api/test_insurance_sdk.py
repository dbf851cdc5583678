"""The insurance SDK (``blokauto.client.insurance``) against a real node (its HTTP API on 127.0.0.1,
stopped by the test): a policy bound by the insurer and co-signed by the holder, trips sent through
the node's sample route (the telemetry SDK), a crash that opens its claim in the same transaction,
a statement found due, issued, checked to the cent and paid, a claim assessed, approved and paid.

The node keeps real time, so a period ends here the way it ends early on any chain: the policy is
cancelled and its last period is billed pro rata (a whole period's statement is the module's
tests' business, tests/modules/test_insurance_rules.py, where block time is given). Products here
have no cap, so the pro-rata premium is the usage itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from blokauto.client import TxInfo
from blokauto.client.insurance import (Insurance, PremiumMismatch, Pricing, Totals, claim_id, expected_premium,
                                       policy_id)
from blokauto.client.telemetry import Telemetry
from blokauto.core.access import NotAParty, ReadRefused, UnknownCaller
from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair
from blokauto.modules.consent.messages import GrantConsent
from blokauto.modules.insurance import premium
from blokauto.modules.insurance.errors import PeriodNotEnded, PolicyOverlaps
from blokauto.modules.payments.messages import AttestReserves, Issue, RegisterCurrency
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle

from conftest import K, Served, write_chain
from helpers.insurance import ALL_ORGS, trip, daytime_offset
from helpers.vehicles import WMI, admin, register_msg, vin_for

INS, SHOP, EMI, OEM = admin("ins"), admin("shop"), admin("emi"), admin("oem")
#: A period of a few seconds costs its usage (the cap does not shrink with the time covered).
USAGE = Pricing(base=2_000, per_km=5, night_factor_bps=5_000, per_harsh_brake=100, per_over_limit_minute=20,
                min_premium=1_000, max_premium=1_000_000)
PERIOD_MS = 30 * 86_400_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ok(info: TxInfo) -> TxInfo:
    assert info.ok, info.error
    return info


def wait_past(t: int) -> None:
    """Sleep until the wall clock (and so the next block's time) is past ``t`` (ms)."""
    while now_ms() <= t:
        time.sleep(max(0.0, (t - now_ms() + 5) / 1000))


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A node on a chain where oem makes cars, emi issues EUR (org:ins holds 10,000.00 EUR) and ins
    publishes "payd" (30-day periods, ``USAGE``)."""
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in ALL_ORGS.items()]
    genesis = Genesis(chain="insurance-sdk", time=now_ms() - 1_000, organisations=orgs, quorum=1)
    data: Path = tmp_path_factory.mktemp("insurance-sdk") / "data"
    write_chain(data, genesis)
    served = Served(data)
    try:
        bc = served.client(trust=genesis)
        for info in (bc.send(AssignWmi(wmi=WMI["oem"], org="oem"), admin("reg")),
                     bc.send(RegisterCurrency(currency="EUR", exponent=2), EMI),
                     bc.send(AttestReserves(currency="EUR", reserves=100_000_000, evidence="ab" * 32), EMI),
                     bc.send(Issue(currency="EUR", to="org:ins", amount=1_000_000), EMI)):
            ok(info)
        ok(Insurance(bc).publish_product(INS, "payd", currency="EUR", period_days=30, pricing=USAGE,
                                         max_coverage=1_000_000))
        served.bc, served.cars = bc, iter(range(1, 100))
        yield served
    finally:
        served.stop()


def insured_car(node: Any, holder: KeyPair, *, consent: bool = True) -> tuple[str, KeyPair]:
    """A new car held by ``holder`` (who holds 1,000.00 EUR) with a device key; with ``consent`` the
    holder lets ins read its driving data."""
    bc, n = node.bc, next(node.cars)
    vin, device = vin_for(WMI["oem"], n), K(f"sdk-device-{n}")
    ok(bc.send(register_msg(vin, device_keys=[device.did]), OEM))
    ok(bc.send(TransferTitle(vin=vin, to=holder.did), OEM, holder))
    ok(bc.send(Issue(currency="EUR", to=holder.did, amount=100_000), EMI))
    if consent:
        ok(bc.send(GrantConsent(vin=vin, org="ins", categories=["driving"], purpose="pay as you drive",
                                until=now_ms() + 86_400_000), holder))
    return vin, device


def bind(ins: Insurance, holder: KeyPair, vin: str) -> tuple[int, int]:
    """Policy (3 periods, deductible 100.00, coverage 5,000.00 EUR) from 300 ms after now: (id, start)."""
    start = now_ms() + 300
    info = ok(ins.bind_policy(INS, holder, product="payd", vin=vin, start=start, periods=3, deductible=10_000,
                              coverage=500_000))
    return policy_id(info), start


def test_a_policy_from_binding_to_a_paid_claim_and_a_checked_statement(node) -> None:
    alice = K("sdk-alice")
    vin, device = insured_car(node, alice)
    ins, tel = Insurance(node.bc), Telemetry(node.bc)
    pid, start = bind(ins, alice, vin)
    policy = ins.policy(pid, key=alice)
    assert (policy["holder"], policy["insurer"], policy["vin"], policy["billed"]) == (alice.did, "ins", vin, 0)
    assert ins.policy(pid, key=INS)["pricing"] == ins.product("ins", "payd", key=alice)["pricing"]

    # Two trips through the node's sample route: 12 km with a harsh brake, then 6 km.
    ok(tel.send_batch(vin, trip(start + 10, 31, every_ms=5, step_m=400, brake_at=(7,)), device, utc_offset_min=daytime_offset(start)))
    ok(tel.send_batch(vin, trip(start + 200, 31, every_ms=5, odo_m=12_000, step_m=200), device, utc_offset_min=daytime_offset(start)))
    wait_past(start + 400)
    crash = tel.report_crash(vin, device, decel_mms2=52_000, odometer_m=18_000, airbag=True)
    cid = claim_id(crash)  # opened in the crash report's own transaction
    claim = ins.claim(cid, key=alice, min_height=crash.height)
    assert (claim["source"], claim["status"], claim["crash"], claim["policy"]) == ("crash", "opened", 1, pid)

    refused = ins.issue_statements(INS, [pid])[0]  # the 30-day period has not ended
    assert not refused.ok and refused.receipt.code == PeriodNotEnded.code
    assert ins.due_statements("ins", key=INS) == []

    ok(ins.cancel_policy(alice, pid))
    due = ins.due_statements("ins", key=INS)
    assert [(d.policy, d.period, d.start, d.vin) for d in due] == [(pid, 0, start, vin)]
    sent, issued = ins.issue_due(INS, "ins")
    assert [i.ok for i in sent] == [True] and issued == due

    checked = ins.check_statement(pid, 0, key=alice)
    s = checked.statement
    assert (s["consented"], s["batches"], s["distance_m"], s["harsh_brakes"]) == (True, 2, 18_000, 1)
    assert checked.totals == Totals(batches=2, samples=62, duration_s=0, distance_m=18_000, harsh_brakes=1)
    assert s["premium"] == checked.expected == 5 * 18 + 100  # base, min and max are pro rata: 0 for seconds
    assert s["premium"] == premium(USAGE, checked.totals, s["end"] - s["start"], PERIOD_MS)
    assert [r["status"] for r in ins.statements(pid, key=alice)] == ["due"]

    before = _balance(node, alice)
    ok(ins.pay_premium(alice, pid, 0))
    assert _balance(node, alice) == before - 190
    assert ins.statement(pid, 0, key=INS)["status"] == "paid"

    assert ins.assess_claim(SHOP, cid, 1).error.code == "not_claim_workshop"  # nobody chose it yet
    ok(ins.choose_workshop(alice, cid, "shop"))
    ok(ins.assess_claim(SHOP, cid, 180_000, reference="EST-2291"))
    assert [c["id"] for c in ins.insurer_claims("ins", "assessed", key=INS)] == [cid]
    ok(ins.approve_claim(INS, cid, 175_000))
    ok(ins.pay_claim(INS, cid))
    paid = ins.claim(cid, key=alice)
    assert (paid["status"], paid["approved"], paid["payout"], paid["workshop"]) == ("paid", 175_000, 165_000, "shop")
    assert _balance(node, alice) == before - 190 + 165_000


def test_check_statement_catches_a_premium_not_priced_by_the_agreed_terms(node) -> None:
    bob = K("sdk-bob")
    vin, device = insured_car(node, bob)
    ins = Insurance(node.bc)
    pid, start = bind(ins, bob, vin)
    ok(Telemetry(node.bc).send_batch(vin, trip(start + 10, 21, every_ms=5, step_m=500), device, utc_offset_min=daytime_offset(start)))  # 10 km
    wait_past(start + 200)
    ok(ins.cancel_policy(INS, pid))  # the insurer may end it too
    ok(ins.issue_statements(INS, [pid])[0])
    assert ins.check_statement(pid, 0, key=bob).expected == 50

    quoted = Pricing(base=2_000, per_km=4, min_premium=1_000, max_premium=20_000)  # what bob was told: 4 cents a km, not 5
    with pytest.raises(PremiumMismatch) as caught:
        ins.check_statement(pid, 0, key=bob, pricing=quoted)
    err = caught.value
    assert (err.field, err.ledger, err.expected, err.policy, err.period) == ("premium", 50, 40, pid, 0)
    assert "says premium = 50" in str(err)


def test_expected_premium_is_the_modules_formula_on_the_queries_answers() -> None:
    totals = {"vin": "X", "start": 0, "end": 1, "batches": 3, "samples": 90, "duration_s": 5_400,
              "distance_m": 84_900, "night_distance_m": 12_300, "over_limit_s": 190, "harsh_brakes": 2,
              "crash_events": 0}
    answer = {"base": 2_000, "per_km": 5, "night_factor_bps": 5_000, "per_harsh_brake": 100,
              "per_over_limit_minute": 20, "min_premium": 1_000, "max_premium": 20_000}
    # 2,000 + 5 x 84 + 5 x 12 x 5,000 // 10,000 + 100 x 2 + 20 x 3 = 2,710 for a whole period
    assert expected_premium(answer, totals, PERIOD_MS, PERIOD_MS) == 2_710
    assert expected_premium(Pricing(**answer), None, PERIOD_MS, PERIOD_MS) == 20_000  # no consent: the cap
    assert expected_premium(answer, totals, PERIOD_MS // 2, PERIOD_MS) == 1_000 + 710  # half a period: half the base, all the usage


def test_without_consent_the_statement_is_the_cap_pro_rata(node) -> None:
    carol = K("sdk-carol")
    vin, device = insured_car(node, carol, consent=False)
    ins = Insurance(node.bc)
    pid, start = bind(ins, carol, vin)
    ok(Telemetry(node.bc).send_batch(vin, trip(start + 10, 21, every_ms=5, step_m=500), device, utc_offset_min=daytime_offset(start)))
    wait_past(start + 200)
    ok(ins.cancel_policy(carol, pid))
    ok(ins.issue_statements(INS, [pid])[0])
    checked = ins.check_statement(pid, 0, key=carol)
    s = checked.statement
    assert (s["consented"], s["distance_m"], checked.totals) == (False, 0, None)  # the usage was not read
    assert s["premium"] == USAGE.max_premium * (s["end"] - s["start"]) // PERIOD_MS  # the cap, for the time covered


def test_refusals_reach_the_sdk_as_the_modules_classes(node) -> None:
    dave, eve = K("sdk-dave"), K("sdk-eve")
    vin, _ = insured_car(node, dave)
    ins = Insurance(node.bc)
    pid, start = bind(ins, dave, vin)
    overlap = ins.bind_policy(INS, dave, product="payd", vin=vin, start=start + 1_000, periods=1, deductible=0,
                              coverage=1)
    assert not overlap.ok and isinstance(overlap.error, PolicyOverlaps)
    with pytest.raises(NotAParty):  # a member key, but neither its insurer's nor its holder
        ins.policy(pid, key=OEM)
    with pytest.raises(UnknownCaller):  # a key the consortium does not know
        ins.policy(pid, key=eve)
    not_holder = ins.pay_premium(eve, pid, 0)
    assert not not_holder.ok and not_holder.receipt.code == "not_policy_holder"


def _balance(node: Any, who: KeyPair) -> int:
    return node.bc.as_key(who).query("payments", "balance", owner=who.did, currency="EUR",
                                     min_height=node.bc.status()["height"])["balance"]


def test_a_sale_ends_the_policy_and_its_last_period_is_still_priced_on_usage(node) -> None:
    frank, grace = K("sdk-frank"), K("sdk-grace")
    vin, device = insured_car(node, frank)
    ins = Insurance(node.bc)
    pid, start = bind(ins, frank, vin)
    ok(Telemetry(node.bc).send_batch(vin, trip(start + 10, 41, every_ms=5, step_m=250), device, utc_offset_min=daytime_offset(start)))  # 10 km
    wait_past(start + 300)
    sale = ok(node.bc.send(TransferTitle(vin=vin, to=grace.did), frank, grace))
    assert ins.policy(pid, key=frank, min_height=sale.height)["sold"] == sale.checkpoint.header.time
    due = ins.due_statements("ins", key=INS)
    assert [(d.policy, d.end) for d in due] == [(pid, sale.checkpoint.header.time)]  # ended in the sale's block
    ok(ins.issue_statements(INS, [pid])[0])
    s = ins.statement(pid, 0, key=frank)
    assert (s["consented"], s["distance_m"], s["premium"]) == (True, 10_000, 50)  # frank consented throughout
    with pytest.raises(ReadRefused):  # the car's driving data is grace's now: frank cannot re-add the km
        ins.check_statement(pid, 0, key=frank)


def test_policy_statement_and_claim_are_proven_to_their_parties_only(node) -> None:
    """``/v1/state`` serves a policy, its statements and its claims with their proofs to the insurer
    and the holder (the claim also to its workshop), so either can prove them to a third party;
    another insurer and an unknown key are refused."""
    from blokauto.modules.insurance.state import CLAIMS, POLICIES, STATEMENTS

    carol = K("sdk-carol")
    vin, device = insured_car(node, carol)
    ins, tel = Insurance(node.bc), Telemetry(node.bc)
    pid, start = bind(ins, carol, vin)
    wait_past(start + 50)
    cid = claim_id(tel.report_crash(vin, device, decel_mms2=52_000, odometer_m=1_000, airbag=True))
    ok(ins.cancel_policy(carol, pid))
    ok(ins.issue_statements(INS, [pid])[0])
    keys = {"policy": POLICIES.key(pid).decode(), "statement": STATEMENTS.key(pid, 0).decode(),
            "claim": CLAIMS.key(cid).decode()}
    for reader in (carol, INS, admin("reg")):
        bc = node.bc.as_key(reader)
        for what, key in keys.items():
            value = bc.state(key).value
            assert value is not None and (value["id"] if what != "statement" else value["policy"]) in (pid, cid), what
    for outsider, code in ((admin("ins2"), "not_a_party"), (K("sdk-nobody"), "unknown_caller")):
        bc = node.bc.as_key(outsider)
        for key in keys.values():
            with pytest.raises(ReadRefused) as err:
                bc.state(key)
            assert err.value.code == code, key
