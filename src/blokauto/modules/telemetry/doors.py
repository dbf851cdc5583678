"""The telemetry module's door: what insurance (and the outer layers) may ask of telemetry.

``window`` sums the trip summaries of a vehicle's batches that end in a time window from two
records (each batch keeps the vehicle's running totals up to it), found by binary search over the
batches' end times, which increase with their sequence numbers: O(log n) state reads, however many
batches the window holds.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.module import Context
from ...core.state import Overlay, StateReader
from .state import BATCHES, CRASHES, VEHICLES, Crash, Totals

__all__ = ["CrashClaims", "TelemetryDoor", "TelemetryRecords", "Totals"]


@runtime_checkable
class CrashClaims(Protocol):
    """Whoever opens a claim when a vehicle reports a crash (insurance), in the same transaction."""

    def crash_reported(self, state: Overlay, ctx: Context, vin: str, crash: int) -> None: ...


@runtime_checkable
class TelemetryDoor(Protocol):
    """The telemetry module's door."""

    def window(self, state: StateReader, vin: str, start: int, end: int) -> Totals:
        """The sums of the summaries of ``vin``'s batches whose last sample is in [start, end)."""
        ...

    def crash(self, state: StateReader, vin: str, seq: int) -> Crash | None:
        """Crash ``seq`` of ``vin`` (None if it reported no such crash)."""
        ...

    def last_before(self, state: StateReader, vin: str, t: int) -> int:
        """The sequence number of ``vin``'s last batch whose last sample is before ``t`` (0: none)."""
        ...

    def through(self, state: StateReader, vin: str, seq: int) -> Totals:
        """The sums of the summaries of ``vin``'s batches 1 to ``seq`` (zero for 0)."""
        ...


class TelemetryRecords:
    """The implementation of ``TelemetryDoor`` wired in the module's definition."""

    def window(self, state: StateReader, vin: str, start: int, end: int) -> Totals:
        if end <= start or not vin.isalnum():
            return Totals()
        return _upto(state, vin, end).minus(_upto(state, vin, start))

    def crash(self, state: StateReader, vin: str, seq: int) -> Crash | None:
        return CRASHES.get(state, vin, seq) if vin.isalnum() and seq > 0 else None

    def last_before(self, state: StateReader, vin: str, t: int) -> int:
        return _last_before(state, vin, t) if vin.isalnum() else 0

    def through(self, state: StateReader, vin: str, seq: int) -> Totals:
        b = BATCHES.get(state, vin, seq) if vin.isalnum() and seq > 0 else None
        return b.cumulative if b is not None else Totals()


def _upto(state: StateReader, vin: str, t: int) -> Totals:
    """The running totals of the last batch of ``vin`` ending before ``t`` (zero if none)."""
    seq = _last_before(state, vin, t)
    b = BATCHES.get(state, vin, seq) if seq else None
    return b.cumulative if b is not None else Totals()


def _last_before(state: StateReader, vin: str, t: int) -> int:
    """The sequence number of the last batch of ``vin`` ending before ``t`` (0 if none)."""
    v = VEHICLES.get(state, vin)
    if v is None:
        return 0
    lo, hi = 0, v.batches  # invariant: batch lo ends before t (or lo == 0); batches after hi do not
    while lo < hi:
        mid = (lo + hi + 1) // 2
        b = BATCHES.get(state, vin, mid)
        assert b is not None, f"batch {mid} of {vin} missing below its count {v.batches}"
        if b.summary.end < t:
            lo = mid
        else:
            hi = mid - 1
    return lo
