"""A consortium for energy tests on a MemoryLedger: a grid operator (``grid``) with zone ``Z1``, a
meter operator (``meterco``, role energy), a charge-point operator (``chargeco``), an e-money issuer
(``emi``) with EUR; Alice's house (solar, meter ``house-a``), Bob's charge point (``cp-b``), Carol's
bidirectional charger (``v2g-c``), each with its own device key and power (20, 22 and 11 kW: 5,000,
5,500 and 2,750 Wh an interval, the most a meter's open orders per side and its reading in and out
together may come to), each owner funded.

Also: a world on a genesis with chain parameters of its own and meters of other power
(``world(params, power)``), a copy of a chain to play one case on (``fork``), the same blocks
replayed on a fresh ledger (``replay``), an interval's clock (``gate``, ``end``, ``settles``, and
``terms_start``, ``terms_deadline`` for the terms' notice), readers of the ledger, and the callers the
node's reader would see (``caller_of``) for the read policies."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from blokauto.core.access import ANONYMOUS, Caller, VehicleRelations
from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair
from blokauto.modules.energy.messages import OpenZone, RegisterMeter
from blokauto.modules.energy.state import BOOKS, ORDERS, POSITIONS, READINGS, Terms
from blokauto.modules.governance.doors import GovernanceReader
from blokauto.modules.payments.messages import AttestReserves, Issue, RegisterCurrency
from blokauto.modules.payments.state import ACCOUNTS, CURRENCIES, HELD

from conftest import CHAIN, T0, Chain, K, build_tx
from helpers.insurance import now, ok, send  # noqa: F401  (one block per transaction, as the insurance tests send them)
from helpers.vehicles import ORGS, MemoryView, admin, snapshot  # noqa: F401  (snapshot: for the test files)

ENERGY_ORGS: dict[str, list[str]] = {"grid": ["grid"], "grid2": ["grid"], "meterco": ["energy"],
                                     "chargeco": ["charging"], "emi": ["issuer"]}
ALL_ORGS = {**ORGS, **ENERGY_ORGS}
GRID, GRID2, METERCO, CHARGECO, EMI = (admin(o) for o in ("grid", "grid2", "meterco", "chargeco", "emi"))
ALICE, BOB, CAROL, DAVE = K("en-alice"), K("en-bob"), K("en-carol"), K("en-dave")
HOUSE_KEY, CP_KEY, V2G_KEY = K("en-meter-house"), K("en-meter-cp"), K("en-meter-v2g")
INTERVAL = 900_000
GATE = 300_000
WINDOW = 3_600_000
NOTICE = 3_600_000  # energy_terms_notice_ms by default
#: Zone Z1's terms: the grid sells up to 50 kWh an interval at 30 c/kWh and buys up to 20 kWh at 8 c;
#: short 40 c, long 5 c.
TERMS = Terms(import_wh=50_000, export_wh=20_000, import_price=30, export_price=8, short_price=40, long_price=5)
#: Each meter's device key, owner and most power (W), and the most Wh it moves in one interval (max
#: power x 15 minutes): what its open orders per side add up to at most, its reading in and out together
#: at most, and what it counts as having imported when it traded and did not read.
METER_KEYS = {"house-a": HOUSE_KEY, "cp-b": CP_KEY, "v2g-c": V2G_KEY}
OWNERS = {"house-a": ALICE, "cp-b": BOB, "v2g-c": CAROL}
POWER_W = {"house-a": 20_000, "cp-b": 22_000, "v2g-c": 11_000}
LIMIT_WH = {m: w * INTERVAL // 3_600_000 for m, w in POWER_W.items()}
assert LIMIT_WH == {"house-a": 5_000, "cp-b": 5_500, "v2g-c": 2_750}
START = {ALICE.did: 100_000, BOB.did: 100_000, CAROL.did: 100_000, DAVE.did: 100_000, "org:grid": 1_000_000}


def genesis(params: dict[str, int] | None = None) -> Genesis:
    """The consortium; ``params``: chain parameters of its own (``energy_book_max_orders`` lowered...)."""
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in ALL_ORGS.items()]
    return Genesis(chain=CHAIN, time=T0, organisations=orgs, quorum=1, params=dict(params or {}))


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


def world(params: dict[str, int] | None = None, power: dict[str, int] | None = None) -> Chain:
    """The world on a genesis with chain parameters ``params`` (the defaults without), its meters of
    ``power`` W (meter -> W; ``POWER_W`` for the others)."""
    watts = {**POWER_W, **(power or {})}
    chain = Chain(genesis(params))
    chain.nonces = itertools.count(1)
    ok(chain, EMI, RegisterCurrency(currency="EUR", exponent=2))
    ok(chain, EMI, AttestReserves(currency="EUR", reserves=10_000_000, evidence="ab" * 32))
    for owner, amount in START.items():
        ok(chain, EMI, Issue(currency="EUR", to=owner, amount=amount))
    ok(chain, GRID, OpenZone(zone="Z1", currency="EUR", interval_ms=INTERVAL, gate_closure_ms=GATE,
                             reading_window_ms=WINDOW, terms=TERMS))
    ok(chain, METERCO, RegisterMeter(meter="house-a", zone="Z1", kind="home", key=HOUSE_KEY.did, owner=ALICE.did,
                                     max_power_w=watts["house-a"]))
    ok(chain, CHARGECO, RegisterMeter(meter="cp-b", zone="Z1", kind="charge_point", key=CP_KEY.did, owner=BOB.did,
                                      max_power_w=watts["cp-b"]))
    ok(chain, METERCO, RegisterMeter(meter="v2g-c", zone="Z1", kind="v2g_charger", key=V2G_KEY.did, owner=CAROL.did,
                                     max_power_w=watts["v2g-c"]))
    return chain


def tx(chain: Chain, sender: KeyPair, msg: Any, at: int, *cosigners: KeyPair) -> bytes:
    """The bytes of a transaction for a block at ``at`` (to send it, or send it again)."""
    return build_tx(sender, msg, *cosigners, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")


_copies = itertools.count(1)


def fork(src: Chain) -> Chain:
    """A copy of ``src`` (state, tree, index rows, headers) to play one case on."""
    chain = Chain.__new__(Chain)
    chain.genesis, chain.registry = src.genesis, src.registry
    ledger = chain.ledger = copy.copy(src.ledger)
    ledger.state, ledger.nodes, ledger.tx_index = dict(ledger.state), dict(ledger.nodes), dict(ledger.tx_index)
    ledger.index = {name: dict(rows) for name, rows in ledger.index.items()}
    ledger.index_heights = {name: dict(rows) for name, rows in ledger.index_heights.items()}
    ledger.headers, ledger.blocks, ledger.window = list(ledger.headers), list(ledger.blocks), ledger.window.copy()
    chain.nonces = itertools.count(1_000_000 * next(_copies))
    return chain


def replay(src: Chain) -> Chain:
    """A fresh MemoryLedger fed ``src``'s blocks again (the same transactions at the same block times)."""
    chain = Chain(src.genesis)
    for block in src.ledger.blocks[1:]:
        chain.block(*block.txs, time=block.header.time)
    return chain


