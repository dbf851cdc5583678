"""The node's sample store (``node.sample_store``, ``DATA/samples.db``): samples kept off the ledger.

- durable before acknowledged: a node killed (SIGKILL, by PID) right after it answered 202 still
  holds every batch it acknowledged when it comes back;
- checked on every read: a row whose samples are not the batch its root commits to is refused
  (``samples_damaged``), never served;
- damage never stops the node: a samples.db SQLite cannot read leaves the node running and healthy,
  refusing only telemetry (``sample_store_unavailable``);
- a batch the ledger refuses takes its samples with it, unless another submission of it was kept;
- erasure leaves no copy of the samples in samples.db or its write-ahead log.
"""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec
import pytest

from blokauto.client import Client, signed_http
from blokauto.client.telemetry import Telemetry, make_batch
from blokauto.modules.telemetry import Sample, batch_root
from blokauto.node.sample_store import FILE, SampleStore
from blokauto.telemetry_intake import SamplesDamaged, SampleStoreUnavailable

from conftest import NodeProcess, Served, build_tx, now_ms
from helpers.telemetry_intake import DEVICE, JSON, OWNER, VIN, intake_body, new_chain, stage, trip


def root_of(samples: list[Sample]) -> str:
    return batch_root(samples).hex()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SampleStore]:
    s = SampleStore.open(tmp_path)
    try:
        yield s
    finally:
        s.close()


def put(store: SampleStore, samples: list[Sample], tx: str = "t1", vin: str = VIN) -> str:
    root = root_of(samples)
    store.put(vin, root, samples, 60, tx)
    return root


# ---------------------------------------------------------------- the store itself


def test_put_get_count_and_erase(store):
    a, b, c = trip(5), trip(7), trip(3)
    ra, rb = put(store, a), put(store, b, "t2")
    rc = put(store, c, "t3", vin="OTHERVIN")
    got = store.get(VIN, ra)
    assert got is not None and got.samples == a and got.utc_offset_min == 60 and got.tx == "t1"
    assert store.get(VIN, rc) is None and store.get("OTHERVIN", rc).samples == c
    assert (store.count(), store.count(VIN)) == (3, 2)
    assert not store.put(VIN, ra, a, 0, "t9")  # held already: left as it was
    assert store.get(VIN, ra).tx == "t1"
    assert store.erase(VIN, before=b[0].t) == 1  # only the batch that ended before b started
    assert store.get(VIN, ra) is None and store.get(VIN, rb).samples == b
    assert store.erase(VIN) == 1 and store.count() == 1


def test_the_file_is_durable_and_overwrites_what_it_deletes(store):
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()
    with store._lock:
        pragmas = {p: store._conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "secure_delete")}
    assert pragmas == {"synchronous": 2, "secure_delete": 1}  # FULL, ON
    put(store, trip(3))
    for name in (FILE, FILE + "-wal"):
        assert (store.path.parent / name).stat().st_mode & 0o077 == 0, f"{name} is readable by others"


def test_erased_samples_leave_no_copy_in_the_file_or_its_log(store):
    samples = trip(400)
    root = put(store, samples)
    with store._lock:
        blob = bytes(store._conn.execute("SELECT samples FROM batches WHERE root = ?", (root,)).fetchone()[0])
    files = [store.path, store.path.with_name(FILE + "-wal")]
    assert any(blob[100:164] in f.read_bytes() for f in files if f.exists())
    assert store.erase(VIN) == 1
    for f in files:
        if f.exists():
            assert blob[100:164] not in f.read_bytes(), f"{f.name} still holds the erased samples"


