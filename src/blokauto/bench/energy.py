"""``blokauto bench energy``: the ``energy`` module's market at the size of one busy zone.

One zone (``BENCH-1``: 15-minute intervals, gate closure 5 minutes before an interval starts, a
reading window of an hour) on a fresh chain of its own: a grid operator, a meter operator and an
e-money issuer (EUR). ``--meters`` meters (home meters, each with its own device key and its own
funded owner key) and ``--orders`` orders for **one** interval of that zone, ``orders ÷ meters``
per meter: even meters buy, odd meters sell, each with one order priced to be filled whole (a bid
at 45, an ask at 5 minor units per kWh) and the rest spread over 10-40, 50-500 Wh each.

1. **Orders through a real node** (``tx_per_s``). ``blokauto node start`` as a child process; the
   set-up (currency, reserves, the zone, every owner funded, every meter registered) is committed
   first, not timed. The orders, signed by their owners before the clock starts, are posted in
   batches of 1,000 (4 in flight) and committed; ``tx_per_s`` counts successful receipts from the
   first request to the last commit. The raw limit of the same run: PyNaCl verification of the
   very same orders' signatures on all cores (``raw_verify_tx_per_s``) and a bare SQLite append of
   their bytes, one fsynced SQL transaction per block of ``--block-txs`` (``raw_append_tx_per_s``);
   ``raw_limit_tx_per_s`` is the lower of the two (a node must do both), ``ratio_to_raw`` =
   ``tx_per_s`` ÷ that.
2. **The clock.** On a node the block time is the wall clock, and the interval's gate is 20 minutes
   or more ahead when the orders go in (so a slow run still places every order before it). The
   node is stopped, and the same engine the node runs (``BlockCommitter`` on its data folder, the
   state writer in its own process) commits, with explicit block times, every meter's signed
   reading of the interval at the interval's end: the chain's clock is now past the gate and the
   interval (readings are taken before the clearing here; clearing does not read them).
3. **Clearing and settlement in-process** (``clear_ms``, ``settle_ms``), on a copy of that folder,
   the engine opened afresh (its read cache empty: the clearing reads every order from
   ``state.db``): the one ``energy.clear`` transaction over the interval's N open orders in a block
   of its own, timed as the whole block (execution, state tree, fsynced commit: ``clear_ms``) and as
   the handler's own time (``clear_handler_ms``); then the one ``energy.settle`` of the interval in
   which every meter holds a position and has read, timed the same way (``settle_ms``,
   ``settle_handler_ms``). Before them the engine makes one block (a refused ``energy.clear`` of the
   next interval, ``first_block_ms``): an engine's first block after it opens rebuilds its replay
   filter from every unexpired transaction id, whatever the block holds. On a second copy the
   clearing again, with every order read once before (``clear_warm_ms``,
   ``clear_warm_handler_ms``): a node that committed the orders and was not restarted since holds
   them in its read cache (300,000 entries).
4. **The same two through the node** (``clear_node_ms``, ``settle_node_ms``). The node restarts on
   the original folder (its read cache empty, as for ``clear_ms``); its next blocks carry the head's
   time (the chain's clock never goes back) until the wall clock passes it. ``energy.clear`` and
   ``energy.settle`` are sent with the SDK's ``Client.send`` (signed, submitted, the receipt and its
   proof checked): the time from building the transaction to its verified receipt, which includes
   waiting for the block (``--block-ms`` 50), after the same first block (``first_block_node_ms``).
   ``results_agree``: the node's clearing and settlement
   equal the in-process ones.

``measured`` in the JSON says for every headline figure where it was measured; ``load_avg`` is the
machine's load average (1, 5, 15 minutes) at the start and at the end of the run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import msgspec

from ..core import crypto
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import CheckedTx, Message, make_body, sign
from ..node.init import OrgSpec, init_chain
from .harness import NodeProcess, node_key, ordered_pool_map, raw_verify_limit, signed_client
from .throughput import BATCH, _rate, _submit_all, submit_and_follow

CHAIN = "bench-energy"
ORGS = ["grid:grid:Grid Operator", "meterco:energy:Meter Operator", "emi:issuer:E-Money Issuer"]
ZONE = "BENCH-1"
CURRENCY = "EUR"
INTERVAL_MS = 900_000
GATE_MS = 300_000
WINDOW_MS = 3_600_000
#: The interval's gate closes at least this long after the orders are signed: the time a run has to
#: set the chain up and commit every order (below the default ``max_tx_ttl_ms`` of an hour, because
#: the clearing and settlement sent through the node must expire after the interval's end).
GATE_MARGIN_MS = 20 * 60_000
#: What the clearing and settlement sent through the node may live: under the chain's hour.
NODE_TX_TTL_MS = 59 * 60_000
MS_PER_HOUR = 3_600_000
MAX_WH_PER_ORDER = 500  # see order_terms
MIN_POWER_W = 25_000  # a home meter: 6,250 Wh in a 15-minute interval
FUNDS = 1_000_000  # minor units issued to each owner
GRID_FUNDS = 10**11  # to the zone operator's account, which pays sellers
CHUNK = 2_000  # orders signed together in a pool worker
BOOK_MAX_DEFAULT = 200_000  # energy_book_max_orders' default; raised for bigger runs


def _terms() -> Any:
    from ..modules.energy.state import Terms

    # The grid sells up to 500 kWh an interval into the zone at 30 and buys up to 200 kWh at 8.
    return Terms(import_wh=500_000, export_wh=200_000, import_price=30, export_price=8, short_price=40, long_price=5)


def _key(label: str, i: int) -> KeyPair:
    return KeyPair(crypto.sha256(b"bench-energy-%s-%d" % (label.encode(), i)))


def _nonce(label: str) -> str:
    return hashlib.sha256(b"blokauto/bench/energy/" + label.encode()).hexdigest()[:32]


def _tx(sender: KeyPair, msg: Message, label: str, expires: int) -> bytes:
    return canonical(sign(make_body(CHAIN, sender.did, msg, nonce=_nonce(label), expires=expires), sender))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def meter_id(i: int) -> str:
    return f"m-{i:07d}"


def order_terms(j: int, meters: int) -> tuple[int, str, int, int]:
    """Order ``j``: (its meter, side, price, Wh). Meter ``j % meters``; even meters buy, odd sell; a
    meter's first order crosses every other (filled whole), the rest spread over prices 10-40."""
    i, k = j % meters, j // meters
    side = "buy" if i % 2 == 0 else "sell"
    if k == 0:
        price = 45 if side == "buy" else 5
    else:
        price = 10 + (j * 2_654_435_761 >> 7) % 31
    return i, side, price, 50 + (j * 40_503) % (MAX_WH_PER_ORDER - 49)


