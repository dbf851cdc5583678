"""Settling an energy interval: who pays whom, for what, and what the queries say afterwards
(``helpers.energy``: zone Z1's terms: the grid sells up to 50 kWh at 30 c/kWh and buys up to 20 kWh
at 8 c; short 40 c, long 5 c; Alice, Bob and Carol hold 1,000.00 EUR each, the grid 10,000.00;
house-a moves at most 5,000 Wh an interval, cp-b 5,500, v2g-c 2,750).

The reference book: Alice's house asks 3 kWh at 10, Bob's charge point bids 4 kWh at 35 (holding
1.40). Bob's 4 kWh match Alice's 3 and 1 of the grid's at 30, the last levels matched: the price is
(35 + 30) // 2 = 32. Bob pays 4 x 32 = 1.28 (0.12 of his bid's money back), Alice is paid
3 x 32 = 0.96, the grid keeps 0.32 for its kWh.

Scenarios: budget balance (every account's change and the money held add up to nothing, the supply
does not move, nothing stays held, buyers pay at most their bids and sellers get at least their
asks); short and long imbalances at the terms' prices, rounded against the meter (sellers paid first,
then short charges, then long credits); a meter that traded
and sent no reading counting as having read the worst it could (its whole power imported all the
interval: short by its power's Wh + what it sold - what it bought), a seller and a buyer, one that
bought all its power takes, one whose bought and sold energy cancel; a meter whose bids got nothing
owing no imbalance, read or not (and ``read`` saying whether it read); a short charge an account cannot
cover recorded as unpaid (and the rest taken); unfilled bids refunded in full; a meter revoked after
ordering settling as unread; a settlement never refused for money: the grid buying only what its
operator's account pays for (held from the clearing to the settlement), a long credit that account
cannot pay recorded ``long_unpaid`` (credits paid by meter id), short charges collected before long
credits are paid; settlement clearing first; terms changed for later intervals not touching this one;
the queries answering what settled; organisations removed since (an owner, the zone operator) paid
and charged all the same, nothing left held. Then properties over random books, readings and grid
funds: money is conserved and each position's arithmetic is the rule's; withholding a reading never
beats sending any reading the meter could have sent.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from blokauto.core.module import Page
from blokauto.modules.energy import queries as eq
from blokauto.modules.energy.clearing import fill, value
from blokauto.modules.energy.messages import (ClearInterval, PlaceOrder, RegisterMeter, RevokeMeter, SetTerms,
                                              SettleInterval, SubmitReading)
from blokauto.modules.energy.state import Terms
from blokauto.modules.payments.messages import Issue, Redeem, Transfer

from conftest import Chain, K
from helpers.energy import (ALICE, BOB, CAROL, CHARGECO, CP_KEY, DAVE, EMI, GRID, INTERVAL, LIMIT_WH, METER_KEYS,
                            OWNERS, TERMS, accounts, bal, book, end, fork, gate, held, next_start, now,
                            ok, order, position, query, remove_org, send, settles, snapshot, supply, terms_start,
                            world)

GRID_ACCOUNT = "org:grid"


def total(w: Chain) -> int:
    """Every unit of EUR on the ledger: the accounts and what energy holds."""
    return sum(accounts(w).values()) + held(w)


def reference(w: Chain, s: int | None = None) -> int:
    """The reference book on interval ``s`` (default: the first open); returns its start."""
    s = next_start(w) if s is None else s
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="sell", price=10, wh=3_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=35, wh=4_000))
    return s


def read(w: Chain, meter: str, s: int, imported: int, exported: int, at: int | None = None) -> None:
    ok(w, METER_KEYS[meter], SubmitReading(meter=meter, start=s, imported_wh=imported, exported_wh=exported), at=at)


def settle(w: Chain, s: int, at: int | None = None) -> Any:
    return ok(w, DAVE, SettleInterval(zone="Z1", start=s), at=at)


def changes(w: Chain, before: dict[str, int]) -> dict[str, int]:
    """Every account whose balance moved since ``before`` (``accounts``), by how much."""
    after = accounts(w)
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    return {k: v for k, v in moved.items() if v}


def transfers(receipt: Any) -> list[tuple[str, str, int, str]]:
    return [(e["payer"], e["to"], e["amount"], e["memo"]) for e in receipt.events
            if e["type"] == "payments.transferred"]


def bug(reason: str) -> Any:
    return pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)


# ---------------------------------------------------------------- the reference book, read as traded


def test_a_book_read_as_traded_settles_at_the_clearing_price_and_balances() -> None:
    w = world()
    start_total, start_supply, before = total(w), supply(w), accounts(w)
    s = reference(w)
    assert (bal(w, BOB), held(w)) == (100_000 - 140, 140)
    ok(w, DAVE, ClearInterval(zone="Z1", start=s), at=gate(s))
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    r = settle(w, s)
    assert r.events[-1] == {"type": "energy.settled", "zone": "Z1", "start": s, "positions": 2,
                            "missing_readings": 0}
    change = changes(w, before)
    assert change == {ALICE.did: 96, BOB.did: -128, GRID_ACCOUNT: 32}
    assert sum(change.values()) == 0 and held(w) == 0
    assert (total(w), supply(w)) == (start_total, start_supply)
    a, b = position(w, "house-a", s), position(w, "cp-b", s)
    assert (a.sold_wh, a.bought_wh, a.received, a.paid, a.read, a.net_export_wh, a.short_wh, a.long_wh) == (
        3_000, 0, 96, 0, True, 3_000, 0, 0)
    assert (b.bought_wh, b.paid, b.refunded, b.read, b.net_export_wh, b.short_wh, b.long_wh, b.unpaid) == (
        4_000, 128, 12, True, -4_000, 0, 0, 0)
    # buyers pay at most their bid, sellers get at least their ask (rounded against each)
    assert b.paid <= value(4_000, 35, up=True) and a.received >= value(3_000, 10, up=False)
    st_ = book(w, s).settlement
    assert (st_.positions, st_.missing_readings, st_.bought_paid, st_.sold_paid, st_.short_paid, st_.short_unpaid,
            st_.long_paid, st_.height, st_.time) == (2, 0, 128, 96, 0, 0, 0, w.ledger.head.height, now(w))


def test_short_and_long_imbalances_settle_at_the_terms_prices_rounded_against_the_meter() -> None:
    """Alice delivers 1,234 Wh less than she sold (short: 49.36 -> 50 at 40 c); Bob takes 777 Wh less
    than he bought (long: 3.885 -> 3 at 5 c)."""
    w = world()
    s = reference(w)
    read(w, "house-a", s, 0, 3_000 - 1_234, at=end(s))
    read(w, "cp-b", s, 4_000 - 777, 0)
    before = accounts(w)
    settle(w, s)
    a, b = position(w, "house-a", s), position(w, "cp-b", s)
    assert (a.short_wh, a.short_charge, a.long_wh, a.long_credit) == (1_234, 50, 0, 0)
    assert (b.short_wh, b.short_charge, b.long_wh, b.long_credit) == (0, 0, 777, 3)
    # Alice's short is taken from what she is paid; Bob's long credit is paid out with his refund
    assert changes(w, before) == {ALICE.did: 96 - 50, BOB.did: 12 + 3, GRID_ACCOUNT: 128 - 46 - 3}
    assert (bal(w, ALICE), bal(w, BOB), bal(w, GRID_ACCOUNT)) == (100_046, 100_000 - 128 + 3, 1_000_000 + 128 - 46 - 3)
    assert book(w, s).settlement.short_paid == 50 and book(w, s).settlement.long_paid == 3


def test_a_seller_that_took_energy_instead_pays_its_short_beyond_what_it_sold() -> None:
    """Alice sold 3 kWh and imported 1 kWh: short by 4 kWh (1.60), less her 0.96: she pays 0.64."""
    w = world()
    s = reference(w)
    read(w, "house-a", s, 1_000, 0, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    before = accounts(w)
    settle(w, s)
    assert position(w, "house-a", s).short_wh == 4_000
    assert changes(w, before) == {ALICE.did: -64, BOB.did: 12, GRID_ACCOUNT: 128 + 64}
    assert bal(w, ALICE) == 100_000 - 64


# ---------------------------------------------------------------- a meter that traded and did not read


def test_a_buyer_that_did_not_read_counts_as_having_drawn_its_whole_power() -> None:
    """Bob bought 4 kWh and sends no reading: he counts as having imported the most cp-b's 22 kW draws
    in 15 minutes, 5,500 Wh: short 5,500 - 4,000 = 1,500 Wh at 40 c, 0.60."""
    w = world()
    s = reference(w)
    read(w, "house-a", s, 0, 3_000, at=end(s))
    assert send(w, DAVE, SettleInterval(zone="Z1", start=s), at=settles(s) - 1).code == "settlement_too_early"
    before = accounts(w)
    r = settle(w, s, at=settles(s))
    b = position(w, "cp-b", s)
    assert (b.read, b.net_export_wh, b.short_wh, b.short_charge, b.long_wh, b.unpaid) == (
        False, -LIMIT_WH["cp-b"], 1_500, 60, 0, 0)
    assert changes(w, before) == {BOB.did: 12 - 60, ALICE.did: 96, GRID_ACCOUNT: 128 - 96 + 60}
    assert r.events[-1]["missing_readings"] == 1 and book(w, s).settlement.short_paid == 60
    assert bal(w, BOB) == 100_000 - 128 - 60 and held(w) == 0


def test_a_seller_that_did_not_read_counts_as_having_drawn_its_whole_power_instead() -> None:
    """Alice sold 3 kWh and sends no reading: she counts as having imported 5,000 Wh (house-a's 20 kW
    for 15 minutes) instead of exporting: short 5,000 + 3,000 = 8,000 Wh at 40 c, 3.20, less her 0.96:
    she pays 2.24."""
    w = world()
    s = reference(w)
    read(w, "cp-b", s, 4_000, 0, at=end(s))
    before = accounts(w)
    r = settle(w, s, at=settles(s))
    a = position(w, "house-a", s)
    assert (a.read, a.sold_wh, a.received, a.net_export_wh, a.short_wh, a.short_charge, a.unpaid) == (
        False, 3_000, 96, -LIMIT_WH["house-a"], 8_000, 320, 0)
    assert changes(w, before) == {ALICE.did: -224, BOB.did: 12, GRID_ACCOUNT: 128 + 224}
    assert r.events[-1]["missing_readings"] == 1 and held(w) == 0


def test_a_buyer_that_bought_all_its_power_draws_owes_no_imbalance_unread() -> None:
    """Bob bids cp-b's whole 5.5 kWh: the worst reading it could send is what it bought."""
    w = world()
    s = next_start(w)
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="sell", price=10, wh=3_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=35, wh=LIMIT_WH["cp-b"]))
    read(w, "house-a", s, 0, 3_000, at=end(s))
    settle(w, s, at=settles(s))
    b = position(w, "cp-b", s)
    assert (b.bought_wh, b.read, b.net_export_wh, b.short_wh, b.short_charge, b.long_wh) == (
        5_500, False, -5_500, 0, 0, 0)
    assert bal(w, BOB) == 100_000 - value(5_500, 32, up=True)


