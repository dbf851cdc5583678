"""Energy rules. The framework checked signers and roles; these rules say whose zone, meter, order
and reading it is, and when an interval takes orders, clears and settles. Every amount is an
integer (Wh, minor units per kWh, minor units); no clock but the block time."""

from __future__ import annotations

from bisect import bisect_right
from typing import Iterator

import msgspec

from ...core.access import ORG_PREFIX
from ...core.crypto import check_did
from ...core.errors import InvalidKey
from ...core.module import ANYONE, Context
from ...core.state import Overlay, StateReader
from . import errors
from .clearing import BUY, SELL, Offer, Result, clear, fill, value
from .messages import (CancelOrder, ClearInterval, IntervalCleared, IntervalSettled, MeterChanged, MeterRegistered,
                       OpenZone, OrderCancelled, OrderPlaced, PlaceOrder, ReadingSubmitted, RegisterMeter,
                       RevokeMeter, RotateMeterKey, SetTerms, SettleInterval, SubmitReading, TermsSet, ZoneOpened)
from .spec import (BOOK_MAX_ORDERS, METER_LIST, ORDER_HORIZON_MS, ORDER_LIST, POSITION_LIST, TERMS_NOTICE_MS,
                   ZONE_LIST, Organisations, Payments, Vehicles, module)
from .state import (BOOKS, DAY_MS, METER_KEYS, METER_ORDERS, METERS, ORDERS, POSITIONS, READINGS, TERMS, ZONES, Book,
                    Clearing, Meter, MeterOrders, Order, Position, Reading, Settlement, Terms, Zone, ZoneTerms,
                    gate_closes, interval_end, power_limit, settle_from)

#: The account name under which payments holds bids' money for this module.
HOLDER = "energy"
#: The rank key of the grid's own offers at a marginal price: after every order's (hex) key.
GRID_KEY = "~grid"


def _org(ctx: Context) -> str | None:
    return ctx.member.org if ctx.member is not None else None


def _acts_for(ctx: Context, owner: str) -> bool:
    """Whether the sender is the account ``owner``: that key, or a key of the organisation org:<id>."""
    if owner.startswith(ORG_PREFIX):
        return _org(ctx) == owner[len(ORG_PREFIX):]
    return ctx.sender == owner


def zone_of(state: StateReader, zone: str) -> Zone:
    z = ZONES.get(state, zone)
    if z is None:
        raise errors.UnknownZone(zone=zone)
    return z


def meter_of(state: StateReader, meter: str) -> Meter:
    m = METERS.get(state, meter)
    if m is None:
        raise errors.UnknownMeter(meter=meter)
    return m


def _in_service(m: Meter) -> Meter:
    if m.revoked:
        raise errors.MeterRevoked(meter=m.id, height=m.revoked, reason=m.reason or "no reason given")
    return m