# (what happens, then which (tx, kept) settle, whether the samples stay)
SETTLING: list[tuple[str, list[tuple[str, Any]], bool]] = [
    ("refused", [("put", "t1"), ("settle", ("t1", False))], False),
    ("committed", [("put", "t1"), ("settle", ("t1", True))], True),
    ("first refused, second committed", [("put", "t1"), ("put", "t2"), ("settle", ("t1", False)),
                                         ("settle", ("t2", True))], True),
    ("second committed before first refused", [("put", "t1"), ("put", "t2"), ("settle", ("t2", True)),
                                               ("settle", ("t1", False))], True),
    ("both refused", [("put", "t1"), ("put", "t2"), ("settle", ("t1", False)), ("settle", ("t2", False))], False),
    ("a replay of a committed batch refused", [("put", "t1"), ("settle", ("t1", True)), ("put", "t2"),
                                               ("settle", ("t2", False))], True),
    ("refused, then sent again and committed", [("put", "t1"), ("settle", ("t1", False)), ("put", "t2"),
                                                ("settle", ("t2", True))], True),
    ("pending", [("put", "t1")], True),
    ("a settlement nobody claimed", [("settle", ("t7", False))], False),
]


@pytest.mark.parametrize("steps,kept", [s[1:] for s in SETTLING], ids=[s[0] for s in SETTLING])
def test_a_batch_the_ledger_refuses_is_discarded_unless_another_submission_kept_it(store, steps, kept):
    samples = trip(4)
    root = root_of(samples)
    for step, arg in steps:
        if step == "put":
            store.put(VIN, root, samples, 0, arg)
        else:
            store.settle(VIN, root, *arg)
    assert (store.get(VIN, root) is not None) == kept


# ---------------------------------------------------------------- damage


def _set(column: str, value: Callable[[Any], Any]) -> Callable[[sqlite3.Connection, str], None]:
    def change(conn: sqlite3.Connection, root: str) -> None:
        old = conn.execute(f'SELECT "{column}" FROM batches WHERE root = ?', (root,)).fetchone()[0]
        conn.execute(f'UPDATE batches SET "{column}" = ? WHERE root = ?', (value(old), root))

    return change


def _flip(blob: bytes) -> bytes:
    b = bytearray(blob)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def _compressed(doc: Any) -> bytes:
    return zlib.compress(msgspec.json.encode(doc))


