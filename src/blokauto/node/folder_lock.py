"""One node per data folder: an exclusive lock held while a node has the folder open.

Two nodes on one folder would both append blocks to ``chain.db`` and write ``state.db``: the
second one's blocks fail to commit and ids it acknowledged are lost. A node takes an exclusive
``flock`` on the data folder itself before it opens anything and holds it until it stops (so
deleting a file cannot lift it), and writes its pid to ``DATA/node.lock`` for the messages; the
kernel drops the lock when the process dies, even by ``kill -9``, so nothing stale blocks a restart.
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


def _pid_of(data_dir: Path) -> int | None:
    try:
        text = (data_dir / LOCK_FILE).read_text().strip()
        return int(text) if text.isdigit() else None
    except (OSError, UnicodeDecodeError):
        return None


def _folder_fd(data_dir: Path) -> int:
    return os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)


class FolderLock:
    """The exclusive lock of ``data_dir`` (raises ``FolderInUse`` if a node holds it)."""

    def __init__(self, data_dir: Path) -> None:
        self._fd: int | None = None
        if not data_dir.is_dir():
            return  # nothing to protect yet; opening the folder reports what is missing
        fd = _folder_fd(data_dir)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderInUse(data_dir, _pid_of(data_dir)) from None
        (data_dir / LOCK_FILE).write_text(f"{os.getpid()}\n")
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def holder(data_dir: Path) -> int | None:
    """The pid of the node holding ``data_dir`` (0 if unknown), or None if no node holds it."""
    if not data_dir.is_dir():
        return None
    fd = _folder_fd(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_of(data_dir) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def refuse_if_in_use(data_dir: Path, doing: str, *, unless_pid: int | None = None) -> None:
    """Raise ``FolderInUse`` if a node holds ``data_dir`` (other than process ``unless_pid``)."""
    pid = holder(data_dir)
    if pid is not None and pid != unless_pid:
        raise FolderInUse(data_dir, pid or None, doing)
