"""The energy module's declaration: its chain parameters, its index tables, and what it needs from
payments (holding and moving money), vehicles (a V2G charger's vehicle) and governance."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.module import Context, Module, SignerInfo
from ...core.state import Overlay, StateReader

module = Module(
    "energy",
    "Peer-to-peer energy trading: grid zones with capacities and imbalance prices, meters with device keys, "
    "bids and asks per interval, one uniform-price auction at gate closure, settlement against signed readings.",
)

DAY_MS = 86_400_000

ORDER_HORIZON_MS = module.param(
    "energy_order_horizon_ms", 7 * DAY_MS, min=60_000, max=90 * DAY_MS,
    doc="How far after the block time an interval may start for orders to be placed on it (ms).",
)
BOOK_MAX_ORDERS = module.param(
    "energy_book_max_orders", 200_000, min=10, max=1_000_000,
    doc="Most orders one interval of one zone takes (clearing and settlement read them all in one transaction).",
)

TERMS_NOTICE_MS = module.param(
    "energy_terms_notice_ms", 3_600_000, min=0, max=7 * DAY_MS,
    doc="How long before an interval's gate closes a grid operator must have set the terms that apply to it "
        "(participants have that long to cancel orders placed under the old terms).",
)

ZONE_LIST = module.index("zones", columns=[("zone", "TEXT"), ("operator", "TEXT"), ("currency", "TEXT")], key=["zone"])
METER_LIST = module.index("meters", columns=[("meter", "TEXT"), ("zone", "TEXT"), ("operator", "TEXT"),
                                             ("owner", "TEXT"), ("kind", "TEXT"), ("vin", "TEXT")],
                          key=["meter"], lookups=[["owner", "meter"], ["operator", "meter"], ["zone", "meter"]])
ORDER_LIST = module.index("orders", columns=[("zone", "TEXT"), ("start", "INTEGER"), ("seq", "INTEGER"),
                                             ("owner", "TEXT"), ("meter", "TEXT"), ("side", "TEXT"),
                                             ("price", "INTEGER"), ("wh", "INTEGER"), ("height", "INTEGER")],
                          key=["zone", "start", "seq"], lookups=[["owner", "start", "seq"], ["meter", "start"]])
POSITION_LIST = module.index("positions", columns=[("meter", "TEXT"), ("start", "INTEGER"), ("zone", "TEXT"),
                                                   ("owner", "TEXT"), ("bought_wh", "INTEGER"), ("sold_wh", "INTEGER"),
                                                   ("net", "INTEGER"), ("height", "INTEGER")],
                             key=["meter", "start"], lookups=[["owner", "start"], ["zone", "start"]])


@runtime_checkable
class Payments(Protocol):
    """What energy needs from payments: money held for bids, and moved at settlement."""

    def balance(self, state: StateReader, owner: str, currency: str) -> int: ...

    def supply(self, state: StateReader, currency: str) -> int | None: ...

    def pay(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int, memo: str) -> None: ...

    def hold(self, state: Overlay, ctx: Context, currency: str, owner: str, amount: int, module: str) -> None: ...

    def release(self, state: Overlay, ctx: Context, currency: str, module: str, to: str, amount: int) -> None: ...

    def move(self, state: Overlay, ctx: Context, currency: str, payer: str, to: str, amount: int) -> None: ...


@runtime_checkable
class Vehicles(Protocol):
    """What energy needs from vehicles: that a V2G charger's vehicle is on the ledger."""

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]: ...


@runtime_checkable
class Organisations(Protocol):
    """What energy needs from governance: an organisation's roles (None unless it is active), and
    whose member key a key is."""

    def org_roles(self, state: StateReader, org: str) -> frozenset[str] | None: ...

    def signer(self, state: StateReader, did: str) -> SignerInfo | None: ...
