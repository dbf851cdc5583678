"""A live node with cobalt from two mines refined into a cell batch and a pack with its passport
(the sourcing SDK and battery-passport credential tests share it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from blokauto.client import Client
from blokauto.client.sourcing import Output, Portion, Sourcing
from blokauto.modules.parts import messages as parts

from helpers.parts import AUDIT, OEM, SUP, SUP2, VALID_UNTIL, PartsNode


def cobalt_world(folder: Path) -> PartsNode:
    """Ore lots ORE-1 (Kamoto, 10 t) and ORE-2 (Murrin Murrin, 30 t) of sup, audited, concentrated by sup
    into CONC-1, shipped TZDAR → FIKOK to sup2, refined into REF-1, shipped FIKOK → HUPEC back to sup;
    cell batch CELL:C1 (40 kg of REF-1), cells c1..c4, pack PACK:P1 with c1 and c2, its passport
    issued by sup's admin key; the pack shipped HUPEC → DEMUC to oem. Close the node when done."""
    node = PartsNode(folder)
    try:
        with Client(node.url, trust=node.genesis) as c:
            sup, ref = Sourcing(c.as_key(SUP)), Sourcing(c.as_key(SUP2))
            sup.register_lot(SUP, "ORE-1", "cobalt", 10_000_000, mine="Kamoto", country="CD",
                             location="CDKWZ").raise_for_status()
            sup.register_lot(SUP, "ORE-2", "cobalt", 30_000_000, mine="Murrin Murrin", country="AU",
                             location="geo:-28.77,121.89").raise_for_status()
            for lot in ("ORE-1", "ORE-2"):
                Sourcing(c.as_key(AUDIT)).attest_lot(AUDIT, lot, "RMAP", "conformant", report=f"R-{lot}",
                                                     valid_until=VALID_UNTIL).raise_for_status()
            sup.transform(SUP, [Portion("ORE-1", 10_000_000), Portion("ORE-2", 30_000_000)],
                          [Output("CONC-1", "cobalt-hydroxide", 1_600_000)], process="concentration",
                          yield_ppm=50_000, location="CDKWZ").raise_for_status()
            # handoffs at the blocks' times (a declared `at` may not precede the lot's making, which is now)
            sup.ship(SUP, "org:sup2", lots=["CONC-1"], location="TZDAR").raise_for_status()
            ref.receive(SUP2, lots=["CONC-1"], location="FIKOK").raise_for_status()
            ref.transform(SUP2, [Portion("CONC-1", 1_600_000)], [Output("REF-1", "cobalt-sulfate", 1_200_000)],
                          process="refining", yield_ppm=800_000, location="FIKOK").raise_for_status()
            ref.ship(SUP2, "org:sup", lots=["REF-1"], location="FIKOK").raise_for_status()
            sup.receive(SUP, lots=["REF-1"], location="HUPEC").raise_for_status()
            for msg in (parts.RegisterPartType(part_number="CELL", name="cell", category="battery", serialized=True),
                        parts.RegisterPartType(part_number="PACK", name="pack", category="battery", serialized=True,
                                               assembly=True),
                        parts.MintBatch(part_number="CELL", batch="C1", quantity=4, produced="2027-01-02",
                                        plant="Pecs", materials=[parts.MaterialUse(lot="REF-1", mass_g=40_000)]),
                        parts.MintParts(part_number="CELL", serials=["c1", "c2", "c3", "c4"], produced="2027-01-02",
                                        plant="Pecs", batch="C1", location="HUPEC"),
                        parts.MintParts(part_number="PACK", serials=["P1"], produced="2027-01-03", plant="Pecs",
                                        location="HUPEC"),
                        parts.Assemble(assembly="PACK:P1", components=["CELL:c1", "CELL:c2"])):
                c.send(msg, SUP).raise_for_status()
            sup.issue_passport(SUP, "PACK:P1", category="ev", chemistry="NMC811", capacity_wh=83_000,
                               nominal_voltage_mv=400_000, mass_g=480_000, carbon_footprint_g_per_kwh=61_000,
                               carbon_footprint_report="CF-2027-1", due_diligence_report="DD-2027-1").raise_for_status()
            sup.ship(SUP, "org:oem", items=["PACK:P1"], location="HUPEC").raise_for_status()
            Sourcing(c.as_key(OEM)).receive(OEM, items=["PACK:P1"], location="DEMUC").raise_for_status()
    except BaseException:
        node.close()
        raise
    return node


def world_of(node: PartsNode) -> dict[str, Any]:
    return {"node": node, "url": node.url, "genesis": node.genesis}