def first_open(zone: Zone, time: int) -> int:
    """The start of the first interval whose gate is still open at block time ``time``."""
    return ((time + zone.gate_closure_ms) // zone.interval_ms + 1) * zone.interval_ms


def _interval(zone: Zone, start: int, time: int) -> int:
    if start % zone.interval_ms:
        raise errors.InvalidInterval(start=start, zone=zone.id, interval_ms=zone.interval_ms,
                                     next=first_open(zone, time))
    return start


def _gate_open(zone: Zone, start: int, time: int) -> None:
    if time >= gate_closes(zone, start):
        raise errors.GateClosed(start=start, zone=zone.id, closed=gate_closes(zone, start), time=time,
                                gate_closure_ms=zone.gate_closure_ms)


def check_terms(t: Terms) -> Terms:
    """The grid never buys from the zone dearer than it sells into it (it would trade with itself); a
    meter short pays at least the grid's import price and a meter long is paid at most its export price
    (an imbalance never pays better than trading)."""
    if t.import_wh and t.export_wh and t.export_price >= t.import_price:
        raise errors.InvalidTerms(reason=f"the grid would buy at {t.export_price} and sell at {t.import_price}: "
                                         f"export_price must be below import_price")
    if t.long_price > t.short_price:
        raise errors.InvalidTerms(reason=f"long_price {t.long_price} is above short_price {t.short_price}")
    if t.short_price < t.import_price:
        raise errors.InvalidTerms(reason=f"short_price {t.short_price} is below import_price {t.import_price}: being "
                                         f"short would be cheaper than buying")
    if t.long_price > t.export_price:
        raise errors.InvalidTerms(reason=f"long_price {t.long_price} is above export_price {t.export_price}: being "
                                         f"long would pay more than selling")
    return t


def terms_for(state: StateReader, zone: Zone, start: int) -> ZoneTerms:
    """The terms in force for the interval at ``start`` (the latest set from it or before)."""
    i = bisect_right(zone.terms, start)
    found = TERMS.get(state, zone.id, zone.terms[max(i - 1, 0)])
    assert found is not None, f"zone {zone.id} lists terms it does not hold"
    return found


# ---------------------------------------------------------------- zones


@module.message(OpenZone, roles={"grid"})
def open_zone(state: Overlay, ctx: Context, msg: OpenZone) -> None:
    """A zone id is taken once; its currency is one payments carries; its interval divides a day (so
    intervals line up with UTC days); its reading window is not empty (readings are taken from an
    interval's end until the window closes); its first terms apply from the first interval still open."""
    org = _org(ctx)
    assert org is not None
    existing = ZONES.get(state, msg.zone)
    if existing is not None:
        raise errors.ZoneExists(zone=msg.zone, operator=existing.operator, height=existing.created)
    if ctx.need(Payments).supply(state, msg.currency) is None:
        raise errors.InvalidTerms(reason=f"no issuer issues {msg.currency} on this ledger (payments.register_currency)")
    if DAY_MS % msg.interval_ms:
        raise errors.InvalidTerms(reason=f"interval_ms {msg.interval_ms} does not divide a day ({DAY_MS} ms)")
    if not msg.reading_window_ms:
        raise errors.InvalidTerms(reason="a reading window of 0 ms takes no reading (meters read an interval from its "
                                         "end until its window closes): give reading_window_ms of at least 1")
    check_terms(msg.terms)
    zone = Zone(msg.zone, org, msg.currency, msg.interval_ms, msg.gate_closure_ms, msg.reading_window_ms, ctx.height)
    start = first_open(zone, ctx.time)
    TERMS.put(state, ZoneTerms(msg.zone, start, msg.terms, ctx.height), msg.zone, start)
    ZONES.put(state, msgspec.structs.replace(zone, terms=[start]), msg.zone)
    ctx.index_put(ZONE_LIST, zone=msg.zone, operator=org, currency=msg.currency)
    ctx.emit(ZoneOpened(zone=msg.zone, operator=org))
    ctx.emit(TermsSet(zone=msg.zone, start=start))


@module.message(SetTerms, roles={"grid"})
def set_terms(state: Overlay, ctx: Context, msg: SetTerms) -> None:
    """The zone's operator; from an interval whose gate closes at least ``energy_terms_notice_ms`` after
    the block (participants can still cancel orders placed under the old terms), no later than orders can
    be placed (``energy_order_horizon_ms``) and no earlier than the latest terms (terms set for the same
    interval are replaced)."""
    zone = zone_of(state, msg.zone)
    if _org(ctx) != zone.operator:
        raise errors.NotZoneOperator(zone=zone.id, operator=zone.operator)
    start = _interval(zone, msg.start, ctx.time)
    horizon = ctx.param(ORDER_HORIZON_MS.name)
    if start > ctx.time + horizon:  # terms for intervals nobody can order yet would block every change till then
        raise errors.TooFarAhead(start=start, horizon_ms=horizon, time=ctx.time)
    notice = ctx.param(TERMS_NOTICE_MS.name)
    if ctx.time + notice >= gate_closes(zone, start):
        raise errors.TermsTooLate(start=start, zone=zone.id, deadline=gate_closes(zone, start) - notice - 1,
                                  notice_ms=notice, time=ctx.time)
    latest = zone.terms[-1]
    if start < latest:
        raise errors.InvalidTerms(reason=f"terms are set from interval {latest} on; set new terms from it or later")
    check_terms(msg.terms)
    TERMS.put(state, ZoneTerms(zone.id, start, msg.terms, ctx.height), zone.id, start)
    if start != latest:
        ZONES.put(state, msgspec.structs.replace(zone, terms=[*zone.terms, start]), zone.id)
    ctx.emit(TermsSet(zone=zone.id, start=start))


# ---------------------------------------------------------------- meters


def _check_owner(state: StateReader, ctx: Context, owner: str) -> None:
    if owner.startswith(ORG_PREFIX):
        if ctx.need(Organisations).org_roles(state, owner[len(ORG_PREFIX):]) is None:
            raise errors.InvalidMeterOwner(owner=owner, reason="it names no active organisation")
        return
    try:
        check_did(owner)
    except InvalidKey as err:
        raise errors.InvalidMeterOwner(owner=owner, reason=str(err.detail.get("reason", "not a did:key"))) from None


def _device_key(state: StateReader, ctx: Context, meter: str, key: str, owner: str) -> str:
    """A usable key that signs for no other meter and is not the meter owner's own (for an organisation:
    none of its member keys, which place its orders)."""
    check_did(key)
    member = ctx.need(Organisations).signer(state, key) if owner.startswith(ORG_PREFIX) else None
    if key == owner or (member is not None and ORG_PREFIX + member.org == owner):
        raise errors.MeterKeyIsOwner(meter=meter, key=key)
    other = METER_KEYS.get(state, key)
    if other is not None:
        raise errors.MeterKeyInUse(key=key, meter=other)
    return key


@module.message(RegisterMeter, roles={"energy", "charging", "grid"})
def register_meter(state: Overlay, ctx: Context, msg: RegisterMeter) -> None:
    """A meter id is registered once, in a zone on the ledger, with a usable device key of its own (no
    other meter's, not its owner's), an owner that can hold an account, and (if it names one) a vehicle
    on the ledger."""
    org = _org(ctx)
    assert org is not None
    existing = METERS.get(state, msg.meter)
    if existing is not None:
        raise errors.MeterExists(meter=msg.meter, operator=existing.operator)
    zone_of(state, msg.zone)
    _check_owner(state, ctx, msg.owner)
    _device_key(state, ctx, msg.meter, msg.key, msg.owner)
    if msg.vin:
        ctx.need(Vehicles).require_vehicle(state, msg.vin)
    METERS.put(state, Meter(msg.meter, org, msg.zone, msg.kind, msg.key, msg.owner, msg.max_power_w, ctx.height,
                            msg.vin), msg.meter)
    METER_KEYS.put(state, msg.meter, msg.key)
    ctx.index_put(METER_LIST, meter=msg.meter, zone=msg.zone, operator=org, owner=msg.owner, kind=msg.kind, vin=msg.vin)
    ctx.emit(MeterRegistered(meter=msg.meter, zone=msg.zone, operator=org, owner=msg.owner))


def _operated(state: StateReader, ctx: Context, meter: str) -> Meter:
    m = _in_service(meter_of(state, meter))
    if _org(ctx) != m.operator:
        raise errors.NotMeterOperator(meter=m.id, operator=m.operator)
    return m


@module.message(RotateMeterKey, roles={"energy", "charging", "grid"})
def rotate_meter_key(state: Overlay, ctx: Context, msg: RotateMeterKey) -> None:
    """The meter's operator, for a meter in service, to a usable key no meter signs with (this one
    included) and not its owner's."""
    m = _operated(state, ctx, msg.meter)
    _device_key(state, ctx, m.id, msg.key, m.owner)
    METERS.put(state, msgspec.structs.replace(m, key=msg.key), m.id)
    METER_KEYS.delete(state, m.key)
    METER_KEYS.put(state, m.id, msg.key)
    ctx.emit(MeterChanged(meter=m.id, operator=m.operator, owner=m.owner, change="key_rotated"))


@module.message(RevokeMeter, roles={"energy", "charging", "grid"})
def revoke_meter(state: Overlay, ctx: Context, msg: RevokeMeter) -> None:
    """The meter's operator; its open orders stay in their books (they clear and settle; a position
    without a reading counts short)."""
    m = _operated(state, ctx, msg.meter)
    METERS.put(state, msgspec.structs.replace(m, revoked=ctx.height, reason=msg.reason), m.id)
    ctx.emit(MeterChanged(meter=m.id, operator=m.operator, owner=m.owner, change="revoked"))


# ---------------------------------------------------------------- orders


@module.message(PlaceOrder, roles=ANYONE)
def place_order(state: Overlay, ctx: Context, msg: PlaceOrder) -> None:
    """For a meter in service, by a key acting for its owner; for an interval of the meter's zone whose
    gate is open and that starts within ``energy_order_horizon_ms``; while the book holds fewer than
    ``energy_book_max_orders``; the meter's open orders on each side of the interval no more than its
    power moves in one. A bid holds its most cost from the owner's account."""
    m = _in_service(meter_of(state, msg.meter))
    if not _acts_for(ctx, m.owner):
        raise errors.NotMeterOwner(meter=m.id, owner=m.owner, sender=ctx.sender)
    zone = zone_of(state, m.zone)
    start = _interval(zone, msg.start, ctx.time)
    _gate_open(zone, start, ctx.time)
    horizon = ctx.param(ORDER_HORIZON_MS.name)
    if start > ctx.time + horizon:
        raise errors.TooFarAhead(start=start, horizon_ms=horizon, time=ctx.time)
    book = BOOKS.get(state, zone.id, start) or Book(zone.id, start)
    most = ctx.param(BOOK_MAX_ORDERS.name)
    if book.orders >= most:
        raise errors.BookFull(start=start, zone=zone.id, orders=book.orders)
    bid = msg.side == BUY
    mine = METER_ORDERS.get(state, m.id, start) or MeterOrders()
    ordered = mine.bid_wh if bid else mine.ask_wh
    limit = power_limit(m, zone)
    if ordered + msg.wh > limit:
        raise errors.OrderBeyondPower(meter=m.id, side=msg.side, wanted=msg.wh, start=start, ordered=ordered,
                                      limit=limit)
    held = value(msg.wh, msg.price, up=True) if bid else 0
    ctx.need(Payments).hold(state, ctx, zone.currency, m.owner, held, HOLDER)
    seq = book.orders + 1
    ORDERS.put(state, Order(seq, m.id, m.owner, msg.side, msg.price, msg.wh, ctx.tx_id.hex(), held, ctx.height),
               zone.id, start, seq)
    METER_ORDERS.put(state, MeterOrders(mine.bid_wh + msg.wh * bid, mine.ask_wh + msg.wh * (not bid)), m.id, start)
    BOOKS.put(state, msgspec.structs.replace(
        book, orders=seq, open_bids=book.open_bids + bid, open_asks=book.open_asks + (not bid),
        bid_wh=book.bid_wh + msg.wh * bid, ask_wh=book.ask_wh + msg.wh * (not bid)), zone.id, start)
    ctx.index_put(ORDER_LIST, zone=zone.id, start=start, seq=seq, owner=m.owner, meter=m.id, side=msg.side,
                  price=msg.price, wh=msg.wh, height=ctx.height)
    ctx.emit(OrderPlaced(zone=zone.id, start=start, seq=seq, owner=m.owner, side=msg.side))


@module.message(CancelOrder, roles=ANYONE)
def cancel_order(state: Overlay, ctx: Context, msg: CancelOrder) -> None:
    """An open order, by a key acting for its owner, before its interval's gate closes; a bid's money
    goes back to the owner in the same transaction."""
    zone = zone_of(state, msg.zone)
    start = _interval(zone, msg.start, ctx.time)
    book = BOOKS.get(state, zone.id, start)
    order = ORDERS.get(state, zone.id, start, msg.seq) if book is not None and msg.seq else None
    if book is None or order is None:
        raise errors.UnknownOrder(seq=msg.seq, start=start, zone=zone.id)
    if not _acts_for(ctx, order.owner):
        raise errors.NotOrderOwner(seq=order.seq, owner=order.owner, sender=ctx.sender)
    if order.status == "cancelled":
        raise errors.OrderCancelled(seq=order.seq, start=start, zone=zone.id)
    _gate_open(zone, start, ctx.time)
    ctx.need(Payments).release(state, ctx, zone.currency, HOLDER, order.owner, order.held)
    ORDERS.put(state, msgspec.structs.replace(order, status="cancelled"), zone.id, start, order.seq)
    bid = order.side == BUY
    mine = METER_ORDERS.get(state, order.meter, start) or MeterOrders()
    METER_ORDERS.put(state, MeterOrders(mine.bid_wh - order.wh * bid, mine.ask_wh - order.wh * (not bid)),
                     order.meter, start)
    BOOKS.put(state, msgspec.structs.replace(
        book, open_bids=book.open_bids - bid, open_asks=book.open_asks - (not bid),
        bid_wh=book.bid_wh - order.wh * bid, ask_wh=book.ask_wh - order.wh * (not bid)), zone.id, start)
    ctx.index_delete(ORDER_LIST, zone=zone.id, start=start, seq=order.seq)
    ctx.emit(OrderCancelled(zone=zone.id, start=start, seq=order.seq, owner=order.owner))


# ---------------------------------------------------------------- readings


@module.message(SubmitReading, roles=ANYONE)
def submit_reading(state: Overlay, ctx: Context, msg: SubmitReading) -> None:
    """Signed by the meter's current device key, for a meter in service; for an interval of its zone that
    has ended, before the interval settles and before its reading window closes; once; no more energy in
    and out together than the meter's most power moves in one interval."""
    m = meter_of(state, msg.meter)
    if ctx.sender != m.key:
        raise errors.NotMeterKey(meter=m.id, sender=ctx.sender, key=m.key)
    _in_service(m)
    zone = zone_of(state, m.zone)
    start = _interval(zone, msg.start, ctx.time)
    end = interval_end(zone, start)
    if ctx.time < end:
        raise errors.ReadingTooEarly(start=start, end=end, time=ctx.time)
    book = BOOKS.get(state, zone.id, start)
    if book is not None and book.settlement is not None:
        raise errors.ReadingTooLate(start=start, zone=zone.id, why=f"was settled at block {book.settlement.height}",
                                    until=settle_from(zone, start))
    if ctx.time >= settle_from(zone, start):
        raise errors.ReadingTooLate(start=start, zone=zone.id, why="is past its reading window",
                                    until=settle_from(zone, start))
    limit = power_limit(m, zone)
    if msg.imported_wh + msg.exported_wh > limit:
        raise errors.ImplausibleReading(meter=m.id, wh=msg.imported_wh + msg.exported_wh, max_power_w=m.max_power_w,
                                        limit=limit, interval_ms=zone.interval_ms)
    earlier = READINGS.get(state, m.id, start)
    if earlier is not None:
        raise errors.ReadingExists(meter=m.id, start=start, height=earlier.height)
    READINGS.put(state, Reading(m.id, start, msg.imported_wh, msg.exported_wh, ctx.sender, ctx.height), m.id, start)
    ctx.emit(ReadingSubmitted(meter=m.id, start=start, operator=m.operator, owner=m.owner))


# ---------------------------------------------------------------- clearing and settlement


def _book(state: StateReader, zone: Zone, start: int) -> Book:
    book = BOOKS.get(state, zone.id, start)
    if book is None:
        raise errors.NoOrders(start=start, zone=zone.id)
    return book


def open_orders(state: StateReader, book: Book) -> Iterator[Order]:
    base = ORDERS.key(book.zone, book.start, 0)[:-16]  # the interval's orders: this, then seq in 16 digits
    get, decode = state.get, ORDERS.decode
    for seq in range(1, book.orders + 1):
        raw = get(base + b"%016d" % seq)
        assert raw is not None, f"book {book.zone}/{book.start} lists order {seq} it does not hold"
        order = decode(raw)
        if order.status == "open":
            yield order


def grid_offers(t: Terms, funds: int) -> list[Offer]:
    """The grid's own offers in a zone's auction: it sells up to its import capacity at its import price
    and buys up to its export capacity at its export price, as far as ``funds`` (its operator's account)
    pay for at that price."""
    export_wh = t.export_wh if not t.export_price else min(t.export_wh, funds * 1000 // t.export_price)
    return ([Offer(GRID_KEY, SELL, t.import_price, t.import_wh)] if t.import_wh else []) + \
           ([Offer(GRID_KEY, BUY, t.export_price, export_wh)] if export_wh else [])


def _clear(state: Overlay, ctx: Context, zone: Zone, book: Book, orders: list[Order]) -> Book:
    """Clear the book; what the grid bought is held from its operator's account until settlement, so a
    settlement always has the money to pay every seller."""
    terms = terms_for(state, zone, book.start)
    payments = ctx.need(Payments)
    operator = ORG_PREFIX + zone.operator
    grid = grid_offers(terms.terms, payments.balance(state, operator, zone.currency))
    result = clear([Offer(o.key, o.side, o.price, o.wh) for o in orders] + grid)
    sold = next((fill(result, o.side, o.price, o.wh, o.key) for o in grid if o.side == SELL), 0)
    bought = next((fill(result, o.side, o.price, o.wh, o.key) for o in grid if o.side == BUY), 0)
    held = value(bought, result.price, up=True)
    payments.hold(state, ctx, zone.currency, operator, held, HOLDER)
    book = msgspec.structs.replace(book, status="cleared", clearing=Clearing(
        result, terms.start, len(orders), sold, bought, ctx.height, ctx.time, held))
    ctx.emit(IntervalCleared(zone=zone.id, start=book.start, price=result.price, matched_wh=result.matched_wh))
    return book


@module.message(ClearInterval, roles=ANYONE)
def clear_interval(state: Overlay, ctx: Context, msg: ClearInterval) -> None:
    """An interval with orders, once its gate has closed, once: one uniform-price double auction over its
    open orders and the grid's offers (``clearing``), whoever sends it and whenever."""
    zone = zone_of(state, msg.zone)
    start = _interval(zone, msg.start, ctx.time)
    if ctx.time < gate_closes(zone, start):
        raise errors.GateNotClosed(start=start, zone=zone.id, closes=gate_closes(zone, start), time=ctx.time)
    book = _book(state, zone, start)
    if book.clearing is not None:
        raise errors.AlreadyCleared(start=start, zone=zone.id, height=book.clearing.height,
                                    price=book.clearing.result.price, matched_wh=book.clearing.result.matched_wh)
    BOOKS.put(state, _clear(state, ctx, zone, book, list(open_orders(state, book))), zone.id, start)


class _Meter:
    """One meter's trades of an interval, gathered from its orders."""

    __slots__ = ("owner", "bought", "sold", "held")

    def __init__(self, owner: str) -> None:
        self.owner, self.bought, self.sold, self.held = owner, 0, 0, 0


@module.message(SettleInterval, roles=ANYONE)
def settle_interval(state: Overlay, ctx: Context, msg: SettleInterval) -> None:
    """An interval with orders, after it ends, once; when every meter with a position has read it, or
    from the end of its reading window. Each meter pays what it bought and is paid what it sold at the
    clearing price (through the zone operator's account, which the clearing made hold what the grid
    bought); what it measured against its position settles at the imbalance prices: short pays
    ``short_price`` (at least the clearing price), long is paid ``long_price`` (at most the clearing
    price), each as far as the paying account goes (the rest is
    recorded unpaid: a settlement is never refused for money); a position without a
    reading counts as the worst reading the meter's power allows (its most power drawn from the grid the
    whole interval), so withholding a reading never pays. A bid's money beyond its price goes back to
    its owner."""
    zone = zone_of(state, msg.zone)
    start = _interval(zone, msg.start, ctx.time)
    end = interval_end(zone, start)
    if ctx.time < end:
        raise errors.IntervalNotOver(start=start, zone=zone.id, end=end, time=ctx.time)
    book = _book(state, zone, start)
    if book.settlement is not None:
        raise errors.AlreadySettled(start=start, zone=zone.id, height=book.settlement.height)
    orders = list(open_orders(state, book))
    if book.clearing is None:
        book = _clear(state, ctx, zone, book, orders)
    assert book.clearing is not None
    result: Result = book.clearing.result
    meters: dict[str, _Meter] = {}
    for o in orders:
        got = fill(result, o.side, o.price, o.wh, o.key)
        mt = meters.get(o.meter)
        if mt is None:
            mt = meters[o.meter] = _Meter(o.owner)
        mt.held += o.held
        if o.side == BUY:
            mt.bought += got
        else:
            mt.sold += got
    readings = {mid: READINGS.get(state, mid, start) for mid in meters}
    missing = sorted(mid for mid, r in readings.items() if r is None and (meters[mid].bought or meters[mid].sold))
    if missing and ctx.time < settle_from(zone, start):
        raise errors.SettlementTooEarly(missing=len(missing), start=start, zone=zone.id, meter=missing[0],
                                        until=settle_from(zone, start))
    terms = TERMS.get(state, zone.id, book.clearing.terms_start)
    assert terms is not None
    t = terms.terms
    # Short never pays less than the clearing price, long is never paid more: selling energy not
    # delivered, or buying energy not taken, never earns anything.
    short_price, long_price = max(t.short_price, result.price), min(t.long_price, result.price)
    payments = ctx.need(Payments)
    operator = ORG_PREFIX + zone.operator
    positions: list[Position] = []
    for mid in sorted(meters):
        mt = meters[mid]
        paid = value(mt.bought, result.price, up=True)
        received = value(mt.sold, result.price, up=False)
        net = mt.sold - mt.bought
        reading = readings.get(mid)
        if reading is not None:
            measured = reading.exported_wh - reading.imported_wh
        elif mt.bought or mt.sold:
            meter = METERS.get(state, mid)
            assert meter is not None
            measured = -power_limit(meter, zone)  # the worst reading it could have sent
        else:
            measured = 0
        # only a meter that traded answers for its flow (a bid that got nothing is no position)
        deviation = measured - net if mt.bought or mt.sold else 0
        short_wh, long_wh = max(0, -deviation), max(0, deviation)
        positions.append(Position(zone.id, start, mid, mt.owner, mt.bought, mt.sold, reading is not None, measured,
                                  paid, received, short_wh, value(short_wh, short_price, up=True), long_wh,
                                  value(long_wh, long_price, up=False), refunded=mt.held - paid, height=ctx.height))
    # Money comes in before it goes out: what buyers paid and what the grid's purchase held reach the
    # operator's account, which pays every seller with it (it always covers them: buyers' sums round up,
    # sellers' down); then short charges (from the sellers' proceeds too) and, with them, long credits.
    # A charge an account cannot cover is taken as far as it goes and recorded unpaid.
    payments.release(state, ctx, zone.currency, HOLDER, operator, book.clearing.grid_held)
    for p in positions:
        payments.release(state, ctx, zone.currency, HOLDER, operator, p.paid)
        payments.release(state, ctx, zone.currency, HOLDER, p.owner, p.refunded)
    for p in positions:
        payments.move(state, ctx, zone.currency, operator, p.owner, p.received)
    settled: list[Position] = []
    for p in positions:
        can = min(p.short_charge, payments.balance(state, p.owner, zone.currency))
        payments.move(state, ctx, zone.currency, p.owner, operator, can)
        settled.append(msgspec.structs.replace(p, unpaid=p.short_charge - can))
    for i, p in enumerate(settled):
        can = min(p.long_credit, payments.balance(state, operator, zone.currency))
        payments.move(state, ctx, zone.currency, operator, p.owner, can)
        settled[i] = p = msgspec.structs.replace(p, long_unpaid=p.long_credit - can)
        POSITIONS.put(state, p, zone.id, start, p.meter)
        ctx.index_put(POSITION_LIST, meter=p.meter, start=start, zone=zone.id, owner=p.owner, bought_wh=p.bought_wh,
                      sold_wh=p.sold_wh, net=p.received + p.long_credit - p.long_unpaid - p.paid - p.short_charge + p.unpaid,
                      height=ctx.height)
    positioned = [p for p in settled if p.bought_wh or p.sold_wh]
    settlement = Settlement(
        positions=len(positioned), missing_readings=len(missing), bought_paid=sum(p.paid for p in settled),
        sold_paid=sum(p.received for p in settled),
        short_paid=sum(p.short_charge - p.unpaid for p in settled), short_unpaid=sum(p.unpaid for p in settled),
        long_paid=sum(p.long_credit - p.long_unpaid for p in settled), height=ctx.height, time=ctx.time,
        long_unpaid=sum(p.long_unpaid for p in settled))
    BOOKS.put(state, msgspec.structs.replace(book, status="settled", settlement=settlement), zone.id, start)
    ctx.emit(IntervalSettled(zone=zone.id, start=start, positions=len(positioned), missing_readings=len(missing)))
