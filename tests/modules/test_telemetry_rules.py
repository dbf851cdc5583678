"""The telemetry module's rules, one row per rule, on a MemoryLedger (``helpers.insurance``'s world).

Batches: a device key of the vehicle commits a batch's root and trip summary; batches follow each
other in time, end no later than the block time plus the skew, and carry a summary some samples could
give (one row per rule of ``handlers.check_summary``, and each rule's edge accepted). Device keys: a
key of another vehicle, the holder's own key, a key rotated out and a revoked key are refused, the
revoked one from the revocation's transaction on (in the same block, a batch before it passes and
one after it fails); a scrapped vehicle takes no batch. Crashes: the deceleration threshold is a
chain parameter, the airbag and impact flags count without it, a crash is dated within the age and
skew bounds, and is reported once. Refusals are one table (``REFUSALS``): each checks the stable code
and that the failed transaction changed nothing. Window totals agree with a brute-force sum over
random batches.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helpers.insurance as world_mod
from blokauto.core.block import Genesis
from blokauto.core.crypto import KeyPair
from blokauto.modules.telemetry import TelemetryDoor, Totals
from blokauto.modules.telemetry.handlers import check_summary
from blokauto.modules.telemetry.messages import CommitBatch, ReportCrash
from blokauto.modules.telemetry.samples import TripSummary
from blokauto.modules.telemetry.spec import BATCH_LIST
from blokauto.modules.telemetry.state import BATCHES, CRASH_AT, CRASHES, VEHICLES as TEL_VEHICLES
from blokauto.modules.vehicles.messages import Deregister, RevokeDeviceKey, RotateDeviceKey
from blokauto.modules.vehicles.state import VEHICLES

from conftest import CHAIN, T0, Chain, build_tx
from helpers.insurance import (ALICE, BOB_DEVICE, DAY, DEVICE, DEVICE2, MINUTE, NEW_DEVICE, OTHER_VIN, VIN, batch_msg,
                               now, ok, send, trip, world)
from helpers.vehicles import WMI, admin, history, snapshot, vin_for

SKEW = 5 * MINUTE  # telemetry_future_skew_ms by default
MAX_AGE = 7 * DAY  # crash_report_max_age_ms by default
THRESHOLD = 39_000  # crash_decel_mms2 by default
MOST = 10_000  # samples a batch holds (samples.MAX_SAMPLES): part of the protocol, so a literal here
SCRAP = admin("scrap")


def tel_world() -> Chain:
    """The helpers' world without a policy: telemetry's rules alone (no claim opens on a crash)."""
    return world(policy=False)


def world_with_params(monkeypatch: pytest.MonkeyPatch, **params: int) -> Chain:
    """The same world on a chain whose genesis sets ``params``."""
    base = world_mod.genesis()
    monkeypatch.setattr(world_mod, "genesis", lambda: Genesis(chain=CHAIN, time=T0, organisations=base.organisations,
                                                              quorum=1, params=params))
    return world(policy=False)


def raw(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int) -> bytes:
    return build_tx(sender, msg, *cosigners, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")


def commit(chain: Chain, start: int, n: int = 60, key: KeyPair = DEVICE, **kw: Any) -> Any:
    """A batch of ``n`` samples from ``start`` (``trip``), committed 1 ms after its last sample."""
    samples = trip(start, n, **kw)
    return ok(chain, key, batch_msg(VIN, samples), at=max(samples[-1].t + 1, now(chain) + 1))


def recent(chain: Chain, n: int = 60) -> CommitBatch:
    """A valid batch of ``n`` samples a second apart that ended 10 s before the next block."""
    return batch_msg(VIN, trip(now(chain) - n * 1_000 - 10_000, n))


def summary_msg(chain: Chain, **changes: Any) -> CommitBatch:
    """``recent``'s batch with its summary changed."""
    m = recent(chain)
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(m.summary, **changes))


