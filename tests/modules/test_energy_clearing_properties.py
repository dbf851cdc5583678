"""Properties of the energy auction (hypothesis): of the pure ``clearing`` functions over random
books, and of clearing on the ledger.

The pure auction (``clear``, ``fill``, ``value``):

- no filled buyer's price is below the clearing price, no filled seller's price above it;
- what buyers get adds up to what sellers give, and to ``matched_wh``;
- every order gets between 0 and its Wh; orders strictly better than their side's marginal price
  are filled whole, worse ones not at all, those at it pro rata (rounded down, one Wh more for the
  first ones by key);
- the matched volume is the most any single price could match (a brute force over the orders'
  prices);
- the result does not depend on the order the offers are given in;
- ``value`` rounds a buyer's cost up and a seller's proceeds down, by less than one unit.

On the ledger (``helpers.energy``, its meters of 1 MW so that no random book goes beyond what a
meter's power moves in an interval, and terms set from the first interval they may still be set
for): the grid never trades beyond its capacities (``import_wh``,
``export_wh``) nor buys more than its operator's account pays for at its export price, and the
clearing holds what it bought (at the clearing price, rounded up) from that account; the book's
clearing is the pure auction of its open orders and the grid's offers, the orders' ``filled_wh`` adds
up; replaying the same blocks on a fresh ledger gives the same state root;
and the same orders submitted in another order (other transactions, so other ids) clear at the same
price and volume, each owner getting the same energy but for the Wh left by rounding at a marginal
price (at most one per order of the owner at that price).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blokauto.modules.energy import queries as eq
from blokauto.modules.energy.clearing import NOTHING, Offer, Result, clear, fill, value
from blokauto.modules.energy.handlers import GRID_KEY, grid_offers
from blokauto.modules.energy.messages import ClearInterval, PlaceOrder, SetTerms, SettleInterval
from blokauto.modules.energy.state import Terms
from blokauto.modules.payments.messages import Redeem

from helpers.energy import (ALICE, BOB, CAROL, DAVE, GRID, bal, book, end, gate, held, now, ok, order, query, replay,
                            settles, terms_start, world)

PURE = settings(max_examples=400, deadline=None)
LEDGER = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- the pure auction

def offers(max_size: int = 12, prices: int = 12, wh: int = 60) -> Any:
    """Random books: a few price levels (so ties at a marginal price are common), small quantities
    (so pro-rata shares round), unique keys."""
    one = st.tuples(st.sampled_from(["buy", "sell"]), st.integers(0, prices), st.integers(1, wh))
    return st.lists(one, max_size=max_size).flatmap(lambda rows: st.permutations(range(len(rows))).map(
        lambda ks: [Offer(f"{k:02x}" + "ab" * 31, side, price, q) for k, (side, price, q) in zip(ks, rows)]))


def fills(result: Result, book: list[Offer]) -> dict[str, int]:
    return {o.key: fill(result, o.side, o.price, o.wh, o.key) for o in book}


def most_any_price_matches(book: list[Offer]) -> int:
    """The brute force: at each order's price p, buyers want every bid at p or more and sellers give
    every ask at p or less; the most energy any one price matches."""
    best = 0
    for p in {o.price for o in book}:
        demand = sum(o.wh for o in book if o.side == "buy" and o.price >= p)
        supply = sum(o.wh for o in book if o.side == "sell" and o.price <= p)
        best = max(best, min(demand, supply))
    return best


@PURE
@given(offers())
def test_no_filled_buyer_pays_more_than_its_bid_nor_seller_gets_less_than_its_ask(book: list[Offer]) -> None:
    result = clear(book)
    for o in book:
        if fill(result, o.side, o.price, o.wh, o.key):
            assert (o.price >= result.price) if o.side == "buy" else (o.price <= result.price), (o, result)


@PURE
@given(offers())
def test_buyers_get_what_sellers_give_and_every_order_between_nothing_and_its_wh(book: list[Offer]) -> None:
    result = clear(book)
    got = fills(result, book)
    assert all(0 <= got[o.key] <= o.wh for o in book)
    bought = sum(got[o.key] for o in book if o.side == "buy")
    sold = sum(got[o.key] for o in book if o.side == "sell")
    assert bought == sold == result.matched_wh


@PURE
@given(offers())
def test_better_than_the_marginal_price_filled_whole_worse_not_at_all_at_it_pro_rata(book: list[Offer]) -> None:
    result = clear(book)
    if result.matched_wh == 0:
        assert result == NOTHING
        assert all(fill(result, o.side, o.price, o.wh, o.key) == 0 for o in book)
        return
    assert result.buy is not None and result.sell is not None
    assert result.sell.price <= result.price <= result.buy.price  # the midpoint, rounded down
    assert result.price == (result.buy.price + result.sell.price) // 2
    for side, m in (("buy", result.buy), ("sell", result.sell)):
        level = sorted((o for o in book if o.side == side and o.price == m.price), key=lambda o: o.key)
        assert m.offered == sum(o.wh for o in level) and 0 < m.filled <= m.offered
        for o in book:
            if o.side != side or o.price == m.price:
                continue
            better = o.price > m.price if side == "buy" else o.price < m.price
            assert fill(result, side, o.price, o.wh, o.key) == (o.wh if better else 0)
        shares = [fill(result, side, o.price, o.wh, o.key) for o in level]
        floors = [o.wh * m.filled // m.offered for o in level]
        extra = [s - f for s, f in zip(shares, floors)]
        assert set(extra) <= {0, 1}
        assert extra == sorted(extra, reverse=True)  # the Wh left by rounding go to the first keys
        assert sum(extra) == m.extra < len(level)


@PURE
@given(offers())
def test_the_volume_matched_is_the_most_any_price_matches(book: list[Offer]) -> None:
    assert clear(book).matched_wh == most_any_price_matches(book)


@PURE
@given(offers().flatmap(lambda b: st.tuples(st.just(b), st.permutations(b))))
def test_the_result_does_not_depend_on_the_order_offers_are_given_in(books: tuple[list[Offer], list[Offer]]) -> None:
    book, shuffled = books
    result = clear(book)
    assert clear(shuffled) == result
    assert fills(clear(shuffled), shuffled) == fills(result, book)


@PURE
@given(st.integers(0, 1_000_000_000), st.integers(0, 1_000_000))
def test_value_rounds_what_a_buyer_pays_up_and_what_a_seller_gets_down(wh: int, price: int) -> None:
    up, down = value(wh, price, up=True), value(wh, price, up=False)
    exact = wh * price
    assert down * 1000 <= exact <= up * 1000
    assert up - down == (0 if exact % 1000 == 0 else 1)


def test_a_book_with_one_side_empty_or_bids_below_asks_matches_nothing() -> None:
    a = "aa" * 32
    assert clear([]) == NOTHING
    assert clear([Offer(a, "buy", 50, 10)]) == NOTHING
    assert clear([Offer(a, "buy", 9, 10), Offer("bb" * 32, "sell", 10, 10)]) == NOTHING


def test_three_equal_bids_share_two_wh_by_key() -> None:
    """Three bids of 1 Wh at one price for 2 Wh: the two lowest keys get them."""
    book = [Offer("03" * 32, "buy", 20, 1), Offer("01" * 32, "buy", 20, 1), Offer("02" * 32, "buy", 20, 1),
            Offer("ff" * 32, "sell", 10, 2)]
    result = clear(book)
    assert (result.price, result.matched_wh) == (15, 2)
    assert fills(result, book) == {"03" * 32: 0, "01" * 32: 1, "02" * 32: 1, "ff" * 32: 2}


def test_the_grid_ranks_after_every_order_at_a_marginal_price() -> None:
    """At the grid's import price, an order and the grid share pro rata; the Wh left goes to the order."""
    terms = Terms(import_wh=3, export_wh=0, import_price=30, export_price=0, short_price=40, long_price=5)
    book = [Offer("ee" * 32, "sell", 30, 3), Offer("11" * 32, "buy", 35, 3), *grid_offers(terms, 0)]
    result = clear(book)
    assert fills(result, book) == {"ee" * 32: 2, "11" * 32: 3, GRID_KEY: 1}


