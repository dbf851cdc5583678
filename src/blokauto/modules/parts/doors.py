"""The parts module's door: what recalls and the history report may read of parts.

Recalls resolve affected vehicles through it (what a vehicle carried at a height, its
installation index); the report asks it which state values prove what a vehicle carries.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from ...core.module import IndexTable
from ...core.state import StateReader
from .access import BATCH_PARTIES, LOT_PARTIES, PART_PARTIES  # who reads a part, batch or lot (the API's state route too)
from .handlers import _nested
from .provenance import Provenance, describe, origins_of  # noqa: F401  (the SDK recomputes origins from proven state)
from .spec import INSTALLATIONS
from .state import BATCHES, BOMS, PART_TYPES, PARTS, Part


class CarriedPart(msgspec.Struct, frozen=True):
    """One thing a vehicle carried: a part number with its batch and serial ("" when it has none)."""

    part_number: str
    batch: str
    serial: str


class PartsEvidence(msgspec.Struct, frozen=True):
    """The state keys that prove what a vehicle carries for recalls naming some part numbers: its
    bill of parts, and each serialized part on it (with removed ones, and any component of a named
    part number inside an assembly, also one a removed assembly held)."""

    bom_key: bytes
    part_keys: list[bytes]


@runtime_checkable
class PartsDoor(Protocol):
    """The parts module's door."""

    #: Its index table other modules may join on (recall resolution): ``installations``.
    tables: dict[str, IndexTable]

    def installed_at(self, state: StateReader, vin: str, height: int) -> list[CarriedPart]:
        """Everything ``vin`` carried at ``height``, parts nested in assemblies included."""
        ...

    def part_installed(self, state: StateReader, part_number: str) -> int:
        """Units of ``part_number`` installed in vehicles now."""
        ...

    def batch_installed(self, state: StateReader, batch_id: str) -> int:
        """Units of batch ``batch_id`` installed in vehicles now."""
        ...

    def recall_evidence(self, state: StateReader, vin: str, named: frozenset[str]) -> PartsEvidence:
        """The keys proving what ``vin`` carries, for campaigns naming the part numbers ``named``."""
        ...


def _pn(ref: str) -> str:
    return ref.partition(":")[0]


class InstalledParts:
    """The implementation of ``PartsDoor`` wired in the module's definition."""

    tables = {"installations": INSTALLATIONS}

    def installed_at(self, state: StateReader, vin: str, height: int) -> list[CarriedPart]:
        bom = BOMS.get(state, vin)
        if bom is None:
            return []
        out: list[CarriedPart] = []

        def carried(ref: str, kind: str, pn: str, inside: list[Part] | None) -> None:
            if kind == "batch":
                out.append(CarriedPart(pn, ref.partition(":")[2], ""))
                return
            p = PARTS.get(state, ref)
            if p is not None:  # an assembly still on board holds what it held when installed
                out.append(CarriedPart(p.part_number, p.batch, p.serial))
                out.extend(CarriedPart(c.part_number, c.batch, c.serial)
                           for c in (_nested(state, p) if inside is None else inside))

        for i in bom.items:
            if i.height <= height:
                carried(i.ref, i.kind, i.part_number, None)
        for r in bom.removed:
            if r.installed <= height < r.removed:
                carried(r.ref, r.kind, r.part_number, [c for c in (PARTS.get(state, x) for x in r.nested) if c is not None])
        return out

    def part_installed(self, state: StateReader, part_number: str) -> int:
        t = PART_TYPES.get(state, part_number)
        return t.installed if t is not None else 0

    def batch_installed(self, state: StateReader, batch_id: str) -> int:
        b = BATCHES.get(state, batch_id)
        return b.installed if b is not None else 0

    def recall_evidence(self, state: StateReader, vin: str, named: frozenset[str]) -> PartsEvidence:
        bom = BOMS.get(state, vin)
        keys: list[bytes] = []
        if bom is not None:
            refs = ([i.ref for i in bom.items if i.kind == "part"] + [r.ref for r in bom.removed if r.kind == "part"]
                    + [x for r in bom.removed for x in r.nested if _pn(x) in named])
            seen: set[str] = set()
            while refs:
                ref = refs.pop()
                if ref in seen:
                    continue
                seen.add(ref)
                keys.append(PARTS.key(ref))
                p = PARTS.get(state, ref)
                if p is not None:
                    refs += [c for c in p.components if _pn(c) in named]
        return PartsEvidence(BOMS.key(vin), keys)
