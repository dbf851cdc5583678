"""The vehicles module's declaration: index tables and the Protocol it needs from governance."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader

module = Module(
    "vehicles",
    "Each vehicle's life from factory to recycler: birth, title and liens, brands, odometer, service, "
    "inspections, accidents, theft and end of life, as a hash-chained history.",
)

ODOMETER_MAX_KMH = module.param(
    "odometer_max_kmh", 0, min=0, max=1_000,
    doc="Highest average speed (km/h) a reading may imply since any earlier trusted reading and since the "
        "vehicle's birth (0 km at 00:00 UTC of its build date, or at its registration if earlier), plus "
        "odometer_jump_slack_km; a larger jump is kept, flagged implausible_jump and not trusted, so later "
        "honest readings are not judged against it. Above 0 it also judges a reading in miles by the upper "
        "end of what its display can mean (no rollback from rounding). 0 turns these rules off (chains "
        "created before them); `blokauto init` sets 300.",
)
ODOMETER_JUMP_SLACK_KM = module.param(
    "odometer_jump_slack_km", 2_000, min=0, max=100_000,
    doc="Distance a reading may exceed any earlier trusted one (or the birth's 0 km) by, however little time "
        "passed (readings recorded late, rounding).",
)

HISTORY = module.index(
    "history",
    columns=[("vin", "TEXT"), ("seq", "INTEGER"), ("height", "INTEGER"), ("time", "INTEGER"), ("type", "TEXT"),
             ("entry", "BLOB")],
    key=["vin", "seq"],
)
BY_HOLDER = module.index("by_holder", columns=[("holder", "TEXT"), ("vin", "TEXT"), ("since", "INTEGER")],
                         key=["holder", "vin"])
# Who held each title from which height (recall notifications name the holder at a point in time).
HOLDERS = module.index("holders", columns=[("vin", "TEXT"), ("since", "INTEGER"), ("holder", "TEXT")],
                       key=["vin", "since"])
BIRTHS = module.index("births", columns=[("vin", "TEXT"), ("manufacturer", "TEXT"), ("build_date", "TEXT"),
                                         ("height", "INTEGER")], key=["vin"], lookups=[["manufacturer", "build_date"]])


@runtime_checkable
class Organisations(Protocol):
    """What vehicles needs to know about organisations: their roles (None if not active)."""

    def org_roles(self, state: StateReader, org: str) -> frozenset[str] | None: ...


@runtime_checkable
class TitleWatchers(Protocol):
    """A module that must know, in the same transaction, that a holding ended (insurance: a policy
    ends with its holder's holding). Optional: a chain without one moves titles all the same."""

    def title_passed(self, state: Overlay, ctx: Context, vin: str, holder: str, since: int) -> None: ...
