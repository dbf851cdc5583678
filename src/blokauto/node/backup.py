"""Backups that restore: ``blokauto node backup`` and ``blokauto node restore``.

A backup is a folder::

    backup.json      the manifest: chain, genesis hash, height and head hash, state height, and
                     every file with its size and SHA-256; written last
    genesis.json, keys/, network.json (a networked node)
    state.db         SQLite online backup of the state checkpoint, taken first (never ahead of chain.db)
    chain.db         SQLite online backup of the block log (the node may be running)
    intake.journal   transactions the node acknowledged but had not committed yet (solo node)

Each database is copied in one read transaction, so the copy is consistent while blocks keep
coming. The backup is verified as it is written: both copies pass SQLite's integrity check and
the scrubber's structural checks (every block from genesis, the state tree and index rows against
the header) before ``backup.json`` exists; a folder without it is not a backup. ``restore``
checks the manifest's hashes and the same structure again, and only then copies into a new or
empty folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import msgspec

from ..core.block import Genesis
from ..core.encoding import decode
from ..core.registry import Registry
from ..store.blocks import BlockLog
from ..store.head import HeadMarker
from .faults import NodeFault
from .journal import JOURNAL_FILE, JournalDamaged, fsync_path, parse_journal
from .netconfig import NETWORK_FILE
from .scrub import ScrubReport, scrub

MANIFEST = "backup.json"
#: Files of a node's own that a restore must never mix with a backup's (another chain's state, head, journal).
NODE_FILES = ("chain.db", "state.db", "head.json", "intake.journal", "integrity.json")
FORMAT = "blokauto-backup/1"
RESTORING = ".restoring"  # where a restore stages its copy inside the target folder


class BackupError(NodeFault):
    """A backup cannot be written, or a folder is not a backup that restores; the message says why."""


class BackupFile(msgspec.Struct, frozen=True):
    size: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    chain: str
    genesis_hash: str
    height: int
    head: str
    state_height: int
    created_ms: int
    files: dict[str, BackupFile]
    format: str = FORMAT


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest: Manifest
    scrub: ScrubReport


Say = Callable[[str], None]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy_database(src: Path, dest: Path) -> None:
    """SQLite's online backup in one step: one read transaction, a consistent copy however busy the writer."""
    with closing(sqlite3.connect(f"file:{src}?mode=ro", uri=True)) as source, closing(sqlite3.connect(dest)) as out:
        source.execute("PRAGMA busy_timeout=10000")
        source.backup(out, pages=-1)
        out.execute("PRAGMA journal_mode=DELETE")  # a self-contained file: no -wal beside it
    fsync_path(dest)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def _genesis(folder: Path) -> Genesis:
    try:
        return decode((folder / "genesis.json").read_bytes(), Genesis)
    except FileNotFoundError:
        raise BackupError(f"{folder} holds no genesis.json") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BackupError(f"{folder / 'genesis.json'} is not a genesis document ({exc})") from None


def _check_structure(folder: Path, registry: Registry, genesis: Genesis, say: Say) -> tuple[ScrubReport, int, str]:
    """Scrub a backup folder; returns the report, the height and the head hash of its block log."""
    say("verifying the copy (SQLite integrity, every block, the state tree and index rows)")
    report = scrub(folder, registry)
    if not report.ok:
        raise BackupError(f"the copy in {folder} does not verify: " + "; ".join(str(f) for f in report.findings[:5]))
    journal = folder / JOURNAL_FILE
    if journal.exists():
        try:
            parse_journal(journal.read_bytes(), journal)  # a torn last group is a backup taken mid-write: fine
        except JournalDamaged as exc:  # its remedy names the file it read: the copy's, not the node's
            raise BackupError(f"the copy's {JOURNAL_FILE} is damaged at byte {exc.offset}: the node's own journal is "
                              f"damaged too, or changed while it was copied; `blokauto node start` on that node's "
                              f"folder says what to do. Nothing was written.") from None
    log = BlockLog(folder / "chain.db", readonly=True)
    try:
        stored = log.genesis()
        if stored is None or stored.hash() != genesis.hash():
            raise BackupError("the copied block log is of another chain than genesis.json")
        height = log.height()
        header = log.header(height)
        if header is None:
            raise BackupError("the copied block log holds no blocks")
        return report, height, header.hash().hex()
    finally:
        log.close()


