"""The consent module's declaration: its chain parameter, its index table, and the Protocols it
needs (satisfied by the vehicles door and governance's directory)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.module import Module
from ...core.state import StateReader
from ..vehicles.doors import Title

module = Module(
    "consent",
    "Holders' consent on the ledger: which organisation may read which categories of a vehicle's data, "
    "for what purpose and until when; every grant and revocation on record.",
)

DAY_MS = 24 * 3_600_000

MAX_CONSENT_MS = module.param(
    "max_consent_ms", 365 * DAY_MS, min=3_600_000, max=10 * 366 * DAY_MS,
    doc="Longest a consent grant may run: its `until` (block time, ms) is at most this far after the block "
        "that records it. A holder renews a grant by granting again.",
)

# Grants by vehicle and by organisation (the state holds each grant; this lists them).
GRANTS = module.index("grants", columns=[("id", "INTEGER"), ("vin", "TEXT"), ("org", "TEXT")], key=["id"],
                      lookups=[["vin", "id"], ["org", "id"]])


@runtime_checkable
class Titles(Protocol):
    """What consent needs from vehicles: who holds a title, since when."""

    def title(self, state: StateReader, vin: str) -> Title | None: ...

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]: ...


@runtime_checkable
class Organisations(Protocol):
    """What consent needs from governance: an organisation's roles (None unless it is active)."""

    def org_roles(self, state: StateReader, org: str) -> frozenset[str] | None: ...
