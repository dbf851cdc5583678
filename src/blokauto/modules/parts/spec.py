"""The parts module's declaration: index tables, and the Protocols it needs from other modules."""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader

module = Module(
    "parts",
    "Digital twins of serialized parts and batches, custody handovers, condition logs, raw-material lots "
    "with due-diligence attestations, assemblies, and installation into vehicles.",
)

PART_HISTORY = module.index(
    "history", columns=[("part", "TEXT"), ("seq", "INTEGER"), ("height", "INTEGER"), ("time", "INTEGER"),
                        ("type", "TEXT"), ("entry", "BLOB")], key=["part", "seq"])
# Every installation, with the vehicle at the root of any assembly, from the height it was
# installed until the height it was removed (0 while still installed): recalls resolve against it
# at any point in time.
INSTALLATIONS = module.index(
    "installations",
    columns=[("ref", "TEXT"), ("vin", "TEXT"), ("installed", "INTEGER"), ("part_number", "TEXT"),
             ("batch", "TEXT"), ("serial", "TEXT"), ("qty", "INTEGER"), ("via", "TEXT"), ("removed", "INTEGER")],
    key=["ref", "vin", "installed"],
    # covering: a recall's resolution reads only the index, never the rows
    lookups=[["part_number", "batch", "vin", "installed", "removed"], ["part_number", "serial", "vin", "installed", "removed"],
             ["vin"]])
LOT_USES = module.index("lot_uses", columns=[("lot", "TEXT"), ("batch", "TEXT"), ("mass_g", "INTEGER"),
                                             ("height", "INTEGER")], key=["lot", "batch"])


@runtime_checkable
class Vehicles(Protocol):
    """What parts needs from the vehicles module."""

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]:
        """(manufacturer, status) of ``vin``; raises unknown_vehicle or vehicle_scrapped unless parts may be
        fitted to or taken from it."""

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None: ...


@runtime_checkable
class RecallGate(Protocol):
    """Whether a part may be installed: the open recall covering it, if any (and not remedied)."""

    def blocking_campaign(self, state: StateReader, need: Callable[[type], Any], part_number: str, batch: str,
                          serial: str, vin: str) -> tuple[int, str] | None: ...
