"""Durability of a networked node's requests and of what it trusts, on real processes (3 NATS
JetStream servers and 4 organisations' nodes on 127.0.0.1, each stopped by its PID):

- a cut request lost in a NATS outage is asked again, so the waiting block is still cut;
- an attestation whose publish failed is published again until the node reads it back;
- a deleted and re-created ordering stream is refused, by running and by restarting nodes.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from blokauto.modules.governance.messages import AddMember
from blokauto.node.netconfig import Subjects
from blokauto.node.network import alive, start_node, stop_pid, stream_configs
from blokauto.node.node import load_genesis
from blokauto.verify import TrustAnchor, verify_checkpoint

from conftest import build_tx, now_ms
from helpers_network import K, Net, log_tail, status, wait_in_step, wait_until

pytestmark = pytest.mark.e2e  # starts real NATS servers and node processes

BLOCK_MS = 3000  # the nodes wait this long for a cut marker before asking for one: the window to fault in


@pytest.fixture(scope="module")
def slow_cut_net(tmp_path_factory) -> Iterator[Net]:
    n = Net.up(tmp_path_factory.mktemp("slowcut") / "net", block_ms=BLOCK_MS)
    try:
        yield n
    finally:
        n.close()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net.up(tmp_path / "net")
    try:
        yield n
    finally:
        n.close()


def add_member_tx(net: Net, label: str) -> bytes:
    member = K(label)
    return build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                    chain=net.state.chain, expires=now_ms() + 600_000)


def submit(net: Net, raw: bytes) -> str:
    r = httpx.post(net.node("kba").url + "/v1/txs", content=raw, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def anchor(net: Net) -> TrustAnchor:
    genesis = load_genesis(Path(net.nodes[0].data))
    assert genesis is not None
    return TrustAnchor.from_genesis(genesis)


def committed_everywhere(net: Net, txid: str) -> dict[str, int] | None:
    heights = {}
    for n in net.nodes:
        r = httpx.get(f"{n.url}/v1/txs/{txid}", timeout=30)
        if r.status_code != 200:
            return None
        heights[n.org] = r.json()["height"]
    return heights


def attestation_counts(net: Net, height: int) -> dict[str, int]:
    # ask with blocks (served at once) rather than checkpoints (which wait for a quorum)
    return {n.org: len(httpx.get(f"{n.url}/v1/blocks/{height}", timeout=30).json()["attestations"])
            for n in net.nodes}


def test_a_cut_request_lost_in_a_nats_outage_is_asked_again(slow_cut_net: Net):
    net = slow_cut_net
    st = wait_in_step(net, timeout=60)
    txid = submit(net, add_member_tx(net, "outage-cut-member"))
    time.sleep(0.5)  # every node reads the transaction, and waits BLOCK_MS for a cut marker
    servers = list(net.state.servers)
    for s in servers:
        os.kill(s.pid, signal.SIGKILL)
    for s in servers:
        wait_until(lambda: not alive(s.pid), 10, f"NATS server {s.name} to die")
    # the nodes ask for the cut while no server answers; a request gives up after retrying for 15 s
    time.sleep(BLOCK_MS / 1000 + 19)
    for s in servers:
        net.restart_server(s)
    net.wait_replicas_current(60)
    # no other transaction is sent: the block must be cut all the same, on every node
    heights = wait_until(lambda: committed_everywhere(net, txid), 40,
                         f"transaction {txid} to be in a block on every node with no other transaction sent",
                         detail=lambda: str([(n.org, status(n)["height"], status(n)["pending"]) for n in net.nodes]))
    assert set(heights.values()) == {st["height"] + 1}, heights
    h = st["height"] + 1
    wait_until(lambda: all(c >= 3 for c in attestation_counts(net, h).values()), 30,
               f"block {h} to gather a quorum of attestations on every node",
               detail=lambda: str(attestation_counts(net, h)))
    for n in net.nodes:
        cp = httpx.get(f"{n.url}/v1/checkpoints/{h}", timeout=30).json()
        import msgspec
        from blokauto.core.block import Checkpoint

        verify_checkpoint(msgspec.convert(cp, Checkpoint), anchor(net))
    wait_in_step(net, timeout=60)


def test_an_attestation_whose_publish_failed_is_published_again(slow_cut_net: Net):
    """The operator makes the attestation stream refuse every new message (full, discard new) for
    longer than a publish retries; once it takes messages again, every node gets every attestation."""
    from nats.js.api import DiscardPolicy

    net = slow_cut_net
    subjects = Subjects(net.state.chain)
    st = wait_in_step(net, timeout=60)
    attest_cfg = stream_configs(net.state.chain)[1]

    async def refuse(nc: Any, js: Any) -> None:
        info = await js.stream_info(subjects.attest_stream)
        await js.update_stream(attest_cfg.evolve(max_msgs=info.state.messages, discard=DiscardPolicy.NEW))

    async def accept(nc: Any, js: Any) -> None:
        await js.update_stream(attest_cfg)

    net.admin(refuse)
    try:
        txid = submit(net, add_member_tx(net, "refused-attestation-member"))
        heights = wait_until(lambda: committed_everywhere(net, txid), 30, f"transaction {txid} in a block everywhere")
        h = st["height"] + 1
        assert set(heights.values()) == {h}, heights
        time.sleep(17)  # each node's publish of its attestation of block h retries for 15 s, then gives up
        assert all(c == 1 for c in attestation_counts(net, h).values()), attestation_counts(net, h)
    finally:
        net.admin(accept)
    wait_until(lambda: all(c == len(net.nodes) for c in attestation_counts(net, h).values()), 30,
               f"every node to hold every node's attestation of block {h}",
               detail=lambda: str(attestation_counts(net, h)))


def test_a_re_created_ordering_stream_is_refused(net: Net):
    subjects = Subjects(net.state.chain)
    txid = submit(net, add_member_tx(net, "before-recreate-member"))
    wait_until(lambda: committed_everywhere(net, txid), 30, f"transaction {txid} in a block everywhere")
    st = wait_in_step(net, timeout=60)
    victim = net.node("meister-werkstatt")
    stop_pid(victim.pid)
    old = net.order_stream_info().created.isoformat()

    async def recreate(nc: Any, js: Any) -> None:
        await js.delete_stream(subjects.order_stream)
        await js.add_stream(stream_configs(net.state.chain)[0])

    net.admin(recreate)
    new = net.order_stream_info().created.isoformat()
    assert new != old and net.order_stream_info().state.last_seq == 0

    # the running nodes notice and stop, naming the stream and both incarnations
    for n in net.nodes:
        if n is victim:
            continue
        bad = wait_until(lambda: (lambda s: s if not s["healthy"] else None)(status(n)), 20,
                         f"node {n.org} to refuse the re-created stream", detail=lambda: str(status(n)))
        assert subjects.order_stream in bad["error"] and old in bad["error"] and new in bad["error"], bad["error"]
        assert status(n)["height"] == st["height"]

    # a node (re)started on it refuses to run
    start_node(net.state, victim, workers=1)
    net.state.save()
    wait_until(lambda: not alive(victim.pid), 60, f"node {victim.org} to refuse to start",
               detail=lambda: log_tail(victim))
    log = log_tail(victim, 4000)
    assert "not the one this node's blocks were formed from" in log, log
    assert subjects.order_stream in log and old in log and new in log, log
    assert "Restore the original stream" in log, log


def test_network_up_starts_again_elsewhere_when_its_ports_are_taken_before_it_binds_them(tmp_path: Path, monkeypatch):
    """``network up`` chooses free ports and the processes bind them a moment later: another
    process taking one in between (here: a listener the test opens on the port just chosen, for a
    NATS server's route port and a node's API port) must not stop the network from starting."""
    import itertools
    import socket

    import blokauto.node.network as network

    real = network.free_port
    calls = itertools.count()
    held: list[socket.socket] = []

    def free_port_then_taken() -> int:
        n = next(calls)
        port = real()
        if n in (1, 6):  # n1's route port; the first node's API port
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen()
            held.append(s)
        return port

    monkeypatch.setattr(network, "free_port", free_port_then_taken)
    net = None
    try:
        state = network.network_up(tmp_path / "net", orgs=4, workers=1, key_factory=K, timeout=40)
        net = Net(Path(state.base), state)
        taken = {s.getsockname()[1] for s in held}
        assert len(taken) == 2
        used = {p for srv in state.servers for p in (srv.port, srv.cluster_port)} | {n.port for n in state.nodes}
        assert not taken & used, "a process was left on a port another process holds"
        wait_in_step(net, timeout=60)
        for n in net.nodes:  # every organisation's file names the servers' and peers' ports as they are
            s = net.settings(n.org)
            assert s.servers == state.server_urls
            assert sorted(s.peers) == sorted(m.url for m in net.nodes if m is not n)
    finally:
        if net is not None:
            net.close()
        for s in held:
            s.close()

