"""The premium formula (``insurance.pricing``), by property (hypothesis) and by worked examples.

For any pricing a product may publish (``check_pricing``), any usage and any part of a period:
the premium lies in [min * f, max * f] (each ``* f`` rounded down as the formula does), never falls
when any usage counter or the elapsed time grows, is the cap without consent, and equals a
brute-force reference written here from the module docstring.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from blokauto.modules.insurance.pricing import Pricing, check_pricing, premium
from blokauto.modules.telemetry import Totals

PERIOD = 30 * 86_400_000
MONEY = 10**12

money = st.one_of(st.sampled_from([0, 1, 2, 99, 100, 1_000, 20_000, MONEY]), st.integers(0, MONEY))
small_money = st.one_of(st.sampled_from([0, 1, 5, 20, 100]), st.integers(0, 10_000))


@st.composite
def pricings(draw: Any) -> Pricing:
    """A pricing ``check_pricing`` accepts."""
    hi = draw(money)
    lo = draw(st.integers(0, hi))
    base = draw(st.integers(0, hi))
    return Pricing(base=base, per_km=draw(small_money), night_factor_bps=draw(st.integers(0, 100_000)),
                   per_harsh_brake=draw(small_money), per_over_limit_minute=draw(small_money), min_premium=lo,
                   max_premium=hi)


counter = st.one_of(st.sampled_from([0, 1, 59, 60, 61, 999, 1_000, 1_001]), st.integers(0, 10**9))
usage = st.builds(lambda d, n, h, o: Totals(batches=1, samples=1, distance_m=d, night_distance_m=min(n, d),
                                            harsh_brakes=h, over_limit_s=o),
                  counter, counter, st.integers(0, 10_000), counter)
periods = st.one_of(st.just(PERIOD), st.integers(1, 366 * 86_400_000))


@st.composite
def elapsed_and_period(draw: Any) -> tuple[int, int]:
    period = draw(periods)
    return draw(st.one_of(st.sampled_from([0, 1, period - 1, period]), st.integers(0, period))), period


def reference(p: Pricing, t: Totals | None, elapsed: int, period: int) -> int:
    """The docstring's formula, term by term."""
    def f(x: int) -> int:
        return x * elapsed // period

    if t is None:
        return f(p.max_premium)  # no consent: the cap, for the time covered
    km, night_km = t.distance_m // 1000, t.night_distance_m // 1000
    extra_night = p.per_km * night_km * p.night_factor_bps // 10_000
    minutes = t.over_limit_s // 60
    raw = (f(p.base) + p.per_km * km + extra_night + p.per_harsh_brake * t.harsh_brakes
           + p.per_over_limit_minute * minutes)
    return sorted([f(p.min_premium), raw, p.max_premium])[1]  # clamp: the minimum shrinks, the cap does not


PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(pricings(), usage, elapsed_and_period())
def test_the_premium_lies_between_min_and_max_for_the_part_of_the_period(p: Pricing, t: Totals,
                                                                        ep: tuple[int, int]) -> None:
    elapsed, period = ep
    got = premium(p, t, elapsed, period)
    assert p.min_premium * elapsed // period <= got <= p.max_premium  # found by the outside attack: a shrinking
    # cap wiped out the usage of a policy cancelled early (20 km, 2 harsh brakes: 0.00 EUR)


@PROPS
@given(pricings(), usage, elapsed_and_period())
def test_the_premium_equals_the_reference(p: Pricing, t: Totals, ep: tuple[int, int]) -> None:
    assert premium(p, t, *ep) == reference(p, t, *ep)
    assert premium(p, None, *ep) == reference(p, None, *ep)


@PROPS
@given(pricings(), usage, elapsed_and_period(), st.sampled_from(["distance_m", "night_distance_m", "harsh_brakes",
                                                                   "over_limit_s"]), counter)
def test_the_premium_never_falls_when_usage_grows(p: Pricing, t: Totals, ep: tuple[int, int], name: str,
                                                  more: int) -> None:
    grown = msgspec.structs.replace(t, **{name: getattr(t, name) + more})
    assume(grown.night_distance_m <= grown.distance_m)
    assert premium(p, grown, *ep) >= premium(p, t, *ep)


