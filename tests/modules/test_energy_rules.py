"""The energy module's ledger rules, one row per rule, on a MemoryLedger (``helpers.energy``: zone Z1
of ``grid`` with 15-minute intervals, gate closure 5 minutes before, a one-hour reading window; Alice's
house ``house-a`` and Carol's V2G charger ``v2g-c`` run by ``meterco``, Bob's charge point ``cp-b`` by
``chargeco``).

Refusals are one table (``REFUSALS``), each row named after the attack or the rule it stops: the
stable code, the detail that names what was wrong, no event, the ledger exactly as before (state,
index rows, state root), and the same transaction refused as a replay afterwards (its id is
consumed). Then the accepted edge of each rule (an order 1 ms before its gate closes, a reading at
the meter's most power, a cancellation that gives the money back at once...).

Interval ``S`` is the first whose gate is open in the world; ``orders`` puts Alice's ask (seq 1,
3 kWh at 10) and Bob's bid (seq 2, 4 kWh at 35, holding 140) on it. Interval ``TS`` is the first whose
terms may still be set (its gate closes more than ``energy_terms_notice_ms`` after the block).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from blokauto.core.crypto import KeyPair
from blokauto.modules.energy.messages import (CancelOrder, ClearInterval, OpenZone, PlaceOrder, RegisterMeter,
                                              RevokeMeter, RotateMeterKey, SetTerms, SettleInterval, SubmitReading)
from blokauto.modules.energy.state import (METER_KEYS, METER_ORDERS, METERS, TERMS as TERMS_MAP, ZONES, MeterOrders,
                                           Terms)
from blokauto.modules.governance.messages import AddMember
from blokauto.modules.payments.messages import Issue

from conftest import Chain, K
from helpers.energy import (ALICE, BOB, CAROL, CHARGECO, CP_KEY, DAVE, EMI, GRID, GRID2, HOUSE_KEY, INTERVAL,
                            LIMIT_WH, METERCO, NOTICE, TERMS, V2G_KEY, bal, book, end, fork, gate, held,
                            next_start, now, ok, order, reading, send, settles, snapshot, terms_deadline, terms_start,
                            tx, world)

DAY = 86_400_000
HORIZON = 7 * DAY  # energy_order_horizon_ms by default
S = next_start(world())  # the first interval whose gate is open in the world
TS = terms_start(world())  # the first interval whose terms may still be set in the world
NEW_HOUSE_KEY = K("en-meter-house-2")
DEPOT_KEY = K("en-meter-depot")
CHARGECO_CLERK = K("chargeco-clerk")  # a chargeco key with no role
DRY = K("en-dry")  # a person with no money


# ---------------------------------------------------------------- set-ups


def orders(w: Chain) -> None:
    """Alice asks 3 kWh at 10 (seq 1), Bob bids 4 kWh at 35 (seq 2: holds 140) on interval S."""
    ok(w, ALICE, PlaceOrder(meter="house-a", start=S, side="sell", price=10, wh=3_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=S, side="buy", price=35, wh=4_000))


def cleared(w: Chain) -> None:
    orders(w)
    ok(w, DAVE, ClearInterval(zone="Z1", start=S), at=gate(S))


def read(w: Chain) -> None:
    """The orders, and both meters' readings of S as the interval ends."""
    orders(w)
    ok(w, HOUSE_KEY, SubmitReading(meter="house-a", start=S, imported_wh=0, exported_wh=3_000), at=end(S))
    ok(w, CP_KEY, SubmitReading(meter="cp-b", start=S, imported_wh=4_000, exported_wh=0))


def settled(w: Chain) -> None:
    read(w)
    ok(w, DAVE, SettleInterval(zone="Z1", start=S))


def revoked(meter: str, operator: KeyPair = METERCO) -> Callable[[Chain], None]:
    def setup(w: Chain) -> None:
        ok(w, operator, RevokeMeter(meter=meter, reason="removed"))
    return setup


def rotated(w: Chain) -> None:
    ok(w, METERCO, RotateMeterKey(meter="house-a", key=NEW_HOUSE_KEY.did))


def depot(w: Chain) -> None:
    """chargeco's own depot charger trades for org:chargeco (funded); a chargeco clerk key with no role."""
    ok(w, CHARGECO, RegisterMeter(meter="depot", zone="Z1", kind="charge_point", key=DEPOT_KEY.did,
                                  owner="org:chargeco", max_power_w=50_000))
    ok(w, EMI, Issue(currency="EUR", to="org:chargeco", amount=10_000))
    ok(w, CHARGECO, AddMember(member=CHARGECO_CLERK.did, roles=[]), CHARGECO_CLERK)


def later_terms(w: Chain) -> None:
    """Z1's next terms apply from interval TS + 1 interval."""
    ok(w, GRID, SetTerms(zone="Z1", start=TS + INTERVAL, terms=TERMS))


def cancelled(w: Chain) -> None:
    orders(w)
    ok(w, BOB, CancelOrder(zone="Z1", start=S, seq=2))


def terms(**kw: int) -> Terms:
    return Terms(**{**{f: getattr(TERMS, f) for f in TERMS.__struct_fields__}, **kw})


def zone(**kw: Any) -> OpenZone:
    return OpenZone(**{"zone": "Z2", "currency": "EUR", "terms": TERMS, **kw})


def meter(**kw: Any) -> RegisterMeter:
    return RegisterMeter(**{"meter": "m-new", "zone": "Z1", "kind": "home", "key": K("en-meter-new").did,
                            "owner": DAVE.did, "max_power_w": 10_000, **kw})


def bid(meter: str = "house-a", start: int = S, wh: int = 1_000, price: int = 20, side: str = "buy") -> PlaceOrder:
    return PlaceOrder(meter=meter, start=start, side=side, price=price, wh=wh)


def reading_msg(meter: str = "house-a", start: int = S, imported: int = 0, exported: int = 1_000) -> SubmitReading:
    return SubmitReading(meter=meter, start=start, imported_wh=imported, exported_wh=exported)


def full_book(w: Chain) -> None:
    """Ten asks of 100 Wh on S (the book takes at most ten: energy_book_max_orders in genesis)."""
    for i in range(10):
        ok(w, ALICE, bid(side="sell", price=10 + i, wh=100))


