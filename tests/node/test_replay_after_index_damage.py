"""A damaged tx index never lets a committed transaction in again (found by an outside attack: rows
deleted from state.db's tx_index let a node accept and commit a transaction a second time, which
poisoned its block log). At start the node checks the index against every block whose ids may not
have expired, and rebuilds state.db when a row is missing; once damage is known while it runs, it
orders and executes nothing more."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

import httpx

from blokauto.modules.governance.messages import AddMember

from conftest import JSON_POST, K, Served, build_tx, now_ms, signed_get, signed_post, write_chain


def committed_batch(url: str, genesis: Any, label: str, n: int = 5) -> tuple[list[bytes], int]:
    raws = []
    for i in range(n):
        key = K(f"{label}-{i}")
        raws.append(build_tx(K("oem-admin"), AddMember(member=key.did, roles=["manufacturer"]), key,
                             chain=genesis.chain, expires=now_ms() + 600_000))
    r = signed_post(url + "/v1/txs/batch", content=b"[" + b",".join(raws) + b"]", headers=JSON_POST, timeout=30)
    ids = [x["id"] for x in r.json()["results"]]
    height = signed_get(f"{url}/v1/txs/{ids[-1]}", params={"wait": 20}, timeout=30).json()["height"]
    return raws, height


def resubmit(url: str, raws: list[bytes]) -> list[dict[str, Any]]:
    r = signed_post(url + "/v1/txs/batch", content=b"[" + b",".join(raws) + b"]", headers=JSON_POST, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["results"]


def test_rows_deleted_from_the_tx_index_of_a_stopped_node_are_found_at_start(tmp_path):
    data = tmp_path / "data"
    genesis = write_chain(data)
    served = Served(data)
    raws, height = committed_batch(served.url, genesis, "once")
    served.stop()
    with closing(sqlite3.connect(data / "state.db", isolation_level=None)) as c:
        assert c.execute("DELETE FROM tx_index WHERE height=?", (height,)).rowcount >= len(raws)
    served = Served(data)
    try:
        assert served.node.rebuilt_state is not None and "tx index" in served.node.rebuilt_state
        codes = [r.get("error", {}).get("code") for r in resubmit(served.url, raws)]
        assert codes == ["replayed_tx"] * len(raws)  # accepted once, never again
        assert served.node.status()["healthy"] is True
    finally:
        served.stop()


def test_once_the_scrubber_finds_the_index_damaged_the_node_accepts_nothing(tmp_path):
    data = tmp_path / "data"
    genesis = write_chain(data)
    served = Served(data)
    try:
        raws, height = committed_batch(served.url, genesis, "live")
        served.node.committer.state.flush()
        with closing(sqlite3.connect(data / "state.db", isolation_level=None, timeout=10)) as c:
            c.execute("DELETE FROM tx_index WHERE height=?", (height,))
        report = served.node.scrubber.run_once()
        assert report is not None and any(f.kind == "tx-index" for f in report.findings)
        r = served.http.post("/v1/txs/batch", content=b"[" + b",".join(raws) + b"]", headers=JSON_POST,
                       timeout=30)
        assert r.status_code == 503 and r.json()["error"]["code"] == "integrity_failure", r.text
        st = httpx.get(served.url + "/v1/status", timeout=10).json()
        assert st["healthy"] is False and st["integrity"]["damage"]
    finally:
        served.stop()
    served = Served(data)  # the restart rebuilds state.db, and the transactions are replays again
    try:
        assert [r.get("error", {}).get("code") for r in resubmit(served.url, raws)] == ["replayed_tx"] * len(raws)
    finally:
        served.stop()
