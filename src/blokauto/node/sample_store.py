"""The node's sample store: telemetry samples kept off the ledger, beside the node (``DATA/samples.db``).

The ledger holds a batch's Merkle root and trip summary (``telemetry.commit_batch``); the samples
themselves travel beside the transaction to one node (``POST /v1/telemetry/batches``), which keeps
them here for the vehicle's holder and the organisations the holder consented to for ``location``::

    batches(vin, root, samples, count, start, end, utc_offset_min, tx, received_ms)   PRIMARY KEY (vin, root)

    root        the batch's RFC 9162 Merkle root (hex), as the ledger committed it: a read goes from
                the committed record to its samples, so nothing the ledger does not hold is served
    samples     the canonical JSON array of the samples, zlib level 1 (about 4x smaller; level 6 is
                a fifth smaller again at five times the CPU: docs/telemetry.md#the-sample-store)
    start, end  the first and last sample's t (``erase(vin, before=...)`` reads ``end``)
    tx          the id of the transaction the samples came with; received_ms the node's clock then

Rules:

- **Durable before acknowledged.** WAL with ``synchronous=FULL``: ``put`` returns once the row is
  fsynced, and only then does the route submit the transaction and answer 202. Puts that arrive
  while a commit is running are committed together by the next one (group commit: one fsync).
- **Checked on every read.** ``get`` decompresses, decodes and recomputes the Merkle root of the
  samples; anything that does not give back the root the row is keyed by is ``SamplesDamaged``,
  never served.
- **Damage never stops the node.** The ledger does not depend on this file: a ``samples.db``
  SQLite cannot open makes the store unusable (``SampleStoreUnavailable`` on every call, logged
  once), and the node goes on ordering, executing and serving everything else. No SQLite error
  leaves this module as such (the API would take it for damage to the ledger's own databases).
- **Only what the ledger accepted.** A row is claimed by the transaction it came with until
  ``settle`` says what became of it: once no submission of the batch is in flight and none was
  kept (refused at submission, or failed at execution), the row is deleted. A node that stops
  before a block settles keeps the row (never served unless its root is committed; ``erase``
  removes it).
- **The node's account only.** ``samples.db`` (and so its ``-wal`` and ``-shm``) is mode 0600.
- **Erasure overwrites.** ``secure_delete=ON`` zeroes what a delete frees, and ``erase`` then
  checkpoints and truncates the write-ahead log, which still held the deleted pages.

The wall clock is allowed here (``received_ms``): this is the node's own store, not the state
transition.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
import zlib
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Sequence

import msgspec

from ..core.errors import Unavailable
from ..modules.telemetry import Sample, batch_root, decode_samples
from ..telemetry_intake import ZLIB_LEVEL, PreparedBatch, SampleStoreUnavailable, SamplesDamaged

log = logging.getLogger("blokauto.node")

FILE = "samples.db"
FORMAT = 1  # PRAGMA user_version of the schema below
#: Most bytes one batch's samples decompress to (10,000 samples of at most 69 bytes each, with room).
MAX_RAW_BYTES = 2 * 2**20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    vin TEXT NOT NULL,
    root TEXT NOT NULL,
    samples BLOB NOT NULL,
    count INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    utc_offset_min INTEGER NOT NULL,
    tx TEXT NOT NULL,
    received_ms INTEGER NOT NULL,
    PRIMARY KEY (vin, root)
);
CREATE INDEX IF NOT EXISTS batches_by_end ON batches (vin, "end");
"""


class _Claim:
    """Submissions in flight that carried one batch, and the one that stored it (``owner``)."""

    __slots__ = ("pending", "owner", "kept")

    def __init__(self) -> None:
        self.pending = 0
        self.owner: str | None = None
        self.kept = False


class StoredBatch(msgspec.Struct, frozen=True):
    """One batch's samples as the store holds them, checked against ``root``."""

    vin: str
    root: str
    samples: list[Sample]
    utc_offset_min: int
    tx: str
    received_ms: int


_encode = msgspec.json.Encoder().encode


