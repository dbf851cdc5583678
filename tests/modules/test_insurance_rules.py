"""The insurance module's rules, one row per rule, on a MemoryLedger (``helpers.insurance``'s world).

Alice's car is insured by ``ins`` under policy 1 (product ``payd``: 30-day periods, 3 of them,
deductible 10,000, coverage 500,000) from one minute after the set-up (``S``). The lifecycle: product
versions, binding (no overlap, no backdating, coverage and deductible rules), renewal before the end,
cancellation and sale (each ends the policy; its last period is billed pro rata), premium statements
period by period once each has ended, priced on the ledger from the period's trip totals (or at the
cap without the holder's consent), paid from the holder's account; claims opened by the car's own
crash report in the same transaction, or filed by the holder, assessed by a workshop, decided by the
policy's insurer, paid as amount less deductible. Refusals are one table (``REFUSALS``): each names
the stable code and checks that the failed transaction changed nothing (no money moved either).

Every expected premium here is worked out by hand from ``PAYD`` (base 2,000, 5 per km, night km
+50 %, 100 per harsh brake, 20 per minute over the limit, min 1,000, max 20,000 per period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.consent.messages import GrantConsent, RevokeConsent
from blokauto.modules.insurance.messages import (AssessClaim, BindPolicy, CancelPolicy, ChooseWorkshop, DecideClaim,
                                                 FileClaim,
                                                 IssueStatements, PayClaim, PayPremium, PublishProduct, RenewPolicy)
from blokauto.modules.insurance.pricing import Pricing
from blokauto.modules.insurance.spec import CLAIM_LIST, POLICY_LIST, PRODUCT_LIST
from blokauto.modules.insurance.state import (CLAIMS, CRASH_CLAIMS, POLICIES, PRODUCTS, STATEMENTS, VEHICLE_CLAIMS,
                                              VEHICLE_POLICIES, Statement)
from blokauto.modules.payments.messages import Transfer
from blokauto.modules.telemetry.messages import ReportCrash
from blokauto.modules.vehicles.messages import Deregister, RecordOdometer, TransferTitle
from blokauto.modules.vehicles.state import VEHICLES

from conftest import K
from helpers.insurance import (ALICE, BOB, BOB_DEVICE, DAY, DEVICE, DEVICE2, HOUR, INS, INS2, MINUTE, OTHER_VIN, PAYD,
                               PERIOD, SHOP, SHOP2, VIN, balance, batch_msg, now, ok, send, trip, world)
from helpers.vehicles import WMI, admin, snapshot, vin_for

CAROL = K("carol")
OEM, SCRAP, REG = admin("oem"), admin("scrap"), admin("reg")
AHEAD = 90 * DAY  # policy_max_start_ahead_ms by default
SLACK_KM = 50  # claim_mileage_slack_km by default


def S(chain: Any, pid: int = 1) -> int:
    """When policy ``pid`` starts."""
    return POLICIES.get(chain.ledger, pid).start


def pol(chain: Any, pid: int = 1) -> Any:
    return POLICIES.get(chain.ledger, pid)


def stmt(chain: Any, k: int, pid: int = 1) -> Statement:
    return STATEMENTS.get(chain.ledger, pid, k)


def claim(chain: Any, cid: int = 1) -> Any:
    return CLAIMS.get(chain.ledger, cid)


def usage_of(s: Statement) -> tuple:
    """What a statement says of its period: when, consented, the usage counted, the premium, its status."""
    return (s.start, s.end, s.consented, s.batches, s.distance_m, s.night_distance_m, s.harsh_brakes,
            s.over_limit_s, s.premium, s.status)


def types(receipt: Any) -> list[str]:
    return [e["type"] for e in receipt.events]


def drive(chain: Any, start: int, n: int = 600, *, offset: int = 0, key: KeyPair = DEVICE, vin: str = VIN,
          **kw: Any) -> Any:
    """A batch of ``n`` samples from ``start``, committed 1 ms after its last sample."""
    samples = trip(start, n, **kw)
    return ok(chain, key, batch_msg(vin, samples, offset), at=max(samples[-1].t + 1, now(chain) + 1))


def issue(chain: Any, *pids: int, at: int | None = None) -> Any:
    return ok(chain, INS, IssueStatements(policies=list(pids or (1,))), at=at)


def crash(chain: Any, t: int, *, odometer_m: int = 20_000, key: KeyPair = DEVICE, vin: str = VIN) -> Any:
    """The car reports an airbag crash at ``t``, 10 ms later."""
    return ok(chain, key, ReportCrash(vin=vin, t=t, decel_mms2=50_000, odometer_m=odometer_m, airbag=True),
              at=max(t + 10, now(chain) + 1))


def bob_policy(chain: Any, **kw: Any) -> int:
    """Policy 2: Bob's car, bound by ins with Bob co-signing."""
    r = ok(chain, INS, BindPolicy(product="payd", vin=OTHER_VIN, start=kw.pop("start", now(chain) + 2),
                                  periods=kw.pop("periods", 3), deductible=0, coverage=100_000), BOB)
    return r.events[0]["policy"]


def sell(chain: Any, at: int, to: KeyPair = BOB, seller: KeyPair = ALICE, vin: str = VIN) -> Any:
    return ok(chain, seller, TransferTitle(vin=vin, to=to.did), to, at=at)


# ---------------------------------------------------------------- products


def test_republishing_a_product_makes_a_new_version_that_only_later_policies_use() -> None:
    chain = world()
    p1 = PRODUCTS.get(chain.ledger, "ins", "payd")
    assert (p1.version, p1.currency, p1.period_days, p1.pricing, p1.max_coverage) == (1, "EUR", 30, PAYD, 1_000_000)
    dearer = Pricing(base=3_000, per_km=7, min_premium=500, max_premium=30_000)
    r = ok(chain, INS, PublishProduct(product="payd", currency="EUR", period_days=7, pricing=dearer,
                                      max_coverage=2_000_000))
    assert r.events == [{"type": "insurance.product_published", "insurer": "ins", "product": "payd", "version": 2}]
    p2 = PRODUCTS.get(chain.ledger, "ins", "payd")
    assert (p2.version, p2.period_days, p2.pricing, p2.height) == (2, 7, dearer, chain.ledger.head.height)
    assert [dict(x) for x in chain.ledger.index[PRODUCT_LIST.name].values()] == [
        {"insurer": "ins", "product": "payd", "currency": "EUR"}]
    assert (pol(chain).version, pol(chain).pricing, pol(chain).period_ms) == (1, PAYD, PERIOD)
    pid = bob_policy(chain)
    assert (pol(chain, pid).version, pol(chain, pid).pricing, pol(chain, pid).period_ms) == (2, dearer, 7 * DAY)
    # another insurer's product of the same name is its own
    ok(chain, INS2, PublishProduct(product="payd", currency="EUR", period_days=30, pricing=PAYD, max_coverage=1))
    assert PRODUCTS.get(chain.ledger, "ins2", "payd").version == 1


@pytest.mark.parametrize("pricing", [
    Pricing(base=1_000, min_premium=1_000, max_premium=1_000),  # min == max == base
    Pricing(base=0, max_premium=0),  # a free product
])
def test_a_product_priced_at_its_edges_is_published(pricing: Pricing) -> None:
    chain = world()
    ok(chain, INS, PublishProduct(product="edge", currency="EUR", period_days=1, pricing=pricing, max_coverage=0))