def low_book() -> Chain:
    return world({"energy_book_max_orders": 10})


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Callable[[Chain], Any]  # a message, or the bytes of a transaction already sent
    code: str
    setup: Callable[[Chain], Any] | None = None
    at: Callable[[Chain], int] | None = None  # the block time (default: 1 ms after the head)
    world: Callable[[], Chain] = world
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # a part of detail["reason"]


def r(name: str, who: KeyPair, msg: Any, code: str, setup: Any = None, *, at: Any = None, world: Any = world,
      reason: str = "", marks: Any = (), **detail: Any) -> Any:
    m = msg if callable(msg) else (lambda w, _m=msg: _m)
    t = at if callable(at) or at is None else (lambda w, _t=at: _t)
    return pytest.param(Refusal(name, who, m, code, setup, t, world, detail, reason), id=name, marks=marks)


def sent_again(w: Chain) -> bytes:
    return w.kept  # type: ignore[attr-defined]


def one_order_kept(w: Chain) -> None:
    """Alice's ask, whose transaction bytes are kept (to be sent again)."""
    at = now(w) + 1
    w.kept = tx(w, ALICE, bid(side="sell"), at)  # type: ignore[attr-defined]
    assert w.block(w.kept, time=at).receipts[0].ok  # type: ignore[attr-defined]


