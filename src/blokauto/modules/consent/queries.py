"""Consent queries: a vehicle's grants, an organisation's grants, and whether a read is allowed,
each as of a block time ``at`` (ms; by default the time of the block the query reads)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ...core.encoding import Uint, to_builtins
from ...core.access import ORG_PREFIX, AnyOf, Caller, HolderOf, OrgOf, Party, Roles
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .doors import ConsentDoor
from .spec import GRANTS, Titles, module
from .state import GRANT_RECORDS, Grant, status

#: Most grants of one vehicle ``grants_of`` reads to find the current holding's.
HOLDING_SCAN_MAX = 10_000
#: Most grants one page of ``grants_of`` or ``grants_to`` returns.
GRANTS_PAGE_MAX = 1000


class VehicleGrantsQuery(Page, kw_only=True):
    vin: KeyPart
    at: Uint | None = None  # default: the time of the block the query reads
    #: "current": the grants of the holding that holds the title now (what its holder reads); "all":
    #: every holder's (regulators and police only: a new holder does not read the old one's choices).
    holdings: Literal["current", "all"] = "current"


class _GrantsReader:
    """``grants_of``: the holder reads its own holding's grants; every holding's, only regulators and police."""

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if getattr(obj, "holdings", "current") == "all":
            Roles("regulator", "police").check(view, caller, obj, what + " (holdings=all)")
        else:
            HolderOf("vin").check(view, caller, obj, what)

    def describe(self) -> str:
        return "the vehicle's holder (its own holding's grants); every holding's: regulators and police"


def _grant_parties(view: QueryView, ev: dict[str, Any]) -> set[str]:
    """A grant's event is read by the organisation it names and the holder that made it (not a later one)."""
    g = GRANT_RECORDS.get(view, ev.get("grant")) if isinstance(ev.get("grant"), int) else None
    return {str(ev.get("org", ""))} | ({g.holder, g.holder.removeprefix(ORG_PREFIX)} if g is not None else set())


class OrgGrantsQuery(Page, kw_only=True):
    org: KeyPart
    at: Uint | None = None


class AllowedQuery(msgspec.Struct):
    vin: KeyPart
    org: KeyPart
    category: KeyPart
    at: Uint | None = None


def _at(view: QueryView, at: int | None) -> int:
    return view.time if at is None else at


def _with_status(view: QueryView, g: Grant, at: int) -> dict[str, Any]:
    return {**to_builtins(g), "status": status(g, view.need(Titles).title(view, g.vin), at)}


def _grants(view: QueryView, ids: list[int]) -> list[Grant]:
    out = []
    for gid in ids:
        g = GRANT_RECORDS.get(view, gid)
        if g is not None:
            out.append(g)
    return out


@module.query("grants_of", VehicleGrantsQuery, read=_GrantsReader())
def grants_of(view: QueryView, q: VehicleGrantsQuery) -> dict[str, Any]:
    """A vehicle's consent grants, oldest first, each with its status at block time ``at``: active,
    expired, revoked, or holder_changed (the title has passed on since it was granted). By default
    only the current holding's (``holdings=all``: every holder's, for regulators and police)."""
    at = _at(view, q.at)
    if q.holdings == "all":
        rows = view.rows(GRANTS, {"vin": q.vin}, order=("id",), limit=q.size(GRANTS_PAGE_MAX), offset=q.offset)
        return {"vin": q.vin, "at": at, "holdings": "all", "total": view.count(GRANTS, {"vin": q.vin}),
                "grants": [_with_status(view, g, at) for g in _grants(view, [r["id"] for r in rows])]}
    title = view.need(Titles).title(view, q.vin)
    rows = view.rows(GRANTS, {"vin": q.vin}, order=("id",), limit=HOLDING_SCAN_MAX)
    mine = [g for g in _grants(view, [r["id"] for r in rows])
            if title is not None and (g.holder, g.holder_since) == (title.holder, title.since)]
    page = mine[q.offset:q.offset + q.size(GRANTS_PAGE_MAX)]
    return {"vin": q.vin, "at": at, "holdings": "current", "total": len(mine),
            "grants": [_with_status(view, g, at) for g in page]}


@module.query("grants_to", OrgGrantsQuery, read=OrgOf("org"))
def grants_to(view: QueryView, q: OrgGrantsQuery) -> dict[str, Any]:
    """The consent grants an organisation holds, oldest first, each with its status at block time ``at``."""
    at = _at(view, q.at)
    rows = view.rows(GRANTS, {"org": q.org}, order=("id",), limit=q.size(GRANTS_PAGE_MAX), offset=q.offset)
    return {"org": q.org, "at": at, "total": view.count(GRANTS, {"org": q.org}),
            "grants": [_with_status(view, g, at) for g in _grants(view, [r["id"] for r in rows])]}


@module.query("allowed", AllowedQuery, read=AnyOf(OrgOf("org"), HolderOf("vin")))
def allowed(view: QueryView, q: AllowedQuery) -> dict[str, Any]:
    """Whether the holder's consent lets ``org`` read ``category`` of ``vin`` at block time ``at``, and
    the grant that allows it (None if none does)."""
    at = _at(view, q.at)
    gid = view.need(ConsentDoor).allows(view, view.need, q.vin, q.org, q.category, at)
    return {"vin": q.vin, "org": q.org, "category": q.category, "at": at, "allowed": gid is not None,
            "grant": gid}


module.reads(Party(_grant_parties, "the organisation granted and the holder that granted"),
             "consent.granted", "consent.revoked")
