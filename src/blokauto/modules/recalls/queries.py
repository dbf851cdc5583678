"""Recall queries, and the notifications a node derives when a campaign opens."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.encoding import Uint, to_builtins
from ...core.errors import NotFound
from ...core.access import IDENTIFIED, Party, Roles, VehicleData
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .doors import CAMPAIGN_PARTIES, RecallsDoor
from .resolve import affected, affected_count
from .spec import REMEDIED, module
from .state import CAMPAIGNS, OPEN, REMEDIES, Campaign, Scope

#: Most vehicles one page of ``affected`` returns.
AFFECTED_PAGE_MAX = 10_000
#: Most vehicles ``preview`` lists (it counts them all).
PREVIEW_MAX = 1000
#: Most points ``progress`` returns; a campaign remedied at more heights is downsampled to this many.
PROGRESS_POINTS_MAX = 200
#: Most remedies one page of ``remedies`` returns.
REMEDIES_PAGE_MAX = 1000


class CampaignQuery(msgspec.Struct):
    id: Uint


class AffectedQuery(Page, kw_only=True):
    campaign: Uint


class ProgressQuery(msgspec.Struct):
    campaign: Uint


class RemediesQuery(Page, kw_only=True):
    campaign: Uint


class PreviewQuery(msgspec.Struct):
    scope: Scope
    limit: Uint = 20


class VinQuery(msgspec.Struct):
    vin: KeyPart


class HolderQuery(msgspec.Struct):
    holder: KeyPart




def _campaign(view: QueryView, cid: int) -> Campaign:
    c = CAMPAIGNS.get(view, cid)
    if c is None:
        raise NotFound(what="Recall campaign", key=str(cid))
    return c


def progress_of(view: QueryView, c: Campaign) -> dict[str, int]:
    total = affected_count(view, c.scope, c.opened)
    return {"affected": total, "remedied": c.remedied, "outstanding": total - c.remedied}


@module.query("campaign", CampaignQuery, read=IDENTIFIED, proof_keys=lambda q: [CAMPAIGNS.key(q.id)])
def campaign(view: QueryView, q: CampaignQuery) -> dict[str, Any]:
    """A campaign with its progress: affected, remedied, outstanding."""
    c = _campaign(view, q.id)
    return {**to_builtins(c), "progress": progress_of(view, c)}


@module.query("open", read=IDENTIFIED)
def open_campaigns(view: QueryView) -> list[dict[str, Any]]:
    """Open campaigns."""
    return [to_builtins(CAMPAIGNS.get(view, cid)) for cid in OPEN.get(view)]


@module.query("affected", AffectedQuery, read=CAMPAIGN_PARTIES)
def affected_vehicles(view: QueryView, q: AffectedQuery) -> dict[str, Any]:
    """The vehicles a campaign covered when it opened, with the holder then and whether each is remedied."""
    c = _campaign(view, q.campaign)
    rows = affected(view, c.scope, c.opened, limit=q.size(AFFECTED_PAGE_MAX), offset=q.offset)
    remedied = {vin for (vin,) in view.sql("SELECT vin FROM {remedied} WHERE campaign = ? AND vin BETWEEN ? AND ?",
                                           [c.id, rows[0][0], rows[-1][0]], remedied=REMEDIED)} if rows else set()
    return {"campaign": c.id, "number": c.number, "progress": progress_of(view, c),
            "vehicles": [{"vin": vin, "holder": holder, "remedied": vin in remedied} for vin, holder in rows]}


def downsample(points: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """At most ``limit`` (at least 2) of ``points``, evenly spaced by position, always the first and
    the last: integer arithmetic only, so every node answers the same."""
    n = len(points)
    if n <= limit:
        return list(points)
    return [points[i * (n - 1) // (limit - 1)] for i in range(limit)]


@module.query("progress", ProgressQuery, read=CAMPAIGN_PARTIES)
def progress(view: QueryView, q: ProgressQuery) -> dict[str, Any]:
    """A campaign's remedies over time: the number remedied so far at each block height where it
    changed (at most 200 points, evenly spaced when there are more, always the last), with the
    vehicles it affected and the height it opened at."""
    c = _campaign(view, q.campaign)
    steps: list[tuple[int, int]] = []
    total = 0
    for height, n in view.sql("SELECT height, COUNT(*) FROM {remedied} WHERE campaign = ? GROUP BY height "
                              "ORDER BY height", [c.id], remedied=REMEDIED):
        total += n
        steps.append((height, total))
    return {"campaign": c.id, "number": c.number, "opened": c.opened, "closed": c.closed,
            "affected": affected_count(view, c.scope, c.opened), "remedied": total, "changes": len(steps),
            "points": [{"height": h, "remedied": r} for h, r in downsample(steps, PROGRESS_POINTS_MAX)]}


@module.query("remedies", RemediesQuery, read=CAMPAIGN_PARTIES)
def remedies(view: QueryView, q: RemediesQuery) -> dict[str, Any]:
    """A campaign's remedies in the order they were recorded: which vehicle, by whom (an organisation,
    or the device key whose install manifest fixed it), how, at which block, with the notes."""
    c = _campaign(view, q.campaign)
    rows = view.sql("SELECT vin FROM {remedied} WHERE campaign = ? ORDER BY height, vin LIMIT ? OFFSET ?",
                    [c.id, q.size(REMEDIES_PAGE_MAX), q.offset], remedied=REMEDIED)
    found = [REMEDIES.get(view, c.id, vin) for (vin,) in rows]
    return {"campaign": c.id, "number": c.number, "remedied": c.remedied,
            "remedies": [to_builtins(r) for r in found if r is not None]}


@module.query("preview", PreviewQuery, read=Roles("manufacturer"))
def preview(view: QueryView, q: PreviewQuery) -> dict[str, Any]:
    """How many vehicles (and the first few) a scope would cover if a campaign opened now: check a
    scope before opening it. A manufacturer's campaign covers only its own vehicles: set
    ``scope.manufacturer`` to see that."""
    return {"height": view.height, "affected": affected_count(view, q.scope, view.height),
            "first": [{"vin": vin, "holder": holder}
                      for vin, holder in affected(view, q.scope, view.height, limit=min(q.limit, PREVIEW_MAX))]}


@module.query("of_vehicle", VinQuery, read=VehicleData("vin", "history"))
def of_vehicle(view: QueryView, q: VinQuery) -> list[dict[str, Any]]:
    """Open campaigns covering a vehicle, and whether each is remedied (what a history report shows)."""
    return [{"campaign": r.campaign, "number": r.number, "component": r.component, "summary": r.summary,
             "do_not_drive": r.do_not_drive, "remedied": r.remedied}
            for r in view.need(RecallsDoor).open_recalls(view, view.need, q.vin)]


module.reads(IDENTIFIED, "recalls.campaign_opened", "recalls.campaign_closed")
module.reads(VehicleData("vin", "history"), "recalls.remedied", "recalls.owner_notified")
module.reads(Party(lambda view, ev: {ev.get("opened_by", "")}, "the campaign's opener"),
             "recalls.scope_matched_nothing")


@module.expander("recalls.campaign_opened")
def notify_owners(view: QueryView, event: dict[str, Any]) -> list[dict[str, Any]]:
    """One notification per affected vehicle, addressed to its holder when the campaign opened; a
    campaign whose scope covered no vehicle is flagged instead, for its opener to correct or close."""
    c = CAMPAIGNS.get(view, event["campaign"])
    if c is None:
        return []
    notices = [{"type": "recalls.owner_notified", "campaign": c.id, "number": c.number, "vin": vin, "holder": holder,
                "do_not_drive": c.do_not_drive} for vin, holder in affected(view, c.scope, c.opened)]
    return notices or [{"type": "recalls.scope_matched_nothing", "campaign": c.id, "number": c.number,
                        "opened_by": c.opened_by}]
