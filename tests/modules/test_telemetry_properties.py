"""Properties of telemetry samples, summaries, batch checks and proofs (hypothesis).

- ``summarize`` is deterministic and does not depend on how the samples reached it (a list, a tuple,
  decoded from the JSON a vehicle sends, rebuilt field by field), and agrees with a reference written
  here from the module docstring's rules (local time through ``datetime``, not the module's arithmetic);
- its summaries keep their invariants (night distance within the distance, time over the limit within
  the duration, harsh brakes counted once per run) and are ones the ledger accepts (``check_summary``);
- ``check_batch`` accepts exactly the committed samples: any single-field change of any sample is a
  ``BatchMismatch`` (of the root; and of the first summary field that changed, if the root is the
  changed samples' own);
- an inclusion proof verifies for every index and fails for a changed sample or another index;
- replaying the same blocks of random batches, crashes and statements gives the same state roots.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from blokauto.core.merkle import ProofError, leaf_hash, verify_inclusion
from blokauto.modules.insurance.messages import IssueStatements
from blokauto.modules.telemetry.handlers import check_summary
from blokauto.modules.telemetry.messages import ReportCrash
from blokauto.modules.telemetry.samples import (BatchMismatch, Sample, SampleError, TripSummary,
                                                batch_root, check_batch, check_samples, decode_samples, leaf_bytes,
                                                sample_proof, summarize, verify_sample)

from conftest import T0, build_tx
from helpers.insurance import DAY, DEVICE, INS, VIN, batch_msg, now, trip, world

#: The most samples a batch holds (samples.MAX_SAMPLES): part of the protocol, so a literal here.
MOST = 10_000

HOUR = 3_600_000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
FIELDS = Sample.__struct_fields__

# ---------------------------------------------------------------- strategies

#: values at and around every threshold the rules use, and anything in range
accels = st.one_of(st.sampled_from([-39_001, -39_000, -38_999, -3_901, -3_900, -3_899, 0, 200]),
                   st.integers(-500_000, 500_000))
speeds = st.one_of(st.sampled_from([0, 1, 49, 50, 51, 100, 500]), st.integers(0, 500))
gaps = st.one_of(st.sampled_from([1, 999, 1_000, 59_999, 60_000, 60_001]), st.integers(1, 3 * HOUR))
starts = st.one_of(
    st.tuples(st.integers(0, 40_000), st.sampled_from([0, 6, 12, 21, 22, 23]), st.integers(-120_000, 120_000)).map(
        lambda d: max(0, d[0] * DAY + d[1] * HOUR + d[2])),
    st.integers(0, 4 * 10**12))
offsets = st.one_of(st.sampled_from([-720, -60, 0, 60, 330, 840]), st.integers(-720, 840))


@st.composite
def batches(draw: Any, min_size: int = 1, max_size: int = 30) -> list[Sample]:
    """A batch ``check_samples`` accepts: times strictly increasing, the odometer never going back."""
    n = draw(st.integers(min_size, max_size))
    t, odo = draw(starts), draw(st.integers(0, 10**9))
    out = []
    for i in range(n):
        if i:
            gap = draw(gaps)
            t += gap
            # never faster than 500 km/h (139 m/s) plus 1 km, what a vehicle's odometer can show
            odo += draw(st.one_of(st.just(0), st.integers(0, min(3_000, gap * 139 // 1000 + 1_000))))
        out.append(Sample(t, draw(speeds), draw(accels), draw(st.integers(-900_000, 900_000)),
                          draw(st.integers(-1_800_000, 1_800_000)), odo, draw(speeds),
                          draw(st.one_of(st.sampled_from([0, 1, 2, 3, 4, 255]), st.integers(0, 255)))))
    return out


# ---------------------------------------------------------------- a reference written from the docstring


def local_hour(t: int, utc_offset_min: int) -> int:
    return (EPOCH + timedelta(milliseconds=t, minutes=utc_offset_min)).hour


def reference(samples: list[Sample], utc_offset_min: int) -> TripSummary:
    pairs = list(zip(samples, samples[1:]))
    night = sum(b.odometer_m - a.odometer_m for a, b in pairs
                if local_hour(a.t, utc_offset_min) >= 22 or local_hour(a.t, utc_offset_min) < 6)
    over_ms = sum(b.t - a.t for a, b in pairs if a.limit > 0 and a.speed > a.limit and b.t - a.t <= 60_000)
    hard = [s.accel <= -3_900 for s in samples]
    harsh = sum(1 for i, h in enumerate(hard) if h and (i == 0 or not hard[i - 1]))
    crashes = sum(1 for s in samples if s.events & 1 or s.events & 2 or s.accel <= -39_000)
    first, last = samples[0], samples[-1]
    return TripSummary(samples=len(samples), start=first.t, end=last.t, duration_s=(last.t - first.t) // 1000,
                       distance_m=last.odometer_m - first.odometer_m, night_distance_m=night,
                       over_limit_s=over_ms // 1000, harsh_brakes=harsh, crash_events=crashes,
                       max_speed=max(s.speed for s in samples))


# ---------------------------------------------------------------- summaries

PROPS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(batches(), offsets)
def test_summarize_is_deterministic_whatever_carries_the_samples(samples: list[Sample], offset: int) -> None:
    once = summarize(samples, offset)
    assert summarize(samples, offset) == once
    assert summarize(tuple(samples), offset) == once
    wire = msgspec.json.encode(samples)
    assert summarize(decode_samples(wire), offset) == once
    rebuilt = [Sample(*(getattr(s, f) for f in FIELDS)) for s in samples]
    assert summarize(rebuilt, offset) == once
    assert summarize(msgspec.json.decode(wire, type=list[Sample]), offset) == once
    assert msgspec.json.encode(summarize(decode_samples(wire), offset)) == msgspec.json.encode(once)


@PROPS
@given(batches(), offsets)
def test_summarize_agrees_with_the_reference(samples: list[Sample], offset: int) -> None:
    assert summarize(samples, offset) == reference(samples, offset)


@PROPS
@given(batches(), offsets, st.integers(1, 1_000))
def test_a_trip_a_whole_number_of_days_later_has_the_same_summary(samples: list[Sample], offset: int,
                                                                   days: int) -> None:
    later = [msgspec.structs.replace(s, t=s.t + days * DAY) for s in samples]
    a, b = summarize(samples, offset), summarize(later, offset)
    assert msgspec.structs.replace(b, start=a.start, end=a.end) == a
    assert (b.start, b.end) == (a.start + days * DAY, a.end + days * DAY)


@PROPS
@given(batches(), offsets)
def test_summary_invariants(samples: list[Sample], offset: int) -> None:
    s = summarize(samples, offset)
    assert 0 <= s.night_distance_m <= s.distance_m
    assert 0 <= s.over_limit_s <= s.duration_s
    assert s.harsh_brakes <= (s.samples + 1) // 2  # runs are separated by at least one sample
    assert s.harsh_brakes <= sum(1 for x in samples if x.accel <= -3_900)
    assert s.crash_events <= s.samples
    assert s.max_speed == max(x.speed for x in samples) <= 500
    assert s.duration_s == (s.end - s.start) // 1000 and s.end - s.start >= s.samples - 1
    check_summary(s)  # what summarize gives the ledger accepts


@PROPS
@given(st.lists(st.booleans(), min_size=1, max_size=60), starts)
def test_harsh_brakes_count_runs_of_hard_braking(hard: list[bool], start: int) -> None:
    samples = trip(start, len(hard), brake_at=[i for i, h in enumerate(hard) if h])
    runs = len([k for k, _ in itertools.groupby(hard) if k])
    assert summarize(samples, 0).harsh_brakes == runs


@pytest.mark.parametrize("accel,harsh,crash", [
    (-3_899, 0, 0), (-3_900, 1, 0), (-38_999, 1, 0), (-39_000, 1, 1), (-500_000, 1, 1)])
def test_the_braking_thresholds(accel: int, harsh: int, crash: int) -> None:
    s = Sample(T0, 50, accel, 0, 0, 0, 0, 0)
    assert (summarize([s], 0).harsh_brakes, summarize([s], 0).crash_events) == (harsh, crash)


@pytest.mark.parametrize("events,crash", [(0, 0), (1, 1), (2, 1), (3, 1), (4, 0), (252, 0), (253, 1)])
def test_the_airbag_and_impact_flags_count_a_crash_event(events: int, crash: int) -> None:
    assert summarize([Sample(T0, 0, 0, 0, 0, 0, 0, events)], 0).crash_events == crash


@pytest.mark.parametrize("gap,speed,limit,over_s", [
    (60_000, 51, 50, 60), (60_001, 51, 50, 0), (60_000, 50, 50, 0), (60_000, 51, 0, 0), (1_999, 90, 50, 1)])
def test_time_over_the_limit(gap: int, speed: int, limit: int, over_s: int) -> None:
    a = Sample(T0, speed, 0, 0, 0, 0, limit, 0)
    b = Sample(T0 + gap, 0, 0, 0, 0, 0, 0, 0)
    assert summarize([a, b], 0).over_limit_s == over_s


@pytest.mark.parametrize("local,offset,night", [
    ("21:59:59.999", 0, False), ("22:00:00.000", 0, True), ("05:59:59.999", 0, True), ("06:00:00.000", 0, False),
    ("00:00:00.000", 0, True), ("12:00:00.000", 0, False), ("22:00:00.000", 60, True), ("21:00:00.000", 60, True),
    ("20:59:59.999", 60, False), ("06:59:59.999", -60, True), ("07:00:00.000", -60, False),
    ("07:00:00.000", 60, False)])
def test_night_is_22_to_6_local_time(local: str, offset: int, night: bool) -> None:
    """``local`` is the UTC time of day of the first sample; ``offset`` moves it to local time."""
    h, m, rest = local.split(":")
    sec, ms = rest.split(".")
    t = 20_000 * DAY + ((int(h) * 60 + int(m)) * 60 + int(sec)) * 1000 + int(ms)
    samples = [Sample(t, 0, 0, 0, 0, 1_000, 0, 0), Sample(t + 1, 0, 0, 0, 0, 1_500, 0, 0)]
    assert summarize(samples, offset).night_distance_m == (500 if night else 0)


# ---------------------------------------------------------------- what forms a batch


@pytest.mark.parametrize("samples,index", [
    ([], -1),
    ([Sample(T0, 0, 0, 0, 0, 0, 0, 0), Sample(T0, 0, 0, 0, 0, 0, 0, 0)], 1),  # same time
    ([Sample(T0, 0, 0, 0, 0, 0, 0, 0), Sample(T0 - 1, 0, 0, 0, 0, 0, 0, 0)], 1),  # back in time
    ([Sample(T0, 0, 0, 0, 0, 5, 0, 0), Sample(T0 + 1, 0, 0, 0, 0, 6, 0, 0), Sample(T0 + 2, 0, 0, 0, 0, 5, 0, 0)], 2),
])
def test_samples_that_cannot_form_a_batch(samples: list[Sample], index: int) -> None:
    with pytest.raises(SampleError) as err:
        check_samples(samples)
    assert err.value.index == index


@pytest.mark.parametrize("dt,metres,ok", [
    (1_000, 1_139, True), (1_000, 1_140, False),  # 1,000 ms * 139 mm/ms (500 km/h) + 1 km of slack
    (1, 1_000, True), (1, 1_001, False), (60_000, 9_340, True), (60_000, 9_341, False), (7, 1_000, True)])
def test_an_odometer_never_runs_faster_than_500_kmh(dt: int, metres: int, ok: bool) -> None:
    samples = [Sample(T0, 0, 0, 0, 0, 5_000, 0, 0), Sample(T0 + 1, 0, 0, 0, 0, 5_000, 0, 0),
               Sample(T0 + 1 + dt, 0, 0, 0, 0, 5_000 + metres, 0, 0)]
    if ok:
        check_samples(samples)
        check_summary(summarize(samples, 0))
    else:
        with pytest.raises(SampleError) as err:
            check_samples(samples)
        assert err.value.index == 2


def test_the_most_samples_a_batch_holds() -> None:
    samples = trip(T0, MOST, every_ms=1, step_m=0)
    check_samples(samples)
    with pytest.raises(SampleError):
        check_samples([*samples, Sample(T0 + MOST, 0, 0, 0, 0, 0, 0, 0)])


def test_an_odometer_standing_still_forms_a_batch() -> None:
    check_samples(trip(T0, 3, step_m=0))


# ---------------------------------------------------------------- check_batch


@st.composite
def one_change(draw: Any) -> tuple[list[Sample], list[Sample], int]:
    """A batch, and the same batch with one field of one sample changed (still a batch)."""
    samples = draw(batches())
    i = draw(st.integers(0, len(samples) - 1))
    name = draw(st.sampled_from(FIELDS))
    s = samples[i]
    prev = samples[i - 1] if i else None
    nxt = samples[i + 1] if i + 1 < len(samples) else None
    if name == "t":
        lo, hi = (prev.t + 1 if prev else 0), (nxt.t - 1 if nxt else s.t + 10**6)
    elif name == "odometer_m":
        lo, hi = (prev.odometer_m if prev else 0), (nxt.odometer_m if nxt else s.odometer_m + 10**6)
    else:
        lo, hi = {"speed": (0, 500), "limit": (0, 500), "accel": (-500_000, 500_000), "lat": (-900_000, 900_000),
                  "lon": (-1_800_000, 1_800_000), "events": (0, 255)}[name]
    assume(lo < hi)
    value = draw(st.integers(lo, hi).filter(lambda v: v != getattr(s, name)))
    changed = list(samples)
    changed[i] = msgspec.structs.replace(s, **{name: value})
    try:
        check_samples(changed)
    except SampleError:
        assume(False)  # the change left no batch at all (refused before any comparison)
    return samples, changed, draw(offsets)


@PROPS
@given(batches(), offsets)
def test_check_batch_accepts_the_committed_samples(samples: list[Sample], offset: int) -> None:
    check_batch(samples, offset, batch_root(samples).hex(), summarize(samples, offset))
    check_batch(tuple(decode_samples(msgspec.json.encode(samples))), offset, batch_root(samples).hex(),
                summarize(samples, offset))


@PROPS
@given(one_change())
def test_any_single_field_change_of_any_sample_is_a_mismatch(case: tuple) -> None:
    samples, changed, offset = case
    check_samples(changed)
    root, summary = batch_root(samples).hex(), summarize(samples, offset)
    with pytest.raises(BatchMismatch) as err:
        check_batch(changed, offset, root, summary)
    assert (err.value.field, err.value.committed) == ("root", root)
    # with the changed samples' own root, the summary tells them apart exactly when it differs
    recomputed = summarize(changed, offset)
    differs = [f for f in TripSummary.__struct_fields__ if getattr(summary, f) != getattr(recomputed, f)]
    if differs:
        with pytest.raises(BatchMismatch) as err:
            check_batch(changed, offset, batch_root(changed).hex(), summary)
        assert (err.value.field, err.value.committed, err.value.recomputed) == (
            differs[0], getattr(summary, differs[0]), getattr(recomputed, differs[0]))
    else:
        check_batch(changed, offset, batch_root(changed).hex(), summary)


@PROPS
@given(batches(), offsets, st.sampled_from(TripSummary.__struct_fields__), st.integers(1, 5))
def test_a_changed_summary_field_is_named(samples: list[Sample], offset: int, name: str, delta: int) -> None:
    good = summarize(samples, offset)
    bad = msgspec.structs.replace(good, **{name: getattr(good, name) + delta})
    with pytest.raises(BatchMismatch) as err:
        check_batch(samples, offset, batch_root(samples).hex(), bad)
    assert (err.value.field, err.value.committed, err.value.recomputed) == (name, getattr(good, name) + delta,
                                                                            getattr(good, name))


@PROPS
@given(batches(min_size=2), offsets, st.data())
def test_a_dropped_or_added_sample_is_a_mismatch(samples: list[Sample], offset: int, data: Any) -> None:
    root, summary = batch_root(samples).hex(), summarize(samples, offset)
    i = data.draw(st.integers(0, len(samples) - 1))
    with pytest.raises((BatchMismatch, SampleError)):  # SampleError if the odometer then jumps too far
        check_batch(samples[:i] + samples[i + 1:], offset, root, summary)
    extra = msgspec.structs.replace(samples[-1], t=samples[-1].t + 1)
    with pytest.raises(BatchMismatch):
        check_batch([*samples, extra], offset, root, summary)


def test_samples_out_of_order_are_refused_before_any_comparison() -> None:
    samples = trip(T0, 5)
    with pytest.raises(SampleError):
        check_batch(samples[::-1], 0, batch_root(samples).hex(), summarize(samples, 0))


# ---------------------------------------------------------------- inclusion proofs


def verify(sample: Sample, index: int, count: int, proof: list[str], root: str) -> None:
    """The check ``verify_sample`` means: the leaf is the RFC 9162 hash of the sample's canonical bytes."""
    verify_inclusion(index, count, leaf_hash(leaf_bytes(sample)), [bytes.fromhex(h) for h in proof],
                     bytes.fromhex(root))


