"""Parts provenance messages and events."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Country, Date, Ident, Limits, Location, MaterialUse, Text

Ref = Annotated[str, msgspec.Meta(min_length=3, max_length=130, description="<part_number>:<serial or batch>")]
Mass = Annotated[int, msgspec.Meta(ge=1, le=10**13)]  # grams
#: When a handoff happened (ms): 0 means the block's time; otherwise at most ``handoff_backdate_ms``
#: before it, and not before the item's previous handoff.
At = Annotated[int, msgspec.Meta(ge=0, le=2**53)]


class RegisterPartType(Message, tag="parts.register_type"):
    """A supplier (or an automaker making its own parts) registers a part number it owns."""

    part_number: Ident
    name: Text
    category: Text
    serialized: bool
    assembly: bool = False
    limits: Limits = Limits()
    mass_g: Annotated[int, msgspec.Meta(ge=0, le=10**9)] = 0  # one unit's mass, g (0: not declared)


class RegisterLot(Message, tag="parts.register_lot"):
    """A raw-material lot (e.g. cobalt ore) with its mine, country and mass in grams, in the
    registering supplier's custody at ``location`` (the mine's UN/LOCODE or coarse coordinates)."""

    lot: Ident
    material: Ident
    mass_g: Mass
    mine: Text
    country: Country
    location: Location = ""


class AttestLot(Message, tag="parts.attest_lot"):
    """An auditor's due-diligence attestation of a material lot."""

    lot: Ident
    standard: Text
    result: Literal["conformant", "non_conformant"]
    report: Text
    valid_until: Annotated[int, msgspec.Meta(ge=1, le=2**53)]  # ms: after the block, at most 5 years on


class LotPortion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lot: Ident
    mass_g: Mass


class LotOutput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lot: Ident
    material: Ident
    mass_g: Mass


class SplitLot(Message, tag="parts.split_lot"):
    """Split part of a lot into new lots of the same material (a shipment divided, say); they
    carry its origins and its standing attestation. Their masses come out of the lot."""

    lot: Ident
    into: Annotated[list[LotPortion], msgspec.Meta(min_length=1, max_length=100)]
    location: Location = ""


class MergeLots(Message, tag="parts.merge_lots"):
    """Merge portions of lots of one material into a new lot; its mass is theirs together, its
    origins their mass-weighted mix, its attestations their standing ones."""

    lots: Annotated[list[LotPortion], msgspec.Meta(min_length=2, max_length=100)]
    into: Ident
    location: Location = ""


class TransformLots(Message, tag="parts.transform_lots"):
    """A process step (concentration, smelting, refining, precursor or cathode making, cell
    production ...) consumes input lots and makes output lots of other materials: the outputs
    together weigh at most the inputs times the declared yield, and carry the inputs' origins."""

    inputs: Annotated[list[LotPortion], msgspec.Meta(min_length=1, max_length=50)]
    outputs: Annotated[list[LotOutput], msgspec.Meta(min_length=1, max_length=20)]
    process: Ident
    yield_ppm: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)]
    location: Location = ""


class RecoverMaterial(Message, tag="parts.recover_material"):
    """A recycler recovers material from parts it harvested (removed, in its custody): a new lot
    whose origin is recycled, so recycled content downstream is computed, not declared. The parts
    are scrapped."""

    parts: Annotated[list[Ref], msgspec.Meta(min_length=1, max_length=1000)]
    lot: Ident
    material: Ident
    mass_g: Mass
    country: Country
    location: Location = ""


class IssuePassport(Message, tag="parts.issue_passport"):
    """The pack's maker issues (or reissues) its battery passport: what it declares, with the
    material origins and recycled content the ledger computes from the pack's cells."""

    pack: Ref
    category: Literal["ev", "lmt", "industrial", "sli"]
    chemistry: Text
    capacity_wh: Annotated[int, msgspec.Meta(ge=1, le=10**9)]
    nominal_voltage_mv: Annotated[int, msgspec.Meta(ge=1, le=10**7)]
    mass_g: Mass
    carbon_footprint_g_per_kwh: Annotated[int, msgspec.Meta(ge=0, le=10**7)]
    carbon_footprint_report: Text
    due_diligence_report: Text


class MintParts(Message, tag="parts.mint"):
    """Serialized parts (digital twins), minted by the supplier that owns the part number."""

    part_number: Ident
    serials: Annotated[list[Ident], msgspec.Meta(min_length=1, max_length=1000)]
    produced: Date
    plant: Text
    batch: Ident | None = None
    location: Location = ""


class MintBatch(Message, tag="parts.mint_batch"):
    """A production batch and the raw-material lots it consumed."""

    part_number: Ident
    batch: Ident
    quantity: Annotated[int, msgspec.Meta(ge=1, le=10**9)]
    produced: Date
    plant: Text
    materials: Annotated[list[MaterialUse], msgspec.Meta(max_length=50)] = []
    location: Location = ""


class Assemble(Message, tag="parts.assemble"):
    """Put components into an assembly (cells into a module, modules into a pack)."""

    assembly: Ref
    components: Annotated[list[Ref], msgspec.Meta(min_length=1, max_length=1000)]


class Ship(Message, tag="parts.ship"):
    """The custodian hands parts, whole batches or material lots over at ``location``; they are in
    transit until received."""

    to: str
    items: Annotated[list[Ref], msgspec.Meta(max_length=1000)] = []
    lots: Annotated[list[Ident], msgspec.Meta(max_length=1000)] = []
    location: Location = ""
    at: At = 0


class Receive(Message, tag="parts.receive"):
    """The receiver takes custody of what was shipped to it, at ``location``."""

    items: Annotated[list[Ref], msgspec.Meta(max_length=1000)] = []
    lots: Annotated[list[Ident], msgspec.Meta(max_length=1000)] = []
    location: Location = ""
    at: At = 0


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


class LotMade(Event, tag="parts.lot_made"):
    lot: str
    material: str
    mass_g: Uint
    process: str


class PassportIssued(Event, tag="parts.passport_issued"):
    pack: str
    version: Uint


class PartRemoved(Event, tag="parts.removed"):
    vin: str
    ref: str
    qty: Uint
