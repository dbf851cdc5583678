"""The block log (``chain.db``): headers, signed transactions, receipts and attestations.

Append-only, one SQL transaction per block, fsynced before ``append`` returns: a block is
acknowledged only once it is here. Everything else a node keeps can be rebuilt from this file.
The log is checkpointed out of its write-ahead log regularly and on close, so a stopped node's
``chain.db`` holds every block by itself.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Iterator

import msgspec

from ..core.block import Checkpoint, Genesis, Header, NodeSignature, Receipt
from ..core.chain import BlockOutcome
from ..core.encoding import canonical, decode
from .damage import DamagedData
from .sqlite import connect

_pack = msgspec.msgpack.Encoder().encode
_unpack_list = msgspec.msgpack.Decoder(list[bytes]).decode

#: The meta table's keys: the genesis document, the ordering-stream position the last block ended at,
#: and the pinned identity (creation time) of the ordering stream.
META_KEYS = frozenset({"genesis", "stream_seq", "order_stream_created"})
CHECKPOINT_EVERY = 64  # blocks between checkpoints of the write-ahead log into chain.db
# Columns read as bytes whatever a damaged row holds (text that is not UTF-8 must not stop a read).
_BLOCK_COLUMNS = ("height, CAST(header AS BLOB), CAST(hash AS BLOB), CAST(txs AS BLOB), CAST(ids AS BLOB), "
                  "CAST(receipts AS BLOB)")
_BLOCK_COLUMNS_RANGE = f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    header BLOB NOT NULL,
    txs BLOB NOT NULL,
    ids BLOB NOT NULL,
    receipts BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS attestations (
    height INTEGER NOT NULL,
    node TEXT NOT NULL,
    sig TEXT NOT NULL,
    PRIMARY KEY (height, node)
) WITHOUT ROWID;
"""


class CorruptBlock(DamagedData):
    """A stored block cannot be read back the way it was written."""

    def __init__(self, height: int, reason: str) -> None:
        self.height = height
        super().__init__("the block log", f"block {height}", reason, scope="block", height=height)


def _header(height: int, raw: bytes) -> Header:
    try:
        return decode(raw, Header)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise CorruptBlock(height, f"the stored header cannot be read ({exc})") from None


class StoredBlock(msgspec.Struct, frozen=True):
    header: Header
    hash: bytes
    txs: list[bytes]
    ids: list[bytes]
    receipts: list[bytes]

    def receipt(self, index: int) -> Receipt:
        return decode(self.receipts[index], Receipt)