# ---------------------------------------------------------------- policies


def test_a_policy_binds_holder_vehicle_insurer_and_terms() -> None:
    chain = world(policy=False)
    t = now(chain) + 1
    r = ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=t, periods=2, deductible=500, coverage=500),
           ALICE, at=t)
    assert r.events == [{"type": "insurance.policy_changed", "policy": 1, "change": "bound", "vin": VIN,
                         "insurer": "ins", "holder": ALICE.did}]
    p = pol(chain)
    since = VEHICLES.get(chain.ledger, VIN).holder_since
    assert (p.id, p.insurer, p.product, p.version, p.vin, p.holder, p.holder_since, p.currency) == (
        1, "ins", "payd", 1, VIN, ALICE.did, since, "EUR")
    assert (p.start, p.end, p.period_ms, p.deductible, p.coverage, p.billed, p.cancelled, p.height) == (
        t, t + 2 * PERIOD, PERIOD, 500, 500, 0, 0, chain.ledger.head.height)
    assert VEHICLE_POLICIES.get(chain.ledger, VIN).ids == [1]
    assert [dict(x) for x in chain.ledger.index[POLICY_LIST.name].values()] == [
        {"id": 1, "insurer": "ins", "vin": VIN, "holder": ALICE.did, "product": "payd"}]
    # ids count on across vehicles; each vehicle lists its own
    assert bob_policy(chain) == 2
    assert VEHICLE_POLICIES.get(chain.ledger, OTHER_VIN).ids == [2]


def test_the_latest_start_and_the_largest_coverage_are_accepted() -> None:
    chain = world(policy=False)
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=t + AHEAD, periods=1, deductible=1_000_000,
                              coverage=1_000_000), ALICE, at=t)


def test_a_policy_follows_the_one_before_it_from_its_end() -> None:
    chain = world()
    end = pol(chain).end
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=end, periods=1, deductible=0, coverage=0), ALICE,
       at=end - AHEAD)
    assert VEHICLE_POLICIES.get(chain.ledger, VIN).ids == [1, 2]


def test_a_cancelled_policy_lets_the_next_start_at_the_cancellation() -> None:
    chain = world()
    c = S(chain) + 3 * DAY
    ok(chain, ALICE, CancelPolicy(policy=1), at=c)
    r = send(chain, INS2, BindPolicy(product="payd", vin=VIN, start=c, periods=1, deductible=0, coverage=0), ALICE,
             at=c)
    assert r.code == "unknown_product"  # ins2 has no payd yet: the overlap rule passed
    ok(chain, INS2, PublishProduct(product="payd", currency="EUR", period_days=30, pricing=PAYD, max_coverage=10))
    t = now(chain) + 1
    ok(chain, INS2, BindPolicy(product="payd", vin=VIN, start=t, periods=1, deductible=0, coverage=0), ALICE, at=t)


def test_a_policy_cancelled_before_it_starts_never_covers() -> None:
    chain = world()
    ok(chain, ALICE, CancelPolicy(policy=1))  # S is a minute away
    assert pol(chain).cancelled == now(chain)
    r = send(chain, INS, IssueStatements(policies=[1]), at=S(chain) + PERIOD)
    assert (r.code, r.detail["billed"]) == ("policy_fully_billed", 0)
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=now(chain) + 1, periods=1, deductible=0, coverage=0),
       ALICE, at=now(chain) + 1)


def test_a_policy_never_in_force_blocks_no_new_one() -> None:
    chain = world()
    ok(chain, ALICE, CancelPolicy(policy=1))  # S is a minute away: policy 1 never covers anything
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=t, periods=1, deductible=0, coverage=0), ALICE, at=t)
    assert VEHICLE_POLICIES.get(chain.ledger, VIN).ids == [1, 2]


def test_an_overlap_names_the_policy_in_force_past_one_never_in_force() -> None:
    chain = world()
    end = pol(chain).end
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=end, periods=1, deductible=0, coverage=0), ALICE,
       at=end - AHEAD)
    ok(chain, ALICE, CancelPolicy(policy=2))  # policy 2, bound to follow, will never be in force
    r = send(chain, INS, BindPolicy(product="payd", vin=VIN, start=end - DAY, periods=1, deductible=0, coverage=0),
             ALICE)
    assert (r.code, r.detail["policy"], r.detail["end"]) == ("policy_overlaps", 1, end)
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=end, periods=1, deductible=0, coverage=0), ALICE)


def test_renewal_adds_whole_periods_before_the_end() -> None:
    chain = world()
    p = pol(chain)
    r = ok(chain, INS, RenewPolicy(policy=1, periods=2), ALICE, at=p.end - 1)
    assert r.events == [{"type": "insurance.policy_changed", "policy": 1, "change": "renewed", "vin": VIN,
                         "insurer": "ins", "holder": ALICE.did}]
    assert pol(chain).end == p.end + 2 * PERIOD
    assert (pol(chain).pricing, pol(chain).start) == (p.pricing, p.start)


def test_the_holder_or_the_insurer_cancels() -> None:
    chain = world()
    r = ok(chain, INS, CancelPolicy(policy=1), at=S(chain) + DAY)
    assert r.events[0]["change"] == "cancelled"
    assert pol(chain).cancelled == S(chain) + DAY
    chain = world()
    ok(chain, ALICE, CancelPolicy(policy=1), at=S(chain) + DAY)
    assert pol(chain).cancelled == S(chain) + DAY


# ---------------------------------------------------------------- premium statements


def test_statements_price_each_periods_usage_in_order() -> None:
    chain = world()
    s = S(chain)
    # period 0: 600 samples a second apart, 22 m each (13,178 m), at 120 in a 100 zone all along (599 s),
    # braking hard twice (samples 10-11 are one run, 300 another), at 23:01 local time (UTC+14): all night
    drive(chain, s + HOUR, brake_at=(10, 11, 300), speed=120, offset=840)
    # a batch ending just before period 0 ends counts in it; one ending at its end counts in period 1
    drive(chain, s + PERIOD - 10_001, 2, every_ms=10_000, step_m=1_000)  # 1,000 m, ends at s + PERIOD - 1
    drive(chain, s + PERIOD, 1)  # one sample, at s + PERIOD
    drive(chain, s + PERIOD + 1, 2, every_ms=30_000, step_m=3_000)  # 3,000 m in period 1
    r = issue(chain, at=max(s + PERIOD, now(chain) + 1))
    # km = 14,178 // 1000 = 14; night km = 13,178 // 1000 = 13
    # usage = 5*14 + 5*13*5000//10000 + 100*2 + 20*(599//60) = 70 + 32 + 200 + 180 = 482
    assert r.events == [{"type": "insurance.statement_issued", "policy": 1, "period": 0, "premium": 2_482,
                         "insurer": "ins", "holder": ALICE.did}]
    assert stmt(chain, 0) == Statement(1, 0, s, s + PERIOD, True, 2, 14_178, 13_178, 2, 599, 2_482, "due",
                                       chain.ledger.head.height, after_seq=0, through_seq=2)
    assert pol(chain).billed == 1
    # period 1: the one-sample batch and the 3 km one: 2,000 + 5*3 = 2,015
    issue(chain, at=s + 2 * PERIOD)
    assert (stmt(chain, 1).batches, stmt(chain, 1).distance_m, stmt(chain, 1).premium) == (2, 3_000, 2_015)
    # period 2: no driving at all: the base, 2,000
    issue(chain, at=s + 3 * PERIOD)
    assert (stmt(chain, 2).start, stmt(chain, 2).end, stmt(chain, 2).premium) == (s + 2 * PERIOD, s + 3 * PERIOD,
                                                                                  2_000)
    assert pol(chain).billed == 3


