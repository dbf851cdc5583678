"""Parts provenance messages and events."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Country, Date, Ident, Limits, MaterialUse, Text

Ref = Annotated[str, msgspec.Meta(min_length=3, max_length=130, description="<part_number>:<serial or batch>")]


class RegisterPartType(Message, tag="parts.register_type"):
    """A supplier (or an automaker making its own parts) registers a part number it owns."""

    part_number: Ident
    name: Text
    category: Text
    serialized: bool
    assembly: bool = False
    limits: Limits = Limits()


class RegisterLot(Message, tag="parts.register_lot"):
    """A raw-material lot (e.g. cobalt) with its origin and mass in grams."""

    lot: Ident
    material: Ident
    mass_g: Annotated[int, msgspec.Meta(ge=1, le=10**13)]
    mine: Text
    country: Country


class AttestLot(Message, tag="parts.attest_lot"):
    """An auditor's due-diligence attestation of a material lot."""

    lot: Ident
    standard: Text
    result: Literal["conformant", "non_conformant"]
    report: Text


class MintParts(Message, tag="parts.mint"):
    """Serialized parts (digital twins), minted by the supplier that owns the part number."""

    part_number: Ident
    serials: Annotated[list[Ident], msgspec.Meta(min_length=1, max_length=1000)]
    produced: Date
    plant: Text
    batch: Ident | None = None


class MintBatch(Message, tag="parts.mint_batch"):
    """A production batch and the raw-material lots it consumed."""

    part_number: Ident
    batch: Ident
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10**9)]
    produced: Date
    plant: Text
    materials: Annotated[list[MaterialUse], msgspec.Meta(max_length=50)] = []


class Assemble(Message, tag="parts.assemble"):
    """Put components into an assembly (cells into a module, modules into a pack)."""

    assembly: Ref
    components: Annotated[list[Ref], msgspec.Meta(min_length=1, max_length=1000)]


class Ship(Message, tag="parts.ship"):
    """The custodian hands parts or whole batches over; they are in transit until received."""

    items: Annotated[list[Ref], msgspec.Meta(min_length=1, max_length=1000)]
    to: str


class Receive(Message, tag="parts.receive"):
    """The receiver takes custody of what was shipped to it."""

    items: Annotated[list[Ref], msgspec.Meta(min_length=1, max_length=1000)]


class RegisterLogger(Message, tag="parts.register_logger"):
    """An organisation registers a condition-logger device key."""

    logger: str


class ConditionReading(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    time: Uint  # when the logger measured, ms
    temp_dc: int = 0  # tenths of a degree Celsius
    shock_mg: Uint = 0
    humidity_pct: Uint = 0


class LogConditions(Message, tag="parts.log_conditions"):
    """Readings signed by a logger of the part's custodian (or of the receiver while in transit)."""

    part: Ref
    readings: Annotated[list[ConditionReading], msgspec.Meta(min_length=1, max_length=500)]


class InstallItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    part: str = ""  # a serialized part id, or
    batch: str = ""  # a batch id with a quantity
    qty: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    position: Annotated[str, msgspec.Meta(max_length=60)] = ""


class Install(Message, tag="parts.install"):
    """An automaker at build or a workshop at service installs parts into a vehicle."""

    vin: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    items: Annotated[list[InstallItem], msgspec.Meta(min_length=1, max_length=100)]


class Remove(Message, tag="parts.remove"):
    """A workshop removes parts (or a recycler harvests them at end of life); they re-enter its
    custody with their history."""

    vin: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    items: Annotated[list[InstallItem], msgspec.Meta(min_length=1, max_length=100)]


class PartMinted(Event, tag="parts.minted"):
    part_number: str
    count: Uint
    batch: str = ""


class CustodyChanged(Event, tag="parts.custody_changed"):
    item: str
    custodian: str
    status: str


class ConditionBreach(Event, tag="parts.condition_breach"):
    part: str
    reading: Uint
    limit: str


class PartInstalled(Event, tag="parts.installed"):
    vin: str
    ref: str
    qty: Uint


class PartRemoved(Event, tag="parts.removed"):
    vin: str
    ref: str
    qty: Uint