REFUSALS = [
    # ------------------------------------------------ zones and terms
    r("zone_opened_twice", GRID, zone(zone="Z1"), "zone_exists", zone="Z1", operator="grid"),
    r("zone_id_of_another_grid", GRID2, zone(zone="Z1"), "zone_exists", operator="grid"),
    r("zone_in_a_currency_no_issuer_issues", GRID, zone(currency="USD"), "invalid_terms",
      reason="no issuer issues USD"),
    r("zone_whose_interval_does_not_divide_a_day", GRID, zone(interval_ms=7_000), "invalid_terms",
      reason="interval_ms 7000 does not divide a day"),
    r("zone_whose_interval_is_a_day_and_a_bit", GRID, zone(interval_ms=DAY - 1), "invalid_terms"),
    r("zone_whose_reading_window_takes_no_reading", GRID, zone(reading_window_ms=0), "invalid_terms",
      reason="reading window"),
    r("zone_where_the_grid_buys_at_its_selling_price", GRID, zone(terms=terms(export_price=30)), "invalid_terms",
      reason="export_price must be below import_price"),
    r("zone_where_the_grid_buys_dearer_than_it_sells", GRID, zone(terms=terms(export_price=31)), "invalid_terms"),
    r("zone_paying_long_more_than_short_pays", GRID, zone(terms=terms(long_price=41)), "invalid_terms",
      reason="long_price 41 is above short_price 40"),
    r("zone_where_being_short_is_cheaper_than_buying", GRID, zone(terms=terms(short_price=29)), "invalid_terms",
      reason="short_price 29 is below import_price 30"),
    r("zone_where_being_long_pays_more_than_selling", GRID, zone(terms=terms(long_price=9)), "invalid_terms",
      reason="long_price 9 is above export_price 8"),
    r("terms_of_an_unknown_zone", GRID, SetTerms(zone="Z9", start=TS, terms=TERMS), "unknown_zone", zone="Z9"),
    r("terms_set_by_another_grid", GRID2, SetTerms(zone="Z1", start=TS, terms=TERMS), "not_zone_operator",
      zone="Z1", operator="grid"),
    r("terms_where_the_grid_buys_at_its_selling_price", GRID,
      SetTerms(zone="Z1", start=TS, terms=terms(export_price=30)), "invalid_terms",
      reason="export_price must be below import_price"),
    r("terms_paying_long_more_than_short_pays", GRID, SetTerms(zone="Z1", start=TS, terms=terms(long_price=50)),
      "invalid_terms", reason="long_price 50 is above short_price 40"),
    r("terms_where_being_short_is_cheaper_than_buying", GRID,
      SetTerms(zone="Z1", start=TS, terms=terms(short_price=29)), "invalid_terms",
      reason="short_price 29 is below import_price 30"),
    r("terms_where_being_short_is_cheaper_than_buying_though_the_grid_sells_nothing", GRID,
      SetTerms(zone="Z1", start=TS, terms=terms(import_wh=0, short_price=29)), "invalid_terms",
      reason="short_price 29 is below import_price 30"),
    r("terms_where_being_long_pays_more_than_selling", GRID,
      SetTerms(zone="Z1", start=TS, terms=terms(long_price=9)), "invalid_terms",
      reason="long_price 9 is above export_price 8"),
    r("terms_where_being_long_pays_more_than_selling_though_the_grid_buys_nothing", GRID,
      SetTerms(zone="Z1", start=TS, terms=terms(export_wh=0, export_price=0)), "invalid_terms",
      reason="long_price 5 is above export_price 0"),
    r("terms_1_ms_inside_the_notice", GRID, SetTerms(zone="Z1", start=TS, terms=TERMS), "terms_too_late",
      at=terms_deadline(TS) + 1, start=TS, zone="Z1", deadline=terms_deadline(TS), notice_ms=NOTICE,
      time=terms_deadline(TS) + 1),
    r("terms_inside_a_longer_notice_of_the_chain", GRID, SetTerms(zone="Z1", start=TS, terms=TERMS), "terms_too_late",
      world=lambda: world({"energy_terms_notice_ms": 2 * NOTICE}), deadline=terms_deadline(TS, 2 * NOTICE),
      notice_ms=2 * NOTICE),
    r("terms_for_the_first_open_interval_whose_notice_has_passed", GRID, SetTerms(zone="Z1", start=S, terms=TERMS),
      "terms_too_late", start=S, deadline=terms_deadline(S)),
    r("terms_from_an_interval_whose_gate_closed", GRID, SetTerms(zone="Z1", start=S, terms=TERMS),
      "terms_too_late", at=gate(S), start=S, deadline=terms_deadline(S), time=gate(S)),
    r("terms_from_an_interval_under_way", GRID, SetTerms(zone="Z1", start=S, terms=TERMS), "terms_too_late",
      at=S + 1),
    r("terms_earlier_than_the_latest_terms", GRID, SetTerms(zone="Z1", start=TS, terms=TERMS),
      "invalid_terms", later_terms, reason=f"terms are set from interval {TS + INTERVAL} on"),
    r("terms_from_a_time_that_starts_no_interval", GRID, SetTerms(zone="Z1", start=TS + 1, terms=TERMS),
      "invalid_interval", start=TS + 1, interval_ms=INTERVAL),
    # ------------------------------------------------ meters
    r("meter_registered_twice", METERCO, meter(meter="house-a"), "meter_exists", meter="house-a",
      operator="meterco"),
    r("meter_id_of_another_operator", CHARGECO, meter(meter="house-a"), "meter_exists"),
    r("meter_in_an_unknown_zone", METERCO, meter(zone="Z9"), "unknown_zone", zone="Z9"),
    r("meter_with_a_key_that_is_no_did", METERCO, meter(key="did:key:z6Mk" + "1" * 44), "invalid_key"),
    r("meter_with_another_meters_key", METERCO, meter(key=HOUSE_KEY.did), "meter_key_in_use", key=HOUSE_KEY.did,
      meter="house-a"),
    r("meter_with_the_key_of_a_meter_of_another_operator", METERCO, meter(key=CP_KEY.did), "meter_key_in_use",
      meter="cp-b"),
    r("meter_with_the_key_of_a_revoked_meter", CHARGECO, meter(key=HOUSE_KEY.did), "meter_key_in_use",
      revoked("house-a"), meter="house-a"),
    r("meter_whose_key_is_its_owners", METERCO, meter(key=DAVE.did), "meter_key_is_owner", meter="m-new",
      key=DAVE.did),
    r("meter_owned_by_an_organisation_that_does_not_exist", METERCO, meter(owner="org:nobody"),
      "invalid_meter_owner", owner="org:nobody"),
    r("meter_owned_by_no_did", METERCO, meter(owner="mallory"), "invalid_meter_owner"),
    r("v2g_charger_of_an_unknown_vehicle", METERCO, meter(kind="v2g_charger", vin="WVWZZZ1JZXW000001"),
      "unknown_vehicle"),
    r("rotate_an_unknown_meter", METERCO, RotateMeterKey(meter="m-none", key=NEW_HOUSE_KEY.did), "unknown_meter",
      meter="m-none"),
    r("rotate_another_operators_meter", CHARGECO, RotateMeterKey(meter="house-a", key=NEW_HOUSE_KEY.did),
      "not_meter_operator", meter="house-a", operator="meterco"),
    r("rotate_to_the_key_in_use", METERCO, RotateMeterKey(meter="house-a", key=HOUSE_KEY.did), "meter_key_in_use",
      meter="house-a", key=HOUSE_KEY.did),
    r("rotate_to_another_meters_key", METERCO, RotateMeterKey(meter="house-a", key=V2G_KEY.did), "meter_key_in_use",
      meter="v2g-c", key=V2G_KEY.did),
    r("rotate_to_the_key_of_a_meter_of_another_operator", METERCO, RotateMeterKey(meter="house-a", key=CP_KEY.did),
      "meter_key_in_use", meter="cp-b"),
    r("rotate_to_a_key_just_given_to_a_new_meter", METERCO, RotateMeterKey(meter="house-a", key=NEW_HOUSE_KEY.did),
      "meter_key_in_use", lambda w: ok(w, CHARGECO, meter(key=NEW_HOUSE_KEY.did)), meter="m-new"),
    r("rotate_to_the_owners_key", METERCO, RotateMeterKey(meter="house-a", key=ALICE.did), "meter_key_is_owner",
      meter="house-a", key=ALICE.did),
    r("rotate_to_a_key_that_is_no_did", METERCO, RotateMeterKey(meter="house-a", key="did:key:z6Mk" + "1" * 44),
      "invalid_key"),
    r("rotate_a_revoked_meter", METERCO, RotateMeterKey(meter="house-a", key=NEW_HOUSE_KEY.did), "meter_revoked",
      revoked("house-a"), meter="house-a", reason="removed"),
    r("revoke_a_meter_twice", METERCO, RevokeMeter(meter="house-a"), "meter_revoked", revoked("house-a")),
    r("revoke_another_operators_meter", METERCO, RevokeMeter(meter="cp-b"), "not_meter_operator",
      operator="chargeco"),
    r("revoke_an_unknown_meter", METERCO, RevokeMeter(meter="m-none"), "unknown_meter"),
    # ------------------------------------------------ orders
    r("order_for_an_unknown_meter", ALICE, bid(meter="m-none"), "unknown_meter", meter="m-none"),
    r("order_on_a_revoked_meter", ALICE, bid(), "meter_revoked", revoked("house-a"), meter="house-a"),
    r("ask_on_a_revoked_meter", ALICE, bid(side="sell"), "meter_revoked", revoked("house-a")),
    r("order_by_another_owner", BOB, bid(), "not_meter_owner", meter="house-a", owner=ALICE.did, sender=BOB.did),
    r("order_by_the_meter_operator", METERCO, bid(), "not_meter_owner"),
    r("order_by_the_zone_operator", GRID, bid(), "not_meter_owner"),
    r("order_by_the_meters_own_device_key", HOUSE_KEY, bid(), "not_meter_owner"),
    r("order_for_an_org_meter_by_a_member_of_another_org", METERCO, bid(meter="depot"), "not_meter_owner", depot,
      owner="org:chargeco"),
    r("order_for_an_org_meter_by_a_person", ALICE, bid(meter="depot"), "not_meter_owner", depot),
    r("order_for_a_time_that_starts_no_interval", ALICE, bid(start=S + 60_000), "invalid_interval", start=S + 60_000,
      interval_ms=INTERVAL),
    r("order_at_gate_closure", ALICE, bid(), "gate_closed", at=gate(S), start=S, closed=gate(S), time=gate(S)),
    r("ask_at_gate_closure", ALICE, bid(side="sell"), "gate_closed", at=gate(S)),
    r("order_for_an_interval_under_way", ALICE, bid(), "gate_closed", at=S + 1),
    r("order_for_an_interval_past", ALICE, bid(), "gate_closed", at=end(S) + 1),
    r("order_too_far_ahead", ALICE, lambda w: bid(start=(now(w) + 1 + HORIZON) // INTERVAL * INTERVAL + INTERVAL),
      "too_far_ahead", horizon_ms=HORIZON),
    r("order_on_a_full_book", ALICE, bid(side="sell"), "book_full", full_book, world=low_book, orders=10),
    r("bid_the_account_cannot_hold", ALICE, bid(wh=1_000, price=100_001), "insufficient_funds", balance=100_000,
      amount=100_001),
    r("bid_beyond_the_meters_power", ALICE, bid(wh=5_001), "order_beyond_power", meter="house-a", side="buy",
      wanted=5_001, ordered=0, limit=5_000, start=S),
    r("ask_beyond_the_meters_power", CAROL, bid(meter="v2g-c", side="sell", wh=2_751), "order_beyond_power",
      meter="v2g-c", side="sell", wanted=2_751, ordered=0, limit=2_750),
    r("ask_of_the_most_wh_an_order_may_carry", ALICE, bid(side="sell", wh=1_000_000_000, price=1_000_000),
      "order_beyond_power", wanted=1_000_000_000, limit=5_000),
    r("bid_1_wh_beyond_what_the_open_bids_leave", ALICE, bid(wh=1), "order_beyond_power",
      lambda w: ok(w, ALICE, bid(wh=5_000)), side="buy", wanted=1, ordered=5_000, limit=5_000),
    r("ask_beyond_what_two_open_asks_leave", ALICE, bid(side="sell", wh=1_001), "order_beyond_power",
      lambda w: [ok(w, ALICE, bid(side="sell", wh=2_000)) for _ in range(2)], side="sell", wanted=1_001,
      ordered=4_000),
    r("bid_beyond_power_again_after_a_cancelled_bid_was_replaced", ALICE, bid(wh=1), "order_beyond_power",
      lambda w: (ok(w, ALICE, bid(wh=5_000)), ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=1)),
                 ok(w, ALICE, bid(wh=5_000))), ordered=5_000),
    r("bid_for_an_org_meter_beyond_its_power", CHARGECO_CLERK, bid(meter="depot", wh=12_501), "order_beyond_power",
      depot, meter="depot", limit=12_500),
    r("bid_beyond_power_that_the_account_cannot_hold_either", DRY, bid(meter="m-dry", price=1, wh=10_001),
      "order_beyond_power", lambda w: ok(w, METERCO, meter(meter="m-dry", owner=DRY.did)), limit=2_500),
    r("bid_of_an_owner_with_no_account", DRY, bid(meter="m-dry", price=1, wh=1), "insufficient_funds",
      lambda w: ok(w, METERCO, meter(meter="m-dry", owner=DRY.did)), balance=0, amount=1),
    r("replayed_order", ALICE, sent_again, "replayed_tx", one_order_kept),
    # ------------------------------------------------ cancellations
    r("cancel_by_another_owner", BOB, CancelOrder(zone="Z1", start=S, seq=1), "not_order_owner", orders, seq=1,
      owner=ALICE.did, sender=BOB.did),
    r("cancel_by_the_zone_operator", GRID, CancelOrder(zone="Z1", start=S, seq=2), "not_order_owner", orders),
    r("cancel_by_the_meter_operator", CHARGECO, CancelOrder(zone="Z1", start=S, seq=2), "not_order_owner", orders),
    r("cancel_twice", BOB, CancelOrder(zone="Z1", start=S, seq=2), "order_cancelled", cancelled, seq=2),
    r("cancel_at_gate_closure", BOB, CancelOrder(zone="Z1", start=S, seq=2), "gate_closed", orders, at=gate(S)),
    r("cancel_after_clearing", BOB, CancelOrder(zone="Z1", start=S, seq=2), "gate_closed", cleared),
    r("cancel_an_unknown_order", BOB, CancelOrder(zone="Z1", start=S, seq=3), "unknown_order", orders, seq=3),
    r("cancel_order_zero", BOB, CancelOrder(zone="Z1", start=S, seq=0), "unknown_order", orders),
    r("cancel_in_an_interval_without_orders", BOB, CancelOrder(zone="Z1", start=S, seq=1), "unknown_order"),
    r("cancel_in_an_unknown_zone", BOB, CancelOrder(zone="Z9", start=S, seq=1), "unknown_zone", orders),
    r("cancel_at_a_time_that_starts_no_interval", BOB, CancelOrder(zone="Z1", start=S + 1, seq=2),
      "invalid_interval", orders),
    # ------------------------------------------------ readings
    r("reading_of_an_unregistered_meter", HOUSE_KEY, reading_msg(meter="m-none"), "unknown_meter", at=end(S)),
    r("reading_signed_by_the_owner", ALICE, reading_msg(), "not_meter_key", orders, at=end(S), meter="house-a",
      sender=ALICE.did, key=HOUSE_KEY.did),
    r("reading_signed_by_the_meter_operator", METERCO, reading_msg(), "not_meter_key", orders, at=end(S)),
    r("reading_signed_by_another_meters_key", CP_KEY, reading_msg(), "not_meter_key", orders, at=end(S)),
    r("reading_signed_by_a_rotated_out_key", HOUSE_KEY, reading_msg(), "not_meter_key",
      lambda w: (orders(w), rotated(w)), at=end(S), key=NEW_HOUSE_KEY.did),
    r("reading_of_a_revoked_meter", HOUSE_KEY, reading_msg(), "meter_revoked",
      lambda w: (orders(w), revoked("house-a")(w)), at=end(S)),
    r("reading_importing_above_the_meters_power", HOUSE_KEY, reading_msg(imported=LIMIT_WH["house-a"] + 1, exported=0),
      "implausible_reading", orders, at=end(S), meter="house-a", wh=5_001, limit=5_000, max_power_w=20_000,
      interval_ms=INTERVAL),
    r("reading_in_and_out_together_1_wh_above_the_meters_power", HOUSE_KEY, reading_msg(imported=2_000, exported=3_001),
      "implausible_reading", orders, at=end(S), wh=5_001, limit=5_000),
    r("reading_of_each_way_within_power_but_not_together", CP_KEY, reading_msg(meter="cp-b", imported=2_751,
                                                                              exported=2_750),
      "implausible_reading", orders, at=end(S), meter="cp-b", wh=5_501, limit=5_500, max_power_w=22_000),
    r("reading_exporting_above_the_meters_power", CP_KEY, reading_msg(meter="cp-b", exported=LIMIT_WH["cp-b"] + 1),
      "implausible_reading", orders, at=end(S), limit=5_500),
    r("reading_of_the_most_a_meter_may_carry", V2G_KEY, reading_msg(meter="v2g-c", exported=1_000_000_000),
      "implausible_reading", at=end(S), limit=2_750),
    r("reading_before_the_interval_ends", HOUSE_KEY, reading_msg(), "reading_too_early", orders, at=end(S) - 1,
      end=end(S), time=end(S) - 1),
    r("reading_of_an_interval_not_started", HOUSE_KEY, reading_msg(), "reading_too_early", orders),
    r("reading_twice", HOUSE_KEY, reading_msg(exported=2_000), "reading_exists", read, meter="house-a", start=S),
    r("reading_after_settlement", V2G_KEY, reading_msg(meter="v2g-c"), "reading_too_late", settled,
      until=settles(S)),
    r("reading_after_the_window", HOUSE_KEY, reading_msg(), "reading_too_late", orders, at=settles(S),
      until=settles(S)),
    r("reading_at_a_time_that_starts_no_interval", HOUSE_KEY, reading_msg(start=S + 1), "invalid_interval",
      orders, at=end(S)),
    # ------------------------------------------------ clearing
    r("clear_before_gate_closure", DAVE, ClearInterval(zone="Z1", start=S), "gate_not_closed", orders,
      at=gate(S) - 1, closes=gate(S), time=gate(S) - 1),
    r("clear_twice", DAVE, ClearInterval(zone="Z1", start=S), "already_cleared", cleared, start=S),
    r("clear_after_settlement", DAVE, ClearInterval(zone="Z1", start=S), "already_cleared", settled),
    r("clear_an_interval_with_no_orders", DAVE, ClearInterval(zone="Z1", start=S), "no_orders", at=gate(S), start=S,
      zone="Z1"),
    r("clear_an_interval_whose_orders_are_on_another", DAVE, ClearInterval(zone="Z1", start=S + INTERVAL),
      "no_orders", orders, at=gate(S + INTERVAL), start=S + INTERVAL),
    r("clear_in_an_unknown_zone", DAVE, ClearInterval(zone="Z9", start=S), "unknown_zone", at=gate(S)),
    r("clear_at_a_time_that_starts_no_interval", DAVE, ClearInterval(zone="Z1", start=S - 1), "invalid_interval",
      orders, at=gate(S)),
    # ------------------------------------------------ settlement
    r("settle_an_interval_with_no_orders", DAVE, SettleInterval(zone="Z1", start=S), "no_orders", at=end(S), start=S,
      zone="Z1"),
    r("settle_an_interval_with_no_orders_after_its_window", DAVE, SettleInterval(zone="Z1", start=S), "no_orders",
      lambda w: ok(w, V2G_KEY, reading_msg(meter="v2g-c"), at=end(S)), at=settles(S)),
    r("settle_before_the_interval_ends", DAVE, SettleInterval(zone="Z1", start=S), "interval_not_over", cleared,
      at=end(S) - 1, end=end(S), time=end(S) - 1),
    r("settle_early_with_readings_missing", DAVE, SettleInterval(zone="Z1", start=S), "settlement_too_early", orders,
      at=end(S), missing=2, meter="cp-b", until=settles(S)),
    r("settle_early_with_one_reading_missing", DAVE, SettleInterval(zone="Z1", start=S), "settlement_too_early",
      lambda w: (orders(w), ok(w, HOUSE_KEY, reading_msg(exported=3_000), at=end(S))), at=settles(S) - 1,
      missing=1, meter="cp-b"),
    r("settle_twice", DAVE, SettleInterval(zone="Z1", start=S), "already_settled", settled, start=S),
    r("settle_in_an_unknown_zone", DAVE, SettleInterval(zone="Z9", start=S), "unknown_zone", at=end(S)),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing(case: Refusal) -> None:
    w = case.world()
    if case.setup is not None:
        case.setup(w)
    at = now(w) + 1 if case.at is None else case.at(w)
    msg = case.msg(w)
    raw = msg if isinstance(msg, bytes) else tx(w, case.sender, msg, at)
    before = snapshot(w)
    receipt = w.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        if v is not None:
            assert receipt.detail[k] == v, receipt.detail
    if case.reason:
        assert case.reason in receipt.detail["reason"], receipt.detail
    assert snapshot(w) == before, "a failed transaction changed the ledger"
    again = w.block(raw, time=at).receipts[0]
    assert (again.ok, again.code) == (False, "replayed_tx")


