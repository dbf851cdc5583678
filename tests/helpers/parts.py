"""Shared set-up for the parts and recalls tests.

A consortium with every role the two modules care about (the vehicles consortium of
``helpers.vehicles`` plus two suppliers and an auditor), message builders that read like the
domain, read helpers over a MemoryLedger, a supply scenario (``supplied``), and ``PartsNode``: a
real node with its HTTP API in this process, on a data folder holding that same consortium, for
what needs SQL (recall resolution, module queries, the event stream).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import httpx
import msgspec

from blokauto.core.block import Genesis
from blokauto.core.crypto import KeyPair
from blokauto.core.tx import Message
from blokauto.modules.parts.messages import (
    Assemble,
    InstallItem,
    Install,
    MintBatch,
    MintParts,
    Receive,
    RegisterLogger,
    RegisterLot,
    RegisterPartType,
    Remove,
    Ship,
)
from blokauto.modules.parts.spec import INSTALLATIONS, PART_HISTORY
from blokauto.modules.parts.state import BATCHES, BOMS, LOTS, PART_TYPES, PARTS, Batch, Bom, Limits, MaterialLot, \
    MaterialUse, Part, PartType
from blokauto.modules.recalls.messages import OpenCampaign
from blokauto.modules.recalls.state import BatchRef, DateRange, Scope, SerialRange, VinRange
from blokauto.modules.vehicles.messages import AssignWmi

from conftest import JSON_POST, Chain, K, build_tx, now_ms, parse_sse, signed, write_chain
from helpers.vehicles import ORGS, WMI, admin, register_msg, vehicles_genesis, vin_for

#: Organisations the parts tests add to the vehicles consortium.
PARTS_EXTRA: list[tuple[str, list[str]]] = [("sup", ["supplier"]), ("sup2", ["supplier"]), ("audit", ["auditor"])]
ALL_ORGS: dict[str, list[str]] = {**ORGS, **dict(PARTS_EXTRA)}

SUP, SUP2, AUDIT = admin("sup"), admin("sup2"), admin("audit")
OEM, OEM2, SHOP, SCRAP, REG, INS, DEALER = (admin(o) for o in ("oem", "oem2", "shop", "scrap", "reg", "ins", "dealer"))
OUTSIDER = K("outsider")
LOGGER_SUP, LOGGER_OEM = K("logger-sup"), K("logger-oem")  # condition-logger devices of sup and oem

PRODUCED = "2027-01-05"
#: An attestation's expiry a year after the tests' block times (a MemoryLedger's start at
#: 1,800,000,000,000 ms; a live node's are the wall clock's).
VALID_UNTIL = max(1_800_000_000_000, now_ms()) + 365 * 86_400_000
V1, V2, V3 = vin_for(WMI["oem"], 1), vin_for(WMI["oem"], 2), vin_for(WMI["oem"], 3)
W1 = vin_for(WMI["oem2"], 1)  # a vehicle of the other manufacturer

__all__ = [
    "ALL_ORGS", "PARTS_EXTRA", "VALID_UNTIL", "SUP", "SUP2", "AUDIT", "OEM", "OEM2", "SHOP", "SCRAP", "REG", "INS", "DEALER",
    "OUTSIDER", "LOGGER_SUP", "LOGGER_OEM", "parts_genesis", "parts_chain", "ok", "part_type", "mint", "mint_batch",
    "lot", "ship", "receive", "P", "B", "install", "remove", "assemble", "part", "batch", "ptype", "bom",
    "material_lot", "part_history", "installations", "supplied", "campaign", "PartsNode", "BatchRef", "DateRange",
    "Scope", "SerialRange", "VinRange", "vin_for", "WMI", "admin", "register_msg", "MaterialUse", "Limits", "V1", "V2",
    "V3", "W1", "Sse", "ORGS",
]


def parts_genesis(time: int | None = None) -> Genesis:
    g = vehicles_genesis(PARTS_EXTRA)
    return g if time is None else msgspec.structs.replace(g, time=time)


def parts_chain() -> Chain:
    """The parts consortium with oem's and oem2's WMIs assigned; no part or vehicle yet."""
    chain = Chain(parts_genesis())
    for org, wmi in WMI.items():
        ok(chain, REG, AssignWmi(wmi=wmi, org=org))
    return chain


def ok(chain: Chain, sender: KeyPair, msg: Message, *cosigners: KeyPair) -> Any:
    """Run one transaction that must pass; returns its receipt."""
    r = chain.run(sender, msg, *cosigners)
    assert r.ok, (type(msg).__name__, r)
    return r


# ---------------------------------------------------------------- message builders


def part_type(pn: str, *, serialized: bool = True, assembly: bool = False, mass_g: int = 0,
              **limits: int) -> RegisterPartType:
    return RegisterPartType(part_number=pn, name=f"part {pn}", category="test", serialized=serialized,
                            assembly=assembly, limits=Limits(**limits), mass_g=mass_g)


def mint(pn: str, *serials: str, batch: str | None = None, produced: str = PRODUCED) -> MintParts:
    return MintParts(part_number=pn, serials=list(serials), produced=produced, plant="Plant A", batch=batch)


def mint_batch(pn: str, name: str, quantity: int, *uses: tuple[str, int], produced: str = PRODUCED) -> MintBatch:
    return MintBatch(part_number=pn, batch=name, quantity=quantity, produced=produced, plant="Plant A",
                     materials=[MaterialUse(lot=lot_id, mass_g=g) for lot_id, g in uses])


def lot(lot_id: str, mass_g: int, material: str = "cobalt", mine: str = "Kamoto", country: str = "CD") -> RegisterLot:
    return RegisterLot(lot=lot_id, material=material, mass_g=mass_g, mine=mine, country=country)


def ship(to: str, *items: str) -> Ship:
    """Ship ``items`` to ``to``: an organisation id (made ``org:<id>``) or a holder string."""
    return Ship(items=list(items), to=to if ":" in to else "org:" + to)


def receive(*items: str) -> Receive:
    return Receive(items=list(items))


def P(ref: str, position: str = "") -> InstallItem:
    """A serialized part as an install/remove line."""
    return InstallItem(part=ref, position=position)


def B(ref: str, qty: int = 1, position: str = "") -> InstallItem:
    """Units of a batch as an install/remove line."""
    return InstallItem(batch=ref, qty=qty, position=position)


def _items(items: Iterable[InstallItem | str]) -> list[InstallItem]:
    return [P(i) if isinstance(i, str) else i for i in items]


def install(vin: str, *items: InstallItem | str) -> Install:
    return Install(vin=vin, items=_items(items))


def remove(vin: str, *items: InstallItem | str) -> Remove:
    return Remove(vin=vin, items=_items(items))


def assemble(assembly: str, *components: str) -> Assemble:
    return Assemble(assembly=assembly, components=list(components))


def campaign(number: str, scope: Scope, **kw: Any) -> OpenCampaign:
    fields: dict[str, Any] = dict(number=number, component="test component", summary="may fail",
                                  consequence="risk of a crash", remedy="replace it free of charge", scope=scope)
    fields.update(kw)
    return OpenCampaign(**fields)


# ---------------------------------------------------------------- reading a MemoryLedger


def part(chain: Chain, ref: str) -> Part | None:
    return PARTS.get(chain.ledger, ref)


def batch(chain: Chain, ref: str) -> Batch | None:
    return BATCHES.get(chain.ledger, ref)


def ptype(chain: Chain, pn: str) -> PartType | None:
    return PART_TYPES.get(chain.ledger, pn)


def bom(chain: Chain, vin: str) -> Bom | None:
    return BOMS.get(chain.ledger, vin)


def material_lot(chain: Chain, lot_id: str) -> MaterialLot | None:
    return LOTS.get(chain.ledger, lot_id)


def part_history(chain: Chain, ref: str) -> list[dict[str, Any]]:
    """The decoded history entries of a serialized part, oldest first."""
    rows = sorted((r for r in chain.ledger.index[PART_HISTORY.name].values() if r["part"] == ref),
                  key=lambda r: r["seq"])
    return [msgspec.json.decode(r["entry"]) for r in rows]


def installations(chain: Chain) -> list[dict[str, Any]]:
    return list(chain.ledger.index[INSTALLATIONS.name].values())


# ---------------------------------------------------------------- a supply scenario


def supplied(chain: Chain) -> None:
    """What most rules start from (each step checked):

    - sup owns BRK (serialized, max 400 dC, 5000 mg shock, 80 % humidity), PAD (batch-made),
      PACK (assembly) and CELL (serialized, made in batch C1);
    - cobalt lot L1 (1000 g) registered by sup; PAD batch B1 (10 units, 300 g of L1);
    - BRK:S1..S3 and PAD:B1 shipped to oem and received; BRK:S4 still at sup; BRK:S5 shipped to
      shop and received; PACK:K1 with CELL:C-1..C-3 at sup;
    - logger-sup registered by sup; vehicle V1 (oem) registered.
    """
    ok(chain, SUP, part_type("BRK", max_temp_dc=400, max_shock_mg=5000, max_humidity_pct=80, mass_g=2_500))
    ok(chain, SUP, part_type("PAD", serialized=False))
    ok(chain, SUP, part_type("PACK", assembly=True))
    ok(chain, SUP, part_type("CELL"))
    ok(chain, SUP, lot("L1", 1000))
    ok(chain, SUP, mint_batch("PAD", "B1", 10, ("L1", 300)))
    ok(chain, SUP, mint_batch("CELL", "C1", 3))
    ok(chain, SUP, mint("BRK", "S1", "S2", "S3", "S4", "S5"))
    ok(chain, SUP, mint("PACK", "K1"))
    ok(chain, SUP, mint("CELL", "C-1", "C-2", "C-3", batch="C1"))
    ok(chain, SUP, ship("oem", "BRK:S1", "BRK:S2", "BRK:S3", "PAD:B1"))
    ok(chain, OEM, receive("BRK:S1", "BRK:S2", "BRK:S3", "PAD:B1"))
    ok(chain, SUP, ship("shop", "BRK:S5"))
    ok(chain, SHOP, receive("BRK:S5"))
    ok(chain, SUP, RegisterLogger(logger=LOGGER_SUP.did), LOGGER_SUP)
    ok(chain, OEM, register_msg(V1))


# ---------------------------------------------------------------- a live node


class PartsNode:
    """A node with its HTTP API in this process, on a data folder holding the parts consortium
    (genesis a second ago, so wall-clock expiries hold). Stop it with ``close()``."""

    def __init__(self, tmp: Path) -> None:
        from blokauto.api.server import ApiServer
        from blokauto.node.ordering import NodeConfig
        from blokauto.node.node import Node

        self.genesis = write_chain(tmp / "data", parts_genesis(time=now_ms() - 1000))
        self.node = Node(tmp / "data", config=NodeConfig(block_interval_ms=20), workers=1)
        self.node.start()
        self.server = ApiServer(self.node, "127.0.0.1", 0)
        self.url = self.server.start()
        self.http = signed(self.url, timeout=60)  # the node's key, K("reg-node"): reads everything

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        self.node.stop()

    def __enter__(self) -> "PartsNode":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # writing
    def tx(self, sender: KeyPair, msg: Message, *cosigners: KeyPair) -> bytes:
        return build_tx(sender, msg, *cosigners, chain=self.genesis.chain, expires=now_ms() + 600_000)

    def send(self, sender: KeyPair, msg: Message, *cosigners: KeyPair) -> dict[str, Any]:
        """Submit, wait for the block; returns {id, height, receipt}. A refusal at the door raises."""
        r = self.http.post("/v1/txs", headers=JSON_POST, params={"wait": 30}, content=self.tx(sender, msg, *cosigners))
        assert r.status_code == 200, r.text
        ev = r.json()
        return {"id": ev["id"], "height": ev["height"], "receipt": ev["receipt"]}

    def must(self, sender: KeyPair, msg: Message, *cosigners: KeyPair) -> dict[str, Any]:
        out = self.send(sender, msg, *cosigners)
        assert out["receipt"]["ok"], (type(msg).__name__, out["receipt"])
        return out

    def fails(self, sender: KeyPair, msg: Message, *cosigners: KeyPair) -> str:
        """Send a transaction the ledger must include as failed; returns its error code."""
        out = self.send(sender, msg, *cosigners)
        assert not out["receipt"]["ok"], (type(msg).__name__, out["receipt"])
        return out["receipt"]["code"]

    def all(self, *steps: tuple) -> list[dict[str, Any]]:
        """Many transactions, in this order, in as few blocks as the node cuts; all must pass."""
        raws = [self.tx(*step) for step in steps]
        r = self.http.post("/v1/txs/batch", headers=JSON_POST, content=b"[" + b",".join(raws) + b"]")
        assert r.status_code == 200 and r.json()["accepted"] == len(raws), r.text
        out = []
        for step, res in zip(steps, r.json()["results"]):
            ev = self.http.get(f"/v1/txs/{res['id']}", params={"wait": 30}).json()
            assert ev["receipt"]["ok"], (type(step[1]).__name__, ev["receipt"])
            out.append({"id": ev["id"], "height": ev["height"], "receipt": ev["receipt"]})
        return out

    # reading
    def head(self) -> int:
        return self.http.get("/v1/status").json()["height"]

    def flushed(self) -> int:
        """Wait until queries reflect the newest committed block."""
        h = self.head()
        r = self.http.get("/v1/state/recall/next", params={"min_height": h})
        assert r.status_code == 200 and r.json()["height"] >= h, r.text
        return h

    def q(self, module: str, name: str, **params: Any) -> Any:
        self.flushed()
        r = self.http.get(f"/v1/q/{module}/{name}", params=params)
        assert r.status_code == 200, (module, name, r.status_code, r.text)
        return r.json()["result"]

    def events(self, *, from_height: int | None = None, last_event_id: str | None = None) -> "Sse":
        return Sse(self.url, from_height=from_height, last_event_id=last_event_id)

    # composite reads
    def affected(self, cid: int) -> list[str]:
        return [v["vin"] for v in self.q("recalls", "affected", campaign=cid, limit=10_000)["vehicles"]]

    def progress(self, cid: int) -> dict[str, int]:
        return self.q("recalls", "campaign", id=cid)["progress"]


class Sse:
    """A raw server-sent-event connection; ``take(n)`` reads exactly n events as (id, type, data)."""

    def __init__(self, url: str, *, from_height: int | None = None, last_event_id: str | None = None) -> None:
        self.http = signed(timeout=httpx.Timeout(30, connect=10))  # the node's key: every event
        headers = {"accept": "text/event-stream"}
        if last_event_id is not None:
            headers["last-event-id"] = last_event_id
        params = {"from_height": from_height} if from_height is not None else None
        self.cm = self.http.stream("GET", url + "/v1/events", headers=headers, params=params)
        self.r = self.cm.__enter__()
        self.it = parse_sse(self.r.iter_lines())

    def take(self, n: int) -> list[tuple[str, str, dict[str, Any]]]:
        return [next(self.it) for _ in range(n)]

    def until(self, pred: Any) -> list[tuple[str, str, dict[str, Any]]]:
        """Events up to and including the first one ``pred`` accepts."""
        out = []
        for ev in self.it:
            out.append(ev)
            if pred(ev):
                return out
        raise AssertionError("stream ended")

    def close(self) -> None:
        self.cm.__exit__(None, None, None)
        self.http.close()

    def __enter__(self) -> "Sse":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