def crash(chain: Chain, dt: int = -1_000, decel: int = 50_000, **kw: Any) -> ReportCrash:
    """A crash dated ``dt`` ms from the next block's time (now + 1)."""
    return ReportCrash(vin=kw.pop("vin", VIN), t=now(chain) + 1 + dt, decel_mms2=decel, odometer_m=12_345_678, **kw)


def revoke(key: KeyPair, reason: str = "lost") -> Callable[[Chain], Any]:
    return lambda chain: ok(chain, ALICE, RevokeDeviceKey(vin=VIN, key=key.did, reason=reason))


def rotate(chain: Chain) -> None:
    ok(chain, ALICE, RotateDeviceKey(vin=VIN, old=DEVICE.did, new=NEW_DEVICE.did), DEVICE, NEW_DEVICE)


def scrapped(chain: Chain) -> None:
    ok(chain, SCRAP, Deregister(vin=VIN, certificate="COD-1"), ALICE)


def one_batch(chain: Chain) -> None:
    commit(chain, now(chain) + 1_000)


def one_crash(chain: Chain) -> None:
    ok(chain, DEVICE, crash(chain, dt=-5_000))


# ---------------------------------------------------------------- batches


def test_a_batch_is_committed_with_its_root_summary_and_running_totals() -> None:
    chain = tel_world()
    samples = trip(now(chain) + 1_000, 120, brake_at=(10, 11, 50), odo_m=5_000)
    msg = batch_msg(VIN, samples, utc_offset_min=60)
    at = samples[-1].t + 5
    r = ok(chain, DEVICE, msg, at=at)
    assert r.events == [{"type": "telemetry.batch_committed", "vin": VIN, "seq": 1, "start": samples[0].t,
                         "end": samples[-1].t}]
    b = BATCHES.get(chain.ledger, VIN, 1)
    assert (b.root, b.summary, b.utc_offset_min, b.device, b.time) == (msg.root, msg.summary, 60, DEVICE.did, at)
    assert b.height == chain.ledger.head.height
    assert b.cumulative == Totals().plus(msg.summary)
    assert b.summary.harsh_brakes == 2 and b.summary.distance_m == 119 * 22
    v = TEL_VEHICLES.get(chain.ledger, VIN)
    assert (v.batches, v.last_end, v.crashes, v.totals) == (1, samples[-1].t, 0, b.cumulative)
    row = chain.ledger.index[BATCH_LIST.name]
    assert [dict(x) for x in row.values()] == [{"vin": VIN, "seq": 1, "start": samples[0].t, "end": samples[-1].t,
                                                "height": b.height, "root": msg.root}]
    # a second batch adds to the running totals; the other device key of the car also commits
    second = trip(samples[-1].t + 1, 10, odo_m=9_000)
    ok(chain, DEVICE2, batch_msg(VIN, second), at=second[-1].t + 1)
    b2 = BATCHES.get(chain.ledger, VIN, 2)
    assert b2.device == DEVICE2.did
    assert b2.cumulative == b.cumulative.plus(b2.summary)
    assert TEL_VEHICLES.get(chain.ledger, VIN).totals == b2.cumulative


def test_a_batch_starts_right_after_the_last_sample_of_the_one_before() -> None:
    chain = tel_world()
    first = trip(now(chain) + 1_000, 10)
    ok(chain, DEVICE, batch_msg(VIN, first), at=first[-1].t + 1)
    assert send(chain, DEVICE, batch_msg(VIN, trip(first[-1].t, 5)), at=first[-1].t + 20_000).code == \
        "batch_overlaps"
    ok(chain, DEVICE, batch_msg(VIN, trip(first[-1].t + 1, 5)), at=first[-1].t + 20_001)
    assert TEL_VEHICLES.get(chain.ledger, VIN).batches == 2


def test_a_batch_may_end_up_to_the_skew_after_the_block_time() -> None:
    chain = tel_world()
    at = now(chain) + 1
    samples = trip(at + SKEW - 59_000, 60)
    assert samples[-1].t == at + SKEW
    ok(chain, DEVICE, batch_msg(VIN, samples), at=at)


