"""The privacy module's declaration: its index tables and the Protocol it needs (the vehicles
door, to check a VIN a commitment names)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.module import Module
from ...core.state import StateReader

module = Module(
    "privacy",
    "Personal data off the ledger: an organisation records that it holds a value about a person (a salted "
    "commitment under an opaque subject id, never the value) and, when it erases that person, a tombstone.",
)

#: Most fields one organisation may hold commitments for about one subject.
MAX_FIELDS = 64

# Every commitment (each version), by subject and by its digest (the state holds each record).
COMMITS = module.index("commits", columns=[("subject", "TEXT"), ("org", "TEXT"), ("field", "TEXT"),
                                           ("version", "INTEGER"), ("commitment", "TEXT")],
                       key=["subject", "org", "field", "version"], lookups=[["commitment"]])
# Tombstones by subject (at most one per organisation).
TOMBSTONES = module.index("tombstones", columns=[("subject", "TEXT"), ("org", "TEXT")], key=["subject", "org"])


@runtime_checkable
class Vehicles(Protocol):
    """What privacy needs from vehicles: that a VIN a commitment names is registered."""

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]: ...