# ---------------------------------------------------------------- on the ledger

METERS = [("house-a", ALICE), ("cp-b", BOB), ("v2g-c", CAROL)]
#: 1 MW each: 250,000 Wh an interval, beyond any random book's orders on one meter's side (10 x 20,000 Wh).
POWER = {meter: 1_000_000 for meter, _ in METERS}

ledger_orders = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["buy", "sell"]), st.integers(0, 60),
                                   st.integers(1, 20_000)), min_size=1, max_size=10)
#: Consistent terms: export_price < import_price <= short_price, long_price <= export_price.
ledger_terms = st.builds(
    lambda imp, exp, ip, gap, above, lp: Terms(imp, exp, ip, max(ip - gap, 0), ip + above, min(lp, max(ip - gap, 0))),
    st.sampled_from([0, 1, 5_000, 50_000]), st.sampled_from([0, 1, 5_000, 20_000]), st.integers(1, 60),
    st.integers(1, 60), st.integers(0, 40), st.integers(0, 80))
#: What the grid operator's account holds when the interval clears (None: its 10,000.00).
grid_funds = st.sampled_from([None, 0, 1, 40, 2_000])


def play(terms: Terms, rows: list[tuple[int, str, int, int]], *, settle: bool = False,
         funds: int | None = None) -> Any:
    """A world of 1 MW meters with ``terms`` from interval S (the first whose terms may still be set),
    the grid operator's account brought down to ``funds``, ``rows`` placed on S (one block each),
    cleared at gate."""
    w = world(power=POWER)
    s = terms_start(w)
    ok(w, GRID, SetTerms(zone="Z1", start=s, terms=terms))
    if funds is not None:
        ok(w, GRID, Redeem(currency="EUR", amount=bal(w, "org:grid") - funds, payer="org:grid"))
    for who, side, price, wh in rows:
        meter, owner = METERS[who]
        ok(w, owner, PlaceOrder(meter=meter, start=s, side=side, price=price, wh=wh))
    ok(w, DAVE, ClearInterval(zone="Z1", start=s), at=gate(s))
    if settle:
        ok(w, DAVE, SettleInterval(zone="Z1", start=s), at=settles(s))
    return w, s


