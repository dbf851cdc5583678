"""The telemetry module's declaration: parameters, index tables, and what it needs from vehicles
and from whoever acts on a crash (insurance's claims)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader

module = Module(
    "telemetry",
    "Device-signed batches of sensor samples committed by Merkle root with a deterministic trip summary "
    "(the samples stay off the ledger), and crashes the vehicle reports.",
)

MINUTE_MS = 60_000
DAY_MS = 86_400_000

FUTURE_SKEW_MS = module.param(
    "telemetry_future_skew_ms", 5 * MINUTE_MS, min=0, max=DAY_MS,
    doc="How far after the block time a batch's last sample or a crash may be dated (vehicle clocks drift).",
)
CRASH_MAX_AGE_MS = module.param(
    "crash_report_max_age_ms", 7 * DAY_MS, min=MINUTE_MS, max=365 * DAY_MS,
    doc="How long after a crash (block time) the vehicle may still report it.",
)
CRASH_DECEL_MMS2 = module.param(
    "crash_decel_mms2", 39_000, min=10_000, max=500_000,
    doc="Peak deceleration (mm/s²) from which a report without airbag or impact flag counts as a crash.",
)

BATCH_LIST = module.index("batches", columns=[("vin", "TEXT"), ("seq", "INTEGER"), ("start", "INTEGER"),
                                               ("end", "INTEGER"), ("height", "INTEGER"), ("root", "TEXT")],
                          key=["vin", "seq"])


@runtime_checkable
class Vehicles(Protocol):
    """What telemetry needs from vehicles: whether a key is a current device key, and the history."""

    def require_device(self, state: StateReader, vin: str, did: str) -> None: ...

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None: ...