class BlockLog:
    """The block log. ``readonly``: for reading another process's log (a running node's), never writing."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly and not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        self._write: sqlite3.Connection | None = None
        if not readonly:
            self._write = connect(path, durable=True)
            self._write.executescript(SCHEMA)
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._appended = 0

    def _read(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, durable=True, readonly=True)
            with self._lock:
                self._readers.append(conn)
        return conn

    @property
    def synchronous(self) -> int:
        """The write connection's ``PRAGMA synchronous`` (2: FULL, every commit fsynced)."""
        return self._writer().execute("PRAGMA synchronous").fetchone()[0]

    def _writer(self) -> sqlite3.Connection:
        if self._write is None:
            raise PermissionError(f"{self.path} was opened read-only")
        return self._write

    def close(self) -> None:
        """Close every connection; the writer checkpoints the write-ahead log into chain.db first."""
        with self._lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        self._local = threading.local()
        if self._write is not None:
            self._write.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._write.close()

    # ---------------------------------------------------------------- genesis

    def genesis(self) -> Genesis | None:
        row = self._read().execute("SELECT v FROM meta WHERE k='genesis'").fetchone()
        return None if row is None else decode(row[0], Genesis)

    def set_genesis(self, genesis: Genesis) -> None:
        with self._lock:
            self._writer().execute("INSERT INTO meta VALUES ('genesis', ?)", (canonical(genesis),))

    # ---------------------------------------------------------------- writing

    def append(self, outcome: BlockOutcome, attestation: NodeSignature | None, *, stream_seq: int | None = None) -> None:
        """Commit one block (and this node's attestation of it) durably; a networked node records
        with it the ordering-stream position the block ends at, so a restart resumes after it."""
        h = outcome.header
        with self._lock:
            c = self._writer()
            c.execute("BEGIN IMMEDIATE")
            try:
                c.execute(
                    "INSERT INTO blocks VALUES (?,?,?,?,?,?)",
                    (h.height, h.hash(), canonical(h), _pack(outcome.txs), b"".join(outcome.tx_ids),
                     _pack(outcome.receipt_bytes)),
                )
                if attestation is not None:
                    c.execute("INSERT INTO attestations VALUES (?,?,?)", (h.height, attestation.node, attestation.sig))
                if stream_seq is not None:
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('stream_seq', ?)", (stream_seq,))
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            self._appended += 1
            if self._appended % CHECKPOINT_EVERY == 0:  # keep the WAL short; readers may hold it: then later
                c.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def add_attestation(self, height: int, att: NodeSignature) -> bool:
        with self._lock:
            cur = self._writer().execute("INSERT OR IGNORE INTO attestations VALUES (?,?,?)", (height, att.node, att.sig))
        return cur.rowcount == 1

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole log (SQLite's online backup, while blocks keep coming)."""
        dest = sqlite3.connect(path)
        try:
            self._read().backup(dest)
        finally:
            dest.close()

    def meta(self, key: str) -> str | None:
        """A value the node keeps beside its blocks (one of ``META_KEYS``)."""
        row = self._read().execute("SELECT v FROM meta WHERE k=?", (key,)).fetchone()
        return None if row is None else (bytes(row[0]).decode() if isinstance(row[0], (bytes, memoryview)) else str(row[0]))

    def set_meta(self, key: str, value: str) -> None:
        if key not in META_KEYS:
            raise KeyError(f"{key!r} is not a declared meta key of the block log")
        with self._lock:
            self._writer().execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def unknown_meta(self) -> list[str]:
        """Meta keys this software never writes (a changed or foreign row)."""
        return [k for (k,) in self._read().execute("SELECT k FROM meta") if k not in META_KEYS]

    def stream_seq(self) -> int:
        """The ordering-stream sequence the last block ended at (0: none)."""
        row = self._read().execute("SELECT v FROM meta WHERE k='stream_seq'").fetchone()
        return 0 if row is None else int(row[0])

    def attestation_count(self, height: int) -> int:
        return self._read().execute("SELECT count(*) FROM attestations WHERE height=?", (height,)).fetchone()[0]

    def highest_attested(self, quorum: int, above: int) -> int:
        """The highest height above ``above`` that holds ``quorum`` attestations (``above`` if none does);
        read from the newest height down, so it costs what the lag is, not the heights searched."""
        row = self._read().execute("SELECT height FROM attestations WHERE height > ? GROUP BY height "
                                   "HAVING count(*) >= ? ORDER BY height DESC LIMIT 1", (above, quorum)).fetchone()
        return above if row is None else row[0]

    # ---------------------------------------------------------------- reading

    def height(self) -> int:
        """Height of the last committed block, or -1 for an empty log."""
        row = self._read().execute("SELECT max(height) FROM blocks").fetchone()
        return -1 if row[0] is None else row[0]

    def gaps(self, limit: int = 5) -> list[int]:
        """Heights missing below the last block (a complete log has none)."""
        c = self._read()
        (count, top) = c.execute("SELECT count(*), max(height) FROM blocks").fetchone()
        if top is None or count == top + 1:
            return []
        rows = c.execute("SELECT height + 1 FROM blocks b WHERE height < ? AND NOT EXISTS "
                         "(SELECT 1 FROM blocks WHERE height = b.height + 1) ORDER BY height LIMIT ?",
                         (top, limit)).fetchall()
        first = [] if c.execute("SELECT 1 FROM blocks WHERE height = 0").fetchone() else [0]
        return (first + [r[0] for r in rows])[:limit]

    def header(self, height: int) -> Header | None:
        row = self._read().execute("SELECT CAST(header AS BLOB) FROM blocks WHERE height=?", (height,)).fetchone()
        return None if row is None else _header(height, row[0])

    def headers(self, start: int, end: int) -> list[Header]:
        rows = self._read().execute("SELECT height, CAST(header AS BLOB) FROM blocks WHERE height BETWEEN ? AND ? ORDER BY height",
                                    (start, end)).fetchall()
        return [_header(h, raw) for h, raw in rows]

    def block(self, height: int) -> StoredBlock | None:
        row = self._read().execute(f"SELECT {_BLOCK_COLUMNS} FROM blocks WHERE height=?",
                                   (height,)).fetchone()
        return None if row is None else self._stored(row)

    def blocks(self, start: int = 0, end: int | None = None) -> Iterator[StoredBlock]:
        """Blocks from ``start`` to ``end`` inclusive, in order (read in batches)."""
        h = start
        while True:
            hi = h + 63 if end is None else min(h + 63, end)
            rows = self._read().execute(
                _BLOCK_COLUMNS_RANGE,
                (h, hi)).fetchall()
            for row in rows:
                yield self._stored(row)
            if len(rows) < hi - h + 1 or (end is not None and hi >= end):
                return
            h = hi + 1

    @staticmethod
    def _stored(row: tuple) -> StoredBlock:
        height, header_raw, hsh, txs, ids, receipts = row
        try:
            return StoredBlock(decode(header_raw, Header), bytes(hsh), _unpack_list(txs),
                               [ids[i:i + 32] for i in range(0, len(ids), 32)], _unpack_list(receipts))
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
            raise CorruptBlock(height, f"the stored block cannot be read ({exc})") from None

    def attestations(self, height: int) -> list[NodeSignature]:
        """The attestations stored for ``height`` (waiting for a quorum is the node's ``CheckpointService``)."""
        rows = self._read().execute("SELECT CAST(node AS BLOB), CAST(sig AS BLOB) FROM attestations WHERE height=? ORDER BY node",
                                    (height,)).fetchall()
        return [NodeSignature(bytes(n).decode(errors="replace"), bytes(s).decode(errors="replace")) for n, s in rows]

    def ids(self, height: int) -> list[bytes]:
        """The transaction ids stored with block ``height`` (empty if there is none)."""
        row = self._read().execute("SELECT CAST(ids AS BLOB) FROM blocks WHERE height=?", (height,)).fetchone()
        ids = b"" if row is None else bytes(row[0])
        return [ids[i:i + 32] for i in range(0, len(ids), 32)]

    def checkpoint(self, height: int) -> Checkpoint | None:
        header = self.header(height)
        if header is None:
            return None
        return Checkpoint(header, self.attestations(height))