def test_an_unread_meter_that_bought_what_it_sold_is_short_by_its_whole_power() -> None:
    """Carol's charger buys 1 kWh (from the grid) and sells 1 kWh (to Bob) at 32, and reads nothing: net
    nothing traded, it counts as having imported its 2,750 Wh: short 2,750 Wh at 40 c, 1.10."""
    w = world()
    s = next_start(w)
    ok(w, CAROL, PlaceOrder(meter="v2g-c", start=s, side="buy", price=35, wh=1_000))
    ok(w, CAROL, PlaceOrder(meter="v2g-c", start=s, side="sell", price=25, wh=1_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=35, wh=1_000))
    read(w, "cp-b", s, 1_000, 0, at=end(s))
    settle(w, s, at=settles(s))
    c = position(w, "v2g-c", s)
    assert (c.bought_wh, c.sold_wh, c.paid, c.received, c.read, c.net_export_wh, c.short_wh, c.short_charge) == (
        1_000, 1_000, 32, 32, False, -2_750, 2_750, 110)
    assert bal(w, CAROL) == 100_000 - 110


@pytest.mark.parametrize("reading", [None, (2_000, 0), (0, 1_500)], ids=["unread", "read_importing", "read_exporting"])
def test_a_meter_whose_bids_got_nothing_owes_no_imbalance_read_or_not(reading: tuple[int, int] | None) -> None:
    """Carol bids 1 kWh at 29 (the grid's next kWh costs 30): nothing fills. Whatever she reads (or not),
    she has no position to answer for; ``read`` says whether she read, ``net_export_wh`` what."""
    w = world()
    s = reference(w)
    ok(w, CAROL, PlaceOrder(meter="v2g-c", start=s, side="buy", price=29, wh=1_000))
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    if reading is not None:
        read(w, "v2g-c", s, *reading)
    r = settle(w, s)  # at once: Carol's meter has no position, so her reading is never waited for
    c = position(w, "v2g-c", s)
    measured = 0 if reading is None else reading[1] - reading[0]
    assert (c.bought_wh, c.read, c.net_export_wh, c.short_wh, c.short_charge, c.long_wh, c.long_credit) == (
        0, reading is not None, measured, 0, 0, 0, 0)
    assert (c.paid, c.refunded, bal(w, CAROL)) == (0, 29, 100_000)
    assert r.events[-1]["missing_readings"] == 0 and book(w, s).settlement.positions == 2


