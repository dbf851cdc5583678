"""The payments module's declaration: its chain parameters, its index tables, and the Protocols it
needs (satisfied by the vehicles door, vehicles' relations and governance's directory)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader
from ..vehicles.doors import Lien, Title

module = Module(
    "payments",
    "Accounts in issuer-backed units, vehicles' wallets under their holders' spending limits, merchants' "
    "tariffs, payment channels with off-ledger vouchers, journey fares split between operators, and escrow "
    "that pays for a vehicle in the transaction that moves its title.",
)

DAY_MS = 86_400_000

CHANNEL_CHALLENGE_MS = module.param(
    "channel_challenge_ms", DAY_MS, min=60_000, max=30 * DAY_MS,
    doc="How long after a payer starts closing a payment channel the merchant may still present a higher "
        "voucher (block time, ms); fixed for each channel when it opens.",
)
MAX_ESCROW_MS = module.param(
    "max_escrow_ms", 30 * DAY_MS, min=60_000, max=365 * DAY_MS,
    doc="Latest deadline a sale escrow may have, after the block that locks it (ms).",
)

CURRENCY_LIST = module.index("currencies", columns=[("code", "TEXT"), ("issuer", "TEXT")], key=["code"])
TARIFF_LIST = module.index("tariffs", columns=[("merchant", "TEXT"), ("tariff", "TEXT"), ("category", "TEXT"),
                                               ("zone", "TEXT")], key=["merchant", "tariff"])
CHANNEL_LIST = module.index("channels", columns=[("id", "INTEGER"), ("merchant", "TEXT"), ("payer", "TEXT"),
                                                 ("funder", "TEXT"), ("status", "TEXT")], key=["id"],
                            lookups=[["merchant", "id"], ["funder", "id"]])


@runtime_checkable
class Vehicles(Protocol):
    """What payments needs from vehicles: who holds a title, its history, and a paid sale."""

    def title(self, state: StateReader, vin: str) -> Title | None: ...

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]: ...

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None: ...

    def transfer_paid(self, state: Overlay, ctx: Context, vin: str, to: str) -> list[Lien]: ...

    def refuse_retired_key(self, state: StateReader, vin: str, did: str) -> None: ...


@runtime_checkable
class Organisations(Protocol):
    """What payments needs from governance: an organisation's roles (None unless it is active)."""

    def org_roles(self, state: StateReader, org: str) -> frozenset[str] | None: ...
