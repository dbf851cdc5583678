"""Attacks an outside tester found on the odometer's plausibility rule, one section each:

- RATCHET: an unrelated organisation climbs in steps that are each within the slack of the one
  before (seconds apart, or all in one block), so each was judged against the highest trusted
  reading alone and the owner's honest reading was then branded a rollback.
- FRESH VEHICLE: a vehicle's first reading was never judged, so 965,000 km minutes after its
  registration was trusted.
- UNIT ROUNDING: 999 mi (1,607.7 km, rounded down to 1,607) after 1,608 km was a rollback.

The rule now (docs/vehicles.md, ``modules/vehicles/odometer.py``): a reading must be plausible
against every earlier trusted reading and the vehicle's birth, which one stored anchor stands for;
a reading in miles is a rollback only if even the upper end of what its display can mean is at
most the highest trusted reading. A brute-force model of that text is checked against the chain.
"""

from __future__ import annotations

import math
from datetime import date
from fractions import Fraction
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blokauto.core.block import Genesis
from blokauto.modules.governance.messages import Propose, Vote
from blokauto.modules.governance.state import SetParameter
from blokauto.modules.vehicles.messages import RecordOdometer, ReplaceCluster
from blokauto.modules.vehicles.odometer import birth_anchor, days_from_civil
from blokauto.modules.vehicles.state import VEHICLES, OdometerAnchor

from conftest import T0, Chain, build_tx
from helpers.vehicles import (CHAIN, ORGS, WMI, admin, assign_wmi, history, register_msg, vehicle, vehicles_genesis,
                              vin_for)

HOUR = 3_600_000
MINUTE = 60_000
DAY = 24 * HOUR
SLACK = 2_000  # the default odometer_jump_slack_km
RULE = {"odometer_max_kmh": 300}  # what `blokauto init` sets
ACME, KBA, OWNER_SHOP = admin("shop"), admin("reg"), admin("fleet")  # KBA: unrelated to the vehicle and its owner
VIN = vin_for(WMI["oem"])
REG_AT = 60_000  # the vehicle is registered one minute after genesis (T0 = 2027-01-15 08:00 UTC)
FRESH = "2027-01-15"  # built the day it is registered: its birth is 00:00 UTC that day, 8 hours before T0
USED = "2019-05-20"  # built years before: a used car entering the ledger
LATER = "2027-03-01"  # a build date after the registration: the registration is its birth
BORN = {FRESH: -8 * HOUR, USED: None, LATER: REG_AT}  # birth anchor time relative to T0 (None: years before)


def make_chain(build_date: str = USED, registered_at: int = REG_AT, **params: int) -> Chain:
    g = vehicles_genesis()
    chain = Chain(Genesis(chain=g.chain, time=g.time, organisations=g.organisations, quorum=1, params=params))
    for org, wmi in WMI.items():
        assign_wmi(chain, wmi, org)
    t = T0 + registered_at
    receipt = chain.block(build_tx(admin("oem"), register_msg(VIN, build_date=build_date), chain=CHAIN,
                                   expires=t + HOUR), time=t).receipts[0]
    assert receipt.ok, receipt
    return chain


def readings_block(chain: Chain, at: int, *readings: tuple[Any, int, str]) -> list[Any]:
    """One block at ``at`` ms after genesis holding each (sender, value, unit) reading, in order."""
    t = T0 + at
    txs = [build_tx(sender, RecordOdometer(vin=VIN, value=value, unit=unit), chain=CHAIN, expires=t + HOUR)
           for sender, value, unit in readings]
    receipts = chain.block(*txs, time=t).receipts
    assert all(r.ok for r in receipts), receipts
    return receipts


def read(chain: Chain, sender: Any, value: int, at: int, unit: str = "km") -> str:
    """A reading in a block of its own; returns its flag ("" if trusted)."""
    return flag_of(readings_block(chain, at, (sender, value, unit))[0])


def flag_of(receipt: Any) -> str:
    return next((e["flag"] for e in receipt.events if e["type"] == "vehicles.odometer_flagged"), "")