# ---------------------------------------------------------------- unpaid, unfilled, revoked


def test_a_short_charge_the_account_cannot_cover_is_recorded_unpaid_and_the_rest_taken() -> None:
    """Bob spends everything but his bid's money; unread, he owes 0.60 (short 1,500 Wh) and has his 0.12
    back: 0.12 is taken, 0.48 recorded unpaid."""
    w = world()
    s = reference(w)
    ok(w, BOB, Transfer(currency="EUR", to=DAVE.did, amount=bal(w, BOB)))
    read(w, "house-a", s, 0, 3_000, at=end(s))
    before = accounts(w)
    settle(w, s, at=settles(s))
    b = position(w, "cp-b", s)
    assert (b.short_wh, b.short_charge, b.refunded, b.unpaid) == (1_500, 60, 12, 48)
    assert changes(w, before) == {ALICE.did: 96, GRID_ACCOUNT: 128 - 96 + 12}
    assert bal(w, BOB) == 0
    st_ = book(w, s).settlement
    assert (st_.short_paid, st_.short_unpaid) == (12, 48)
    assert query(w, "positions", eq.MeterPage(meter="cp-b"))["positions"][0]["net"] == -128 - 60 + 48


def test_unfilled_bids_get_all_their_money_back() -> None:
    """Carol bids 1 kWh at 29 (holds 0.29: the grid's next kWh costs 30) and Alice 2 kWh at 5: neither fills."""
    w = world()
    s = reference(w)
    ok(w, CAROL, PlaceOrder(meter="v2g-c", start=s, side="buy", price=29, wh=1_000))
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="buy", price=5, wh=2_000))
    assert (bal(w, CAROL), held(w)) == (100_000 - 29, 140 + 29 + 10)
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    settle(w, s)
    c = position(w, "v2g-c", s)
    assert (c.bought_wh, c.paid, c.refunded, c.read, c.short_wh) == (0, 0, 29, False, 0)
    assert book(w, s).clearing.result.price == 32
    assert (bal(w, CAROL), held(w)) == (100_000, 0)
    assert position(w, "house-a", s).refunded == 10
    assert book(w, s).settlement.positions == 2  # Carol's meter has no position: nothing to read