def test_every_refusal_code_of_the_module_has_a_row() -> None:
    from blokauto.modules.energy import errors

    codes = {cls.code for cls in vars(errors).values() if isinstance(cls, type) and hasattr(cls, "code")
             and cls.__module__ == errors.__name__}
    assert codes <= {p.values[0].code for p in REFUSALS}


# ---------------------------------------------------------------- zones and terms: what is written


def test_a_zone_is_opened_with_its_clock_and_first_terms_from_the_first_open_interval() -> None:
    w = world()
    t = now(w) + 1
    r = ok(w, GRID2, zone(interval_ms=3_600_000, gate_closure_ms=0, reading_window_ms=1))
    first = (t // 3_600_000 + 1) * 3_600_000
    assert r.events == [{"type": "energy.zone_opened", "zone": "Z2", "operator": "grid2"},
                        {"type": "energy.terms_set", "zone": "Z2", "start": first}]
    z = ZONES.get(w.ledger, "Z2")
    assert (z.operator, z.currency, z.interval_ms, z.gate_closure_ms, z.reading_window_ms, z.created, z.terms) == (
        "grid2", "EUR", 3_600_000, 0, 1, w.ledger.head.height, [first])
    assert TERMS_MAP.get(w.ledger, "Z2", first).terms == TERMS
    assert w.ledger.index["ix_energy_zones"][("Z2",)] == {"zone": "Z2", "operator": "grid2", "currency": "EUR"}


@pytest.mark.parametrize("interval_ms", [1_000, 60_000, 900_000, 3_600_000, DAY])
def test_every_interval_that_divides_a_day_is_taken(interval_ms: int) -> None:
    ok(world(), GRID, zone(interval_ms=interval_ms))


CONSISTENT_AT_THE_EDGE = {
    "export_just_below_import": terms(export_price=29),
    "no_import_any_export_price": terms(import_wh=0, export_price=31),
    "no_export_any_export_price": terms(export_wh=0, export_price=31),
    "short_equal_import": terms(short_price=30),
    "long_equal_export": terms(long_price=8),
    "short_equal_import_and_long_equal_export": terms(short_price=30, long_price=8),
    # with both capacities long <= export < import <= short; without import one price may serve for all four
    "long_equal_short_with_no_import": Terms(0, 20_000, 30, 30, 30, 30),
    "all_zero": Terms(0, 0, 0, 0, 0, 0),
}


@pytest.mark.parametrize("how", ["open_zone", "set_terms"])
@pytest.mark.parametrize("t", list(CONSISTENT_AT_THE_EDGE.values()), ids=list(CONSISTENT_AT_THE_EDGE))
def test_consistent_terms_at_the_edge_are_taken(t: Terms, how: str) -> None:
    ok(world(), GRID, zone(terms=t) if how == "open_zone" else SetTerms(zone="Z1", start=TS, terms=t))


@pytest.mark.parametrize("notice", [0, 1, NOTICE, 2 * NOTICE])
def test_terms_are_set_up_to_the_notice_before_the_gate_closes_and_set_again_replace_them(notice: int) -> None:
    """Block time + ``energy_terms_notice_ms`` must be before the gate closes: the last block time taken
    is gate - notice - 1 (with no notice, 1 ms before the gate closes, as orders), 1 ms later is too late."""
    w = world({"energy_terms_notice_ms": notice})
    start = terms_start(w, notice) + INTERVAL  # after the zone's first terms (S)
    ok(w, GRID, SetTerms(zone="Z1", start=start, terms=terms(import_price=31)))
    late = send(fork(w), GRID, SetTerms(zone="Z1", start=start, terms=terms(import_price=32)),
                at=terms_deadline(start, notice) + 1)
    assert (late.ok, late.code, late.detail["deadline"], late.detail["notice_ms"]) == (
        False, "terms_too_late", terms_deadline(start, notice), notice)
    r = ok(w, GRID, SetTerms(zone="Z1", start=start, terms=terms(import_price=32)), at=terms_deadline(start, notice))
    assert r.events == [{"type": "energy.terms_set", "zone": "Z1", "start": start}]
    z = ZONES.get(w.ledger, "Z1")
    assert z.terms == [S, start]  # replaced, not listed twice
    assert TERMS_MAP.get(w.ledger, "Z1", start).terms.import_price == 32
    assert TERMS_MAP.get(w.ledger, "Z1", S).terms == TERMS
    if notice == 0:
        assert terms_deadline(start, notice) == gate(start) - 1


# ---------------------------------------------------------------- meters


def test_a_meter_is_registered_with_its_key_owner_and_power() -> None:
    w = world()
    r = ok(w, CHARGECO, meter(meter="cp-d", kind="charge_point"))
    assert r.events == [{"type": "energy.meter_registered", "meter": "cp-d", "zone": "Z1", "operator": "chargeco",
                         "owner": DAVE.did}]
    got = METERS.get(w.ledger, "cp-d")
    assert (got.operator, got.zone, got.kind, got.key, got.owner, got.max_power_w, got.registered, got.revoked) == (
        "chargeco", "Z1", "charge_point", K("en-meter-new").did, DAVE.did, 10_000, w.ledger.head.height, 0)


def test_a_rotated_meter_reads_with_its_new_key_from_the_rotation_on() -> None:
    w = world()
    orders(w)
    r = ok(w, METERCO, RotateMeterKey(meter="house-a", key=NEW_HOUSE_KEY.did))
    assert r.events == [{"type": "energy.meter_changed", "meter": "house-a", "operator": "meterco",
                         "owner": ALICE.did, "change": "key_rotated"}]
    ok(w, NEW_HOUSE_KEY, reading_msg(exported=3_000), at=end(S))
    assert reading(w, "house-a", S).key == NEW_HOUSE_KEY.did


def test_a_key_rotated_out_is_free_for_another_meter_and_for_its_own_meter_again() -> None:
    """A device key signs for one meter at a time: the rotation frees the old key (a revoked meter's key
    stays its own: ``meter_with_the_key_of_a_revoked_meter``)."""
    w = world()
    rotated(w)
    assert (METER_KEYS.get(w.ledger, HOUSE_KEY.did), METER_KEYS.get(w.ledger, NEW_HOUSE_KEY.did)) == (None, "house-a")
    ok(w, CHARGECO, meter(meter="cp-d", kind="charge_point", key=HOUSE_KEY.did))
    assert METER_KEYS.get(w.ledger, HOUSE_KEY.did) == "cp-d"
    ok(w, METERCO, RotateMeterKey(meter="house-a", key=K("en-meter-house-3").did))
    ok(w, METERCO, RotateMeterKey(meter="house-a", key=NEW_HOUSE_KEY.did))  # its own key of two rotations ago
    assert METERS.get(w.ledger, "house-a").key == NEW_HOUSE_KEY.did


@pytest.mark.parametrize("meter_id,owner", [("m-org", "org:chargeco"), ("m-dave", DAVE.did)])
def test_a_device_key_may_be_another_meters_owner(meter_id: str, owner: str) -> None:
    """The accepted edge of ``meter_key_is_owner``: the rule is about the meter's own owner, so Bob's key
    (cp-b's owner) may sign for Dave's meter or for one of org:chargeco."""
    w = world()
    ok(w, CHARGECO, meter(meter=meter_id, kind="charge_point", owner=owner, key=BOB.did))
    assert METERS.get(w.ledger, meter_id).key == BOB.did


@pytest.mark.parametrize("how", ["register", "rotate"])
def test_a_key_of_the_owning_organisation_is_refused_as_the_meters_device_key(how: str) -> None:
    w = world()
    depot(w)
    msg = (meter(meter="depot-2", kind="charge_point", owner="org:chargeco", key=CHARGECO_CLERK.did)
           if how == "register" else RotateMeterKey(meter="depot", key=CHARGECO_CLERK.did))
    receipt = send(w, CHARGECO, msg)
    assert (receipt.ok, receipt.code) == (False, "meter_key_is_owner"), receipt


def test_a_revoked_meters_orders_stay_in_the_book_and_its_owner_may_still_cancel_them() -> None:
    w = world()
    orders(w)
    r = ok(w, CHARGECO, RevokeMeter(meter="cp-b", reason="stolen"))
    assert r.events[0]["change"] == "revoked"
    assert book(w, S).open_bids == 1
    ok(w, BOB, CancelOrder(zone="Z1", start=S, seq=2))
    assert bal(w, BOB) == 100_000


# ---------------------------------------------------------------- orders: the accepted edges


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_an_order_1_ms_before_its_gate_closes_is_taken(side: str) -> None:
    w = world()
    r = ok(w, ALICE, bid(side=side), at=gate(S) - 1)
    assert r.events == [{"type": "energy.order_placed", "zone": "Z1", "start": S, "seq": 1, "owner": ALICE.did,
                         "side": side}]


@pytest.mark.parametrize("late,code", [(0, ""), (1, ""), (-1, "too_far_ahead")])
def test_an_order_is_taken_for_an_interval_up_to_the_horizon_ahead(late: int, code: str) -> None:
    """At block time ``start - horizon`` an order for ``start`` is taken; 1 ms earlier it is too far ahead."""
    w = world()
    start = S + HORIZON
    at = start - HORIZON + late
    receipt = send(w, ALICE, bid(start=start), at=at)
    assert (receipt.ok, receipt.code) == (not code, code), receipt


def test_an_order_is_written_with_its_transaction_id_and_a_bid_holds_its_most_cost_rounded_up() -> None:
    w = world()
    r = ok(w, ALICE, bid(wh=1_001, price=7))  # 7.007 -> 8
    got = order(w, S, 1)
    assert (got.seq, got.meter, got.owner, got.side, got.price, got.wh, got.key, got.held, got.height, got.status) == (
        1, "house-a", ALICE.did, "buy", 7, 1_001, r.tx, 8, w.ledger.head.height, "open")
    assert (bal(w, ALICE), held(w)) == (100_000 - 8, 8)
    b = book(w, S)
    assert (b.orders, b.open_bids, b.open_asks, b.bid_wh, b.ask_wh, b.status) == (1, 1, 0, 1_001, 0, "open")
    assert w.ledger.index["ix_energy_orders"][("Z1", S, 1)]["owner"] == ALICE.did


def test_an_ask_holds_nothing_even_worth_more_than_the_account() -> None:
    """Alice's most power (5 kWh) at the highest price: 5,000.00, fifty times her account."""
    w = world()
    ok(w, ALICE, bid(side="sell", wh=LIMIT_WH["house-a"], price=1_000_000))
    assert (bal(w, ALICE), held(w), order(w, S, 1).held) == (100_000, 0, 0)


def test_a_bid_of_exactly_the_balance_is_taken_and_empties_the_account() -> None:
    w = world()
    ok(w, ALICE, bid(wh=1_000, price=100_000))
    assert (bal(w, ALICE), held(w)) == (0, 100_000)


def test_a_book_takes_its_last_order() -> None:
    w = low_book()
    for i in range(9):
        ok(w, ALICE, bid(side="sell", price=10 + i, wh=100))
    ok(w, BOB, bid(meter="cp-b"))
    assert book(w, S).orders == 10
    ok(w, BOB, bid(meter="cp-b", start=S + INTERVAL))  # another interval's book is its own


def test_a_cancelled_order_still_counts_toward_a_full_book() -> None:
    w = low_book()
    full_book(w)
    ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=1))
    assert send(w, ALICE, bid(side="sell")).code == "book_full"


