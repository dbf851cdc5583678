"""A node writes its state layers in a process of its own: what that process writes must be exactly
what the in-thread writer writes, a killed writer must cost nothing, and it never outlives its node."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from conftest import CHAIN, K, build_tx, consortium, now_ms, write_chain
from helpers.vehicles import register_msg, vin_for

from blokauto.core.block import Genesis
from blokauto.core.tx import check_stateless
from blokauto.modules import default_registry
from blokauto.modules.governance.messages import AddMember
from blokauto.modules.vehicles.messages import AssignWmi, RecordOdometer
from blokauto.node.committer import BlockCommitter

TABLES_SQL = "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every row of every table of ``db``, sorted."""
    with closing(sqlite3.connect(db)) as c:
        return {t: sorted(c.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                for (t,) in c.execute(TABLES_SQL).fetchall()}


def blocks_of_work() -> list[list[bytes]]:
    """Blocks that put, replace and delete state, tree nodes, tx index and index rows."""
    exp = now_ms() + 600_000
    reg, oem = K("reg-admin"), K("oem-admin")
    vins = [vin_for("WZZ", n) for n in range(12)]
    members = [build_tx(oem, AddMember(member=K(f"m{n}").did, roles=["manufacturer"]), K(f"m{n}"), expires=exp)
               for n in range(5)]
    return [
        [build_tx(reg, AssignWmi(wmi="WZZ", org="oem"), expires=exp)],
        [build_tx(oem, register_msg(v), expires=exp) for v in vins[:6]] + members,
        [build_tx(oem, register_msg(v), expires=exp) for v in vins[6:]],
        [build_tx(oem, RecordOdometer(vin=v, value=1000 + n), expires=exp) for n, v in enumerate(vins)],
        [build_tx(oem, RecordOdometer(vin=v, value=2000 + n), expires=exp) for n, v in enumerate(vins[::2])],
    ]


def run_engine(data: Path, blocks: list[list[bytes]], *, writer_process: bool,
               genesis: Genesis | None = None) -> tuple[str, int | None]:
    genesis = write_chain(data, genesis)
    registry = default_registry()
    engine = BlockCommitter(data, registry, K("reg-node"), state_writer_process=writer_process, genesis=genesis)
    engine.recover()
    pid = engine.state._process.pid if engine.state._process is not None else None
    t = genesis.time
    for n, raws in enumerate(blocks):
        checked = [check_stateless(r, registry.codec, chain=CHAIN, max_bytes=1 << 20) for r in raws]
        outcome = engine.produce(checked, time=t + 1000 * (n + 1))
        assert all(r.ok for r in outcome.receipts), [r for r in outcome.receipts if not r.ok]
    root = engine.head.state_root
    engine.state.flush()
    engine.close()
    return root, pid


def test_the_writer_process_writes_exactly_what_the_thread_writes(tmp_path: Path) -> None:
    blocks, genesis = blocks_of_work(), consortium(time=now_ms() - 1000)
    root_thread, _ = run_engine(tmp_path / "thread", blocks, writer_process=False, genesis=genesis)
    root_process, pid = run_engine(tmp_path / "process", blocks, writer_process=True, genesis=genesis)
    assert pid is not None
    assert root_thread == root_process
    assert dump(tmp_path / "thread" / "state.db") == dump(tmp_path / "process" / "state.db")


def test_the_writer_process_exits_when_its_engine_stops(tmp_path: Path) -> None:
    _, pid = run_engine(tmp_path / "d", blocks_of_work()[:2], writer_process=True)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped and reaped by close()


def test_a_killed_writer_is_replaced_and_its_layer_written_again(tmp_path: Path) -> None:
    data = tmp_path / "d"
    genesis = write_chain(data)
    registry = default_registry()
    engine = BlockCommitter(data, registry, K("reg-node"), state_writer_process=True, genesis=genesis)
    engine.recover()
    first = engine.state._process
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)
    first._proc.wait()
    blocks = blocks_of_work()
    for n, raws in enumerate(blocks):
        checked = [check_stateless(r, registry.codec, chain=CHAIN, max_bytes=1 << 20) for r in raws]
        engine.produce(checked, time=genesis.time + 1000 * (n + 1))
    engine.state.flush()  # raises if a layer was lost
    assert engine.state._process is not first
    height, root = engine.head.height, engine.head.state_root
    engine.close()
    with closing(sqlite3.connect(data / "state.db")) as c:
        assert c.execute("SELECT v FROM meta WHERE k='height'").fetchone()[0] == height
        assert bytes(c.execute("SELECT v FROM meta WHERE k='root'").fetchone()[0]).hex() == root


@pytest.mark.timeout(120)
def test_a_killed_node_leaves_no_writer_behind(node_process) -> None:
    node = node_process.start()
    writers = _writer_children(node.pid)
    assert len(writers) == 1
    os.kill(node.pid, signal.SIGKILL)  # the node alone: its writer must notice and exit by itself
    node.proc.wait(30)
    try:
        deadline = time.monotonic() + 20
        while _alive(writers[0]):
            assert time.monotonic() < deadline, "the state writer outlived its node by 20 s"
            time.sleep(0.2)
    finally:
        node.kill()  # whatever is left of it, by PID
    again = node_process.start()
    assert httpx.get(f"{again.url}/v1/status", timeout=10).json()["healthy"] is True


def _writer_children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"blokauto.store.layer_writer" in cmd:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