def test_a_meter_revoked_after_ordering_settles_as_unread() -> None:
    """Bob's charge point is revoked before it reads: its reading is refused, and it counts as having
    drawn its whole power (short 1,500 Wh)."""
    w = world()
    s = reference(w)
    ok(w, CHARGECO, RevokeMeter(meter="cp-b", reason="replaced"))
    read(w, "house-a", s, 0, 3_000, at=end(s))
    assert send(w, CP_KEY, SubmitReading(meter="cp-b", start=s, imported_wh=4_000, exported_wh=0)).code == \
        "meter_revoked"
    assert send(w, DAVE, SettleInterval(zone="Z1", start=s)).code == "settlement_too_early"
    settle(w, s, at=settles(s))
    b = position(w, "cp-b", s)
    assert (b.bought_wh, b.read, b.net_export_wh, b.short_wh, b.short_charge) == (4_000, False, -5_500, 1_500, 60)
    assert held(w) == 0


# ---------------------------------------------------------------- the zone operator's account


@pytest.mark.parametrize("funds,bought,price,grid_held,alice_paid", [
    (None, 5_000, 4, 20, 20),  # its 10,000.00 buys all 5 kWh
    (20, 2_500, 4, 10, 10),  # 0.20 pays for 20 x 1000 // 8 = 2,500 Wh at its export price
    (7, 875, 4, 4, 3),  # 875 Wh at the clearing price of 4: 3.5 held up to 4, paid down to 3
    (0, 0, 0, 0, 0),  # an empty account buys nothing
], ids=["funded", "pays_for_half", "rounding", "empty"])
def test_the_grid_buys_only_what_its_operators_account_pays_for_and_holds_it_until_settlement(
        funds: int | None, bought: int, price: int, grid_held: int, alice_paid: int) -> None:
    """Alice sells 5 kWh at 0 and only the grid buys (at 8): it bids as much as its operator's account
    pays for at 8, the clearing holds what it bought at the clearing price, and the settlement pays
    Alice with it (a settlement is never refused for money: nobody has to fund the grid first)."""
    w = world()
    s = next_start(w)
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="sell", price=0, wh=5_000))
    had = bal(w, GRID_ACCOUNT) if funds is None else funds
    if funds is not None:
        ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT) - funds, payer=GRID_ACCOUNT))
    ok(w, DAVE, ClearInterval(zone="Z1", start=s), at=gate(s))
    c = book(w, s).clearing
    assert (c.grid_export_wh, c.result.matched_wh, c.result.price, c.grid_held) == (bought, bought, price, grid_held)
    assert (bal(w, GRID_ACCOUNT), held(w)) == (had - grid_held, grid_held)
    read(w, "house-a", s, 0, bought, at=end(s))
    settle(w, s)
    a = position(w, "house-a", s)
    assert (a.sold_wh, a.received, a.short_wh, a.long_wh) == (bought, alice_paid, 0, 0)
    assert (bal(w, ALICE), bal(w, GRID_ACCOUNT), held(w)) == (100_000 + alice_paid, had - alice_paid, 0)


def test_a_long_credit_is_paid_with_what_buyers_paid_in_the_same_settlement() -> None:
    """Bob buys 1 kWh from the grid (0.30 to the grid) and takes nothing: long 1 kWh, credited 0.05. The
    grid has handed all its money back: the 0.30 comes in before the 0.05 goes out."""
    w = world()
    s = next_start(w)
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=30, wh=1_000))
    ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT), payer=GRID_ACCOUNT))
    read(w, "cp-b", s, 0, 0, at=end(s))
    before = accounts(w)
    settle(w, s)
    assert changes(w, before) == {GRID_ACCOUNT: 30 - 5, BOB.did: 5}
    assert bal(w, GRID_ACCOUNT) == 30 - 5


@pytest.mark.parametrize("funds,long_paid", [(0, 0), (3, 3), (5, 5)], ids=["empty", "short_of_it", "enough"])
def test_a_long_credit_the_operators_account_cannot_pay_is_recorded_unpaid(funds: int, long_paid: int) -> None:
    """With no grid export (terms from the first interval they may still be set for), Alice sells Bob
    1 kWh at 0.10 and Bob takes nothing: long 1 kWh, 0.05 the grid owes; its account pays what it holds
    beyond what passed through it and the rest is recorded ``long_unpaid`` (the settlement goes through)."""
    w = world()
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=Terms(50_000, 0, 30, 8, 40, 5)))
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="sell", price=10, wh=1_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=10, wh=1_000))
    ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT) - funds, payer=GRID_ACCOUNT))
    read(w, "house-a", s, 0, 1_000, at=end(s))
    read(w, "cp-b", s, 0, 0)
    before = accounts(w)
    settle(w, s)
    b = position(w, "cp-b", s)
    assert (b.long_wh, b.long_credit, b.long_unpaid, b.unpaid) == (1_000, 5, 5 - long_paid, 0)
    assert changes(w, before) == {k: v for k, v in {GRID_ACCOUNT: -long_paid, BOB.did: long_paid,
                                                    ALICE.did: 10}.items() if v}
    st_ = book(w, s).settlement
    assert (st_.long_paid, st_.long_unpaid, st_.short_unpaid) == (long_paid, 5 - long_paid, 0)
    assert query(w, "positions", eq.MeterPage(meter="cp-b"))["positions"][0]["net"] == long_paid - 10