@pytest.mark.parametrize("sender", [CHARGECO, CHARGECO_CLERK], ids=["org_admin", "org_key_with_no_role"])
def test_any_key_of_the_owning_org_orders_for_its_meter(sender: KeyPair) -> None:
    w = world()
    depot(w)
    ok(w, sender, bid(meter="depot", wh=2_000, price=50))
    assert (bal(w, "org:chargeco"), order(w, S, 1).owner) == (10_000 - 100, "org:chargeco")
    ok(w, CHARGECO_CLERK if sender is CHARGECO else CHARGECO, CancelOrder(zone="Z1", start=S, seq=1))
    assert bal(w, "org:chargeco") == 10_000


def test_cancelling_a_bid_gives_its_money_back_at_once() -> None:
    w = world()
    orders(w)
    assert (bal(w, BOB), held(w)) == (100_000 - 140, 140)
    r = ok(w, BOB, CancelOrder(zone="Z1", start=S, seq=2), at=gate(S) - 1)
    assert r.events == [{"type": "energy.order_cancelled", "zone": "Z1", "start": S, "seq": 2, "owner": BOB.did}]
    assert (bal(w, BOB), held(w)) == (100_000, 0)
    assert order(w, S, 2).status == "cancelled"
    b = book(w, S)
    assert (b.orders, b.open_bids, b.open_asks, b.bid_wh, b.ask_wh) == (2, 0, 1, 0, 3_000)
    assert ("Z1", S, 2) not in w.ledger.index["ix_energy_orders"]


