"""A consortium for energy tests on a MemoryLedger: a grid operator (``grid``) with zone ``Z1``, a
meter operator (``meterco``, role energy), a charge-point operator (``chargeco``), an e-money issuer
(``emi``) with EUR; Alice's house (solar, meter ``house-a``), Bob's charge point (``cp-b``), Carol's
bidirectional charger (``v2g-c``), each with its own device key, each owner funded."""

from __future__ import annotations

import itertools
from typing import Any

from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair
from blokauto.modules.energy.messages import OpenZone, RegisterMeter
from blokauto.modules.energy.state import BOOKS, Terms
from blokauto.modules.payments.messages import AttestReserves, Issue, RegisterCurrency
from blokauto.modules.payments.state import ACCOUNTS, HELD

from conftest import CHAIN, T0, Chain, K, build_tx
from helpers.vehicles import ORGS, admin

ENERGY_ORGS: dict[str, list[str]] = {"grid": ["grid"], "grid2": ["grid"], "meterco": ["energy"],
                                     "chargeco": ["charging"], "emi": ["issuer"]}
ALL_ORGS = {**ORGS, **ENERGY_ORGS}
GRID, GRID2, METERCO, CHARGECO, EMI = (admin(o) for o in ("grid", "grid2", "meterco", "chargeco", "emi"))
ALICE, BOB, CAROL, DAVE = K("en-alice"), K("en-bob"), K("en-carol"), K("en-dave")
HOUSE_KEY, CP_KEY, V2G_KEY = K("en-meter-house"), K("en-meter-cp"), K("en-meter-v2g")
INTERVAL = 900_000
GATE = 300_000
WINDOW = 3_600_000
#: Zone Z1's terms: the grid sells up to 50 kWh an interval at 30 c/kWh and buys up to 20 kWh at 8 c;
#: short 40 c, long 5 c.
TERMS = Terms(import_wh=50_000, export_wh=20_000, import_price=30, export_price=8, short_price=40, long_price=5)
START = {ALICE.did: 100_000, BOB.did: 100_000, CAROL.did: 100_000, DAVE.did: 100_000, "org:grid": 1_000_000}


def genesis() -> Genesis:
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in ALL_ORGS.items()]
    return Genesis(chain=CHAIN, time=T0, organisations=orgs, quorum=1)


def now(chain: Chain) -> int:
    return chain.ledger.head.time


def send(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    """One transaction in its own block at block time ``at`` (default: 1 ms after the last)."""
    t = now(chain) + 1 if at is None else at
    raw = build_tx(sender, msg, *cosigners, expires=t + 600_000, nonce=f"{next(chain.nonces):032x}")
    return chain.block(raw, time=t).receipts[0]


def ok(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    r = send(chain, sender, msg, *cosigners, at=at)
    assert r.ok, r
    return r


def bal(chain: Chain, owner: str | KeyPair, currency: str = "EUR") -> int:
    owner = owner.did if isinstance(owner, KeyPair) else owner
    return ACCOUNTS.get(chain.ledger, currency, owner) or 0


def held(chain: Chain, currency: str = "EUR") -> int:
    return HELD.get(chain.ledger, currency, "energy") or 0


def book(chain: Chain, start: int, zone: str = "Z1") -> Any:
    return BOOKS.get(chain.ledger, zone, start)


def next_start(chain: Chain) -> int:
    """The first interval whose gate is open 1 ms after the head."""
    t = now(chain) + 1
    return ((t + GATE) // INTERVAL + 1) * INTERVAL


def world() -> Chain:
    chain = Chain(genesis())
    chain.nonces = itertools.count(1)
    ok(chain, EMI, RegisterCurrency(currency="EUR", exponent=2))
    ok(chain, EMI, AttestReserves(currency="EUR", reserves=10_000_000, evidence="ab" * 32))
    for owner, amount in START.items():
        ok(chain, EMI, Issue(currency="EUR", to=owner, amount=amount))
    ok(chain, GRID, OpenZone(zone="Z1", currency="EUR", interval_ms=INTERVAL, gate_closure_ms=GATE,
                             reading_window_ms=WINDOW, terms=TERMS))
    ok(chain, METERCO, RegisterMeter(meter="house-a", zone="Z1", kind="home", key=HOUSE_KEY.did, owner=ALICE.did,
                                     max_power_w=20_000))
    ok(chain, CHARGECO, RegisterMeter(meter="cp-b", zone="Z1", kind="charge_point", key=CP_KEY.did, owner=BOB.did,
                                      max_power_w=22_000))
    ok(chain, METERCO, RegisterMeter(meter="v2g-c", zone="Z1", kind="v2g_charger", key=V2G_KEY.did, owner=CAROL.did,
                                     max_power_w=11_000))
    return chain