def owner_energy(w: Any, s: int) -> Counter:
    """Wh each owner bought (negative) and sold (positive) in interval ``s``."""
    out: Counter = Counter()
    for seq in range(1, book(w, s).orders + 1):
        o = order(w, s, seq)
        got = query(w, "order", eq.OrderQuery(zone="Z1", start=s, seq=seq))["filled_wh"]
        out[o.owner] += got if o.side == "sell" else -got
    return out


@LEDGER
@given(ledger_terms, ledger_orders, grid_funds)
def test_the_grid_trades_within_its_capacities_and_its_funds_and_the_ledger_clears_as_the_pure_auction(
        terms: Terms, rows: list[tuple[int, str, int, int]], funds: int | None) -> None:
    w, s = play(terms, rows, funds=funds)
    b = book(w, s)
    c = b.clearing
    had = 1_000_000 if funds is None else funds
    assert c.grid_import_wh <= terms.import_wh and c.grid_export_wh <= terms.export_wh
    if terms.export_price:
        assert c.grid_export_wh <= had * 1000 // terms.export_price
    # what the grid bought is held from its operator's account until settlement
    assert c.grid_held == value(c.grid_export_wh, c.result.price, up=True) <= had
    assert bal(w, "org:grid") == had - c.grid_held
    placed = [order(w, s, seq) for seq in range(1, b.orders + 1)]
    assert held(w) == sum(o.held for o in placed) + c.grid_held
    assert c.result == clear([Offer(o.key, o.side, o.price, o.wh) for o in placed] + grid_offers(terms, had))
    got = [query(w, "order", eq.OrderQuery(zone="Z1", start=s, seq=o.seq)) for o in placed]
    assert all(g["price_cleared"] == c.result.price and 0 <= g["filled_wh"] <= g["wh"] for g in got)
    bought = sum(g["filled_wh"] for g in got if g["side"] == "buy") + c.grid_export_wh
    sold = sum(g["filled_wh"] for g in got if g["side"] == "sell") + c.grid_import_wh
    assert bought == sold == c.result.matched_wh


@LEDGER
@given(ledger_terms, ledger_orders, grid_funds)
def test_replaying_the_same_blocks_on_a_fresh_ledger_gives_the_same_state_root(
        terms: Terms, rows: list[tuple[int, str, int, int]], funds: int | None) -> None:
    w, _ = play(terms, rows, settle=True, funds=funds)
    again = replay(w)
    assert again.root == w.root
    assert again.ledger.index == w.ledger.index


@LEDGER
@given(ledger_terms, ledger_orders.flatmap(lambda rows: st.tuples(st.just(rows), st.permutations(rows))), grid_funds)
def test_the_same_orders_in_another_order_clear_at_the_same_price_volume_and_energy_per_owner(
        terms: Terms, books: tuple[list, list], funds: int | None) -> None:
    rows, shuffled = books
    w1, s = play(terms, rows, funds=funds)
    w2, _ = play(terms, shuffled, funds=funds)
    r1, r2 = book(w1, s).clearing.result, book(w2, s).clearing.result
    assert (r1.price, r1.matched_wh) == (r2.price, r2.matched_wh)
    # the grid ranks after every order at a marginal price, so it never gets a Wh left by rounding
    assert (book(w1, s).clearing.grid_import_wh, book(w1, s).clearing.grid_export_wh) == (
        book(w2, s).clearing.grid_import_wh, book(w2, s).clearing.grid_export_wh)
    e1, e2 = owner_energy(w1, s), owner_energy(w2, s)
    # the Wh left by rounding at a marginal price go by transaction id: at most one per order there
    at_margin = Counter(OWNER_OF[who] for who, side, price, _ in rows
                        if (side == "buy" and r1.buy and price == r1.buy.price and r1.buy.extra)
                        or (side == "sell" and r1.sell and price == r1.sell.price and r1.sell.extra))
    for owner in set(e1) | set(e2):
        assert abs(e1[owner] - e2[owner]) <= at_margin[owner], (owner, e1, e2)


OWNER_OF = {i: owner.did for i, (_, owner) in enumerate(METERS)}


def test_a_permuted_book_with_one_owner_at_the_margin_gets_the_same_wh() -> None:
    """An example where rounding matters: 3 bids of 1 Wh at 20 (Alice twice, Bob once) for Carol's 2 Wh;
    whoever's keys rank first gets them, but the price and volume never change."""
    rows = [(0, "buy", 20, 1), (0, "buy", 20, 1), (1, "buy", 20, 1), (2, "sell", 10, 2)]
    terms = Terms(0, 0, 0, 0, 40, 0)
    w1, s = play(terms, rows)
    w2, _ = play(terms, rows[::-1])
    assert book(w1, s).clearing.result.price == book(w2, s).clearing.result.price == 15
    assert owner_energy(w1, s)[CAROL.did] == owner_energy(w2, s)[CAROL.did] == 2
    assert now(w1) == now(w2) == gate(s)
    assert end(s) > gate(s)
