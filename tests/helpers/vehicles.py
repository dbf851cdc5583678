"""Shared set-up for the vehicles tests: a consortium with every role the module knows, WMIs
assigned by the regulator, vehicles registered by their manufacturer, and read helpers over a
MemoryLedger (state records, history rows, an in-memory QueryView for module queries)."""

from __future__ import annotations

from typing import Any, Iterable

import msgspec

from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair
from blokauto.modules.vehicles.messages import AssignWmi, RegisterVehicle
from blokauto.modules.vehicles.spec import BY_HOLDER, HISTORY
from blokauto.modules.vehicles.state import VEHICLES, Vehicle

from conftest import CHAIN, T0, Chain, K

#: Organisation id -> its roles (founding admin keys hold "admin" plus all of these).
ORGS: dict[str, list[str]] = {
    "oem": ["manufacturer"],
    "oem2": ["manufacturer"],
    "dealer": ["dealer"],
    "shop": ["workshop"],
    "ins": ["insurer"],
    "bank": ["lender"],
    "reg": ["regulator", "police", "inspector"],
    "scrap": ["recycler"],
    "fleet": ["fleet"],
}

#: Manufacturer codes the regulator assigns in ``vehicles_chain`` (none contains I, O or Q).
WMI = {"oem": "WVW", "oem2": "VF1"}


def admin(org: str) -> KeyPair:
    """The founding admin key of ``org`` (it holds every role of the organisation)."""
    return K(f"{org}-admin")


def vehicles_genesis(extra: Iterable[tuple[str, list[str]]] = ()) -> Genesis:
    """Every role the vehicles module knows, one organisation each; ``extra`` adds (id, roles)."""
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in [*ORGS.items(), *extra]]
    return Genesis(chain=CHAIN, time=T0, organisations=orgs, quorum=1)


def vin_for(wmi: str, n: int = 1) -> str:
    """A valid non-North-American VIN under ``wmi`` (no check digit needed there)."""
    vin = f"{wmi}ZZZ1JZ{n:08d}"
    assert len(vin) == 17
    return vin


def register_msg(vin: str, **kw: Any) -> RegisterVehicle:
    fields: dict[str, Any] = dict(vin=vin, make="Test", model="Model T", model_year=2027, body="sedan",
                                  powertrain="bev", plant="Plant 1", build_date="2027-01-15", country="DE")
    fields.update(kw)
    return RegisterVehicle(**fields)


def assign_wmi(chain: Chain, wmi: str, org: str) -> None:
    r = chain.run(admin("reg"), AssignWmi(wmi=wmi, org=org))
    assert r.ok, r


def register(chain: Chain, vin: str, maker: str = "oem", **kw: Any) -> Vehicle:
    """Register ``vin`` as ``maker`` (its WMI must be assigned to it) and return the record."""
    r = chain.run(admin(maker), register_msg(vin, **kw))
    assert r.ok, r
    v = vehicle(chain, vin)
    assert v is not None
    return v


def vehicles_chain(extra: Iterable[tuple[str, list[str]]] = ()) -> Chain:
    """A fresh consortium with oem's and oem2's WMIs assigned and no vehicle yet."""
    chain = Chain(vehicles_genesis(extra))
    for org, wmi in WMI.items():
        assign_wmi(chain, wmi, org)
    return chain


# ---------------------------------------------------------------- reading a MemoryLedger


def vehicle(chain: Chain, vin: str) -> Vehicle | None:
    return VEHICLES.get(chain.ledger, vin)


def history_rows(chain: Chain, vin: str) -> list[dict[str, Any]]:
    """The derived history rows of ``vin`` in sequence order."""
    rows = [r for r in chain.ledger.index[HISTORY.name].values() if r["vin"] == vin]
    return sorted(rows, key=lambda r: r["seq"])


def history(chain: Chain, vin: str) -> list[dict[str, Any]]:
    """The decoded history entries of ``vin``, oldest first."""
    return [msgspec.json.decode(r["entry"]) for r in history_rows(chain, vin)]


def holders(chain: Chain) -> dict[str, list[str]]:
    """vin -> the holders the by_holder index lists it under."""
    out: dict[str, list[str]] = {}
    for row in chain.ledger.index[BY_HOLDER.name].values():
        out.setdefault(row["vin"], []).append(row["holder"])
    return out


def snapshot(chain: Chain) -> tuple[dict, dict, str]:
    """Everything a transaction may change: state, index rows and the state root."""
    index = {name: {k: dict(v) for k, v in rows.items()} for name, rows in chain.ledger.index.items()}
    return dict(chain.ledger.state), index, chain.root


def event_types(receipt: Any) -> list[str]:
    return [e["type"] for e in receipt.events]


class MemoryView:
    """A ``QueryView`` over a MemoryLedger, to run module queries without a node."""

    def __init__(self, chain: Chain) -> None:
        self.ledger = chain.ledger
        self.height = chain.ledger.head.height

    def get(self, key: bytes) -> bytes | None:
        return self.ledger.get(key)

    def _match(self, table: Any, where: dict[str, Any]) -> list[dict[str, Any]]:
        return [r for r in self.ledger.index[table.name].values() if all(r[k] == v for k, v in where.items())]

    def rows(self, table: Any, where: dict[str, Any], *, order: tuple[str, ...] = (), limit: int = 100,
             offset: int = 0, descending: bool = False) -> list[dict[str, Any]]:
        rows = sorted(self._match(table, where), key=lambda r: tuple(r[c] for c in order), reverse=descending)
        return rows[offset:offset + limit]

    def count(self, table: Any, where: dict[str, Any]) -> int:
        return len(self._match(table, where))
