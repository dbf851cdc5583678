"""SQLite connections with the pragmas the two databases need."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: Path, *, durable: bool, readonly: bool = False, cache_mb: int = 32) -> sqlite3.Connection:
    """Open ``path`` in WAL mode.

    ``durable`` (the block log): synchronous=FULL, every commit is fsynced before it returns.
    Otherwise (the state checkpoint): synchronous=NORMAL, which keeps the file consistent after
    a crash but may lose the newest commits; recovery replays them from the block log.
    """
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    conn.execute(f"PRAGMA cache_size=-{cache_mb * 1024}")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn
