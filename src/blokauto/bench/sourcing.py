"""``blokauto bench sourcing``: a battery pack's material origins and the logistics queries (slowest
legs, lanes, stock in transit) at scale, each against its raw limit measured in the same run.

Two data sets, cached under ``~/.cache/blokauto/bench`` (``--cache``) and rebuilt only when their
parameters change (or with ``--fresh``). Each is built by feeding signed transactions (signed in a
process pool) into the node's own engine in this process: ``BlockCommitter``, real execution, real
fsynced blocks, the state writer in its own process. Blocks carry explicit times from a simulated
clock (the chain's genesis is set weeks or months in the past, every block time stays before the
wall clock), so handoffs can declare when they happened (``at``) and a sea leg can take weeks.

``sourcing-lots-<N>``, about N material lots from mines to packs (a chain of its own):

- three raw materials (cobalt, nickel, lithium) mined at 230 mines in 12 countries, each ore lot
  registered by its mining company and attested by an auditor (``attestation_required`` is 1 for
  the three raw materials, so every consumption checks the attestation), then split in two;
- the cobalt goes ore -> concentrate (8 ore portions a run, 4 lots out) -> blends (merges of 3
  concentrate lots of different runs) -> refined (2 blends, 4 lots out) -> sulfate (2 refined lots,
  3 out) -> precursor (with a nickel sulfate lot, 2 out) -> cathode (with a portion of a lithium
  hydroxide lot, 2 out) -> a cell batch (960 cells, 2 cathode lots) -> a pack of 96 cells, 48 from
  each of two batches: six transformation steps after the mine (five lot steps and the cell batch).
  Nickel and lithium take shorter routes (concentrate, refined, sulfate; concentrate, hydroxide).
  Every custody change between the companies is a shipment and a receipt of the lots.
  A cathode lot carries up to 144 origins (the module's limit is 256), a pack up to 576.

``sourcing-handoffs-<M>``, M handoffs (shipments and receipts, each counted per item; the rows made
when an item enters the ledger come on top), a chain of its own: 12 suppliers (half overseas), 4
forwarders, 3 automakers. Consignments of serialized parts (5-40), batches (1-6) or material lots
(1-3), skewed towards the first suppliers and part numbers, travel together along a route: direct
or through a hub by truck for the European suppliers, by sea (18-40 days, some through a
transshipment port) for the others, 5 % of legs delayed 1.5-4 times, each stay 2 hours to 4
days, 10 % of receipts recorded up to 3 days late (with their real ``at``). Consignments that
started late are still on their way at the end (in transit).

A run works on a copy of each data set (the origin phase commits a block before each cold sample)
with a real node process (``blokauto node start``); requests are signed with the chain's node key
(it reads everything, so no read policy is evaluated), in the bench process, inside the timings.

- ``origin_ms``: ``GET /v1/q/parts/origin?id=<pack>`` over ``--samples`` different packs spread
  over all packs, each after a block of its own (a part type registered): the node proves every
  state value a query reads against the state root, and keeps values proven under one root for the
  next queries; on a live chain blocks keep coming, so each answer is proven afresh, as here.
  ``origin_warm_ms``: the same packs one after the other under one root (values shared between
  packs, e.g. the mines' lots, proven once).
- Then, in this process on the node's data once it stopped: ``origin_query_ms`` (the node's own
  query path, ``ChainReader.query``, proven-value cache emptied before each), ``origin_unverified_ms``
  (``origins_of`` and ``describe`` on an unproven snapshot), ``origin_sql_ms`` (the SQLite
  statements the proven query ran, captured with ``set_trace_callback`` and replayed alone), and
  ``mix_ms`` (``origins.mix`` alone on the same inputs: each directly consumed lot's weight and
  carried origins, checked to give the query's origins).
- ``legs_ms``: ``GET /v1/q/parts/legs`` (the default page, 20 slowest legs) rotating over the 10
  part numbers with the most legs (``legs_part_number_ms``) and every supplier
  (``legs_supplier_ms``); the same for ``parts/lanes`` (``lanes_ms``) and ``parts/in_transit``
  (``in_transit_ms``); after one untimed pass over the targets. In-process once the node stopped:
  ``*_query_ms`` (``ChainReader.query``) and ``*_sql_ms`` (the query's SQLite statements alone: the
  index scan).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec

from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import Message, make_body, sign
from ..keystore import KeyStore
from ..modules.parts import messages as pm
from .dataset import db_bytes, default_cache
from .harness import NodeProcess, node_key, ordered_pool_map, percentile, signed_client

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
TTL_MS = 50 * MINUTE  # a transaction's expiry after its block's time (the chain allows an hour)
BLOCK_TXS = 2_000
FORMAT = 1
#: The targets of issue 20 (ms).
TARGETS = {"origin_ms": 50, "legs_ms": 200}


def _nonce(label: str) -> str:
    return hashlib.sha256(b"blokauto/bench/sourcing/" + label.encode()).hexdigest()[:32]


def _date(t: int) -> str:
    return datetime.fromtimestamp(t / 1000, timezone.utc).strftime("%Y-%m-%d")


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (the signing pool, the state writer)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _pct(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 0.5), 2), "p95": round(percentile(values, 0.95), 2),
            "p99": round(percentile(values, 0.99), 2)}


@contextmanager
def _progress(label: str, bar: str) -> Iterator[Callable[[int, int], None]]:
    """The phase named on stderr, and a rich progress bar labelled ``bar`` there (on a terminal)."""
    from ..cli.progress import progress_bar

    print(label, file=sys.stderr, flush=True)
    with progress_bar(bar) as advance:
        yield advance


# ---------------------------------------------------------------- signing and building

#: A planned block: its time and its transactions, each (signer's key name, message, nonce label).
Block = tuple[int, list[tuple[str, Message, str]]]

_pool: dict[str, Any] = {}


def _init_pool(chain: str, seeds: dict[str, bytes]) -> None:
    _pool.update(chain=chain, keys={name: KeyPair(seed) for name, seed in seeds.items()})


def _sign_block(block: Block) -> list[bytes]:
    t, items = block
    chain, keys = _pool["chain"], _pool["keys"]
    return [canonical(sign(make_body(chain, keys[who].did, msg, nonce=_nonce(label), expires=t + TTL_MS), keys[who]))
            for who, msg, label in items]


def _reuse(path: Path, params: dict[str, Any], fresh: bool) -> dict[str, Any] | None:
    marker = path / "dataset.json"
    if fresh or not marker.exists():
        return None
    info = msgspec.json.decode(marker.read_bytes())
    return info if info.get("params") == params else None


def _build(path: Path, *, chain: str, orgs: list[str], params: dict[str, int], genesis_time: int,
           blocks: list[Block], info: dict[str, Any], what: str) -> dict[str, Any]:
    """Commit ``blocks`` into a new chain at ``path`` (built beside it, then moved in place)."""
    from ..core.crypto import TAG_TX_ID, tagged_hash
    from ..core.tx import CheckedTx
    from ..modules import default_registry
    from ..node.committer import BlockCommitter
    from ..node.init import OrgSpec, init_chain
    from ..node.node import find_node_key

    work = path.with_name(path.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    genesis = init_chain(work, chain=chain, orgs=[OrgSpec.parse(o) for o in orgs], quorum=1, node_orgs=1,
                         params=params, genesis_time=genesis_time)
    store = KeyStore(work / "keys")
    seeds = {f"{o.split(':')[0]}-admin": store.load(f"{o.split(':')[0]}-admin").seed for o in orgs}
    registry = default_registry()
    codec = registry.codec
    committer = BlockCommitter(work, registry, find_node_key(work, genesis), genesis=genesis, state_writer_process=True)
    total = sum(len(items) for _, items in blocks)
    done = 0
    t0, cpu0 = time.perf_counter(), _cpu_s()
    try:
        committer.recover()
        label = f"building the {what} data set: {total:,} transactions in {len(blocks):,} blocks"
        with _progress(label, f"building {what}") as advance:
            signed = ordered_pool_map(_sign_block, blocks, initializer=_init_pool, initargs=(chain, seeds))
            for (t, _), raws in zip(blocks, signed):
                batch = []
                for raw in raws:
                    tx = codec.decode(raw)
                    batch.append(CheckedTx(tx, tagged_hash(TAG_TX_ID, canonical(tx.body)), raw))
                bad = [r for r in committer.produce(batch, time=t).receipts if not r.ok]
                if bad:
                    raise RuntimeError(f"the {what} data set's transactions were refused ({len(bad)} in the block at "
                                       f"{t}): {[f'{r.code}: {r.detail}' for r in bad[:3]]}")
                done += len(batch)
                advance(done, total)
        committer.state.flush()
        height = committer.head.height if committer.head else -1
    finally:
        committer.close()
    build_s, cpu_s = time.perf_counter() - t0, _cpu_s() - cpu0
    info = {**info, "txs": total, "blocks": len(blocks), "height": height, "build_s": round(build_s, 1),
            "build_tx_per_s": round(total / build_s), "build_cpu_s": round(cpu_s, 1), "bytes": db_bytes(work),
            "built_ms": time.time_ns() // 1_000_000}
    print(f"built the {what} data set: {total:,} transactions in {build_s:,.1f} s ({total / build_s:,.0f} tx/s), "
          f"{info['bytes'] / 2**20:,.0f} MiB", file=sys.stderr, flush=True)
    (work / "dataset.json").write_bytes(msgspec.json.encode(info))
    shutil.rmtree(path, ignore_errors=True)
    work.rename(path)
    return info


# ---------------------------------------------------------------- the lots data set

LOT_ORGS = [
    "sourcing-registry:regulator:Sourcing Registry",
    "katanga-mining:supplier:Katanga Mining",
    "pacific-mining:supplier:Pacific Mining",
    "andes-lithium:supplier:Andes Lithium",
    "rmi-audit:auditor:RMI Assessments",
    "kolwezi-concentrators:supplier:Kolwezi Concentrators",
    "coastal-refining:supplier:Coastal Refining",
    "precursor-works:supplier:Precursor Works",
    "cathode-works:supplier:Cathode Works",
    "volt-cells:supplier:Volt Cells",
]
MINES = {  # raw material -> (country, mines there)
    "cobalt": [("CD", 60), ("ID", 20), ("AU", 10), ("PH", 8), ("CU", 5), ("MG", 4), ("CA", 3)],
    "nickel": [("ID", 40), ("PH", 15), ("RU", 8), ("CA", 7), ("AU", 5), ("NC", 5)],
    "lithium": [("AU", 20), ("CL", 10), ("AR", 5), ("CN", 5)],
}
SITES = {"kolwezi-concentrators": "CDKWZ", "coastal-refining": "FIKOK", "precursor-works": "KRUSN",
         "cathode-works": "KRKPO", "volt-cells": "HUDEB"}
CELL, PACK = "VC-CELL-21700", "VC-PACK-96"
CELLS_PER_BATCH, CELLS_PER_PACK = 960, 96
PACKS_PER_PAIR = CELLS_PER_BATCH // (CELLS_PER_PACK // 2)  # packs sharing one pair of cell batches (20)
LOTS_PER_UNIT = 164  # lots the plan makes per unit of scale (see ``_LotsPlan``)


def _admin(org: str) -> str:
    return f"{org}-admin"


def _miner(material: str, country: str) -> str:
    if material == "lithium":
        return "andes-lithium"
    return "katanga-mining" if country == "CD" else "pacific-mining"


def _geo(rng: random.Random) -> str:
    return f"geo:{rng.uniform(-45, 60):.2f},{rng.uniform(-170, 170):.2f}"


class _LotsPlan:
    """The lots data set's blocks: stages one after another on the simulated clock, each stage's
    transactions in blocks of ``BLOCK_TXS`` 10 minutes apart, two days between stages."""

    def __init__(self, lots: int, genesis_time: int, seed: int = 20) -> None:
        self.rng = random.Random(seed)
        self.u = max(2, round(lots / LOTS_PER_UNIT))
        self.t = genesis_time + HOUR
        self.blocks: list[Block] = []
        self.mass: dict[str, int] = {}  # lot -> grams left
        self.material: dict[str, str] = {}
        self.stats: dict[str, int] = {"ore_lots": 0, "split_lots": 0, "merged_lots": 0, "transformed_lots": 0,
                                      "lot_shipments": 0}
        self.max_origins = 0
        self._origins: dict[str, frozenset[str]] = {}  # lot -> its origin lots (to check the module's limit)
        self.make()

    # -- helpers

    def stage(self, items: list[tuple[str, Message, str]]) -> None:
        for chunk in _chunks(items, BLOCK_TXS):
            self.blocks.append((self.t, chunk))
            self.t += 10 * MINUTE
        self.t += 2 * DAY

    def new_lot(self, lot: str, material: str, mass: int, origins: frozenset[str]) -> None:
        self.mass[lot], self.material[lot] = mass, material
        self._origins[lot] = origins
        self.max_origins = max(self.max_origins, len(origins))

    def take(self, lot: str, mass: int | None = None) -> pm.LotPortion:
        left = self.mass[lot]
        mass = left if mass is None else min(mass, left)
        assert mass >= 1, lot
        self.mass[lot] = left - mass
        return pm.LotPortion(lot=lot, mass_g=mass)

    def transform(self, org: str, inputs: list[pm.LotPortion], outs: list[str], material: str, process: str,
                  yield_ppm: int) -> tuple[str, Message, str]:
        total = sum(p.mass_g for p in inputs) * yield_ppm // 1_000_000
        each = total // len(outs)
        origins = frozenset().union(*(self._origins[p.lot] for p in inputs))
        for lot in outs:
            self.new_lot(lot, material, each, origins)
        self.stats["transformed_lots"] += len(outs)
        return (_admin(org), pm.TransformLots(inputs=inputs, outputs=[pm.LotOutput(lot=lot, material=material,
                                                                                   mass_g=each) for lot in outs],
                                              process=process, yield_ppm=yield_ppm, location=SITES[org]),
                f"transform/{outs[0]}")

    def ship(self, sender: str, receiver: str, lots: list[str]) -> None:
        self.stats["lot_shipments"] += len(lots)
        where = SITES.get(sender, "")
        self.stage([(_admin(sender), pm.Ship(to=f"org:{receiver}", lots=chunk, location=where),
                     f"ship/{sender}/{receiver}/{chunk[0]}") for chunk in _chunks(lots, 1000)])
        self.stage([(_admin(receiver), pm.Receive(lots=chunk, location=SITES[receiver]),
                     f"receive/{receiver}/{chunk[0]}") for chunk in _chunks(lots, 1000)])

    def groups(self, lots: list[str], size: int, by_run: int) -> list[list[str]]:
        """``lots`` (outputs of runs of ``by_run`` lots each, in run order) in groups of ``size`` whose
        lots come from different runs where they can: each output position in turn, shuffled."""
        ordered: list[str] = []
        for k in range(by_run):
            column = lots[k::by_run]
            self.rng.shuffle(column)
            ordered += column
        return [g for g in _chunks(ordered, size) if len(g) == size]

    # -- the stages

    def make(self) -> None:
        rng, u = self.rng, self.u
        ores: dict[str, list[str]] = {}
        country_of: dict[str, str] = {}
        register, attest, split = [], [], []
        counts = {"cobalt": 8 * u, "nickel": 8 * u, "lithium": 4 * u}
        for material, n in counts.items():
            mines = [(country, f"{country} {material} mine {i:03d}", _geo(rng))
                     for country, k in MINES[material] for i in range(k)]
            ores[material] = []
            for j in range(n):
                country, mine, where = mines[j % len(mines)] if j < len(mines) else rng.choice(mines)
                lot = f"{material[:2].upper()}-ORE-{j:06d}"
                mass = rng.randrange(80_000_000, 150_000_001)
                org = _miner(material, country)
                register.append((_admin(org), pm.RegisterLot(lot=lot, material=material, mass_g=mass, mine=mine,
                                                             country=country, location=where), f"register/{lot}"))
                self.new_lot(lot, material, mass, frozenset([lot]))
                country_of[lot] = country
                ores[material].append(lot)
                self.stats["ore_lots"] += 1
        self.stage(register)
        for material, lots in ores.items():
            for j, lot in enumerate(lots):
                attest.append((_admin("rmi-audit"), pm.AttestLot(lot=lot, standard="RMI RMAP", result="conformant",
                                                                report=f"RMAP-{material[:2].upper()}-{j:06d}",
                                                                valid_until=self.t + 365 * DAY), f"attest/{lot}"))
        self.stage(attest)
        splits: dict[str, list[str]] = {m: [] for m in ores}
        by_miner: dict[str, list[str]] = {}
        for material, lots in ores.items():
            for lot in lots:
                half = self.mass[lot] // 2
                into = [pm.LotPortion(lot=f"{lot}-S1", mass_g=half), pm.LotPortion(lot=f"{lot}-S2",
                                                                                   mass_g=self.mass[lot] - half)]
                self.mass[lot] = 0
                for p in into:
                    self.new_lot(p.lot, material, p.mass_g, self._origins[lot])
                    splits[material].append(p.lot)
                    self.stats["split_lots"] += 1
                miner = _miner(material, country_of[lot])
                split.append((_admin(miner), pm.SplitLot(lot=lot, into=into), f"split/{lot}"))
                by_miner.setdefault(miner, []).extend(p.lot for p in into)
        self.stage(split)
        for miner, lots in by_miner.items():
            self.ship(miner, "kolwezi-concentrators", lots)

        # concentrate: 8 split portions (of different ore lots where they can) a run, 4 lots out
        conc: dict[str, list[str]] = {}
        runs = []
        yields = {"cobalt": 150_000, "nickel": 200_000, "lithium": 150_000}
        names = {"cobalt": "cobalt_concentrate", "nickel": "nickel_concentrate", "lithium": "spodumene_concentrate"}
        for material, lots in splits.items():
            conc[material] = []
            for r, group in enumerate(self.groups(lots, 8, 2)):
                outs = [f"{material[:2].upper()}-CON-{r:06d}-{k}" for k in range(4)]
                runs.append(self.transform("kolwezi-concentrators", [self.take(x) for x in group], outs,
                                           names[material], "flotation", yields[material]))
                conc[material] += outs
        self.stage(runs)
        self.ship("kolwezi-concentrators", "coastal-refining", [x for lots in conc.values() for x in lots])

        # cobalt concentrate blended: 3 lots of different runs merged
        blends, merges = [], []
        for b, group in enumerate(self.groups(conc["cobalt"], 3, 4)):
            lot = f"CO-BLD-{b:06d}"
            portions = [self.take(x) for x in group]
            self.new_lot(lot, "cobalt_concentrate", sum(p.mass_g for p in portions),
                         frozenset().union(*(self._origins[p.lot] for p in portions)))
            self.stats["merged_lots"] += 1
            merge = pm.MergeLots(lots=portions, into=lot, location=SITES["coastal-refining"])
            merges.append((_admin("coastal-refining"), merge, f"merge/{lot}"))
            blends.append(lot)
        self.stage(merges)

        # refined: cobalt 2 blends -> 4 lots, nickel 2 concentrate lots -> 2
        refined: dict[str, list[str]] = {"cobalt": [], "nickel": []}
        steps = []
        for r, group in enumerate(self.groups(blends, 2, 1)):
            outs = [f"CO-REF-{r:06d}-{k}" for k in range(4)]
            steps.append(self.transform("coastal-refining", [self.take(x) for x in group], outs, "cobalt_hydroxide",
                                        "refining", 600_000))
            refined["cobalt"] += outs
        for r, group in enumerate(self.groups(conc["nickel"], 2, 4)):
            outs = [f"NI-REF-{r:06d}-{k}" for k in range(2)]
            steps.append(self.transform("coastal-refining", [self.take(x) for x in group], outs, "nickel_intermediate",
                                        "refining", 700_000))
            refined["nickel"] += outs
        self.stage(steps)

        # sulfates (cobalt 2 -> 3, nickel 2 -> 2) and lithium hydroxide (2 concentrate lots -> 2)
        sulfate: dict[str, list[str]] = {"cobalt": [], "nickel": []}
        lioh: list[str] = []
        steps = []
        for r, group in enumerate(self.groups(refined["cobalt"], 2, 4)):
            outs = [f"CO-SUL-{r:06d}-{k}" for k in range(3)]
            steps.append(self.transform("coastal-refining", [self.take(x) for x in group], outs, "cobalt_sulfate",
                                        "sulfation", 950_000))
            sulfate["cobalt"] += outs
        for r, group in enumerate(self.groups(refined["nickel"], 2, 2)):
            outs = [f"NI-SUL-{r:06d}-{k}" for k in range(2)]
            steps.append(self.transform("coastal-refining", [self.take(x) for x in group], outs, "nickel_sulfate",
                                        "sulfation", 950_000))
            sulfate["nickel"] += outs
        for r, group in enumerate(self.groups(conc["lithium"], 2, 4)):
            outs = [f"LI-OH-{r:06d}-{k}" for k in range(2)]
            steps.append(self.transform("coastal-refining", [self.take(x) for x in group], outs, "lithium_hydroxide",
                                        "hydroxide", 500_000))
            lioh += outs
        self.stage(steps)
        self.ship("coastal-refining", "precursor-works", sulfate["cobalt"] + sulfate["nickel"])
        self.ship("coastal-refining", "cathode-works", lioh)

        # precursor: a cobalt sulfate lot and a nickel sulfate lot -> 2 lots
        co, ni = list(sulfate["cobalt"]), list(sulfate["nickel"])
        rng.shuffle(co)
        rng.shuffle(ni)
        precursor, steps = [], []
        for r, (a, b) in enumerate(zip(co, ni)):
            outs = [f"PCAM-{r:06d}-{k}" for k in range(2)]
            steps.append(self.transform("precursor-works", [self.take(a), self.take(b)], outs, "nmc_precursor",
                                        "coprecipitation", 900_000))
            precursor += outs
        self.stage(steps)
        self.ship("precursor-works", "cathode-works", precursor)

        # cathode: a precursor lot and a portion of a lithium hydroxide lot -> 2 lots
        rng.shuffle(precursor)
        per = -(-len(precursor) // len(lioh))
        portion = {x: self.mass[x] // per for x in lioh}
        cathode, steps = [], []
        for r, lot in enumerate(precursor):
            li = lioh[r % len(lioh)]
            outs = [f"CAM-{r:06d}-{k}" for k in range(2)]
            steps.append(self.transform("cathode-works", [self.take(lot), self.take(li, portion[li])], outs,
                                        "nmc_cathode", "calcination", 950_000))
            cathode += outs
        self.stage(steps)
        self.ship("cathode-works", "volt-cells", cathode)

        # cells and packs: batch pairs, 20 packs a pair, each pack 48 cells of each batch of its pair
        self.packs = max(PACKS_PER_PAIR, -(-(self.u * LOTS_PER_UNIT // 100) // PACKS_PER_PAIR) * PACKS_PER_PAIR)
        batches = 2 * self.packs // PACKS_PER_PAIR
        spread = cathode[::max(1, len(cathode) // (2 * batches))][:2 * batches]
        if len(spread) < 2 * batches:
            raise ValueError(f"{len(cathode)} cathode lots cannot feed {batches} cell batches: raise --lots")
        rng.shuffle(spread)
        vc = _admin("volt-cells")
        where = SITES["volt-cells"]
        produced = _date(self.t)
        setup = [(vc, pm.RegisterPartType(part_number=CELL, name="Cylindrical NMC cell 21700", category="battery cell",
                                          serialized=True), "type/cell"),
                 (vc, pm.RegisterPartType(part_number=PACK, name="Traction battery pack, 96 cells", category="battery",
                                          serialized=True, assembly=True), "type/pack")]
        for b in range(batches):
            uses = [pm.MaterialUse(lot=x, mass_g=self.take(x, 10_000).mass_g) for x in spread[2 * b:2 * b + 2]]
            setup.append((vc, pm.MintBatch(part_number=CELL, batch=f"CB{b:05d}", quantity=CELLS_PER_BATCH,
                                           produced=produced, plant="Debrecen", materials=uses, location=where),
                          f"batch/{b}"))
        self.stage(setup)
        self.stage([(vc, pm.MintParts(part_number=CELL, serials=[f"C{b:05d}-{k:03d}" for k in range(CELLS_PER_BATCH)],
                                      produced=produced, plant="Debrecen", batch=f"CB{b:05d}", location=where),
                     f"cells/{b}") for b in range(batches)]
                   + [(vc, pm.MintParts(part_number=PACK, serials=[pack_serial(p) for p in chunk], produced=produced,
                                        plant="Debrecen", location=where), f"packs/{chunk[0]}")
                      for chunk in _chunks(list(range(self.packs)), 1000)])
        self.stage([(vc, pm.Assemble(assembly=pack_id(p), components=pack_cells(p)), f"assemble/{p}")
                    for p in range(self.packs)])
        self.cell_batches = batches


def pack_serial(p: int) -> str:
    return f"P{p:06d}"


def pack_id(p: int) -> str:
    return f"{PACK}:{pack_serial(p)}"


def pack_cells(p: int) -> list[str]:
    pair, j = divmod(p, PACKS_PER_PAIR)
    half = CELLS_PER_PACK // 2
    return [f"{CELL}:C{b:05d}-{k:03d}" for b in (2 * pair, 2 * pair + 1) for k in range(half * j, half * (j + 1))]


def build_lots(path: Path, *, lots: int, fresh: bool = False) -> dict[str, Any]:
    params = {"lots": lots, "format": FORMAT}
    info = _reuse(path, params, fresh)
    if info is not None:
        return {**info, "reused": True}
    genesis_time = time.time_ns() // 1_000_000 - 80 * DAY
    plan = _LotsPlan(lots, genesis_time)
    if plan.max_origins > 256:
        raise AssertionError(f"a planned lot carries {plan.max_origins} origins, above the module's 256")
    if plan.t > time.time_ns() // 1_000_000:
        raise AssertionError("the lots plan runs past the wall clock")
    lot_count = len(plan.material)
    info = {"params": params, "lots": lot_count, **plan.stats, "packs": plan.packs, "cell_batches": plan.cell_batches,
            "cells": plan.packs * CELLS_PER_PACK, "max_lot_origins": plan.max_origins, "mines": sum(
                k for v in MINES.values() for _, k in v)}
    params_chain = {f"attestation_required:{m}": 1 for m in MINES}
    return {**_build(path, chain="sourcing-lots-bench", orgs=LOT_ORGS, params=params_chain, genesis_time=genesis_time,
                     blocks=plan.blocks, info=info, what="lots"), "reused": False}


# ---------------------------------------------------------------- the handoffs data set

SUPPLIERS = [  # (site, the port its sea freight leaves from, or "" for a European supplier; country; material)
    ("CNSZX", "CNSHK", "CN", "aluminium"), ("CNSHA", "CNSHA", "CN", "copper"), ("JPNGO", "JPNGO", "JP", "steel"),
    ("KRUSN", "KRPUS", "KR", "nickel"), ("MXMTY", "MXVER", "MX", "glass"), ("USDET", "USBAL", "US", "polymer"),
    ("DEMUC", "", "DE", "rubber"), ("DESTR", "", "DE", "zinc"), ("PLWRO", "", "PL", "magnesium"),
    ("CZPRG", "", "CZ", "tin"), ("HUBUD", "", "HU", "cobalt"), ("ITTRN", "", "IT", "lithium"),
]
FORWARDERS = 4
OEM_SITES = ["DEWOB", "CZMBO", "SKBTS"]
HUBS = ["DELEJ", "PLPOZ", "CZOSR"]
DEST_PORTS = ["DEHAM", "NLRTM", "BEANR", "SIKOP"]
TRANSSHIP = ["SGSIN", "LKCMB", "EGPSD"]
SERIALIZED_PNS, BATCH_PNS = 4, 4
HORIZON = 120 * DAY
SPAN = 12 * HOUR  # the longest simulated time one block covers
LATE = 3 * DAY  # the latest a receipt is recorded after it happened


def handoff_orgs() -> list[str]:
    return (["handoff-registry:regulator:Logistics Registry"]
            + [f"sup-{s:02d}:supplier:Supplier {s:02d}" for s in range(len(SUPPLIERS))]
            + [f"fwd-{f}:logistics:Forwarder {f}" for f in range(FORWARDERS)]
            + [f"oem-{o}:manufacturer:Automaker {o}" for o in range(len(OEM_SITES))])


def part_numbers(s: int) -> tuple[list[str], list[str]]:
    return ([f"S{s:02d}-P{j}" for j in range(SERIALIZED_PNS)], [f"S{s:02d}-B{j}" for j in range(BATCH_PNS)])


class _HandoffsPlan:
    """Consignments until ``handoffs`` shipment and receipt rows; their events sorted by the time they
    were recorded, then cut into blocks (at most ``BLOCK_TXS`` transactions and ``SPAN`` each)."""

    def __init__(self, handoffs: int, genesis_time: int, seed: int = 21) -> None:
        rng = self.rng = random.Random(seed)
        self.g = genesis_time
        self.end = genesis_time + HORIZON
        self.events: list[tuple[int, int, str, Message, str]] = []  # (recorded, order, signer, message, label)
        self.rows = 0
        self.counter: dict[str, int] = {}
        self.legs_by_product: dict[str, int] = {}
        self.legs_by_supplier: dict[str, int] = {}
        self.stats = {"consignments": 0, "parts": 0, "batches": 0, "lots": 0, "legs": 0, "in_transit": 0,
                      "made": 0, "late_receipts": 0, "delayed_legs": 0}
        weights = [1 / (s + 1) ** 0.8 for s in range(len(SUPPLIERS))]
        while self.rows < handoffs:
            s = rng.choices(range(len(SUPPLIERS)), weights)[0]
            self.consignment(s)
        self.events.sort(key=lambda e: (e[0], e[1]))
        self.blocks: list[Block] = []
        current: list[tuple[str, Message, str]] = []
        first = last = 0
        for rec, _, who, msg, label in self.events:
            if current and (len(current) >= BLOCK_TXS or rec - first > SPAN):
                self.blocks.append((last, current))
                current = []
            if not current:
                first = rec
            current.append((who, msg, label))
            last = rec
        if current:
            self.blocks.append((last, current))

    def next(self, key: str) -> int:
        n = self.counter.get(key, 0)
        self.counter[key] = n + 1
        return n

    def route(self, s: int) -> list[tuple[str, str, str, int]]:
        """The legs: (receiver org, origin, destination, how long in ms) from the supplier's plant."""
        rng = self.rng
        site, port, _, _ = SUPPLIERS[s]
        oem = rng.randrange(len(OEM_SITES))
        fwd = rng.sample(range(FORWARDERS), 3)
        to_oem = f"oem-{oem}"
        hours = lambda a, b: rng.randrange(a * HOUR, b * HOUR)  # noqa: E731
        if not port:  # European: straight to the automaker, or through a forwarder's hub
            if rng.random() < 0.6:
                return [(to_oem, site, OEM_SITES[oem], hours(6, 72))]
            hub = rng.choice(HUBS)
            return [(f"fwd-{fwd[0]}", site, hub, hours(4, 48)), (to_oem, hub, OEM_SITES[oem], hours(6, 48))]
        dest = rng.choice(DEST_PORTS)
        if rng.random() < 0.7:
            return [(f"fwd-{fwd[0]}", site, port, hours(12, 48)),
                    (f"fwd-{fwd[1]}", port, dest, hours(18 * 24, 40 * 24)),
                    (to_oem, dest, OEM_SITES[oem], hours(24, 72))]
        via = rng.choice(TRANSSHIP)
        return [(f"fwd-{fwd[0]}", site, port, hours(12, 48)),
                (f"fwd-{fwd[1]}", port, via, hours(8 * 24, 20 * 24)),
                (f"fwd-{fwd[2]}", via, dest, hours(10 * 24, 25 * 24)),
                (to_oem, dest, OEM_SITES[oem], hours(24, 72))]

    def add(self, rec: int, who: str, msg: Message, label: str) -> None:
        self.events.append((rec, len(self.events), _admin(who), msg, label))

    def consignment(self, s: int) -> None:
        rng = self.rng
        org = f"sup-{s:02d}"
        site, _, country, material = SUPPLIERS[s]
        legs = self.route(s)
        start = self.g + 3 * DAY + rng.randrange(HORIZON - 3 * DAY)
        made = start - DAY - rng.randrange(DAY)  # its block's time (the item's first handoff) is before ``start``
        kind = rng.choices(("part", "batch", "lot"), (0.3, 0.45, 0.25))[0]
        serialized, batched = part_numbers(s)
        c = self.next("consignment")
        self.stats["consignments"] += 1
        if kind == "lot":
            product = material
            items = [f"L{s:02d}{self.next(f'lot-{s}'):07d}" for _ in range(rng.randint(1, 3))]
            for lot in items:
                mass = rng.randrange(100_000, 10_000_000)
                self.add(made, org, pm.RegisterLot(lot=lot, material=material, mass_g=mass, country=country,
                                                   mine=f"Supplier {s:02d} plant", location=site), f"lot/{lot}")
        else:
            pns = serialized if kind == "part" else batched
            product = pns[rng.choices(range(len(pns)), [1 / (j + 1) for j in range(len(pns))])[0]]
            if kind == "part":
                serials = [f"{self.next(product):08d}" for _ in range(rng.randint(5, 40))]
                items = [f"{product}:{x}" for x in serials]
                self.add(made, org, pm.MintParts(part_number=product, serials=serials, produced=_date(made),
                                                 plant=f"Plant {site}", location=site), f"mint/{items[0]}")
            else:
                items = []
                for _ in range(rng.randint(1, 6)):
                    b = f"{self.next(product):07d}"
                    items.append(f"{product}:{b}")
                    self.add(made, org, pm.MintBatch(part_number=product, batch=b, quantity=rng.randrange(100, 5000),
                                                     produced=_date(made), plant=f"Plant {site}", location=site),
                             f"batch/{product}:{b}")
        self.stats[{"part": "parts", "batch": "batches", "lot": "lots"}[kind]] += len(items)
        self.stats["made"] += len(items)
        field = "lots" if kind == "lot" else "items"
        holder, t, rec = org, start, made
        for n, (receiver, origin, dest, took) in enumerate(legs):
            if rng.random() < 0.05:
                took = int(took * rng.uniform(1.5, 4))
                self.stats["delayed_legs"] += 1
            shipped = t
            rec = max(shipped, rec + MINUTE)
            if rec > self.end:
                return
            self.add(rec, holder, pm.Ship(to=f"org:{receiver}", location=origin, at=shipped, **{field: items}),
                     f"ship/{c}/{n}")
            self.rows += len(items)
            received = shipped + took
            late = rng.randrange(HOUR, LATE) if rng.random() < 0.1 else 0
            if max(received + late, rec + MINUTE) > self.end:
                self.stats["in_transit"] += len(items)
                return
            rec = max(received + late, rec + MINUTE)
            self.stats["late_receipts"] += late > 0
            self.add(rec, receiver, pm.Receive(location=dest, at=received, **{field: items}), f"receive/{c}/{n}")
            self.rows += len(items)
            self.stats["legs"] += len(items)
            self.legs_by_product[product] = self.legs_by_product.get(product, 0) + len(items)
            self.legs_by_supplier[org] = self.legs_by_supplier.get(org, 0) + len(items)
            holder, t = receiver, received + rng.randrange(2 * HOUR, 4 * DAY)


