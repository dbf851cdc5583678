"""Consent queries: a vehicle's grants, an organisation's grants, and whether a read is allowed,
each as of a block time ``at`` (ms; by default the time of the block the query reads)."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.encoding import Uint, to_builtins
from ...core.access import AnyOf, HolderOf, OrgOf
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .doors import ConsentDoor
from .spec import GRANTS, Titles, module
from .state import GRANT_RECORDS, Grant, status

#: Most grants one page of ``grants_of`` or ``grants_to`` returns.
GRANTS_PAGE_MAX = 1000


class VehicleGrantsQuery(Page, kw_only=True):
    vin: KeyPart
    at: Uint | None = None  # default: the time of the block the query reads


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


@module.query("grants_of", VehicleGrantsQuery, read=HolderOf("vin"))
def grants_of(view: QueryView, q: VehicleGrantsQuery) -> dict[str, Any]:
    """A vehicle's consent grants, oldest first, each with its status at block time ``at``: active,
    expired, revoked, or holder_changed (the title has passed on since it was granted)."""
    at = _at(view, q.at)
    rows = view.rows(GRANTS, {"vin": q.vin}, order=("id",), limit=q.size(GRANTS_PAGE_MAX), offset=q.offset)
    return {"vin": q.vin, "at": at, "total": view.count(GRANTS, {"vin": q.vin}),
            "grants": [_with_status(view, g, at) for g in _grants(view, [r["id"] for r in rows])]}


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


module.reads(AnyOf(OrgOf("org"), HolderOf("vin")), "consent.granted", "consent.revoked")