@PROPS
@given(batches(max_size=40), st.data())
def test_inclusion_proofs_verify_for_every_index_and_nothing_else(samples: list[Sample], data: Any) -> None:
    n, root = len(samples), batch_root(samples).hex()
    proofs = [sample_proof(samples, i) for i in range(n)]
    for i in range(n):
        verify(samples[i], i, n, proofs[i], root)
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1))
    if j != i:
        with pytest.raises(ProofError):
            verify(samples[i], j, n, proofs[i], root)  # another index
        with pytest.raises(ProofError):
            verify(samples[j], i, n, proofs[i], root)  # another sample
    name = data.draw(st.sampled_from(FIELDS))
    changed = msgspec.structs.replace(samples[i], **{name: getattr(samples[i], name) ^ 1})
    with pytest.raises(ProofError):
        verify(changed, i, n, proofs[i], root)
    with pytest.raises(ProofError):
        verify(samples[i], n, n, proofs[i], root)  # outside the batch


def test_verify_sample_accepts_a_genuine_proof() -> None:
    samples = trip(T0, 7)
    verify_sample(samples[3], 3, 7, sample_proof(samples, 3), batch_root(samples).hex())


def test_verify_sample_refuses_a_changed_sample() -> None:
    samples = trip(T0, 7)
    with pytest.raises(ProofError):
        verify_sample(msgspec.structs.replace(samples[3], speed=1), 3, 7, sample_proof(samples, 3),
                      batch_root(samples).hex())