def test_the_first_batch_may_start_at_time_zero() -> None:
    """A vehicle with no batch has nothing to overlap (last_end 0 is not a batch)."""
    chain = tel_world()
    m = summary_msg(chain)
    s = msgspec.structs.replace(m.summary, start=0, end=59_000, duration_s=59)
    ok(chain, DEVICE, msgspec.structs.replace(m, summary=s))


def test_each_vehicle_has_its_own_sequence_of_batches() -> None:
    chain = tel_world()
    commit(chain, now(chain) + 1_000)
    bob = trip(now(chain) - 30_000, 5)  # before Alice's batch: Bob's car has its own order
    ok(chain, BOB_DEVICE, batch_msg(OTHER_VIN, bob))
    assert BATCHES.get(chain.ledger, OTHER_VIN, 1).summary.start == bob[0].t
    assert (TEL_VEHICLES.get(chain.ledger, VIN).batches, TEL_VEHICLES.get(chain.ledger, OTHER_VIN).batches) == (1, 1)


def _single(chain: Chain) -> CommitBatch:
    m = recent(chain)
    s = m.summary
    return msgspec.structs.replace(m, summary=TripSummary(1, s.start, s.start, 0, 0, 0, 0, 1, 1, 500))


def _dense(chain: Chain) -> CommitBatch:
    m = recent(chain)
    s = m.summary  # 3 samples in 2 ms: the fewest ms strictly increasing times need
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(s, samples=3, end=s.start + 2, duration_s=0,
                                                                      over_limit_s=0, distance_m=0,
                                                                      night_distance_m=0))