def test_long_credits_the_operators_account_cannot_all_pay_go_by_meter_id() -> None:
    """Alice sells 2 kWh at 0.10, Bob (cp-b) and Carol (v2g-c) buy 1 kWh each and take nothing: 0.05
    long each; with 0.07 of its own the operator's account pays cp-b's 0.05, then 0.02 of v2g-c's (in
    meter id order, not pro rata)."""
    w = world()
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=Terms(50_000, 0, 30, 8, 40, 5)))
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="sell", price=10, wh=2_000))
    ok(w, CAROL, PlaceOrder(meter="v2g-c", start=s, side="buy", price=10, wh=1_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=10, wh=1_000))
    ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT) - 7, payer=GRID_ACCOUNT))
    read(w, "house-a", s, 0, 2_000, at=end(s))
    read(w, "cp-b", s, 0, 0)
    read(w, "v2g-c", s, 0, 0)
    settle(w, s)
    b, c = position(w, "cp-b", s), position(w, "v2g-c", s)
    assert (b.long_credit, b.long_unpaid, c.long_credit, c.long_unpaid) == (5, 0, 5, 3)
    assert (bal(w, BOB), bal(w, CAROL), bal(w, GRID_ACCOUNT)) == (100_000 - 10 + 5, 100_000 - 10 + 2, 0)


def test_short_charges_are_collected_before_long_credits_are_paid() -> None:
    """With an empty operator's account, Alice delivers 1 kWh less than the 2 she sold Bob at 0.10
    (short: 0.40 at 40 c, from her 0.20 and her account) and Bob takes 1 kWh less than he bought (long:
    0.05): Alice's charge pays Bob's credit."""
    w = world()
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=Terms(50_000, 0, 30, 8, 40, 5)))
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s, side="sell", price=10, wh=2_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s, side="buy", price=10, wh=2_000))
    ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT), payer=GRID_ACCOUNT))
    read(w, "house-a", s, 0, 1_000, at=end(s))
    read(w, "cp-b", s, 1_000, 0)
    before = accounts(w)
    settle(w, s)
    a, b = position(w, "house-a", s), position(w, "cp-b", s)
    assert (a.short_charge, a.unpaid, b.long_credit, b.long_unpaid) == (40, 0, 5, 0)
    assert changes(w, before) == {ALICE.did: 20 - 40, BOB.did: 5, GRID_ACCOUNT: 35}


def test_settlement_clears_first_when_nobody_cleared() -> None:
    w = world()
    s = reference(w)
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    r = settle(w, s)
    assert [e["type"] for e in r.events if e["type"].startswith("energy.")] == ["energy.cleared", "energy.settled"]
    b = book(w, s)
    assert (b.status, b.clearing.height, b.settlement.height, b.clearing.result.price) == (
        "settled", w.ledger.head.height, w.ledger.head.height, 32)


def test_terms_set_for_a_later_interval_after_the_orders_leave_this_one_alone() -> None:
    """The reference book is on an interval far enough ahead for terms; after the orders the grid sets
    dearer terms (imports at 50, short at 90) from the next interval: this interval clears and settles
    on the terms it had."""
    w = world()
    first = next_start(w)  # the zone's first terms
    s = reference(w, terms_start(w))
    dear = Terms(import_wh=50_000, export_wh=20_000, import_price=50, export_price=8, short_price=90, long_price=5)
    ok(w, GRID, SetTerms(zone="Z1", start=s + INTERVAL, terms=dear))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=s + INTERVAL, side="buy", price=60, wh=1_000))
    read(w, "house-a", s, 0, 3_000, at=end(s))
    settle(w, s, at=settles(s))  # Bob unread: short 1,500 Wh at this interval's 40, not 90
    assert (book(w, s).clearing.terms_start, book(w, s).clearing.result.price) == (first, 32)
    assert position(w, "cp-b", s).short_charge == 60
    ok(w, DAVE, ClearInterval(zone="Z1", start=s + INTERVAL))
    nxt = book(w, s + INTERVAL).clearing
    assert (nxt.terms_start, nxt.result.price) == (s + INTERVAL, 55)


