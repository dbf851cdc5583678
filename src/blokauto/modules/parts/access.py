"""Who took part in a part's, a batch's or a material lot's story: the parties whose members may
read it (``core.access.Party``), besides regulators and police."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import Party
from ...core.module import QueryView
from .spec import LOT_USES, PART_HISTORY
from .state import BATCHES, LOTS, PARTS

#: History entries read to find a part's parties (a part with more is read by those named in these).
PARTY_ENTRIES_MAX = 5000
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


def batch_parties(view: QueryView, q: Any) -> set[str]:
    b = BATCHES.get(view, q.id) if "/" not in q.id else None
    return set() if b is None else _ids(b.supplier, b.custodian)


def lot_parties(view: QueryView, q: Any) -> set[str]:
    """The lot's producer, its auditors, and the suppliers of the batches that consumed it."""
    lot = LOTS.get(view, q.id) if "/" not in q.id else None
    if lot is None:
        return set()
    found = _ids(lot.producer, *(a.auditor for a in lot.attestations))
    for use in view.rows(LOT_USES, {"lot": q.id}, order=("batch",), limit=LOT_USERS_MAX):
        b = BATCHES.get(view, use["batch"])
        if b is not None:
            found |= _ids(b.supplier, b.custodian)
    return found


PART_PARTIES = Party(part_parties, "the part's supplier, custodians and everyone its history names")
BATCH_PARTIES = Party(batch_parties, "the batch's supplier and custodian")
LOT_PARTIES = Party(lot_parties, "the lot's producer, auditors and the suppliers that used it")
