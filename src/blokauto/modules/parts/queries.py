"""Parts queries: a part's full trace, a vehicle's bill of parts, where its materials came from."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.encoding import Uint, to_builtins
from ...core.errors import NotFound
from ...core.access import Party, VehicleData
from .access import BATCH_PARTIES, LOT_PARTIES, PART_PARTIES, batch_parties, part_parties
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .handlers import _nested
from .spec import LOT_USES, PART_HISTORY, module
from .state import BATCHES, BOMS, LOTS, PART_TYPES, PARTS

#: Most history entries one page of ``trace`` returns.
TRACE_PAGE_MAX = 5000
#: Most batches ``lot`` lists as using a material lot.
LOT_USES_MAX = 10_000


class RefQuery(msgspec.Struct):
    id: KeyPart


class VinQuery(msgspec.Struct):
    vin: KeyPart


class TraceQuery(Page, kw_only=True):
    id: KeyPart
    limit: Uint = 500


def _lots_of(view: QueryView, batch_id: str) -> list[dict[str, Any]]:
    b = BATCHES.get(view, batch_id) if batch_id else None
    out = []
    for use in b.materials if b else []:
        lot = LOTS.get(view, use.lot)
        if lot is not None:
            out.append({"lot": lot.id, "material": lot.material, "mass_g": use.mass_g, "mine": lot.mine,
                        "country": lot.country, "producer": lot.producer,
                        "attestations": to_builtins(lot.attestations)})
    return out


@module.query("part", RefQuery, read=PART_PARTIES, proof_keys=lambda q: [PARTS.key(q.id)])
def part(view: QueryView, q: RefQuery) -> dict[str, Any]:
    """A serialized part's twin: custody, status, location, condition breaches."""
    p = PARTS.get(view, q.id) if "/" not in q.id else None
    if p is None:
        raise NotFound(what="Part", key=q.id)
    return to_builtins(p)


def _committed_history(view: Any, parent: tuple) -> tuple[int, str] | None:
    p = PARTS.get(view, parent[0]) if "/" not in parent[0] else None
    return None if p is None else (p.history.count, p.history.head)


module.history_chain(PART_HISTORY, parent=("part",), seq="seq", entry="entry", committed=_committed_history)


@module.query("trace", TraceQuery, read=PART_PARTIES)
def trace(view: QueryView, q: TraceQuery) -> dict[str, Any]:
    """A part's whole story: minting, custody, conditions, assembly, installations, removals, and the
    raw materials of its batch with their due-diligence attestations."""
    p = PARTS.get(view, q.id) if "/" not in q.id else None
    if p is None:
        raise NotFound(what="Part", key=q.id)
    rows = view.rows(PART_HISTORY, {"part": q.id}, order=("seq",), limit=q.size(TRACE_PAGE_MAX), offset=q.offset)
    t = PART_TYPES.get(view, p.part_number)
    return {"part": to_builtins(p), "type": to_builtins(t) if t else None,
            "history": [msgspec.json.decode(r["entry"]) for r in rows],
            "materials": _lots_of(view, f"{p.part_number}:{p.batch}" if p.batch else "")}


@module.query("batch", RefQuery, read=BATCH_PARTIES, proof_keys=lambda q: [BATCHES.key(q.id)])
def batch(view: QueryView, q: RefQuery) -> dict[str, Any]:
    """A batch: quantity, stock, installed units, custody and materials."""
    b = BATCHES.get(view, q.id) if "/" not in q.id else None
    if b is None:
        raise NotFound(what="Batch", key=q.id)
    return {**to_builtins(b), "materials": _lots_of(view, q.id)}


@module.query("lot", RefQuery, read=LOT_PARTIES, proof_keys=lambda q: [LOTS.key(q.id)])
def lot(view: QueryView, q: RefQuery) -> dict[str, Any]:
    """A raw-material lot: origin, mass consumed, attestations, and the batches that used it."""
    lot_ = LOTS.get(view, q.id) if "/" not in q.id else None
    if lot_ is None:
        raise NotFound(what="Material lot", key=q.id)
    uses = view.rows(LOT_USES, {"lot": q.id}, order=("batch",), limit=LOT_USES_MAX)
    return {**to_builtins(lot_), "used_by": [{"batch": u["batch"], "mass_g": u["mass_g"]} for u in uses]}


@module.query("bom", VinQuery, read=VehicleData("vin", "history"), proof_keys=lambda q: [BOMS.key(q.vin)])
def bom(view: QueryView, q: VinQuery) -> dict[str, Any]:
    """A vehicle's bill of installed parts (assemblies with their components) and what was removed."""
    b = BOMS.get(view, q.vin) if q.vin.isalnum() else None
    if b is None:
        return {"vin": q.vin, "items": [], "removed": []}
    items = []
    for item in b.items:
        row = to_builtins(item)
        if item.kind == "part":
            p = PARTS.get(view, item.ref)
            row["components"] = [c.id for c in _nested(view, p)] if p else []
        items.append(row)
    return {"vin": q.vin, "items": items, "removed": to_builtins(b.removed)}


class MaterialsQuery(msgspec.Struct, kw_only=True):
    vin: KeyPart


@module.query("materials_of", MaterialsQuery, read=VehicleData("vin", "history"))
def materials_of(view: QueryView, q: MaterialsQuery) -> dict[str, Any]:
    """Where the raw materials in a vehicle came from: each lot its parts drew from with its audits
    (``lots``), and per material every mine's share by mass balance and the recycled share
    (``materials``). For one part, such as a battery pack, ask ``parts/origin``."""
    from .provenance import describe, origins_of_items

    b = BOMS.get(view, q.vin) if q.vin.isalnum() else None
    found: dict[str, dict[str, Any]] = {}
    for item in b.items if b else []:
        batch_ids = [item.ref] if item.kind == "batch" else []
        if item.kind == "part":
            p = PARTS.get(view, item.ref)
            for x in ([p] + _nested(view, p)) if p else []:
                if x.batch:
                    batch_ids.append(f"{x.part_number}:{x.batch}")
        for bid in batch_ids:
            for lot_ in _lots_of(view, bid):
                entry = found.setdefault(lot_["lot"], {**lot_, "via": []})
                if bid not in entry["via"]:
                    entry["via"].append(bid)
    carried = [(i.ref, i.qty if i.kind == "batch" else 1) for i in (b.items if b else [])]
    origins = describe(origins_of_items(view, carried, kind="vehicle"), q.vin)
    return {"vin": q.vin, "lots": sorted(found.values(), key=lambda x: (x["material"], x["lot"])),
            "materials": origins["materials"]}


def _item_parties(view: QueryView, ev: dict[str, Any]) -> set[str]:
    """A custody change's item is a part or a batch; a breach names its part."""
    ref = RefQuery(str(ev.get("item") or ev.get("part") or ""))
    return part_parties(view, ref) | batch_parties(view, ref) | {str(ev.get("custodian", "")).removeprefix("org:")}


def _minted_parties(view: QueryView, ev: dict[str, Any]) -> set[str]:
    t = PART_TYPES.get(view, str(ev.get("part_number", "")))
    return set() if t is None else {t.supplier}


module.reads(Party(_minted_parties, "the part number's supplier"), "parts.minted")
module.reads(Party(_item_parties, "the item's parties"), "parts.custody_changed", "parts.condition_breach")
module.reads(VehicleData("vin", "history"), "parts.installed", "parts.removed")
