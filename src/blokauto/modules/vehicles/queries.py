"""Vehicle queries: the record with its title and status, the full history, vehicles of a holder."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.encoding import to_builtins
from ...core.errors import NotFound
from ...core.access import IDENTIFIED, Own, VehicleData
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .spec import BY_HOLDER, HISTORY, module
from .state import VEHICLES, WMIS
from .vin import decode

#: Most history entries one page of ``history`` returns.
HISTORY_PAGE_MAX = 1000
#: Most vehicles one page of ``vehicles_of`` returns.
HOLDER_PAGE_MAX = 1000


class VinQuery(msgspec.Struct):
    vin: KeyPart


class HistoryQuery(Page, kw_only=True):
    vin: KeyPart


class HolderQuery(Page, kw_only=True):
    holder: KeyPart


class WmiQuery(msgspec.Struct):
    wmi: KeyPart


@module.query("vehicle", VinQuery, read=VehicleData("vin", "history"), proof_keys=lambda q: [VEHICLES.key(q.vin)])
def vehicle(view: QueryView, q: VinQuery) -> dict[str, Any]:
    """The vehicle record: title holder, owner count, liens, brands, odometer status, history head."""
    v = VEHICLES.get(view, q.vin)
    if v is None:
        raise NotFound(what="Vehicle", key=q.vin)
    return {**to_builtins(v), "decoded": decode(v.vin)}


def _committed_history(view: Any, parent: tuple) -> tuple[int, str] | None:
    v = VEHICLES.get(view, parent[0])
    return None if v is None else (v.history.count, v.history.head)


module.history_chain(HISTORY, parent=("vin",), seq="seq", entry="entry", committed=_committed_history)


@module.query("history", HistoryQuery, read=VehicleData("vin", "history"))
def history(view: QueryView, q: HistoryQuery) -> dict[str, Any]:
    """The vehicle's history, oldest first, paginated; each entry says who recorded it, when and in which block."""
    v = VEHICLES.get(view, q.vin)
    if v is None:
        raise NotFound(what="Vehicle", key=q.vin)
    rows = view.rows(HISTORY, {"vin": q.vin}, order=("seq",), limit=q.size(HISTORY_PAGE_MAX), offset=q.offset)
    return {"vin": q.vin, "total": v.history.count, "head": v.history.head,
            "entries": [msgspec.json.decode(r["entry"]) for r in rows]}


@module.query("vehicles_of", HolderQuery, read=Own("holder"))
def vehicles_of(view: QueryView, q: HolderQuery) -> dict[str, Any]:
    """VINs whose title a key (did:key) or an organisation (org:<id>) holds."""
    rows = view.rows(BY_HOLDER, {"holder": q.holder}, order=("vin",), limit=q.size(HOLDER_PAGE_MAX),
                     offset=q.offset)
    return {"holder": q.holder, "total": view.count(BY_HOLDER, {"holder": q.holder}),
            "vehicles": [{"vin": r["vin"], "since": r["since"]} for r in rows]}


@module.query("wmi", WmiQuery, read=IDENTIFIED, proof_keys=lambda q: [WMIS.key(q.wmi)])
def wmi(view: QueryView, q: WmiQuery) -> dict[str, Any]:
    """Which organisation a manufacturer code is assigned to, and what vininfo knows of it."""
    org = WMIS.get(view, q.wmi)
    return {"wmi": q.wmi, "org": org, **decode(q.wmi)}


@module.query("devices", VinQuery, read=VehicleData("vin", "history"), proof_keys=lambda q: [VEHICLES.key(q.vin)])
def devices(view: QueryView, q: VinQuery) -> dict[str, Any]:
    """The vehicle's current device keys, and the ones rotated out or revoked with the block from which
    nothing they sign counts."""
    v = VEHICLES.get(view, q.vin)
    if v is None:
        raise NotFound(what="Vehicle", key=q.vin)
    gone = [] if v.retired_keys is msgspec.UNSET else to_builtins(v.retired_keys)
    return {"vin": v.vin, "current": list(v.device_keys), "retired": gone}


class DeviceStatusQuery(msgspec.Struct):
    vin: KeyPart
    key: KeyPart


@module.query("device_status", DeviceStatusQuery, read=Own("key"))
def device_status(view: QueryView, q: DeviceStatusQuery) -> dict[str, Any]:
    """What a key is to a vehicle, asked by that key itself (a device key that was revoked reads the
    vehicle's data no more, but learns why its signatures stopped counting): ``current``, ``retired``
    (with the block and reason) or ``none``."""
    v = VEHICLES.get(view, q.vin)
    if v is None:
        raise NotFound(what="Vehicle", key=q.vin)
    if q.key in v.device_keys:
        return {"vin": v.vin, "key": q.key, "status": "current"}
    gone = next((k for k in ([] if v.retired_keys is msgspec.UNSET else v.retired_keys) if k.did == q.key), None)
    if gone is not None:
        return {"vin": v.vin, "key": q.key, "status": "retired", "height": gone.height, "reason": gone.reason}
    return {"vin": v.vin, "key": q.key, "status": "none"}


module.reads(IDENTIFIED, "vehicles.wmi_assigned")
module.reads(VehicleData("vin", "history"), "vehicles.registered", "vehicles.title_transferred",
             "vehicles.history_appended", "vehicles.odometer_flagged", "vehicles.branded", "vehicles.deregistered", "vehicles.device_key_changed")
