"""The state checkpoint (``state.db``) and the engine's in-memory layers above it.

``state.db`` holds, as of one height: every state value, every state tree node, the tx index
(id -> block, position, expiry) and the modules' derived index tables. The engine applies each
committed block to an in-memory layer; a flusher thread hands layers to the writer (a process of
its own in a node, see ``layer_writer``), which writes each to ``state.db`` in one SQL
transaction, coalescing as many blocks as arrived while the previous flush ran. Random
writes are what SQLite does slowest (each dirties a page); coalescing them is what lets a node
commit thousands of transactions a second while ``chain.db`` stays the fsynced source of truth.

Readers:
- the engine (one thread) reads the newest state: live layer -> flushing layer -> cache -> disk;
- queries and proofs read ``state.db`` in a read transaction (``snapshot()``), a consistent
  picture as of ``flushed_height``, which trails the newest block by at most one flush.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator

from ..core import smt
from ..core.chain import BlockOutcome, merge_tx_index
from ..core.crypto import TAG_HISTORY, tagged_hash
from ..core.module import HistoryChain, IndexTable
from ..core.registry import Registry
from .damage import DamagedData
from .layer_writer import LayerRows, LayerWriterGone, LayerWriterProcess, index_row_hash, write_layer
from .sqlite import connect

_MISS = object()
log = logging.getLogger("blokauto.store")

#: ``PRAGMA user_version`` of the state.db layout; a file of another version is set aside and rebuilt.
SCHEMA_VERSION = 3


BASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS state (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS smt (path TEXT PRIMARY KEY, node BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tx_index (
    id BLOB PRIMARY KEY, height INTEGER NOT NULL, idx INTEGER NOT NULL, expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tx_index_expires ON tx_index (expires);
"""


def index_schema(table: IndexTable) -> str:
    cols = ", ".join(f"{name} {kind} NOT NULL" for name, kind in table.columns)
    sql = (f"CREATE TABLE IF NOT EXISTS {table.name} ({cols}, _height INTEGER NOT NULL, _h BLOB NOT NULL, "
           f"PRIMARY KEY ({', '.join(table.key)})) WITHOUT ROWID;\n")
    for i, cols_ in enumerate(table.lookups):
        sql += f"CREATE INDEX IF NOT EXISTS {table.name}_l{i} ON {table.name} ({', '.join(cols_)});\n"
    return sql


class _Layer:
    """Changes of consecutive blocks not yet in ``state.db``."""

    __slots__ = ("state", "nodes", "index_ops", "txs", "height", "root", "size")

    def __init__(self, height: int, root: bytes) -> None:
        self.state: dict[bytes, bytes | None] = {}
        self.nodes: dict[str, smt.Node | None] = {}
        self.index_ops: list[tuple[IndexTable, bool, dict[str, Any], int]] = []  # (table, put, row, height)
        self.txs: dict[bytes, tuple[bytes, int, int, int]] = {}  # id -> (id, height, idx, expires)
        self.height = height
        self.root = root
        self.size = 0


