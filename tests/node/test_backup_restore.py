"""Backups that restore: `blokauto node backup` while the node runs, `blokauto node restore` into a
new folder, then audit; damaged or partial backups are refused and change nothing."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from conftest import change_one_index_row, run_cli
from test_crash_recovery import BATCH, Load, status, wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def backed_up(node_process, tmp_path):
    """A node under load backed up while it runs; returns (factory, backup folder, height before)."""
    f = node_process
    node = f.start("--workers", "1")
    load = Load(node.url, f.genesis, "bk").start()
    try:
        wait_until(lambda: len(load.acked) >= 6 * BATCH and status(node.url)["height"] >= 5, 60, "a loaded node")
        before = status(node.url)["height"]
        r = run_cli("node", "backup", "--data", str(f.data), "--to", str(tmp_path / "backup"))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "backed up" in r.stdout and "verified" in r.stdout
    finally:
        load.halt()
        node.stop()
    return f, tmp_path / "backup", before


def test_a_backup_taken_while_the_node_runs_restores_and_audits_clean(backed_up, tmp_path):
    f, backup, before = backed_up
    manifest = json.loads((backup / "backup.json").read_text())
    assert manifest["height"] >= before and manifest["chain"] == f.genesis.chain
    assert {"chain.db", "state.db", "genesis.json"} <= set(manifest["files"])
    assert not (backup / "chain.db-wal").exists()  # the copy is self-contained

    restored = tmp_path / "restored"
    r = run_cli("node", "restore", "--from", str(backup), "--data", str(restored))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("audit", "--data", str(restored), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"] and report["height"] == manifest["height"]
    assert (restored / "keys").is_dir() and oct((next((restored / "keys").iterdir())).stat().st_mode & 0o777) == "0o600"


def test_a_restored_node_starts_at_the_backed_up_height(backed_up, tmp_path):
    from conftest import NodeProcess

    f, backup, _ = backed_up
    restored = tmp_path / "restored"
    assert run_cli("node", "restore", "--from", str(backup), "--data", str(restored)).returncode == 0
    node = NodeProcess(restored, "--workers", "1")
    try:
        height = json.loads((backup / "backup.json").read_text())["height"]
        assert status(node.url)["height"] >= height
        assert status(node.url)["healthy"] is True
        assert node.http.get(f"/v1/blocks/{height}", timeout=10).status_code == 200
    finally:
        node.stop()


@pytest.mark.parametrize("damage", ["flip-a-byte", "truncate", "drop-manifest", "manifest-of-other-file"])
def test_a_damaged_backup_is_refused_and_nothing_is_restored(backed_up, tmp_path, damage):
    _, backup, _ = backed_up
    chain = backup / "chain.db"
    if damage == "flip-a-byte":
        data = bytearray(chain.read_bytes())
        data[len(data) // 2] ^= 0x01
        chain.write_bytes(bytes(data))
    elif damage == "truncate":
        chain.write_bytes(chain.read_bytes()[: chain.stat().st_size // 2])
    elif damage == "drop-manifest":
        (backup / "backup.json").unlink()
    else:  # an attacker rewrote the manifest to match a changed block: the structure check still refuses
        with sqlite3.connect(chain) as c:
            c.execute("UPDATE blocks SET txs = txs || x'00' WHERE height = (SELECT max(height) FROM blocks)")
        import hashlib

        m = json.loads((backup / "backup.json").read_text())
        m["files"]["chain.db"] = {"size": chain.stat().st_size, "sha256": hashlib.sha256(chain.read_bytes()).hexdigest()}
        (backup / "backup.json").write_text(json.dumps(m))
    target = tmp_path / "restored"
    r = run_cli("node", "restore", "--from", str(backup), "--data", str(target))
    assert r.returncode == 1, r.stdout + r.stderr
    assert not (target / "chain.db").exists() and not (target / "state.db").exists()
    assert "error" in r.stderr


def test_restore_refuses_a_folder_that_already_holds_a_chain(backed_up):
    f, backup, _ = backed_up
    before = (f.data / "chain.db").read_bytes()
    r = run_cli("node", "restore", "--from", str(backup), "--data", str(f.data))
    assert r.returncode == 1 and "already holds a chain" in r.stderr
    assert (f.data / "chain.db").read_bytes() == before


def test_a_backup_into_a_folder_that_is_not_empty_is_refused(backed_up, tmp_path):
    f, backup, _ = backed_up
    r = run_cli("node", "backup", "--data", str(f.data), "--to", str(backup))
    assert r.returncode == 1 and "not empty" in r.stderr


def test_a_backup_of_damaged_data_is_refused_and_leaves_no_manifest(node_process, tmp_path):
    f = node_process
    node = f.start("--workers", "1")
    load = Load(node.url, f.genesis, "dmg").start()
    try:
        wait_until(lambda: len(load.acked) >= 2 * BATCH, 60, "a loaded node")
    finally:
        load.halt()
        node.stop()
    change_one_index_row(f.data / "state.db")
    dest = tmp_path / "backup"
    r = run_cli("node", "backup", "--data", str(f.data), "--to", str(dest))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "does not verify" in r.stderr and "index-row" in r.stderr
    assert not (dest / "backup.json").exists()
    shutil.rmtree(dest, ignore_errors=True)
