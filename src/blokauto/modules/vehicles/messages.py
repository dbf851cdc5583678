"""Vehicle lifecycle messages and events."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Birth, Brand, Country, Currency, Date, Text, Unit, Usage

Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]
Reading = Annotated[int, msgspec.Meta(ge=0, le=100_000_000, description="odometer value in the given unit")]
ImpactArea = Literal["front", "rear", "left", "right", "roof", "underbody", "front_left", "front_right",
                     "rear_left", "rear_right"]
Items = Annotated[list[Text], msgspec.Meta(max_length=50)]


class PartRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    part_number: Text
    serial: Text = ""


class AssignWmi(Message, tag="vehicles.assign_wmi"):
    """A regulator assigns a World Manufacturer Identifier to a manufacturer organisation."""

    wmi: str
    org: str


class RegisterVehicle(Message, Birth, tag="vehicles.register", kw_only=True):
    """A manufacturer records a vehicle's birth under one of its own WMIs; it holds the title.

    The birth record's fields (``Birth``: make, model, ..., battery_wh) are the message's own, at
    its top level, next to these."""

    vin: Vin
    country: Country
    device_keys: Annotated[list[str], msgspec.Meta(max_length=8)] = []
    odometer_limit_km: Reading = 999_999


class TransferTitle(Message, tag="vehicles.transfer_title"):
    """The title passes to ``to`` (a did:key, or org:<id>). The current holder and the new one
    sign; every lender with an open lien co-signs too. A stolen vehicle cannot be sold."""

    vin: Vin
    to: str
    usage: Usage | None = None


class RecordLien(Message, tag="vehicles.record_lien"):
    """A lender records a lien, with the title holder's co-signature."""

    vin: Vin
    amount: Annotated[int, msgspec.Meta(ge=1, le=10**15)]
    currency: Currency


class ReleaseLien(Message, tag="vehicles.release_lien"):
    """The lender that holds a lien releases it."""

    vin: Vin
    lien: Uint


class ChangeRegistration(Message, tag="vehicles.change_registration"):
    """A registration authority records a new usage type or registration country (import)."""

    vin: Vin
    usage: Usage | None = None
    country: Country | None = None


class BrandTitle(Message, tag="vehicles.brand_title"):
    """Apply a title brand; who may apply which brand is fixed per role."""

    vin: Vin
    brand: Brand
    reason: Text = ""


class RecordOdometer(Message, tag="vehicles.record_odometer"):
    """An odometer reading by an authorised organisation or signed by the vehicle's own device key."""

    vin: Vin
    value: Reading
    unit: Unit = "km"


class ReplaceCluster(Message, tag="vehicles.replace_cluster"):
    """A workshop replaces the instrument cluster: the old cluster's last value and the new one's
    first value, so later readings are judged with the offset."""

    vin: Vin
    old_value: Reading
    new_value: Reading
    unit: Unit = "km"


class RecordService(Message, tag="vehicles.record_service"):
    """A workshop's service record, with the odometer and parts fitted (by serial when known)."""

    vin: Vin
    odometer: Reading
    items: Items
    unit: Unit = "km"
    parts: Annotated[list[PartRef], msgspec.Meta(max_length=50)] = []


class RecordInspection(Message, tag="vehicles.record_inspection"):
    """A periodic inspection by an inspection station."""

    vin: Vin
    odometer: Reading
    result: Literal["pass", "fail"]
    unit: Unit = "km"
    defects: Items = []


class RecordAccident(Message, tag="vehicles.record_accident"):
    """An accident reported by an insurer, the police or a workshop. A total loss applies the
    salvage brand (only an insurer or regulator may declare one)."""

    vin: Vin
    date: Date
    severity: Literal["minor", "moderate", "severe"]
    impact_areas: Annotated[list[ImpactArea], msgspec.Meta(min_length=1, max_length=10)]
    airbags_deployed: bool = False
    structural_damage: bool = False
    total_loss: bool = False
    reference: Text = ""


class RecordRepair(Message, tag="vehicles.record_repair"):
    """A workshop repairs damage (optionally of a recorded accident, by its history sequence)."""

    vin: Vin
    odometer: Reading
    items: Items
    accident: Uint = 0
    unit: Unit = "km"
    parts: Annotated[list[PartRef], msgspec.Meta(max_length=50)] = []


class Deregister(Message, tag="vehicles.deregister"):
    """A recycler ends the vehicle's life with a certificate of destruction."""

    vin: Vin
    certificate: Text
    harvested_parts: Annotated[list[PartRef], msgspec.Meta(max_length=500)] = []


DeviceKey = Annotated[str, msgspec.Meta(min_length=10, max_length=120, pattern="^did:key:z[1-9A-HJ-NP-Za-km-z]+$",
                                         description="an Ed25519 did:key")]
RetireReason = Literal["lost", "compromised", "ecu_replaced"]


class AddDeviceKey(Message, tag="vehicles.add_device_key"):
    """A new ECU's key joins the vehicle's device keys: the title holder and the new key sign (proof of
    possession); anyone may send it (the maker fitting the ECU, say)."""

    vin: Vin
    key: DeviceKey


class RotateDeviceKey(Message, tag="vehicles.rotate_device_key"):
    """A device key is replaced by a new one: the old key, the new key (proof of possession) and the
    holder or the maker sign. From this block on only the new key counts."""

    vin: Vin
    old: DeviceKey
    new: DeviceKey


class RevokeDeviceKey(Message, tag="vehicles.revoke_device_key"):
    """The holder or the maker takes a device key out of service (a lost or compromised ECU): from
    this block on nothing it signs counts for the vehicle (readings, telemetry, payments)."""

    vin: Vin
    key: DeviceKey
    reason: RetireReason


class WmiAssigned(Event, tag="vehicles.wmi_assigned"):
    wmi: str
    org: str


class VehicleRegistered(Event, tag="vehicles.registered"):
    vin: str
    manufacturer: str


class TitleTransferred(Event, tag="vehicles.title_transferred"):
    vin: str
    holder: str


class HistoryAppended(Event, tag="vehicles.history_appended"):
    vin: str
    seq: Uint
    entry: str  # the entry's type
    flag: str = ""


class OdometerFlagged(Event, tag="vehicles.odometer_flagged"):
    vin: str
    flag: str
    value_km: Uint
    max_km: Uint


class VehicleBranded(Event, tag="vehicles.branded"):
    vin: str
    brand: str


class VehicleDeregistered(Event, tag="vehicles.deregistered"):
    vin: str
    certificate: str


class DeviceKeyChanged(Event, tag="vehicles.device_key_changed"):
    vin: str
    change: str  # added, rotated, revoked
    key: str  # the key added, rotated out or revoked
    new: str = ""  # the key rotated in