def meter_power_w(orders: int, meters: int) -> int:
    """Every meter's most power: enough for all its orders on its side of the interval (a meter's open
    orders on one side never ask for more than its power moves in one interval), 25 kW at least."""
    most_wh = -(-orders // meters) * MAX_WH_PER_ORDER
    return max(MIN_POWER_W, -(-most_wh * MS_PER_HOUR // INTERVAL_MS))


def power_limit_wh(orders: int, meters: int) -> int:
    """The most Wh a meter moves in one interval (in and out together) at that power."""
    return meter_power_w(orders, meters) * INTERVAL_MS // MS_PER_HOUR


def reading_of(i: int, orders: int, meters: int) -> tuple[int, int]:
    """Meter ``i``'s reading (imported, exported Wh): 50-100 % of what its orders asked for (so some
    meters are short of their position and some long), within its power."""
    limit = power_limit_wh(orders, meters)
    total = sum(order_terms(j, meters)[3] for j in range(i, orders, meters))
    wh = min(limit, total * (50 + (i * 7_919) % 51) // 100)
    return (wh, 0) if i % 2 == 0 else (0, wh)


# ---------------------------------------------------------------- signing in a process pool


_pool: dict[str, Any] = {}


def _init_pool(meters: int, start: int, expires: int) -> None:
    _pool.update(meters=meters, start=start, expires=expires, owners={})


def _owner(i: int) -> KeyPair:
    owners = _pool["owners"]
    k = owners.get(i)
    if k is None:
        k = owners[i] = _key("owner", i)
    return k


def _sign_orders(span: tuple[int, int]) -> list[bytes]:
    """Orders [lo, hi), each signed by its meter's owner."""
    from ..modules.energy.messages import PlaceOrder

    meters, start, expires = _pool["meters"], _pool["start"], _pool["expires"]
    out = []
    for j in range(*span):
        i, side, price, wh = order_terms(j, meters)
        msg = PlaceOrder(meter=meter_id(i), start=start, side=side, price=price, wh=wh)  # type: ignore[arg-type]
        out.append(_tx(_owner(i), msg, f"order-{j}", expires))
    return out


def sign_orders(orders: int, meters: int, start: int, expires: int, workers: int | None = None) -> list[bytes]:
    jobs = [(s, min(s + CHUNK, orders)) for s in range(0, orders, CHUNK)]
    out: list[bytes] = []
    for raws in ordered_pool_map(_sign_orders, jobs, initializer=_init_pool, initargs=(meters, start, expires),
                                 workers=workers):
        out += raws
        print(f"\rsigning orders: {len(out):,}/{orders:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def setup_txs(orders: int, meters: int, expires: int) -> list[bytes]:
    """Every owner funded, the operator's account funded, every meter registered (after the zone)."""
    from ..modules.energy.messages import RegisterMeter
    from ..modules.payments.messages import Issue

    power = meter_power_w(orders, meters)
    emi, meterco = _key("emi", 0), _key("meterco", 0)
    out = [_tx(emi, Issue(currency=CURRENCY, to="org:grid", amount=GRID_FUNDS), "issue-grid", expires)]
    for i in range(meters):
        owner, device = _key("owner", i), _key("meter", i)
        out.append(_tx(emi, Issue(currency=CURRENCY, to=owner.did, amount=FUNDS), f"issue-{i}", expires))
        out.append(_tx(meterco, RegisterMeter(meter=meter_id(i), zone=ZONE, kind="home", key=device.did,
                                              owner=owner.did, max_power_w=power), f"meter-{i}", expires))
    return out


def reading_txs(orders: int, meters: int, start: int, expires: int) -> list[bytes]:
    from ..modules.energy.messages import SubmitReading

    out = []
    for i in range(min(meters, orders)):
        imported, exported = reading_of(i, orders, meters)
        out.append(_tx(_key("meter", i), SubmitReading(meter=meter_id(i), start=start, imported_wh=imported,
                                                       exported_wh=exported), f"reading-{i}", expires))
    return out


# ---------------------------------------------------------------- the raw limit


def raw_append_limit(raws: list[bytes], block_txs: int, folder: Path) -> dict[str, Any]:
    """A bare SQLite append of ``raws``: one row per block of ``block_txs`` (the transactions packed
    as the block log packs them), one SQL transaction per block, fsynced (WAL, synchronous=FULL)."""
    from ..store.sqlite import connect

    path = folder / "raw-append.db"
    conn = connect(path, durable=True)
    pack = msgspec.msgpack.Encoder().encode
    try:
        conn.execute("CREATE TABLE blocks (height INTEGER PRIMARY KEY, txs BLOB NOT NULL)")
        t = time.perf_counter()
        for h, s in enumerate(range(0, len(raws), block_txs)):
            conn.execute("BEGIN")
            conn.execute("INSERT INTO blocks VALUES (?, ?)", (h, pack(raws[s:s + block_txs])))
            conn.execute("COMMIT")
        dt = time.perf_counter() - t
    finally:
        conn.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {"raw_append_tx_per_s": round(len(raws) / dt), "raw_append_blocks": -(-len(raws) // block_txs)}


# ---------------------------------------------------------------- in-process blocks with explicit times


def _checked(codec: Any, raws: list[bytes]) -> list[CheckedTx]:
    out = []
    for raw in raws:
        tx = codec.decode(raw)
        out.append(CheckedTx(tx, crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)), raw))
    return out


def commit_at(committer: Any, codec: Any, raws: list[bytes], at: int, block_txs: int,
              label: str = "") -> tuple[int, list[str]]:
    """``raws`` committed in blocks of ``block_txs`` at block time ``at``; (failures, first codes)."""
    failed, first = 0, []
    for s in range(0, len(raws), block_txs):
        out = committer.produce(_checked(codec, raws[s:s + block_txs]), time=at)
        bad = [r for r in out.receipts if not r.ok]
        failed += len(bad)
        first += [f"{r.code}: {r.detail}" for r in bad[:max(0, 3 - len(first))]]
        if label:
            print(f"\r{label}: {min(s + block_txs, len(raws)):,}/{len(raws):,}", end="", file=sys.stderr, flush=True)
    if label:
        print(file=sys.stderr)
    return failed, first


class HandlerClock:
    """The wall time of the named messages' handlers, wrapped in ``registry`` (a bench's own copy)."""

    def __init__(self, registry: Any, types: list[str]) -> None:
        self.ms: dict[str, float] = {}
        for t in types:
            spec = registry.messages[t]
            registry.messages[t] = replace(spec, handler=self._timed(t, spec.handler))

    def _timed(self, name: str, handler: Callable[..., None]) -> Callable[..., None]:
        def timed(state: Any, ctx: Any, msg: Any) -> None:
            t = time.perf_counter()
            try:
                handler(state, ctx, msg)
            finally:
                self.ms[name] = (time.perf_counter() - t) * 1000

        return timed


def _book_summary(book: Any) -> dict[str, Any]:
    """A book's clearing and settlement without the block they were made in."""
    b = msgspec.to_builtins(book)
    for part in ("clearing", "settlement"):
        if b.get(part):
            b[part] = {k: v for k, v in b[part].items() if k not in ("height", "time")}
    return {k: b.get(k) for k in ("orders", "open_bids", "open_asks", "bid_wh", "ask_wh", "status", "clearing",
                                  "settlement")}


def clear_and_settle_in_process(data: Path, genesis: Any, start: int, end: int, *, warm: bool = False,
                                settle: bool = True) -> dict[str, Any]:
    """The interval's clearing, then its settlement, each one transaction in a block of its own at an
    explicit block time, on the node's own engine over ``data``, opened afresh: its read cache holds
    nothing, so the clearing reads every order from ``state.db``. With ``warm``, every order of the
    interval is read once first, as a node that committed them holds them in its read cache."""
    from ..modules import default_registry
    from ..modules.energy.messages import ClearInterval, SettleInterval
    from ..modules.energy.state import BOOKS, ORDERS
    from ..node.committer import BlockCommitter
    from ..node.node import find_node_key

    registry = default_registry()
    clock = HandlerClock(registry, ["energy.clear", "energy.settle"])
    committer = BlockCommitter(data, registry, find_node_key(data, genesis), genesis=genesis,
                               state_writer_process=True)
    committer.recover()
    anyone = _key("meterco", 0)
    out: dict[str, Any] = {}
    try:
        if warm:
            book = BOOKS.get(committer.state, ZONE, start)
            for seq in range(1, (book.orders if book else 0) + 1):
                ORDERS.get(committer.state, ZONE, start, seq)
        # One block first: the first block an engine makes after it opens rebuilds its replay filter
        # from every unexpired transaction id (StoredReplayWindow), whatever the block holds. Its
        # transaction clears the next interval, which has no orders: refused.
        warmup = _checked(registry.codec, [_tx(anyone, ClearInterval(zone=ZONE, start=end), "warm-up-in-process",
                                               end + 600_000)])
        t = time.perf_counter()
        first = committer.produce(warmup, time=end)
        out["first_block_ms"] = round((time.perf_counter() - t) * 1000, 1)
        assert not first.receipts[0].ok, first.receipts[0]
        steps = [("clear", ClearInterval(zone=ZONE, start=start), end + 1)]
        if settle:
            steps.append(("settle", SettleInterval(zone=ZONE, start=start), end + 2))
        for name, msg, at in steps:
            print(f"{name}: one energy.{name} in-process{' (orders in the read cache)' if warm else ''}",
                  file=sys.stderr, flush=True)
            txs = _checked(registry.codec, [_tx(anyone, msg, f"{name}-in-process", at + 600_000)])
            t = time.perf_counter()
            block = committer.produce(txs, time=at)
            out[f"{name}_ms"] = round((time.perf_counter() - t) * 1000, 1)
            out[f"{name}_handler_ms"] = round(clock.ms[f"energy.{name}"], 1)
            receipt = block.receipts[0]
            if not receipt.ok:
                raise RuntimeError(f"energy.{name} in-process was refused: {receipt.code}: {receipt.detail}")
        out["book"] = _book_summary(BOOKS.get(committer.state, ZONE, start))
    finally:
        committer.close()
    return out


# ---------------------------------------------------------------- through the node


def _failures(http: Any, first: int, last: int) -> tuple[int, list[str]]:
    failed, codes = 0, []
    for h in range(first, last + 1):
        block = http.get(f"/v1/blocks/{h}", params={"full": "true"}).json()
        for r in block["receipts"]:
            if not r["ok"]:
                failed += 1
                if len(codes) < 3:
                    codes.append(f"{r.get('code')}: {r.get('detail')}")
    return failed, codes


def _wait_for(http: Any, committed: int, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        st = http.get("/v1/status").json()
        if st["committed_txs"] >= committed or not st["healthy"]:
            return st
        if time.monotonic() > deadline:
            raise TimeoutError(f"{committed - st['committed_txs']} set-up transactions were not committed")
        time.sleep(0.1)


def orders_through_node(data: Path, setup: list[bytes], bodies: list[bytes], orders: int, workers: int | None,
                        block_txs: int) -> dict[str, Any]:
    """The set-up (not timed), then every order through a node process; its rates."""
    from ..client import Client
    from ..modules.energy.messages import OpenZone
    from ..modules.payments.messages import AttestReserves, RegisterCurrency

    node = NodeProcess(data, workers=workers, block_txs=block_txs)
    nkey = node_key(data)
    try:
        node.wait_ready()
        print(f"set-up: the currency, the zone, {len(setup):,} issues and meters", file=sys.stderr, flush=True)
        with Client(node.url, trust=data / "genesis.json", key=nkey) as c:
            emi, grid = _key("emi", 0), _key("grid", 0)
            c.send(RegisterCurrency(currency=CURRENCY, exponent=2), emi).raise_for_status()
            c.send(AttestReserves(currency=CURRENCY, reserves=10**15, evidence="00" * 32), emi).raise_for_status()
            c.send(OpenZone(zone=ZONE, currency=CURRENCY, interval_ms=INTERVAL_MS, gate_closure_ms=GATE_MS,
                            reading_window_ms=WINDOW_MS, terms=_terms()), grid).raise_for_status()
        with signed_client(node.url, nkey, timeout=120) as http:
            base0 = http.get("/v1/status").json()
            errors: list[str] = []
            _submit_all(node.url, nkey, [b"[" + b",".join(setup[i:i + BATCH]) + b"]"
                                         for i in range(0, len(setup), BATCH)], errors)
            if errors:
                raise RuntimeError(f"the set-up was refused: {errors[:3]}")
            base = _wait_for(http, base0["committed_txs"] + len(setup))
            bad, codes = _failures(http, base0["height"] + 1, base["height"])
            if bad:
                raise RuntimeError(f"{bad} set-up transactions failed: {codes}")

            print(f"orders: {orders:,} through the node", file=sys.stderr, flush=True)
            followed = submit_and_follow(http, node, nkey, bodies, orders, base, "orders")
            progress, final, peak, done, errors = (followed.progress, followed.final, followed.peak_mb,
                                                   followed.committed, followed.errors)
            elapsed = followed.elapsed
            failed, first_failures = _failures(http, base["height"] + 1, final["height"])
    finally:
        node.stop()
    ok = done - failed
    return {"tx_per_s": round(ok / elapsed), "committed": done, "failed": failed, "refused": len(errors),
            "first_errors": (errors + first_failures)[:3], "orders_ok": ok, "elapsed_s": round(elapsed, 2),
            "start_tx_per_s": _rate(progress, 0.0, 0.2, orders), "end_tx_per_s": _rate(progress, 0.8, 1.0, orders),
            "blocks": final["height"] - base["height"], "peak_rss_mb": round(peak / 2**20, 1),
            "node_main_cpu_us_per_tx": round(followed.cpu[0] / max(1, done) * 1e6),
            "node_workers_cpu_us_per_tx": round(followed.cpu[1] / max(1, done) * 1e6),
            "node_writer_cpu_us_per_tx": round(followed.cpu[2] / max(1, done) * 1e6),
            "setup_txs": len(setup) + 3}


def clear_and_settle_through_node(data: Path, start: int, workers: int | None, block_txs: int) -> dict[str, Any]:
    """``energy.clear`` then ``energy.settle`` sent with the SDK's client to a node on ``data``."""
    from ..client import Client
    from ..client.energy import Energy
    from ..modules.energy.messages import ClearInterval, SettleInterval
    from ..modules.energy.state import Book

    node = NodeProcess(data, workers=workers, block_txs=block_txs)
    nkey = node_key(data)
    out: dict[str, Any] = {}
    try:
        node.wait_ready(timeout=600)
        with Client(node.url, trust=data / "genesis.json", key=nkey) as c:
            anyone = _key("meterco", 0)
            # the warm-up block, as in-process: the node's first block since it started
            t = time.perf_counter()
            first = c.send(ClearInterval(zone=ZONE, start=start + INTERVAL_MS), anyone, wait=600,
                           ttl_ms=NODE_TX_TTL_MS)
            out["first_block_node_ms"] = round((time.perf_counter() - t) * 1000, 1)
            assert not first.ok, first.receipt
            height = 0
            for name, msg in (("clear", ClearInterval(zone=ZONE, start=start)),
                              ("settle", SettleInterval(zone=ZONE, start=start))):
                print(f"{name}: one energy.{name} through the node", file=sys.stderr, flush=True)
                t = time.perf_counter()
                info = c.send(msg, anyone, wait=600, ttl_ms=NODE_TX_TTL_MS)
                out[f"{name}_node_ms"] = round((time.perf_counter() - t) * 1000, 1)
                info.raise_for_status()
                height = info.height
            with Energy(c) as en:
                book = en.book(ZONE, start, min_height=height)
            out["book"] = _book_summary(msgspec.convert(book, Book, strict=False))
    finally:
        node.stop()
    return out


# ---------------------------------------------------------------- the run


def run(*, orders: int = 100_000, meters: int = 10_000, workers: int | None = None, block_txs: int = 2_000,
        keep: Path | None = None) -> dict[str, Any]:
    from ..modules import default_registry

    if meters < 1 or orders < 1:
        raise ValueError("a run needs at least one order and one meter")
    load_start = [round(x, 2) for x in os.getloadavg()]
    data = keep or Path(tempfile.mkdtemp(prefix="blokauto-bench-energy-"))
    inproc = data.with_name(data.name + "-in-process")
    result: dict[str, Any] = {"bench": "energy", "orders": orders, "meters": meters, "cores": os.cpu_count(),
                              "zone": ZONE, "interval_ms": INTERVAL_MS}
    try:
        fixed = {"grid-admin": _key("grid", 0), "meterco-admin": _key("meterco", 0), "emi-admin": _key("emi", 0)}
        params = {"energy_book_max_orders": orders} if orders > BOOK_MAX_DEFAULT else {}
        genesis = init_chain(data, chain=CHAIN, orgs=[OrgSpec.parse(o) for o in ORGS], quorum=1, node_orgs=1,
                             params=params, key_factory=lambda label: fixed.get(label) or KeyPair.generate())

        # the interval: its gate closes GATE_MARGIN_MS or more from now (a day divides into intervals)
        t = time.perf_counter()
        signed_at = now_ms()
        start = -(-(signed_at + GATE_MARGIN_MS + GATE_MS) // INTERVAL_MS) * INTERVAL_MS
        end = start + INTERVAL_MS
        expires = signed_at + 50 * 60_000
        result.update(interval_start=start, gate_closes_after_s=round((start - GATE_MS - signed_at) / 1000))
        print(f"signing the set-up: {meters:,} owners funded, {meters:,} meters", file=sys.stderr, flush=True)
        setup = setup_txs(orders, meters, expires)
        raws = sign_orders(orders, meters, start, expires, workers)
        result["generate_s"] = round(time.perf_counter() - t, 1)
        result["tx_bytes"] = sum(len(r) for r in raws) // len(raws)

        print("raw limit: the same orders' signatures on all cores, then a bare SQLite append",
              file=sys.stderr, flush=True)
        codec = default_registry().codec
        decoded = [codec.decode(r) for r in raws]
        ids = [crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)) for tx in decoded]
        raw = raw_verify_limit(decoded, ids, workers)
        del decoded, ids
        raw.update(raw_append_limit(raws, block_txs, data.parent))
        result.update(raw_verify_tx_per_s=raw["raw_limit_tx_per_s"], raw_verifies_per_s=raw["raw_verifies_per_s"],
                      signatures_per_tx=raw["signatures_per_tx"], verify_workers=raw["cores"],
                      raw_append_tx_per_s=raw["raw_append_tx_per_s"],
                      raw_limit_tx_per_s=min(raw["raw_limit_tx_per_s"], raw["raw_append_tx_per_s"]))
        bodies = [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]
        del raws

        result.update(orders_through_node(data, setup, bodies, orders, workers, block_txs))
        result["ratio_to_raw"] = round(result["tx_per_s"] / result["raw_limit_tx_per_s"], 3)
        del bodies

        # the chain's clock past the interval: every meter's reading, committed at the interval's end
        from ..modules.energy.state import BOOKS
        from ..node.committer import BlockCommitter
        from ..node.node import find_node_key

        readings = reading_txs(orders, meters, start, end + 30 * 60_000)
        committer = BlockCommitter(data, default_registry(), find_node_key(data, genesis), genesis=genesis,
                                   state_writer_process=True)
        committer.recover()
        try:
            failed, first = commit_at(committer, committer.registry.codec, readings, end, block_txs, "readings")
            book = BOOKS.get(committer.state, ZONE, start)
        finally:
            committer.close()
        if failed:
            raise RuntimeError(f"{failed} readings failed: {first}")
        result.update(readings=len(readings), open_orders=book.open_bids + book.open_asks if book else 0)

        for warm in (False, True):
            print("copying the data folder for the in-process clearing and settlement", file=sys.stderr, flush=True)
            shutil.rmtree(inproc, ignore_errors=True)
            shutil.copytree(data, inproc, ignore=shutil.ignore_patterns("node.log", "node.lock"))
            if warm:
                hot = clear_and_settle_in_process(inproc, genesis, start, end, warm=True, settle=False)
                result.update(clear_warm_ms=hot["clear_ms"], clear_warm_handler_ms=hot["clear_handler_ms"])
                assert hot["book"]["clearing"] == local["book"]["clearing"], (hot["book"], local["book"])
            else:
                local = clear_and_settle_in_process(inproc, genesis, start, end)
            shutil.rmtree(inproc, ignore_errors=True)
        remote = clear_and_settle_through_node(data, start, workers, block_txs)

        lb = local.pop("book")
        rb = remote.pop("book")
        result.update(local)
        result.update(remote)
        clearing, settlement = lb["clearing"] or {}, lb["settlement"] or {}
        res = clearing.get("result", {})
        result.update(cleared_orders=clearing.get("orders"), price=res.get("price"), matched_wh=res.get("matched_wh"),
                      grid_import_wh=clearing.get("grid_import_wh"), grid_export_wh=clearing.get("grid_export_wh"),
                      positions=settlement.get("positions"), missing_readings=settlement.get("missing_readings"),
                      bought_paid=settlement.get("bought_paid"), sold_paid=settlement.get("sold_paid"),
                      short_paid=settlement.get("short_paid"), short_unpaid=settlement.get("short_unpaid"),
                      long_paid=settlement.get("long_paid"), results_agree=lb == rb)
        if not result["results_agree"]:
            print(f"warning: the node's book {rb} differs from the in-process one {lb}", file=sys.stderr)
        result["measured"] = {
            "tx_per_s": "through a node process (HTTP batches, signatures in its workers, fsynced blocks)",
            "raw_limit_tx_per_s": "in the bench process: PyNaCl on all cores and a bare fsynced SQLite append",
            "clear_ms": "in-process: the node's engine (BlockCommitter) just opened on a copy of its data (its read "
                        "cache empty), one block at an explicit block time after its first block: execution, state "
                        "tree, fsynced commit",
            "clear_handler_ms": "in-process: the energy.clear handler alone, as clear_ms",
            "clear_warm_ms": "in-process, as clear_ms on another copy, every order read once before (the read cache "
                             "of a node that committed the orders and was not restarted since)",
            "clear_warm_handler_ms": "in-process: the energy.clear handler alone, as clear_warm_ms",
            "clear_node_ms": "through the node, restarted just before (its read cache empty), after its first block: "
                             "the SDK's Client.send, from signing to the verified receipt",
            "settle_ms": "in-process, right after clear_ms's block on the same engine (the orders in its read cache)",
            "settle_handler_ms": "in-process: the energy.settle handler alone, as settle_ms",
            "settle_node_ms": "through the node, as clear_node_ms",
            "first_block_ms": "in-process: the block before clear_ms's (a refused energy.clear), the engine's first "
                              "since it opened, which rebuilds the replay filter; clear_ms and settle_ms exclude it",
            "first_block_node_ms": "through the node: the same, the node's first block since it started",
        }
        result["load_avg"] = {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}
        return result
    finally:
        shutil.rmtree(inproc, ignore_errors=True)
        if keep is None:
            shutil.rmtree(data, ignore_errors=True)


__all__ = ["meter_power_w", "order_terms", "power_limit_wh", "raw_append_limit", "reading_of", "run"]