def test_a_batch_uploaded_late_is_billed_in_the_next_statement() -> None:
    chain = world()
    s = S(chain)
    drive(chain, s + HOUR)  # 13 km, on time
    issue(chain, at=s + PERIOD)
    assert (stmt(chain, 0).batches, stmt(chain, 0).premium) == (1, 2_065)
    late = trip(s + 2 * DAY, 600, odo_m=20_000)  # driven in period 0, uploaded after its statement
    ok(chain, DEVICE, batch_msg(VIN, late), at=s + PERIOD + HOUR)
    drive(chain, s + PERIOD + DAY, odo_m=40_000)  # 13 km in period 1
    issue(chain, at=s + 2 * PERIOD)
    # both count now, once: 2,000 + 5 * (13 + 13)
    assert (stmt(chain, 1).batches, stmt(chain, 1).distance_m, stmt(chain, 1).premium) == (2, 26_356, 2_130)
    issue(chain, at=s + 3 * PERIOD)
    assert (stmt(chain, 2).batches, stmt(chain, 2).premium) == (0, 2_000)


def test_batches_that_ended_before_the_policy_never_count() -> None:
    chain = world(policy=False)
    before = trip(now(chain) - 700_000, 600)  # 13 km, before any policy
    ok(chain, DEVICE, batch_msg(VIN, before))
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=t + HOUR, periods=1, deductible=0, coverage=0),
       ALICE, at=t)
    drive(chain, t + 1_000, 300, odo_m=50_000)  # ends before the start, uploaded after the binding
    drive(chain, t + 2 * HOUR, 600, odo_m=90_000)  # 13 km in the policy
    issue(chain, at=t + HOUR + PERIOD)
    assert (stmt(chain, 0).batches, stmt(chain, 0).distance_m, stmt(chain, 0).premium) == (1, 13_178, 2_065)


def test_a_statement_is_issued_once_its_period_has_ended() -> None:
    chain = world()
    s = S(chain)
    r = send(chain, INS, IssueStatements(policies=[1]), at=s + PERIOD - 1)
    assert (r.code, r.detail) == ("period_not_ended", {"policy": 1, "period": 0, "end": s + PERIOD,
                                                       "time": s + PERIOD - 1})
    issue(chain, at=s + PERIOD)
    assert send(chain, INS, IssueStatements(policies=[1])).code == "period_not_ended"


def test_statements_of_several_policies_in_one_transaction() -> None:
    chain = world()
    pid = bob_policy(chain)
    at = max(S(chain, pid), S(chain)) + PERIOD
    r = ok(chain, INS, IssueStatements(policies=[pid, 1]), at=at)
    assert [(e["policy"], e["period"]) for e in r.events] == [(pid, 0), (1, 0)]
    assert stmt(chain, 0, pid).consented is False  # Bob never consented: the cap
    assert stmt(chain, 0, pid).premium == 20_000
    assert stmt(chain, 0).premium == 2_000


def test_without_the_holders_consent_the_premium_is_the_cap() -> None:
    chain = world(consent=False)
    drive(chain, S(chain) + HOUR, brake_at=(5,))
    issue(chain, at=S(chain) + PERIOD)
    s = S(chain)
    assert usage_of(stmt(chain, 0)) == (s, s + PERIOD, False, 0, 0, 0, 0, 0, 20_000, "due")


def test_consent_revoked_midway_prices_later_statements_at_the_cap() -> None:
    chain = world()
    drive(chain, S(chain) + HOUR)  # 599 intervals of 22 m: 13 km -> 2,000 + 65
    issue(chain, at=S(chain) + PERIOD)
    assert (stmt(chain, 0).consented, stmt(chain, 0).premium) == (True, 2_065)
    ok(chain, ALICE, RevokeConsent(vin=VIN, grant=1))
    drive(chain, S(chain) + PERIOD + HOUR)
    issue(chain, at=S(chain) + 2 * PERIOD)
    assert (stmt(chain, 1).consented, stmt(chain, 1).batches, stmt(chain, 1).premium) == (False, 0, 20_000)


def test_cancellation_bills_the_last_period_pro_rata() -> None:
    chain = world()
    s = S(chain)
    issue(chain, at=s + PERIOD)
    ok(chain, ALICE, CancelPolicy(policy=1), at=s + PERIOD + 10 * DAY)
    drive(chain, s + PERIOD + 10 * DAY - 700_000)  # 13 km in the 10 days: counted
    drive(chain, s + PERIOD + 10 * DAY + 1_000)  # after the cancellation: not counted
    issue(chain, at=now(chain) + 1)
    # 10 of 30 days: 2,000*10/30 = 666 (rounded down) + 5*13 = 731, within [333, 6,666]
    s1 = stmt(chain, 1)
    assert (s1.start, s1.end, s1.batches, s1.premium) == (s + PERIOD, s + PERIOD + 10 * DAY, 1, 731)
    r = send(chain, INS, IssueStatements(policies=[1]))
    assert (r.code, r.detail["billed"]) == ("policy_fully_billed", 2)


@pytest.mark.parametrize("pricing,days,premium", [
    (Pricing(base=0, per_km=5, min_premium=1_000, max_premium=20_000), 10, 333),  # min: 1,000*10//30
    # the base shrinks, the usage and the cap do not: 20,000*10//30 + 5*13 (found by the outside attack)
    (Pricing(base=20_000, per_km=5, min_premium=0, max_premium=20_000), 10, 6_666 + 65),
    (Pricing(base=0, per_km=5_000, min_premium=0, max_premium=20_000), 10, 20_000),  # 65,000 of usage: the cap
    (Pricing(base=3_000, min_premium=0, max_premium=20_000), 30, 3_000),  # a whole period
    (Pricing(base=3_000, min_premium=0, max_premium=20_000), 1, 100),  # 3,000/30
])
def test_a_cut_period_scales_base_and_min_not_usage_nor_cap(pricing: Pricing, days: int, premium: int) -> None:
    chain = world(policy=False)
    ok(chain, INS, PublishProduct(product="p", currency="EUR", period_days=30, pricing=pricing, max_coverage=0))
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="p", vin=VIN, start=t, periods=1, deductible=0, coverage=0), ALICE, at=t)
    drive(chain, t + HOUR)  # 13 km
    if days < 30:
        ok(chain, ALICE, CancelPolicy(policy=1), at=t + days * DAY)
    issue(chain, at=max(t + days * DAY, now(chain) + 1))
    assert stmt(chain, 0).premium == premium


def test_a_statement_of_nothing_owed_is_paid_at_once() -> None:
    chain = world(policy=False)
    ok(chain, INS, PublishProduct(product="free", currency="EUR", period_days=1, pricing=Pricing(base=0, max_premium=0),
                                  max_coverage=0))
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="free", vin=VIN, start=t, periods=1, deductible=0, coverage=0), ALICE, at=t)
    issue(chain, at=t + DAY)
    assert (stmt(chain, 0).premium, stmt(chain, 0).status) == (0, "paid")
    assert send(chain, ALICE, PayPremium(policy=1, period=0)).code == "statement_paid"


