"""Energy queries and who reads them. A zone's terms and each interval's book (totals, clearing,
settlement) are for every signed request: the market is transparent. A meter's readings and
positions say when a household is at home: only the meter's owner, its operator and the zone's grid
operator read them (and regulators, police). An order is its owner's and the zone operator's.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import ORG_PREFIX, SIGNED, Own, Party
from ...core.encoding import Uint, to_builtins
from ...core.errors import NotFound
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .clearing import fill
from .handlers import first_open, meter_of, zone_of
from .spec import METER_LIST, ORDER_LIST, POSITION_LIST, ZONE_LIST, module
from .state import (BOOKS, METERS, ORDERS, POSITIONS, READINGS, TERMS, ZONES, gate_closes, interval_end,
                    settle_from)

PAGE_MAX = 1000


def _org_party(owner: str) -> str:
    """A party name the read policy matches: a key, or an organisation's id."""
    return owner[len(ORG_PREFIX):] if owner.startswith(ORG_PREFIX) else owner


def meter_parties(view: Any, obj: Any) -> set[str]:
    """The meter's owner, its operator, its zone's operator and its own device key."""
    name = obj.get("meter") if isinstance(obj, dict) else getattr(obj, "meter", None)
    m = METERS.get(view, name) if isinstance(name, str) and name and "/" not in name and len(name) <= 200 else None
    if m is None:
        return set()
    z = ZONES.get(view, m.zone)
    device = set() if m.revoked else {m.key}  # a revoked meter's key reads nothing more
    return {_org_party(m.owner), m.operator} | device | ({z.operator} if z is not None else set())


def order_parties(view: Any, obj: Any) -> set[str]:
    """The order's owner and the zone's operator."""
    get = obj.get if isinstance(obj, dict) else lambda k: getattr(obj, k, None)
    zone, start, seq = get("zone"), get("start"), get("seq")
    if not (isinstance(zone, str) and zone and "/" not in zone and len(zone) <= 200 and type(start) is int
            and type(seq) is int and start >= 0 and seq >= 0):
        return set()
    z, o = ZONES.get(view, zone), ORDERS.get(view, zone, start, seq)
    return ({_org_party(o.owner)} if o is not None else set()) | ({z.operator} if z is not None else set())


METER_PARTIES = Party(meter_parties, "the meter's owner, its operator, its zone's grid operator and its device key")
ORDER_PARTIES = Party(order_parties, "the order's owner and the zone's grid operator")


class ZoneQuery(msgspec.Struct):
    zone: KeyPart


class IntervalQuery(msgspec.Struct):
    zone: KeyPart
    start: Uint


class OrderQuery(msgspec.Struct):
    zone: KeyPart
    start: Uint
    seq: Uint


class MeterQuery(msgspec.Struct):
    meter: KeyPart


class MeterIntervalQuery(msgspec.Struct):
    meter: KeyPart
    start: Uint


class OwnerPage(Page, kw_only=True):
    owner: KeyPart


class MeterPage(Page, kw_only=True):
    meter: KeyPart


class OwnerOrders(Page, kw_only=True):
    owner: KeyPart
    start: Uint | None = None  # one interval's orders (all of the owner's, newest interval first, without)


@module.query("zone", ZoneQuery, read=SIGNED, proof_keys=lambda q: [ZONES.key(q.zone)])
def zone(view: QueryView, q: ZoneQuery) -> dict[str, Any]:
    """A zone: its grid operator, currency and clock, every terms it has had, and the next interval
    whose gate is open."""
    z = zone_of(view, q.zone)
    terms = [TERMS.get(view, z.id, s) for s in z.terms]
    return {**to_builtins(z), "terms": [to_builtins(t) for t in terms if t is not None],
            "next_open": first_open(z, max(getattr(view, "read_time", view.time), 0))}