def _max_samples(chain: Chain) -> CommitBatch:
    m = recent(chain)
    s = m.summary
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(
        s, samples=MOST, start=s.end - (MOST - 1), duration_s=(MOST - 1) // 1000))


@pytest.mark.parametrize("make", [
    pytest.param(_single, id="one_sample_starting_and_ending_at_once"),
    pytest.param(_dense, id="samples_one_ms_apart"),
    pytest.param(_max_samples, id="the_most_samples_a_batch_holds"),
    pytest.param(lambda c: summary_msg(c, night_distance_m=recent(c).summary.distance_m), id="all_distance_at_night"),
    pytest.param(lambda c: summary_msg(c, over_limit_s=recent(c).summary.duration_s), id="over_the_limit_all_along"),
    pytest.param(lambda c: summary_msg(c, harsh_brakes=60, crash_events=60), id="as_many_events_as_samples"),
    pytest.param(lambda c: summary_msg(c, max_speed=500), id="top_speed_500"),
    # 60 samples in 59 s: 59,000 ms * 139 mm/ms (500 km/h) + 59 gaps * 1 km of slack = 67,201 m
    pytest.param(lambda c: summary_msg(c, distance_m=67_201), id="as_far_as_500_kmh_takes_it"),
])
def test_a_summary_at_the_edge_of_each_rule_is_accepted(make: Callable[[Chain], CommitBatch]) -> None:
    chain = tel_world()
    msg = make(chain)
    check_summary(msg.summary)
    ok(chain, DEVICE, msg)


# ---------------------------------------------------------------- device keys


def test_a_revoked_key_is_refused_from_its_revocation_on_even_within_the_block() -> None:
    """Batch, revocation, batch in one block: the first batch counts, the second is refused."""
    chain = tel_world()
    at = now(chain) + 1
    before = trip(at - 30_000, 5)
    after = trip(at - 10_000, 5)
    block = chain.block(raw(chain, DEVICE, batch_msg(VIN, before), at=at),
                        raw(chain, ALICE, RevokeDeviceKey(vin=VIN, key=DEVICE.did, reason="compromised"), at=at),
                        raw(chain, DEVICE, batch_msg(VIN, after), at=at), time=at)
    first, revoked, second = block.receipts
    assert first.ok and revoked.ok, block.receipts
    assert (second.ok, second.code) == (False, "device_key_revoked")
    height = chain.ledger.head.height
    assert second.detail == {"signer": DEVICE.did, "vin": VIN, "height": height, "reason": "compromised"}
    assert BATCHES.get(chain.ledger, VIN, 1).height == height
    assert TEL_VEHICLES.get(chain.ledger, VIN).batches == 1
    # and in every later block; the car's other device key still commits
    assert send(chain, DEVICE, batch_msg(VIN, trip(now(chain), 3))).code == "device_key_revoked"
    ok(chain, DEVICE2, batch_msg(VIN, trip(now(chain), 3)))


def test_a_rotated_key_is_refused_and_its_successor_commits() -> None:
    chain = tel_world()
    rotate(chain)
    r = send(chain, DEVICE, recent(chain))
    assert (r.code, r.detail["reason"]) == ("device_key_revoked", "rotated")
    ok(chain, NEW_DEVICE, recent(chain))
    assert BATCHES.get(chain.ledger, VIN, 1).device == NEW_DEVICE.did


# ---------------------------------------------------------------- crashes


def test_a_crash_enters_the_history_once_with_its_facts() -> None:
    chain = tel_world()
    msg = crash(chain, dt=-60_000, decel=12_000, airbag=True)
    r = ok(chain, DEVICE, msg)
    assert [e["type"] for e in r.events] == ["vehicles.history_appended", "telemetry.crash_reported"]
    assert r.events[1] == {"type": "telemetry.crash_reported", "vin": VIN, "seq": 1, "t": msg.t}
    c = CRASHES.get(chain.ledger, VIN, 1)
    assert (c.seq, c.t, c.decel_mms2, c.airbag, c.impact, c.odometer_m, c.device, c.time) == (
        1, msg.t, 12_000, True, False, 12_345_678, DEVICE.did, now(chain))
    assert CRASH_AT.get(chain.ledger, VIN, msg.t) == 1
    entry = history(chain, VIN)[-1]
    assert (entry["type"], entry["by"]) == ("crash_reported", DEVICE.did)
    assert entry["data"] == {"crash": 1, "t": msg.t, "airbag": True, "impact": False, "decel_mms2": 12_000,
                             "km": 12_345}
    assert TEL_VEHICLES.get(chain.ledger, VIN).crashes == 1
    # another crash at another time is crash 2; batches are untouched
    ok(chain, DEVICE2, crash(chain, dt=-1_000, impact=True, decel=0))
    v = TEL_VEHICLES.get(chain.ledger, VIN)
    assert (v.crashes, v.batches) == (2, 0)
    assert CRASHES.get(chain.ledger, VIN, 2).impact is True


def test_crashes_and_batches_keep_each_others_counts() -> None:
    chain = tel_world()
    commit(chain, now(chain) + 1_000)
    last_end = TEL_VEHICLES.get(chain.ledger, VIN).last_end
    ok(chain, DEVICE, crash(chain))
    v = TEL_VEHICLES.get(chain.ledger, VIN)
    assert (v.batches, v.last_end, v.crashes) == (1, last_end, 1)
    commit(chain, now(chain) + 1_000)
    v2 = TEL_VEHICLES.get(chain.ledger, VIN)
    assert (v2.batches, v2.crashes) == (2, 1)


@pytest.mark.parametrize("decel,airbag,impact,counts", [
    (THRESHOLD, False, False, True),
    (THRESHOLD - 1, False, False, False),
    (0, True, False, True),
    (0, False, True, True),
    (0, False, False, False),
])
def test_a_crash_needs_a_flag_or_the_threshold(decel: int, airbag: bool, impact: bool, counts: bool) -> None:
    chain = tel_world()
    r = send(chain, DEVICE, crash(chain, decel=decel, airbag=airbag, impact=impact))
    assert r.ok is counts, r
    if not counts:
        assert (r.code, r.detail) == ("not_a_crash", {"threshold": THRESHOLD, "decel": decel})


@pytest.mark.parametrize("threshold", [20_000, 100_000])
def test_the_crash_threshold_is_a_chain_parameter(monkeypatch: pytest.MonkeyPatch, threshold: int) -> None:
    chain = world_with_params(monkeypatch, crash_decel_mms2=threshold)
    r = send(chain, DEVICE, crash(chain, decel=threshold - 1))
    assert (r.code, r.detail["threshold"]) == ("not_a_crash", threshold)
    ok(chain, DEVICE, crash(chain, decel=threshold))


@pytest.mark.parametrize("dt,code", [
    (SKEW, ""),
    (SKEW + 1, "crash_from_future"),
    (-MAX_AGE, ""),
    (-MAX_AGE - 1, "crash_too_old"),
    (0, ""),
])
def test_a_crash_is_dated_within_its_age_and_the_clock_skew(dt: int, code: str) -> None:
    chain = tel_world()
    r = send(chain, DEVICE, crash(chain, dt=dt))
    assert (r.ok, r.code) == (not code, code), r


def test_the_age_and_skew_bounds_are_chain_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = world_with_params(monkeypatch, crash_report_max_age_ms=MINUTE, telemetry_future_skew_ms=0)
    assert send(chain, DEVICE, crash(chain, dt=-MINUTE - 1)).code == "crash_too_old"
    assert send(chain, DEVICE, crash(chain, dt=1)).code == "crash_from_future"
    ok(chain, DEVICE, crash(chain, dt=-MINUTE))
    ok(chain, DEVICE, crash(chain, dt=0))
    at = now(chain) + 1  # with no skew, a batch ends at the block time at the latest
    assert send(chain, DEVICE, batch_msg(VIN, trip(at - 3_999, 5)), at=at).code == "batch_from_future"
    ok(chain, DEVICE, batch_msg(VIN, trip(at + 1 - 4_000, 5)), at=at + 1)


def test_the_same_crash_time_on_another_vehicle_is_another_crash() -> None:
    chain = tel_world()
    msg = crash(chain)
    ok(chain, DEVICE, msg)
    ok(chain, BOB_DEVICE, msgspec.structs.replace(msg, vin=OTHER_VIN))
    assert CRASH_AT.get(chain.ledger, OTHER_VIN, msg.t) == 1


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Callable[[Chain], Any]
    code: str
    setup: Callable[[Chain], Any] | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # a part of detail["reason"] (which rule of check_summary refused)


def r(name: str, who: KeyPair, msg: Callable[[Chain], Any], code: str, setup: Any = None, reason: str = "",
      **detail: Any) -> Any:
    return pytest.param(Refusal(name, who, msg, code, setup, detail, reason), id=name)


def bad(**changes: Any) -> Callable[[Chain], CommitBatch]:
    return lambda chain: summary_msg(chain, **changes)


def _end_before_start(chain: Chain) -> CommitBatch:
    m = recent(chain)
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(m.summary, start=m.summary.end + 1))