def test_a_sale_ends_the_policy_and_its_last_statement_is_pro_rata() -> None:
    chain = world(consent=False)
    s = S(chain)
    issue(chain, at=s + PERIOD)
    sale = s + PERIOD + 5 * DAY
    sell(chain, sale)
    r = send(chain, ALICE, CancelPolicy(policy=1))
    assert (r.code, r.detail["end"]) == ("policy_ended", sale)
    issue(chain, at=sale + 1)
    # the cap (no consent) for 5 of 30 days: 20,000*5//30 = 3,333
    assert (stmt(chain, 1).start, stmt(chain, 1).end, stmt(chain, 1).premium) == (s + PERIOD, sale, 3_333)
    assert send(chain, INS, IssueStatements(policies=[1]), at=s + 3 * PERIOD).code == "policy_fully_billed"
    # the policy no longer covers: Alice's claim for later is refused, a crash opens no claim
    r = send(chain, ALICE, FileClaim(policy=1, incident=sale + HOUR, odometer_km=0))
    assert (r.code, r.detail["end"]) == ("no_active_policy", sale)
    assert types(crash(chain, now(chain) + 100)) == ["vehicles.history_appended", "telemetry.crash_reported"]
    # and Bob insures the car from the sale on; a claim for before the sale is still Alice's
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=now(chain) + 1, periods=1, deductible=0, coverage=0),
       BOB, at=now(chain) + 1)
    ok(chain, ALICE, FileClaim(policy=1, incident=sale - 1, odometer_km=0))
    assert claim(chain).holder == ALICE.did


def test_a_policy_ends_at_its_holders_sale_even_after_the_vehicle_is_sold_on() -> None:
    chain = world()
    s = S(chain)
    first = s + 5 * DAY
    sell(chain, first)  # Alice -> Bob
    sell(chain, first + 10 * DAY, to=CAROL, seller=BOB)  # Bob -> Carol
    r = send(chain, ALICE, FileClaim(policy=1, incident=first + DAY, odometer_km=0))  # while Bob held the car
    assert (r.code, r.detail.get("end")) == ("no_active_policy", first), r


def test_a_sold_policys_last_statement_prices_the_usage_consented_to() -> None:
    chain = world()
    s = S(chain)
    drive(chain, s + HOUR)  # 13 km
    sale = s + 6 * DAY
    sell(chain, sale)
    issue(chain, at=sale + 1)
    # 6 of 30 days: 2,000*6//30 = 400 + 65 = 465
    assert (stmt(chain, 0).consented, stmt(chain, 0).premium) == (True, 465)


def test_the_sale_ends_the_policy_in_its_own_transaction() -> None:
    chain = world()
    sale = S(chain) + 2 * DAY
    r = sell(chain, sale)
    assert {"type": "insurance.policy_changed", "policy": 1, "change": "sold", "vin": VIN, "insurer": "ins",
            "holder": ALICE.did} in r.events
    assert (pol(chain).sold, pol(chain).cancelled) == (sale, 0)
    # bought back: a new holding, and policy 1 still ended at the first sale
    sell(chain, sale + DAY, to=ALICE, seller=BOB)
    assert pol(chain).sold == sale
    r = send(chain, ALICE, FileClaim(policy=1, incident=sale + 2 * DAY, odometer_km=0), at=sale + 3 * DAY)
    assert (r.code, r.detail["end"]) == ("no_active_policy", sale)


def test_a_sale_when_the_policy_is_over_leaves_it_as_it_was() -> None:
    chain = world()
    end = pol(chain).end
    r = sell(chain, end)  # at its very end
    assert [e for e in r.events if e["type"].startswith("insurance.")] == []
    assert pol(chain).sold == 0
    chain = world()
    c = S(chain) + DAY
    ok(chain, ALICE, CancelPolicy(policy=1), at=c)
    r = sell(chain, c)  # in the block after the cancellation, at the same time
    assert [e for e in r.events if e["type"].startswith("insurance.")] == []
    assert (pol(chain).sold, pol(chain).cancelled) == (0, c)


def test_a_sale_before_the_policy_starts_leaves_it_empty() -> None:
    chain = world()
    sell(chain, now(chain) + 1)  # S is a minute away
    r = send(chain, INS, IssueStatements(policies=[1]), at=S(chain) + PERIOD)
    assert (r.code, r.detail["billed"]) == ("policy_fully_billed", 0)


def test_a_sale_of_another_vehicle_leaves_the_policy_alone() -> None:
    chain = world()
    sell(chain, S(chain) + DAY, to=ALICE, seller=BOB, vin=OTHER_VIN)
    assert pol(chain).sold == 0


def test_a_policy_the_former_holder_held_earlier_is_not_ended_again() -> None:
    chain = world()
    first = S(chain) + DAY
    sell(chain, first)
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=t, periods=1, deductible=0, coverage=0), BOB, at=t)
    sell(chain, t + DAY, to=CAROL, seller=BOB)
    assert (pol(chain, 1).sold, pol(chain, 2).sold) == (first, t + DAY)


def test_a_sale_ends_the_policy_in_force_when_a_follow_on_policy_is_bound() -> None:
    chain = world()
    end = pol(chain).end
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=end, periods=1, deductible=0, coverage=0), ALICE,
       at=end - AHEAD)
    sale = S(chain) + 10 * DAY
    sell(chain, sale)
    r = send(chain, ALICE, FileClaim(policy=1, incident=sale + DAY, odometer_km=0), at=sale + 2 * DAY)
    assert r.code == "no_active_policy", r


@pytest.mark.parametrize("until_after_end,consented", [(0, True), (-1, False)])
def test_consent_must_count_until_the_end_of_the_period(until_after_end: int, consented: bool) -> None:
    chain = world(consent=False)
    s = S(chain)
    ok(chain, ALICE, GrantConsent(vin=VIN, org="ins", categories=["driving"], purpose="payd",
                                  until=s + PERIOD + until_after_end))
    drive(chain, s + HOUR)  # 13 km
    issue(chain, at=s + PERIOD + DAY)  # issued after the grant lapsed either way
    assert (stmt(chain, 0).consented, stmt(chain, 0).premium) == (consented, 2_065 if consented else 20_000)


def test_consent_for_another_category_or_organisation_is_not_consent() -> None:
    chain = world(consent=False)
    s = S(chain)
    ok(chain, ALICE, GrantConsent(vin=VIN, org="ins", categories=["history", "location"], purpose="x",
                                  until=s + 300 * DAY))
    ok(chain, ALICE, GrantConsent(vin=VIN, org="ins2", categories=["driving"], purpose="x", until=s + 300 * DAY))
    issue(chain, at=s + PERIOD)
    assert stmt(chain, 0).consented is False