def test_the_queries_answer_what_settled() -> None:
    w = world()
    s = reference(w)
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 3_000, 0)
    settle(w, s)
    b = query(w, "book", eq.IntervalQuery(zone="Z1", start=s))
    assert (b["status"], b["orders"], b["clearing"]["result"]["price"], b["clearing"]["result"]["matched_wh"],
            b["settlement"]["bought_paid"], b["settlement"]["sold_paid"], b["settlement"]["long_paid"]) == (
        "settled", 2, 32, 4_000, 128, 96, 5)
    assert (b["gate_closes"], b["end"], b["settles_from"], b["currency"]) == (gate(s), end(s), settles(s), "EUR")
    o = query(w, "order", eq.OrderQuery(zone="Z1", start=s, seq=2))
    assert (o["filled_wh"], o["price_cleared"], o["held"], o["owner"]) == (4_000, 32, 140, BOB.did)
    mine = query(w, "orders", eq.OwnerOrders(owner=ALICE.did))
    assert [(x["seq"], x["filled_wh"]) for x in mine["orders"]] == [(1, 3_000)]
    p = query(w, "position", eq.MeterIntervalQuery(meter="cp-b", start=s))
    assert (p["bought_wh"], p["paid"], p["long_wh"], p["long_credit"], p["refunded"], p["net_export_wh"]) == (
        4_000, 128, 1_000, 5, 12, -3_000)
    rows = query(w, "positions", eq.MeterPage(meter="house-a"))["positions"]
    assert rows == [{"start": s, "zone": "Z1", "bought_wh": 0, "sold_wh": 3_000, "net": 96, "height": p["height"]}]
    assert query(w, "reading", eq.MeterIntervalQuery(meter="cp-b", start=s))["imported_wh"] == 3_000
    assert query(w, "meters", eq.OwnerPage(owner=BOB.did))["meters"][0]["meter"] == "cp-b"
    assert query(w, "zones", Page())["zones"] == [{"zone": "Z1", "operator": "grid", "currency": "EUR"}]


def test_two_intervals_settle_on_their_own_and_positions_list_newest_first() -> None:
    w = world()
    s = reference(w)
    ok(w, ALICE, PlaceOrder(meter="house-a", start=s + INTERVAL, side="sell", price=10, wh=1_000))
    settle(w, s, at=settles(s))
    settle(w, s + INTERVAL, at=settles(s + INTERVAL))
    assert [r["start"] for r in query(w, "positions", eq.MeterPage(meter="house-a"))["positions"]] == [
        s + INTERVAL, s]
    assert held(w) == 0


# ---------------------------------------------------------------- organisations that leave


def test_an_interval_settles_after_an_owning_organisation_was_removed() -> None:
    """chargeco's depot bids 1 kWh at 1 (unfilled: its 0.01 comes back) and asks 1 kWh at 20 (sold to
    Bob with Alice's 3 kWh: the price is (35 + 20) // 2 = 27), reads as traded; then the consortium
    removes chargeco. Settlement pays org:chargeco its refund and its sale all the same."""
    w = world()
    s = next_start(w)
    ok(w, CHARGECO, RegisterMeter(meter="depot", zone="Z1", kind="charge_point", key=K("en-meter-depot").did,
                                  owner="org:chargeco", max_power_w=50_000))
    ok(w, EMI, Issue(currency="EUR", to="org:chargeco", amount=10_000))
    reference(w, s)
    ok(w, CHARGECO, PlaceOrder(meter="depot", start=s, side="buy", price=1, wh=1_000))
    ok(w, CHARGECO, PlaceOrder(meter="depot", start=s, side="sell", price=20, wh=1_000))
    remove_org(w, "chargeco")
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    ok(w, K("en-meter-depot"), SubmitReading(meter="depot", start=s, imported_wh=0, exported_wh=1_000))
    before = accounts(w)
    settle(w, s)
    assert book(w, s).clearing.result.price == 27
    assert changes(w, before) == {"org:chargeco": 1 + 27, ALICE.did: 81, BOB.did: 140 - 108}
    assert (bal(w, "org:chargeco"), held(w)) == (10_000 + 27, 0)
    d = position(w, "depot", s)
    assert (d.sold_wh, d.received, d.refunded, d.short_wh, d.long_wh) == (1_000, 27, 1, 0, 0)


def test_bids_are_given_back_after_the_zone_operator_was_removed() -> None:
    """The consortium removes grid, the zone's operator and the market's counterparty: Bob's 0.12 beyond
    the price comes back, his 1.28 still reaches org:grid and Alice's 0.96 is paid from it; nothing
    stays held."""
    w = world()
    s = reference(w)
    remove_org(w, "grid")
    read(w, "house-a", s, 0, 3_000, at=end(s))
    read(w, "cp-b", s, 4_000, 0)
    before = accounts(w)
    settle(w, s)
    assert changes(w, before) == {GRID_ACCOUNT: 128 - 96, ALICE.did: 96, BOB.did: 12}
    assert held(w) == 0


def test_what_a_removed_organisation_does_to_settlement_today() -> None:
    """Nothing: with the zone's operator removed and no meter read, the interval settles from its
    window's close as any other. Bob's 1.28 and both short charges (Alice: 8,000 Wh, 3.20 less her 0.96;
    Bob: 1,500 Wh, 0.60) reach org:grid, Bob's 0.12 comes back, nothing stays held."""
    w = world()
    s = reference(w)
    remove_org(w, "grid")
    before = accounts(w)
    r = send(w, DAVE, SettleInterval(zone="Z1", start=s), at=settles(s))
    assert r.ok, r
    assert r.events[-1] == {"type": "energy.settled", "zone": "Z1", "start": s, "positions": 2,
                            "missing_readings": 2}
    assert changes(w, before) == {GRID_ACCOUNT: 128 + 224 + 60, ALICE.did: -224, BOB.did: 12 - 60}
    assert held(w) == 0


