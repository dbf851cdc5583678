"""A networked node whose block log was damaged repairs itself: blocks it lost are formed again from
the ordering stream, a damaged log is replaced by a peer's verified snapshot; either way the block
it had committed last comes back identical, nothing acknowledged is lost, and the damaged files
are kept aside."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from helpers.network import Load, Net, check_nothing_acknowledged_lost, net_http, status, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def loaded(net: Net, prefix: str, victim_org: str) -> Load:
    others = [n.org for n in net.nodes if n.org != victim_org]
    load = Load([net.node(o).url for o in others], net.state.chain, prefix).start()
    wait_until(lambda: load.acked_count() >= 200 and status(net.node(victim_org))["height"] >= 6, 90,
               "a loaded network", detail=load.summary)
    return load


def headers(node, top: int) -> list[str]:
    with net_http(node.url, timeout=30) as http:
        return [http.get(f"/v1/blocks/{h}").json()["hash"] for h in range(top + 1)]


def test_a_node_whose_log_lost_its_newest_blocks_forms_them_again_from_the_stream(net: Net):
    victim = net.node("meister-werkstatt")
    load = loaded(net, "lost", victim.org)
    try:
        top = status(victim)["height"]
        before = headers(victim, top)
        net.kill_node(victim)
        wal = Path(victim.data) / "chain.db-wal"
        size = wal.stat().st_size
        frames = (size - 32) // (24 + 4096)
        assert frames > 4, "the newest blocks should still be in the write-ahead log"
        wal.write_bytes(wal.read_bytes()[: 32 + (frames // 2) * (24 + 4096)])  # a WAL that lost its newest frames
        with closing(sqlite3.connect(f"file:{Path(victim.data) / 'chain.db'}?mode=ro", uri=True)) as c:
            assert c.execute("SELECT max(height) FROM blocks").fetchone()[0] < top  # the premise: blocks were lost
        net.restart_node(victim)
        st = wait_until(lambda: (lambda s: s if s["height"] > top else None)(status(victim)), 60,
                        "the repaired node to pass its old head")
        assert st["healthy"] is True, st
        assert "formed again from the ordering stream" in st["integrity"]["repaired"]
        assert headers(victim, top) == before  # every block it had committed, identical
        assert any(p.name.startswith("damaged-") for p in Path(victim.data).iterdir())
    finally:
        load.halt()
    check_nothing_acknowledged_lost(net, load)


def test_a_node_whose_log_is_damaged_rejoins_from_a_peers_verified_snapshot(net: Net):
    victim = net.node("meister-werkstatt")
    load = loaded(net, "dmg", victim.org)
    try:
        top = status(victim)["height"]
        before = headers(victim, top)
        net.kill_node(victim)
        with closing(sqlite3.connect(Path(victim.data) / "chain.db", isolation_level=None)) as c:
            h = c.execute("SELECT max(height) FROM blocks").fetchone()[0] - 1
            c.execute("UPDATE blocks SET receipts = receipts || x'00' WHERE height = ?", (h,))  # one damaged block
        net.restart_node(victim)
        st = wait_until(lambda: (lambda s: s if s["height"] > top else None)(status(victim)), 90,
                        "the repaired node to pass its old head")
        assert st["healthy"] is True, st
        assert "verified snapshot" in st["integrity"]["repaired"]
        assert headers(victim, top) == before
        aside = [p for p in Path(victim.data).iterdir() if p.name.startswith("damaged-")]
        assert aside and (aside[0] / "chain.db").exists()  # the damaged log is kept as evidence
    finally:
        load.halt()
    check_nothing_acknowledged_lost(net, load)
