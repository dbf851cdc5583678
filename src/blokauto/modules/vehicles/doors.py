"""The vehicles module's door: what other modules and the outer layers may ask of vehicles.

Other modules never touch vehicle state: parts and recalls declare what they need (``Vehicles``,
``VehicleFacts`` in their ``spec``) and the registry hands them this module's ``VehicleDoor``;
the history report reads a vehicle's evidence through it (``VehicleDoor.evidence``).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import msgspec

from ...core.access import ORG_PREFIX
from ...core.module import Context, IndexTable, QueryView
from ...core.state import Overlay, StateReader
from .handlers import _vehicle, append, refuse_retired_key, transfer_title
from .messages import TransferTitle
from .spec import BIRTHS, BY_HOLDER, HISTORY, HOLDERS, TitleWatchers  # noqa: F401  (TitleWatchers: part of the door)
from . import errors
from .state import VEHICLES, Lien


class BirthFacts(msgspec.Struct, frozen=True):
    """What a recall's vehicle criteria judge: who made the vehicle, when, and the height at
    which it entered the ledger."""

    manufacturer: str
    build_date: str
    registered: int


class Title(msgspec.Struct, frozen=True):
    """Who holds a vehicle's title (a did:key or org:<id>) and since which block time (ms): a
    holding is this pair, so a holder who sells and buys back starts a new one."""

    holder: str
    since: int


class VehicleEvidence(msgspec.Struct, frozen=True):
    """A vehicle's record key (to prove against a checkpoint) and every history entry, oldest
    first, as the canonical bytes the record's running hash commits to."""

    key: bytes
    entries: list[bytes]


@runtime_checkable
class VehicleDoor(Protocol):
    """The vehicles module's door."""

    #: Its index tables other modules may join on (recall resolution): ``births``, ``holders``.
    tables: dict[str, IndexTable]

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]:
        """(manufacturer, status) of ``vin``; refused (unknown_vehicle, vehicle_scrapped) unless it can
        take another module's fact."""
        ...

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None:
        """Another module's fact about a vehicle, appended to its history."""
        ...

    def birth_facts(self, state: StateReader, vin: str) -> BirthFacts | None:
        """The birth facts of a registered vehicle (None if ``vin`` is not registered)."""
        ...

    def title(self, state: StateReader, vin: str) -> Title | None:
        """The title holder of ``vin`` (None if it is not registered)."""
        ...

    def record_key(self, vin: str) -> bytes:
        """The state key of ``vin``'s record."""
        ...

    def evidence(self, view: QueryView, vin: str) -> VehicleEvidence | None:
        """The record's key and the full history of ``vin`` (None if it is not registered); the
        history rows are checked against the record's running hash as they are read."""
        ...

    def require_device(self, state: StateReader, vin: str, did: str) -> None:
        """Refuse unless ``did`` is a current device key of ``vin`` (an active vehicle): a retired key is
        refused naming its revocation (device_key_revoked), another key as not_vehicle_device."""
        ...

    def odometer_km(self, state: StateReader, vin: str) -> int:
        """The highest trusted odometer reading of ``vin`` in km (0 if none or not registered)."""
        ...

    def refuse_retired_key(self, state: StateReader, vin: str, did: str) -> None:
        """Refuse (device_key_revoked, naming the block and reason) if ``did`` was a device key of ``vin``
        that was rotated out or revoked; return otherwise."""
        ...

    def transfer_paid(self, state: Overlay, ctx: Context, vin: str, to: str) -> list[Lien]:
        """A sale paid in this transaction (payments' delivery versus payment): every lien is
        released as paid off, then the title passes to ``to`` under transfer_title's own rules; returns
        the liens released, for the caller to pay each lender its amount in the same transaction."""
        ...


class VehicleRegistry:
    """The implementation of ``VehicleDoor`` wired in the module's definition."""

    tables = {"births": BIRTHS, "holders": HOLDERS}

    def require_vehicle(self, state: StateReader, vin: str, *, allow_scrapped: bool = False) -> tuple[str, str]:
        v = _vehicle(state, vin, writable=not allow_scrapped)
        return v.manufacturer, v.status

    def record_event(self, state: Overlay, ctx: Context, vin: str, kind: str, data: dict[str, Any], *,
                     after_scrapping: bool = False) -> None:
        """``after_scrapping`` allows it on a deregistered vehicle (harvested parts)."""
        v = _vehicle(state, vin, writable=not after_scrapping)
        append(state, ctx, v, kind, data)

    def birth_facts(self, state: StateReader, vin: str) -> BirthFacts | None:
        v = VEHICLES.get(state, vin) if vin.isalnum() else None
        return None if v is None else BirthFacts(v.manufacturer, v.birth.build_date, v.registered)

    def title(self, state: StateReader, vin: str) -> Title | None:
        v = VEHICLES.get(state, vin) if vin.isalnum() else None
        return None if v is None else Title(v.holder, v.holder_since)

    def relation(self, state: StateReader, vin: str, did: str, org: str | None) -> str | None:
        """How a key (of organisation ``org``, if a member key) relates to ``vin`` (``core.access``)."""
        v = VEHICLES.get(state, vin) if vin.isalnum() and len(vin) <= 64 else None
        if v is None or not (did or org):
            return None
        if (did and v.holder == did) or (org is not None and v.holder == ORG_PREFIX + org):
            return "holder"
        if did and did in v.device_keys:
            return "device"
        if org is not None and org == v.manufacturer:
            return "maker"
        if org is not None and any(lien.lender == org for lien in v.liens):
            return "lender"
        return None

    def require_device(self, state: StateReader, vin: str, did: str) -> None:
        v = _vehicle(state, vin)
        if did not in v.device_keys:
            refuse_retired_key(v, did)
            raise errors.NotADeviceOfVehicle(signer=did, vin=vin)

    def refuse_retired_key(self, state: StateReader, vin: str, did: str) -> None:
        v = VEHICLES.get(state, vin) if vin.isalnum() else None
        if v is not None:
            refuse_retired_key(v, did)

    def odometer_km(self, state: StateReader, vin: str) -> int:
        v = VEHICLES.get(state, vin) if vin.isalnum() else None
        return 0 if v is None else v.odometer.max_km

    def holds_any(self, view: QueryView, did: str) -> bool:
        return bool(did) and bool(view.rows(BY_HOLDER, {"holder": did}, limit=1))

    def record_key(self, vin: str) -> bytes:
        return VEHICLES.key(vin)

    def evidence(self, view: QueryView, vin: str) -> VehicleEvidence | None:
        v = VEHICLES.get(view, vin)
        if v is None:
            return None
        rows = view.rows(HISTORY, {"vin": vin}, order=("seq",), limit=v.history.count)
        return VehicleEvidence(VEHICLES.key(vin), [bytes(r["entry"]) for r in rows])

    def transfer_paid(self, state: Overlay, ctx: Context, vin: str, to: str) -> list[Lien]:
        """The caller checked who sells and who pays; a refusal here (unknown, scrapped or stolen
        vehicle, same holder) or in the caller after it leaves nothing written."""
        v = _vehicle(state, vin)
        released = list(v.liens)
        for lien in released:
            v = append(state, ctx, v, "lien_released", {"lien": lien.id, "lender": lien.lender, "paid_off": True},
                       liens=[x for x in v.liens if x.id != lien.id])
        transfer_title(state, ctx, TransferTitle(vin=vin, to=to))
        return released
