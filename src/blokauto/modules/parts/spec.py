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
# What consumed each lot: a batch (its id), or a lot made from it ("lot/<id>").
LOT_USES = module.index("lot_uses", columns=[("lot", "TEXT"), ("batch", "TEXT"), ("mass_g", "INTEGER"),
                                             ("height", "INTEGER")], key=["lot", "batch"])
# Every handoff of a part, batch or lot, in order: made, shipped, received (where, when, and for a
# shipment how long the sender held it). ``item`` is a part or batch id, or "lot/<id>".
HANDOFFS = module.index(
    "handoffs", columns=[("item", "TEXT"), ("seq", "INTEGER"), ("kind", "TEXT"), ("party", "TEXT"), ("receiver", "TEXT"),
                         ("location", "TEXT"), ("time", "INTEGER"), ("held_ms", "INTEGER"), ("height", "INTEGER")],
    key=["item", "seq"])
# Each completed shipment (a leg): from shipment to receipt. ``product`` is the part number, or for
# a lot its material; ``supplier`` the part number's supplier or the lot's producer.
LEGS = module.index(
    "legs", columns=[("item", "TEXT"), ("seq", "INTEGER"), ("kind", "TEXT"), ("product", "TEXT"), ("supplier", "TEXT"),
                     ("sender", "TEXT"), ("receiver", "TEXT"), ("origin", "TEXT"), ("destination", "TEXT"),
                     ("shipped", "INTEGER"), ("received", "INTEGER"), ("duration_ms", "INTEGER"), ("height", "INTEGER")],
    key=["item", "seq"],
    lookups=[["product", "duration_ms"], ["supplier", "duration_ms"], ["duration_ms"]])
# What is in transit right now (a row from shipment until receipt).
TRANSIT = module.index(
    "transit", columns=[("item", "TEXT"), ("kind", "TEXT"), ("product", "TEXT"), ("supplier", "TEXT"),
                        ("sender", "TEXT"), ("receiver", "TEXT"), ("origin", "TEXT"), ("since", "INTEGER"),
                        ("qty", "INTEGER")],
    key=["item"], lookups=[["product", "since"], ["supplier", "since"], ["since"]])

DAY_MS = 86_400_000
ATTESTATION_REQUIRED = module.param(
    "attestation_required", 0, min=0, max=1, keyed="material",
    doc="1: a lot of this material (as registered, made or recovered) is consumed (into a batch, a merge or a "
        "transformation) only with a conformant, unexpired attestation by an auditor; 0: no attestation needed. "
        "Set per material: `attestation_required:cobalt`.")
ATTESTATION_MAX_MS = module.param(
    "attestation_max_ms", 5 * 366 * DAY_MS, min=DAY_MS, max=10 * 366 * DAY_MS,
    doc="Longest an attestation of a lot may stay valid: its `valid_until` is at most this far after its block.")
HANDOFF_BACKDATE_MS = module.param(
    "handoff_backdate_ms", 7 * DAY_MS, min=0, max=90 * DAY_MS,
    doc="How long before its block a shipment or receipt may say it happened (`at`), for a handoff recorded late.")


@runtime_checkable
class Vehicles(Protocol):
    """What parts needs from the vehicles module."""

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]:
        """(manufacturer, status) of ``vin``; raises unknown_vehicle or vehicle_scrapped unless parts may be
        fitted to or taken from it."""

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None: ...


@runtime_checkable
class Organisations(Protocol):
    """What parts needs from governance: whether a receiver ``org:<id>`` exists."""

    def organisation_active(self, state: StateReader, org: str) -> bool: ...


@runtime_checkable
class RecallGate(Protocol):
    """Whether a part may be installed: the open recall covering it, if any (and not remedied)."""

    def blocking_campaign(self, state: StateReader, need: Callable[[type], Any], part_number: str, batch: str,
                          serial: str, vin: str) -> tuple[int, str] | None: ...
