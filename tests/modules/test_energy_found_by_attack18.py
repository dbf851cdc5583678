"""What the outside attack on energy trading found (helper-39, from the docs alone), each a test:

- selling energy a meter never delivers, or buying energy it never takes, earned money whenever the
  clearing price lay above the short price or below the long price (terms the ledger accepted, all-zero
  terms included): short now pays at least the clearing price and long is paid at most it;
- terms set for an interval years ahead froze a zone's terms until then: terms go no further ahead
  than orders can (``too_far_ahead``);
- a revoked meter's device key still read the meter's record, readings and positions.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blokauto.core.access import ReadRefused
from blokauto.modules.energy import queries as eq
from blokauto.modules.energy.messages import PlaceOrder, RevokeMeter, SetTerms, SettleInterval, SubmitReading
from blokauto.modules.energy.state import Terms

from helpers.energy import (ALICE, BOB, DAVE, GRID, HOUSE_KEY, METER_KEYS, METERCO, OWNERS, TERMS, EnergyView,
                            accounts, caller_of, end, ok, position, query, send, terms_start, world)


def _round(w, s, orders, readings):
    for meter, side, price, wh in orders:
        ok(w, OWNERS[meter], PlaceOrder(meter=meter, start=s, side=side, price=price, wh=wh))
    t = end(s)
    for meter, (imported, exported) in readings.items():
        ok(w, METER_KEYS[meter], SubmitReading(meter=meter, start=s, imported_wh=imported, exported_wh=exported), at=t)
        t += 1
    before = accounts(w)
    ok(w, DAVE, SettleInterval(zone="Z1", start=s), at=t)
    after = accounts(w)
    return {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}


@pytest.mark.parametrize("terms", [TERMS, Terms(0, 0, 0, 0, 0, 0), Terms(1_000, 0, 30, 50, 50, 50)],
                         ids=["zone_terms", "all_zero_terms", "export_price_above_import_without_export"])
def test_selling_energy_never_delivered_earns_nothing_whatever_the_price(terms: Terms) -> None:
    """Alice asks 3 kWh at 0 against Bob's bid at 2.00 EUR/kWh (price far above the short price) and
    delivers nothing; Bob takes what he bought."""
    w = world()
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=terms))
    moved = _round(w, s, [("house-a", "sell", 0, 3_000), ("cp-b", "buy", 200, 3_000)],
                   {"house-a": (0, 0), "cp-b": (3_000, 0)})
    a = position(w, "house-a", s)
    assert a.sold_wh == 3_000 and a.short_wh == 3_000
    assert a.short_charge >= a.received  # at least the clearing price per kWh not delivered
    assert moved.get(ALICE.did, 0) <= 0


@pytest.mark.parametrize("terms", [TERMS, Terms(1_000, 0, 30, 50, 50, 50)], ids=["zone_terms", "long_above_price"])
def test_buying_energy_never_taken_earns_nothing_whatever_the_price(terms: Terms) -> None:
    """Bob bids 1 kWh at 0.10 against Alice's ask at 0.10 and takes nothing: his long credit is at most
    what he paid, even where the long price is above the clearing price."""
    w = world()
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=terms))
    moved = _round(w, s, [("house-a", "sell", 10, 1_000), ("cp-b", "buy", 10, 1_000)],
                   {"house-a": (0, 1_000), "cp-b": (0, 0)})
    b = position(w, "cp-b", s)
    assert b.bought_wh == 1_000 and b.long_wh == 1_000 and b.long_credit <= b.paid
    assert moved.get(BOB.did, 0) <= b.paid  # his bid's hold left his account at the order: he gets back no more


@settings(max_examples=40, deadline=None)
@given(ask=st.integers(0, 300), bid=st.integers(0, 300), short=st.integers(0, 100), long_=st.integers(0, 100),
       wh=st.integers(1, 5_000))
def test_a_meter_that_moves_nothing_never_gains_from_its_trades(ask: int, bid: int, short: int, long_: int,
                                                                wh: int) -> None:
    """Whatever the prices and terms (consistent or not with the clearing price), a seller that delivers
    nothing and a buyer that takes nothing end with no more money than they started with."""
    short, long_ = max(short, long_), min(short, long_)
    w = world()
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=Terms(0, 0, 0, long_, short, long_)))
    wh = min(wh, 5_000)
    moved = _round(w, s, [("house-a", "sell", ask, wh), ("cp-b", "buy", bid, wh)],
                   {"house-a": (0, 0), "cp-b": (0, 0)})
    assert moved.get(ALICE.did, 0) <= 0
    b = position(w, "cp-b", s)
    assert b.received + b.long_credit - b.long_unpaid <= b.paid + b.short_charge


def test_terms_go_no_further_ahead_than_orders_can() -> None:
    w = world()
    far = (w.ledger.head.time + 8 * 86_400_000) // 900_000 * 900_000
    r = send(w, GRID, SetTerms(zone="Z1", start=far, terms=TERMS))
    assert (r.ok, r.code) == (False, "too_far_ahead")
    ok(w, GRID, SetTerms(zone="Z1", start=terms_start(w), terms=TERMS))  # nearer terms can still be set


def test_a_revoked_meters_device_key_reads_its_meter_no_more() -> None:
    w = world()
    view, params = EnergyView(w), eq.MeterQuery(meter="house-a")
    eq.METER_PARTIES.check(view, caller_of(w, HOUSE_KEY), params, "the meter")  # in service: it reads
    ok(w, METERCO, RevokeMeter(meter="house-a", reason="stolen"))
    with pytest.raises(ReadRefused):
        eq.METER_PARTIES.check(EnergyView(w), caller_of(w, HOUSE_KEY), params, "the meter")
    eq.METER_PARTIES.check(EnergyView(w), caller_of(w, ALICE), params, "the meter")  # its owner still reads