def bound_holds(later: tuple[int, int], earlier: tuple[int, int], max_kmh: int = 300, slack: int = SLACK) -> bool:
    """later km <= earlier km + max_kmh * elapsed hours + slack, in exact rational arithmetic."""
    return later[0] <= earlier[0] + Fraction(max_kmh * (later[1] - earlier[1]), HOUR) + slack


# ================================================================ RATCHET

RATCHET_ROWS = [
    # (id, [(sender, km, ms after genesis)], expected flags)
    ("ratchet-seconds-apart",
     [(ACME, 30_000, HOUR), (KBA, 31_999, HOUR + 1_000), (KBA, 33_998, HOUR + 2_000), (KBA, 35_997, HOUR + 3_000),
      (KBA, 37_996, HOUR + 4_000), (KBA, 39_995, HOUR + 5_000), (OWNER_SHOP, 32_100, 2 * HOUR)],
     ["", "", "implausible_jump", "implausible_jump", "implausible_jump", "implausible_jump", ""]),
    ("ratchet-hours-apart",  # each step +1,999 km an hour later: faster than 300 km/h for long
     [(ACME, 30_000, HOUR), (KBA, 31_999, 2 * HOUR), (KBA, 33_998, 3 * HOUR), (KBA, 35_997, 4 * HOUR),
      (OWNER_SHOP, 31_999, 5 * HOUR)],
     ["", "", "implausible_jump", "implausible_jump", ""]),
    ("older-reading-binds-at-the-boundary",  # 30,000 + 2 h at 300 km/h + slack = 32,600 exactly
     [(ACME, 30_000, HOUR), (KBA, 31_000, 2 * HOUR), (KBA, 32_600, 3 * HOUR)],
     ["", "", ""]),
    ("older-reading-binds-one-km-past",  # judged against 31,000 alone it would pass (33,300)
     [(ACME, 30_000, HOUR), (KBA, 31_000, 2 * HOUR), (KBA, 32_601, 3 * HOUR)],
     ["", "", "implausible_jump"]),
    ("honest-fast-driving",  # 299 km every hour for a day: 6,877 km, far past one slack, all plausible
     [(ACME, 30_000 + 299 * i, HOUR * (i + 1)) for i in range(24)],
     [""] * 24),
    ("a-tie-keeps-the-older-anchor",  # 300 km in the hour at exactly 300 km/h: both bind alike
     [(ACME, 30_000, HOUR), (KBA, 30_300, 2 * HOUR), (KBA, 32_600, 3 * HOUR), (KBA, 32_601, 3 * HOUR)],
     ["", "", "", "implausible_jump"]),
    ("honest-long-drive-days-later",
     [(ACME, 30_000, HOUR), (KBA, 60_000, HOUR + 5 * DAY)],
     ["", ""]),
    ("owner-below-the-one-step-the-slack-allows",  # what no time-based rule can tell from honest: see docs
     [(ACME, 30_000, HOUR), (KBA, 31_999, HOUR + 1_000), (OWNER_SHOP, 31_000, HOUR + 2_000)],
     ["", "", "suspected_rollback"]),
]


@pytest.mark.parametrize("readings,flags", [r[1:] for r in RATCHET_ROWS], ids=[r[0] for r in RATCHET_ROWS])
def test_ratchet_each_reading_is_judged_against_every_earlier_trusted_one(readings, flags):
    chain = make_chain(**RULE)
    got = [read(chain, sender, km, at) for sender, km, at in readings]
    assert got == flags
    trusted = [(km, at) for (_, km, at), flag in zip(readings, flags) if flag == ""]
    o = vehicle(chain, VIN).odometer
    assert o.max_km == max(km for km, _ in trusted)
    assert o.implausible == (flags.count("implausible_jump") or msgspec.UNSET)
    # the anchor is the trusted reading that bounds later ones hardest (the older one on a tie)
    best = min(range(len(trusted)), key=lambda i: (trusted[i][0] * HOUR - 300 * (T0 + trusted[i][1]), i))
    assert o.anchor == OdometerAnchor(km=trusted[best][0], at=T0 + trusted[best][1])


