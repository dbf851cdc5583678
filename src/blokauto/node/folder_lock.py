"""One node per data folder: an exclusive lock held while a node has the folder open.

Two nodes on one folder would both append blocks to ``chain.db`` and write ``state.db``: the
second one's blocks fail to commit and ids it acknowledged are lost. A node takes an exclusive
``flock`` on ``DATA/node.lock`` before it opens anything and holds it until it stops; the kernel
drops the lock when the process dies, even by ``kill -9``, so a stale file never blocks a restart.
Commands that must not run beside a node (``audit``, which would see blocks being written as
problems; replacing the folder) ask ``holder()`` first.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "node.lock"


class FolderInUse(FileExistsError):
    """Another process (a running node) holds the data folder."""

    def __init__(self, data_dir: Path, pid: int | None, doing: str = "start a node on it") -> None:
        self.pid = pid
        who = f"a node (pid {pid})" if pid else "another node"
        super().__init__(f"{data_dir} is in use by {who}, so this command cannot {doing}: a data folder is "
                         f"served by one node at a time. Stop that node first (Ctrl-C, or `kill {pid or 'PID'}`).")


def _pid_in(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None


class FolderLock:
    """The exclusive lock of ``data_dir`` (raises ``FolderInUse`` if a node holds it)."""

    def __init__(self, data_dir: Path) -> None:
        self._fd: int | None = None
        if not data_dir.is_dir():
            return  # nothing to protect yet; opening the folder reports what is missing
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _pid_in(fd)
            os.close(fd)
            raise FolderInUse(data_dir, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(data_dir: Path) -> int | None:
    """The pid of the node holding ``data_dir`` (0 if unknown), or None if no node holds it."""
    path = data_dir / LOCK_FILE
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_if_in_use(data_dir: Path, doing: str, *, unless_pid: int | None = None) -> None:
    """Raise ``FolderInUse`` if a node holds ``data_dir`` (other than process ``unless_pid``)."""
    pid = holder(data_dir)
    if pid is not None and pid != unless_pid:
        raise FolderInUse(data_dir, pid or None, doing)