def backup(data_dir: Path, dest: Path, registry: Registry, *, say: Say = lambda _m: None) -> BackupResult:
    """Write a verified backup of ``data_dir`` (node running or not) to ``dest`` (new or empty)."""
    data_dir, dest = Path(data_dir), Path(dest)
    if not (data_dir / "chain.db").exists():
        raise BackupError(f"{data_dir} holds no chain (no chain.db)")
    if dest.exists() and [p.name for p in dest.iterdir()] == [".partial"]:
        shutil.rmtree(dest / ".partial")  # what an interrupted backup into this folder left: start again
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; back up into a new folder")
    genesis = _genesis(data_dir)
    dest.mkdir(parents=True, exist_ok=True)
    staging = dest / ".partial"
    staging.mkdir()
    try:
        shutil.copy2(data_dir / "genesis.json", staging / "genesis.json")
        if (data_dir / "keys").is_dir():
            shutil.copytree(data_dir / "keys", staging / "keys")
        if (data_dir / NETWORK_FILE).exists():
            shutil.copy2(data_dir / NETWORK_FILE, staging / NETWORK_FILE)
        state_height = -1
        if (data_dir / "state.db").exists():  # first: state.db is then never ahead of the chain copied after it
            say("copying state.db")
            _copy_database(data_dir / "state.db", staging / "state.db")
            with closing(sqlite3.connect(staging / "state.db")) as c:
                row = c.execute("SELECT v FROM meta WHERE k='height'").fetchone()
                state_height = -1 if row is None else int(row[0])
        say("copying chain.db")
        _copy_database(data_dir / "chain.db", staging / "chain.db")
        if (data_dir / JOURNAL_FILE).exists():
            shutil.copy2(data_dir / JOURNAL_FILE, staging / JOURNAL_FILE)
        report, height, head = _check_structure(staging, registry, genesis, say)
        for p in _files(staging):
            fsync_path(p)
        files = {str(p.relative_to(staging)): BackupFile(p.stat().st_size, _sha256(p)) for p in _files(staging)}
        manifest = Manifest(genesis.chain, genesis.hash().hex(), height, head, state_height,
                            time.time_ns() // 1_000_000, files)
        for p in staging.iterdir():
            os.replace(p, dest / p.name)
        staging.rmdir()
        (dest / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
        fsync_path(dest / MANIFEST)
        fsync_path(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return BackupResult(dest, manifest, report)


def read_manifest(folder: Path) -> Manifest:
    try:
        return msgspec.json.decode((Path(folder) / MANIFEST).read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise BackupError(f"{folder} is not a finished backup: it has no {MANIFEST} (a backup writes it last, "
                          f"after the copy verified)") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BackupError(f"{Path(folder) / MANIFEST} cannot be read ({exc})") from None


def _check_restore_target(data_dir: Path) -> None:
    """A restore writes only into a new or empty folder (or one an interrupted restore left).

    A folder holding another node's files is refused as :class:`BackupError`; any other folder that
    is not empty (a mistyped ``--data``: a node's ``keys/``, someone's documents) as
    ``FileExistsError``, a usage error. Checked before anything is copied: a refused restore leaves
    the folder as it was."""
    if not data_dir.exists():
        return
    if not data_dir.is_dir():
        raise FileExistsError(f"{data_dir} is a file, not a folder; restore into a new or empty folder")
    if (data_dir / "chain.db").exists():
        raise BackupError(f"{data_dir} already holds a chain; restore into a new folder (move the old one aside "
                          f"first and keep it until the restored node runs)")
    node_files = [n for n in NODE_FILES if (data_dir / n).exists()]
    if node_files:
        raise BackupError(f"{data_dir / node_files[0]} exists; restore into a new folder")
    found = sorted(p.name for p in data_dir.iterdir() if p.name != RESTORING)
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise FileExistsError(f"{data_dir} is not empty (it holds {shown}); restore into a new or empty folder")


def restore(src: Path, data_dir: Path, registry: Registry, *, say: Say = lambda _m: None) -> Manifest:
    """Check the backup in ``src`` completely, then copy it into ``data_dir`` (new or empty)."""
    src, data_dir = Path(src), Path(data_dir)
    manifest = read_manifest(src)
    if manifest.format != FORMAT:
        raise BackupError(f"{src} is a {manifest.format} backup; this software restores {FORMAT}")
    _check_restore_target(data_dir)
    say("checking every file against the manifest")
    present = {str(p.relative_to(src)) for p in _files(src)}
    missing = sorted(set(manifest.files) - present)
    if missing:
        raise BackupError(f"the backup lacks {', '.join(missing)}")
    for name, f in sorted(manifest.files.items()):
        p = src / name
        if p.stat().st_size != f.size or _sha256(p) != f.sha256:
            raise BackupError(f"{name} in the backup is not the file that was backed up (size or SHA-256 differs)")
    genesis = _genesis(src)
    if genesis.hash().hex() != manifest.genesis_hash:
        raise BackupError("the backup's genesis.json is not the one its manifest names")
    _, height, head = _check_structure(src, registry, genesis, say)
    if (height, head) != (manifest.height, manifest.head):
        raise BackupError(f"the backup's block log ends at {height} ({head[:16]}…), its manifest says "
                          f"{manifest.height} ({manifest.head[:16]}…)")
    targets = {name: data_dir / name for name in manifest.files}
    _check_restore_target(data_dir)  # again, just before copying: nothing may have arrived meanwhile
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = data_dir / RESTORING
    shutil.rmtree(staging, ignore_errors=True)  # an interrupted restore's leftovers
    say(f"copying into {data_dir}")
    for name in manifest.files:
        (staging / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / name, staging / name)
        fsync_path(staging / name)
    # into place, chain.db last: a folder holds a chain only once everything else is there
    for name in sorted(manifest.files, key=lambda n: n == "chain.db"):
        targets[name].parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, targets[name])
    shutil.rmtree(staging, ignore_errors=True)
    _record_head(data_dir, manifest.height)
    fsync_path(data_dir)
    return manifest


def _record_head(data_dir: Path, height: int) -> None:
    """head.json for the restored chain: its last block is what this folder's node committed (a
    backup carries none: the source's may name a block its copy of the log does not hold)."""
    log = BlockLog(data_dir / "chain.db", readonly=True)
    try:
        header = log.header(height)
    finally:
        log.close()
    if header is not None:
        HeadMarker(data_dir).write(header, durable=True)