def test_ratchet_the_owners_honest_reading_is_not_branded():
    """The tester's case: after the climb the owner's honest reading is trusted and the status stays
    actual; the outsider gained one slack at most (31,999), not 9,995 km."""
    chain = make_chain(**RULE)
    assert read(chain, ACME, 30_000, HOUR) == ""
    for i in range(1, 6):
        read(chain, KBA, 30_000 + 1_999 * i, HOUR + i * 1_000)
    assert vehicle(chain, VIN).odometer.max_km == 31_999
    assert read(chain, OWNER_SHOP, 32_000, HOUR + DAY) == ""
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.rollbacks, o.max_km, o.implausible) == ("actual", 0, 32_000, 4)


@pytest.mark.parametrize("acme_in_the_same_block", [False, True], ids=["acme-block-before", "acme-same-block"])
def test_ratchet_inside_one_block(acme_in_the_same_block):
    """Ten +1,999 km steps in one block (no time passes): only the first is within the slack."""
    chain = make_chain(**RULE)
    steps = [(KBA, 30_000 + 1_999 * i, "km") for i in range(1, 11)]
    if acme_in_the_same_block:
        receipts = readings_block(chain, HOUR, (ACME, 30_000, "km"), *steps)[1:]
    else:
        readings_block(chain, HOUR - 1_000, (ACME, 30_000, "km"))
        receipts = readings_block(chain, HOUR, *steps)
    assert [flag_of(r) for r in receipts] == [""] + ["implausible_jump"] * 9
    o = vehicle(chain, VIN).odometer
    assert (o.max_km, o.implausible, o.status) == (31_999, 9, "actual")
    assert read(chain, OWNER_SHOP, 32_000, HOUR + 1_000) == ""


# ---------------------------------------------------------------- the rule, by brute force


def model(build_date: str, registered_at: int, readings: list[tuple[int, str, int]], *, max_kmh: int = 300,
          slack: int = SLACK, limit: int = 999_999) -> tuple[list[str], list[tuple[int, int]]]:
    """docs/vehicles.md's rule over (value, unit, block time) readings, keeping every trusted
    reading (the birth first) and judging each new one against all of them, in exact fractions."""
    per_unit = {"km": Fraction(1), "mi": Fraction(1_609_344, 1_000_000)}
    born = (date.fromisoformat(build_date) - date(1970, 1, 1)).days * DAY
    trusted = [(0, max(0, min(born, registered_at)))]
    highest = 0
    flags = []
    for value, unit, at in readings:
        km = math.floor(value * per_unit[unit])
        if km > limit:
            flag = "exceeds_mechanical_limits"
        elif (value + 1) * per_unit[unit] <= highest:
            flag = "suspected_rollback"
        elif not all(bound_holds((km, at), r, max_kmh, slack) for r in trusted):
            flag = "implausible_jump"
        else:
            flag = ""
            trusted.append((km, at))
            highest = max(highest, km)
        flags.append(flag)
    return flags, trusted


