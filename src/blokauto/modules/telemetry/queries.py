"""Telemetry queries and who reads them: a vehicle's batches, totals and crashes are its driving
data (category ``driving``): its holder, devices, maker and lenders, organisations the holder
consented to for ``driving``, regulators and police. Positions never reach the ledger."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import VehicleData
from ...core.encoding import Uint, to_builtins
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from . import errors
from .doors import TelemetryRecords
from .spec import BATCH_LIST, module
from .state import BATCHES, CRASHES, VEHICLES, Totals, VehicleTelemetry

PAGE_MAX = 1000
DRIVING = VehicleData("vin", "driving")


class VinPage(Page, kw_only=True):
    vin: KeyPart


class BatchQuery(msgspec.Struct):
    vin: KeyPart
    seq: Uint


class WindowQuery(msgspec.Struct):
    vin: KeyPart
    start: Uint = 0
    end: Uint = 2**53 - 1


@module.query("batches", VinPage, read=DRIVING)
def batches(view: QueryView, q: VinPage) -> dict[str, Any]:
    """A vehicle's committed batches, oldest first: sequence, first and last sample time, root, height."""
    v = VEHICLES.get(view, q.vin) or VehicleTelemetry()
    rows = view.rows(BATCH_LIST, {"vin": q.vin}, order=("seq",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"vin": q.vin, "total": v.batches, "last_end": v.last_end,
            "batches": [{k: r[k] for k in ("seq", "start", "end", "height", "root")} for r in rows]}


@module.query("batch", BatchQuery, read=DRIVING, proof_keys=lambda q: [BATCHES.key(q.vin, q.seq)])
def batch(view: QueryView, q: BatchQuery) -> dict[str, Any]:
    """One batch as committed: root, trip summary, UTC offset, signing device, running totals."""
    b = BATCHES.get(view, q.vin, q.seq)
    if b is None:
        raise errors.UnknownBatch(vin=q.vin, seq=q.seq)
    return to_builtins(b)


@module.query("totals", WindowQuery, read=DRIVING)
def totals(view: QueryView, q: WindowQuery) -> dict[str, Any]:
    """Sums of the trip summaries of the batches whose last sample is in [start, end) (ms)."""
    return {"vin": q.vin, "start": q.start, "end": q.end,
            **to_builtins(TelemetryRecords().window(view, q.vin, q.start, q.end))}


class SeqQuery(msgspec.Struct):
    vin: KeyPart
    after: Uint = 0
    through: Uint = 0


@module.query("seq_totals", SeqQuery, read=DRIVING)
def seq_totals(view: QueryView, q: SeqQuery) -> dict[str, Any]:
    """Sums of the trip summaries of batches ``after`` + 1 to ``through`` (by sequence number, as a
    premium statement counts them)."""
    doors = TelemetryRecords()
    t = doors.through(view, q.vin, q.through).minus(doors.through(view, q.vin, q.after)) \
        if q.through > q.after else Totals()
    return {"vin": q.vin, "after": q.after, "through": q.through, **to_builtins(t)}


@module.query("crashes", VinPage, read=DRIVING)
def crashes(view: QueryView, q: VinPage) -> dict[str, Any]:
    """The crashes a vehicle reported, oldest first."""
    v = VEHICLES.get(view, q.vin) or VehicleTelemetry()
    first = q.offset + 1
    last = min(v.crashes, q.offset + q.size(PAGE_MAX))
    out = [CRASHES.get(view, q.vin, seq) for seq in range(first, last + 1)]
    return {"vin": q.vin, "total": v.crashes, "crashes": [to_builtins(c) for c in out if c is not None]}


module.reads(DRIVING, "telemetry.batch_committed", "telemetry.crash_reported")