@PROPS
@given(pricings(), usage, periods, st.data())
def test_the_premium_never_falls_when_the_period_runs_longer(p: Pricing, t: Totals, period: int, data: Any) -> None:
    a = data.draw(st.integers(0, period))
    b = data.draw(st.integers(a, period))
    assert premium(p, t, a, period) <= premium(p, t, b, period)


@PROPS
@given(pricings(), usage, elapsed_and_period())
def test_without_consent_the_premium_is_the_cap(p: Pricing, t: Totals, ep: tuple[int, int]) -> None:
    elapsed, period = ep
    assert premium(p, None, elapsed, period) == p.max_premium * elapsed // period
    if elapsed == period:
        assert premium(p, None, elapsed, period) >= premium(p, t, elapsed, period)


@PROPS
@given(money, money, money)
def test_a_pricing_prices_when_min_and_base_are_within_max(base: int, lo: int, hi: int) -> None:
    reason = check_pricing(Pricing(base=base, min_premium=lo, max_premium=hi))  # max_premium is required
    assert (reason is None) == (lo <= hi and base <= hi)


# ---------------------------------------------------------------- worked by hand


P = Pricing(base=2_000, per_km=5, night_factor_bps=5_000, per_harsh_brake=100, per_over_limit_minute=20,
            min_premium=1_000, max_premium=20_000)


@pytest.mark.parametrize("totals,elapsed,expected", [
    (Totals(), PERIOD, 2_000),  # the base
    (Totals(distance_m=13_999), PERIOD, 2_065),  # 13 km (rounded down) * 5
    (Totals(distance_m=13_178, night_distance_m=13_178), PERIOD, 2_097),  # + 5 * 13 * 0.5 = 32.5 -> 32
    (Totals(harsh_brakes=3), PERIOD, 2_300),
    (Totals(over_limit_s=119), PERIOD, 2_020),  # 1 whole minute
    (Totals(over_limit_s=120), PERIOD, 2_040),
    (Totals(distance_m=10_000_000), PERIOD, 20_000),  # 10,000 km: capped at max
    (Totals(), PERIOD // 3, 666),  # 2,000 / 3 = 666, above min 333
    (Totals(), PERIOD // 30, 66),  # 2,000 / 30 = 66, min 1,000 / 30 = 33: 66
    (Totals(), 0, 0),
    (Totals(distance_m=999, night_distance_m=999), PERIOD, 2_000),  # not a whole km, by day or by night
])
def test_worked_examples(totals: Totals, elapsed: int, expected: int) -> None:
    assert premium(P, totals, elapsed, PERIOD) == expected


def test_night_km_cost_the_factor_in_basis_points_extra() -> None:
    at_cost = Pricing(base=0, per_km=1, night_factor_bps=10_000, max_premium=MONEY)  # night km cost double
    assert premium(at_cost, Totals(distance_m=10_000_000, night_distance_m=10_000_000), PERIOD, PERIOD) == 20_000
    assert premium(at_cost, Totals(distance_m=10_000_000, night_distance_m=9_999_999), PERIOD, PERIOD) == 19_999
    third = Pricing(base=0, per_km=3, night_factor_bps=3_333, max_premium=MONEY)
    assert premium(third, Totals(distance_m=10_000, night_distance_m=10_000), PERIOD, PERIOD) == 30 + 9  # 9.999


@PROPS
@given(st.integers(0, 10_000), st.integers(0, 100_000), usage)
def test_below_the_cap_the_usage_is_priced_exactly(per_km: int, factor: int, t: Totals) -> None:
    p = Pricing(base=0, per_km=per_km, night_factor_bps=factor, max_premium=MONEY)
    km, night_km = t.distance_m // 1000, t.night_distance_m // 1000
    assume(per_km * (km + night_km * 10) < MONEY)
    assert premium(p, msgspec.structs.replace(t, harsh_brakes=0, over_limit_s=0), PERIOD, PERIOD) == (
        per_km * km + per_km * night_km * factor // 10_000)


def test_the_minimum_lifts_a_cheap_period() -> None:
    cheap = msgspec.structs.replace(P, base=0)
    assert premium(cheap, Totals(distance_m=1_000), PERIOD, PERIOD) == 1_000  # 5 -> 1,000
    assert premium(cheap, Totals(distance_m=300_000), PERIOD, PERIOD) == 1_500  # 300 km * 5
    assert premium(cheap, Totals(), PERIOD // 2, PERIOD) == 500
