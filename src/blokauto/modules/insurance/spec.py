"""The insurance module's declaration: parameters, index tables, and what it needs from vehicles,
telemetry, payments, consent and governance."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader

module = Module(
    "insurance",
    "Usage-based insurance: products priced by declared integer formulas over verified trip summaries, "
    "policies both sides sign, premium statements computed on the ledger, and claims opened by the "
    "vehicle's own crash report.",
)

DAY_MS = 86_400_000

MILEAGE_SLACK_KM = module.param(
    "claim_mileage_slack_km", 50, min=0, max=10_000,
    doc="How far below the highest odometer reading on record a claim's odometer may be before the claim is "
        "flagged mileage_inconsistent.",
)
MAX_POLICY_START_MS = module.param(
    "policy_max_start_ahead_ms", 90 * DAY_MS, min=0, max=366 * DAY_MS,
    doc="How far after the block time a new policy may start.",
)

PRODUCT_LIST = module.index("products", columns=[("insurer", "TEXT"), ("product", "TEXT"), ("currency", "TEXT")],
                            key=["insurer", "product"])
POLICY_LIST = module.index("policies", columns=[("id", "INTEGER"), ("insurer", "TEXT"), ("vin", "TEXT"),
                                                ("holder", "TEXT"), ("product", "TEXT")], key=["id"],
                           lookups=[["insurer", "id"], ["vin", "id"], ["holder", "id"]])
CLAIM_LIST = module.index("claims", columns=[("id", "INTEGER"), ("policy", "INTEGER"), ("insurer", "TEXT"),
                                             ("vin", "TEXT"), ("status", "TEXT")], key=["id"],
                          lookups=[["insurer", "status", "id"], ["policy", "id"]])


@runtime_checkable
class Organisations(Protocol):
    def org_roles(self, state: StateReader, org: str) -> frozenset[str] | None: ...


@runtime_checkable
class Vehicles(Protocol):
    """What insurance needs from vehicles: the vehicle, its title holder, its odometer record."""

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]: ...

    def title(self, state: StateReader, vin: str) -> Any: ...

    def odometer_km(self, state: StateReader, vin: str) -> int: ...


@runtime_checkable
class Telemetry(Protocol):
    """What insurance needs from telemetry: trip totals by batch, and a crash the vehicle reported."""

    def window(self, state: StateReader, vin: str, start: int, end: int) -> Any: ...

    def crash(self, state: StateReader, vin: str, seq: int) -> Any: ...

    def last_before(self, state: StateReader, vin: str, t: int) -> int: ...

    def through(self, state: StateReader, vin: str, seq: int) -> Any: ...


@runtime_checkable
class Payments(Protocol):
    """What insurance needs from payments: moving a premium or a payout between accounts."""

    def pay(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int, memo: str) -> None: ...


@runtime_checkable
class Consent(Protocol):
    """What insurance needs from consent: whether the policy's holding let the insurer use driving data
    through a period (even if that holding has ended since)."""

    def held_through(self, state: StateReader, vin: str, org: str, category: str, holder: str, since: int,
                     from_ms: int, until_ms: int) -> int | None: ...
