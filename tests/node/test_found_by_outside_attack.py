"""Regression tests for what an outside tester, following only the docs, found in the durability
and integrity work: each case failed before its fix."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest


from conftest import Served, run_cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo(tmp_path_factory, copy_demo) -> Path:
    data = tmp_path_factory.mktemp("attack") / "demo"
    copy_demo(data)
    return data


@pytest.fixture
def copy(demo, tmp_path) -> Path:
    return shutil.copytree(demo, tmp_path / "copy")


def sql(path: Path, statement: str, *args) -> int:
    with closing(sqlite3.connect(path, isolation_level=None)) as c:
        return c.execute(statement, args).rowcount


def scrub(data: Path) -> tuple[int, dict]:
    r = run_cli("node", "scrub", "--data", str(data), "--json")
    assert r.returncode in (0, 1), r.stdout + r.stderr  # findings, never a traceback
    return r.returncode, json.loads(r.stdout)


def test_a_deleted_attestation_of_a_solo_node_is_never_served_and_the_scrubber_finds_it(copy):
    assert sql(copy / "chain.db", "DELETE FROM attestations WHERE height=5") == 1
    with Served(copy) as s:
        r = httpx.get(f"{s.url}/v1/checkpoints/5", timeout=10)
        assert r.status_code == 503 and r.json()["error"]["code"] == "integrity_failure"
        assert "own attestation" in r.json()["error"]["message"]
    code, report = scrub(copy)
    assert code == 1 and any("own attestation" in f["message"] and f["height"] == 5 for f in report["findings"])


@pytest.mark.parametrize("table", ["ix_vehicles_by_holder", "ix_parts_lot_uses", "ix_vehicles_history"])
def test_a_row_removed_from_an_index_is_found_by_the_scrubber(copy, table):
    assert sql(copy / "state.db", f"DELETE FROM {table} WHERE _h = (SELECT _h FROM {table} LIMIT 1)") == 1
    code, report = scrub(copy)
    assert code == 1 and any(f["kind"] == "index-row" and table in f["message"] for f in report["findings"]), report


def _garble(path: Path, start_page: int = 2) -> None:
    data = bytearray(path.read_bytes())
    for i in range(start_page * 4096, len(data)):
        data[i] = (i * 131) & 0xFF
    path.write_bytes(bytes(data))


def test_a_malformed_state_db_is_reported_then_set_aside_and_rebuilt(copy):
    _garble(copy / "state.db")
    code, report = scrub(copy)
    assert code == 1 and any(f["kind"] == "state-db" for f in report["findings"])
    r = run_cli("audit", "--data", str(copy), "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    with Served(copy) as s:
        assert s.node.rebuilt_state is not None
        assert httpx.get(f"{s.url}/v1/status", timeout=10).json()["healthy"] is True
        assert s.http.get("/v1/state/gov/org/kba", timeout=10).status_code == 200


def test_a_malformed_chain_db_refuses_the_start_and_audit_reports_it(copy):
    _garble(copy / "chain.db")
    r = run_cli("node", "start", "--data", str(copy), "--port", "0", "--workers", "1", timeout=60)
    assert r.returncode == 4 and "Traceback" not in r.stderr and "chain.db" in r.stderr, r.stderr
    r = run_cli("audit", "--data", str(copy), "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stdout)["findings"]


def test_a_deleted_block_log_refuses_the_start_and_creates_nothing(copy):
    (copy / "chain.db").unlink()
    r = run_cli("node", "start", "--data", str(copy), "--port", "0", "--workers", "1", timeout=60)
    assert r.returncode == 4 and "missing from the block log" in r.stderr, r.stderr
    assert not (copy / "chain.db").exists() and not (copy / "chain.db-wal").exists()


def test_audit_says_how_many_problems_there_are_beyond_those_it_lists(copy):
    changed = sql(copy / "state.db", "UPDATE tx_index SET expires = expires + 1")
    changed += sql(copy / "state.db", "UPDATE state SET v = CAST(v AS BLOB) || x'20'")
    for (table,) in sqlite3.connect(copy / "state.db").execute("SELECT name FROM sqlite_master WHERE name LIKE 'ix_%' "
                                                               "AND type = 'table'").fetchall():
        changed += sql(copy / "state.db", f"UPDATE {table} SET _height = _height + 1")
    assert changed > 150  # each changed index row is two problems: its check hash and its height
    r = run_cli("audit", "--data", str(copy), "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 1 and doc["problems"] > len(doc["findings"]) == 200
    r = run_cli("audit", "--data", str(copy))
    assert f"{doc['problems']} problem(s)" in r.stdout and "more problem(s)" in r.stdout


def test_a_refused_restore_leaves_the_folder_as_it_was(copy, tmp_path):
    backup = tmp_path / "backup"
    assert run_cli("node", "backup", "--data", str(copy), "--to", str(backup)).returncode == 0
    target = tmp_path / "target"
    target.mkdir()
    (target / "state.db").write_bytes(b"someone else's state")
    r = run_cli("node", "restore", "--from", str(backup), "--data", str(target))
    assert r.returncode == 1 and "state.db exists" in r.stderr
    assert sorted(p.name for p in target.iterdir()) == ["state.db"]  # nothing was copied


def test_a_backup_into_a_folder_an_interrupted_backup_left_starts_again(copy, tmp_path):
    backup = tmp_path / "backup"
    (backup / ".partial" / "keys").mkdir(parents=True)
    (backup / ".partial" / "chain.db").write_bytes(b"half")
    r = run_cli("node", "backup", "--data", str(copy), "--to", str(backup))
    assert r.returncode == 0, r.stderr
    assert (backup / "backup.json").exists() and not (backup / ".partial").exists()


def test_block_damage_found_before_a_restart_is_still_refused_after_it(copy):
    with closing(sqlite3.connect(copy / "chain.db", isolation_level=None)) as c:
        c.execute("UPDATE blocks SET receipts = CAST(receipts AS BLOB) || x'00' WHERE height = 5")
    with Served(copy) as s:
        assert s.http.get("/v1/blocks/5", timeout=10).status_code == 503
    with Served(copy) as s:  # restarted: the damage on record is checked again, and still refused
        st = httpx.get(f"{s.url}/v1/status", timeout=10).json()
        assert st["healthy"] is False and any(d["height"] == 5 for d in st["integrity"]["damage"])
        assert httpx.get(f"{s.url}/v1/checkpoints/5", timeout=10).status_code == 503
