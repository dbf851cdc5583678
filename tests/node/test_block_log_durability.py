"""The block log keeps every committed block: fsynced per block, checkpointed out of its
write-ahead log on a clean stop, and a log that lost blocks is refused, never served shorter."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from blokauto.modules import default_registry
from blokauto.node.committer import BlockCommitter
from blokauto.node.faults import IntegrityFault, LogBehindCommitted
from blokauto.store.blocks import BlockLog
from blokauto.store.state import StateStore

from conftest import K, signed, write_chain
from test_crash_recovery import BATCH, Load, status, wait_until

pytestmark = pytest.mark.e2e


def test_the_block_log_fsyncs_every_commit_and_the_state_checkpoint_does_not(tmp_path):
    """synchronous=FULL on chain.db (a block is on disk before it is acknowledged); NORMAL on
    state.db, which recovery can rebuild from the log."""
    write_chain(tmp_path)
    log = BlockLog(tmp_path / "chain.db")
    state = StateStore(tmp_path / "state.db", default_registry())
    try:
        assert log.synchronous == 2
        assert state._write.execute("PRAGMA synchronous").fetchone()[0] == 1
        assert log._write.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        log.close()
        state.close()


def loaded_node(f, blocks: int = 8):
    node = f.start("--workers", "1")
    load = Load(node.url, f.genesis, "dur").start()
    try:
        wait_until(lambda: status(node.url)["height"] >= blocks and len(load.acked) >= 4 * BATCH, 60,
                   f"{blocks} blocks")
    finally:
        load.halt()
    return node, load


def test_after_a_clean_stop_chain_db_alone_holds_every_block(node_process, tmp_path):
    f = node_process
    node, _ = loaded_node(f)
    height = status(node.url)["height"]
    node.stop()  # SIGTERM by PID
    assert node.proc.returncode == 0
    wal = f.data / "chain.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(f.data / "chain.db", copy / "chain.db")  # the file alone, as a careless backup would
    log = BlockLog(copy / "chain.db")
    try:
        assert log.height() >= height
    finally:
        log.close()


def start_cli(data: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data), "--port", "0",
                           "--workers", "1"], capture_output=True, text=True, timeout=120)


def test_a_damaged_wal_frame_after_a_crash_is_refused_not_served_as_a_shorter_chain(node_process, tmp_path):
    f = node_process
    node, load = loaded_node(f, blocks=10)
    height = status(node.url)["height"]
    node.kill()  # SIGKILL: the newest blocks are in chain.db-wal
    wal = f.data / "chain.db-wal"
    data = bytearray(wal.read_bytes())
    data[len(data) // 2] ^= 0x40  # one flipped byte in a frame in the middle of the WAL
    wal.write_bytes(bytes(data))

    probe = tmp_path / "probe"  # the premise: SQLite now sees a shorter log
    probe.mkdir()
    for name in ("chain.db", "chain.db-wal"):
        shutil.copy(f.data / name, probe / name)
    with sqlite3.connect(probe / "chain.db") as c:
        seen = c.execute("SELECT max(height) FROM blocks").fetchone()[0]
    assert seen < height

    def evidence() -> tuple:
        with sqlite3.connect(f.data / "state.db") as c:
            meta = sorted(c.execute("SELECT k, v FROM meta").fetchall())
        return meta, (f.data / "head.json").read_bytes()

    before = evidence()
    r = start_cli(f.data)
    assert r.returncode == 4, r.stdout + r.stderr
    # the load may commit one more block between reading the status and the kill
    committed = re.search(r"committed blocks up to (\d+)", r.stderr)
    assert committed and int(committed.group(1)) >= height, r.stderr
    assert "missing from the block log" in r.stderr
    assert "node restore" in r.stderr
    assert "delete state.db" not in r.stderr.replace("do not delete state.db", "")
    assert evidence() == before  # what records the committed height is kept as it was


def test_a_block_log_replaced_by_an_older_copy_is_refused(tmp_path):
    data = tmp_path / "data"
    genesis = write_chain(data)
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    engine.recover()
    engine.close()
    shutil.copy(data / "chain.db", tmp_path / "old-chain.db")  # a backup at height 0
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    engine.recover()
    for _ in range(3):
        engine.produce([])
    engine.close()
    (data / "state.db").unlink()  # even without state.db, head.json remembers
    for suffix in ("-wal", "-shm"):
        (data / f"state.db{suffix}").unlink(missing_ok=True)
    shutil.copy(tmp_path / "old-chain.db", data / "chain.db")
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    with pytest.raises(LogBehindCommitted, match=r"ends at block 0, but this node committed blocks up to 3 \(recorded in head.json\)"):
        engine.recover()
    engine.close()


def test_a_block_log_rewritten_at_the_committed_height_is_refused(tmp_path):
    data = tmp_path / "data"
    genesis = write_chain(data)
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    engine.recover()
    engine.produce([])
    engine.close()
    with sqlite3.connect(data / "chain.db") as c:  # the head block's time changed: its hash is not head.json's
        header = json.loads(c.execute("SELECT header FROM blocks WHERE height = 1").fetchone()[0])
        header["time"] += 1
        c.execute("UPDATE blocks SET header = ? WHERE height = 1",
                  (json.dumps(header, sort_keys=True, separators=(",", ":")).encode(),))
    engine = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    with pytest.raises(IntegrityFault, match="not the one this node committed"):
        engine.recover()
    engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("wal", ["chain.db-wal", "state.db-wal"])
@pytest.mark.parametrize("at", [0.1, 0.5, 0.9])
def test_a_flipped_byte_in_a_wal_file_after_a_crash_never_loses_or_changes_a_committed_block(
        node_process, tmp_path, wal, at):
    """Either the node refuses to start (the block log lost blocks it committed) or it comes up with
    every block it committed, and the folder audits clean."""
    from blokauto.node.audit import audit

    f = node_process
    node, load = loaded_node(f, blocks=10)
    with signed(node.url, node.key, timeout=30) as http:
        height = status(node.url)["height"]
        headers = {h: http.get(f"/v1/blocks/{h}").json()["hash"] for h in range(height + 1)}
    node.kill()
    path = f.data / wal
    if not path.exists() or path.stat().st_size == 0:
        pytest.skip(f"{wal} was empty at the kill")
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x20
    path.write_bytes(bytes(data))
    try:
        again = f.start("--workers", "1")
    except RuntimeError as exc:  # it refused to start: only for the reason that loses nothing
        assert wal == "chain.db-wal" and "exited with 4" in str(exc) and "missing from the block log" in str(exc)
        return
    try:
        with signed(again.url, again.key, timeout=30) as http:
            assert status(again.url)["height"] >= height
            for h, hsh in headers.items():
                assert http.get(f"/v1/blocks/{h}").json()["hash"] == hsh
            for txid in load.acked:
                assert http.get(f"/v1/txs/{txid}").status_code == 200, txid
    finally:
        again.stop()
    report = audit(f.data, workers=1)
    assert report.ok, [str(x) for x in report.findings]
