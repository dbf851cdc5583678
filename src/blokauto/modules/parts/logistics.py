"""Where and how long: every handoff of a part, batch or material lot is recorded with its place
and time, so the ledger can answer a route, the dwell at each custodian, the slowest legs and the
stock in transit (the queries in ``logistics_queries``).

An item's ``Handoff`` state says where it is and since when; each handoff appends a row to the
``handoffs`` index (numbered by ``Handoff.count``), a receipt closes a ``legs`` row (shipment to
receipt), and ``transit`` holds a row per item on the way. Times are the block's, or the time the
sender or receiver declares (``at``), at most ``handoff_backdate_ms`` before the block and never
before the item's previous handoff: a handoff recorded late keeps its real time, and no one
rewrites the past.
"""

from __future__ import annotations

from ...core.module import Context
from . import errors
from .spec import HANDOFF_BACKDATE_MS, HANDOFFS, LEGS, TRANSIT
from .state import Handoff

LOT_ITEM = "lot/"  # a lot's id in the handoff indexes ("/" never appears in a part or batch id)


def lot_item(lot_id: str) -> str:
    return LOT_ITEM + lot_id


def handoff_time(ctx: Context, item: str, at: int, since: int) -> int:
    """The time of a handoff: ``at`` as declared (0: the block's time), checked."""
    if at == 0:
        return max(ctx.time, since)
    backdate = ctx.param(HANDOFF_BACKDATE_MS.name)
    if at > ctx.time:
        reason = "after the block's time"
    elif at < ctx.time - backdate:
        reason = "too long before the block"
    elif at < since:
        reason = "before its previous handoff"
    else:
        return at
    label = "lot " + item.removeprefix(LOT_ITEM) if item.startswith(LOT_ITEM) else item
    raise errors.BadHandoffTime(item=label, at=at, reason=reason, backdate_ms=backdate, since=since)


def made(ctx: Context, item: str, party: str, location: str) -> Handoff:
    """An item enters the ledger (minted, registered, made from lots) at ``location``."""
    ctx.index_put(HANDOFFS, item=item, seq=1, kind="made", party=party, receiver="", location=location, time=ctx.time,
                  held_ms=0, height=ctx.height)
    return Handoff(ctx.time, location, 1)


def shipped(ctx: Context, item: str, kind: str, product: str, supplier: str, sender: str, to: str,
            location: str, at: int, h: Handoff, qty: int, not_before: int = 0) -> Handoff:
    """A shipment; ``not_before``: the sender's last use of the item (a shipment is not dated before it)."""
    t = handoff_time(ctx, item, at, max(h.since, not_before))
    seq = h.count + 1
    ctx.index_put(HANDOFFS, item=item, seq=seq, kind="shipped", party=sender, receiver=to, location=location or h.location,
                  time=t, held_ms=t - h.since if h.since else 0, height=ctx.height)
    ctx.index_put(TRANSIT, item=item, kind=kind, product=product, supplier=supplier, sender=sender, receiver=to,
                  origin=location or h.location, since=t, qty=qty)
    return Handoff(t, location or h.location, seq)


def received(ctx: Context, item: str, kind: str, product: str, supplier: str, sender: str, receiver: str,
             location: str, at: int, h: Handoff) -> Handoff:
    t = handoff_time(ctx, item, at, h.since)
    seq = h.count + 1
    ctx.index_put(HANDOFFS, item=item, seq=seq, kind="received", party=receiver, receiver="", location=location, time=t,
                  held_ms=0, height=ctx.height)
    ctx.index_put(LEGS, item=item, seq=seq, kind=kind, product=product, supplier=supplier, sender=sender,
                  receiver=receiver, origin=h.location, destination=location, shipped=h.since, received=t,
                  duration_ms=t - h.since, height=ctx.height)
    ctx.index_delete(TRANSIT, item=item)
    return Handoff(t, location, seq)
