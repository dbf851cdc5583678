"""Recall campaigns (NHTSA-like fields and a scope), remedies, and the open-campaign indexes."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.state import Item, StateMap
from . import keys

Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Date = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])\Z")]
Vin = Annotated[str, msgspec.Meta(pattern=r"^[A-HJ-NPR-Z0-9]{1,17}\Z")]


class BatchRef(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    part_number: Ident
    batch: Ident


class SerialRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    part_number: Ident
    first: Ident
    last: Ident


class DateRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    first: Date
    last: Date


class VinRange(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    first: Vin
    last: Vin


class Scope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which vehicles a campaign covers. Part criteria (any of them) find vehicles through what
    they carry; vehicle criteria (all given) narrow them: built in a date range, a VIN in one of
    the ranges, made by one manufacturer."""

    part_numbers: list[Ident] = []
    batches: list[BatchRef] = []
    serial_ranges: list[SerialRange] = []
    build_dates: DateRange | None = None
    vin_ranges: list[VinRange] = []
    manufacturer: str = ""

    @property
    def has_part_criteria(self) -> bool:
        return bool(self.part_numbers or self.batches or self.serial_ranges)

    def part_numbers_named(self) -> set[str]:
        return set(self.part_numbers) | {b.part_number for b in self.batches} | {r.part_number for r in self.serial_ranges}

    def covers_part(self, part_number: str, batch: str, serial: str) -> bool:
        if part_number in self.part_numbers:
            return True
        if batch and any(b.part_number == part_number and b.batch == batch for b in self.batches):
            return True
        return bool(serial) and any(r.part_number == part_number and r.first <= serial <= r.last
                                    for r in self.serial_ranges)

    def covers_vehicle(self, vin: str, manufacturer: str, build_date: str) -> bool:
        if self.manufacturer and manufacturer != self.manufacturer:
            return False
        if self.build_dates is not None and not self.build_dates.first <= build_date <= self.build_dates.last:
            return False
        return not self.vin_ranges or any(r.first <= vin <= r.last for r in self.vin_ranges)


class SoftwareFix(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What fixes a software recall: an image for ECUs of ``hardware_id`` with a release counter of at
    least ``min_release_counter``; the vehicle's own install manifest of one remedies it."""

    hardware_id: Ident
    min_release_counter: Uint


class Campaign(msgspec.Struct, frozen=True):
    id: Uint
    number: str
    manufacturer: str  # whose vehicles (or "" for a regulator's campaign across makers)
    opened_by: str
    component: str
    summary: str
    consequence: str
    remedy: str
    do_not_drive: bool
    ota_remedy: bool
    units: Uint  # units the opener estimated (NHTSA "potential units affected")
    scope: Scope
    opened: Uint  # height: the affected vehicles are those the scope matched at this height
    opened_time: Uint
    status: Literal["open", "closed"] = "open"
    remedied: Uint = 0
    closed: Uint = 0
    software_fix: SoftwareFix | msgspec.UnsetType = msgspec.UNSET  # stored only when set: older records keep their bytes


class Remedy(msgspec.Struct, frozen=True):
    campaign: Uint
    vin: str
    by: str
    method: Literal["workshop", "software"]
    height: Uint
    notes: str = ""


CAMPAIGNS = StateMap(keys.CAMPAIGN, Campaign)
NUMBERS = StateMap(keys.NUMBER, int)  # campaign number -> id
BY_PART_NUMBER = StateMap(keys.BY_PART_NUMBER, list[int])  # part number -> open campaigns naming it
REMEDIES = StateMap(keys.REMEDY, Remedy)  # (campaign, vin)
BY_HARDWARE = StateMap(keys.BY_HARDWARE, list[int])  # hardware id -> open campaigns a software install fixes
OPEN: Item[list[int]] = Item(keys.OPEN, list[int], default=list)
NEXT: Item[int] = Item(keys.NEXT, int, default=1)