class StateStore:
    def _replace_if_outdated(self, table: IndexTable) -> None:
        """A module index table another version of the code made with other columns or key: recreated
        when it holds no row; otherwise refused (its rows are derived from blocks: rebuild them)."""
        have = self._write.execute(f"PRAGMA table_info({table.name})").fetchall()
        if not have:
            return
        want = [*table.column_names, "_height", "_h"]
        key = [name for _, name, _, _, _, pk in sorted(have, key=lambda r: r[5]) if pk]
        if [r[1] for r in have] == want and key == list(table.key):
            return
        if self._write.execute(f"SELECT 1 FROM {table.name} LIMIT 1").fetchone() is not None:
            raise RuntimeError(f"{self.path}: the index table {table.name} was made by another version of blokauto "
                               f"(columns {[r[1] for r in have]}); its rows derive from the blocks: move state.db "
                               f"aside and start the node, which rebuilds it from the block log")
        with self._write:
            for (index,) in self._write.execute("SELECT name FROM sqlite_master WHERE type='index' AND tbl_name=? "
                                                "AND sql IS NOT NULL", (table.name,)).fetchall():
                self._write.execute(f"DROP INDEX {index}")
            self._write.execute(f"DROP TABLE {table.name}")

    def __init__(self, path: Path, registry: Registry, *, cache_entries: int = 300_000,
                 max_dirty: int = 600_000, writer_process: bool = False) -> None:
        self.path = path
        self.registry = registry
        self._tables = {t.name: t for t in registry.indexes}
        self.set_aside: Path | None = None
        self._write = self._open_current(path)
        self._write.executescript(BASE_SCHEMA)
        for table in registry.indexes:
            self._replace_if_outdated(table)
        self._write.executescript("".join(index_schema(t) for t in registry.indexes))
        if self._write.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._write.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self._engine = connect(path, durable=False, readonly=True, cache_mb=64)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        row = self._write.execute("SELECT v FROM meta WHERE k='height'").fetchone()
        self.flushed_height: int = -1 if row is None else int(row[0])
        row = self._write.execute("SELECT v FROM meta WHERE k='root'").fetchone()
        root = smt.EMPTY_ROOT if row is None else bytes(row[0])
        self._live = _Layer(self.flushed_height, root)
        self._flushing: _Layer | None = None
        self._flushed: _Layer | None = None  # written by the flusher, not yet folded into the cache
        self._cache: dict[bytes, bytes | None] = {}
        self._node_cache: dict[str, smt.Node | None] = {}
        self._cache_entries = cache_entries
        self._max_dirty = max_dirty
        self._cond = threading.Condition()
        self._stopping = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._flush_listeners: list[Any] = []  # called with each new flushed height (from the flusher)
        #: Layers are written by a process of their own once the flusher starts (a node), else here.
        self._writer_process = writer_process
        self._process: LayerWriterProcess | None = None

    def _open_current(self, path: Path) -> sqlite3.Connection:
        """A write connection to a state.db of this layout; a file of another layout (it is derived
        data) is set aside as ``state.db.v<N>`` and rebuilt from the block log."""
        conn = connect(path, durable=False, cache_mb=64)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        if not has_tables or version == SCHEMA_VERSION:
            return conn
        conn.close()
        n = 1
        while (aside := path.with_name(f"{path.name}.v{version}-{n}")).exists():
            n += 1
        os.replace(path, aside)
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        self.set_aside = aside
        log.warning("%s was written in layout %d, this software uses %d: it was set aside as %s and is rebuilt "
                    "from the block log", path, version, SCHEMA_VERSION, aside.name)
        return connect(path, durable=False, cache_mb=64)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self._thread is None:
            if self._writer_process:
                self._process = LayerWriterProcess(self.path, self._tables)
            self._thread = threading.Thread(target=self._flush_loop, name="state-flusher", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Flush everything applied so far, then stop."""
        self.flush()
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._process is not None:
            self._process.close()
            self._process = None
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
        self._engine.close()
        self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._write.close()

    @property
    def applied_height(self) -> int:
        return self._live.height

    @property
    def root(self) -> bytes:
        return self._live.root

    # ---------------------------------------------------------------- engine reads (newest state)

    def get(self, key: bytes) -> bytes | None:
        v = self._live.state.get(key, _MISS)  # the newest layer inline: the engine's hottest read
        return self._older(key, "state", self._cache, "SELECT v FROM state WHERE k=?", None) if v is _MISS else v

    def get_node(self, path: str) -> smt.Node | None:
        n = self._live.nodes.get(path, _MISS)
        return self._older(path, "nodes", self._node_cache, "SELECT node FROM smt WHERE path=?",
                           smt.decode_node) if n is _MISS else n

    def _older(self, key: Any, layer: str, cache: dict, sql: str, decode: Callable[[bytes], Any] | None) -> Any:
        """``key`` below the live layer: in the layer being flushed, the read cache, or ``state.db``
        (read with ``sql``, decoded, and cached); ``layer`` names the layers' map (state or nodes)."""
        f = self._flushing
        if f is not None:
            v = getattr(f, layer).get(key, _MISS)
            if v is not _MISS:
                return v
        v = cache.get(key, _MISS)
        if v is not _MISS:
            return v
        row = self._engine.execute(sql, (key,)).fetchone()
        v = None if row is None else row[0] if decode is None else decode(row[0])
        self._cache_put(cache, key, v)
        return v

    def _cache_put(self, cache: dict, key: Any, value: Any) -> None:
        if len(cache) >= self._cache_entries:
            for k in list(islice(cache, self._cache_entries // 4)):
                del cache[k]
        cache[key] = value

    # ---------------------------------------------------------------- engine writes

    def apply(self, outcome: BlockOutcome) -> None:
        """Make a committed block's changes the newest state (called by the engine thread)."""
        if self._error is not None:
            raise RuntimeError("the state flusher failed") from self._error
        self._fold_flushed()
        live = self._live
        live.state.update(outcome.writes)
        live.nodes.update(outcome.node_writes)
        h = outcome.header.height
        live.index_ops.extend((table, put, row, h) for table, put, row, _ in outcome.index_ops)
        merge_tx_index(live.txs, outcome)
        live.size += len(outcome.writes) + len(outcome.node_writes) + len(outcome.index_ops) + len(outcome.tx_ids)
        live.height = h
        live.root = bytes.fromhex(outcome.header.state_root)
        with self._cond:
            if self._flushing is None:
                self._handoff()
            elif live.size > self._max_dirty:
                self._cond.wait_for(lambda: self._flushed is not None or self._error is not None)  # back-pressure
                self._fold_flushed()
                self._handoff()

    def catch_up(self) -> None:
        """Hand the blocks applied since the last handoff to an idle flusher (engine thread). Called
        when a flush completes: without it, blocks applied while the flusher was busy would wait in
        memory, unreadable by queries and proofs, until the next block arrived."""
        if self._thread is None:
            return
        self._fold_flushed()
        with self._cond:
            if self._flushing is None:
                self._handoff()

    def _handoff(self) -> None:
        live = self._live
        if live.size == 0 and live.height == self.flushed_height:
            return
        self._flushing = live
        self._live = _Layer(live.height, live.root)
        self._cond.notify_all()

    def _fold_flushed(self) -> None:
        """Move a written layer's values into the caches (engine thread only)."""
        done = self._flushed
        if done is None:
            return
        self._flushed = None
        for k, v in done.state.items():
            if k in self._cache or v is not None:
                self._cache_put(self._cache, k, v)
        for p, n in done.nodes.items():
            self._cache_put(self._node_cache, p, n)
        self._flushing = None

    def flush(self) -> None:
        """Write everything applied so far to ``state.db`` and wait until it is there."""
        if self._thread is None:  # no flusher running (never started, or recovery failed): write here
            self._fold_flushed()
            live = self._live
            if live.size or live.height != self.flushed_height:
                self._write_layer(live)
                self.flushed_height = live.height
                for listener in self._flush_listeners:
                    listener(live.height)
                self._flushing, self._flushed = live, live
                self._live = _Layer(live.height, live.root)
                self._fold_flushed()
            return
        done = lambda: self._flushing is None or self._flushed is not None or self._error is not None  # noqa: E731
        with self._cond:
            self._cond.wait_for(done)
            self._fold_flushed()
            self._handoff()
            self._cond.wait_for(done)
            self._fold_flushed()
        if self._error is not None:
            raise RuntimeError("the state flusher failed") from self._error

    def on_flushed(self, listener: Any) -> None:
        """Call ``listener(height)`` each time state.db reaches a new height (from the flusher thread)."""
        self._flush_listeners.append(listener)

    def wait_flushed(self, height: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.flushed_height >= height or self._error is not None, timeout)

    # ---------------------------------------------------------------- the flusher

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while (self._flushing is None or self._flushed is not None) and not self._stopping:
                    self._cond.wait()
                if self._stopping and (self._flushing is None or self._flushed is not None):
                    return
                layer = self._flushing
            assert layer is not None
            try:
                self._write_layer(layer)
            except BaseException as exc:  # surfaced to the engine on its next apply
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                return
            with self._cond:
                self.flushed_height = layer.height
                self._flushed = layer
                self._cond.notify_all()
            for listener in self._flush_listeners:
                listener(layer.height)

    def _rows(self, layer: _Layer) -> LayerRows:
        encode = smt.encode_node
        return LayerRows(layer.height, layer.root, list(layer.state.items()),
                         [(p, None if n is None else encode(n)) for p, n in layer.nodes.items()],
                         list(layer.txs.values()), [(t.name, put, row, h) for t, put, row, h in layer.index_ops])

    def _write_layer(self, layer: _Layer) -> None:
        rows = self._rows(layer)
        if self._process is not None:
            try:
                self._process.write(rows)
            except LayerWriterGone as exc:
                # Its SQL transaction died with it (nothing of the layer is in state.db): a new
                # writer writes the same layer again. Twice in a row is a fault.
                log.warning("%s; starting another and writing height %d again", exc, layer.height)
                self._process.close()
                self._process = LayerWriterProcess(self.path, self._tables)
                self._process.write(rows)
        else:
            write_layer(self._write, self._tables, rows)

    # ---------------------------------------------------------------- snapshot reads (queries, proofs)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, durable=False, readonly=True)
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def snapshot(self, *, verified: bool = False) -> Iterator["Snapshot"]:
        """A consistent read of ``state.db`` (state, proofs, indexes) at its flushed height;
        ``verified``: every state value read is proven against the snapshot's root (module queries)."""
        conn = self._reader()
        conn.execute("BEGIN")
        try:
            yield Snapshot(conn, self._tables, self.registry.provider, self.registry.chains, verified=verified)
        finally:
            conn.execute("COMMIT")

    def pending_tx_location(self, txid: bytes) -> tuple[int, int] | None:
        """Where a transaction not yet in ``state.db`` was included (engine layers)."""
        for layer in (self._live, self._flushing):
            if layer is not None:
                row = layer.txs.get(txid)
                if row is not None:
                    return row[1], row[2]
        return None

    def unexpired_ids(self, time: int) -> tuple[int, Iterator[bytes]]:
        """How many ids were consumed by transactions that had not expired at ``time``, and those ids
        (state.db, then the engine layers; streamed, an id may come twice)."""
        layers = [layer for layer in (self._flushing, self._live) if layer is not None]
        where = "FROM tx_index WHERE expires >= ? AND expires > 0"
        (n,) = self._engine.execute(f"SELECT COUNT(*) {where}", (time,)).fetchone()
        n += sum(len(layer.txs) for layer in layers)

        def ids() -> Iterator[bytes]:
            for (txid,) in self._engine.execute(f"SELECT id {where}", (time,)):
                yield txid
            for layer in layers:
                yield from (txid for txid, row in layer.txs.items() if row[3] >= time and row[3] > 0)

        return n, ids()

    def missing_tx_ids(self, ids: list[bytes]) -> list[bytes]:
        """Those of ``ids`` that the tx index (state.db and the engine's layers) has no row for."""
        missing: list[bytes] = []
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found = {bytes(r[0]) for r in self._engine.execute(f"SELECT id FROM tx_index WHERE id IN ({marks})", chunk)}
            missing += [t for t in chunk if t not in found and self.pending_tx_location(t) is None]
        return missing

    def consumed_at(self, txid: bytes) -> int | None:
        """The height of the block whose transaction consumed ``txid`` (engine layers, then state.db)."""
        for layer in (self._live, self._flushing):
            if layer is not None:
                row = layer.txs.get(txid)
                if row is not None and row[3] > 0:
                    return row[1]
        row = self._engine.execute("SELECT height FROM tx_index WHERE id=? AND expires > 0", (txid,)).fetchone()
        return None if row is None else row[0]


class ReadOnlyState:
    """``snapshot()`` reads of another process's ``state.db`` (a running node's), never writing."""

    def __init__(self, path: Path, registry: Registry) -> None:
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        self.registry = registry
        self._conn = connect(path, durable=False, readonly=True)
        self._tables = {t.name: t for t in registry.indexes}

    @contextmanager
    def snapshot(self) -> Iterator["Snapshot"]:
        self._conn.execute("BEGIN")
        try:
            yield Snapshot(self._conn, self._tables, self.registry.provider, self.registry.chains)
        finally:
            self._conn.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class IdFilter:
    """A Bloom filter of transaction ids (10 bits and 6 probes per id: under 1% false positives
    at capacity). Ids are SHA-256 outputs, so their own bytes are the probe positions."""

    PROBES = 6
    _unpack = struct.Struct("<6I").unpack_from

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.count = 0
        bits = 1 << max(16, (capacity * 10 - 1).bit_length())
        self._mask = bits - 1
        self._bits = bytearray(bits >> 3)

    def add(self, txid: bytes) -> None:
        bits, mask = self._bits, self._mask
        for p in self._unpack(txid):
            p &= mask
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, txid: bytes) -> bool:
        bits, mask = self._bits, self._mask
        for p in self._unpack(txid):
            p &= mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True


class StoredReplayWindow:
    """A node's replay window: ids consumed by committed blocks are looked up in the store (its
    in-memory layers, then the tx index of state.db) behind a Bloom filter of the unexpired ones,
    so a fresh id (nearly every one) costs no database read. Memory is ~1.25 bytes per unexpired
    id instead of a dictionary entry; an expired id need not be forgotten exactly, which execution
    allows (expiry is checked before replay)."""

    def __init__(self, store: StateStore, *, min_capacity: int = 1 << 20) -> None:
        self._store = store
        self._block: dict[bytes, int] = {}
        self._min_capacity = min_capacity
        self._filter = IdFilter(min_capacity)
        self._time = -1

    def height_of(self, txid: bytes) -> int | None:
        h = self._block.get(txid)
        if h is not None or txid not in self._filter:
            return h
        return self._store.consumed_at(txid)

    def add(self, txid: bytes, expires: int, height: int) -> None:
        self._block[txid] = height
        self._filter.add(txid)

    def prune(self, time: int) -> None:
        self._block.clear()  # the previous block is in the store's layers now, or was never committed
        if self._time < 0 or self._filter.count > self._filter.capacity:
            self.rebuild(time)
        self._time = time

    def rebuild(self, time: int) -> None:
        """Refill the filter with the ids that had not expired at ``time`` (at start, and whenever
        it fills up: expired ids drop out then)."""
        n, ids = self._store.unexpired_ids(time)
        f = IdFilter(max(self._min_capacity, 2 * n))
        for txid in ids:
            f.add(txid)
        self._filter = f
        self._time = time  # the next block's prune need not rebuild it again


class IndexRowDamaged(DamagedData):
    """An index row does not match the check hash written with it."""

    def __init__(self, table: str, values: tuple) -> None:
        self.table, self.values = table, values
        super().__init__(f"the index table {table}", f"state.db, row {values!r:.160}",
                         "the row does not match the check hash written with it", scope="state")


_MISSING = object()


class Snapshot:
    """Read-only view of ``state.db`` inside one read transaction; implements ``QueryView``."""

    def __init__(self, conn: sqlite3.Connection, tables: dict[str, IndexTable], need: Any = None,
                 chains: dict[str, HistoryChain] | None = None, *, verified: bool = False) -> None:
        self.conn = conn
        #: Prove every state value read against ``root`` (tree nodes read once per snapshot).
        self._nodes: dict[str, smt.Node | None] | None = {} if verified else None
        self._tables = tables
        self._need = need
        self._chains = chains or {}
        row = conn.execute("SELECT v FROM meta WHERE k='height'").fetchone()
        self.height: int = -1 if row is None else int(row[0])
        self.time: int = -1  # the time of block ``height`` (set by whoever knows its header: the node's reader)
        row = conn.execute("SELECT v FROM meta WHERE k='root'").fetchone()
        self.root: bytes = smt.EMPTY_ROOT if row is None else bytes(row[0])

    #: Values proven against a root, shared by every verified snapshot of the process: a value proven
    #: once under a root is that root's value for good, so the next read of it (the next request's
    #: read policy, say) needs neither the database nor the proof. Bounded; cleared when full.
    PROVEN_MAX = 50_000
    _proven: dict[tuple[bytes, bytes], bytes | None] = {}

    def get(self, key: bytes) -> bytes | None:
        if self._nodes is not None:
            hit = Snapshot._proven.get((self.root, key), _MISSING)
            if hit is not _MISSING:
                return hit  # type: ignore[return-value]
        row = self.conn.execute("SELECT CAST(v AS BLOB) FROM state WHERE k=?", (key,)).fetchone()
        value = None if row is None else bytes(row[0])
        if self._nodes is not None:
            self._prove_read(key, value)
            if len(Snapshot._proven) >= self.PROVEN_MAX:
                Snapshot._proven.clear()
            Snapshot._proven[(self.root, key)] = value
        return value

    def _prove_read(self, key: bytes, value: bytes | None) -> None:
        try:
            smt.verify_proof(self.root, key, value, smt.prove(self._node_once, smt.key_hash(key)))
        except (smt.StateProofError, KeyError, ValueError) as exc:
            raise DamagedData("state.db", f"key {key.decode(errors='replace')!r}",
                              f"the stored value or tree does not prove it ({exc})", scope="state") from None

    def _node_once(self, path: str) -> smt.Node | None:
        """A tree node, read once per verified snapshot (the upper levels serve every proof)."""
        nodes = self._nodes
        assert nodes is not None
        if path not in nodes:
            nodes[path] = self.get_node(path)
        return nodes[path]

    def get_node(self, path: str) -> smt.Node | None:
        row = self.conn.execute("SELECT CAST(node AS BLOB) FROM smt WHERE path=?", (path,)).fetchone()
        return None if row is None else smt.decode_node(bytes(row[0]))

    def prove(self, key: bytes) -> tuple[bytes | None, smt.StateProof]:
        return self.get(key), smt.prove(self.get_node, smt.key_hash(key))

    def tx_location(self, txid: bytes) -> tuple[int, int] | None:
        row = self.conn.execute("SELECT height, idx FROM tx_index WHERE id=?", (txid,)).fetchone()
        return None if row is None else (row[0], row[1])

    def _where(self, table: IndexTable, where: dict[str, Any]) -> tuple[str, list[Any]]:
        names = table.column_names
        for k in where:
            if k not in names:
                raise KeyError(f"{table.name} has no column {k}")
        clause = " AND ".join(f"{k}=?" for k in where) or "1"
        return clause, list(where.values())

    def rows(self, table: IndexTable, where: dict[str, Any], *, order: tuple[str, ...] = (),
             limit: int = 100, offset: int = 0, descending: bool = False) -> list[dict[str, Any]]:
        clause, args = self._where(table, where)
        cols = table.column_names
        for o in order:
            if o not in cols:
                raise KeyError(f"{table.name} has no column {o}")
        order_sql = (" ORDER BY " + ", ".join(f"{o} {'DESC' if descending else 'ASC'}" for o in order)) if order else ""
        sql = f"SELECT {', '.join(cols)}, _height, _h FROM {table.name} WHERE {clause}{order_sql} LIMIT ? OFFSET ?"
        chain = self._chains.get(table.name)
        if chain is not None and set(where) == set(chain.parent):
            self._check_chain(chain, tuple(where[c] for c in chain.parent))
        out = []
        for r in self.conn.execute(sql, args + [limit, offset]):
            values = r[:-2]
            if index_row_hash(table.name, values, r[-2]) != r[-1]:
                raise IndexRowDamaged(table.name, values)
            out.append(dict(zip(cols, values)))
        return out

    def _check_chain(self, chain: HistoryChain, parent: tuple) -> None:
        """All of a parent's rows hash to the (count, head) its state record commits to."""
        committed = chain.committed(self, parent)
        if committed is None:
            return
        where = " AND ".join(f"{c}=?" for c in chain.parent)
        head = bytes(32)
        n = 0
        for (entry,) in self.conn.execute(f"SELECT {chain.entry} FROM {chain.table.name} WHERE {where} "
                                          f"ORDER BY {chain.seq}", parent):
            head = tagged_hash(TAG_HISTORY, head + bytes(entry))
            n += 1
        if (n, head.hex()) != committed:
            raise DamagedData(f"the index table {chain.table.name}", f"state.db, the rows of {parent!r:.120}",
                              f"{n} rows hash to {head.hex()[:16]}…, the state record commits to {committed[0]} "
                              f"rows hashing to {committed[1][:16]}…", scope="state")

    def sql(self, text: str, args: Any = (), **tables: IndexTable) -> list[tuple]:
        for t in tables.values():
            if self._tables.get(t.name) is not t:
                raise KeyError(f"{t.name} is not a declared index table")
        return self.conn.execute(text.format(**{k: t.name for k, t in tables.items()}), args).fetchall()

    def need(self, protocol: Any) -> Any:
        return self._need(protocol)

    def count(self, table: IndexTable, where: dict[str, Any]) -> int:
        clause, args = self._where(table, where)
        return self.conn.execute(f"SELECT count(*) FROM {table.name} WHERE {clause}", args).fetchone()[0]
