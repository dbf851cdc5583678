"""Writing the engine's state layers into ``state.db``: one SQL transaction per layer.

A layer is what consecutive committed blocks changed: state values, state tree nodes, tx index
rows and the modules' index rows. Writing it is SQLite work plus a check hash per index row and
the per-table digests, about a third of what a node's interpreter did per transaction when it
ran in a thread beside the engine. ``LayerWriterProcess`` does it in a process of its own: the
node hands each layer over as one msgpack message (plain rows, state tree nodes already encoded)
and waits, without holding its interpreter lock, for the answer. ``write_layer`` is the same
writing in the calling thread (recovery, tools and tests use it).

A layer is written whole or not at all (one SQL transaction); the block log stays the source of
truth, so a writer that dies mid-layer loses nothing that a restart does not replay.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import msgspec

from ..core.module import IndexTable
from .sqlite import connect

_ROW_TAG = b"blokauto/index-row/v1\x00"
_pack_row = msgspec.msgpack.Encoder().encode
_MOD = 1 << 256


class LayerRows(msgspec.Struct, array_like=True):
    """A layer as plain rows (what crosses to the writer process)."""

    height: int
    root: bytes
    state: list[tuple[bytes, bytes | None]]
    nodes: list[tuple[str, bytes | None]]  # path -> encoded node, None = deleted
    txs: list[tuple[bytes, int, int, int]]  # (id, height, idx, expires)
    index_ops: list[tuple[str, bool, dict[str, Any], int]]  # (table, put, row, height)


def index_row_hash(table: str, values: tuple, height: int) -> bytes:
    """The check hash stored with each index row (``_h``): its table, values and height."""
    return hashlib.sha256(_ROW_TAG + table.encode() + b"\x00" + _pack_row((*values, height))).digest()


def digest_key(table: str) -> str:
    """The meta key of a table's digest: the count of its rows and the sum of their check hashes
    (mod 2^256), kept as rows are written, so a row removed or added behind the node's back shows."""
    return f"digest:{table}"


def pack_digest(count: int, total: int) -> bytes:
    return count.to_bytes(8, "big") + total.to_bytes(32, "big")


def unpack_digest(raw: bytes | None) -> tuple[int, int]:
    if raw is None:
        return 0, 0
    raw = bytes(raw)
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def write_layer(c: sqlite3.Connection, tables: dict[str, IndexTable], layer: LayerRows) -> None:
    """Write ``layer`` in one SQL transaction on ``c`` (rolled back whole if anything fails)."""
    c.execute("BEGIN IMMEDIATE")
    try:
        c.executemany("INSERT OR REPLACE INTO state VALUES (?,?)", [(k, v) for k, v in layer.state if v is not None])
        c.executemany("DELETE FROM state WHERE k=?", [(k,) for k, v in layer.state if v is None])
        c.executemany("INSERT OR REPLACE INTO smt VALUES (?,?)", [(p, n) for p, n in layer.nodes if n is not None])
        c.executemany("DELETE FROM smt WHERE path=?", [(p,) for p, n in layer.nodes if n is None])
        # A row for an id that consumed it (expires > 0) is never replaced by a later copy.
        c.executemany(
            "INSERT INTO tx_index VALUES (?,?,?,?) ON CONFLICT(id) DO UPDATE SET height=excluded.height, "
            "idx=excluded.idx, expires=excluded.expires WHERE tx_index.expires = 0 AND excluded.expires > 0",
            layer.txs)
        _write_index_ops(c, tables, layer.index_ops)
        c.execute("INSERT OR REPLACE INTO meta VALUES ('height', ?)", (layer.height,))
        c.execute("INSERT OR REPLACE INTO meta VALUES ('root', ?)", (layer.root,))
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise


def _write_index_ops(c: sqlite3.Connection, tables: dict[str, IndexTable], ops: list) -> None:
    # The last operation on a row wins: a put replaces the whole row, a delete removes it.
    final: dict[tuple[str, tuple], tuple[bool, dict[str, Any], int]] = {}
    for name, put, row, height in ops:
        final[(name, tuple(row[k] for k in tables[name].key))] = (put, row, height)
    by_table: dict[str, tuple[list, list]] = {}
    for (name, pk), (put, row, height) in final.items():
        puts, dels = by_table.setdefault(name, ([], []))
        if put:
            values = tuple(row[col] for col in tables[name].column_names)
            puts.append(values + (height, index_row_hash(name, values, height)))
        else:
            dels.append(pk)
    for name, (puts, dels) in by_table.items():
        table = tables[name]
        key_pos = [table.column_names.index(k) for k in table.key]
        row = c.execute("SELECT v FROM meta WHERE k=?", (digest_key(name),)).fetchone()
        count, total = unpack_digest(row[0] if row else None)
        for old in _existing_row_hashes(c, table, [tuple(p[i] for i in key_pos) for p in puts] + dels):
            count, total = count - 1, (total - int.from_bytes(old, "big")) % _MOD
        for p in puts:
            count, total = count + 1, (total + int.from_bytes(p[-1], "big")) % _MOD
        if puts:
            marks = ",".join("?" * (len(table.columns) + 2))
            c.executemany(f"INSERT OR REPLACE INTO {name} VALUES ({marks})", puts)
        if dels:
            where = " AND ".join(f"{k}=?" for k in table.key)
            c.executemany(f"DELETE FROM {name} WHERE {where}", dels)
        if (count, total) == (0, 0):  # an empty table's digest is its absence: nothing to tamper with unseen
            c.execute("DELETE FROM meta WHERE k=?", (digest_key(name),))
        else:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (digest_key(name), pack_digest(count, total)))