def test_a_new_holders_consent_does_not_price_the_former_holders_policy() -> None:
    chain = world(consent=False)
    s = S(chain)
    sell(chain, s + DAY)
    ok(chain, BOB, GrantConsent(vin=VIN, org="ins", categories=["driving"], purpose="x", until=s + 300 * DAY))
    issue(chain, at=s + DAY + 1)
    assert (stmt(chain, 0).consented, stmt(chain, 0).premium) == (False, 20_000 // 30)


# ---------------------------------------------------------------- paying premiums


def test_paying_a_premium_moves_exactly_the_premium() -> None:
    chain = world()
    drive(chain, S(chain) + HOUR, brake_at=(1,))  # 2,000 + 65 + 100
    issue(chain, at=S(chain) + PERIOD)
    assert stmt(chain, 0).premium == 2_165
    before = (balance(chain, ALICE), balance(chain, "org:ins"))
    r = ok(chain, ALICE, PayPremium(policy=1, period=0))
    assert (balance(chain, ALICE), balance(chain, "org:ins")) == (before[0] - 2_165, before[1] + 2_165)
    assert r.events == [
        {"type": "payments.transferred", "currency": "EUR", "payer": ALICE.did, "to": "org:ins", "amount": 2_165,
         "memo": "premium policy 1 period 0"},
        {"type": "insurance.premium_paid", "policy": 1, "period": 0, "premium": 2_165, "insurer": "ins",
         "holder": ALICE.did}]
    assert stmt(chain, 0).status == "paid"
    assert stmt(chain, 0).premium == 2_165


def test_a_former_holder_still_pays_her_statements() -> None:
    chain = world()
    issue(chain, at=S(chain) + PERIOD)
    sell(chain, now(chain) + 1)
    ok(chain, ALICE, PayPremium(policy=1, period=0))
    assert send(chain, BOB, PayPremium(policy=1, period=1)).code == "not_policy_holder"


# ---------------------------------------------------------------- claims


def test_a_crash_opens_a_claim_in_the_same_transaction() -> None:
    chain = world()
    t = S(chain) + HOUR
    r = crash(chain, t, odometer_m=20_999)
    assert types(r) == ["vehicles.history_appended", "telemetry.crash_reported", "insurance.claim_changed"]
    assert r.events[2] == {"type": "insurance.claim_changed", "claim": 1, "policy": 1, "status": "opened",
                           "vin": VIN, "insurer": "ins", "holder": ALICE.did, "workshop": ""}
    c = claim(chain)
    assert (c.id, c.policy, c.vin, c.insurer, c.holder, c.source, c.crash, c.incident, c.odometer_km, c.flags,
            c.status, c.opened) == (1, 1, VIN, "ins", ALICE.did, "crash", 1, t, 20, [], "opened",
                                    chain.ledger.head.height)
    assert CRASH_CLAIMS.get(chain.ledger, VIN, 1) == 1
    assert VEHICLE_CLAIMS.get(chain.ledger, VIN, pol(chain).holder_since) == [1]  # the holding's claims
    assert [dict(x) for x in chain.ledger.index[CLAIM_LIST.name].values()] == [
        {"id": 1, "policy": 1, "insurer": "ins", "vin": VIN, "status": "opened"}]
    # the holder cannot claim the same crash again
    r = send(chain, ALICE, FileClaim(policy=1, incident=t, odometer_km=20, crash=1))
    assert (r.code, r.detail["claim"]) == ("claim_exists", 1)


@pytest.mark.parametrize("dt,claims", [(-1, False), (0, True)])
def test_a_crash_opens_a_claim_only_while_the_policy_is_in_force(dt: int, claims: bool) -> None:
    chain = world()
    r = crash(chain, S(chain) + dt)
    assert ("insurance.claim_changed" in types(r)) is claims
    assert (claim(chain) is not None) is claims


def test_a_crash_at_the_policys_end_opens_no_claim() -> None:
    chain = world()
    end = pol(chain).end
    assert "insurance.claim_changed" in types(crash(chain, end - 1))
    assert "insurance.claim_changed" not in types(crash(chain, end))
    assert claim(chain, 2) is None


@pytest.mark.parametrize("dt,flagged", [(60_000, True), (60_001, False), (-60_000, True), (-60_001, False)])
def test_a_crash_within_a_minute_of_the_one_before_is_flagged_possible_duplicate(dt: int, flagged: bool) -> None:
    chain = world()
    t = S(chain) + DAY
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=t, decel_mms2=50_000, odometer_m=1_000, airbag=True), at=t + 70_000)
    ok(chain, DEVICE2, ReportCrash(vin=VIN, t=t + dt, decel_mms2=0, odometer_m=1_000, impact=True), at=t + 70_001)
    assert (claim(chain, 1).flags, claim(chain, 2).flags) == ([], ["possible_duplicate"] if flagged else [])


def test_a_crash_without_any_policy_is_only_a_crash() -> None:
    chain = world(policy=False)
    r = crash(chain, now(chain) + 1)
    assert types(r) == ["vehicles.history_appended", "telemetry.crash_reported"]


def test_a_crash_after_a_cancellation_opens_no_claim() -> None:
    chain = world()
    c = S(chain) + DAY
    ok(chain, INS, CancelPolicy(policy=1), at=c)
    assert "insurance.claim_changed" in types(crash(chain, c - 1))
    assert "insurance.claim_changed" not in types(crash(chain, c))


def test_a_crash_during_the_next_policy_is_claimed_on_it() -> None:
    chain = world()
    end = pol(chain).end
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=end, periods=1, deductible=0, coverage=5), ALICE,
       at=end - AHEAD)
    crash(chain, end + HOUR)
    crash(chain, end - HOUR)  # reported later, but it happened under policy 1
    assert (claim(chain, 1).policy, claim(chain, 2).policy) == (2, 1)


def test_a_claim_filed_without_a_crash_is_flagged() -> None:
    chain = world()
    incident = S(chain) + HOUR
    r = ok(chain, ALICE, FileClaim(policy=1, incident=incident, odometer_km=0, reference="hail-2027"),
           at=incident + HOUR)
    assert r.events[0]["status"] == "opened"
    c = claim(chain)
    assert (c.source, c.crash, c.incident, c.flags) == ("holder", 0, incident, ["no_crash_event"])
    assert CRASH_CLAIMS.get(chain.ledger, VIN, 0) is None
    crash(chain, incident + 1)
    pid = bob_policy(chain)
    ok(chain, BOB, FileClaim(policy=pid, incident=S(chain, pid), odometer_km=0), at=S(chain, pid))
    assert (VEHICLE_CLAIMS.get(chain.ledger, VIN, pol(chain).holder_since),
            VEHICLE_CLAIMS.get(chain.ledger, OTHER_VIN, pol(chain, pid).holder_since)) == ([1, 2], [3])


def test_a_claim_at_the_start_and_the_last_ms_of_the_policy_is_accepted() -> None:
    chain = world()
    ok(chain, ALICE, FileClaim(policy=1, incident=S(chain), odometer_km=0), at=S(chain))
    end = pol(chain).end
    ok(chain, ALICE, FileClaim(policy=1, incident=end - 1, odometer_km=0), at=end - 1)


def test_a_claim_filed_on_a_reported_crash_takes_the_crash_facts() -> None:
    chain = world(policy=False)
    t = now(chain) + 1
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=t, periods=1, deductible=0, coverage=5), ALICE, at=t)
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=t - 1, decel_mms2=0, odometer_m=7_500, impact=True), at=t + 10)
    assert claim(chain) is None  # before the policy started
    r = send(chain, ALICE, FileClaim(policy=1, incident=t + 5, odometer_km=999, crash=1))
    assert (r.code, r.detail["incident"]) == ("no_active_policy", t - 1)  # the crash's time counts, not the claim's


