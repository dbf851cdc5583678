"""Assembling a ``blokauto-report/1`` document from a node's data.

Each module gives its evidence through its door (``VehicleDoor``, ``PartsDoor``, ``RecallsDoor``):
which state keys prove what, the vehicle's history, and which open recalls covered it by the
recalls module's own rules. This file proves the keys at one snapshot and never reads a module's
tables or records itself. The report is checked by the independent verifier before it leaves.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import msgspec

from ..core.block import Checkpoint
from ..core.encoding import canonical, to_builtins
from ..modules.vehicles.errors import UnknownVehicleReport
from ..modules.insurance import InsuranceDoor
from ..modules.parts import PartsDoor
from ..modules.recalls import RecallsDoor
from ..modules.vehicles import VehicleDoor
from ..store.blocks import BlockLog
from ..store.damage import DamagedData
from ..store.state import StateStore
from ..verify import VerificationError
from ..verify.report import FORMAT, claim_view, summarize, verify_report_evidence


def _proven(snap: Any, key: bytes) -> dict[str, Any]:
    raw, proof = snap.prove(key)
    return {"key": key.decode(), "raw": None if raw is None else raw.decode(), "proof": to_builtins(proof)}


def recall_evidence(snap: Any, vin: str) -> dict[str, Any]:
    """Everything a verifier needs to decide, offline, which open recalls cover ``vin``: the open
    campaigns, the vehicle's bill of parts with its removals, the serialized parts on it (and any
    components a campaign names, also those a removed assembly held), and whether each campaign was
    remedied on it."""
    recalls = snap.need(RecallsDoor).recall_evidence(snap, vin)
    parts = snap.need(PartsDoor).recall_evidence(snap, vin, recalls.named)
    return {"open": _proven(snap, recalls.open_key),
            "campaigns": [_proven(snap, k) for k in recalls.campaign_keys],
            "bom": _proven(snap, parts.bom_key),
            "parts": [_proven(snap, k) for k in parts.part_keys],
            "remedies": [_proven(snap, k) for k in recalls.remedy_keys]}


def claim_evidence(snap: Any, vin: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The proven list of the claims of ``vin``'s current holding and each claim record; and what the
    report shows of them (a former holder's claims are not the buyer's to show)."""
    title = snap.need(VehicleDoor).title(snap, vin)
    ev = snap.need(InsuranceDoor).claim_evidence(snap, vin, title.since if title is not None else 0)
    proven = {"list": _proven(snap, ev.list_key), "claims": [_proven(snap, k) for k in ev.claim_keys]}
    return proven, [claim_view(msgspec.json.decode(c["raw"])) for c in proven["claims"] if c["raw"] is not None]


def build_report(blocks: BlockLog, state: StateStore, vin: str,
                 checkpoint_of: Callable[[int], Checkpoint | None] | None = None, *,
                 with_claims: bool = False) -> dict[str, Any]:
    """The report of ``vin`` with its evidence, all read at one height (the last flushed block).
    ``with_claims``: also every insurance claim on the vehicle, proven (only when its holder lets the
    report show them: the holder reads it, or its share link says so).

    ``checkpoint_of`` gives the node's checked checkpoint of a height (default: as stored). The
    evidence is verified before the report is returned: a report the node cannot prove raises
    ``DamagedData`` instead of leaving."""
    genesis = blocks.genesis()
    assert genesis is not None
    with state.snapshot() as snap:
        vehicle = snap.need(VehicleDoor).evidence(snap, vin)
        if vehicle is None:
            raise UnknownVehicleReport(vin=vin, height=snap.height)
        key = vehicle.key
        raw, proof = snap.prove(key)
        assert raw is not None
        recalls_ev = recall_evidence(snap, vin)
        recalls = [to_builtins(r) for r in snap.need(RecallsDoor).open_recalls(snap, snap.need, vin)]
        claims = claim_evidence(snap, vin) if with_claims else None
        height = snap.height
    checkpoint = (checkpoint_of or blocks.checkpoint)(height)
    if checkpoint is None:  # a state newer than the log: an older chain.db was put beside this state.db
        raise DamagedData("the block log", "chain.db",
                          f"state.db is at block {height} but the block log holds no block {height} (it ends at "
                          f"{blocks.height()}): the folder's files do not belong together; run `blokauto audit`",
                          scope="block")
    try:
        entries_raw = [e.decode() for e in vehicle.entries]
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
        "summary": summarize(record, entries, recalls),
        "timeline": entries,
        "evidence": {
            "entries": entries_raw,
            "vehicle": {"key": key.decode(), "raw": raw.decode(), "proof": to_builtins(proof)},
            "recalls": recalls_ev,
            "checkpoint": {"header_raw": canonical(checkpoint.header).decode(),
                           "attestations": to_builtins(checkpoint.attestations)},
        },
    }
    if claims is not None:
        report["evidence"]["claims"], report["insurance_claims"] = claims
    try:
        verify_report_evidence(report)
    except VerificationError as exc:
        raise DamagedData(f"the history report of {vin}", "state.db", f"its evidence does not verify ({exc})",
                          scope="state") from None
    return report