# ---------------------------------------------------------------- determinism of the ledger

steps = st.lists(st.one_of(
    st.tuples(st.just("batch"), st.integers(-120_000, 6 * HOUR), st.integers(1, 30), st.integers(500, 70_000),
              st.integers(0, 40), st.lists(st.integers(0, 29), max_size=3), offsets, st.booleans()),
    st.tuples(st.just("crash"), st.integers(-8 * DAY, 10 * 60_000), st.integers(0, 80_000), st.booleans()),
    st.tuples(st.just("statement"),),
    st.tuples(st.just("wait"), st.integers(1, 40 * DAY)),
), max_size=14)


def play(program: list) -> list[str]:
    """Play the steps on the helpers' world (policy 1 with consent); the state root after every block."""
    chain = world()
    roots = [chain.root]
    t = now(chain)
    last_end = t
    odo = 0

    def block(sender: Any, msg: Any, at: int) -> Any:
        raw = build_tx(sender, msg, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")
        receipt = chain.block(raw, time=at).receipts[0]
        roots.append(chain.root)
        return receipt

    for step in program:
        kind = step[0]
        if kind == "wait":
            t += step[1]
            continue
        t += 1
        if kind == "batch":
            _, gap, n, every, step_m, brakes, offset, early = step
            samples = trip(last_end + gap, n, every_ms=every, step_m=step_m, odo_m=odo, brake_at=brakes,
                           speed=110, limit=100)
            # an overlapping batch (gap <= 0) or one sent too early is refused, and that is on record too
            t = max(t, samples[-1].t - (6 * 60_000 if early else 0))
            r = block(DEVICE, batch_msg(VIN, samples, offset), t)
            if r.ok:
                last_end, odo = samples[-1].t, samples[-1].odometer_m
        elif kind == "crash":
            _, dt, decel, airbag = step
            block(DEVICE, ReportCrash(vin=VIN, t=max(0, t + dt), decel_mms2=decel, odometer_m=odo, airbag=airbag), t)
        else:
            block(INS, IssueStatements(policies=[1]), t)
    return roots


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_replaying_the_same_blocks_gives_the_same_state_roots(program: list) -> None:
    first = play(program)
    assert play(program) == first
    assert len(set(first)) >= 1