#: (what was done to the row, the change): each read is refused as samples_damaged, never served.
ROW_DAMAGE = [
    ("a bit flipped in the compressed samples", _set("samples", _flip)),
    ("not zlib at all", _set("samples", lambda _: b"\x00" * 40)),
    ("the compressed stream cut short", _set("samples", lambda b: bytes(b)[: len(b) // 2])),
    ("another batch's samples in its place", _set("samples", lambda _: _compressed(trip(6)))),
    ("a sample's speed edited", _set("samples", lambda b: _compressed(
        [[s[0], 0, *s[2:]] if i == 2 else s for i, s in enumerate(msgspec.json.decode(zlib.decompress(b)))]))),
    ("not samples", _set("samples", lambda _: _compressed({"speed": 50}))),
    ("larger than any batch (a decompression bomb)",
     _set("samples", lambda _: zlib.compress(b"[" + b" " * 3_000_000 + b"]"))),
    ("its count edited", _set("count", lambda n: n + 1)),
]


@pytest.mark.parametrize("change", [d[1] for d in ROW_DAMAGE], ids=[d[0] for d in ROW_DAMAGE])
def test_a_damaged_row_is_refused_never_served(store, change):
    samples = trip(6)
    root = put(store, samples)
    conn = sqlite3.connect(store.path)
    try:
        change(conn, root)
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(SamplesDamaged) as err:
        store.get(VIN, root)
    assert err.value.detail["root"] == root and err.value.code == "samples_damaged"
    assert store.count() == 1  # the store itself still works


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database, it was overwritten" * 200)


def _torn_pages(path: Path) -> None:
    data = bytearray(path.read_bytes())
    for i in range(1024, len(data)):  # everything after the header page's first kilobyte
        data[i] = 0xA5
    path.write_bytes(bytes(data))


def _newer_format(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version=7")
    conn.commit()
    conn.close()


def _a_folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


#: (what happened to samples.db) -> the store opens unusable: every call is sample_store_unavailable.
FILE_DAMAGE = [("overwritten", _garbage), ("pages torn", _torn_pages), ("a newer format", _newer_format),
               ("a folder in its place", _a_folder)]


@pytest.mark.parametrize("damage", [d[1] for d in FILE_DAMAGE], ids=[d[0] for d in FILE_DAMAGE])
def test_a_damaged_file_makes_the_store_unusable_not_the_caller_crash(tmp_path, damage):
    first = SampleStore.open(tmp_path)
    samples = trip(300)
    root = put(first, samples)
    first.close()
    damage(tmp_path / FILE)
    for side in ("-wal", "-shm"):
        (tmp_path / (FILE + side)).unlink(missing_ok=True)
    s = SampleStore.open(tmp_path)  # never raises
    try:
        for call in (lambda: s.get(VIN, root), lambda: s.put(VIN, root, samples, 0, "t2"), lambda: s.count(),
                     lambda: s.erase(VIN)):
            with pytest.raises(SampleStoreUnavailable):
                call()
        assert s.broken
    finally:
        s.close()


# ---------------------------------------------------------------- a node


def _post(url: str, g: Any, samples: list[Sample], **kw: Any) -> Any:
    raw = build_tx(DEVICE, make_batch(VIN, samples), chain=g.chain, expires=now_ms() + 600_000)
    with signed_http(url, DEVICE, timeout=60) as http:
        return http.post("/v1/telemetry/batches", content=intake_body(raw, samples), headers=JSON, **kw)


def _wait_for_batches(url: str, g: Any, n: int, timeout: float = 60) -> None:
    import time

    deadline = time.monotonic() + timeout
    with Client(url, key=OWNER, trust=g) as c:
        while Telemetry(c).batches(VIN)["total"] < n:
            assert time.monotonic() < deadline, "the acknowledged batches were not committed after the restart"
            time.sleep(0.2)


@pytest.mark.e2e
def test_acknowledged_samples_survive_kill_9(tmp_path):
    data = tmp_path / "data"
    g = new_chain(data)
    node = NodeProcess(data)
    try:
        stage(node.url, g)
        trips = [trip(50) for _ in range(5)]
        for samples in trips:
            r = _post(node.url, g, samples)
            assert r.status_code == 202, r.text
        node.kill()  # SIGKILL by PID, right after the last 202
        node = NodeProcess(data)
        _wait_for_batches(node.url, g, len(trips))
        with Client(node.url, key=OWNER, trust=g) as c:
            tel = Telemetry(c)
            for seq, samples in enumerate(trips, start=1):
                assert tel.samples(VIN, seq).samples == samples  # proven record, checked samples
    finally:
        node.kill()


@pytest.mark.e2e
def test_a_node_with_an_unreadable_sample_store_runs_and_refuses_only_telemetry(tmp_path):
    data = tmp_path / "data"
    g = new_chain(data)
    node = NodeProcess(data)
    try:
        stage(node.url, g)
        samples = trip(20)
        assert _post(node.url, g, samples, params={"wait": 30}).json()["receipt"]["ok"]
        node.stop()
        _garbage(data / FILE)
        node = NodeProcess(data)
        with signed_http(node.url, OWNER, timeout=30) as http:
            status = http.get("/v1/status").json()
            assert status["healthy"], status
            r = http.get(f"/v1/telemetry/{VIN}/batches/1/samples")
            assert (r.status_code, r.json()["error"]["code"]) == (503, "sample_store_unavailable")
            assert "Retry-After" not in r.headers
            assert http.get(f"/v1/telemetry/{VIN}/batches/1").status_code == 200  # the ledger is not affected
        r = _post(node.url, g, trip(5))
        assert (r.status_code, r.json()["error"]["code"]) == (503, "sample_store_unavailable")
        with Client(node.url, trust=g) as c:  # other transactions go on
            from blokauto.modules.vehicles.messages import RecordOdometer

            assert c.send(RecordOdometer(vin=VIN, value=20_000), DEVICE).ok
            assert c.status()["healthy"]
    finally:
        node.kill()


def test_a_damaged_row_is_refused_over_http_and_the_node_stays_healthy(tmp_path):
    data = tmp_path / "data"
    g = new_chain(data)
    with Served(data) as served:
        stage(served.url, g)
        samples = trip(20)
        assert _post(served.url, g, samples, params={"wait": 30}).json()["receipt"]["ok"]
        conn = sqlite3.connect(data / FILE)
        try:
            _set("samples", _flip)(conn, root_of(samples))
            conn.commit()
        finally:
            conn.close()
        with signed_http(served.url, OWNER, timeout=30) as http:
            r = http.get(f"/v1/telemetry/{VIN}/batches/1/samples")
            assert (r.status_code, r.json()["error"]["code"]) == (503, "samples_damaged"), r.text
            assert http.get(f"/v1/telemetry/{VIN}/batches/1/samples/3").json()["error"]["code"] == "samples_damaged"
            assert http.get("/v1/status").json()["healthy"]
        r = _post(served.url, g, trip(4), params={"wait": 30})  # intake goes on
        assert r.status_code == 200 and r.json()["receipt"]["ok"]


def test_puts_racing_each_other_are_committed_together_and_each_answered(store: SampleStore) -> None:
    """Group commit: 24 threads put 12 batches at once, each batch twice: every batch is kept once,
    and of the two callers of each, one hears its row was added, the other that it was there."""
    import threading

    batches = [trip(3 + i % 5, step_ms=1_000 + i) for i in range(12)]
    results: dict[int, bool] = {}
    errors: list[BaseException] = []
    go = threading.Barrier(24)

    def one(i: int) -> None:
        go.wait()
        try:
            s = batches[i % 12]
            results[i] = store.put(VIN, root_of(s), s, 0, f"tx-{i}")
        except BaseException as exc:  # noqa: BLE001  (the test reports it)
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results.values()).count(True) == 12  # each batch added once, its second put told so
    assert store.count() == 12
    for s in batches:
        assert store.get(VIN, root_of(s)).samples == s


def test_a_group_that_cannot_commit_refuses_every_put_in_it(store: SampleStore) -> None:
    store.close()
    s = trip(3)
    with pytest.raises(SampleStoreUnavailable):
        store.put(VIN, root_of(s), s, 0, "tx")


@pytest.mark.parametrize("how", ["removed", "replaced", "emptied"])
def test_a_store_file_removed_replaced_or_emptied_under_the_node_refuses_instead_of_losing(store, how):
    """Found by the outside attack: with samples.db deleted under the running node, batches were still
    acknowledged, and gone at the next start. Now the store refuses (503) once its file is not the one
    it opened."""
    import os

    a = trip(5)
    put(store, a)
    path = store.path
    if how == "removed":
        os.remove(path)
    elif how == "replaced":
        os.rename(path, path.with_suffix(".old"))
        path.write_bytes(path.with_suffix(".old").read_bytes())
    else:
        os.truncate(path, 0)
    with pytest.raises(SampleStoreUnavailable) as err:
        put(store, trip(6), "t9")
    assert "while the node ran" in str(err.value)
    with pytest.raises(SampleStoreUnavailable):
        store.get(VIN, root_of(a))


@pytest.mark.e2e
def test_the_intake_workers_stop_themselves_when_their_node_is_killed(tmp_path):
    """Found by the outside attack: every kill -9 of a node that had taken batches left its intake
    worker processes running for ever (reparented to init). Only the node is killed here, by PID;
    its workers must notice and exit within a few seconds."""
    import os
    import signal
    import time

    import psutil

    data = tmp_path / "data"
    g = new_chain(data)
    node = NodeProcess(data)
    workers: list[psutil.Process] = []
    try:
        stage(node.url, g)
        assert _post(node.url, g, trip(20), params={"wait": 30}).json()["receipt"]["ok"]
        workers = [c for c in psutil.Process(node.pid).children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline()) or "resource_tracker" in " ".join(c.cmdline())]
        assert workers, "the batch was checked by intake workers"
        os.kill(node.pid, signal.SIGKILL)
        node.proc.wait(30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE
                                                   for w in workers):
            time.sleep(0.2)
        alive = [w.pid for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
        assert alive == [], f"intake workers outlived their node: {alive}"
    finally:
        for w in workers:
            try:
                w.kill()
            except psutil.Error:
                pass
        node.kill()
