"""Tests written from a mutation run (mutmut 3) over the energy module's auction (``energy/clearing.py``),
its rules (``energy/handlers.py``) and the interval clock (``energy/state.py``): each test pins a rule
that some mutant broke without any other energy test failing.

- the auction's record: a marginal level whose orders share its Wh without any left by rounding names
  no ``cut`` (the ledger stores the result, so a key there would be a different state root);
- the grid at a marginal *bid* price: its export offer shares that level pro rata with the orders at
  the grid's export price and, ranked after every order, never gets a Wh left by rounding (the clearing
  compares the grid's rank key with the orders' keys there);
- the exact detail of each refusal (``REFUSALS``): a receipt names the zone, interval, block, time,
  price or reason that refused it, all of it (the other tests check a part);
- what an accepted transaction writes beyond what the other tests read: a vehicle's charger keeps its
  VIN, the ``meters`` query lists a meter's zone, operator, kind and vehicle, the order and position
  index rows are whole, and a revocation's event names the meter, its operator and owner (whom the
  event stream shows it to).

World: ``helpers.energy`` (zone Z1 of ``grid``: 15-minute intervals, gate closure 5 minutes before, a
one-hour reading window; Z1's terms: the grid sells up to 50 kWh at 30 and buys up to 20 kWh at 8).
Interval ``S`` is the first whose gate is open in the world; ``orders`` puts Alice's ask (seq 1,
3 kWh at 10) and Bob's bid (seq 2, 4 kWh at 35) on it, which clear at 32 for 4 kWh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair, check_did
from blokauto.core.errors import InvalidKey
from blokauto.modules.energy import queries as eq
from blokauto.modules.energy.clearing import Offer, clear, fill
from blokauto.modules.energy.messages import (CancelOrder, ClearInterval, OpenZone, PlaceOrder, RegisterMeter,
                                              RevokeMeter, SettleInterval, SubmitReading)
from blokauto.modules.energy.state import METERS, ZONES
from blokauto.modules.vehicles.messages import AssignWmi

from conftest import Chain, K
from helpers.energy import (ALICE, BOB, CAROL, CP_KEY, DAVE, GATE, GRID, HOUSE_KEY, INTERVAL, METERCO, TERMS,
                            V2G_KEY, book, end, gate, next_start, now, ok, order, query, send, settles, snapshot, tx,
                            world)
from helpers.vehicles import admin, register_msg, vin_for

HORIZON = 7 * 86_400_000  # energy_order_horizon_ms by default
S = next_start(world())  # the first interval whose gate is open in the world


def orders(w: Chain) -> None:
    """Alice asks 3 kWh at 10 (seq 1), Bob bids 4 kWh at 35 (seq 2) on interval S."""
    ok(w, ALICE, PlaceOrder(meter="house-a", start=S, side="sell", price=10, wh=3_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=S, side="buy", price=35, wh=4_000))


def head(w: Chain) -> int:
    return w.ledger.head.height


# ---------------------------------------------------------------- the auction's record

A, B, C, D = ("0a" * 32, "0b" * 32, "0c" * 32, "0d" * 32)


@pytest.mark.parametrize("offers,buy,sell", [
    # one bid, one ask, both filled whole: no level shares anything
    ([Offer(A, "buy", 35, 4_000), Offer(B, "sell", 10, 4_000)], (0, ""), (0, "")),
    # two bids of 2 Wh at the marginal price share 2 Wh exactly (1 each: nothing left); the ask is whole
    ([Offer(A, "buy", 20, 2), Offer(B, "buy", 20, 2), Offer(C, "sell", 10, 2)], (0, ""), (0, "")),
    # three bids of 1 Wh share 2 Wh: a Wh left by rounding each for the first keys (A, B), the last (B) named
    ([Offer(C, "buy", 20, 1), Offer(A, "buy", 20, 1), Offer(B, "buy", 20, 1), Offer(D, "sell", 10, 2)], (2, B),
     (0, "")),
], ids=["levels_filled_whole", "pro_rata_with_nothing_left", "wh_left_by_rounding"])
def test_a_marginal_level_with_no_wh_left_by_rounding_names_no_cut(offers: list[Offer], buy: tuple[int, str],
                                                                    sell: tuple[int, str]) -> None:
    """``Marginal.cut`` is the key of the last order given a Wh left by rounding, "" when none is: the
    ledger stores the result, so this is part of the state every node must agree on."""
    result = clear(offers)
    assert result.buy is not None and result.sell is not None
    assert ((result.buy.extra, result.buy.cut), (result.sell.extra, result.sell.cut)) == (buy, sell)
    assert (result.buy.extra == 0) == (result.buy.cut == "")


def test_the_grid_ranks_after_every_order_at_a_marginal_bid_price_on_the_ledger() -> None:
    """Bob bids 1 kWh at 8, the grid's export price; Alice asks 1,001 Wh at 5. The bid level at 8 is Bob's
    1,000 Wh and the grid's 20,000: it gets 1,001 Wh pro rata (Bob 47.66, the grid 953.33), and the Wh left
    by rounding goes to Bob, ranked before the grid. Price (8 + 5) // 2 = 6; the grid's 953 Wh held at it."""
    w = world()
    ok(w, ALICE, PlaceOrder(meter="house-a", start=S, side="sell", price=5, wh=1_001))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=S, side="buy", price=8, wh=1_000))
    r = ok(w, DAVE, ClearInterval(zone="Z1", start=S), at=gate(S))
    assert r.events == [{"type": "energy.cleared", "zone": "Z1", "start": S, "price": 6, "matched_wh": 1_001}]
    c = book(w, S).clearing
    m = c.result.buy
    assert (m.price, m.offered, m.filled, m.extra, m.cut) == (8, 21_000, 1_001, 1, order(w, S, 2).key)
    assert (c.grid_export_wh, c.grid_import_wh, c.grid_held) == (953, 0, 6)
    assert query(w, "order", eq.OrderQuery(zone="Z1", start=S, seq=2))["filled_wh"] == 48
    assert fill(c.result, "sell", 5, 1_001, order(w, S, 1).key) == 1_001