def build_handoffs(path: Path, *, handoffs: int, fresh: bool = False) -> dict[str, Any]:
    params = {"handoffs": handoffs, "format": FORMAT}
    info = _reuse(path, params, fresh)
    if info is not None:
        return {**info, "reused": True}
    genesis_time = time.time_ns() // 1_000_000 - HORIZON - 5 * DAY
    plan = _HandoffsPlan(handoffs, genesis_time)
    setup: list[tuple[str, Message, str]] = []
    for s in range(len(SUPPLIERS)):
        serialized, batched = part_numbers(s)
        setup += [(_admin(f"sup-{s:02d}"), pm.RegisterPartType(part_number=pn, name=f"Part {pn}", category="component",
                                                               serialized=pn in serialized), f"type/{pn}")
                  for pn in serialized + batched]
    blocks: list[Block] = [(genesis_time + HOUR, setup)] + plan.blocks
    top = sorted(plan.legs_by_product, key=lambda p: (-plan.legs_by_product[p], p))[:10]
    info = {"params": params, "handoffs": plan.rows, **plan.stats, "part_numbers": 8 * len(SUPPLIERS),
            "suppliers": len(SUPPLIERS), "top_part_numbers": top,
            "top_part_number_legs": [plan.legs_by_product[p] for p in top],
            "supplier_legs": dict(sorted(plan.legs_by_supplier.items()))}
    return {**_build(path, chain="sourcing-handoffs-bench", orgs=handoff_orgs(), params={}, genesis_time=genesis_time,
                     blocks=blocks, info=info, what="handoffs"), "reused": False}


