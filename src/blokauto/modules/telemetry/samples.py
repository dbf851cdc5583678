"""Telemetry samples and the one deterministic function over them (pure: the node, the SDK, the
vehicle and the insurer run the same code, so a summary any of them computes is the ledger's).

A sample is a JSON array of integers (``Sample``, array-like, so a batch of 1,000 is ~50 kB)::

    [t, speed, accel, lat, lon, odometer_m, limit, events]

    t           ms since 1970-01-01 UTC, strictly increasing within a batch
    speed       km/h (0-500)
    accel       longitudinal acceleration, mm/s² (negative: braking)
    lat, lon    coarse position, ten-thousandths of a degree (about 11 m)
    odometer_m  the odometer in metres, never decreasing within a batch, nor advancing faster than
                500 km/h between two samples (plus 1 km)
    limit       the posted speed limit the vehicle's map knows, km/h (0: unknown)
    events      bit flags: 1 airbag deployed, 2 impact detected by the ECU

A batch's Merkle root is RFC 9162's over the samples' canonical bytes (``leaf_bytes``), as the core's
trees are, so an inclusion proof shows one sample belongs to a committed batch without the others.

``summarize`` (version 1) reads, for each interval between consecutive samples a → b:

    distance_m        sum of b.odometer_m - a.odometer_m
    night_distance_m  the same, where a's local time (t + utc_offset_min) is 22:00-06:00
    over_limit_s      sum of (b.t - a.t) where a.speed > a.limit > 0 and b.t - a.t <= 60 s (a longer
                      gap is the vehicle switched off), in whole seconds at the end
    harsh_brakes      samples whose accel <= -3,900 mm/s² (0.4 g) after one above it (a run counts once)
    crash_events      samples with the airbag or impact flag, or accel <= -39,000 mm/s² (4 g)
    max_speed         the highest speed; duration_s = (end - start) // 1000
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Iterable, Sequence

import msgspec

from ...core.encoding import Uint
from ...core.merkle import inclusion_proof, root_from_leaf_hashes, verify_inclusion

SUMMARY_VERSION = 1
HARSH_BRAKE_MMS2 = 3_900
CRASH_DECEL_MMS2 = 39_000
MAX_GAP_MS = 60_000
NIGHT_FROM_H, NIGHT_TO_H = 22, 6
AIRBAG, IMPACT = 1, 2
HOUR_MS = 3_600_000
#: Most samples one batch holds.
MAX_SAMPLES = 10_000
#: The odometer may advance at most 500 km/h (139 m/s) between samples, plus 1 km (coarse odometers, compressed test trips).
MAX_MM_PER_MS = 139
ODOMETER_SLACK_M = 1_000

Speed = Annotated[int, msgspec.Meta(ge=0, le=500)]
Accel = Annotated[int, msgspec.Meta(ge=-500_000, le=500_000)]
Lat = Annotated[int, msgspec.Meta(ge=-900_000, le=900_000)]
Lon = Annotated[int, msgspec.Meta(ge=-1_800_000, le=1_800_000)]
Events = Annotated[int, msgspec.Meta(ge=0, le=255)]
UtcOffset = Annotated[int, msgspec.Meta(ge=-720, le=840, description="the vehicle's UTC offset, minutes")]


class Sample(msgspec.Struct, array_like=True, frozen=True, forbid_unknown_fields=True, gc=False):
    """One reading of the vehicle's sensors (see the module docstring for units)."""

    t: Uint
    speed: Speed
    accel: Accel
    lat: Lat
    lon: Lon
    odometer_m: Annotated[int, msgspec.Meta(ge=0, le=100_000_000_000)]
    limit: Speed
    events: Events


