"""The origins of a part, batch or lot, computed from state alone: a part's own batch and the
batches of every component inside it (at any depth), each batch's lots per unit, each lot's
carried origins. The same function runs in the rules (a passport), in the query, and in the SDK
over state values it proved one by one (``blokauto.client.sourcing``), so a proven answer is
recomputed, not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ...core.errors import NotFound
from ...core.state import StateReader
from .materials import lot_origins
from .origins import mix
from .state import BATCHES, LOTS, PARTS, MaterialLot, Origin

#: Most parts (an assembly and its components) and lots one origin answer reads.
MAX_PARTS = 5_000
MAX_LOTS = 1_000


@dataclass
class Provenance:
    kind: str  # part | batch | lot
    origins: list[Origin]
    lots: dict[str, MaterialLot] = field(default_factory=dict)  # the lots it consumed directly, by id
    roots: dict[str, MaterialLot] = field(default_factory=dict)  # each origin lot, by id
    keys: list[bytes] = field(default_factory=list)  # every state key read, in order


class _Reading:
    def __init__(self, state: StateReader) -> None:
        self.state = state
        self.keys: list[bytes] = []

    def get(self, m: Any, *ids: str) -> Any:
        key = m.key(*ids)
        if key not in self.keys:
            self.keys.append(key)
        return m.get(self.state, *ids)


def origins_of(state: StateReader, item: str) -> Provenance:
    """Origins of ``item``: a part or batch id (``<part number>:<serial or batch>``) or a lot id."""
    if ":" not in item:
        r = _Reading(state)
        if "/" in item or r.get(LOTS, item) is None:
            raise NotFound(what="Part, batch or lot", key=item)
        return _mixed(r, {item: Fraction(1)}, "lot")
    if "/" not in item and PARTS.has(state, item):
        return origins_of_items(state, [(item, 1)], kind="part")
    b = BATCHES.get(state, item) if "/" not in item else None
    if b is None:
        _Reading(state).get(PARTS, item)  # the key read, so a client proving the answer proves the absence
        raise NotFound(what="Part, batch or lot", key=item)
    return origins_of_items(state, [(item, b.quantity)], kind="batch")


def origins_of_items(state: StateReader, items: list[tuple[str, int]], *, kind: str = "items") -> Provenance:
    """Origins of what ``items`` hold together: (serialized part id, 1) or (batch id, units). A part
    brings its own batch and the batches of every component inside it, at any depth."""
    r = _Reading(state)
    batches: dict[str, int] = {}  # batch id -> units
    seen = 0
    for ref, units in items:
        part = r.get(PARTS, ref) if "/" not in ref else None
        if part is None:
            if r.get(BATCHES, ref) if "/" not in ref else None:
                batches[ref] = batches.get(ref, 0) + units
            continue
        stack = [part]
        while stack:
            p = stack.pop()
            seen += 1
            if seen > MAX_PARTS:
                raise NotFound(what=f"Origins of more than {MAX_PARTS} parts", key=ref)
            if p.batch:
                bid = f"{p.part_number}:{p.batch}"
                batches[bid] = batches.get(bid, 0) + 1
            for c in p.components:
                child = r.get(PARTS, c)
                if child is not None:
                    stack.append(child)
    weights: dict[str, Fraction] = {}
    for bid in sorted(batches):
        b = r.get(BATCHES, bid)
        if b is None:
            continue
        for use in b.materials:
            weights[use.lot] = weights.get(use.lot, Fraction(0)) + Fraction(use.mass_g * batches[bid], b.quantity)
    return _mixed(r, weights, kind)


def _mixed(r: _Reading, weights: dict[str, Fraction], kind: str) -> Provenance:
    if len(weights) > MAX_LOTS:
        raise NotFound(what=f"Origins through more than {MAX_LOTS} lots", key=kind)
    lots = {lot_id: lot for lot_id in sorted(weights) if (lot := r.get(LOTS, lot_id)) is not None}
    origins = mix((weights[i], lot_origins(lot)) for i, lot in lots.items())
    roots = {o.lot: root for o in origins if (root := r.get(LOTS, o.lot)) is not None}
    return Provenance(kind, origins, lots, roots, r.keys)


def describe(p: Provenance, item: str) -> dict[str, Any]:
    """The answer of ``parts.origin`` (and ``materials_of`` for a part): per material, each origin's
    share with its mine, country and the origin lot's attestations, and the recycled share."""
    materials: dict[str, dict[str, Any]] = {}
    for o in p.origins:
        m = materials.setdefault(o.material, {"material": o.material, "origins": [], "recycled_ppm": 0})
        root = p.roots.get(o.lot)
        m["origins"].append({"lot": o.lot, "mine": o.mine, "country": o.country, "ppm": o.ppm, "recycled": o.recycled,
                             "producer": root.producer if root else "",
                             "attestations": [{"auditor": a.auditor, "standard": a.standard, "result": a.result,
                                               "report": a.report, "valid_until": a.valid_until, "height": a.height}
                                              for a in (root.attestations if root else [])]})
        if o.recycled:
            m["recycled_ppm"] += o.ppm
    return {"id": item, "kind": p.kind, "materials": list(materials.values()),
            "lots": [{"lot": lot.id, "material": lot.material, "process": lot.process, "step": lot.step,
                      "attestations": [{"auditor": a.auditor, "standard": a.standard, "result": a.result,
                                        "report": a.report, "valid_until": a.valid_until, "height": a.height}
                                       for a in lot.attestations]}
                     for lot in p.lots.values()],
            "steps": max((lot.step for lot in p.lots.values()), default=0),
            "keys": [k.decode() for k in p.keys]}
