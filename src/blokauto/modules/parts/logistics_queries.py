"""Sourcing and logistics queries: a part's, batch's or lot's origins and route, the slowest legs,
the lanes (sender to receiver, place to place) ranked by how long they take, the stock in transit,
and a battery pack's passport."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import PUBLIC, Party
from ...core.encoding import Uint, to_builtins
from ...core.errors import NotFound
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .access import batch_parties, lot_parties, part_parties
from .logistics import LOT_ITEM, lot_item
from .provenance import describe, origins_of
from .spec import HANDOFFS, LEGS, TRANSIT, module
from .state import PART_TYPES, PASSPORTS

#: Most handoffs ``route`` reads, legs ``legs`` lists, lanes ``lanes`` ranks, items ``in_transit`` lists.
ROUTE_MAX = 5000
LEGS_MAX = 1000
LANES_MAX = 200
TRANSIT_MAX = 1000


class ItemQuery(msgspec.Struct):
    id: KeyPart  # a part or batch id (<part number>:<serial or batch>) or a lot id


class ProductQuery(Page, kw_only=True):
    part_number: KeyPart = ""
    supplier: KeyPart = ""  # an organisation id: its parts, batches and the lots it produced
    limit: Uint = 20


def item_parties(view: QueryView, q: Any) -> set[str]:
    """The parties of a part, batch or lot (its supplier or producer, custodians, auditors, users)."""
    return (lot_parties(view, q) if ":" not in q.id else part_parties(view, q) | batch_parties(view, q))


def product_parties(view: QueryView, q: Any) -> set[str]:
    """A part number's supplier, or the supplier asked about itself (with both, the part number's
    supplier); with neither, nobody but regulators, police and nodes."""
    if q.part_number:
        t = PART_TYPES.get(view, q.part_number)
        return set() if t is None else {t.supplier}
    return {q.supplier} if q.supplier else set()


ITEM_PARTIES = Party(item_parties, "the item's supplier or producer, custodians and everyone its story names")
PRODUCT_PARTIES = Party(product_parties, "the part number's supplier (or the supplier asked about); with neither "
                                         "(everything), regulators")


def _where(q: ProductQuery) -> tuple[str, list[str], dict[str, str]]:
    """The SQL condition for a part number and/or a supplier (neither: everything, which only
    regulators, police and nodes may read), its arguments, and what the answer names."""
    named = {k: v for k, v in (("part_number", q.part_number), ("supplier", q.supplier)) if v}
    cols = {"part_number": "product", "supplier": "supplier"}
    if not named:
        return "1", [], {}
    return " AND ".join(f"{cols[k]} = ?" for k in named), list(named.values()), named


@module.query("origin", ItemQuery, read=ITEM_PARTIES)
def origin(view: QueryView, q: ItemQuery) -> dict[str, Any]:
    """Where the raw materials in a part (a battery pack, through its modules and cells), batch or lot
    came from: per material, every origin lot with its mine, country, share (ppm, by mass balance)
    and attestations, and the recycled share. ``keys`` lists the state values it is computed from,
    so a client can prove each and compute the same answer (the SDK's ``Sourcing.origin``)."""
    return describe(origins_of(view, q.id), q.id)


@module.query("passport", ItemQuery, read=PUBLIC, proof_keys=lambda q: [PASSPORTS.key(q.id)])
def passport(view: QueryView, q: ItemQuery) -> dict[str, Any]:
    """A battery pack's passport as its maker issued it, with the origins and recycled content the
    ledger computed then (public, as the EU Battery Regulation makes a passport's basic fields;
    exported as a signed W3C Verifiable Credential by ``blokauto sourcing passport export``)."""
    p = PASSPORTS.get(view, q.id) if "/" not in q.id else None
    if p is None:
        raise NotFound(what="Battery passport", key=q.id)
    return to_builtins(p)


def _item_id(q_id: str) -> str:
    return q_id if ":" in q_id else lot_item(q_id)


@module.query("route", ItemQuery, read=ITEM_PARTIES)
def route(view: QueryView, q: ItemQuery) -> dict[str, Any]:
    """A part's, batch's or lot's route: every handoff (made, shipped, received) with place and time,
    each stay with how long the custodian held it (dwell), each leg with how long it took, and
    where it is now."""
    item = _item_id(q.id)
    rows = view.rows(HANDOFFS, {"item": item}, order=("seq",), limit=ROUTE_MAX)
    if not rows:
        raise NotFound(what="Handoffs of", key=q.id)
    stays: list[dict[str, Any]] = []
    legs: list[dict[str, Any]] = []
    transit: dict[str, Any] | None = None
    for r in rows:
        if r["kind"] in ("made", "received"):
            if transit is not None:
                legs.append({**transit, "destination": r["location"], "received": r["time"],
                             "duration_ms": r["time"] - transit["shipped"]})
                transit = None
            stays.append({"custodian": r["party"], "location": r["location"], "from": r["time"], "until": 0,
                          "dwell_ms": view.time - r["time"] if view.time >= r["time"] else 0})
        elif r["kind"] == "shipped":
            if stays and stays[-1]["until"] == 0:
                stays[-1].update(until=r["time"], dwell_ms=r["time"] - stays[-1]["from"])
            transit = {"sender": r["party"], "receiver": r["receiver"], "origin": r["location"], "shipped": r["time"]}
    now = ({"in_transit": True, **transit, "for_ms": max(0, view.time - transit["shipped"])} if transit is not None
           else {"in_transit": False, "custodian": stays[-1]["custodian"], "location": stays[-1]["location"]}
           if stays else None)
    return {"id": q.id, "as_of": view.time, "handoffs": [{k: r[k] for k in ("seq", "kind", "party", "receiver", "location", "time", "held_ms",
                                                        "height")} for r in rows],
            "stays": stays, "legs": legs, "now": now}


def _public_item(item: str) -> str:
    return item.removeprefix(LOT_ITEM)


@module.query("legs", ProductQuery, read=PRODUCT_PARTIES)
def legs(view: QueryView, q: ProductQuery) -> dict[str, Any]:
    """The slowest legs (shipment to receipt) of a part number's parts and batches, or of everything a
    supplier makes (its lots too), longest first; with neither, of everything (regulators)."""
    cond, args, named = _where(q)
    rows = view.sql(f"SELECT item, kind, product, sender, receiver, origin, destination, shipped, received, duration_ms, "
                    f"height FROM {{legs}} WHERE {cond} ORDER BY duration_ms DESC, item, seq LIMIT ? OFFSET ?",
                    (*args, q.size(LEGS_MAX), q.offset), legs=LEGS)
    keys = ("item", "kind", "product", "sender", "receiver", "origin", "destination", "shipped", "received",
            "duration_ms", "height")
    return {**named, "legs": [{**dict(zip(keys, r)), "item": _public_item(r[0])} for r in rows]}


@module.query("lanes", ProductQuery, read=PRODUCT_PARTIES)
def lanes(view: QueryView, q: ProductQuery) -> dict[str, Any]:
    """The lanes a part number's (or a supplier's) shipments took, each sender to receiver and place
    to place, with how many legs, their mean, shortest and longest duration, slowest mean first:
    where the supply chain waits."""
    cond, args, named = _where(q)
    rows = view.sql(
        f"SELECT sender, receiver, origin, destination, COUNT(*), SUM(duration_ms), MIN(duration_ms), MAX(duration_ms) "
        f"FROM {{legs}} WHERE {cond} GROUP BY sender, receiver, origin, destination "
        f"ORDER BY SUM(duration_ms) / COUNT(*) DESC, sender, receiver, origin, destination LIMIT ? OFFSET ?",
        (*args, q.size(LANES_MAX), q.offset), legs=LEGS)
    return {**named, "lanes": [{"sender": s, "receiver": r, "origin": o, "destination": d, "legs": n,
                                "mean_ms": total // n, "min_ms": lo, "max_ms": hi}
                               for s, r, o, d, n, total, lo, hi in rows]}


@module.query("in_transit", ProductQuery, read=PRODUCT_PARTIES)
def in_transit(view: QueryView, q: ProductQuery) -> dict[str, Any]:
    """What of a part number (or of a supplier's products) is on the way now, longest on the way
    first, with the totals: items, and per kind the units (parts, batch units, grams of lots)."""
    cond, args, named = _where(q)
    by_kind = view.sql(f"SELECT kind, COUNT(*), COALESCE(SUM(qty), 0) FROM {{transit}} WHERE {cond} GROUP BY kind "
                       f"ORDER BY kind", tuple(args), transit=TRANSIT)
    count = sum(n for _, n, _ in by_kind)
    units = {kind: qty for kind, _, qty in by_kind}  # parts, batch units, grams of lots: never added together
    keys = ("item", "kind", "product", "sender", "receiver", "origin", "since", "qty")
    rows = view.sql(f"SELECT {', '.join(keys)} FROM {{transit}} WHERE {cond} ORDER BY since, item LIMIT ? OFFSET ?",
                    (*args, q.size(TRANSIT_MAX), q.offset), transit=TRANSIT)
    return {**named, "as_of": view.time, "items": count, "units": units,
            "in_transit": [{**dict(zip(keys, r)), "item": _public_item(r[0]), "for_ms": max(0, view.time - r[6])}
                           for r in rows]}


module.reads(Party(lambda view, ev: lot_parties(view, ItemQuery(id=str(ev.get("lot", "")))), "the lot's parties"),
             "parts.lot_made")
module.reads(PUBLIC, "parts.passport_issued")