@pytest.mark.parametrize("meter_id,owner,power", [("house-a", ALICE, 20_000), ("m-odd", DAVE, 1_001)],
                         ids=["house_a", "a_meter_whose_power_rounds_down"])
def test_orders_up_to_the_meters_power_are_taken_on_each_side_and_in_each_interval(meter_id: str, owner: KeyPair,
                                                                                   power: int) -> None:
    """Bids adding up to exactly what the meter's power moves in an interval (power x 15 min, rounded
    down: 1,001 W -> 250 Wh), asks likewise beside them, and as much again in the next interval; 1 Wh
    more on a side is refused."""
    w = world()
    if meter_id == "m-odd":
        ok(w, METERCO, meter(meter=meter_id, max_power_w=power))
    limit = power * INTERVAL // 3_600_000
    ok(w, owner, bid(meter=meter_id, wh=limit - limit // 3))
    ok(w, owner, bid(meter=meter_id, wh=limit // 3))
    ok(w, owner, bid(meter=meter_id, side="sell", wh=limit))
    ok(w, owner, bid(meter=meter_id, wh=limit, start=S + INTERVAL))
    assert METER_ORDERS.get(w.ledger, meter_id, S) == MeterOrders(bid_wh=limit, ask_wh=limit)
    for side in ("buy", "sell"):
        r = send(w, owner, bid(meter=meter_id, side=side, wh=1))
        assert (r.code, r.detail["ordered"], r.detail["limit"]) == ("order_beyond_power", limit, limit), r
    ok(w, BOB, bid(meter="cp-b", wh=LIMIT_WH["cp-b"]))  # another meter's room is its own


def test_cancelling_an_order_frees_its_room_on_its_side() -> None:
    """Alice bids 3 and 2 kWh (her 5 kWh), asks 5 kWh; cancelling the 2 kWh bid frees 2 kWh of bids
    (not of asks, not more)."""
    w = world()
    ok(w, ALICE, bid(wh=3_000))
    ok(w, ALICE, bid(wh=2_000))
    ok(w, ALICE, bid(side="sell", wh=5_000))
    assert send(w, ALICE, bid(wh=1)).code == "order_beyond_power"
    ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=2))
    assert METER_ORDERS.get(w.ledger, "house-a", S) == MeterOrders(bid_wh=3_000, ask_wh=5_000)
    assert send(w, ALICE, bid(side="sell", wh=1)).code == "order_beyond_power"
    assert send(w, ALICE, bid(wh=2_001)).code == "order_beyond_power"
    ok(w, ALICE, bid(wh=2_000))
    ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=3))
    ok(w, ALICE, bid(side="sell", wh=5_000))
    assert METER_ORDERS.get(w.ledger, "house-a", S) == MeterOrders(bid_wh=5_000, ask_wh=5_000)