def test_a_crash_reported_before_its_policy_was_bound_is_claimed_with_its_facts() -> None:
    """A device clock ahead dates a crash after the report (within the skew): a policy bound in between
    covers it, and the holder files it; the claim takes the crash's time and odometer, not hers."""
    chain = world(policy=False)
    r0 = now(chain) + 1
    t = r0 + 4 * MINUTE
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=t, decel_mms2=0, odometer_m=999_000, impact=True), at=r0)
    b = r0 + MINUTE
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=b, periods=1, deductible=0, coverage=5), ALICE, at=b)
    assert claim(chain) is None
    assert send(chain, ALICE, FileClaim(policy=1, incident=b, odometer_km=0, crash=1), at=t - 1).code == \
        "claim_incident_in_future"
    ok(chain, ALICE, FileClaim(policy=1, incident=b, odometer_km=999, crash=1), at=t)
    c = claim(chain)
    assert (c.source, c.crash, c.incident, c.odometer_km, c.flags) == ("holder", 1, t, 999, [])
    assert CRASH_CLAIMS.get(chain.ledger, VIN, 1) == 1
    assert send(chain, ALICE, FileClaim(policy=1, incident=b, odometer_km=0, crash=1)).code == "claim_exists"


@pytest.mark.parametrize("km,flagged", [(10_000 - SLACK_KM, False), (10_000 - SLACK_KM - 1, True)])
def test_a_claimed_odometer_below_the_record_is_flagged(km: int, flagged: bool) -> None:
    chain = world()
    ok(chain, DEVICE, RecordOdometer(vin=VIN, value=10_000))
    t = S(chain) + HOUR
    ok(chain, ALICE, FileClaim(policy=1, incident=t, odometer_km=km), at=t)
    expected = ["mileage_inconsistent", "no_crash_event"] if flagged else ["no_crash_event"]
    assert claim(chain).flags == expected
    crash(chain, t + 1, odometer_m=km * 1_000 + 999)
    assert claim(chain, 2).flags == (["mileage_inconsistent"] if flagged else [])


def test_a_claim_goes_opened_assessed_approved_paid() -> None:
    chain = world()
    crash(chain, S(chain) + HOUR)
    assert send(chain, SHOP, AssessClaim(claim=1, estimate=1)).code == "not_claim_workshop"  # nobody chose it yet
    r = ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    assert r.events == [{"type": "insurance.claim_changed", "claim": 1, "policy": 1, "status": "opened",
                         "vin": VIN, "insurer": "ins", "holder": ALICE.did, "workshop": "shop"}]
    r = ok(chain, SHOP, AssessClaim(claim=1, estimate=250_000, reference="est-1"))
    assert r.events == [{"type": "insurance.claim_changed", "claim": 1, "policy": 1, "status": "assessed",
                         "vin": VIN, "insurer": "ins", "holder": ALICE.did, "workshop": "shop"}]
    ok(chain, SHOP, AssessClaim(claim=1, estimate=300_000, reference="est-2"))  # a later estimate replaces it
    c = claim(chain)
    assert (c.status, c.estimate, c.workshop, c.estimate_ref) == ("assessed", 300_000, "shop", "est-2")
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=300_000))
    c = claim(chain)
    assert (c.status, c.reason, c.approved, c.payout) == ("approved", "covered", 300_000, 290_000)
    alice, ins = balance(chain, ALICE), balance(chain, "org:ins")
    r = ok(chain, INS, PayClaim(claim=1))
    assert (balance(chain, ALICE), balance(chain, "org:ins")) == (alice + 290_000, ins - 290_000)
    assert r.events[0] == {"type": "payments.transferred", "currency": "EUR", "payer": "org:ins", "to": ALICE.did,
                           "amount": 290_000, "memo": "claim 1"}
    assert claim(chain).status == "paid"
    assert chain.ledger.index[CLAIM_LIST.name][next(iter(chain.ledger.index[CLAIM_LIST.name]))]["status"] == "paid"


def test_choosing_another_workshop_drops_the_estimate() -> None:
    chain = world()
    crash(chain, S(chain) + HOUR)
    ok(chain, INS, ChooseWorkshop(claim=1, workshop="shop"))  # the insurer may choose too
    ok(chain, SHOP, AssessClaim(claim=1, estimate=300_000, reference="est-1"))
    r = ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))  # the same one: nothing changes
    assert r.events == [] and claim(chain).estimate == 300_000
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop2"))
    c = claim(chain)
    assert (c.workshop, c.status, c.estimate, c.estimate_ref) == ("shop2", "opened", 0, "")
    assert send(chain, SHOP, AssessClaim(claim=1, estimate=1)).code == "not_claim_workshop"
    assert send(chain, INS, approve(300_000)).code == "claim_not_assessed"
    ok(chain, SHOP2, AssessClaim(claim=1, estimate=200_000))
    ok(chain, INS, approve(200_000))
    assert claim(chain).payout == 190_000


def test_an_approval_up_to_the_coverage_is_accepted() -> None:
    chain = world()
    crash(chain, S(chain) + HOUR)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=900_000))
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=500_000))
    assert claim(chain).payout == 490_000


@pytest.mark.parametrize("amount", [10_000, 9_999, 0])
def test_an_approval_within_the_deductible_pays_nothing_and_closes(amount: int) -> None:
    chain = world()
    crash(chain, S(chain) + HOUR)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=amount))
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=amount))
    assert (claim(chain).status, claim(chain).payout, claim(chain).approved) == ("paid", 0, amount)
    assert send(chain, INS, PayClaim(claim=1)).code == "claim_not_approved"


def test_one_ms_over_the_deductible_pays_one() -> None:
    chain = world()
    crash(chain, S(chain) + HOUR)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=10_001))
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=10_001))
    assert (claim(chain).status, claim(chain).payout) == ("approved", 1)


@pytest.mark.parametrize("assessed", [False, True])
def test_a_denial_names_its_reason_with_or_without_an_estimate(assessed: bool) -> None:
    chain = world()
    crash(chain, S(chain) + HOUR)
    if assessed:
        ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
        ok(chain, SHOP, AssessClaim(claim=1, estimate=1_000))
    r = ok(chain, INS, DecideClaim(claim=1, approve=False, reason="fraud_suspected"))
    assert r.events[0]["status"] == "denied"
    assert (claim(chain).status, claim(chain).reason, claim(chain).payout) == ("denied", "fraud_suspected", 0)


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Callable[[Any], Any]
    code: str
    setup: Callable[[Any], Any] | None = None
    cosigners: tuple[KeyPair, ...] = ()
    at: Callable[[Any], int] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    world: dict[str, bool] = field(default_factory=dict)


def r(name: str, who: KeyPair, msg: Any, code: str, setup: Any = None, cosigners: tuple = (), at: Any = None,
      reason: str = "", world_kw: dict | None = None, **detail: Any) -> Any:
    make = msg if callable(msg) else (lambda chain, m=msg: m)
    return pytest.param(Refusal(name, who, make, code, setup, cosigners, at, detail, reason, world_kw or {}), id=name)


def steps(*fns: Callable[[Any], Any]) -> Callable[[Any], None]:
    def setup(chain: Any) -> None:
        for fn in fns:
            fn(chain)
    return setup


def bind(start: Callable[[Any], int] = lambda c: now(c) + 1, vin: str = VIN, product: str = "payd",
         deductible: int = 0, coverage: int = 0, periods: int = 1) -> Callable[[Any], BindPolicy]:
    return lambda chain: BindPolicy(product=product, vin=vin, start=start(chain), periods=periods,
                                    deductible=deductible, coverage=coverage)


def since_s(dt: int) -> Callable[[Any], int]:
    """The time ``dt`` after policy 1 starts (or the next ms, if that is past)."""
    return lambda chain: max(S(chain) + dt, now(chain) + 1)


