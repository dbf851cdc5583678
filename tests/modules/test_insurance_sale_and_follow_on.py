"""A sale while a follow-on policy is already bound: both of the seller's policies end at the sale,
the follow-on one is never in force, and the buyer may insure the car at once (an empty policy
blocks no one); a policy cancelled before it starts blocks no one either."""

from __future__ import annotations

from typing import Any

from blokauto.modules.insurance.messages import BindPolicy, CancelPolicy, FileClaim, PublishProduct
from blokauto.modules.insurance.state import POLICIES, PRODUCTS
from blokauto.modules.vehicles.messages import TransferTitle

from helpers.insurance import ALICE, BOB, DAY, INS, INS2, PAYD, PERIOD, VIN, now, ok, send, world


def bind(chain: Any, insurer: Any, holder: Any, start: int, at: int, periods: int = 1) -> Any:
    if insurer is INS2 and PRODUCTS.get(chain.ledger, "ins2", "payd") is None:
        ok(chain, INS2, PublishProduct(product="payd", currency="EUR", period_days=30, pricing=PAYD,
                                       max_coverage=1_000_000), at=at)
    return ok(chain, insurer, BindPolicy(product="payd", vin=VIN, start=start, periods=periods, deductible=0,
                                         coverage=100_000), holder, at=at)


def test_a_sale_ends_the_follow_on_policy_before_it_starts_and_the_buyer_insures_at_once() -> None:
    chain = world()  # policy 1: Alice, 3 periods
    p1 = POLICIES.get(chain.ledger, 1)
    bind(chain, INS, ALICE, p1.end, p1.end - 10 * DAY)  # policy 2 follows it
    sale = p1.end - 5 * DAY
    ok(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, at=sale)
    p1, p2 = POLICIES.get(chain.ledger, 1), POLICIES.get(chain.ledger, 2)
    assert (p1.sold, p2.sold) == (sale, sale)
    # Bob insures with another insurer from the next minute: nothing of Alice's is in force any more
    bind(chain, INS2, BOB, sale + 60_000, sale + 1)
    assert POLICIES.get(chain.ledger, 3).holder == BOB.did
    # Alice cannot claim for a day after the sale on either policy
    for pid in (1, 2):
        r = send(chain, ALICE, FileClaim(policy=pid, incident=sale + DAY, odometer_km=0), at=sale + 2 * DAY)
        assert r.code == "no_active_policy", r


def test_a_policy_cancelled_before_it_starts_leaves_the_one_in_force_in_force() -> None:
    chain = world()
    p1 = POLICIES.get(chain.ledger, 1)
    bind(chain, INS, ALICE, p1.end, p1.end - 10 * DAY)  # policy 2 follows policy 1
    ok(chain, ALICE, CancelPolicy(policy=2))  # cancelled before it starts: never in force
    # policy 1 still runs: a new policy may not start inside it, only at its end
    r = send(chain, INS, BindPolicy(product="payd", vin=VIN, start=now(chain) + 60_000, periods=1, deductible=0,
                                    coverage=100_000), ALICE)
    assert (r.code, r.detail.get("policy")) == ("policy_overlaps", 1), r
    bind(chain, INS, ALICE, p1.end, now(chain) + 1)


def test_a_sale_before_the_buyers_policy_starts_the_buyer_insures_without_waiting() -> None:
    chain = world()
    p1 = POLICIES.get(chain.ledger, 1)
    sale = p1.start + PERIOD
    ok(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, at=sale)
    bind(chain, INS2, BOB, sale, sale)  # from the sale's own time