def test_a_revoked_meters_cancelled_order_frees_its_room_but_it_orders_no_more() -> None:
    w = world()
    ok(w, ALICE, bid(wh=5_000))
    revoked("house-a")(w)
    ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=1))
    assert METER_ORDERS.get(w.ledger, "house-a", S) == MeterOrders(bid_wh=0, ask_wh=0)
    assert send(w, ALICE, bid(wh=1)).code == "meter_revoked"


def test_cancelling_an_ask_moves_no_money() -> None:
    w = world()
    orders(w)
    ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=1))
    assert (bal(w, ALICE), held(w)) == (100_000, 140)
    assert (book(w, S).open_asks, book(w, S).ask_wh) == (0, 0)


# ---------------------------------------------------------------- readings: the accepted edges


@pytest.mark.parametrize("imported,exported", [(5_000, 0), (0, 5_000), (2_000, 3_000), (4_999, 1)],
                         ids=["all_in", "all_out", "in_and_out", "in_and_1_wh_out"])
@pytest.mark.parametrize("at", [end(S), settles(S) - 1], ids=["as_the_interval_ends", "1_ms_before_the_window_closes"])
def test_a_reading_at_the_meters_most_power_is_taken_from_the_interval_end_to_the_window_close(
        at: int, imported: int, exported: int) -> None:
    """In and out together exactly what the meter's power moves in an interval (5 kWh for house-a)."""
    w = world()
    orders(w)
    assert imported + exported == LIMIT_WH["house-a"]
    r = ok(w, HOUSE_KEY, reading_msg(imported=imported, exported=exported), at=at)
    assert r.events == [{"type": "energy.reading_submitted", "meter": "house-a", "start": S, "operator": "meterco",
                         "owner": ALICE.did}]
    got = reading(w, "house-a", S)
    assert (got.imported_wh, got.exported_wh, got.key, got.height) == (imported, exported, HOUSE_KEY.did,
                                                                      w.ledger.head.height)