def at_end(dt: int = 0) -> Callable[[Any], int]:
    return lambda chain: max(pol(chain).end + dt, now(chain) + 1)


def cancelled(chain: Any) -> None:
    ok(chain, ALICE, CancelPolicy(policy=1), at=S(chain) + DAY)


def sold(chain: Any) -> None:
    sell(chain, S(chain) + DAY)


def ended(chain: Any) -> None:
    ok(chain, ALICE, RecordOdometer(vin=VIN, value=1), at=pol(chain).end)  # the clock moves past the end


def followed(chain: Any) -> None:
    """Policy 2 follows policy 1 from its end."""
    end = pol(chain).end
    ok(chain, INS, BindPolicy(product="payd", vin=VIN, start=end, periods=1, deductible=0, coverage=0), ALICE,
       at=end - AHEAD)


def scrapped(chain: Any) -> None:
    ok(chain, SCRAP, Deregister(vin=VIN, certificate="COD-9"), ALICE)


def billed(n: int) -> Callable[[Any], None]:
    def setup(chain: Any) -> None:
        for k in range(n):
            issue(chain, at=max(S(chain) + (k + 1) * PERIOD, now(chain) + 1))
    return setup


def broke(chain: Any) -> None:
    """Alice spends all but 100 of her 100,000."""
    billed(1)(chain)
    ok(chain, ALICE, Transfer(currency="EUR", to=BOB.did, amount=99_900))


def crashed(chain: Any) -> None:
    crash(chain, S(chain) + HOUR)


def assessed(chain: Any) -> None:
    crashed(chain)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=300_000))


def approved(chain: Any) -> None:
    assessed(chain)
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=300_000))


def claim_paid(chain: Any) -> None:
    approved(chain)
    ok(chain, INS, PayClaim(claim=1))


def denied(chain: Any) -> None:
    crashed(chain)
    ok(chain, INS, DecideClaim(claim=1, approve=False, reason="no_damage"))


def insurer_broke(chain: Any) -> None:
    approved(chain)
    ok(chain, INS, Transfer(currency="EUR", to=BOB.did, amount=balance(chain, "org:ins") - 1, payer="org:ins"))


def early_crash(chain: Any) -> None:
    """A crash one ms before policy 1 starts (so it opened no claim)."""
    crash(chain, S(chain) - 1)


def file(incident: Callable[[Any], int], crash_seq: int = 0, km: int = 0) -> Callable[[Any], FileClaim]:
    return lambda chain: FileClaim(policy=1, incident=incident(chain), odometer_km=km, crash=crash_seq)


def approve(amount: int, reason: str = "covered") -> DecideClaim:
    return DecideClaim(claim=1, approve=True, reason=reason, amount=amount)


