"""The recalls module's declaration and the Protocols it needs (satisfied by the parts and vehicles doors)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader
from ..parts.doors import CarriedPart
from ..vehicles.doors import BirthFacts

module = Module(
    "recalls",
    "Recall campaigns with NHTSA-like fields and a scope over parts, batches, serial ranges, build dates and "
    "VIN ranges; affected vehicles resolved from what they carried; remedies attested per vehicle.",
)
# Remedied vehicles per campaign (the state holds each remedy; this lists a campaign's at once).
REMEDIED = module.index("remedied", columns=[("campaign", "INTEGER"), ("vin", "TEXT"), ("height", "INTEGER")],
                        key=["campaign", "vin"])


@runtime_checkable
class PartsOnBoard(Protocol):
    """What recalls needs from parts."""

    tables: dict[str, Any]

    def installed_at(self, state: StateReader, vin: str, height: int) -> list[CarriedPart]: ...

    def part_installed(self, state: StateReader, part_number: str) -> int: ...

    def batch_installed(self, state: StateReader, batch_id: str) -> int: ...


@runtime_checkable
class VehicleFacts(Protocol):
    """What recalls needs from vehicles."""

    tables: dict[str, Any]

    def birth_facts(self, state: StateReader, vin: str) -> BirthFacts | None: ...

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None: ...


@runtime_checkable
class SoftwareInventory(Protocol):
    """What recalls needs from software: what a vehicle's ECUs run, as its manifests put it on the ledger."""

    def inventory(self, state: StateReader, vin: str) -> list[Any]: ...