def test_a_meter_without_orders_reads_its_interval() -> None:
    w = world()
    ok(w, V2G_KEY, reading_msg(meter="v2g-c", imported=0, exported=0), at=end(S))


# ---------------------------------------------------------------- clearing and settlement: the accepted edges


def test_an_interval_clears_as_its_gate_closes_whoever_sends_it() -> None:
    w = world()
    orders(w)
    r = ok(w, K("en-stranger"), ClearInterval(zone="Z1", start=S), at=gate(S))
    # Bob's 4 kWh: Alice's 3 at 10 and 1 of the grid's at 30 (the last ask level matched): price (35 + 30) // 2
    assert r.events == [{"type": "energy.cleared", "zone": "Z1", "start": S, "price": 32, "matched_wh": 4_000}]
    b = book(w, S)
    assert (b.status, b.clearing.height, b.clearing.time, b.clearing.orders, b.clearing.terms_start) == (
        "cleared", w.ledger.head.height, gate(S), 2, S)


def test_an_interval_settles_as_it_ends_when_every_meter_with_a_position_has_read() -> None:
    w = world()
    read(w)
    ok(w, V2G_KEY, reading_msg(meter="v2g-c", exported=0))  # Carol reads, and has no position
    r = ok(w, DAVE, SettleInterval(zone="Z1", start=S), at=now(w))
    assert r.events[-1] == {"type": "energy.settled", "zone": "Z1", "start": S, "positions": 2,
                            "missing_readings": 0}
    assert book(w, S).status == "settled"


def test_an_interval_settles_as_its_window_closes_without_readings() -> None:
    w = world()
    orders(w)
    r = ok(w, DAVE, SettleInterval(zone="Z1", start=S), at=settles(S))
    assert [e["type"] for e in r.events][0] == "energy.cleared"  # nobody had cleared it
    assert r.events[-1] == {"type": "energy.settled", "zone": "Z1", "start": S, "positions": 2,
                            "missing_readings": 2}


def test_a_book_whose_orders_were_all_cancelled_clears_and_settles_to_nothing() -> None:
    w = world()
    cancelled(w)
    ok(w, ALICE, CancelOrder(zone="Z1", start=S, seq=1))
    r = ok(w, DAVE, ClearInterval(zone="Z1", start=S), at=gate(S))
    assert r.events == [{"type": "energy.cleared", "zone": "Z1", "start": S, "price": 0, "matched_wh": 0}]
    r = ok(w, DAVE, SettleInterval(zone="Z1", start=S), at=end(S))
    assert r.events == [{"type": "energy.settled", "zone": "Z1", "start": S, "positions": 0, "missing_readings": 0}]
    assert (bal(w, ALICE), bal(w, BOB), held(w)) == (100_000, 100_000, 0)