# ---------------------------------------------------------------- the measurements


def _copy(cached: Path) -> tuple[Path, float]:
    """A copy of the data set at ``cached`` for this run (the node and the cold samples write to it)."""
    data = cached.with_name(cached.name + "-run")
    shutil.rmtree(data, ignore_errors=True)
    print(f"copying {cached.name} ({db_bytes(cached) / 2**20:,.0f} MiB) so this run leaves it as it was",
          file=sys.stderr, flush=True)
    t = time.perf_counter()
    shutil.copytree(cached, data, ignore=shutil.ignore_patterns("node.log", "node.lock"))
    return data, round(time.perf_counter() - t, 1)


def _get(http: Any, path: str, params: dict[str, Any]) -> tuple[float, Any]:
    """One signed query, timed as the client sees it (signing included); its result."""
    t = time.perf_counter()
    r = http.get(path, params=params)
    ms = (time.perf_counter() - t) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"{path} {params}: HTTP {r.status_code}: {r.text[:300]}")
    return ms, r.json()


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t) * 1000, out


class _Local:
    """The node's query path in this process, on the node's data once it stopped: ``ChainReader`` over
    the block log and the state store, as the node's API calls it, and the SQLite connection its
    snapshots read through (to capture and replay the statements a query runs)."""

    def __init__(self, data: Path, did: str) -> None:
        from ..modules import default_registry
        from ..node.reader import ChainReader
        from ..store.blocks import BlockLog
        from ..store.state import StateStore

        self.registry = default_registry()
        self.blocks, self.state = BlockLog(data / "chain.db"), StateStore(data / "state.db", self.registry)
        self.reader = ChainReader(self.registry, self.blocks, self.state)
        self.caller = self.reader.caller(did)
        with self.state.snapshot() as snap:
            self.conn = snap.conn  # this thread's reader connection: every snapshot below reads through it

    def query(self, name: str, params: dict[str, Any]) -> Any:
        return self.reader.query("parts", name, params, self.caller)

    def statements(self, fn: Callable[[], Any]) -> list[str]:
        """The SELECT statements ``fn`` runs on the snapshot connection, with their parameters bound."""
        seen: list[str] = []
        self.conn.set_trace_callback(seen.append)
        try:
            fn()
        finally:
            self.conn.set_trace_callback(None)
        return [s for s in seen if s.lstrip().upper().startswith("SELECT")]

    def replay(self, statements: list[str]) -> float:
        """The statements alone, their rows fetched: SQLite's part of a query (ms)."""
        t = time.perf_counter()
        for s in statements:
            self.conn.execute(s).fetchall()
        return (time.perf_counter() - t) * 1000

    def close(self) -> None:
        self.blocks.close()
        self.state.close()