def _one_sample_over_time(chain: Chain) -> CommitBatch:
    m = recent(chain)
    s = m.summary
    return msgspec.structs.replace(m, summary=TripSummary(1, s.end - 1_000, s.end, 1, 0, 0, 0, 0, 0, 80))


def _too_dense(chain: Chain) -> CommitBatch:
    m = recent(chain)
    s = m.summary
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(s, samples=60, start=s.end - 58, duration_s=0,
                                                                      over_limit_s=0))


def _too_many_samples(chain: Chain) -> CommitBatch:
    m = recent(chain)
    s = m.summary
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(
        s, samples=MOST + 1, start=s.end - MOST, duration_s=MOST // 1000))


def moved(chain: Chain) -> CommitBatch:
    """One sample (it starts and ends at once) that covered a metre."""
    m = _single(chain)
    return msgspec.structs.replace(m, summary=msgspec.structs.replace(m.summary, distance_m=1))


def overlapping(dt: int) -> Callable[[Chain], CommitBatch]:
    """A batch starting ``dt`` ms after the last sample of batch 1."""
    def make(chain: Chain) -> CommitBatch:
        last = TEL_VEHICLES.get(chain.ledger, VIN).last_end
        return batch_msg(VIN, trip(last + dt, 5))
    return make


def future(chain: Chain) -> CommitBatch:
    at = now(chain) + 1
    return batch_msg(VIN, trip(at + SKEW + 1 - 4_000, 5))


def other_vin(chain: Chain) -> CommitBatch:
    return msgspec.structs.replace(recent(chain), vin=OTHER_VIN)


def unknown_vin(chain: Chain) -> CommitBatch:
    return msgspec.structs.replace(recent(chain), vin=vin_for(WMI["oem"], 77))


def same_crash(chain: Chain) -> ReportCrash:
    t = CRASHES.get(chain.ledger, VIN, 1).t
    return ReportCrash(vin=VIN, t=t, decel_mms2=60_000, odometer_m=1, impact=True)


REFUSALS = [
    # order in time
    r("batch_starting_at_the_last_sample_of_the_one_before", DEVICE, overlapping(0), "batch_overlaps", one_batch,
      seq=1),
    r("batch_starting_inside_the_one_before", DEVICE, overlapping(-30_000), "batch_overlaps", one_batch, seq=1),
    r("batch_going_back_before_the_one_before", DEVICE, overlapping(-10 * MINUTE), "batch_overlaps", one_batch),
    r("batch_ending_after_the_skew", DEVICE, future, "batch_from_future", skew_ms=SKEW),
    # summaries no samples could give: one row per rule of check_summary
    r("summary_of_no_samples", DEVICE, bad(samples=0), "invalid_summary", reason="samples must be 1 to"),
    r("summary_of_too_many_samples", DEVICE, _too_many_samples, "invalid_summary", reason="samples must be 1 to"),
    r("summary_ending_before_it_starts", DEVICE, _end_before_start, "invalid_summary", reason="is before start"),
    r("summary_of_one_sample_spanning_time", DEVICE, _one_sample_over_time, "invalid_summary",
      reason="one sample starts and ends"),
    r("summary_of_more_samples_than_ms", DEVICE, _too_dense, "invalid_summary", reason="strictly increasing ms"),
    r("summary_with_a_wrong_duration", DEVICE, lambda c: summary_msg(c, duration_s=recent(c).summary.duration_s + 1),
      "invalid_summary", reason="duration_s must be"),
    r("summary_with_more_night_than_distance", DEVICE,
      lambda c: summary_msg(c, night_distance_m=recent(c).summary.distance_m + 1), "invalid_summary",
      reason="night_distance_m is more"),
    r("summary_over_the_limit_longer_than_it_lasts", DEVICE,
      lambda c: summary_msg(c, over_limit_s=recent(c).summary.duration_s + 1), "invalid_summary",
      reason="over_limit_s is more"),
    r("summary_with_more_harsh_brakes_than_samples", DEVICE, bad(harsh_brakes=61), "invalid_summary",
      reason="more events than samples"),
    r("summary_with_more_crash_events_than_samples", DEVICE, bad(crash_events=61), "invalid_summary",
      reason="more events than samples"),
    r("summary_faster_than_500", DEVICE, bad(max_speed=501), "invalid_summary", reason="above 500"),
    r("summary_farther_than_500_kmh_takes_it", DEVICE, bad(distance_m=67_202), "invalid_summary",
      reason="67202 m in 59000 ms is faster than 500 km/h"),
    r("summary_of_one_sample_that_moved", DEVICE, moved, "invalid_summary", reason="1 m in 0 ms"),
    # who signs
    r("batch_signed_by_another_vehicles_device", BOB_DEVICE, recent, "not_vehicle_device", signer=BOB_DEVICE.did),
    r("batch_for_another_vehicle_signed_by_this_ones_device", DEVICE, other_vin, "not_vehicle_device"),
    r("batch_signed_by_the_holder", ALICE, recent, "not_vehicle_device"),
    r("batch_signed_by_a_rotated_out_key", DEVICE, recent, "device_key_revoked", rotate, reason="rotated"),
    r("batch_signed_by_a_revoked_key", DEVICE2, recent, "device_key_revoked", revoke(DEVICE2), reason="lost",
      signer=DEVICE2.did),
    r("batch_for_a_scrapped_vehicle", DEVICE, recent, "vehicle_scrapped", scrapped),
    r("batch_for_an_unknown_vehicle", DEVICE, unknown_vin, "unknown_vehicle"),
    # crashes
    r("crash_under_the_threshold_without_flags", DEVICE, lambda c: crash(c, decel=THRESHOLD - 1), "not_a_crash",
      threshold=THRESHOLD),
    r("crash_dated_after_the_skew", DEVICE, lambda c: crash(c, dt=SKEW + 1), "crash_from_future", skew_ms=SKEW),
    r("crash_older_than_the_age_limit", DEVICE, lambda c: crash(c, dt=-MAX_AGE - 1), "crash_too_old",
      max_age_ms=MAX_AGE),
    r("crash_reported_twice", DEVICE2, same_crash, "crash_already_reported", one_crash, seq=1),
    r("crash_signed_by_another_vehicles_device", BOB_DEVICE, crash, "not_vehicle_device"),
    r("crash_signed_by_a_revoked_key", DEVICE, crash, "device_key_revoked", revoke(DEVICE)),
    r("crash_signed_by_a_rotated_out_key", DEVICE, crash, "device_key_revoked", rotate, reason="rotated"),
    r("crash_of_a_scrapped_vehicle", DEVICE, crash, "vehicle_scrapped", scrapped),
    r("crash_of_an_unknown_vehicle", DEVICE, lambda c: crash(c, vin=vin_for(WMI["oem"], 77)), "unknown_vehicle"),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing(case: Refusal) -> None:
    chain = tel_world()
    if case.setup is not None:
        case.setup(chain)
    before = snapshot(chain)
    receipt = send(chain, case.sender, case.msg(chain))
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        assert receipt.detail[k] == v, receipt.detail
    if case.reason:
        assert case.reason in receipt.detail["reason"], receipt.detail
    assert snapshot(chain)[:2] == before[:2], "a failed transaction changed the ledger"


def test_check_summary_accepts_what_summarize_gives() -> None:
    for n in (1, 2, 60):
        check_summary(batch_msg(VIN, trip(T0, n, brake_at=(0,), events={0: 1})).summary)


# ---------------------------------------------------------------- window totals


def brute_window(chain: Chain, vin: str, start: int, end: int) -> Totals:
    """The sums of the summaries of the batches whose last sample is in [start, end), one by one."""
    total = Totals()
    v = TEL_VEHICLES.get(chain.ledger, vin)
    for seq in range(1, (v.batches if v else 0) + 1):
        s = BATCHES.get(chain.ledger, vin, seq).summary
        if start <= s.end < end:
            total = total.plus(s)
    return total


def window(chain: Chain, vin: str, start: int, end: int) -> Totals:
    return chain.registry.provider(TelemetryDoor).window(chain.ledger, vin, start, end)


batch_shapes = st.lists(st.tuples(st.integers(1, 3 * 3_600_000),  # gap after the batch before (ms)
                                  st.integers(1, 40),  # samples
                                  st.integers(1, 90_000),  # ms between samples
                                  st.integers(0, 60),  # metres between samples
                                  st.integers(0, 140),  # speed
                                  st.lists(st.integers(0, 39), max_size=4),  # harsh braking at
                                  st.integers(-720, 840)),  # UTC offset (min)
                        min_size=0, max_size=9)


def play_batches(shapes: list) -> Chain:
    chain = tel_world()
    t = now(chain)
    odo = 0
    for gap, n, every, step, speed, brakes, offset in shapes:
        samples = trip(t + gap, n, every_ms=every, speed=speed, limit=100, odo_m=odo, step_m=step,
                       brake_at=brakes)
        ok(chain, DEVICE, batch_msg(VIN, samples, offset), at=max(samples[-1].t, now(chain) + 1))
        t, odo = samples[-1].t, samples[-1].odometer_m
    return chain


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch_shapes, st.randoms(use_true_random=False))
def test_window_totals_equal_a_brute_force_sum(shapes: list, rnd: random.Random) -> None:
    chain = play_batches(shapes)
    v = TEL_VEHICLES.get(chain.ledger, VIN)
    assert v is None or v.batches == len(shapes)
    points = {0, T0, 2**53 - 1}
    for seq in range(1, len(shapes) + 1):
        s = BATCHES.get(chain.ledger, VIN, seq).summary
        points |= {s.start, s.end - 1, s.end, s.end + 1}
    points |= {rnd.randrange(T0, T0 + 40 * 3_600_000) for _ in range(5)}
    pts = sorted(points)
    door = chain.registry.provider(TelemetryDoor)
    ends = [BATCHES.get(chain.ledger, VIN, seq).summary.end for seq in range(1, len(shapes) + 1)]
    for t in pts:
        assert door.last_before(chain.ledger, VIN, t) == sum(1 for e in ends if e < t), t
    for start in pts:
        for end in pts:
            assert window(chain, VIN, start, end) == brute_window(chain, VIN, start, end), (start, end)
    # the whole history is the running totals of the newest batch
    if shapes:
        assert window(chain, VIN, 0, 2**53 - 1) == v.totals == BATCHES.get(chain.ledger, VIN, v.batches).cumulative


def test_window_of_a_vehicle_without_batches_or_a_bad_vin_is_zero() -> None:
    chain = tel_world()
    assert window(chain, VIN, 0, 2**53 - 1) == Totals()
    assert window(chain, "not/a/vin", 0, 2**53 - 1) == Totals()
    commit(chain, now(chain) + 1_000)
    assert window(chain, VIN, 2**53 - 1, 0) == Totals()
    end = BATCHES.get(chain.ledger, VIN, 1).summary.end
    assert window(chain, VIN, end, end) == Totals()
    assert window(chain, VIN, end, end + 1).batches == 1


def test_the_door_hands_a_reported_crash_and_nothing_else() -> None:
    chain = tel_world()
    ok(chain, DEVICE, crash(chain))
    door = chain.registry.provider(TelemetryDoor)
    assert door.crash(chain.ledger, VIN, 1) == CRASHES.get(chain.ledger, VIN, 1) is not None
    assert door.crash(chain.ledger, VIN, 0) is None
    assert door.crash(chain.ledger, VIN, 2) is None
    assert door.crash(chain.ledger, VIN + "/1", 1) is None  # not a VIN: no key is built from it


def test_the_door_sums_batches_by_sequence_and_finds_them_by_time() -> None:
    chain = tel_world()
    door = chain.registry.provider(TelemetryDoor)
    for _ in range(3):
        commit(chain, now(chain) + 1_000, brake_at=(3,))
    running = Totals()
    for seq in range(1, 4):
        b = BATCHES.get(chain.ledger, VIN, seq)
        running = running.plus(b.summary)
        assert door.through(chain.ledger, VIN, seq) == running == b.cumulative
        assert door.last_before(chain.ledger, VIN, b.summary.end) == seq - 1
        assert door.last_before(chain.ledger, VIN, b.summary.end + 1) == seq
    for seq in (0, 4):
        assert door.through(chain.ledger, VIN, seq) == Totals()
    assert door.through(chain.ledger, OTHER_VIN, 1) == Totals()
    assert door.last_before(chain.ledger, OTHER_VIN, 2**53 - 1) == 0
    # not a VIN: nothing, and no key is built from it
    assert door.through(chain.ledger, VIN + "/1", 1) == Totals()
    assert door.last_before(chain.ledger, VIN + "/1", 2**53 - 1) == 0


def test_the_totals_query_is_the_window() -> None:
    from blokauto.modules.telemetry import queries
    from helpers.vehicles import MemoryView

    chain = tel_world()
    for _ in range(3):
        commit(chain, now(chain) + 1_000, brake_at=(3,))
    e1 = BATCHES.get(chain.ledger, VIN, 1).summary.end
    view = MemoryView(chain)
    out = queries.totals(view, queries.WindowQuery(vin=VIN, start=e1 + 1))
    expected = brute_window(chain, VIN, e1 + 1, 2**53 - 1)
    assert out == {"vin": VIN, "start": e1 + 1, "end": 2**53 - 1, **msgspec.to_builtins(expected)}
    assert expected.batches == 2 and expected.harsh_brakes == 2
