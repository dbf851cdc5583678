"""Assembling a ``blokauto-report/1`` document from a node's data."""

from __future__ import annotations

import time
from typing import Any, Callable

import msgspec

from ..core.encoding import canonical, to_builtins
from ..core.errors import NotFound
from ..modules.parts.state import BOMS, PARTS
from ..modules.recalls.state import CAMPAIGNS, OPEN, REMEDIES
from ..modules.vehicles.spec import HISTORY
from ..modules.vehicles.state import VEHICLES
from ..core.block import Checkpoint
from ..store.blocks import BlockLog
from ..store.damage import DamagedData
from ..store.state import StateStore
from ..verify import VerificationError
from ..verify.report import FORMAT, open_recalls, summarize, verify_report_evidence


class UnknownVehicleReport(NotFound):
    code = "unknown_vin"
    template = "No vehicle with VIN {vin!r} is on this ledger (as of block {height})."


def _proven(snap: Any, key: bytes) -> dict[str, Any]:
    raw, proof = snap.prove(key)
    return {"key": key.decode(), "raw": None if raw is None else raw.decode(), "proof": to_builtins(proof)}


def recall_evidence(snap: Any, vin: str) -> dict[str, Any]:
    """Everything a verifier needs to decide, offline, which open recalls cover ``vin``: the open
    campaigns, the vehicle's bill of parts with its removals, the serialized parts on it (and any
    components a campaign names, also those a removed assembly held), and whether each campaign was
    remedied on it."""
    open_ev = _proven(snap, OPEN.key)
    open_ids = msgspec.json.decode(open_ev["raw"]) if open_ev["raw"] else []
    campaigns = [_proven(snap, CAMPAIGNS.key(cid)) for cid in open_ids]
    named: set[str] = set()
    for c in campaigns:
        scope = msgspec.json.decode(c["raw"])["scope"]
        named |= set(scope["part_numbers"]) | {b["part_number"] for b in scope["batches"]} | \
            {r["part_number"] for r in scope["serial_ranges"]}
    bom_ev = _proven(snap, BOMS.key(vin))
    parts: list[dict[str, Any]] = []
    if bom_ev["raw"]:
        bom = msgspec.json.decode(bom_ev["raw"])
        refs = [i["ref"] for i in bom["items"] if i["kind"] == "part"] + \
            [r["ref"] for r in bom["removed"] if r["kind"] == "part"] + \
            [x for r in bom["removed"] for x in r["nested"] if x.partition(":")[0] in named]
        seen: set[str] = set()
        while refs:
            ref = refs.pop()
            if ref in seen:
                continue
            seen.add(ref)
            ev = _proven(snap, PARTS.key(ref))
            parts.append(ev)
            if ev["raw"]:
                refs += [c for c in msgspec.json.decode(ev["raw"])["components"] if c.partition(":")[0] in named]
    remedies = [_proven(snap, REMEDIES.key(cid, vin)) for cid in open_ids]
    return {"open": open_ev, "campaigns": campaigns, "bom": bom_ev, "parts": parts, "remedies": remedies}


def build_report(blocks: BlockLog, state: StateStore, vin: str,
                 checkpoint_of: Callable[[int], Checkpoint | None] | None = None) -> dict[str, Any]:
    """The report of ``vin`` with its evidence, all read at one height (the last flushed block).

    ``checkpoint_of`` gives the node's checked checkpoint of a height (default: as stored). The
    evidence is verified before the report is returned: a report the node cannot prove raises
    ``DamagedData`` instead of leaving."""
    genesis = blocks.genesis()
    assert genesis is not None
    key = VEHICLES.key(vin)
    with state.snapshot() as snap:
        raw, proof = snap.prove(key)
        if raw is None:
            raise UnknownVehicleReport(vin=vin, height=snap.height)
        rows = snap.conn.execute(f"SELECT entry FROM {HISTORY.name} WHERE vin=? ORDER BY seq", (vin,)).fetchall()
        recalls_ev = recall_evidence(snap, vin)
        height = snap.height
    checkpoint = (checkpoint_of or blocks.checkpoint)(height)
    assert checkpoint is not None
    try:
        entries_raw = [bytes(r[0]).decode() for r in rows]
        entries = [msgspec.json.decode(r) for r in entries_raw]
        record = msgspec.json.decode(raw)
    except (UnicodeDecodeError, msgspec.DecodeError) as exc:
        raise DamagedData(f"the history of {vin}", "state.db", f"a stored entry cannot be read ({exc})",
                          scope="state") from None
    report = {
        "format": FORMAT,
        "vin": vin,
        "generated_at": time.time_ns() // 1_000_000,
        "as_of": {"height": height, "time": checkpoint.header.time},
        "trust": {"chain": genesis.chain, "genesis_hash": genesis.hash().hex()},
        "summary": summarize(record, entries, open_recalls(record, recalls_ev)),
        "timeline": entries,
        "evidence": {
            "entries": entries_raw,
            "vehicle": {"key": key.decode(), "raw": raw.decode(), "proof": to_builtins(proof)},
            "recalls": recalls_ev,
            "checkpoint": {"header_raw": canonical(checkpoint.header).decode(),
                           "attestations": to_builtins(checkpoint.attestations)},
        },
    }
    try:
        verify_report_evidence(report)
    except VerificationError as exc:
        raise DamagedData(f"the history report of {vin}", "state.db", f"its evidence does not verify ({exc})",
                          scope="state") from None
    return report