# ---------------------------------------------------------------- refusals: all of their detail


@dataclass(frozen=True)
class Refused:
    name: str
    sender: KeyPair
    msg: Callable[[Chain], Any]
    code: str
    detail: Callable[[Chain, Any], dict[str, Any]]  # (world, what setup returned) -> the receipt's whole detail
    setup: Callable[[Chain], Any] | None = None
    at: Callable[[Chain], int] | None = None  # the block time (default: 1 ms after the head)
    world: Callable[[], Chain] = world


def r(name: str, who: KeyPair, msg: Any, code: str, detail: Any, setup: Any = None, *, at: Any = None,
      world: Any = world) -> Any:
    m = msg if callable(msg) else (lambda w, _m=msg: _m)
    d = detail if callable(detail) else (lambda w, got, _d=detail: _d)
    t = at if callable(at) or at is None else (lambda w, _t=at: _t)
    return pytest.param(Refused(name, who, m, code, d, setup, t, world), id=name)


def revoked(reason: str) -> Callable[[Chain], int]:
    def setup(w: Chain) -> int:
        ok(w, METERCO, RevokeMeter(meter="house-a", reason=reason))
        return head(w)
    return setup


def cleared(w: Chain) -> int:
    orders(w)
    ok(w, DAVE, ClearInterval(zone="Z1", start=S), at=gate(S))
    return head(w)


def settled(w: Chain) -> int:
    read(w)
    ok(w, DAVE, SettleInterval(zone="Z1", start=S))
    return head(w)


def read(w: Chain) -> int:
    """The orders, and both meters' readings of S as the interval ends; the height of house-a's."""
    orders(w)
    ok(w, HOUSE_KEY, SubmitReading(meter="house-a", start=S, imported_wh=0, exported_wh=3_000), at=end(S))
    height = head(w)
    ok(w, CP_KEY, SubmitReading(meter="cp-b", start=S, imported_wh=4_000, exported_wh=0))
    return height


