"""The odometer's arithmetic, as pure integer functions (no floats: their results are hashed).

Two rules judge a reading (``handlers._reading`` applies them, with the mechanical limit):

- **rollback**: the reading is below the highest trusted reading. With the plausibility rule on,
  a reading means what its display shows, a whole number of its unit: ``999 mi`` says the
  vehicle has covered at least 999 and less than 1,000 miles. It is a rollback only if even
  that upper end (1,609.344 km) is at most the highest trusted reading, so neither the display's
  rounding nor the mile-to-km conversion can brand an honest reading (a km reading: exactly
  ``km < max_km``, as before).
- **plausibility**: a reading ``km`` at block time ``t`` is plausible against a trusted reading
  ``r`` when ``km <= r.km + max_kmh * (t - r.at) / 3,600,000 + slack_km``; it must be plausible
  against *every* earlier trusted reading, and against the vehicle's birth (0 km at the start
  of its build date). All of those constraints are the one of the reading with the least
  ``r.km * 3,600,000 - max_kmh * r.at`` (the *anchor*), so a record keeps that reading alone.
"""

from __future__ import annotations

from .state import OdometerAnchor

MICRO = 1_000_000
#: Millionths of a km in one unit of each odometer unit (1 mi = 1.609344 km exactly).
MICRO_KM_PER_UNIT = {"km": MICRO, "mi": 1_609_344}
KM_PER_MILE_MICRO = MICRO_KM_PER_UNIT["mi"]
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


def to_km(value: int, unit: str) -> int:
    """Whole km a reading shows (miles converted, rounded down)."""
    return value * MICRO_KM_PER_UNIT[unit] // MICRO


def is_rollback(value: int, unit: str, offset_km: int, max_km: int, *, whole_units: bool) -> bool:
    """Is the reading (``value`` in ``unit`` on a cluster whose readings are ``offset_km`` behind)
    below ``max_km``? ``whole_units``: below even at the upper end of what the display can mean."""
    if whole_units:
        return (value + 1) * MICRO_KM_PER_UNIT[unit] + offset_km * MICRO <= max_km * MICRO
    return to_km(value, unit) + offset_km < max_km  # chains without the plausibility rule


def plausible(km: int, at: int, anchor: OdometerAnchor, max_kmh: int, slack_km: int) -> bool:
    """``km <= anchor.km + max_kmh * (at - anchor.at) / 3,600,000 + slack_km``, computed exactly."""
    return (km - anchor.km - slack_km) * MS_PER_HOUR <= max_kmh * (at - anchor.at)


def binding(anchor: OdometerAnchor, max_kmh: int) -> int:
    """Lower is stricter: a later reading's bound is ``(binding + max_kmh * t) / 3,600,000 + slack``."""
    return anchor.km * MS_PER_HOUR - max_kmh * anchor.at


def tighter(anchor: OdometerAnchor, km: int, at: int, max_kmh: int) -> OdometerAnchor:
    """The anchor once the trusted reading ``km`` at ``at`` is on record (the older one on a tie)."""
    reading = OdometerAnchor(km=km, at=at)
    return reading if binding(reading, max_kmh) < binding(anchor, max_kmh) else anchor


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm; a day past the
    end of its month, such as 02-31, counts on into the next one)."""
    if month <= 2:
        year -= 1
    era = year // 400
    yoe = year - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


def birth_anchor(build_date: str, registered_at: int) -> OdometerAnchor:
    """0 km at 00:00 UTC of the build date (``YYYY-MM-DD``), or at ``registered_at`` if earlier:
    a vehicle covers no distance before it is built."""
    year, month, day = (int(part) for part in build_date.split("-"))
    start = days_from_civil(year, month, day) * MS_PER_DAY
    return OdometerAnchor(km=0, at=max(0, min(start, registered_at)))
