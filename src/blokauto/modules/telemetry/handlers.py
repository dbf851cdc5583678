"""Telemetry rules. A batch or crash counts only if a current device key of the vehicle signed it
(``Vehicles.require_device``: a key rotated out or revoked is refused from that block on)."""

from __future__ import annotations

from ...core.module import ANYONE, Context
from ...core.state import Overlay
from . import errors
from .messages import BatchCommitted, CommitBatch, CrashReported, ReportCrash
from .samples import MAX_MM_PER_MS, MAX_SAMPLES, ODOMETER_SLACK_M, TripSummary
from .doors import CrashClaims
from .spec import BATCH_LIST, CRASH_DECEL_MMS2, CRASH_MAX_AGE_MS, FUTURE_SKEW_MS, Vehicles, module
from .state import BATCHES, CRASH_AT, CRASHES, VEHICLES, Batch, Crash, VehicleTelemetry


def check_summary(s: TripSummary) -> None:
    """Refuse a summary no samples could give (``summarize`` never returns one of these)."""
    for ok, reason in (
        (1 <= s.samples <= MAX_SAMPLES, f"samples must be 1 to {MAX_SAMPLES}, not {s.samples}"),
        (s.end >= s.start, f"end {s.end} is before start {s.start}"),
        (s.samples > 1 or s.end == s.start, "one sample starts and ends at the same time"),
        (s.end - s.start >= s.samples - 1, f"{s.samples} samples at strictly increasing ms need at least "
                                           f"{s.samples - 1} ms, not {s.end - s.start}"),
        (s.duration_s == (s.end - s.start) // 1000, f"duration_s must be (end - start) // 1000 = "
                                                    f"{(s.end - s.start) // 1000}, not {s.duration_s}"),
        (s.night_distance_m <= s.distance_m, "night_distance_m is more than distance_m"),
        (s.distance_m <= (s.end - s.start) * MAX_MM_PER_MS // 1000 + (s.samples - 1) * ODOMETER_SLACK_M,
         f"{s.distance_m} m in {s.end - s.start} ms is faster than 500 km/h"),
        (s.over_limit_s <= s.duration_s, "over_limit_s is more than duration_s"),
        (s.harsh_brakes <= s.samples and s.crash_events <= s.samples, "more events than samples"),
        (s.max_speed <= 500, "max_speed is above 500 km/h"),
    ):
        if not ok:
            raise errors.InvalidSummary(reason=reason)


@module.message(CommitBatch, roles=ANYONE)
def commit_batch(state: Overlay, ctx: Context, msg: CommitBatch) -> None:
    """The batch follows the vehicle's last one in time (no overlap, no going back), ends no later than
    the block time plus the clock skew allowed, and its summary is one samples could give."""
    ctx.need(Vehicles).require_device(state, msg.vin, ctx.sender)
    s = msg.summary
    check_summary(s)
    skew = ctx.param(FUTURE_SKEW_MS.name)
    if s.end > ctx.time + skew:
        raise errors.BatchFromFuture(end=s.end, skew_ms=skew, time=ctx.time)
    v = VEHICLES.get(state, msg.vin) or VehicleTelemetry()
    if v.batches and s.start <= v.last_end:
        raise errors.BatchOverlaps(vin=msg.vin, start=s.start, seq=v.batches, last_end=v.last_end)
    seq = v.batches + 1
    totals = v.totals.plus(s)
    BATCHES.put(state, Batch(msg.vin, seq, msg.root, s, msg.utc_offset_min, ctx.sender, ctx.height, ctx.time, totals),
                msg.vin, seq)
    VEHICLES.put(state, VehicleTelemetry(seq, s.end, v.crashes, totals), msg.vin)
    ctx.index_put(BATCH_LIST, vin=msg.vin, seq=seq, start=s.start, end=s.end, height=ctx.height, root=msg.root)
    ctx.emit(BatchCommitted(vin=msg.vin, seq=seq, start=s.start, end=s.end))


@module.message(ReportCrash, roles=ANYONE)
def report_crash(state: Overlay, ctx: Context, msg: ReportCrash) -> None:
    """A crash counts once per vehicle and time, dated within ``crash_report_max_age_ms`` before the
    block time and no more than the skew after it; it enters the vehicle's history and opens a claim on
    its active policy (insurance), all in this transaction."""
    vehicles = ctx.need(Vehicles)
    vehicles.require_device(state, msg.vin, ctx.sender)
    threshold = ctx.param(CRASH_DECEL_MMS2.name)
    if not (msg.airbag or msg.impact or msg.decel_mms2 >= threshold):
        raise errors.NotACrash(threshold=threshold, decel=msg.decel_mms2)
    skew, max_age = ctx.param(FUTURE_SKEW_MS.name), ctx.param(CRASH_MAX_AGE_MS.name)
    if msg.t > ctx.time + skew:
        raise errors.CrashFromFuture(t=msg.t, skew_ms=skew, time=ctx.time)
    if msg.t + max_age < ctx.time:
        raise errors.CrashTooOld(t=msg.t, max_age_ms=max_age, time=ctx.time)
    v = VEHICLES.get(state, msg.vin) or VehicleTelemetry()
    earlier = CRASH_AT.get(state, msg.vin, msg.t)
    if earlier is not None:
        raise errors.CrashAlreadyReported(vin=msg.vin, t=msg.t, seq=earlier)
    seq = v.crashes + 1
    CRASHES.put(state, Crash(msg.vin, seq, msg.t, msg.decel_mms2, msg.airbag, msg.impact, msg.odometer_m, ctx.sender,
                             ctx.height, ctx.time), msg.vin, seq)
    CRASH_AT.put(state, seq, msg.vin, msg.t)
    VEHICLES.put(state, VehicleTelemetry(v.batches, v.last_end, seq, v.totals), msg.vin)
    vehicles.record_event(state, ctx, msg.vin, "crash_reported",
                          {"crash": seq, "t": msg.t, "airbag": msg.airbag, "impact": msg.impact,
                           "decel_mms2": msg.decel_mms2, "km": msg.odometer_m // 1000})
    ctx.emit(CrashReported(vin=msg.vin, seq=seq, t=msg.t))
    ctx.need(CrashClaims).crash_reported(state, ctx, msg.vin, seq)