# ---------------------------------------------------------------- properties over random books and readings

METERS = ["house-a", "cp-b", "v2g-c"]
book_rows = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["buy", "sell"]), st.integers(0, 60),
                               st.integers(1, 3_000)), min_size=1, max_size=8)


def a_reading(meter: str) -> Any:
    """Any reading the meter could send: in and out together at most its power's Wh."""
    limit = LIMIT_WH[meter]
    return st.integers(0, limit).flatmap(lambda i: st.tuples(st.just(i), st.integers(0, limit - i)))


readings = st.tuples(*[st.one_of(st.none(), a_reading(m)) for m in METERS])
poor = st.sets(st.integers(0, 2), max_size=2)  # owners who spend everything but their bids' money
grid_funds = st.sampled_from([None, 0, 25, 300])  # what the operator's account keeps (None: its 10,000.00)


def place(w: Chain, s: int, rows: list) -> None:
    """``rows`` on interval ``s``: each taken unless the meter's open orders on its side would go beyond
    its power, which is refused (``order_beyond_power``)."""
    ordered: dict[tuple[str, str], int] = defaultdict(int)
    for who, side, price, wh in rows:
        meter = METERS[who]
        r = send(w, OWNERS[meter], PlaceOrder(meter=meter, start=s, side=side, price=price, wh=wh))
        beyond = ordered[meter, side] + wh > LIMIT_WH[meter]
        assert (r.ok, r.code) == ((False, "order_beyond_power") if beyond else (True, "")), r
        ordered[meter, side] += 0 if beyond else wh


def spend_all(w: Chain, who: set[int]) -> None:
    for i in who:
        owner = OWNERS[METERS[i]]
        if bal(w, owner):
            ok(w, owner, Transfer(currency="EUR", to=DAVE.did, amount=bal(w, owner)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book_rows, readings, poor, grid_funds)
def test_settlement_conserves_money_and_each_position_follows_the_rule(rows: list, reads: tuple, spend: set,
                                                                     funds: int | None) -> None:
    w = world()
    s = next_start(w)
    start_total, start_supply = total(w), supply(w)
    place(w, s, rows)
    spend_all(w, spend)
    if funds is not None:
        ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT) - funds, payer=GRID_ACCOUNT))
        start_total, start_supply = total(w), supply(w)
    if book(w, s) is None:  # every order was beyond its meter's power: nothing to settle
        assert send(w, DAVE, SettleInterval(zone="Z1", start=s), at=settles(s)).code == "no_orders"
        return
    first = True
    for meter, got in zip(METERS, reads):
        if got is not None:
            read(w, meter, s, got[0], got[1], at=end(s) if first else None)
            first = False
    before = accounts(w)
    held_before = held(w)
    early = send(w, DAVE, SettleInterval(zone="Z1", start=s), at=max(now(w) + 1, end(s)))
    r = early if early.ok else send(w, DAVE, SettleInterval(zone="Z1", start=s), at=settles(s))
    assert r.ok, r  # never refused for money
    after = accounts(w)
    change = defaultdict(int, {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)})
    # conservation: nothing made or lost, nothing left held, the supply unmoved
    assert sum(change.values()) + held(w) - held_before == 0
    assert held(w) == 0 and (total(w), supply(w)) == (start_total, start_supply)
    # each position, from the orders, the price and the reading
    result = book(w, s).clearing.result
    t = TERMS
    placed = [order(w, s, seq) for seq in range(1, book(w, s).orders + 1)]
    grid_in = 0
    missing = 0
    for i, meter in enumerate(METERS):
        mine = [o for o in placed if o.meter == meter]
        p = position(w, meter, s)
        if not mine:
            assert p is None
            continue
        bought = sum(fill(result, o.side, o.price, o.wh, o.key) for o in mine if o.side == "buy")
        sold = sum(fill(result, o.side, o.price, o.wh, o.key) for o in mine if o.side == "sell")
        net = sold - bought
        got = reads[i]
        traded = bool(bought or sold)
        # read: what it measured; traded and unread: its whole power imported; else nothing
        measured = got[1] - got[0] if got is not None else -LIMIT_WH[meter] if traded else 0
        deviation = measured - net if traded else 0
        missing += traded and got is None
        assert (p.bought_wh, p.sold_wh, p.read, p.net_export_wh) == (bought, sold, got is not None, measured)
        assert p.paid == value(bought, result.price, up=True) and p.received == value(sold, result.price, up=False)
        assert (p.short_wh, p.long_wh) == (max(0, -deviation), max(0, deviation))
        assert p.short_charge == value(p.short_wh, max(t.short_price, result.price), up=True)  # never below the clearing price
        assert p.long_credit == value(p.long_wh, min(t.long_price, result.price), up=False)  # never above it
        assert p.refunded == sum(o.held for o in mine) - p.paid >= 0
        # buyers pay at most their bids, sellers get at least their asks
        assert p.paid <= value(sum(fill(result, o.side, o.price, o.wh, o.key) * o.price for o in mine
                                   if o.side == "buy"), 1, up=True)
        assert p.received >= sum(fill(result, o.side, o.price, o.wh, o.key) * o.price for o in mine
                                 if o.side == "sell") // 1000
        # the short charge as far as the account goes (what it was paid for its sales included), the long
        # credit as far as the operator's account goes; the rest recorded unpaid
        assert 0 <= p.unpaid <= p.short_charge and 0 <= p.long_unpaid <= p.long_credit
        if p.unpaid:
            assert after.get(p.owner, 0) == 0, "an unpaid short while the account still holds money"
        if p.long_unpaid:
            assert after.get(GRID_ACCOUNT, 0) == 0, "an unpaid long credit while the operator still holds money"
        assert change[p.owner] == (p.refunded + p.received - (p.short_charge - p.unpaid)
                                   + (p.long_credit - p.long_unpaid))
        grid_in += p.paid - p.received + (p.short_charge - p.unpaid) - (p.long_credit - p.long_unpaid)
    # the grid's own purchase, held from its account at the clearing (here, within the settlement), came
    # back to it to pay the sellers with the buyers' money
    assert change[GRID_ACCOUNT] == grid_in
    st_ = book(w, s).settlement
    positions = [position(w, m, s) for m in METERS if position(w, m, s) is not None]
    assert (st_.bought_paid, st_.sold_paid, st_.long_paid, st_.short_unpaid, st_.long_unpaid) == (
        sum(p.paid for p in positions), sum(p.received for p in positions),
        sum(p.long_credit - p.long_unpaid for p in positions), sum(p.unpaid for p in positions),
        sum(p.long_unpaid for p in positions))
    assert st_.positions == sum(1 for p in positions if p.bought_wh or p.sold_wh)
    # settled as the interval ended unless a meter that traded had not read: then from the window's close
    assert st_.missing_readings == missing and early.ok == (missing == 0)
    event(f"matched: {result.matched_wh > 0}, unpaid: {st_.short_unpaid > 0}, missing: {missing > 0}, "
          f"long: {st_.long_paid > 0}, long unpaid: {st_.long_unpaid > 0}, "
          f"grid bought: {book(w, s).clearing.grid_held > 0}")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2).flatmap(lambda i: st.tuples(st.just(i), a_reading(METERS[i]))), book_rows, readings, poor,
       grid_funds)