step = st.tuples(
    st.integers(-2_500, 4_500),                       # km driven (or claimed) since the reading before
    st.sampled_from(["km", "km", "mi"]),              # the unit the display shows
    st.one_of(st.just(0), st.integers(0, 90_000), st.integers(0, 6 * HOUR)),  # ms after it (0: same block)
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(build_date=st.sampled_from([FRESH, USED, LATER]), start=st.sampled_from([0, 1_500, 30_000]),
       steps=st.lists(step, min_size=1, max_size=14))
def test_ratchet_the_chain_follows_the_every_trusted_reading_rule(build_date, start, steps):
    """Property: the flags the chain gives equal the brute-force rule's, the record keeps the
    anchor the brute force would pick, and no two trusted readings (nor the birth and any) are
    implausible against each other: a ratchet cannot get through."""
    chain = make_chain(build_date, **RULE)
    target, at = start, HOUR
    blocks: list[tuple[int, list[tuple[Any, int, str]]]] = []
    senders = [ACME, KBA, OWNER_SHOP]
    for i, (delta, unit, gap) in enumerate(steps):
        target = max(0, target + delta)
        at += gap
        value = target if unit == "km" else target * 1_000_000 // 1_609_344
        if not blocks or blocks[-1][0] != at:
            blocks.append((at, []))
        blocks[-1][1].append((senders[i % 3], value, unit))
    flags = [flag_of(r) for t, group in blocks for r in readings_block(chain, t, *group)]
    readings = [(value, unit, T0 + t) for t, group in blocks for _, value, unit in group]
    expected, trusted = model(build_date, T0 + REG_AT, readings)
    assert flags == expected
    o = vehicle(chain, VIN).odometer
    assert o.max_km == max(km for km, _ in trusted)
    best = min(range(len(trusted)), key=lambda i: (trusted[i][0] * HOUR - 300 * trusted[i][1], i))
    assert o.anchor == OdometerAnchor(km=trusted[best][0], at=trusted[best][1])
    for j in range(len(trusted)):
        for i in range(j):
            assert bound_holds(trusted[j], trusted[i]), (trusted[i], trusted[j])


# ================================================================ FRESH VEHICLE

FRESH_ROWS = [
    # (id, build date, km, ms after genesis, flag)
    ("fresh-965000-km-minutes-after-registration", FRESH, 965_000, 5 * MINUTE, "implausible_jump"),
    ("fresh-at-the-boundary", FRESH, 4_425, 5 * MINUTE, ""),        # 8 h 5 min since 00:00 at 300 km/h + slack
    ("fresh-one-km-past", FRESH, 4_426, 5 * MINUTE, "implausible_jump"),
    ("fresh-delivery-km", FRESH, 120, 5 * MINUTE, ""),
    ("built-after-registration-boundary", LATER, 2_300, REG_AT + HOUR, ""),  # born at its registration
    ("built-after-registration-one-km-past", LATER, 2_301, REG_AT + HOUR, "implausible_jump"),
    ("used-car-entering-the-ledger", USED, 180_000, 5 * MINUTE, ""),
]


@pytest.mark.parametrize("build_date,km,at,flag", [r[1:] for r in FRESH_ROWS], ids=[r[0] for r in FRESH_ROWS])
def test_fresh_vehicle_first_reading_is_judged_against_its_birth(build_date, km, at, flag):
    chain = make_chain(build_date, **RULE)
    assert read(chain, KBA, km, at) == flag
    o = vehicle(chain, VIN).odometer
    assert o.max_km == (km if flag == "" else 0)


def test_fresh_vehicle_inflated_by_an_outsider_the_owners_reading_stays_honest():
    """The tester's case: 965,000 km from an unrelated organisation minutes after registration,
    then the honest 120 km."""
    chain = make_chain(FRESH, **RULE)
    assert read(chain, KBA, 965_000, REG_AT + 5 * MINUTE) == "implausible_jump"
    assert read(chain, OWNER_SHOP, 120, REG_AT + HOUR) == ""
    o = vehicle(chain, VIN).odometer
    assert (o.status, o.rollbacks, o.max_km, o.km, o.implausible) == ("actual", 0, 120, 120, 1)


@pytest.mark.parametrize("build_date", [FRESH, LATER, USED])
def test_fresh_vehicle_registration_records_its_birth_as_the_anchor(build_date):
    """0 km at 00:00 UTC of the build date, or at the registration block if that is earlier; only
    where the rule is on (a chain without it keeps its records' bytes)."""
    born = BORN[build_date]
    anchor = vehicle(make_chain(build_date, **RULE), VIN).odometer.anchor
    if born is None:
        assert anchor.km == 0 and anchor.at == (date(2019, 5, 20) - date(1970, 1, 1)).days * DAY
    else:
        assert anchor == OdometerAnchor(km=0, at=T0 + born)
    off = make_chain(build_date)
    assert vehicle(off, VIN).odometer.anchor is msgspec.UNSET
    assert b"anchor" not in off.ledger.get(VEHICLES.key(VIN))


def turn_rule_on(chain: Chain, at: int) -> None:
    """Governance votes odometer_max_kmh to 300 (in force from the next block)."""
    t = T0 + at
    opened = chain.block(build_tx(admin("reg"), Propose(action=SetParameter(name="odometer_max_kmh", value=300)),
                                  chain=CHAIN, expires=t + HOUR), time=t).receipts[0]
    pid = next(e["proposal"] for e in opened.events if e["type"] == "governance.proposal_opened")
    for org in ORGS:
        if org == "reg":
            continue
        r = chain.block(build_tx(admin(org), Vote(proposal=pid, approve=True), chain=CHAIN, expires=t + HOUR),
                        time=t).receipts[0]
        if any(e["type"] == "governance.proposal_decided" for e in r.events):
            return
    raise AssertionError("the vote did not pass")


def test_fresh_vehicle_registered_before_the_rule_was_on_is_judged_against_its_build_date():
    chain = make_chain(FRESH)  # rule off at registration: no anchor stored
    turn_rule_on(chain, 2 * MINUTE)
    assert read(chain, KBA, 965_000, 5 * MINUTE) == "implausible_jump"
    assert read(chain, OWNER_SHOP, 120, 6 * MINUTE) == ""
    # 120 km six minutes in binds later readings harder than 0 km at 00:00 (2,430 km at 300 km/h)
    assert vehicle(chain, VIN).odometer.anchor == OdometerAnchor(km=120, at=T0 + 6 * MINUTE)


@given(st.dates())
@example(date(1970, 1, 1))
@example(date(2000, 3, 1))  # a 400-year leap day just behind, as in 1600 and 2400
@example(date(1600, 12, 31))
@example(date(2400, 3, 1))
@example(date(2024, 2, 29))
@example(date(1, 1, 1))
@example(date(9999, 12, 31))
def test_fresh_vehicle_build_day_is_counted_like_the_calendar(d):
    assert days_from_civil(d.year, d.month, d.day) == (d - date(1970, 1, 1)).days


@pytest.mark.parametrize("build_date,registered_at,at", [
    ("2027-01-15", T0, T0 - 8 * HOUR),
    ("2026-12-31", 2 * T0, (date(2026, 12, 31) - date(1970, 1, 1)).days * DAY),
    ("2027-02-31", 2 * T0, (date(2027, 3, 3) - date(1970, 1, 1)).days * DAY),  # the pattern admits day 31: it rolls on
    ("0000-01-01", T0, 0),                                                       # before 1970: block time 0
    ("9999-12-31", T0, T0),                                                      # after the registration
])
def test_fresh_vehicle_birth_anchor_edges(build_date, registered_at, at):
    assert birth_anchor(build_date, registered_at) == OdometerAnchor(km=0, at=at)


# ================================================================ UNIT ROUNDING

ROUNDING_ROWS = [
    # (id, first (value, unit), second (value, unit), flag of the second)
    ("1608km-then-999mi", (1_608, "km"), (999, "mi"), ""),                 # 999 mi: 1,607.7 up to 1,609.3 km
    ("1609km-then-999mi", (1_609, "km"), (999, "mi"), ""),
    ("1610km-then-999mi", (1_610, "km"), (999, "mi"), "suspected_rollback"),  # below even 1,000 mi
    ("1609km-then-1000mi", (1_609, "km"), (1_000, "mi"), ""),
    ("999mi-then-1607km", (999, "mi"), (1_607, "km"), ""),                 # 1,607 km: less than 1,608
    ("999mi-then-1606km", (999, "mi"), (1_606, "km"), "suspected_rollback"),
    ("999mi-then-997mi", (999, "mi"), (997, "mi"), "suspected_rollback"),  # two miles down
    ("999mi-then-998mi", (999, "mi"), (998, "mi"), ""),                    # one mile down: unseen (docs)
    ("15625mi-then-15624mi", (15_625, "mi"), (15_624, "mi"), "suspected_rollback"),  # 15,625 mi: 25,146 km exactly
    ("1608km-then-1607km", (1_608, "km"), (1_607, "km"), "suspected_rollback"),
]


@pytest.mark.parametrize("first,second,flag", [r[1:] for r in ROUNDING_ROWS], ids=[r[0] for r in ROUNDING_ROWS])
def test_unit_rounding_a_reading_in_miles_is_judged_by_what_its_display_can_mean(first, second, flag):
    chain = make_chain(**RULE)
    assert read(chain, ACME, first[0], HOUR, first[1]) == ""
    assert read(chain, OWNER_SHOP, second[0], 2 * HOUR, second[1]) == flag
    o = vehicle(chain, VIN).odometer
    assert o.status == ("not_actual" if flag else "actual")
    assert history(chain, VIN)[-1]["data"]["km"] == second[0] * (1_609_344 if second[1] == "mi" else 1_000_000) // 10**6


def test_unit_rounding_a_chain_without_the_rule_keeps_the_old_comparison():
    chain = make_chain()
    assert read(chain, ACME, 1_608, HOUR) == ""
    assert read(chain, OWNER_SHOP, 999, 2 * HOUR, "mi") == "suspected_rollback"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.integers(0, 500_000_000), drives=st.lists(
    st.tuples(st.integers(0, 3_000_000), st.sampled_from(["km", "mi"])), min_size=1, max_size=12))
