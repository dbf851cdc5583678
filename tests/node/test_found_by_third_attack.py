"""What a third outside attack (from the docs alone) found in the node and the CLI, each now a test."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path

import pytest
from conftest import K, build_tx, now_ms, run_cli, signed, write_chain

from blokauto.modules.governance.messages import AddMember

JSON = {"content-type": "application/json"}


def _batch(prefix: str, n: int) -> bytes:
    exp = now_ms() + 600_000
    return b"[" + b",".join(build_tx(K("oem-admin"), AddMember(member=K(f"{prefix}-{i}").did, roles=["manufacturer"]),
                                     K(f"{prefix}-{i}"), expires=exp) for i in range(n)) + b"]"


@pytest.mark.timeout(120)
def test_a_snapshot_of_a_chain_without_a_network_is_refused_so_no_second_orderer_forks_it(live_node, tmp_path):
    """A one-node chain has one orderer: a snapshot started solo would sign other blocks at the
    same heights with the same key."""
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(live_node.data / "genesis.json", copy / "genesis.json")
    shutil.copytree(live_node.data / "keys", copy / "keys")
    r = run_cli("node", "snapshot", "--from", live_node.url, "--data", str(copy))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "network.json" in r.stderr and "Traceback" not in r.stderr
    assert not (copy / "chain.db").exists() and not (copy / "chain.db.part").exists()


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "not a url", "ftp://127.0.0.1/x", "http://"])
def test_a_snapshot_from_nowhere_is_a_usage_error_without_a_traceback(tmp_path, url):
    data = tmp_path / "data"
    write_chain(data)
    (data / "network.json").write_text("{}")  # only its presence matters before the download
    r = run_cli("node", "snapshot", "--from", url, "--data", str(data), timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "error" in r.stderr
    assert not (data / "chain.db").exists()


@pytest.mark.timeout(240)
def test_answered_ids_survive_bytes_added_after_the_journal_and_audit_sees_a_lost_journal(node_process, tmp_path):
    data = node_process.data
    node = node_process.start("--block-ms", "600000", "--block-txs", "100000")
    ids = []
    with signed(node.url, node.key, timeout=60) as http:
        for b in range(3):
            r = http.post("/v1/txs/batch", content=_batch(f"journal-{b}", 40), headers=JSON)
            assert r.status_code == 200 and r.json()["accepted"] == 40, r.text
            ids += [x["id"] for x in r.json()["results"]]
    node.kill()  # answered, journaled, in no block yet
    lost = tmp_path / "lost"
    shutil.copytree(data, lost)
    (lost / "node.lock").unlink(missing_ok=True)
    (lost / "intake.journal").unlink()
    audit = run_cli("audit", "--data", str(lost), timeout=180)
    assert audit.returncode == 1 and "journal" in audit.stdout + audit.stderr, audit.stdout + audit.stderr

    with open(data / "intake.journal", "ab") as f:  # bytes after every answered group: never answered
        f.write(bytes(range(256)) * 12)
    node = node_process.start()
    with signed(node.url, node.key, timeout=60) as http:
        for txid in ids:
            r = http.get(f"/v1/txs/{txid}", params={"wait": 20})
            assert r.status_code == 200 and r.json()["receipt"]["ok"], r.text
    assert list(data.glob("intake.journal.torn-*")), "the added bytes are kept as evidence"
    node.stop()


@pytest.mark.timeout(240)
def test_a_report_from_a_folder_whose_log_is_older_than_its_state_is_refused_not_a_traceback(tmp_path, copy_demo):
    data = tmp_path / "demo"
    copy_demo(data)
    early = tmp_path / "early"
    shutil.copytree(data, early)
    import sqlite3
    with sqlite3.connect(early / "chain.db") as c:  # an older chain.db beside the newer state.db
        top = c.execute("SELECT max(height) FROM blocks").fetchone()[0]
        c.execute("DELETE FROM blocks WHERE height > 2")
        c.execute("DELETE FROM attestations WHERE height > 2")
    (early / "head.json").unlink()
    vin = "WZZ3E5C22NM400117"
    r = run_cli("report", vin, "--data", str(early))
    assert r.returncode == 4, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "block log" in r.stderr and top > 2


def test_scrub_finds_a_head_marker_ahead_of_the_block_log(live_node, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(live_node.data, copy, ignore=shutil.ignore_patterns("node.lock"))
    head = json.loads((copy / "head.json").read_text())
    head["height"] += 5
    (copy / "head.json").write_text(json.dumps(head))
    r = run_cli("node", "scrub", "--data", str(copy))
    assert r.returncode != 0 and "head.json records block" in r.stdout + r.stderr, r.stdout + r.stderr


def test_a_damaged_head_marker_is_kept_as_evidence_before_it_is_written_again(tmp_path):
    from blokauto.modules import default_registry
    from blokauto.node.committer import BlockCommitter

    data = tmp_path / "data"
    genesis = write_chain(data)
    c = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    c.recover()
    c.produce([])
    c.close()
    (data / "head.json").write_bytes(b"\x00garbage{")
    c = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    c.recover()
    c.produce([])
    c.close()
    assert (data / "head.json.damaged-1").read_bytes() == b"\x00garbage{"
    assert json.loads((data / "head.json").read_text())["height"] == 2


@pytest.mark.timeout(120)
def test_sigterm_ends_event_streams_with_an_error_event_and_no_traceback(node_process):
    node = node_process.start()
    events: list[str] = []
    with signed(node.url, node.key, timeout=30) as http:
        with http.stream("GET", "/v1/events", params={"from_height": 0}) as r:
            assert r.status_code == 200
            time.sleep(0.5)  # the stream is serving (block 0's events, then it waits for more)
            t0 = time.monotonic()
            node.proc.send_signal(signal.SIGTERM)
            events += list(r.iter_lines())
    node.proc.wait(30)
    took = time.monotonic() - t0
    log = (node_process.data / "node.log").read_text()
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log[-3000:]
    assert "event: error" in events and any('"unavailable"' in e for e in events), events[-5:]
    assert took < 10 and node.proc.returncode == 0, (took, node.proc.returncode)


@pytest.mark.timeout(300)
def test_moving_a_damaged_journal_aside_still_orders_every_intact_answered_group(node_process):
    """Found by a third outside attack: a flipped byte in one group, then the documented `mv`,
    dropped the intact groups too. Only the damaged group's transactions may be lost."""
    from blokauto.node.journal import GROUP_MAGIC

    data = node_process.data
    node = node_process.start("--block-ms", "600000", "--block-txs", "100000")
    groups = []
    with signed(node.url, node.key, timeout=60) as http:
        for b in range(3):
            r = http.post("/v1/txs/batch", content=_batch(f"flip-{b}", 30), headers=JSON)
            assert r.status_code == 200 and r.json()["accepted"] == 30, r.text
            groups.append([x["id"] for x in r.json()["results"]])
    node.kill()
    journal = data / "intake.journal"
    raw = bytearray(journal.read_bytes())
    starts = []
    at = raw.find(GROUP_MAGIC)
    while at != -1:
        starts.append(at)
        at = raw.find(GROUP_MAGIC, at + 1)
    assert len(starts) >= 3, starts  # one group per batch (group commit may merge; then the test says so)
    middle = (starts[1] + starts[2]) // 2
    raw[middle] ^= 0xFF
    journal.write_bytes(bytes(raw))
    refused = run_cli("node", "start", "--data", str(data), "--port", "0", timeout=120)
    assert refused.returncode == 4 and "is damaged at byte" in refused.stderr, refused.stdout + refused.stderr
    (data / "node.lock").unlink(missing_ok=True)
    journal.rename(data / "intake.journal.damaged")
    node = node_process.start()
    with signed(node.url, node.key, timeout=60) as http:
        found = {txid: http.get(f"/v1/txs/{txid}", params={"wait": 10 if g != 1 else 0}).status_code
                 for g, ids in enumerate(groups) for txid in ids}
    assert all(found[t] == 200 for t in groups[0] + groups[2]), found
    assert all(found[t] == 404 for t in groups[1])  # the damaged group's: unknown, their senders send again
    node.stop()