@module.query("zones", Page, read=SIGNED)
def zones(view: QueryView, q: Page) -> dict[str, Any]:
    """The zones on the ledger, by id."""
    rows = view.rows(ZONE_LIST, {}, order=("zone",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"zones": [{k: r[k] for k in ("zone", "operator", "currency")} for r in rows]}


@module.query("book", IntervalQuery, read=SIGNED, proof_keys=lambda q: [BOOKS.key(q.zone, q.start)])
def book(view: QueryView, q: IntervalQuery) -> dict[str, Any]:
    """An interval of a zone: when its gate closes, it ends and it settles without missing readings;
    its open orders' totals per side; once cleared the price, the energy matched and the grid's share;
    once settled what moved. Individual orders are their owners'."""
    z = zone_of(view, q.zone)
    b = BOOKS.get(view, z.id, q.start)
    if b is None:
        raise NotFound(what="Order book", key=f"{q.zone} {q.start}")
    return {**to_builtins(b), "gate_closes": gate_closes(z, q.start), "end": interval_end(z, q.start),
            "settles_from": settle_from(z, q.start), "currency": z.currency}


def _order_view(view: QueryView, zone: str, start: int, seq: int) -> dict[str, Any] | None:
    o = ORDERS.get(view, zone, start, seq)
    if o is None:
        return None
    b = BOOKS.get(view, zone, start)
    out = {"zone": zone, "start": start, **to_builtins(o), "interval": b.status if b is not None else "open"}
    if b is not None and b.clearing is not None and o.status == "open":
        out["filled_wh"] = fill(b.clearing.result, o.side, o.price, o.wh, o.key)
        out["price_cleared"] = b.clearing.result.price
    return out


@module.query("order", OrderQuery, read=ORDER_PARTIES, proof_keys=lambda q: [ORDERS.key(q.zone, q.start, q.seq)])
def order(view: QueryView, q: OrderQuery) -> dict[str, Any]:
    """One order, and once its interval cleared what it got (``filled_wh``) at what price."""
    found = _order_view(view, q.zone, q.start, q.seq)
    if found is None:
        raise NotFound(what="Order", key=f"{q.zone} {q.start} #{q.seq}")
    return found


@module.query("orders", OwnerOrders, read=Own("owner"))
def orders(view: QueryView, q: OwnerOrders) -> dict[str, Any]:
    """An account's open orders (cancelled ones leave the list), newest interval first, each with what
    it got once cleared."""
    where: dict[str, Any] = {"owner": q.owner} if q.start is None else {"owner": q.owner, "start": q.start}
    rows = view.rows(ORDER_LIST, where, order=("start", "seq"), descending=True, limit=q.size(PAGE_MAX),
                     offset=q.offset)
    return {"owner": q.owner, "orders": [o for r in rows
                                         if (o := _order_view(view, r["zone"], r["start"], r["seq"])) is not None]}


@module.query("meter", MeterQuery, read=METER_PARTIES, proof_keys=lambda q: [METERS.key(q.meter)])
def meter(view: QueryView, q: MeterQuery) -> dict[str, Any]:
    """A meter: operator, zone, kind, device key, owner, most power, vehicle, whether in service."""
    return to_builtins(meter_of(view, q.meter))


@module.query("meters", OwnerPage, read=Own("owner"))
def meters(view: QueryView, q: OwnerPage) -> dict[str, Any]:
    """The meters an account trades for."""
    rows = view.rows(METER_LIST, {"owner": q.owner}, order=("meter",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"owner": q.owner, "meters": [{k: r[k] for k in ("meter", "zone", "operator", "kind", "vin")}
                                         for r in rows]}


@module.query("reading", MeterIntervalQuery, read=METER_PARTIES,
              proof_keys=lambda q: [READINGS.key(q.meter, q.start)])
def reading(view: QueryView, q: MeterIntervalQuery) -> dict[str, Any]:
    """A meter's signed reading of one interval."""
    r = READINGS.get(view, q.meter, q.start)
    if r is None:
        raise NotFound(what="Reading", key=f"{q.meter} {q.start}")
    return to_builtins(r)


@module.query("position", MeterIntervalQuery, read=METER_PARTIES)
def position(view: QueryView, q: MeterIntervalQuery) -> dict[str, Any]:
    """How a meter's trades of one interval settled: energy, reading, money."""
    m = meter_of(view, q.meter)
    p = POSITIONS.get(view, m.zone, q.start, m.id)
    if p is None:
        raise NotFound(what="Settled position", key=f"{q.meter} {q.start}")
    return to_builtins(p)


@module.query("positions", MeterPage, read=METER_PARTIES)
def positions(view: QueryView, q: MeterPage) -> dict[str, Any]:
    """A meter's settled intervals, newest first: energy bought and sold, and the money it netted."""
    rows = view.rows(POSITION_LIST, {"meter": q.meter}, order=("start",), descending=True, limit=q.size(PAGE_MAX),
                     offset=q.offset)
    return {"meter": q.meter, "positions": [{k: r[k] for k in ("start", "zone", "bought_wh", "sold_wh", "net", "height")}
                                            for r in rows]}


module.reads(SIGNED, "energy.zone_opened", "energy.terms_set", "energy.cleared", "energy.settled")
module.reads(ORDER_PARTIES, "energy.order_placed", "energy.order_cancelled")
module.reads(METER_PARTIES, "energy.meter_registered", "energy.meter_changed", "energy.reading_submitted")