def _origin_counts(answer: dict[str, Any]) -> dict[str, int]:
    return {"origins": sum(len(m["origins"]) for m in answer["materials"]), "lots": len(answer["lots"]),
            "keys": len(answer["keys"]), "materials": len(answer["materials"]), "steps": answer["steps"]}


def _sampled_packs(packs: int, samples: int) -> list[int]:
    """``samples`` packs spread evenly over all of them (repeating only when there are fewer packs)."""
    step = max(1, packs // samples)
    return [(i * step + (i * step) // packs) % packs for i in range(samples)]


def _mix_inputs(snap: Any, pack: str) -> list[tuple[Fraction, list[Any]]]:
    """What ``origins.mix`` takes for a pack, read as ``provenance.origins_of`` reads it: each lot its
    cells' batches consumed, weighted by the mass it brings to this pack, with its carried origins."""
    from ..modules.parts.materials import lot_origins
    from ..modules.parts.state import BATCHES, LOTS, PARTS

    stack, batches = [PARTS.get(snap, pack)], {}
    while stack:
        p = stack.pop()
        if p.batch:
            bid = f"{p.part_number}:{p.batch}"
            batches[bid] = batches.get(bid, 0) + 1
        stack += [c for c in (PARTS.get(snap, x) for x in p.components) if c is not None]
    weights: dict[str, Fraction] = {}
    for bid in sorted(batches):
        b = BATCHES.get(snap, bid)
        for use in b.materials:
            weights[use.lot] = weights.get(use.lot, Fraction(0)) + Fraction(use.mass_g * batches[bid], b.quantity)
    return [(weights[lot_id], lot_origins(LOTS.get(snap, lot_id))) for lot_id in sorted(weights)]


def _origin_phase(cached: Path, info: dict[str, Any], samples: int, workers: int | None) -> dict[str, Any]:
    from ..client import Client
    from ..modules.parts.origins import mix
    from ..modules.parts.provenance import describe, origins_of
    from ..store.state import Snapshot

    data, copy_s = _copy(cached)
    try:
        packs = [pack_id(p) for p in _sampled_packs(info["packs"], samples)]
        spare = pack_id((_sampled_packs(info["packs"], samples)[0] + 1) % info["packs"])  # a warm-up, not sampled
        nkey = node_key(data)
        maker = KeyStore(data / "keys").load(_admin("volt-cells"))
        node = NodeProcess(data, workers=workers)
        out: dict[str, Any] = {"origin_dataset_copy_s": copy_s}
        try:
            node.wait_ready(timeout=600)
            with signed_client(node.url, nkey, timeout=120) as http, \
                    Client(node.url, trust=data / "genesis.json", key=nkey) as client:
                _get(http, "/v1/q/parts/origin", {"id": spare})
                warm, answers = [], []
                with _progress(f"origin: {len(packs)} packs under one state root", "origin, one root") as advance:
                    for i, pack in enumerate(packs):
                        ms, body = _get(http, "/v1/q/parts/origin", {"id": pack})
                        warm.append(ms)
                        answers.append(body["result"])
                        advance(i + 1, len(packs))
                cold, heights = [], []
                run = time.time_ns()
                label = f"origin: {len(packs)} packs, each after a block of its own"
                with _progress(label, "origin, a block each") as advance:
                    for i, pack in enumerate(packs):
                        sent = client.send(pm.RegisterPartType(part_number=f"BENCH-{run % 10**9}-{i}",
                                                               name="bench block", category="bench", serialized=True),
                                           maker, wait=120).raise_for_status()
                        # untimed: the node's state has this block before the timed query is sent
                        _get(http, "/v1/q/parts/in_transit", {"supplier": "volt-cells", "limit": 1,
                                                              "min_height": sent.height})
                        ms, body = _get(http, "/v1/q/parts/origin", {"id": pack})
                        if body["result"] != answers[i]:
                            raise RuntimeError(f"the origin of {pack} changed between two reads")
                        cold.append(ms)
                        heights.append(body["height"])
                        advance(i + 1, len(packs))
                if any(b <= a for a, b in zip(heights, heights[1:])):
                    raise RuntimeError(f"the cold samples did not each read a newer block: {heights[:10]}")
        finally:
            node.stop()
        counts = [_origin_counts(a) for a in answers]
        out.update(origin_ms=_pct(cold), origin_warm_ms=_pct(warm), origin_samples=len(packs),
                   origin_distinct_packs=len(set(packs)),
                   origin_origins={"p50": int(percentile([c["origins"] for c in counts], 0.5)),
                                   "max": max(c["origins"] for c in counts)},
                   origin_keys_read={"p50": int(percentile([c["keys"] for c in counts], 0.5)),
                                     "max": max(c["keys"] for c in counts)},
                   origin_lots_consumed=max(c["lots"] for c in counts),
                   origin_materials=max(c["materials"] for c in counts),
                   origin_lot_steps=max(c["steps"] for c in counts),
                   origin_answer_bytes=int(percentile([len(msgspec.json.encode(a)) for a in answers], 0.5)))

        local = _Local(data, nkey.did)
        try:
            local.query("origin", {"id": spare})
            query, unverified, sql, mixes = [], [], [], []
            label = "origin in-process: the node's query path, unproven, SQL alone, mix alone"
            with _progress(label, "origin in-process") as advance:
                for i, pack in enumerate(packs):
                    Snapshot._proven.clear()  # a new block's root: nothing proven yet (as the cold samples)
                    ms, result = _timed(lambda: local.query("origin", {"id": pack}))
                    if result["result"] != answers[i]:
                        raise RuntimeError(f"the origin of {pack} in-process differs from the node's answer (was the "
                                           "parts module's code changed while the bench ran?)")
                    query.append(ms)
                    with local.state.snapshot() as snap:
                        ms, _ = _timed(lambda: describe(origins_of(snap, pack), pack))
                        unverified.append(ms)
                        inputs = _mix_inputs(snap, pack)
                        expected = origins_of(snap, pack).origins
                    ms, mixed = _timed(lambda: mix(inputs))
                    if mixed != expected:
                        raise RuntimeError(f"the mix inputs read for {pack} do not give the query's origins")
                    mixes.append(ms)
                    Snapshot._proven.clear()
                    statements = local.statements(lambda: local.query("origin", {"id": pack}))
                    sql.append(local.replay(statements))
                    advance(i + 1, len(packs))
            out.update(origin_query_ms=_pct(query), origin_unverified_ms=_pct(unverified), origin_sql_ms=_pct(sql),
                       origin_sql_statements=len(statements), mix_ms=_pct(mixes))
        finally:
            local.close()
        return out
    finally:
        shutil.rmtree(data, ignore_errors=True)


QUERIES = ("legs", "lanes", "in_transit")


def _legs_phase(cached: Path, info: dict[str, Any], samples: int, workers: int | None) -> dict[str, Any]:
    data, copy_s = _copy(cached)
    try:
        pns = [("part_number", pn) for pn in info["top_part_numbers"]]
        sups = [("supplier", s) for s in sorted(info["supplier_legs"])]
        targets = [t for pair in zip(pns, sups) for t in pair] + pns[len(sups):] + sups[len(pns):]  # alternating
        nkey = node_key(data)
        node = NodeProcess(data, workers=workers)
        http_ms: dict[str, dict[str, list[float]]] = {q: {"part_number": [], "supplier": []} for q in QUERIES}
        found: dict[str, Any] = {"legs": 0, "lanes": 0, "in_transit": 0}
        try:
            node.wait_ready(timeout=600)
            with signed_client(node.url, nkey, timeout=120) as http:
                label = f"logistics queries: an untimed pass over {len(targets)} part numbers and suppliers"
                with _progress(label, "warm-up"):
                    for q in QUERIES:
                        for kind, value in targets:
                            _get(http, f"/v1/q/parts/{q}", {kind: value})
                for q in QUERIES:
                    with _progress(f"parts/{q}: {samples} queries", f"parts/{q}") as advance:
                        for i in range(samples):
                            kind, value = targets[i % len(targets)]
                            ms, body = _get(http, f"/v1/q/parts/{q}", {kind: value})
                            http_ms[q][kind].append(ms)
                            result = body["result"]
                            if q == "legs":
                                d = [x["duration_ms"] for x in result["legs"]]
                                if d != sorted(d, reverse=True):
                                    raise RuntimeError(f"parts/legs {kind}={value}: not slowest first")
                                found["legs"] = max(found["legs"], len(d))
                            elif q == "lanes":
                                found["lanes"] = max(found["lanes"], len(result["lanes"]))
                            else:
                                found["in_transit"] = max(found["in_transit"], result["items"])
                            advance(i + 1, samples)
        finally:
            node.stop()
        out: dict[str, Any] = {"legs_dataset_copy_s": copy_s, "legs_samples": samples,
                               "legs_targets": len(targets), "legs_page": found["legs"],
                               "lanes_max": found["lanes"], "in_transit_items_max": found["in_transit"]}
        for q in QUERIES:
            both = http_ms[q]["part_number"] + http_ms[q]["supplier"]
            out[f"{q}_ms"] = _pct(both)
            for kind in ("part_number", "supplier"):
                if http_ms[q][kind]:
                    out[f"{q}_{kind}_ms"] = _pct(http_ms[q][kind])

        local = _Local(data, nkey.did)
        try:
            for q in QUERIES:
                query, sql = [], []
                label = f"parts/{q} in-process: the node's query path, SQL alone"
                with _progress(label, f"parts/{q} in-process") as advance:
                    for i in range(samples):
                        kind, value = targets[i % len(targets)]
                        ms, _ = _timed(lambda: local.query(q, {kind: value}))
                        query.append(ms)
                        sql.append(local.replay(local.statements(lambda: local.query(q, {kind: value}))))
                        advance(i + 1, samples)
                out[f"{q}_query_ms"], out[f"{q}_sql_ms"] = _pct(query), _pct(sql)
        finally:
            local.close()
        return out
    finally:
        shutil.rmtree(data, ignore_errors=True)


def run(*, lots: int = 100_000, handoffs: int = 1_000_000, samples: int = 200, fresh: bool = False,
        cache: Path | None = None, workers: int | None = None) -> dict[str, Any]:
    root = cache or default_cache()
    load_start = _load_avg()
    lots_path, handoffs_path = root / f"sourcing-lots-{lots}", root / f"sourcing-handoffs-{handoffs}"
    lots_info = build_lots(lots_path, lots=lots, fresh=fresh)
    handoffs_info = build_handoffs(handoffs_path, handoffs=handoffs, fresh=fresh)
    out: dict[str, Any] = {"bench": "sourcing", "cores": os.cpu_count(), "samples": samples}
    out.update(_origin_phase(lots_path, lots_info, samples, workers))
    out.update(_legs_phase(handoffs_path, handoffs_info, samples, workers))
    out["targets"] = TARGETS
    out["met"] = {name: {p: out[name][p] <= limit for p in ("p50", "p95", "p99")} for name, limit in TARGETS.items()}

    def dataset(info: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
        return {"reused": info["reused"], "txs": info["txs"], "blocks": info["blocks"], "build_s": info["build_s"],
                "build_tx_per_s": info["build_tx_per_s"], "build_cpu_s": info.get("build_cpu_s"), "bytes": info["bytes"],
                **{k: info[k] for k in keep}}

    out["datasets"] = {
        "lots": dataset(lots_info, ("lots", "ore_lots", "split_lots", "merged_lots", "transformed_lots",
                                    "lot_shipments", "mines", "max_lot_origins", "packs", "cell_batches", "cells")),
        "handoffs": dataset(handoffs_info, ("handoffs", "made", "legs", "in_transit", "consignments", "parts",
                                            "batches", "lots", "part_numbers", "suppliers", "late_receipts",
                                            "delayed_legs", "top_part_numbers", "top_part_number_legs")),
    }
    out["load_avg_1m"] = [load_start, _load_avg()]
    return out


__all__ = ["TARGETS", "build_handoffs", "build_lots", "pack_cells", "pack_id", "run"]