@pytest.mark.timeout(180)
def test_a_restored_folder_records_its_head_so_its_first_start_knows_what_it_committed(live_node, tmp_path):
    """Found by a third outside attack: backups carry no head.json, so every restored node started
    with "head.json is missing" and could not tell a shortened log from its own."""
    backup, restored = tmp_path / "backup", tmp_path / "restored"
    r = run_cli("node", "backup", "--data", str(live_node.data), "--to", str(backup))
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli("node", "restore", "--from", str(backup), "--data", str(restored))
    assert r.returncode == 0, r.stdout + r.stderr
    manifest = json.loads((backup / "backup.json").read_text())
    head = json.loads((restored / "head.json").read_text())
    assert (head["height"], head["hash"]) == (manifest["height"], manifest["head"])
    r = run_cli("audit", "--data", str(restored), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_status_of_a_folder_whose_files_do_not_belong_together_says_blocks_were_lost(tmp_path):
    """Found by a third outside attack: `status --data` on an older chain.db beside a newer
    state.db showed the old height, exit 0, no warning."""
    from blokauto.modules import default_registry
    from blokauto.node.committer import BlockCommitter

    data = tmp_path / "data"
    genesis = write_chain(data)
    c = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    c.recover()
    for _ in range(3):
        c.produce([])
    c.state.flush()
    c.close()
    ok = run_cli("status", "--data", str(data))
    assert ok.returncode == 0 and "lost" not in ok.stdout + ok.stderr, ok.stdout + ok.stderr
    import sqlite3
    with sqlite3.connect(data / "chain.db") as db:  # an older chain.db: the last two blocks gone
        db.execute("DELETE FROM blocks WHERE height > 1")
        db.execute("DELETE FROM attestations WHERE height > 1")
    r = run_cli("status", "--data", str(data))
    assert r.returncode == 4, r.stdout + r.stderr
    assert "head.json records block 3" in r.stderr and "state.db records block 3" in r.stderr, r.stderr
    assert "blocks were lost from the block log" in r.stderr


def test_a_backup_refused_for_a_damaged_journal_names_no_file_of_its_temporary_copy(tmp_path):
    """Found by a third outside attack: the refusal told the operator to `mv` a file inside the
    backup's temporary `.partial/` folder."""
    from blokauto.modules import default_registry
    from blokauto.node.committer import BlockCommitter
    from blokauto.node.journal import GROUP_MAGIC, JOURNAL_FILE, IntakeJournal

    data = tmp_path / "data"
    genesis = write_chain(data)
    c = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    c.recover()
    c.close()
    j = IntakeJournal(data)
    j.read()
    j.open()
    for group in ([b"one"], [b"two"], [b"three"]):
        j.append(group)
    j.close()
    raw = bytearray((data / JOURNAL_FILE).read_bytes())
    raw[raw.find(GROUP_MAGIC) + 20] ^= 0xFF
    (data / JOURNAL_FILE).write_bytes(bytes(raw))
    r = run_cli("node", "backup", "--data", str(data), "--to", str(tmp_path / "backup"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert ".partial" not in r.stderr and "damaged at byte" in r.stderr and "node start" in r.stderr, r.stderr
    assert not any((tmp_path / "backup").glob("*"))
