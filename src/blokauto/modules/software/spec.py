"""The software module's declaration: parameters, index tables, and what it needs from vehicles
and from whoever closes recalls on a vehicle's install (recalls)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ...core.module import Context, Module
from ...core.state import Overlay, StateReader

module = Module(
    "software",
    "Uptane over-the-air updates anchored on the ledger: each maker's image repository and director "
    "roots (TUF metadata, python-tuf), its releases, and each vehicle's signed install manifests.",
)

MANIFEST_SKEW_MS = module.param(
    "manifest_future_skew_ms", 5 * 60_000, min=0, max=86_400_000,
    doc="How far after the block time a vehicle's install manifest may be dated (vehicle clocks drift).",
)

#: Every image fitted to or installed on a vehicle's ECU, numbered per vehicle (``n``: two installs on
#: one ECU in one block keep their own rows).
INSTALLS = module.index("installs", columns=[("vin", "TEXT"), ("n", "INTEGER"), ("ecu", "TEXT"), ("height", "INTEGER"),
                                             ("path", "TEXT"), ("image", "TEXT"), ("counter", "INTEGER"),
                                             ("hardware_id", "TEXT"), ("maker", "TEXT")],
                        key=["vin", "n"], lookups=[["maker", "image"], ["vin", "ecu"]])


@runtime_checkable
class Vehicles(Protocol):
    """What software needs from vehicles: the maker, the device keys, the history."""

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]: ...

    def require_device(self, state: StateReader, vin: str, did: str) -> None: ...

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None: ...