class TripSummary(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the ledger records of a batch, computed from its samples by ``summarize``."""

    samples: Uint
    start: Uint  # t of the first sample
    end: Uint  # t of the last sample
    duration_s: Uint
    distance_m: Uint
    night_distance_m: Uint
    over_limit_s: Uint
    harsh_brakes: Uint
    crash_events: Uint
    max_speed: Uint


class SampleError(ValueError):
    """The samples cannot form a batch: ``reason`` says why, ``index`` which sample (-1: the batch)."""

    def __init__(self, reason: str, index: int = -1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.index = index


class BatchMismatch(ValueError):
    """Samples do not match what was committed for them: ``field`` names the first difference."""

    def __init__(self, field: str, committed: object, recomputed: object) -> None:
        super().__init__(f"{field}: committed {committed}, recomputed from the samples {recomputed}")
        self.field = field
        self.committed = committed
        self.recomputed = recomputed


_encode = msgspec.json.Encoder().encode
_decode_batch = msgspec.json.Decoder(list[Sample]).decode
_sha256 = hashlib.sha256


def decode_samples(data: bytes) -> list[Sample]:
    """A JSON array of samples, typed (``msgspec.ValidationError`` names what is wrong)."""
    return _decode_batch(data)


def leaf_bytes(sample: Sample) -> bytes:
    """The canonical bytes a sample's Merkle leaf hashes."""
    return _encode(sample)


def leaf_hashes(samples: Iterable[Sample]) -> list[bytes]:
    return [_sha256(b"\x00" + _encode(s)).digest() for s in samples]


def batch_root(samples: Sequence[Sample]) -> bytes:
    """The RFC 9162 Merkle root over the samples in order."""
    return root_from_leaf_hashes(leaf_hashes(samples))


def check_samples(samples: Sequence[Sample]) -> None:
    """Raise ``SampleError`` unless the samples form a batch: 1 to ``MAX_SAMPLES`` of them, times
    strictly increasing, the odometer never going back."""
    if not samples:
        raise SampleError("a batch holds at least one sample")
    if len(samples) > MAX_SAMPLES:
        raise SampleError(f"a batch holds at most {MAX_SAMPLES} samples, not {len(samples)}")
    prev = samples[0]
    for i in range(1, len(samples)):
        s = samples[i]
        if s.t <= prev.t:
            raise SampleError(f"sample {i} is at t={s.t}, not after the sample before it (t={prev.t})", i)
        if s.odometer_m < prev.odometer_m:
            raise SampleError(f"sample {i}'s odometer {s.odometer_m} m is below the sample before it "
                              f"({prev.odometer_m} m)", i)
        if s.odometer_m - prev.odometer_m > (s.t - prev.t) * MAX_MM_PER_MS // 1000 + ODOMETER_SLACK_M:
            raise SampleError(f"sample {i}'s odometer advanced {s.odometer_m - prev.odometer_m} m in "
                              f"{s.t - prev.t} ms, faster than 500 km/h", i)
        prev = s


def _is_night(t: int, offset_ms: int) -> bool:
    hour = ((t + offset_ms) // HOUR_MS) % 24
    return hour >= NIGHT_FROM_H or hour < NIGHT_TO_H


def summarize(samples: Sequence[Sample], utc_offset_min: int) -> TripSummary:
    """The trip summary of checked samples (``check_samples``), by the rules in the module docstring."""
    offset = utc_offset_min * 60_000
    night = over_ms = harsh = crashes = 0
    top = 0
    braking = False
    prev: Sample | None = None
    for s in samples:
        if prev is not None:
            if _is_night(prev.t, offset):
                night += s.odometer_m - prev.odometer_m
            if 0 < prev.limit < prev.speed and s.t - prev.t <= MAX_GAP_MS:
                over_ms += s.t - prev.t
        hard = s.accel <= -HARSH_BRAKE_MMS2
        if hard and not braking:
            harsh += 1
        braking = hard
        if s.events & (AIRBAG | IMPACT) or s.accel <= -CRASH_DECEL_MMS2:
            crashes += 1
        if s.speed > top:
            top = s.speed
        prev = s
    first, last = samples[0], samples[-1]
    return TripSummary(samples=len(samples), start=first.t, end=last.t, duration_s=(last.t - first.t) // 1000,
                       distance_m=last.odometer_m - first.odometer_m, night_distance_m=night,
                       over_limit_s=over_ms // 1000, harsh_brakes=harsh, crash_events=crashes, max_speed=top)


def check_batch(samples: Sequence[Sample], utc_offset_min: int, root: str, summary: TripSummary) -> None:
    """Raise ``BatchMismatch`` unless ``samples`` are the batch committed with ``root`` (hex) and
    ``summary``; ``SampleError`` if they cannot form a batch at all. What an insurer runs on the
    samples the holder disclosed, against the batch record it read with its proof."""
    check_samples(samples)
    got = batch_root(samples).hex()
    if got != root:
        raise BatchMismatch("root", root, got)
    recomputed = summarize(samples, utc_offset_min)
    for field in TripSummary.__struct_fields__:
        if getattr(summary, field) != getattr(recomputed, field):
            raise BatchMismatch(field, getattr(summary, field), getattr(recomputed, field))


def sample_proof(samples: Sequence[Sample], index: int) -> list[str]:
    """The inclusion proof (hex hashes, leaf upwards) of sample ``index`` in its batch."""
    return [h.hex() for h in inclusion_proof(leaf_hashes(samples), index)]


def verify_sample(sample: Sample, index: int, count: int, proof: Sequence[str], root: str) -> None:
    """Raise ``core.merkle.ProofError`` unless ``sample`` is sample ``index`` of the ``count``-sample
    batch whose root is ``root`` (hex)."""
    verify_inclusion(index, count, _sha256(b"\x00" + leaf_bytes(sample)).digest(), [bytes.fromhex(h) for h in proof],
                     bytes.fromhex(root))