def full_book(w: Chain) -> None:
    for i in range(10):
        ok(w, ALICE, PlaceOrder(meter="house-a", start=S, side="sell", price=10 + i, wh=100))


def far(w: Chain) -> int:
    """The first interval beyond the order horizon 1 ms after the head."""
    return (now(w) + 1 + HORIZON) // INTERVAL * INTERVAL + INTERVAL


def why_no_did(owner: str) -> str:
    """The reason ``check_did`` gives for ``owner`` (what the meter's refusal passes on)."""
    with pytest.raises(InvalidKey) as err:
        check_did(owner)
    return err.value.detail["reason"]


def v2g_reading(w: Chain) -> SubmitReading:
    return SubmitReading(meter="v2g-c", start=S, imported_wh=0, exported_wh=1_000)


REFUSALS = [
    r("zone_opened_twice_names_when_it_was_opened", GRID, OpenZone(zone="Z1", currency="EUR", terms=TERMS),
      "zone_exists", lambda w, _: {"zone": "Z1", "operator": "grid", "height": ZONES.get(w.ledger, "Z1").created}),
    r("zone_whose_reading_window_takes_no_reading_says_what_to_give", GRID,
      OpenZone(zone="Z2", currency="EUR", terms=TERMS, reading_window_ms=0), "invalid_terms",
      {"reason": "a reading window of 0 ms takes no reading (meters read an interval from its end until its window "
                 "closes): give reading_window_ms of at least 1"}),
    r("meter_owned_by_an_organisation_that_does_not_exist", METERCO,
      RegisterMeter(meter="m-new", zone="Z1", kind="home", key=K("en-meter-new").did, owner="org:nobody",
                    max_power_w=10_000), "invalid_meter_owner",
      {"owner": "org:nobody", "reason": "it names no active organisation"}),
    r("meter_owned_by_no_did_says_why_it_is_none", METERCO,
      RegisterMeter(meter="m-new", zone="Z1", kind="home", key=K("en-meter-new").did, owner="mallory",
                    max_power_w=10_000), "invalid_meter_owner",
      {"owner": "mallory", "reason": why_no_did("mallory")}),
    r("order_on_a_meter_revoked_names_the_block_and_the_reason", ALICE,
      PlaceOrder(meter="house-a", start=S, side="buy", price=20, wh=1_000), "meter_revoked",
      lambda w, height: {"meter": "house-a", "height": height, "reason": "stolen"}, revoked("stolen")),
    r("order_on_a_meter_revoked_without_a_reason", ALICE,
      PlaceOrder(meter="house-a", start=S, side="buy", price=20, wh=1_000), "meter_revoked",
      lambda w, height: {"meter": "house-a", "height": height, "reason": "no reason given"}, revoked("")),
    r("order_for_a_time_that_starts_no_interval_names_the_next_open_one", ALICE,
      PlaceOrder(meter="house-a", start=S + 60_000, side="buy", price=20, wh=1_000), "invalid_interval",
      {"start": S + 60_000, "zone": "Z1", "interval_ms": INTERVAL, "next": S}, at=gate(S) - 1),
    r("order_at_gate_closure_names_the_zone_and_its_gate_closure", ALICE,
      PlaceOrder(meter="house-a", start=S, side="buy", price=20, wh=1_000), "gate_closed",
      {"start": S, "zone": "Z1", "closed": gate(S), "time": gate(S), "gate_closure_ms": GATE}, at=gate(S)),
    r("order_too_far_ahead_names_the_interval_and_the_time", ALICE,
      lambda w: PlaceOrder(meter="house-a", start=far(w), side="buy", price=20, wh=1_000), "too_far_ahead",
      lambda w, _: {"start": far(w), "horizon_ms": HORIZON, "time": now(w) + 1}),
    r("order_on_a_full_book_names_the_interval", ALICE,
      PlaceOrder(meter="house-a", start=S, side="sell", price=20, wh=100), "book_full",
      {"start": S, "zone": "Z1", "orders": 10}, full_book, world=lambda: world({"energy_book_max_orders": 10})),
    r("cancel_in_an_interval_without_orders", BOB, CancelOrder(zone="Z1", start=S, seq=1), "unknown_order",
      {"seq": 1, "start": S, "zone": "Z1"}),
    r("cancel_twice_names_the_interval", BOB, CancelOrder(zone="Z1", start=S, seq=2), "order_cancelled",
      {"seq": 2, "start": S, "zone": "Z1"}, lambda w: (orders(w), ok(w, BOB, CancelOrder(zone="Z1", start=S, seq=2)))),
    r("reading_before_the_interval_ends_names_it", HOUSE_KEY,
      SubmitReading(meter="house-a", start=S, imported_wh=0, exported_wh=1_000), "reading_too_early",
      {"start": S, "end": end(S), "time": end(S) - 1}, orders, at=end(S) - 1),
    r("reading_twice_names_the_block_of_the_first", HOUSE_KEY,
      SubmitReading(meter="house-a", start=S, imported_wh=0, exported_wh=2_000), "reading_exists",
      lambda w, height: {"meter": "house-a", "start": S, "height": height}, read),
    r("reading_after_settlement_names_the_block_that_settled", V2G_KEY, v2g_reading, "reading_too_late",
      lambda w, height: {"start": S, "zone": "Z1", "why": f"was settled at block {height}", "until": settles(S)},
      settled),
    r("reading_after_the_window", HOUSE_KEY, SubmitReading(meter="house-a", start=S, imported_wh=0, exported_wh=1),
      "reading_too_late", {"start": S, "zone": "Z1", "why": "is past its reading window", "until": settles(S)},
      orders, at=settles(S)),
    r("clear_before_gate_closure_names_the_interval", DAVE, ClearInterval(zone="Z1", start=S), "gate_not_closed",
      {"start": S, "zone": "Z1", "closes": gate(S), "time": gate(S) - 1}, orders, at=gate(S) - 1),
    r("clear_twice_names_the_first_clearing", DAVE, ClearInterval(zone="Z1", start=S), "already_cleared",
      lambda w, height: {"start": S, "zone": "Z1", "height": height, "price": 32, "matched_wh": 4_000}, cleared),
    r("settle_before_the_interval_ends_names_it", DAVE, SettleInterval(zone="Z1", start=S), "interval_not_over",
      {"start": S, "zone": "Z1", "end": end(S), "time": end(S) - 1}, cleared, at=end(S) - 1),
    r("settle_at_a_time_that_starts_no_interval_names_the_next_open_one", DAVE, SettleInterval(zone="Z1", start=S + 1),
      "invalid_interval", {"start": S + 1, "zone": "Z1", "interval_ms": INTERVAL, "next": S + 2 * INTERVAL}, orders,
      at=end(S)),
    r("settle_early_with_readings_missing_names_the_interval", DAVE, SettleInterval(zone="Z1", start=S),
      "settlement_too_early", {"missing": 2, "start": S, "zone": "Z1", "meter": "cp-b", "until": settles(S)},
      orders, at=end(S)),
    r("settle_twice_names_the_block_that_settled", DAVE, SettleInterval(zone="Z1", start=S), "already_settled",
      lambda w, height: {"start": S, "zone": "Z1", "height": height}, settled),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refusal_names_exactly_what_was_wrong(case: Refused) -> None:
    w = case.world()
    got = case.setup(w) if case.setup is not None else None
    at = now(w) + 1 if case.at is None else case.at(w)
    msg = case.msg(w)
    detail = case.detail(w, got)
    before = snapshot(w)
    receipt = w.block(tx(w, case.sender, msg, at), time=at).receipts[0]
    assert (receipt.ok, receipt.code, receipt.detail) == (False, case.code, detail), receipt
    assert receipt.events == [] and snapshot(w) == before


# ---------------------------------------------------------------- what an accepted transaction writes


def test_a_vehicles_charger_keeps_its_vin_and_the_meters_query_lists_it_whole() -> None:
    """Carol's second V2G charger is her car's (oem's VIN on the ledger): the meter record keeps the VIN,
    and her ``meters`` list gives each meter's zone, operator, kind and vehicle."""
    w = world()
    vin = vin_for("WVW", 7)
    ok(w, admin("reg"), AssignWmi(wmi="WVW", org="oem"))
    ok(w, admin("oem"), register_msg(vin))
    r = ok(w, METERCO, RegisterMeter(meter="v2g-car", zone="Z1", kind="v2g_charger", key=K("en-meter-car").did,
                                     owner=CAROL.did, max_power_w=7_400, vin=vin))
    assert r.events == [{"type": "energy.meter_registered", "meter": "v2g-car", "zone": "Z1", "operator": "meterco",
                         "owner": CAROL.did}]
    assert METERS.get(w.ledger, "v2g-car").vin == vin
    assert query(w, "meter", eq.MeterQuery(meter="v2g-car"))["vin"] == vin
    assert query(w, "meters", eq.OwnerPage(owner=CAROL.did))["meters"] == [
        {"meter": "v2g-c", "zone": "Z1", "operator": "meterco", "kind": "v2g_charger", "vin": ""},
        {"meter": "v2g-car", "zone": "Z1", "operator": "meterco", "kind": "v2g_charger", "vin": vin}]


def test_an_order_and_a_settled_position_write_their_index_rows_whole() -> None:
    """The index rows are derived data the node serves and looks up by owner and meter: each carries
    every column it declares."""
    w = world()
    ok(w, ALICE, PlaceOrder(meter="house-a", start=S, side="sell", price=10, wh=3_000))
    placed = head(w)
    ok(w, BOB, PlaceOrder(meter="cp-b", start=S, side="buy", price=35, wh=4_000))
    assert w.ledger.index["ix_energy_orders"][("Z1", S, 1)] == {
        "zone": "Z1", "start": S, "seq": 1, "owner": ALICE.did, "meter": "house-a", "side": "sell", "price": 10,
        "wh": 3_000, "height": placed}
    ok(w, HOUSE_KEY, SubmitReading(meter="house-a", start=S, imported_wh=0, exported_wh=3_000), at=end(S))
    ok(w, CP_KEY, SubmitReading(meter="cp-b", start=S, imported_wh=4_000, exported_wh=0))
    ok(w, DAVE, SettleInterval(zone="Z1", start=S))
    rows = w.ledger.index["ix_energy_positions"]
    assert rows[("house-a", S)] == {"meter": "house-a", "start": S, "zone": "Z1", "owner": ALICE.did,
                                    "bought_wh": 0, "sold_wh": 3_000, "net": 96, "height": head(w)}
    assert rows[("cp-b", S)] == {"meter": "cp-b", "start": S, "zone": "Z1", "owner": BOB.did, "bought_wh": 4_000,
                                 "sold_wh": 0, "net": -128, "height": head(w)}


def test_a_revocation_event_names_the_meter_its_operator_and_owner() -> None:
    """The event stream shows ``energy.meter_changed`` to the meter's parties: the event names them."""
    w = world()
    r = ok(w, METERCO, RevokeMeter(meter="house-a", reason="stolen"))
    assert r.events == [{"type": "energy.meter_changed", "meter": "house-a", "operator": "meterco",
                         "owner": ALICE.did, "change": "revoked"}]
    assert (METERS.get(w.ledger, "house-a").revoked, METERS.get(w.ledger, "house-a").reason) == (head(w), "stolen")
    assert send(w, ALICE, PlaceOrder(meter="house-a", start=next_start(w), side="buy", price=20,
                                     wh=1_000)).code == "meter_revoked"