def test_unit_rounding_honest_displays_in_any_unit_are_never_flagged(start, drives):
    """Property: a vehicle whose true distance (in metres) only grows, read from displays that show
    whole km or whole miles (rounded down) in either unit, is never flagged."""
    chain = make_chain(**RULE)
    metres = start
    for i, (driven, unit) in enumerate(drives):
        metres += driven
        value = metres // 1_000 if unit == "km" else metres * 1_000 // 1_609_344
        assert read(chain, [ACME, OWNER_SHOP][i % 2], value, (i + 1) * DAY, unit) == "", (metres, value, unit)
    assert vehicle(chain, VIN).odometer.status == "actual"


def test_unit_rounding_just_below_a_cluster_offset_keeps_a_whole_anchor():
    """A new cluster fitted showing 1 km more than the old one (offset -1), then a reading of 0 mi
    (up to 1.6 km shown): no rollback, and the record's km and anchor stay whole, never negative."""
    chain = make_chain(FRESH, **RULE)
    t = T0 + HOUR
    receipt = chain.block(build_tx(ACME, ReplaceCluster(vin=VIN, old_value=0, new_value=1), chain=CHAIN,
                                   expires=t + HOUR), time=t).receipts[0]
    assert receipt.ok and flag_of(receipt) == ""
    assert vehicle(chain, VIN).odometer.offset_km == -1
    assert read(chain, ACME, 0, 2 * HOUR, "mi") == ""
    o = vehicle(chain, VIN).odometer
    assert (o.km, o.max_km, o.anchor, o.status) == (0, 0, OdometerAnchor(km=0, at=T0 + 2 * HOUR), "actual")
    record = msgspec.json.decode(chain.ledger.get(VEHICLES.key(VIN)))
    assert record["odometer"]["anchor"] == {"km": 0, "at": T0 + 2 * HOUR}


# ================================================================ THE ROLLBACK BOUNDARY

@pytest.mark.parametrize("rule", [RULE, {}], ids=["rule-on", "rule-off"])
@pytest.mark.parametrize("second,flag", [(9_999, "suspected_rollback"), (10_000, ""), (10_001, "")],
                         ids=["one-km-below-the-maximum", "at-the-maximum", "one-km-above"])
def test_rollback_boundary_a_reading_one_km_below_the_maximum_is_a_rollback(rule, second, flag):
    """The highest trusted reading is 10,000 km: 9,999 km is a rollback, 10,000 km is not (with the
    plausibility rule on, a km display is whole: 9,999 means less than 10,000)."""
    chain = make_chain(**rule)
    assert read(chain, ACME, 10_000, HOUR) == ""
    assert read(chain, ACME, second, 2 * HOUR) == flag
    o = vehicle(chain, VIN).odometer
    assert (o.max_km, o.rollbacks, o.status) == (max(10_000, second), 1 if flag else 0,
                                                 "not_actual" if flag else "actual")
