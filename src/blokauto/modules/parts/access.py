"""Who took part in a part's, a batch's or a material lot's story: the parties whose members may
read it (``core.access.Party``), besides regulators and police."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import Party
from ...core.module import QueryView
from .spec import HANDOFFS, LOT_USES, PART_HISTORY
from .state import BATCHES, LOTS, PARTS

#: History entries read to find a part's parties (a part with more is read by those named in these).
PARTY_ENTRIES_MAX = 5000
#: How ``lot_uses`` names a lot made from a lot (logistics.LOT_ITEM; "/" is never in a batch id).
LOT_CONSUMER = "lot/"
#: Batches read to find who used a material lot.
LOT_USERS_MAX = 10_000


def _ids(*names: str) -> set[str]:
    """Organisation ids and keys as a policy matches them (a custodian org:<id> is the organisation <id>)."""
    return {n.removeprefix("org:") for n in names if n}


def part_parties(view: QueryView, q: Any) -> set[str]:
    """The part's supplier and custodian, and every organisation or key its history names (who
    recorded each step, who shipped it and to whom)."""
    p = PARTS.get(view, q.id) if "/" not in q.id else None
    if p is None:
        return set()
    found = _ids(p.supplier, p.custodian, p.transit_to)
    for row in view.rows(PART_HISTORY, {"part": q.id}, order=("seq",), limit=PARTY_ENTRIES_MAX):
        entry = msgspec.json.decode(row["entry"])
        data = entry.get("data") or {}
        found |= _ids(entry.get("org", ""), entry.get("by", ""), *(str(data.get(k, "")) for k in ("from", "to", "by")))
    return found


def _handoff_parties(view: QueryView, item: str) -> set[str]:
    """Everyone who held an item or was shipped it (the handoffs index)."""
    found: set[str] = set()
    for row in view.rows(HANDOFFS, {"item": item}, order=("seq",), limit=PARTY_ENTRIES_MAX):
        found |= _ids(row["party"], row["receiver"])
    return found


def batch_parties(view: QueryView, q: Any) -> set[str]:
    """The batch's supplier, its custodians (and receiver on the way)."""
    b = BATCHES.get(view, q.id) if "/" not in q.id else None
    if b is None:
        return set()
    return _ids(b.supplier, b.custodian.removeprefix("transit:"), b.shipped_by) | _handoff_parties(view, q.id)


def lot_parties(view: QueryView, q: Any) -> set[str]:
    """The lot's producer, custodian (and receiver on the way), its auditors, the suppliers of the
    batches that consumed it and the makers of the lots made from it."""
    lot = LOTS.get(view, q.id) if "/" not in q.id else None
    if lot is None:
        return set()
    found = _ids(lot.producer, lot.custodian, lot.transit_to, *(a.auditor for a in lot.attestations))
    found |= _handoff_parties(view, LOT_CONSUMER + q.id)
    for use in view.rows(LOT_USES, {"lot": q.id}, order=("batch",), limit=LOT_USERS_MAX):
        consumer = use["batch"]
        if consumer.startswith(LOT_CONSUMER):  # a lot split, merged or transformed from it
            made = LOTS.get(view, consumer.removeprefix(LOT_CONSUMER))
            if made is not None:
                found |= _ids(made.producer, made.custodian)
            continue
        b = BATCHES.get(view, consumer)
        if b is not None:
            found |= _ids(b.supplier, b.custodian)
    return found


PART_PARTIES = Party(part_parties, "the part's supplier, custodians and everyone its history names")
BATCH_PARTIES = Party(batch_parties, "the batch's supplier and custodian")
LOT_PARTIES = Party(lot_parties, "the lot's producer, auditors and the suppliers that used it")
