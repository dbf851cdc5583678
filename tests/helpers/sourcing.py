"""Shared set-up for the responsible-sourcing tests (material lots mine to pack, attestations,
mass balance, origins, handoffs with place and time, battery passports).

Builds on ``helpers.parts`` (its consortium: sup, sup2 and oem make things, audit attests, scrap
recycles). Adds message builders that read like the domain (``split``, ``merge``, ``transform``,
``attest``, ``recover``, ``passport``, ``ship_lots``/``receive_lots``), a governance vote that sets a
chain parameter (``set_param``, ``require``: ``attestation_required:<material>`` = 1), a small world
of lots and parts with the set-ups the rules start from (``world``, ``installed``, ``harvested``
...), a clock
(``run_at``: a transaction in a block at a chosen time, its expiry after it), and ``SourcingView``:
a ``QueryView`` over a MemoryLedger that also answers ``view.time`` and ``view.sql`` (the index
rows copied into an in-memory SQLite database), so the sourcing queries run without a node.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Callable

from blokauto.core.crypto import KeyPair
from blokauto.core.errors import render
from blokauto.core.tx import Message
from blokauto.modules.governance.messages import Propose, Vote
from blokauto.modules.governance.state import NEXT_PROPOSAL, SetParameter
from blokauto.modules.parts.messages import (AttestLot, IssuePassport, LotOutput, LotPortion, MergeLots, Receive,
                                             RecoverMaterial, RegisterLot, RegisterPartType, Ship, SplitLot,
                                             TransformLots)
from blokauto.modules.parts.state import LOTS, MaterialLot
from blokauto.modules.vehicles.messages import Deregister

from conftest import Chain, build_tx
from helpers.parts import (ALL_ORGS, AUDIT, OEM, SCRAP, SUP, SUP2, V1, VALID_UNTIL, install, mint, ok, part_type,
                           parts_chain, receive, register_msg, remove, ship)
from helpers.vehicles import MemoryView, admin

HOUR = 3_600_000
DAY = 24 * HOUR
PPM = 1_000_000

__all__ = ["HOUR", "DAY", "PPM", "registered", "split", "merge", "transform", "attest", "recover", "passport",
           "ship_lots", "receive_lots", "set_param", "require", "required", "all_ok", "run_at", "lot_of", "sentence",
           "SourcingView", "shares", "world", "then", "does", "installed", "harvested", "ore_in_transit", "attested"]


# ---------------------------------------------------------------- message builders


def registered(lot_id: str, mass_g: int, material: str = "cobalt", mine: str = "Kamoto", country: str = "CD",
               location: str = "") -> RegisterLot:
    return RegisterLot(lot=lot_id, material=material, mass_g=mass_g, mine=mine, country=country, location=location)


def split(lot_id: str, *into: tuple[str, int], location: str = "") -> SplitLot:
    return SplitLot(lot=lot_id, into=[LotPortion(lot=i, mass_g=g) for i, g in into], location=location)


def merge(into: str, *lots: tuple[str, int], location: str = "") -> MergeLots:
    return MergeLots(lots=[LotPortion(lot=i, mass_g=g) for i, g in lots], into=into, location=location)


def transform(process: str, inputs: list[tuple[str, int]], outputs: list[tuple[str, str, int]],
              yield_ppm: int = PPM, location: str = "") -> TransformLots:
    """``outputs`` are (lot, material, grams)."""
    return TransformLots(inputs=[LotPortion(lot=i, mass_g=g) for i, g in inputs],
                         outputs=[LotOutput(lot=i, material=m, mass_g=g) for i, m, g in outputs],
                         process=process, yield_ppm=yield_ppm, location=location)


def attest(lot_id: str, result: str = "conformant", valid_until: int = VALID_UNTIL, standard: str = "RMAP",
           report: str = "FMA-1") -> AttestLot:
    return AttestLot(lot=lot_id, standard=standard, result=result, report=report, valid_until=valid_until)


def recover(lot_id: str, *parts: str, material: str = "cobalt", mass_g: int = 1_000, country: str = "DE",
            location: str = "") -> RecoverMaterial:
    return RecoverMaterial(parts=list(parts), lot=lot_id, material=material, mass_g=mass_g, country=country,
                           location=location)


def passport(pack: str, **kw: Any) -> IssuePassport:
    fields: dict[str, Any] = dict(pack=pack, category="ev", chemistry="NMC811", capacity_wh=75_000,
                                  nominal_voltage_mv=400_000, mass_g=450_000, carbon_footprint_g_per_kwh=61_000,
                                  carbon_footprint_report="CFP-1", due_diligence_report="DDR-1")
    fields.update(kw)
    return IssuePassport(**fields)


def ship_lots(to: str, *lots: str, location: str = "", at: int = 0, items: tuple[str, ...] = ()) -> Ship:
    return Ship(to=to if ":" in to else "org:" + to, lots=list(lots), items=list(items), location=location, at=at)


def receive_lots(*lots: str, location: str = "", at: int = 0, items: tuple[str, ...] = ()) -> Receive:
    return Receive(lots=list(lots), items=list(items), location=location, at=at)


# ---------------------------------------------------------------- governance and the clock


def set_param(chain: Chain, name: str, value: int) -> None:
    """A governance vote sets ``name`` to ``value``: reg proposes, the other organisations vote yes
    in the same block until it passes (in force from the next block)."""
    pid = NEXT_PROPOSAL.get(chain.ledger)
    raws = [build_tx(admin("reg"), Propose(action=SetParameter(name=name, value=value)))]
    raws += [build_tx(admin(org), Vote(proposal=pid, approve=True)) for org in ALL_ORGS if org != "reg"]
    receipts = chain.block(*raws).receipts
    changed = [e for r in receipts for e in r.events if e["type"] == "governance.parameter_changed"]
    assert changed == [{"type": "governance.parameter_changed", "name": name, "value": value}], receipts[:2]


def require(chain: Chain, material: str = "cobalt") -> None:
    """The consortium votes ``attestation_required:<material>`` to 1."""
    set_param(chain, f"attestation_required:{material}", 1)


def all_ok(chain: Chain, *steps: tuple, time: int | None = None) -> list[Any]:
    """Several transactions, each (sender, message, *cosigners), in one block in this order; all must
    pass (in a block at ``time``, or 1 ms after the head's). Returns their receipts."""
    expires = (chain.ledger.head.time + 1 if time is None else time) + HOUR // 2
    receipts = chain.block(*(build_tx(s[0], s[1], *s[2:], chain=chain.genesis.chain, expires=expires) for s in steps),
                           time=time).receipts
    for step, r in zip(steps, receipts):
        assert r.ok, (type(step[1]).__name__, r)
    return receipts


required = require  # as a set-up: the consortium votes attestation_required:cobalt = 1


def run_at(chain: Chain, t: int, sender: KeyPair, msg: Message, *cosigners: KeyPair) -> Any:
    """One transaction in its own block at time ``t`` (ms); returns its receipt."""
    return chain.block(build_tx(sender, msg, *cosigners, chain=chain.genesis.chain, expires=t + HOUR // 2),
                       time=t).receipts[0]


# ---------------------------------------------------------------- a world and its set-ups


def world() -> Chain:
    """sup holds cobalt lots ORE (10 kg, Kamoto, registered at CDKWZ) and ORE2 (5 kg) and nickel lot NI
    (4 kg); sup2 holds cobalt lot OREB (3 kg, Bou Azzer). sup makes ELEC (in batches), GEAR (serialized,
    G1 and G2 minted) and PACK (a battery pack type: category "battery", assembly; K1 minted). No
    attestation, no rule voted."""
    chain = parts_chain()
    all_ok(chain,
           (SUP, part_type("ELEC", serialized=False)),
           (SUP, part_type("GEAR", mass_g=5_000)),
           (SUP, RegisterPartType(part_number="PACK", name="pack", category="battery", serialized=True, assembly=True)),
           (SUP, mint("GEAR", "G1", "G2")),
           (SUP, mint("PACK", "K1")),
           (SUP, registered("ORE", 10_000, location="CDKWZ")),
           (SUP, registered("ORE2", 5_000)),
           (SUP, registered("NI", 4_000, material="nickel", mine="Sorowako", country="ID")),
           (SUP2, registered("OREB", 3_000, mine="Bou Azzer", country="MA")))
    return chain


def then(*steps: Callable[[Chain], Any]) -> Callable[[Chain], None]:
    def setup(chain: Chain) -> None:
        for step in steps:
            step(chain)

    return setup


def does(sender: KeyPair, msg: Any, *co: KeyPair) -> Callable[[Chain], Any]:
    return lambda chain: ok(chain, sender, msg, *co)


def installed(chain: Chain) -> None:
    """GEAR:G2 shipped to oem and installed in V1."""
    all_ok(chain, (SUP, ship("oem", "GEAR:G2")), (OEM, receive("GEAR:G2")), (OEM, register_msg(V1)),
           (OEM, install(V1, "GEAR:G2")))


def harvested(chain: Chain) -> None:
    """GEAR:G2 installed in V1, V1 deregistered, and scrap harvested the gear (removed, its custody)."""
    installed(chain)
    all_ok(chain, (SCRAP, Deregister(vin=V1, certificate="COD-1"), OEM), (SCRAP, remove(V1, "GEAR:G2")))


def ore_in_transit(chain: Chain) -> None:
    ok(chain, SUP, ship_lots("sup2", "ORE"))


def attested(lot_id: str, result: str = "conformant", valid_until: int = VALID_UNTIL,
             report: str = "FMA-1") -> Callable[[Chain], Any]:
    return does(AUDIT, attest(lot_id, result, valid_until, report=report))


# ---------------------------------------------------------------- reading


def lot_of(chain: Chain, lot_id: str) -> MaterialLot:
    found = LOTS.get(chain.ledger, lot_id)
    assert found is not None, lot_id
    return found


def sentence(receipt: Any) -> str:
    """The sentence a person reads for a failure receipt (rendered from its code and detail)."""
    return render(receipt.code, receipt.detail)


def shares(origins: Any) -> dict[str, dict[str, int]]:
    """Per material, origin lot -> ppm (from Origin structs, or an origin/passport answer's dicts)."""
    out: dict[str, dict[str, int]] = {}
    for o in origins:
        m, lot_id, ppm = (o["material"], o["lot"], o["ppm"]) if isinstance(o, dict) else (o.material, o.lot, o.ppm)
        out.setdefault(m, {})[lot_id] = ppm
    return out


class SourcingView(MemoryView):
    """A ``QueryView`` over a MemoryLedger at its head: rows, ``time`` and ``sql`` (the tables a
    query names copied into an in-memory SQLite database, so GROUP BY and SUM run as on a node)."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.time = chain.ledger.head.time

    def sql(self, text: str, args: Any = (), **tables: Any) -> list[tuple]:
        db = sqlite3.connect(":memory:")
        try:
            names = {}
            for alias, table in tables.items():
                names[alias] = table.name
                db.execute(f"CREATE TABLE {table.name} ({', '.join(f'{c} {t}' for c, t in table.columns)})")
                cols = table.column_names
                db.executemany(f"INSERT INTO {table.name} VALUES ({', '.join('?' for _ in cols)})",
                               [tuple(r[c] for c in cols) for r in self.ledger.index[table.name].values()])
            return [tuple(r) for r in db.execute(text.format(**names), tuple(args)).fetchall()]
        finally:
            db.close()
