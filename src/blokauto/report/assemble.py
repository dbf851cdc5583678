"""Assembling a ``blokauto-report/1`` document from a node's data."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from ..core.encoding import canonical, to_builtins
from ..core.errors import NotFound
from ..modules.vehicles.spec import HISTORY
from ..modules.vehicles.state import VEHICLES
from ..store.blocks import BlockLog
from ..store.state import StateStore
from ..verify.report import FORMAT, summarize


class UnknownVehicleReport(NotFound):
    code = "unknown_vin"
    template = "No vehicle with VIN {vin!r} is on this ledger (as of block {height})."


def build_report(blocks: BlockLog, state: StateStore, vin: str) -> dict[str, Any]:
    """The report of ``vin`` with its evidence, all read at one height (the last flushed block)."""
    genesis = blocks.genesis()
    assert genesis is not None
    key = VEHICLES.key(vin)
    with state.snapshot() as snap:
        raw, proof = snap.prove(key)
        if raw is None:
            raise UnknownVehicleReport(vin=vin, height=snap.height)
        rows = snap.conn.execute(f"SELECT entry FROM {HISTORY.name} WHERE vin=? ORDER BY seq", (vin,)).fetchall()
        height = snap.height
    checkpoint = blocks.checkpoint(height)
    assert checkpoint is not None
    entries_raw = [bytes(r[0]).decode() for r in rows]
    entries = [msgspec.json.decode(r) for r in entries_raw]
    record = msgspec.json.decode(raw)
    return {
        "format": FORMAT,
        "vin": vin,
        "generated_at": time.time_ns() // 1_000_000,
        "as_of": {"height": height, "time": checkpoint.header.time},
        "trust": {"chain": genesis.chain, "genesis_hash": genesis.hash().hex()},
        "summary": summarize(record, entries),
        "timeline": entries,
        "evidence": {
            "entries": entries_raw,
            "vehicle": {"key": key.decode(), "raw": raw.decode(), "proof": to_builtins(proof)},
            "checkpoint": {"header_raw": canonical(checkpoint.header).decode(),
                           "attestations": to_builtins(checkpoint.attestations)},
        },
    }