def _existing_row_hashes(c: sqlite3.Connection, table: IndexTable, keys: list[tuple]) -> list[bytes]:
    """The check hashes of the rows now stored under ``keys`` (rows about to be replaced or deleted):
    one primary-key probe each (a row-value ``IN (VALUES …)`` over many keys scanned the table)."""
    sql = f"SELECT _h FROM {table.name} WHERE " + " AND ".join(f"{k}=?" for k in table.key)
    run = c.execute
    out: list[bytes] = []
    for key in keys:
        row = run(sql, key).fetchone()
        if row is not None:
            out.append(bytes(row[0]))
    return out


# ---------------------------------------------------------------- the writer process


class _Tables(msgspec.Struct, array_like=True):
    tables: list[tuple[str, list[tuple[str, str]], list[str]]]  # (name, columns, key)


_encode = msgspec.msgpack.Encoder().encode
_decode_layer = msgspec.msgpack.Decoder(LayerRows).decode
_decode_answer = msgspec.msgpack.Decoder(str | None).decode


class LayerWriterFailed(RuntimeError):
    """The writer process could not write a layer."""


class LayerWriterGone(LayerWriterFailed):
    """The writer process is gone (killed, or crashed): its layer was not committed."""


class LayerWriterProcess:
    """Writes layers to ``path`` in a child process, one at a time (``write`` waits for it)."""

    def __init__(self, path: Path, tables: dict[str, IndexTable]) -> None:
        to_r, to_w = os.pipe()  # node -> writer
        from_r, from_w = os.pipe()  # writer -> node
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "blokauto.store.layer_writer", str(to_r), str(from_w), str(path)],
            pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL, close_fds=True)
        os.close(to_r)
        os.close(from_w)
        self._out = Connection(to_w, readable=False)
        self._in = Connection(from_r, writable=False)
        spec = _Tables([(t.name, [tuple(c) for c in t.columns], list(t.key)) for t in tables.values()])
        self._out.send_bytes(_encode(spec))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def write(self, layer: LayerRows) -> None:
        try:
            self._out.send_bytes(_encode(layer))
            answer = _decode_answer(self._in.recv_bytes())
        except (EOFError, OSError) as exc:
            raise LayerWriterGone(f"the state writer process (pid {self._proc.pid}) is gone ({exc!r})") from None
        if answer is not None:
            raise LayerWriterFailed(f"the state writer process could not write height {layer.height}: {answer}")

    def close(self) -> None:
        """Let the writer finish and exit (it exits when its input closes)."""
        try:
            self._out.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._in.close()


def _writer_main(rfd: int, wfd: int, path: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the node stops its writer
    inbox, outbox = Connection(rfd, writable=False), Connection(wfd, readable=False)
    try:
        spec = msgspec.msgpack.decode(inbox.recv_bytes(), type=_Tables)
    except (EOFError, OSError):
        return
    tables = {name: IndexTable(name, tuple(tuple(c) for c in cols), tuple(key)) for name, cols, key in spec.tables}
    conn = connect(Path(path), durable=False, cache_mb=64)
    try:
        while True:
            try:
                data = inbox.recv_bytes()
            except (EOFError, OSError):
                return  # the node closed its end (stopping, or gone): nothing half-written is left
            try:
                write_layer(conn, tables, _decode_layer(data))
                answer = None
            except (sqlite3.Error, msgspec.MsgspecError, KeyError, ValueError, TypeError) as exc:
                # a layer SQLite refuses or a message that does not read: answered, the node fails its
                # flusher with this reason (anything else ends this process: the node sees it gone)
                answer = f"{type(exc).__name__}: {exc}"
            try:
                outbox.send_bytes(_encode(answer))
            except OSError:
                return  # the node is gone

    finally:
        conn.close()


if __name__ == "__main__":
    _writer_main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
