"""The uniform-price double auction of one zone and interval: pure integer arithmetic, no state.

``clear(orders)`` finds the most energy that can change hands (highest bids matched with lowest
asks while a bid's price is at least an ask's) and one price for all of it: the midpoint, rounded
down, of the last bid level and the last ask level matched. So no buyer pays more than its bid and
no seller gets less than its ask, and what buyers get adds up to what sellers give.

Orders better than a marginal price are filled whole, worse ones not at all; the orders *at* a
marginal price share what that level gets pro rata to their quantity, rounded down, and the Wh left
by rounding go one each to the level's orders in the order of their ``key`` (the order's
transaction id: the same whatever order orders arrived in). ``fill`` gives one order's share from
the result alone, so the ledger stores the result, not a row per order.
"""

from __future__ import annotations

from itertools import groupby
from typing import Iterable, Literal

import msgspec

from ...core.encoding import Uint

Side = Literal["buy", "sell"]
BUY: Side = "buy"
SELL: Side = "sell"
WH_PER_KWH = 1000


class Offer(msgspec.Struct, frozen=True, gc=False):
    """An order as the auction sees it: price in minor units per kWh, quantity in Wh."""

    key: str  # unique; ranks the order among its price level for the Wh left by rounding
    side: str
    price: int
    wh: int


class Marginal(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The last price level matched on one side: its orders share ``filled`` of ``offered`` Wh."""

    price: Uint
    offered: Uint  # Wh the level's orders asked for in all
    filled: Uint  # Wh the level gets (at most offered)
    extra: Uint  # how many of the level's orders get one Wh more than their pro-rata share
    cut: str = ""  # the key of the last of them, in key order ("" when none)


class Result(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A cleared auction: the price, the energy matched, and each side's marginal level."""

    price: Uint
    matched_wh: Uint
    buy: Marginal | None = None
    sell: Marginal | None = None


NOTHING = Result(0, 0)


def _levels(offers: list[Offer], side: Side) -> list[tuple[int, int]]:
    """(price, Wh) per price level of one side, the best first (bids high to low, asks low to high)."""
    mine = sorted((o.price for o in offers if o.side == side), reverse=side == BUY)
    totals: dict[int, int] = {}
    for o in offers:
        if o.side == side:
            totals[o.price] = totals.get(o.price, 0) + o.wh
    return [(p, totals[p]) for p, _ in groupby(mine)]


def _marginal(offers: list[Offer], side: Side, price: int, offered: int, filled: int) -> Marginal:
    level = sorted((o for o in offers if o.side == side and o.price == price), key=lambda o: o.key)
    extra = filled - sum(o.wh * filled // offered for o in level)
    return Marginal(price, offered, filled, extra, level[extra - 1].key if extra else "")


def clear(orders: Iterable[Offer]) -> Result:
    """The auction's result over ``orders`` (each with a unique key and a positive quantity)."""
    offers = list(orders)
    bids, asks = _levels(offers, BUY), _levels(offers, SELL)
    i = j = 0
    matched = 0
    left_bid = bids[0][1] if bids else 0
    left_ask = asks[0][1] if asks else 0
    last: tuple[int, int] | None = None
    while i < len(bids) and j < len(asks) and bids[i][0] >= asks[j][0]:
        q = min(left_bid, left_ask)
        matched += q
        left_bid -= q
        left_ask -= q
        last = (i, j)
        if left_bid == 0:
            i += 1
            left_bid = bids[i][1] if i < len(bids) else 0
        if left_ask == 0:
            j += 1
            left_ask = asks[j][1] if j < len(asks) else 0
    if last is None:
        return NOTHING
    bi, aj = last
    bid_price, bid_offered = bids[bi]
    ask_price, ask_offered = asks[aj]
    bid_filled = matched - sum(wh for _, wh in bids[:bi])
    ask_filled = matched - sum(wh for _, wh in asks[:aj])
    return Result((bid_price + ask_price) // 2, matched,
                  _marginal(offers, BUY, bid_price, bid_offered, bid_filled),
                  _marginal(offers, SELL, ask_price, ask_offered, ask_filled))


def fill(result: Result, side: str, price: int, wh: int, key: str) -> int:
    """The Wh an order gets from a cleared auction."""
    m = result.buy if side == BUY else result.sell
    if m is None:
        return 0
    if price == m.price:
        return wh * m.filled // m.offered + (1 if m.extra and key <= m.cut else 0)
    better = price > m.price if side == BUY else price < m.price
    return wh if better else 0


def value(wh: int, price: int, *, up: bool) -> int:
    """What ``wh`` Wh cost at ``price`` minor units per kWh, rounded up (what a buyer pays) or down
    (what a seller gets): the rounding never favours the one it is computed for."""
    return -(-wh * price // WH_PER_KWH) if up else wh * price // WH_PER_KWH
