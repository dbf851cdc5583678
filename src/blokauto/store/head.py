"""``DATA/head.json``: the last block this node committed, kept beside the block log.

The block log is the source of truth, but a damaged log can look like a shorter valid one (a
damaged WAL frame makes SQLite drop every frame after it). The node rewrites this small file
after every commit (fsynced on a clean stop), so at start it knows its committed height from
more than one place (here and ``state.db``) and refuses a log that ends before it.
"""

from __future__ import annotations

import logging
import os
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


@dataclass(frozen=True)
class CommittedHead:
    height: int
    hash: str
    state_root: str


class HeadMarker:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / HEAD_FILE
        self._tmp = self.path.with_name(HEAD_FILE + ".tmp")
        self.unreadable: str | None = None

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
        return CommittedHead(h.height, h.hash, h.state_root)

    def write(self, header: Header, *, durable: bool = False) -> None:
        """Record ``header`` as committed (atomically: a crash leaves the old or the new file)."""
        data = msgspec.json.encode(_Head(header.height, header.hash().hex(), header.state_root))
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