class SampleStore:
    """``samples.db`` in a node's data folder (see the module docstring). Thread-safe: one
    connection, one lock (a put is one fsync; reads are short)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self.broken: str | None = None  # why the store cannot be used (None: it can)
        self._claims: dict[tuple[str, str], _Claim] = {}  # (vin, root) -> submissions in flight
        self._queue: list[tuple[tuple[Any, ...], Future]] = []  # rows waiting for the next group commit
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._identity: tuple[int, int] | None = None  # (device, inode) of the file the connection opened
        try:
            self._conn = self._open()
            st = os.stat(self.path)
            self._identity = (st.st_dev, st.st_ino)
        except sqlite3.Error as exc:
            self._unusable(f"SQLite cannot open it: {exc}")
        except OSError as exc:  # a folder in its place, no permission
            self._unusable(f"it cannot be opened: {exc.strerror or exc}")

    @classmethod
    def open(cls, data_dir: Path) -> "SampleStore":
        """The store of the node whose data folder is ``data_dir`` (created on first use)."""
        return cls(Path(data_dir) / FILE)

    def _open(self) -> sqlite3.Connection:
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # positions: the node's account only
        if stat.S_IMODE(os.stat(self.path).st_mode) & 0o077:
            os.chmod(self.path, 0o600)  # SQLite gives its -wal and -shm files the same mode
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, FORMAT):
                raise sqlite3.DatabaseError(f"its format is {version}; this software reads format {FORMAT}")
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version={FORMAT}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _unusable(self, reason: str) -> SampleStoreUnavailable:
        if self.broken is None:
            log.error("sample store %s is unusable: %s; telemetry batches are refused until it is repaired "
                      "(docs/telemetry.md#the-sample-store)", self.path, reason)
            self.broken = reason
        return SampleStoreUnavailable(reason=self.broken)

    def _check_file(self) -> None:
        """Refuse (and stay refusing) once ``samples.db`` was removed, replaced or emptied under the
        running node: what it would write then is lost at the next start, so it must not be acknowledged."""
        try:
            st = os.stat(self.path)
        except OSError:
            raise self._unusable("samples.db was removed while the node ran (what it held since the node started "
                                 "is gone with it); stop the node and put back a copy") from None
        if self._identity is not None and (st.st_dev, st.st_ino) != self._identity:
            raise self._unusable("samples.db was replaced while the node ran; stop the node before putting a copy back")
        if st.st_size == 0:
            raise self._unusable("samples.db was emptied while the node ran; stop the node and put back a copy")

    def _run(self, fn: Any) -> Any:
        """``fn(conn)`` under the lock; SQLite failing is the store's refusal, never a raw SQLite error."""
        with self._lock:
            if self.broken is not None or self._conn is None:
                raise SampleStoreUnavailable(reason=self.broken or "it is closed")
            self._check_file()
            try:
                return fn(self._conn)
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc) \
                        and "not a database" not in str(exc):
                    raise Unavailable(reason=f"its sample store failed: {exc}") from None  # a lock, a full disk
                raise self._unusable(f"SQLite cannot read it: {exc}") from None

    # ---------------------------------------------------------------- writing

    def put(self, vin: str, root: str, samples: Sequence[Sample], utc_offset_min: int, tx: str, *,
            received_ms: int | None = None) -> bool:
        """Keep ``samples`` (checked by the caller: their root is ``root``) durably, as claimed by
        transaction ``tx`` (hex id) until ``settle`` says what the ledger did with it. True if this
        added the row; False if the store already held the batch (the row is left as it was)."""
        return self.put_prepared(vin, root, PreparedBatch(zlib.compress(_encode(samples), ZLIB_LEVEL), len(samples),
                                                          samples[0].t, samples[-1].t),
                                 utc_offset_min, tx, received_ms=received_ms)

    def put_prepared(self, vin: str, root: str, batch: PreparedBatch, utc_offset_min: int, tx: str, *,
                     received_ms: int | None = None) -> bool:
        """``put`` for samples already checked and compressed (``telemetry_intake.prepare_batch``, run
        by the intake workers)."""
        row = (vin, root, batch.blob, batch.count, batch.start, batch.end, utc_offset_min, tx,
               time.time_ns() // 1_000_000 if received_ms is None else received_ms)
        mine: Future = Future()
        with self._queue_lock:
            self._queue.append((row, mine))
        with self._commit_lock:  # group commit: whoever commits takes every row queued so far, one fsync
            if not mine.done():
                with self._queue_lock:
                    rows, self._queue = self._queue, []
                try:
                    inserted = self._run(lambda conn: self._insert(conn, [r for r, _ in rows]))
                except BaseException as exc:
                    for _, f in rows:
                        f.set_exception(exc)
                else:
                    for (_, f), ok in zip(rows, inserted):
                        f.set_result(ok)
        return bool(mine.result())

    def _insert(self, conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[bool]:
        """Insert ``rows`` in one transaction; then count each as a claim in flight."""
        conn.execute("BEGIN IMMEDIATE")
        inserted = [conn.execute('INSERT OR IGNORE INTO batches (vin, root, samples, count, start, "end", '
                                 'utc_offset_min, tx, received_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
                                 row).rowcount == 1 for row in rows]
        conn.execute("COMMIT")
        for row, added in zip(rows, inserted):
            claim = self._claims.setdefault((row[0], row[1]), _Claim())
            claim.pending += 1
            if added:
                claim.owner = row[7]
        return inserted

    def settle(self, vin: str, root: str, tx: str, kept: bool) -> None:
        """What the ledger did with transaction ``tx`` that claimed this batch: ``kept`` (committed
        and executed), or not (refused at submission, or failed at execution). Once no submission
        claims the batch any more and none was kept, the samples its first claimant stored are
        discarded: the node keeps no positions the ledger did not accept."""
        def settle(conn: sqlite3.Connection) -> None:
            claim = self._claims.get((vin, root))
            if claim is None:
                return
            claim.pending -= 1
            claim.kept = claim.kept or kept
            if claim.pending > 0:
                return
            del self._claims[(vin, root)]
            if claim.owner is not None and not claim.kept:
                conn.execute("DELETE FROM batches WHERE vin = ? AND root = ? AND tx = ?", (vin, root, claim.owner))

        self._run(settle)

    def erase(self, vin: str, before: int | None = None, *, since: int = 0) -> int:
        """Erase every batch of ``vin`` received at or after ``since`` (ms: the holding's start), or
        only those whose last sample is before ``before``; the freed pages are zeroed and the
        write-ahead log emptied. Returns how many were erased."""
        def erase(conn: sqlite3.Connection) -> int:
            if before is None:
                n = conn.execute("DELETE FROM batches WHERE vin = ? AND received_ms >= ?", (vin, since)).rowcount
            else:
                n = conn.execute('DELETE FROM batches WHERE vin = ? AND "end" < ? AND received_ms >= ?',
                                 (vin, before, since)).rowcount
            if n:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                if busy:
                    log.warning("sample store: the write-ahead log could not be truncated after an erasure "
                                "(busy); it is at the next one")
            return int(n)

        return int(self._run(erase))

    # ---------------------------------------------------------------- reading

    def get(self, vin: str, root: str) -> StoredBatch | None:
        """The samples of ``vin``'s batch with root ``root`` (hex), checked; None if not held here.
        Raises ``SamplesDamaged`` if what is stored is not the batch that root commits to."""
        row = self._run(lambda conn: conn.execute(
            "SELECT samples, count, utc_offset_min, tx, received_ms FROM batches WHERE vin = ? AND root = ?",
            (vin, root)).fetchone())
        if row is None:
            return None
        blob, count, offset, tx, received = row
        try:
            d = zlib.decompressobj()
            raw = d.decompress(bytes(blob), MAX_RAW_BYTES)
            if d.unconsumed_tail or not d.eof:
                raise ValueError("it does not decompress to a batch (truncated, or larger than any batch)")
            samples = decode_samples(raw)
        except (zlib.error, ValueError, TypeError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise self._damaged(vin, root, f"its samples cannot be read: {exc}") from None
        if len(samples) != count:
            raise self._damaged(vin, root, f"it holds {len(samples)} samples, and its row says {count}")
        got = batch_root(samples).hex()
        if got != root:
            raise self._damaged(vin, root, f"its samples hash to root {got}")
        return StoredBatch(vin, root, samples, int(offset), str(tx), int(received))

    def _damaged(self, vin: str, root: str, reason: str) -> SamplesDamaged:
        log.error("sample store %s: the batch of %s with root %s is damaged: %s", self.path, vin, root, reason)
        return SamplesDamaged(vin=vin, root=root, reason=reason)

    def count(self, vin: str | None = None) -> int:
        """How many batches the store holds (of ``vin``, or in all)."""
        if vin is None:
            return int(self._run(lambda conn: conn.execute("SELECT count(*) FROM batches").fetchone()[0]))
        return int(self._run(lambda conn: conn.execute("SELECT count(*) FROM batches WHERE vin = ?",
                                                       (vin,)).fetchone()[0]))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error:
                    pass
                self._conn = None
                if self.broken is None:
                    self.broken = "it is closed"
