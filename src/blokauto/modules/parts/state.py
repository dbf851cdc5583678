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

Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Text = Annotated[str, msgspec.Meta(max_length=200)]
Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$")]
Country = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{2}$")]
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


class History(msgspec.Struct, frozen=True):
    count: Uint = 0
    head: str = "00" * 32


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


class Attestation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    auditor: str
    standard: str
    result: Literal["conformant", "non_conformant"]
    report: str
    height: Uint


class MaterialLot(msgspec.Struct, frozen=True):
    id: str
    material: str
    mass_g: Uint
    consumed_g: Uint
    mine: str
    country: str
    producer: str
    attestations: list[Attestation] = []


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
