"""Telemetry state: per vehicle its batches (root and trip summary, never the samples) and the
crashes it reported; and the running totals that let any window of batches be summed in two reads."""

from __future__ import annotations

import msgspec

from ...core.encoding import Uint
from ...core.state import StateMap
from . import keys
from .samples import TripSummary


class Totals(msgspec.Struct, frozen=True):
    """Sums of trip summaries (of a window of batches, or of all batches up to one)."""

    batches: Uint = 0
    samples: Uint = 0
    duration_s: Uint = 0
    distance_m: Uint = 0
    night_distance_m: Uint = 0
    over_limit_s: Uint = 0
    harsh_brakes: Uint = 0
    crash_events: Uint = 0

    def plus(self, s: TripSummary) -> "Totals":
        return Totals(self.batches + 1, self.samples + s.samples, self.duration_s + s.duration_s,
                      self.distance_m + s.distance_m, self.night_distance_m + s.night_distance_m,
                      self.over_limit_s + s.over_limit_s, self.harsh_brakes + s.harsh_brakes,
                      self.crash_events + s.crash_events)

    def minus(self, o: "Totals") -> "Totals":
        return Totals(*(getattr(self, f) - getattr(o, f) for f in Totals.__struct_fields__))


class VehicleTelemetry(msgspec.Struct, frozen=True):
    batches: Uint = 0
    last_end: Uint = 0  # t of the last sample of the newest batch
    crashes: Uint = 0
    totals: Totals = Totals()


class Batch(msgspec.Struct, frozen=True):
    """A committed batch: its Merkle root and summary, who signed it, and the vehicle's totals up to
    and including it (so a window's sum is a difference of two)."""

    vin: str
    seq: Uint
    root: str  # hex, RFC 9162 over the samples
    summary: TripSummary
    utc_offset_min: int
    device: str  # the device key that signed it
    height: Uint
    time: Uint  # block time
    cumulative: Totals


class Crash(msgspec.Struct, frozen=True):
    """A crash the vehicle signed: first notice of loss for its insurer."""

    vin: str
    seq: Uint
    t: Uint  # when it happened (the vehicle's clock, ms)
    decel_mms2: Uint  # peak deceleration
    airbag: bool
    impact: bool
    odometer_m: Uint
    device: str
    height: Uint
    time: Uint  # block time of the report


VEHICLES = StateMap(keys.VEHICLE, VehicleTelemetry)
BATCHES = StateMap(keys.BATCH, Batch)
CRASHES = StateMap(keys.CRASH, Crash)
CRASH_AT = StateMap(keys.CRASH_AT, int)
