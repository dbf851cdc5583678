"""The intake journal of a solo node: an id is a promise.

A solo node answers a submission with its transaction id only once the transaction is on disk
in ``DATA/intake.journal``: the engine appends each group of transactions it accepted together
with one ``write`` and one ``fsync`` (group commit), then answers their ids. At start, every
journaled transaction that no committed block holds is ordered again, so a node killed at any
moment loses nothing it acknowledged. Once the blocks holding them are committed (``chain.db``
is fsynced per block), the journal is emptied and its generation counted up.

File format (integers little-endian)::

    header  b"BLKJ" | u32 version (2) | u64 generation
    group   b"GRP1" | u32 count | u32 payload length | payload | 32-byte SHA-256 of all before it
    payload (u32 length | transaction bytes) * count

A group is fsynced before any of its ids is answered, and then ``head.json`` records how many
groups of which generation were answered, so damage is never mistaken for a crash:

- a group cut short at the end of the file (its length runs past the end, no intact group
  after it) was being written when the node stopped and was never answered: it is set aside
  (``intake.journal.torn-N``) with a warning;
- anything else — a complete group that does not match its hash, damage with an intact group
  after it, fewer groups than ``head.json`` records as answered, a missing or older journal —
  lost acknowledged transactions: the node refuses to start until an operator decides.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .faults import NodeFault

log = logging.getLogger("blokauto.journal")

JOURNAL_FILE = "intake.journal"
MAGIC = b"BLKJ"
VERSION = 2
_HEADER = struct.Struct("<4sIQ")
GROUP_MAGIC = b"GRP1"
_GROUP = struct.Struct("<4sII")
_DIGEST = 32
_LEN = struct.Struct("<I")


class JournalDamaged(NodeFault):
    """The intake journal is damaged before its last group: acknowledged transactions are unreadable."""

    def __init__(self, path: Path, offset: int, reason: str, readable: int) -> None:
        self.path, self.offset = path, offset
        super().__init__(
            f"{path} is damaged at byte {offset} ({reason}); it holds transactions this node acknowledged "
            f"but had not yet committed, and {readable} before the damage are readable. Nothing was changed. "
            f"Keep a copy of the file for the investigation. To start without the unreadable ones, move the file "
            f"aside inside the data folder (`mv {path} {path}.damaged`; a copy named {path.name}.<anything> there "
            f"is how the node knows it was your decision): the node then orders every intact group of that copy "
            f"(before and after the damage), and only the damaged group's transactions are lost unless their "
            f"senders send them again (a sender finds its id unknown with GET /v1/txs/ID).")


@dataclass(frozen=True)
class JournalContents:
    txs: list[bytes]
    torn_bytes: int  # bytes set aside from a group that was being written when the node stopped
    generation: int = 0
    groups: int = 0


def _header(generation: int) -> bytes:
    return _HEADER.pack(MAGIC, VERSION, generation)


def _group_at(data: bytes, pos: int) -> tuple[list[bytes], int] | None:
    """The transactions of an intact group starting at ``pos`` and where it ends, or None."""
    if pos + _GROUP.size > len(data):
        return None
    magic, count, length = _GROUP.unpack_from(data, pos)
    end = pos + _GROUP.size + length + _DIGEST
    if magic != GROUP_MAGIC or end > len(data):
        return None
    if hashlib.sha256(data[pos:end - _DIGEST]).digest() != data[end - _DIGEST:end]:
        return None
    payload = memoryview(data)[pos + _GROUP.size:end - _DIGEST]
    txs: list[bytes] = []
    p = 0
    for _ in range(count):
        if p + _LEN.size > len(payload):
            return None
        (n,) = _LEN.unpack_from(payload, p)
        p += _LEN.size
        if p + n > len(payload):
            return None
        txs.append(bytes(payload[p:p + n]))
        p += n
    return (txs, end) if p == len(payload) else None


def parse_journal(data: bytes, path: Path, answered: tuple[int, int] | None = None) -> tuple[list[bytes], int, int, int]:
    """(transactions of every intact group, where the intact part ends, generation, groups).

    ``answered``: the (generation, groups) head.json records as answered. Bytes that cannot be read
    after that many intact groups of that generation were never answered (a group is answered only
    once it is written and recorded): they end the journal like a torn write, not as damage."""
    if not data:
        return [], 0, 0, 0
    if len(data) < _HEADER.size:
        if MAGIC.startswith(data[:len(MAGIC)]):
            return [], 0, 0, 0  # the header of a new journal was being written
        raise JournalDamaged(path, 0, "it does not start with a journal header", 0)
    magic, version, generation = _HEADER.unpack_from(data, 0)
    if magic != MAGIC or version != VERSION:
        raise JournalDamaged(path, 0, "it does not start with a journal header of this version", 0)
    txs: list[bytes] = []
    groups = 0
    pos = _HEADER.size
    while pos < len(data):
        group = _group_at(data, pos)
        if group is None:
            if answered is not None and generation == answered[0] and groups >= answered[1]:
                return txs, pos, generation, groups  # past every answered group: an unanswered tail
            if _cut_short(data, pos):
                later = data.find(GROUP_MAGIC, pos + 1)
                while later != -1:
                    if _group_at(data, later) is not None:  # an intact group after the damage: not a torn write
                        raise JournalDamaged(path, pos, "a group does not match its checksum", len(txs))
                    later = data.find(GROUP_MAGIC, later + 1)
                return txs, pos, generation, groups
            raise JournalDamaged(path, pos, "a complete group does not match its checksum", len(txs))
        txs.extend(group[0])
        groups += 1
        pos = group[1]
    return txs, pos, generation, groups


def intact_groups(data: bytes) -> tuple[list[bytes], int]:
    """The transactions of every intact group of a damaged journal, before and after the damage,
    and how many groups were intact (what an operator's moved-aside copy still holds)."""
    if len(data) < _HEADER.size or _HEADER.unpack_from(data, 0)[:2] != (MAGIC, VERSION):
        return [], 0
    txs: list[bytes] = []
    groups = 0
    pos = _HEADER.size
    while pos < len(data):
        group = _group_at(data, pos)
        if group is None:
            pos = data.find(GROUP_MAGIC, pos + 1)
            if pos == -1:
                break
            continue
        txs.extend(group[0])
        groups += 1
        pos = group[1]
    return txs, groups


def _cut_short(data: bytes, pos: int) -> bool:
    """Whether the group at ``pos`` runs past the end of the file (a write the node died in)."""
    if pos + _GROUP.size > len(data):
        return True
    magic, _count, length = _GROUP.unpack_from(data, pos)
    return magic == GROUP_MAGIC and pos + _GROUP.size + length + _DIGEST > len(data)


class IntakeJournal:
    """``append`` durably before answering ids; ``read`` at start; ``clear`` once all is committed."""

    def __init__(self, data_dir: Path, *, clear_above_bytes: int = 1 << 20) -> None:
        self.path = Path(data_dir) / JOURNAL_FILE
        self.clear_above_bytes = clear_above_bytes
        self._fd: int | None = None
        self.size = 0
        self.appended_txs = 0
        #: (generation, groups answered in it): one tuple, replaced whole, so readers see a consistent pair
        self.state: tuple[int, int] = (0, 0)
        self.on_durable: Callable[[tuple[int, int]], None] | None = None  # after each group's fsync
        self.started_without = 0  # acknowledged groups the operator chose to do without (file moved aside)

    def moved_aside(self) -> list[Path]:
        """Copies of the journal an operator moved aside in the data folder (``intake.journal.*``; not
        the torn tails the node sets aside itself)."""
        return sorted(p for p in self.path.parent.glob(JOURNAL_FILE + ".*") if ".torn-" not in p.name)

    def read(self, answered: tuple[int, int] | None = None) -> JournalContents:
        """Every journaled transaction (committed or not), after setting aside a torn last group.
        ``answered``: (generation, groups) that head.json records as answered; fewer is damage."""
        if not self.path.exists():
            if answered is not None and answered[1] > 0:
                aside = self.moved_aside()
                if not aside:
                    raise JournalDamaged(self.path, 0, f"the file is missing, but head.json records {answered[1]} "
                                                       f"acknowledged group(s) of generation {answered[0]}", 0)
                # The operator's decision, as docs/operations.md describes it: start without what is unreadable,
                # ordering every intact group the moved-aside copies still hold (answered transactions).
                txs: list[bytes] = []
                intact = 0
                for p in aside:
                    found, n = intact_groups(p.read_bytes())
                    txs += found
                    intact += n
                log.warning("the intake journal was moved aside (%s): head.json records %d acknowledged group(s) of "
                            "generation %d; %d intact group(s) of it are ordered (%d transactions), the rest are "
                            "not: their senders find their ids unknown and may send them again",
                            ", ".join(p.name for p in aside), answered[1], answered[0], intact, len(txs))
                self.started_without = max(0, answered[1] - intact)
                self.state = (answered[0] + 1, 0)
                return JournalContents(txs, 0, *self.state)
            self.state = (answered[0] + 1 if answered is not None else 0, 0)
            return JournalContents([], 0, *self.state)
        data = self.path.read_bytes()
        txs, end, generation, groups = parse_journal(data, self.path, answered)
        if answered is not None and (generation < answered[0] or (generation == answered[0] and groups < answered[1])):
            raise JournalDamaged(self.path, end, f"it holds {groups} group(s) of generation {generation}; head.json "
                                                 f"records {answered[1]} acknowledged group(s) of generation {answered[0]}",
                                 len(txs))
        torn = len(data) - end
        if torn:
            n = 1
            while (aside := self.path.with_name(f"{JOURNAL_FILE}.torn-{n}")).exists():
                n += 1
            aside.write_bytes(data[end:])
            with open(self.path, "r+b") as f:
                f.truncate(end)
                os.fsync(f.fileno())
            log.warning("%s ended with %d bytes that are not an intact group after the %d group(s) answered (a group "
                        "being written when the node stopped, never acknowledged, or bytes added since); they were "
                        "set aside in %s", self.path, torn, groups, aside.name)
        self.state = (generation, groups)
        return JournalContents(txs, torn, generation, groups)

    def open(self) -> None:
        """Open for appending (after ``read``)."""
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size
        if self.size == 0:
            self._write(_header(self.state[0]))
        fsync_path(self.path.parent)

    def append(self, raws: list[bytes]) -> None:
        """Write one group and fsync it; returns once every transaction in it is durable."""
        if not raws:
            return
        payload = b"".join(_LEN.pack(len(r)) + r for r in raws)
        group = _GROUP.pack(GROUP_MAGIC, len(raws), len(payload)) + payload
        self._write(group + hashlib.sha256(group).digest())
        self.appended_txs += len(raws)
        self.state = (self.state[0], self.state[1] + 1)
        if self.on_durable is not None:
            self.on_durable(self.state)

    def _write(self, data: bytes) -> None:
        """Append and fsync; on failure the file is cut back to where it was (nothing half-written stays)."""
        assert self._fd is not None, "the journal is not open"
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)

    def committed(self) -> None:
        """Everything appended so far is in committed blocks: empty the journal once it is large."""
        if self.size > self.clear_above_bytes:
            self.clear()

    def clear(self) -> None:
        """Empty the journal (every group is in a committed block) and start its next generation."""
        if self._fd is None:
            return
        generation = self.state[0] + 1
        tmp = self.path.with_name(JOURNAL_FILE + ".new")  # replaced whole: a crash leaves the old or the new file
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, _header(generation))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.size = _HEADER.size
        self.state = (generation, 0)
        if self.on_durable is not None:
            self.on_durable(self.state)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class JournalWriter:
    """Appends groups from a thread of its own, so the engine executes a block while the block's
    transactions are being fsynced; each group's ``done`` is called once it is durable (or with
    the ``OSError`` that stopped it). Groups and clears happen in the order they were asked for,
    so a clear asked after a block was committed never removes a group that is not in a block."""

    def __init__(self, journal: IntakeJournal) -> None:
        self.journal = journal
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="intake-journal", daemon=True)
        self._thread.start()

    def append(self, raws: list[bytes], done: Callable[[OSError | None], None]) -> None:
        self._queue.put(("append", raws, done))

    def committed(self) -> None:
        """Every group asked for so far is in a committed block."""
        self._queue.put(("committed", None, None))

    def close(self) -> None:
        """Finish every group asked for, then stop."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, raws, done = item
            if kind == "committed":
                try:
                    self.journal.committed()
                except OSError as exc:  # the file stays as it is: its groups are in blocks, replaying them is harmless
                    log.error("the intake journal could not be emptied: %s", exc)
                continue
            try:
                self.journal.append(raws)
            except OSError as exc:
                log.error("the intake journal cannot be written: %s", exc)
                done(exc)
            else:
                done(None)


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory (to make the creation of the files in it durable), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
