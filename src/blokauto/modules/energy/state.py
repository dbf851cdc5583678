"""Energy state: grid zones and their terms, meters, order books, orders, readings and settled
positions; every quantity an integer number of Wh, every price integer minor units per kWh."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import MAX_SAFE_INT, Uint
from ...core.state import StateMap
from . import keys
from .clearing import Result

Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z", description="an identifier")]
#: Most Wh one order or one reading may carry (1 GWh), and most minor units a kWh may cost.
MAX_WH = 1_000_000_000
MAX_PRICE = 1_000_000
Wh = Annotated[int, msgspec.Meta(ge=0, le=MAX_WH, description="energy in Wh")]
Price = Annotated[int, msgspec.Meta(ge=0, le=MAX_PRICE, description="minor units of the zone's currency per kWh")]
MeterKind = Literal["home", "charge_point", "v2g_charger"]
BookStatus = Literal["open", "cleared", "settled"]
OrderStatus = Literal["open", "cancelled"]
DAY_MS = 86_400_000


class Terms(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the grid operator sets for a zone from one interval on: how much energy may flow into
    (import) and out of (export) the zone per interval, the prices the grid sells and buys at, and the
    imbalance prices a meter pays when it delivers or takes less than it traded (short) and is paid
    when it delivers or takes more (long)."""

    import_wh: Wh
    export_wh: Wh
    import_price: Price  # the grid sells into the zone at this price (up to import_wh)
    export_price: Price  # the grid buys from the zone at this price (up to export_wh)
    short_price: Price
    long_price: Price


class ZoneTerms(msgspec.Struct, frozen=True):
    zone: str
    start: Uint  # the first interval these terms apply to
    terms: Terms
    height: Uint


class Zone(msgspec.Struct, frozen=True):
    """A grid zone: its operator (an organisation with the ``grid`` role), its currency and clock."""

    id: str
    operator: str
    currency: str
    interval_ms: Uint
    gate_closure_ms: Uint  # orders for an interval close this long before it starts
    reading_window_ms: Uint  # readings of an interval are taken until this long after it ends
    created: Uint  # height
    terms: list[Uint] = []  # starts of its terms, oldest first


class Meter(msgspec.Struct, frozen=True):
    """A metering point: a home meter, a charge point or a vehicle's bidirectional charger, registered
    by its operator with the device key that signs its readings; ``owner`` is the account it trades
    for (a did:key or org:<id>)."""

    id: str
    operator: str
    zone: str
    kind: str
    key: str
    owner: str
    max_power_w: Uint
    registered: Uint  # height
    vin: str = ""
    revoked: Uint = 0  # height of the revocation (0: in service)
    reason: str = ""


class MeterOrders(msgspec.Struct, frozen=True):
    """What one meter's open orders of one interval add up to, per side (each at most what its power
    moves in an interval)."""

    bid_wh: Uint = 0
    ask_wh: Uint = 0


class Order(msgspec.Struct, frozen=True):
    """A bid (buy) or ask (sell) for one interval of one zone, placed for a meter's owner."""

    seq: Uint
    meter: str
    owner: str
    side: str
    price: Uint
    wh: Uint
    key: str  # the placing transaction's id (hex): ranks the order at a marginal price
    held: Uint  # what a bid holds of the owner's money until the interval settles
    height: Uint
    status: OrderStatus = "open"


class Settlement(msgspec.Struct, frozen=True):
    """What an interval's settlement moved, in minor units: buyers paid, sellers were paid, short
    imbalances paid (and what meters could not pay), long imbalances paid; and how many positions
    settled and how many had no reading."""

    positions: Uint
    missing_readings: Uint
    bought_paid: Uint
    sold_paid: Uint
    short_paid: Uint
    short_unpaid: Uint
    long_paid: Uint
    height: Uint
    time: Uint
    long_unpaid: Uint = 0  # long credits the operator's account could not pay


class Clearing(msgspec.Struct, frozen=True):
    result: Result
    terms_start: Uint  # which terms the clearing used
    orders: Uint  # open orders it cleared
    grid_import_wh: Uint  # what the grid sold into the zone
    grid_export_wh: Uint  # what the grid bought from it
    height: Uint
    time: Uint
    grid_held: Uint = 0  # what the operator's account holds for the grid's purchase until settlement


class Book(msgspec.Struct, frozen=True):
    """An interval's order book in a zone: ``orders`` placed (numbered 1..orders), open counts and
    quantities per side, and, once done, its clearing and settlement."""

    zone: str
    start: Uint
    orders: Uint = 0
    open_bids: Uint = 0
    open_asks: Uint = 0
    bid_wh: Uint = 0
    ask_wh: Uint = 0
    status: BookStatus = "open"
    clearing: Clearing | None = None
    settlement: Settlement | None = None


class Reading(msgspec.Struct, frozen=True):
    """A meter's signed reading of one interval: Wh taken from and given to the grid."""

    meter: str
    start: Uint
    imported_wh: Uint
    exported_wh: Uint
    key: str
    height: Uint


class Position(msgspec.Struct, frozen=True):
    """How one meter's trades of an interval settled: what it bought and sold, what its reading says
    (``read`` False: none, and a meter that traded is counted as having drawn its most power from the
    grid the whole interval), and the money: paid for what it
    bought, paid for what it sold, the imbalance (``short_wh`` at the short price, ``long_wh`` at the
    long price), any short charge its account could not cover (``unpaid``) and any long credit the
    operator's could not (``long_unpaid``)."""

    zone: str
    start: Uint
    meter: str
    owner: str
    bought_wh: Uint
    sold_wh: Uint
    read: bool
    net_export_wh: int  # exported - imported (without a reading: the worst it could have read, or 0 untraded)
    paid: Uint  # for what it bought (rounded up)
    received: Uint  # for what it sold (rounded down)
    short_wh: Uint
    short_charge: Uint
    long_wh: Uint
    long_credit: Uint
    unpaid: Uint = 0  # of its short charge
    refunded: Uint = 0  # what its bids held beyond their price
    height: Uint = 0
    long_unpaid: Uint = 0  # of its long credit: what the operator's account could not pay


def power_limit(meter: Meter, zone: Zone) -> int:
    """The most Wh a meter can move in one interval of its zone at its most power."""
    return meter.max_power_w * zone.interval_ms // 3_600_000


def interval_end(zone: Zone, start: int) -> int:
    return start + zone.interval_ms


def gate_closes(zone: Zone, start: int) -> int:
    """The block time from which an interval takes no more orders or cancellations."""
    return start - zone.gate_closure_ms


def settle_from(zone: Zone, start: int) -> int:
    """The block time from which an interval settles even with readings missing."""
    return start + zone.interval_ms + zone.reading_window_ms


ZONES = StateMap(keys.ZONE, Zone)
TERMS = StateMap(keys.TERMS, ZoneTerms)
METERS = StateMap(keys.METER, Meter)
METER_KEYS = StateMap(keys.METER_KEY, str)
METER_ORDERS = StateMap(keys.METER_ORDERS, MeterOrders)
BOOKS = StateMap(keys.BOOK, Book)
ORDERS = StateMap(keys.ORDER, Order)
READINGS = StateMap(keys.READING, Reading)
POSITIONS = StateMap(keys.POSITION, Position)

assert MAX_WH * MAX_PRICE < MAX_SAFE_INT  # an order's value fits a Uint before dividing by 1,000
