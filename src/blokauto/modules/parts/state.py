"""Parts state: part types, serialized parts (digital twins), batches, material lots, loggers
and each vehicle's bill of installed parts.

Identifiers: a serialized part is ``<part_number>:<serial>``, a batch ``<part_number>:<batch>``.
A custodian is a holder string, as for vehicle titles (``org:<id>`` or a ``did:key``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.state import StateMap
from . import keys

Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\Z")]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}\Z")]
#: Where a handoff happened: a UN/LOCODE (country and place, ``DEHAM``, ``CDKWZ``) or coarse
#: coordinates ``geo:<lat>,<lon>`` with at most two decimals (about a kilometre); "" when not given.
Location = Annotated[str, msgspec.Meta(
    pattern=r"^([A-Z]{2}[A-Z2-9]{3}|geo:-?(90(\.00?)?|[1-8]?\d(\.\d\d?)?),-?(180(\.00?)?|(1[0-7]\d|[1-9]?\d)(\.\d\d?)?))?\Z",
    max_length=20)]
PartStatus = Literal["in_stock", "in_transit", "installed", "removed", "scrapped"]


class Limits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Storage and transport limits of a part type (0 means no limit). Temperatures in
    tenths of a degree Celsius, shock in milli-g, humidity in percent."""

    min_temp_dc: int = 0
    max_temp_dc: int = 0
    max_shock_mg: Uint = 0
    max_humidity_pct: Uint = 0


class PartType(msgspec.Struct, frozen=True):
    part_number: str
    supplier: str
    name: str
    category: str
    serialized: bool
    assembly: bool
    limits: Limits
    registered: Uint
    installed: Uint = 0  # units of this part number installed in vehicles right now
    mass_g: Uint = 0  # one unit's mass as its supplier declared it (0: not declared)


class History(msgspec.Struct, frozen=True):
    count: Uint = 0
    head: str = "00" * 32


class Handoff(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where an item (part, batch or lot) is and since when: held by its custodian since ``since``
    at ``location``, or, while in transit, shipped at ``since`` from ``location``. ``count`` numbers
    its handoffs (the rows of the ``handoffs`` index)."""

    since: Uint = 0  # ms (block time, or the handoff time its sender declared)
    location: str = ""
    count: Uint = 0


class Part(msgspec.Struct, frozen=True):
    """A serialized part's digital twin."""

    id: str
    part_number: str
    serial: str
    supplier: str
    produced: str
    plant: str
    custodian: str
    status: PartStatus = "in_stock"
    batch: str = ""
    location: str = ""  # "vin:<VIN>" or "part:<assembly id>" while installed
    transit_to: str = ""
    components: list[str] = []  # for an assembly: the parts inside it
    breaches: Uint = 0  # condition readings beyond the part type's limits
    history: History = History()
    handoff: Handoff = Handoff()


class MaterialUse(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lot: str
    mass_g: Uint


class Batch(msgspec.Struct, frozen=True):
    id: str
    part_number: str
    batch: str
    supplier: str
    quantity: Uint
    produced: str
    plant: str
    custodian: str
    in_stock: Uint
    installed: Uint = 0
    materials: list[MaterialUse] = []
    handoff: Handoff = Handoff()
    shipped_by: str = ""  # while in transit: the custodian that shipped it


class Attestation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    auditor: str
    standard: str
    result: Literal["conformant", "non_conformant"]
    report: str
    height: Uint
    valid_until: Uint = 0  # ms, block time; 0 on attestations recorded before expiries existed (never valid for a rule)
    lot: str = ""  # set on an attestation a lot inherited: the lot it was made for


class Origin(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a share of a lot's ``material`` came from: the lot it entered the ledger as (a mine's
    lot, or a recycler's recovered lot), with the mine and country, and the share in parts per
    million of this lot's content of that material (shares of one material sum to 1,000,000)."""

    material: str
    lot: str
    mine: str
    country: str
    ppm: Uint
    recycled: bool = False


class LotInput(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    lot: str
    mass_g: Uint


class MaterialLot(msgspec.Struct, frozen=True):
    """A material lot: mined (registered with its mine), split from one lot, merged from lots of one
    material, transformed from lots (ore to concentrate to refined metal to precursor ...), or
    recovered by a recycler from scrapped parts. ``origins`` carry the mines and recycled sources
    forward through every step; ``made_from`` says what it consumed."""

    id: str
    material: str
    mass_g: Uint
    consumed_g: Uint
    mine: str
    country: str
    producer: str
    attestations: list[Attestation] = []
    custodian: str = ""  # "org:<id>"; "" on lots registered before custody of lots existed: the producer's
    transit_to: str = ""
    origins: list[Origin] = []
    made_from: list[LotInput] = []
    process: str = "mined"  # mined | split | merge | transform:<process> | recovered
    step: Uint = 0  # transformation steps from the mine
    inherited: list[Attestation] = []  # what its sources stood on when it was made (conformance is judged live)
    recovered_from: list[str] = []  # for a recovered lot: the scrapped parts it came from
    handoff: Handoff = Handoff()
    used: Uint = 0  # when its custodian last split or consumed it (ms): no handoff is dated before

    @property
    def holder(self) -> str:
        return self.custodian or "org:" + self.producer


class BomItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One line of a vehicle's bill of installed parts: a serialized part, or units of a batch."""

    ref: str  # part id or batch id
    part_number: str
    kind: Literal["part", "batch"]
    qty: Uint = 1
    position: str = ""
    height: Uint = 0


class RemovedItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    ref: str
    part_number: str
    kind: Literal["part", "batch"]
    qty: Uint
    installed: Uint
    removed: Uint
    nested: list[str] = []  # an assembly's parts (any depth) when it came out: what it carried then


class Bom(msgspec.Struct, frozen=True):
    """A vehicle's bill of installed parts, and what was removed when (so what it carried at any
    height can be proven, e.g. when a recall was opened)."""

    vin: str
    items: list[BomItem] = []
    removed: list[RemovedItem] = []


PART_TYPES = StateMap(keys.PART_TYPE, PartType)
PARTS = StateMap(keys.PART, Part)
BATCHES = StateMap(keys.BATCH, Batch)
LOTS = StateMap(keys.LOT, MaterialLot)
LOGGERS = StateMap(keys.LOGGER, str)  # logger device did -> organisation that registered it
BOMS = StateMap(keys.BOM, Bom)


class RecycledShare(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    material: str
    ppm: Uint  # of that material's content, recovered from waste


class Passport(msgspec.Struct, frozen=True):
    """A battery pack's passport (EU Battery Regulation 2023/1542, Annex XIII, the fields the ledger
    knows): declared by its maker, with the material origins and recycled content computed by the
    ledger from the pack's cells, their batches and lots at the height it was issued."""

    id: str  # the pack's part id
    manufacturer: str  # organisation id
    issuer: str  # the did:key of the member that issued it
    part_number: str
    serial: str
    produced: str
    plant: str
    category: str  # ev | lmt | industrial | sli
    chemistry: str
    capacity_wh: Uint
    nominal_voltage_mv: Uint
    mass_g: Uint
    carbon_footprint_g_per_kwh: Uint  # g CO2e per kWh of capacity over the life cycle
    carbon_footprint_report: str
    due_diligence_report: str
    materials: list[Origin]  # each origin's share of a material in the pack
    recycled: list[RecycledShare]
    attestations: list[Attestation]  # each origin lot's attestations when issued
    height: Uint
    time: Uint
    version: Uint = 1


PASSPORTS = StateMap(keys.PASSPORT, Passport)
