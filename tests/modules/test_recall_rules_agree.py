"""The recall rules exist twice in Python, on purpose: the recalls module's (through the parts and
vehicles doors, typed; what the node puts in a report) and the report verifier's own (over the
proven evidence as plain JSON; ``verify.open_recalls``). One row per rule: both must give the
expected answer for the same vehicle, so a bug in either fails here, not only in the other's
disagreement at report time."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from blokauto.core.encoding import canonical, to_builtins
from blokauto.modules.parts.doors import InstalledParts
from blokauto.modules.parts.state import BOMS, PARTS, Bom, BomItem, Part, RemovedItem
from blokauto.modules.recalls.handlers import affected_vehicle
from blokauto.modules.recalls.spec import PartsOnBoard, VehicleFacts
from blokauto.modules.recalls.state import BatchRef, Campaign, DateRange, Scope, SerialRange, VinRange
from blokauto.modules.vehicles.doors import BirthFacts
from blokauto.verify import open_recalls

VIN = "WZZ3E5C22NM400117"
OPENED = 50  # the campaign's opening height
BUILT = "2024-03-02"


def part(pid: str, *, batch: str = "", components: tuple[str, ...] = ()) -> Part:
    pn, _, serial = pid.partition(":")
    return Part(pid, pn, serial, "sup", "2024-01-01", "P", f"vin:{VIN}", "installed", batch, components=list(components))


# what the vehicle carries: a serialized brake on board since 10, an assembly (a pack of two cells)
# on board since 20, a batch of pads since 30, a disc installed in the block the campaign opened, a
# hose installed after it, and a
# pump removed exactly when the campaign opened (it was not on board then) and a valve removed after
PARTS_ON_BOARD = [part("BRK:S-0500"), part("PACK:K1", components=("CELL:C-7", "CELL:C-8")),
                  part("CELL:C-7", batch="L1"), part("CELL:C-8", batch="L2"), part("HOSE:H-9"),
                  part("PUMP:P-1"), part("VALVE:V-1"), part("DISC:D-1")]
BOM = Bom(VIN, items=[BomItem("BRK:S-0500", "BRK", "part", 1, "", 10), BomItem("PACK:K1", "PACK", "part", 1, "", 20),
                      BomItem("PAD:B7", "PAD", "batch", 4, "", 30), BomItem("HOSE:H-9", "HOSE", "part", 1, "", OPENED + 1),
                      BomItem("DISC:D-1", "DISC", "part", 1, "", OPENED)],
          removed=[RemovedItem("PUMP:P-1", "PUMP", "part", 1, 5, OPENED),
                   RemovedItem("VALVE:V-1", "VALVE", "part", 1, 5, OPENED + 1)])

ROWS = [
    # (id, scope, registered, manufacturer, covered)
    ("part-number", Scope(part_numbers=["BRK"]), 1, "oem", True),
    ("part-number-not-carried", Scope(part_numbers=["WIPER"]), 1, "oem", False),
    ("serial-range-inside", Scope(serial_ranges=[SerialRange("BRK", "S-0001", "S-0999")]), 1, "oem", True),
    ("serial-range-first-is-the-serial", Scope(serial_ranges=[SerialRange("BRK", "S-0500", "S-0999")]), 1, "oem", True),
    ("serial-range-last-is-the-serial", Scope(serial_ranges=[SerialRange("BRK", "S-0001", "S-0500")]), 1, "oem", True),
    ("serial-range-just-below", Scope(serial_ranges=[SerialRange("BRK", "S-0501", "S-0999")]), 1, "oem", False),
    ("serial-range-other-part-number", Scope(serial_ranges=[SerialRange("WIPER", "S-0001", "S-0999")]), 1, "oem", False),
    ("serial-range-nested-in-an-assembly", Scope(serial_ranges=[SerialRange("CELL", "C-8", "C-9")]), 1, "oem", True),
    ("batch", Scope(batches=[BatchRef("PAD", "B7")]), 1, "oem", True),
    ("batch-of-a-nested-cell", Scope(batches=[BatchRef("CELL", "L2")]), 1, "oem", True),
    ("batch-name-of-another-part-number", Scope(batches=[BatchRef("DISC", "B7")]), 1, "oem", False),
    ("installed-after-it-opened", Scope(part_numbers=["HOSE"]), 1, "oem", False),
    ("installed-as-it-opened", Scope(part_numbers=["DISC"]), 1, "oem", True),
    ("removed-as-it-opened", Scope(part_numbers=["PUMP"]), 1, "oem", False),
    ("removed-after-it-opened", Scope(part_numbers=["VALVE"]), 1, "oem", True),
    ("registered-after-it-opened", Scope(part_numbers=["BRK"]), OPENED + 1, "oem", False),
    ("registered-as-it-opened", Scope(part_numbers=["BRK"]), OPENED, "oem", True),
    ("late-registration-vehicle-criteria-only", Scope(vin_ranges=[VinRange(VIN, VIN)]), OPENED + 1, "oem", False),
    ("other-manufacturer", Scope(part_numbers=["BRK"], manufacturer="rival"), 1, "oem", False),
    ("own-manufacturer", Scope(part_numbers=["BRK"], manufacturer="oem"), 1, "oem", True),
    ("built-in-range", Scope(build_dates=DateRange("2024-03-02", "2024-03-02")), 1, "oem", True),
    ("built-before-range", Scope(build_dates=DateRange("2024-03-03", "2024-12-31")), 1, "oem", False),
    ("vin-outside-range", Scope(vin_ranges=[VinRange("WZZ3E5C22NM400118", "WZZ3E5C22NM499999")]), 1, "oem", False),
    ("vin-range-and-a-part", Scope(part_numbers=["BRK"], vin_ranges=[VinRange(VIN, VIN)]), 1, "oem", True),
    ("vin-range-but-no-part", Scope(part_numbers=["WIPER"], vin_ranges=[VinRange(VIN, VIN)]), 1, "oem", False),
]


class _Facts:
    def __init__(self, facts: BirthFacts) -> None:
        self.facts = facts

    def birth_facts(self, state: Any, vin: str) -> BirthFacts | None:
        return self.facts if vin == VIN else None


def _module_says(scope: Scope, registered: int, manufacturer: str) -> bool:
    state = {BOMS.key(VIN): canonical(BOM), **{PARTS.key(p.id): canonical(p) for p in PARTS_ON_BOARD}}
    reader = type("State", (), {"get": lambda self, k: state.get(k)})()
    doors = {VehicleFacts: _Facts(BirthFacts(manufacturer, BUILT, registered)), PartsOnBoard: InstalledParts()}
    c = Campaign(7, "24V-007", scope.manufacturer, "oem", "brakes", "s", "c", "r", False, False, 1, scope, OPENED, 0)
    return affected_vehicle(reader, doors.__getitem__, c, VIN)


def _verifier_says(scope: Scope, registered: int, manufacturer: str, remedied: bool = False) -> list[dict[str, Any]]:
    c = Campaign(7, "24V-007", scope.manufacturer, "oem", "brakes", "s", "c", "r", True, False, 1, scope, OPENED, 0)
    raw = lambda v: None if v is None else canonical(v).decode()  # noqa: E731
    ev = {"open": {"raw": raw([7])}, "campaigns": [{"raw": raw(c)}],
          "remedies": [{"raw": raw({"campaign": 7, "vin": VIN}) if remedied else None}],
          "bom": {"raw": raw(BOM)}, "parts": [{"raw": raw(p)} for p in PARTS_ON_BOARD]}
    record = {"vin": VIN, "manufacturer": manufacturer, "registered": registered, "birth": {"build_date": BUILT}}
    return open_recalls(msgspec.json.decode(canonical(record)), ev)


@pytest.mark.parametrize("scope,registered,manufacturer,covered", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_the_module_and_the_verifier_cover_the_same_vehicles(scope, registered, manufacturer, covered):
    assert _module_says(scope, registered, manufacturer) is covered
    assert [r["campaign"] for r in _verifier_says(scope, registered, manufacturer)] == ([7] if covered else [])


@pytest.mark.parametrize("remedied", [False, True])
def test_the_verifier_reports_a_covering_campaign_and_its_remedy(remedied):
    (r,) = _verifier_says(Scope(part_numbers=["BRK"]), 1, "oem", remedied)
    assert r == {"campaign": 7, "number": "24V-007", "component": "brakes", "summary": "s", "remedy": "r",
                 "do_not_drive": True, "remedied": remedied}


def test_the_rows_cover_every_kind_of_criterion():
    fields = {f for _, scope, *_ in ROWS for f, v in to_builtins(scope).items() if v}
    assert fields == {"part_numbers", "batches", "serial_ranges", "build_dates", "vin_ranges", "manufacturer"}
