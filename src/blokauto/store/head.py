"""``DATA/head.json``: the last block this node committed, kept beside the block log.

The block log is the source of truth, but a damaged log can look like a shorter valid one (a
damaged WAL frame makes SQLite drop every frame after it). The node rewrites this small file
after every commit (fsynced on a clean stop), so at start it knows its committed height from
more than one place (here and ``state.db``) and refuses a log that ends before it. A solo node
also records here how many groups of its intake journal it answered (generation and count),
so a journal that lost some is refused rather than read as a crash.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import msgspec

from ..core.block import Header

log = logging.getLogger("blokauto.store")

HEAD_FILE = "head.json"


class _Head(msgspec.Struct, forbid_unknown_fields=True):
    height: int
    hash: str
    state_root: str
    journal_generation: int = -1  # -1: no intake journal (a networked node)
    journal_groups: int = 0


@dataclass(frozen=True)
class CommittedHead:
    height: int
    hash: str
    state_root: str
    journal: tuple[int, int] | None = None  # (generation, groups answered)


class HeadMarker:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / HEAD_FILE
        self._tmp = self.path.with_name(HEAD_FILE + ".tmp")
        self.unreadable: str | None = None
        self._lock = threading.Lock()
        self._head: _Head | None = None
        self._journal: tuple[int, int] | None = None

    def read(self) -> CommittedHead | None:
        """The recorded head, or None (no file yet; an unreadable file is reported in ``unreadable``)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            h = msgspec.json.decode(data, type=_Head)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            self.unreadable = f"{self.path} cannot be read ({exc}); the committed height is known from state.db only"
            log.warning("%s", self.unreadable)
            return None
        journal = (h.journal_generation, h.journal_groups) if h.journal_generation >= 0 else None
        return CommittedHead(h.height, h.hash, h.state_root, journal)

    def keep_damaged(self) -> Path:
        """Copy an unreadable head.json aside (``head.json.damaged-N``, evidence) before it is written again."""
        n = 1
        while (aside := self.path.with_name(f"{HEAD_FILE}.damaged-{n}")).exists():
            n += 1
        aside.write_bytes(self.path.read_bytes())
        return aside

    def write(self, header: Header | None = None, *, journal: tuple[int, int] | None = None,
              durable: bool = False) -> None:
        """Record ``header`` as committed, and/or the intake journal's answered groups (atomically:
        a crash leaves the old or the new file). Called by the engine and the journal's writer."""
        with self._lock:
            if header is not None:
                self._head = _Head(header.height, header.hash().hex(), header.state_root)
            if journal is not None:
                self._journal = journal
            if self._head is None:
                return
            gen, groups = self._journal if self._journal is not None else (-1, 0)
            self._write(msgspec.json.encode(msgspec.structs.replace(self._head, journal_generation=gen,
                                                                    journal_groups=groups)), durable)

    def _write(self, data: bytes, durable: bool) -> None:
        fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self._tmp, self.path)
        if durable:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