# ---------------------------------------------------------------- an interval's clock (zone Z1)


def gate(start: int) -> int:
    """The block time from which interval ``start`` takes no orders nor cancellations (and clears)."""
    return start - GATE


def end(start: int) -> int:
    return start + INTERVAL


def settles(start: int) -> int:
    """The block time from which interval ``start`` settles with readings missing (and takes none)."""
    return start + INTERVAL + WINDOW


def terms_deadline(start: int, notice: int = NOTICE) -> int:
    """The last block time at which terms for interval ``start`` are taken: block time + notice must be
    before its gate closes."""
    return gate(start) - notice - 1


def terms_start(chain: Chain, notice: int = NOTICE, slack: int = 60_000) -> int:
    """The first interval whose terms are still taken ``slack`` ms after the head (set-ups after it
    may add a few blocks of 1 ms each)."""
    t = now(chain) + slack
    return ((t + notice + GATE) // INTERVAL + 1) * INTERVAL


# ---------------------------------------------------------------- reading the ledger


def order(chain: Chain, start: int, seq: int, zone: str = "Z1") -> Any:
    return ORDERS.get(chain.ledger, zone, start, seq)


def reading(chain: Chain, meter: str, start: int) -> Any:
    return READINGS.get(chain.ledger, meter, start)


def position(chain: Chain, meter: str, start: int, zone: str = "Z1") -> Any:
    return POSITIONS.get(chain.ledger, zone, start, meter)


def supply(chain: Chain, currency: str = "EUR") -> int:
    return CURRENCIES.get(chain.ledger, currency).supply


def accounts(chain: Chain, currency: str = "EUR") -> dict[str, int]:
    """Every account holding ``currency`` (owner -> minor units; an empty account is absent)."""
    prefix = f"{ACCOUNTS.prefix}{currency}/".encode()
    return {k[len(prefix):].decode(): ACCOUNTS.decode(v) for k, v in chain.ledger.state.items()
            if k.startswith(prefix)}


class EnergyView(MemoryView):
    """A ``QueryView`` over a MemoryLedger at its newest block, reaching the modules' doors."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.need = chain.registry.provider
        self.time = chain.ledger.head.time


def query(chain: Chain, name: str, params: Any) -> Any:
    """What the energy query ``name`` answers at the newest block."""
    return chain.registry.queries[("energy", name)].func(EnergyView(chain), params)


def caller_of(chain: Chain, key: KeyPair | None) -> Caller:
    """Who ``key`` is to the node's reader at the newest block (as ``node.reader.Reader.caller``
    judges it): a node key, a member key (a revoked one: unknown, with its status), or another key
    (known if it holds a vehicle); None: an unsigned request."""
    if key is None:
        return ANONYMOUS
    view, did = EnergyView(chain), key.did
    consensus = chain.registry.provider(GovernanceReader).consensus(view)
    if consensus is not None and did in consensus.nodes:
        return Caller(did, consensus.nodes[did], frozenset(), node=True)
    info = chain.registry.directory.signer(view, did)
    if info is not None:
        if not info.active:
            return Caller(did, info.org, frozenset(), known=False, status=f"{info.status}:{info.since}")
        return Caller(did, info.org, frozenset(info.roles))
    return Caller(did, known=chain.registry.provider(VehicleRelations).holds_any(view, did))


def remove_org(chain: Chain, org: str) -> None:
    """The consortium removes organisation ``org`` (a proposal every other organisation votes for
    until it passes)."""
    from blokauto.modules.governance.messages import Propose, Vote
    from blokauto.modules.governance.state import NEXT_PROPOSAL, ORGS as GOV_ORGS, RemoveOrganisation

    voters = [o for o in ALL_ORGS if o != org]
    pid = NEXT_PROPOSAL.get(chain.ledger)
    ok(chain, admin(voters[0]), Propose(action=RemoveOrganisation(id=org)))
    for voter in voters[1:]:
        if GOV_ORGS.get(chain.ledger, org).status == "removed":
            break
        ok(chain, admin(voter), Vote(proposal=pid, approve=True))
    assert GOV_ORGS.get(chain.ledger, org).status == "removed"
