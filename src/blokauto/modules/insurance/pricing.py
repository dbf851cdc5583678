"""The premium of one period: a declared formula over the period's trip-summary totals with integer
parameters (no code uploaded by anyone). Pure: the ledger, the SDK and the holder compute the same
cents.

    km          = distance_m // 1000
    night_km    = night_distance_m // 1000
    usage       = per_km * km
                + per_km * night_km * night_factor_bps // 10000      (night km cost extra)
                + per_harsh_brake * harsh_brakes
                + per_over_limit_minute * (over_limit_s // 60)
    premium     = clamp(base * f + usage, min_premium * f, max_premium)

where ``f`` = elapsed / period (the part of the period the policy was in force: 1 for a whole period,
less for the last one of a cancelled or sold policy; each ``* f`` is ``* elapsed // period``, rounded
down). The base and the minimum shrink with the time covered; the usage and the cap do not (a
thousand km driven on the first day of a cancelled policy cost what they cost, up to the period's
cap). Without the holder's consent for ``driving`` data the usage is unknown and the premium is
``max_premium * f``: the product's cap, declared up front, for the time covered.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import MAX_SAFE_INT, Uint
from ..telemetry.doors import Totals

Money = Annotated[int, msgspec.Meta(ge=0, le=10**12, description="minor units of the product's currency")]
BPS = 10_000


class Pricing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A product's integer pricing parameters (minor units of its currency)."""

    base: Money  # per period
    max_premium: Money  # per period: the cap, and the price without consent (required: there is no "no cap")
    per_km: Money = 0
    night_factor_bps: Annotated[int, msgspec.Meta(ge=0, le=100_000)] = 0  # extra on night km, basis points
    per_harsh_brake: Money = 0
    per_over_limit_minute: Money = 0
    min_premium: Money = 0  # per period


def premium(p: Pricing, t: Totals | None, elapsed_ms: int, period_ms: int) -> int:
    """The premium for ``elapsed_ms`` of a ``period_ms`` period with usage ``t`` (None: not consented)."""
    low = p.min_premium * elapsed_ms // period_ms
    high = p.max_premium * elapsed_ms // period_ms
    if t is None:
        return high
    km, night_km = t.distance_m // 1000, t.night_distance_m // 1000
    usage = (p.per_km * km + p.per_km * night_km * p.night_factor_bps // BPS
             + p.per_harsh_brake * t.harsh_brakes + p.per_over_limit_minute * (t.over_limit_s // 60))
    return min(max(p.base * elapsed_ms // period_ms + usage, low), p.max_premium, MAX_SAFE_INT)


def check_pricing(p: Pricing) -> str | None:
    """Why ``p`` cannot price anything (None if it can)."""
    if p.min_premium > p.max_premium:
        return f"min_premium {p.min_premium} is above max_premium {p.max_premium}"
    if p.base > p.max_premium:
        return f"base {p.base} is above max_premium {p.max_premium}"
    return None
