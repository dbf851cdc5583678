"""What a second outside attack found in the node itself, each now a test."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import K, build_tx, now_ms, signed

from blokauto.modules.governance.messages import AddMember


def member_batches(n_batches: int, per: int) -> list[bytes]:
    exp = now_ms() + 600_000
    out = []
    for b in range(n_batches):
        raws = [build_tx(K("oem-admin"), AddMember(member=K(f"flush-{b}-{i}").did, roles=["manufacturer"]),
                         K(f"flush-{b}-{i}"), expires=exp) for i in range(per)]
        out.append(b"[" + b",".join(raws) + b"]")
    return out


@pytest.mark.timeout(300)
def test_blocks_applied_while_the_flusher_was_busy_reach_state_db_without_new_traffic(node_process) -> None:
    """A burst ends while the state flusher is busy: the newest blocks must still reach state.db
    (and so queries, proofs, reports and event replay) once the node is idle, not only when the
    next transaction arrives."""
    node = node_process.start()
    bodies = member_batches(3, 1500)
    with signed(node.url, node.key, timeout=120) as http:
        for body in bodies:
            r = http.post("/v1/txs/batch", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 200, r.text
        deadline = time.monotonic() + 120
        while http.get("/v1/status").json()["committed_txs"] < 4500:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while True:
            st = http.get("/v1/status").json()
            if st["flushed_height"] == st["height"]:
                break
            assert time.monotonic() < deadline, f"state.db stays at {st['flushed_height']}, blocks reach {st['height']}"
            time.sleep(0.1)


@pytest.mark.timeout(60)
def test_a_block_applied_during_a_slow_flush_is_flushed_once_the_node_is_idle(tmp_path) -> None:
    """The same, made certain: every flush takes 0.3 s, and two blocks commit back to back."""
    from blokauto.core.tx import check_stateless
    from blokauto.modules import default_registry
    from blokauto.node.committer import BlockCommitter
    from blokauto.node.ordering import NodeConfig, Submission
    from blokauto.node.solo import SoloOrdering
    from conftest import CHAIN, write_chain

    data = tmp_path / "data"
    genesis = write_chain(data)
    registry = default_registry()
    engine = BlockCommitter(data, registry, K("reg-node"), genesis=genesis)
    ordering = SoloOrdering(engine, NodeConfig(block_max_txs=1, block_interval_ms=1))
    ordering.recover()
    write = engine.state._write_layer
    engine.state._write_layer = lambda layer: (time.sleep(0.3), write(layer))[1]
    ordering.start()
    try:
        start = engine.head.height
        exp = now_ms() + 600_000
        for i in range(2):
            raw = build_tx(K("oem-admin"), AddMember(member=K(f"slow-{i}").did, roles=["manufacturer"]),
                           K(f"slow-{i}"), expires=exp)
            ordering.enqueue([(check_stateless(raw, registry.codec, chain=CHAIN, max_bytes=1 << 20), Submission(1), 0)])
        deadline = time.monotonic() + 20
        while engine.head.height < start + 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        deadline = time.monotonic() + 3
        while engine.state.flushed_height < engine.head.height:
            assert time.monotonic() < deadline, (engine.state.flushed_height, engine.head.height)
            time.sleep(0.02)
    finally:
        ordering.stop()
        engine.close()


@pytest.mark.timeout(180)
def test_a_second_node_on_the_same_folder_is_refused_and_a_killed_one_does_not_block_a_restart(node_process) -> None:
    import os
    import signal
    import subprocess
    import sys

    from conftest import free_port, run_cli

    first = node_process.start()
    second = subprocess.run([sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(node_process.data),
                             "--host", "127.0.0.1", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"is in use by a node (pid {first.pid})" in second.stderr
    assert "Traceback" not in second.stderr
    audit = run_cli("audit", "--data", str(node_process.data))
    assert audit.returncode == 2 and "in use" in audit.stderr and "node scrub" in audit.stderr, audit.stderr
    assert httpx.get(first.url + "/v1/status", timeout=10).json()["healthy"] is True  # the first one is untouched
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait(30)
    first.kill()  # its workers, by PID
    again = node_process.start()  # the lock died with the process; the file left behind does not matter
    assert httpx.get(again.url + "/v1/status", timeout=10).json()["healthy"] is True


@pytest.mark.timeout(180)
def test_a_module_query_never_serves_a_changed_state_value(node_process) -> None:
    """One byte of an organisation's record changed in state.db after a clean stop: the module
    query that reads it answers integrity_failure (503), as a state read with proof would."""
    import sqlite3
    from contextlib import closing

    node = node_process.start()
    with signed(node.url, node.key, timeout=30) as http:
        good = http.get("/v1/q/governance/organisation", params={"id": "oem"})
        assert good.status_code == 200 and "oem" in good.text
    node.stop()
    with closing(sqlite3.connect(node_process.data / "state.db", isolation_level=None)) as c:
        (value,) = c.execute("SELECT v FROM state WHERE k=?", (b"gov/org/oem",)).fetchone()
        changed = bytes(value).replace(b'"name":"', b'"name":"X', 1)
        assert changed != bytes(value)
        c.execute("UPDATE state SET v=? WHERE k=?", (changed, b"gov/org/oem"))
    again = node_process.start()
    with signed(again.url, again.key, timeout=30) as http:
        r = http.get("/v1/q/governance/organisation", params={"id": "oem"})
        assert r.status_code == 503 and r.json()["error"]["code"] == "integrity_failure", r.text
        assert "X" not in r.text.split('"name"')[-1][:3]
        other = http.get("/v1/q/governance/organisation", params={"id": "ins"})
        assert other.status_code == 503  # state.db as a whole is no longer served until rebuilt
    again.stop()  # SIGTERM: its engine had halted on the damage, so it did not stop "cleanly"
    assert again.proc.returncode == 4
    log = (node_process.data / "node.log").read_text()
    assert "its engine had stopped earlier" in log and log.rstrip().endswith("node stopped cleanly") is False


@pytest.mark.timeout(180)
def test_a_changed_head_json_is_blamed_on_head_json_not_on_an_intact_block_log(node_process) -> None:
    import json
    import subprocess
    import sys

    from conftest import free_port

    node = node_process.start()
    with signed(node.url, node.key, timeout=60) as http:
        for body in member_batches(1, 20):
            assert http.post("/v1/txs/batch", content=body, headers={"content-type": "application/json"}
                             ).status_code == 200
        deadline = time.monotonic() + 60
        while http.get("/v1/status").json()["committed_txs"] < 20:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        height = http.get("/v1/status").json()["height"]
    node.stop()
    head = node_process.data / "head.json"
    marker = json.loads(head.read_text())
    assert marker["height"] == height
    marker["hash"] = ("0" if marker["hash"][0] != "0" else "1") + marker["hash"][1:]
    head.write_text(json.dumps(marker))
    r = subprocess.run([sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(node_process.data),
                        "--host", "127.0.0.1", "--port", str(free_port())], capture_output=True, text=True, timeout=60)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "head.json was changed, not the block log" in r.stderr and "mv " in r.stderr, r.stderr
    from conftest import run_cli

    scrubbed = run_cli("node", "scrub", "--data", str(node_process.data))
    assert scrubbed.returncode != 0 and "head.json records hash" in scrubbed.stdout + scrubbed.stderr, scrubbed
    head.rename(head.with_name("head.json.damaged"))  # what the message says to do
    again = node_process.start()
    with signed(again.url, again.key, timeout=30) as http:
        st = http.get("/v1/status").json()
        assert st["healthy"] is True and st["height"] == height


def test_a_body_signed_without_its_default_fields_is_told_the_id_the_node_computed() -> None:
    import json

    from conftest import CHAIN

    from blokauto.core import crypto
    from blokauto.core.errors import BadSignature
    from blokauto.core.tx import check_stateless, tx_id
    from blokauto.modules import default_registry

    codec = default_registry().codec
    key = K("oem-admin")
    body = {"chain": CHAIN, "sender": key.did, "nonce": "ab" * 16, "expires": now_ms() + 60_000,
            "msg": {"type": "vehicles.record_odometer", "vin": "WZZZZZ1JZ00000001", "value": 1200}}  # no "unit"
    raw_body = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    naive_id = crypto.tagged_hash(crypto.TAG_TX_ID, raw_body)
    sig = key.sign(crypto.TAG_TX_SIG + naive_id).hex()
    raw = json.dumps({"body": body, "sigs": [{"signer": key.did, "sig": sig}]}).encode()
    with pytest.raises(BadSignature) as err:
        check_stateless(raw, codec, chain=CHAIN, max_bytes=1 << 20)
    computed = tx_id(codec.decode(raw).body).hex()
    assert err.value.detail["tx_id"] == computed != naive_id.hex()
    assert '"unit":"km"' in err.value.detail["canonical_body"]
    assert computed in err.value.message and "defaults" in err.value.message


@pytest.mark.timeout(300)
def test_a_demo_never_replaces_the_folder_of_a_demo_still_serving_it(tmp_path) -> None:
    import subprocess
    import sys

    from conftest import free_port, run_cli

    data, port = tmp_path / "demo", free_port()
    log = open(tmp_path / "serve.log", "wb")
    serving = subprocess.Popen([sys.executable, "-m", "blokauto.cli", "demo", "--data", str(data), "--serve",
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert serving.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.5)
        def lasting_files() -> dict[str, int]:
            # The serving node writes head.json by way of head.json.tmp and a rename: the temporary
            # name comes and goes on its own, so the folder's lasting files are compared, by inode.
            return {p.name: p.stat().st_ino for p in data.iterdir() if not p.name.endswith(".tmp")}

        before = lasting_files()
        second = run_cli("demo", "--data", str(data), timeout=120)
        assert second.returncode == 2 and "in use" in second.stderr, second.stdout + second.stderr
        after = lasting_files()
        assert sorted(after) == sorted(before)
        assert after["chain.db"] == before["chain.db"] and after["keys"] == before["keys"]
        assert httpx.get(f"http://127.0.0.1:{port}/v1/status", timeout=10).json()["healthy"] is True
    finally:
        serving.terminate()
        serving.wait(60)
        log.close()


@pytest.mark.timeout(120)
def test_deleting_node_lock_does_not_let_a_second_node_in(node_process) -> None:
    import subprocess
    import sys

    from conftest import free_port

    first = node_process.start()
    (node_process.data / "node.lock").unlink()  # the lock is on the folder, the file only names the pid
    second = subprocess.run([sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(node_process.data),
                             "--host", "127.0.0.1", "--port", str(free_port())],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "is in use by another node" in second.stderr, second.stderr
    assert httpx.get(first.url + "/v1/status", timeout=10).json()["healthy"] is True