REFUSALS = [
    # products
    r("publish_min_above_max", INS, PublishProduct(product="x", currency="EUR", period_days=1, max_coverage=1,
                                                   pricing=Pricing(base=0, min_premium=2, max_premium=1)),
      "invalid_product", reason="min_premium 2 is above max_premium 1"),
    r("publish_base_above_max", INS, PublishProduct(product="x", currency="EUR", period_days=1, max_coverage=1,
                                                    pricing=Pricing(base=2, max_premium=1)),
      "invalid_product", reason="base 2 is above max_premium 1"),
    r("bind_an_unknown_product", INS, bind(product="nope", vin=OTHER_VIN), "unknown_product", cosigners=(BOB,),
      insurer="ins", product="nope"),
    r("bind_another_insurers_product", INS2, bind(vin=OTHER_VIN), "unknown_product", cosigners=(BOB,),
      insurer="ins2"),
    # binding
    r("bind_backdated", INS, bind(start=lambda c: now(c), vin=OTHER_VIN), "invalid_policy", cosigners=(BOB,),
      reason="no cover backdated"),
    r("bind_too_far_ahead", INS, bind(start=lambda c: now(c) + 1 + AHEAD + 1, vin=OTHER_VIN), "invalid_policy",
      cosigners=(BOB,), reason="ms after the block time"),
    r("bind_coverage_over_the_products", INS, bind(vin=OTHER_VIN, coverage=1_000_001), "invalid_policy",
      cosigners=(BOB,), reason="above the product's"),
    r("bind_deductible_over_the_coverage", INS, bind(vin=OTHER_VIN, deductible=101, coverage=100), "invalid_policy",
      cosigners=(BOB,), reason="deductible 101 is above the coverage 100"),
    r("bind_overlapping_the_policy_in_force", INS, bind(start=lambda c: pol(c).end - 1), "policy_overlaps",
      cosigners=(ALICE,), at=since_s(HOUR), policy=1),
    r("bind_overlapping_a_policy_yet_to_start", INS, bind(), "policy_overlaps", cosigners=(ALICE,), policy=1),
    r("bind_overlapping_the_newest_of_two", INS, bind(start=lambda c: pol(c, 2).end - 1), "policy_overlaps",
      followed, cosigners=(ALICE,), at=since_s(31 * DAY), policy=2),
    r("bind_without_the_holder", INS, bind(vin=OTHER_VIN), "missing_cosigner"),
    r("bind_cosigned_by_a_former_holder", INS, bind(), "missing_cosigner", lambda c: sell(c, now(c) + 1),
      cosigners=(ALICE,),
      world_kw={"policy": False}),
    r("bind_on_a_scrapped_vehicle", INS, bind(), "vehicle_scrapped", scrapped, cosigners=(ALICE,),
      world_kw={"policy": False}),
    r("bind_on_an_unknown_vehicle", INS, bind(vin=vin_for(WMI["oem"], 77)), "unknown_vehicle", cosigners=(ALICE,)),
    # renewal
    r("renew_at_the_end", INS, RenewPolicy(policy=1, periods=1), "policy_not_renewable", cosigners=(ALICE,),
      at=at_end(), reason="bind a new one"),
    r("renew_a_cancelled_policy", INS, RenewPolicy(policy=1, periods=1), "policy_cancelled", cancelled,
      cosigners=(ALICE,)),
    r("renew_after_a_sale", INS, RenewPolicy(policy=1, periods=1), "policy_holder_changed", sold,
      cosigners=(ALICE,)),
    r("renew_a_policy_another_follows", INS, RenewPolicy(policy=1, periods=1), "policy_not_renewable", followed,
      cosigners=(ALICE,), reason="a newer policy follows it"),
    r("renew_another_insurers_policy", INS2, RenewPolicy(policy=1, periods=1), "not_your_policy",
      cosigners=(ALICE,), insurer="ins", org="ins2"),
    r("renew_an_unknown_policy", INS, RenewPolicy(policy=9, periods=1), "unknown_policy", cosigners=(ALICE,)),
    r("renew_without_the_holder", INS, RenewPolicy(policy=1, periods=1), "missing_cosigner"),
    # cancellation
    r("cancel_by_a_stranger", BOB, CancelPolicy(policy=1), "not_policy_holder", sender=BOB.did),
    r("cancel_by_the_cars_device", DEVICE, CancelPolicy(policy=1), "not_policy_holder"),
    r("cancel_by_another_insurer", INS2, CancelPolicy(policy=1), "not_policy_holder"),
    r("cancel_twice", INS, CancelPolicy(policy=1), "policy_cancelled", cancelled),
    r("cancel_at_the_end", ALICE, CancelPolicy(policy=1), "policy_ended", at=at_end()),
    r("cancel_after_a_sale", ALICE, CancelPolicy(policy=1), "policy_ended", sold),
    r("cancel_an_unknown_policy", ALICE, CancelPolicy(policy=0), "unknown_policy"),
    # statements
    r("statement_before_the_period_ends", INS, IssueStatements(policies=[1]), "period_not_ended",
      at=since_s(PERIOD - 1), period=0),
    r("next_statement_before_its_period_ends", INS, IssueStatements(policies=[1]), "period_not_ended", billed(1),
      at=since_s(2 * PERIOD - 1), period=1),
    r("statement_of_a_fully_billed_policy", INS, IssueStatements(policies=[1]), "policy_fully_billed", billed(3),
      billed=3),
    r("statement_listed_twice", INS, IssueStatements(policies=[1, 1]), "duplicate_policy", at=since_s(PERIOD),
      policy=1),
    r("statements_one_of_which_not_ended", INS,
      lambda c: IssueStatements(policies=[1, bob_policy(c, start=S(c) + DAY)]),
      "period_not_ended", at=since_s(PERIOD)),
    r("statement_of_another_insurers_policy", INS2, IssueStatements(policies=[1]), "not_your_policy",
      at=since_s(PERIOD)),
    r("statement_of_an_unknown_policy", INS, IssueStatements(policies=[7]), "unknown_policy"),
    # premiums
    r("premium_paid_by_a_stranger", BOB, PayPremium(policy=1, period=0), "not_policy_holder", billed(1)),
    r("premium_paid_by_the_insurer", INS, PayPremium(policy=1, period=0), "not_policy_holder", billed(1)),
    r("premium_of_a_period_not_billed", ALICE, PayPremium(policy=1, period=1), "unknown_statement", billed(1)),
    r("premium_paid_twice", ALICE, PayPremium(policy=1, period=0), "statement_paid",
      steps(billed(1), lambda c: ok(c, ALICE, PayPremium(policy=1, period=0)))),
    r("premium_over_the_balance", ALICE, PayPremium(policy=1, period=0), "insufficient_funds", broke),
    r("premium_of_an_unknown_policy", ALICE, PayPremium(policy=5, period=0), "unknown_policy"),
    # claims
    r("claim_by_a_stranger", BOB, file(since_s(HOUR)), "not_policy_holder", at=since_s(2 * HOUR)),
    r("claim_before_the_policy_starts", ALICE, file(lambda c: S(c) - 1), "no_active_policy", at=since_s(HOUR)),
    r("claim_at_the_policys_end", ALICE, file(lambda c: pol(c).end), "no_active_policy", at=at_end(HOUR)),
    r("claim_after_a_cancellation", ALICE, file(lambda c: S(c) + DAY), "no_active_policy", cancelled,
      at=since_s(2 * DAY)),
    r("claim_for_an_incident_to_come", ALICE, file(since_s(HOUR + 1)), "claim_incident_in_future",
      at=since_s(HOUR)),
    r("claim_a_crash_twice", ALICE, file(since_s(HOUR), crash_seq=1), "claim_exists", crashed, claim=1),
    r("claim_an_unknown_crash", ALICE, file(since_s(HOUR), crash_seq=3), "unknown_crash", crashed,
      at=since_s(2 * HOUR)),
    r("claim_a_crash_before_the_policy", ALICE, file(since_s(HOUR), crash_seq=1), "no_active_policy", early_crash,
      at=since_s(2 * HOUR)),
    r("claim_on_an_unknown_policy", ALICE, FileClaim(policy=4, incident=1, odometer_km=0), "unknown_policy"),
    # assessment
    r("assess_an_unknown_claim", SHOP, AssessClaim(claim=2, estimate=1), "unknown_claim", crashed),
    r("choose_an_organisation_that_is_no_workshop", ALICE, ChooseWorkshop(claim=1, workshop="dealer"),
      "not_a_workshop", crashed),
    r("choose_an_unknown_workshop", ALICE, ChooseWorkshop(claim=1, workshop="nobody"), "not_a_workshop", crashed),
    r("choose_a_workshop_after_the_approval", ALICE, ChooseWorkshop(claim=1, workshop="shop"), "claim_decided",
      approved, status="approved"),
    r("choose_a_workshop_after_the_denial", INS, ChooseWorkshop(claim=1, workshop="shop"), "claim_decided", denied),
    r("choose_a_workshop_for_someone_elses_claim", BOB, ChooseWorkshop(claim=1, workshop="shop"),
      "not_policy_holder", crashed),
    r("file_a_claim_naming_an_insurer_as_workshop", ALICE, lambda c: FileClaim(
        policy=1, incident=S(c) + HOUR, odometer_km=0, workshop="ins"), "not_a_workshop", at=since_s(2 * HOUR)),
    r("assess_an_approved_claim", SHOP, AssessClaim(claim=1, estimate=1), "claim_decided", approved,
      status="approved"),
    r("assess_a_denied_claim", SHOP, AssessClaim(claim=1, estimate=1), "claim_decided", denied, status="denied"),
    # decisions
    r("decide_by_another_insurer", INS2, approve(300_000), "not_your_claim", assessed, insurer="ins", org="ins2"),
    r("approve_with_a_denial_reason", INS, approve(300_000, "other"), "reason_mismatch", assessed),
    r("deny_as_covered", INS, DecideClaim(claim=1, approve=False, reason="covered"), "reason_mismatch", assessed),
    r("approve_without_an_estimate", INS, approve(300_000), "claim_not_assessed", crashed),
    r("approve_over_the_coverage", INS, approve(500_001), "over_coverage", assessed, coverage=500_000),
    r("decide_twice", INS, approve(300_000), "claim_decided", approved),
    r("deny_an_approved_claim", INS, DecideClaim(claim=1, approve=False, reason="other"), "claim_decided", approved),
    r("decide_an_unknown_claim", INS, approve(1), "unknown_claim"),
    # payouts
    r("pay_an_opened_claim", INS, PayClaim(claim=1), "claim_not_approved", crashed, status="opened"),
    r("pay_an_assessed_claim", INS, PayClaim(claim=1), "claim_not_approved", assessed),
    r("pay_a_denied_claim", INS, PayClaim(claim=1), "claim_not_approved", denied),
    r("pay_a_claim_twice", INS, PayClaim(claim=1), "claim_not_approved", claim_paid, status="paid"),
    r("pay_another_insurers_claim", INS2, PayClaim(claim=1), "not_your_claim", approved),
    r("pay_beyond_the_insurers_balance", INS, PayClaim(claim=1), "insufficient_funds", insurer_broke),
    r("pay_an_unknown_claim", INS, PayClaim(claim=1), "unknown_claim"),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing(case: Refusal) -> None:
    chain = world(**case.world)
    if case.setup is not None:
        case.setup(chain)
    msg = case.msg(chain)
    at = now(chain) + 1 if case.at is None else case.at(chain)
    before = snapshot(chain)
    money = (balance(chain, ALICE), balance(chain, BOB), balance(chain, "org:ins"), balance(chain, "org:ins2"))
    receipt = send(chain, case.sender, msg, *case.cosigners, at=at)
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        assert receipt.detail[k] == v, receipt.detail
    if case.reason:
        assert case.reason in receipt.detail["reason"], receipt.detail
    assert snapshot(chain)[:2] == before[:2], "a failed transaction changed the ledger"
    assert (balance(chain, ALICE), balance(chain, BOB), balance(chain, "org:ins"), balance(chain, "org:ins2")) == money