def test_withholding_a_reading_never_beats_sending_any_reading(sent: tuple, rows: list, others: tuple,
                                                               spend: set, funds: int | None) -> None:
    """One meter's owner, after the same random book and the other meters' same readings, settles once
    with the meter's reading withheld and once with any reading it could have sent: withheld, it never
    ends with more money, nor owes less (short charge less long credit, unpaid included); and nobody else
    is worse off for it."""
    who, (imported, exported) = sent
    meter, owner = METERS[who], OWNERS[METERS[who]].did
    w = world()
    s = next_start(w)
    place(w, s, [(who, "buy" if imported >= exported else "sell", 30, 1 + (who + len(rows)) % 3 * 1_000), *rows])
    spend_all(w, spend)
    if funds is not None:
        ok(w, GRID, Redeem(currency="EUR", amount=bal(w, GRID_ACCOUNT) - funds, payer=GRID_ACCOUNT))
    for i, got in enumerate(others):
        if i != who and got is not None:
            read(w, METERS[i], s, *got, at=max(now(w) + 1, end(s)))
    withheld = fork(w)
    read(w, meter, s, imported, exported, at=max(now(w) + 1, end(s)))
    settle(w, s, at=settles(s))
    settle(withheld, s, at=settles(s))
    p, q = position(w, meter, s), position(withheld, meter, s)
    assert (p.read, q.read) == (True, False)
    assert (q.bought_wh, q.sold_wh, q.paid, q.received, q.refunded) == (p.bought_wh, p.sold_wh, p.paid, p.received,
                                                                       p.refunded)
    assert q.short_wh >= p.short_wh and q.long_wh <= p.long_wh
    assert q.short_charge - q.long_credit >= p.short_charge - p.long_credit
    assert bal(withheld, owner) <= bal(w, owner)
    assert bal(withheld, owner) - q.unpaid <= bal(w, owner) - p.unpaid
    if not (p.bought_wh or p.sold_wh):  # nothing traded: no imbalance either way
        assert (p.short_wh, p.long_wh, q.short_wh, q.long_wh) == (0, 0, 0, 0)
    # the others settle alike whatever this meter did, but that its larger short charge (or smaller long
    # credit) withheld may leave the operator's account more to pay their long credits with
    for m in METERS:
        if m != meter and position(w, m, s) is not None:
            po, qo = position(w, m, s), position(withheld, m, s)
            assert replace(po, height=0, long_unpaid=0) == replace(qo, height=0, long_unpaid=0)
            assert qo.long_unpaid <= po.long_unpaid
    event(f"traded: {bool(p.bought_wh or p.sold_wh)}, withheld costs more: {bal(withheld, owner) < bal(w, owner)}")
