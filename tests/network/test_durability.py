"""Durability of a networked node's requests and of what it trusts, on real processes (3 NATS
JetStream servers and 4 organisations' nodes on 127.0.0.1, each stopped by its PID):

- a cut request lost in a NATS outage is asked again, so the waiting block is still cut;
- an attestation whose publish failed is published again until the node reads it back;
- a deleted and re-created ordering stream is refused, by running and by restarting nodes;
- ``network up`` starts a process again elsewhere when its port was taken before it bound it;
- a node whose peers' attestations left the ATTEST stream fetches them from the peers' APIs;
- a verifier anchored at genesis follows node keys and quorum changed by governance.
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
from blokauto.node.network import alive, node_status, start_node, stop_pid, stream_configs
from blokauto.node.node import load_genesis
from blokauto.verify import TrustAnchor, verify_checkpoint

from conftest import JSON_POST, build_tx, now_ms
from helpers.network import (NODE_KEY, K, Net, attestation_stream_messages, decode_attestation, log_tail, net_get,
                             net_post, status, wait_in_step, wait_until)

pytestmark = pytest.mark.e2e  # starts real NATS servers and node processes

BLOCK_MS = 3000  # the nodes wait this long for a cut marker before asking for one: the window to fault in


@pytest.fixture(scope="module")
def slow_cut_net(tmp_path_factory) -> Iterator[Net]:
    n = Net.up(tmp_path_factory.mktemp("slowcut") / "net", block_ms=BLOCK_MS)
    try:
        yield n
    finally:
        n.close()


def add_member_tx(net: Net, label: str) -> bytes:
    member = K(label)
    return build_tx(K("kba-admin"), AddMember(member=member.did, roles=["inspector"]), member,
                    chain=net.state.chain, expires=now_ms() + 600_000)


def submit(net: Net, raw: bytes) -> str:
    r = net_post(net.node("kba").url + "/v1/txs", headers=JSON_POST, content=raw, timeout=30)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def anchor(net: Net) -> TrustAnchor:
    genesis = load_genesis(Path(net.nodes[0].data))
    assert genesis is not None
    return TrustAnchor.from_genesis(genesis)


def committed_everywhere(net: Net, txid: str) -> dict[str, int] | None:
    heights = {}
    for n in net.nodes:
        r = net_get(f"{n.url}/v1/txs/{txid}", timeout=30)
        if r.status_code != 200:
            return None
        heights[n.org] = r.json()["height"]
    return heights


def attestation_counts(net: Net, height: int) -> dict[str, int]:
    # ask with blocks (served at once) rather than checkpoints (which wait for a quorum)
    return {n.org: len(net_get(f"{n.url}/v1/blocks/{height}", timeout=30).json()["attestations"])
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
        assert not on_stream(net, h), "the attestation stream took messages while full"
    finally:
        net.admin(accept)
    # the peers' APIs would give a node the attestations it lacks (see below); the stream must get them too
    wait_until(lambda: on_stream(net, h) == {n.org for n in net.nodes}, 30,
               f"every node's attestation of block {h} to be on the attestation stream",
               detail=lambda: str(on_stream(net, h)))
    wait_until(lambda: all(c == len(net.nodes) for c in attestation_counts(net, h).values()), 30,
               f"every node to hold every node's attestation of block {h}",
               detail=lambda: str(attestation_counts(net, h)))


def on_stream(net: Net, height: int) -> set[str]:
    """The organisations whose attestation of ``height`` the attestation stream holds."""
    subjects = Subjects(net.state.chain)
    return {n.org for n in net.nodes
            if any(decode_attestation(m).height == height
                   for m in attestation_stream_messages(net, subjects.attest(n.org)))}


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


def test_a_node_whose_peers_attestations_left_the_stream_fetches_them_from_its_peers(net: Net):
    """The ATTEST stream keeps an hour. A node that forms older blocks again (here: from an empty
    folder, after the operator purged the attestation stream, as its age limit would) finds only
    its own attestations there, and must still serve quorum checkpoints: it asks its peers."""
    import msgspec

    from blokauto.core.block import Checkpoint

    subjects = Subjects(net.state.chain)
    for i in range(3):
        r = net_post(net.node("kba").url + "/v1/txs", headers=JSON_POST, params={"wait": 30},
                       content=add_member_tx(net, f"peer-attestation-member-{i}"), timeout=60)
        assert r.status_code == 200 and r.json()["receipt"]["ok"], r.text
    st = wait_in_step(net, timeout=60)
    top = st["height"]
    assert top >= 3
    victim = net.node("meister-werkstatt")
    stop_pid(victim.pid)

    async def purge(nc: Any, js: Any) -> None:
        await js.purge_stream(subjects.attest_stream)

    net.admin(purge)
    keep = {"genesis.json", "network.json", "nats.nk", "nats-ca.pem", "keys", "node.log"}
    for f in Path(victim.data).iterdir():  # everything the node wrote: it starts from the stream alone
        if f.name not in keep:
            f.unlink() if f.is_file() else __import__("shutil").rmtree(f)
    net.restart_node(victim)
    wait_until(lambda: status(victim)["height"] >= top, 60, f"node {victim.org} to form blocks 1..{top} again")
    trust = anchor(net)
    problems: dict[int, str] = {}

    def all_quorum() -> bool:
        problems.clear()
        for h in range(top + 1):
            cp = msgspec.convert(net_get(f"{victim.url}/v1/blocks/{h}", timeout=30).json(), dict)
            try:
                verify_checkpoint(msgspec.convert({"header": cp["header"], "attestations": cp["attestations"]},
                                                  Checkpoint), trust)
            except Exception as exc:  # noqa: BLE001 - reported below
                problems[h] = str(exc)
        return not problems

    wait_until(all_quorum, 60, f"node {victim.org} to serve a quorum checkpoint for every block up to {top}",
               every=1.0, detail=lambda: str(problems))
    assert status(victim)["peer_attestations"] >= 2 * (top + 1)
    assert status(victim)["healthy"]


def test_a_verifier_anchored_at_genesis_follows_node_keys_and_quorum_changed_by_governance(net: Net):
    """Governance gives kba a second node key (run by a fifth node) and raises the quorum to 4.
    Checkpoints after that carry the new key's attestation, which the genesis anchor does not know;
    the SDK, holding only genesis.json, fetches the proven consensus changes and advances."""
    from blokauto.client import Client
    from blokauto.keystore import KeyStore
    from blokauto.modules.governance.messages import Propose, Vote
    from blokauto.modules.governance.state import SetNodeKeys, SetQuorum
    from blokauto.node.network import OrgNode, free_port
    from blokauto.verify import VerificationError, follow_consensus, verify_tx_evidence

    kba = net.node("kba")
    new_key = K("kba-node2")

    def send(org: str, msg: Any, *cosigners: Any) -> dict[str, Any]:
        raw = build_tx(K(f"{org}-admin"), msg, *cosigners, chain=net.state.chain, expires=now_ms() + 600_000)
        r = net_post(kba.url + "/v1/txs", headers=JSON_POST, params={"wait": 30}, content=raw, timeout=60)
        assert r.status_code == 200 and r.json()["receipt"]["ok"], r.text
        return r.json()

    def decide(proposal: int, action: Any) -> int:
        """Propose (kba), then vote until the proposal passes; the height of the block that applied it."""
        got = send("kba", Propose(action=action))
        for org in ("bavaria-motors", "allied-insurance", "meister-werkstatt"):
            if any(e["type"] == "governance.proposal_decided" for e in got["receipt"]["events"]):
                break
            got = send(org, Vote(proposal=proposal, approve=True))
        assert any(e["type"] == "governance.proposal_decided" and e["status"] == "passed"
                   for e in got["receipt"]["events"]), got
        return got["height"]

    h1 = decide(1, SetNodeKeys(org="kba", nodes=[K("kba-node").did, new_key.did]))
    # kba runs a second node with the new key (same NATS credentials, its own data folder)
    data = net.base / "orgs" / "kba-2"
    data.mkdir()
    for name in ("genesis.json", "network.json", "nats.nk", "nats-ca.pem"):
        (data / name).write_bytes((Path(kba.data) / name).read_bytes())
    (data / "nats.nk").chmod(0o600)
    KeyStore(data / "keys").create("node", kind="node", org="kba", key=new_key)
    second = OrgNode("kba", str(data), free_port())
    net.state.nodes.append(second)
    start_node(net.state, second, workers=1)
    net.state.save()
    net._note(second.pid)
    wait_until(lambda: (lambda s: s is not None and s["height"] >= h1)(node_status(second)) or not alive(second.pid),
               60, "the second kba node to catch up", detail=lambda: log_tail(second))
    assert alive(second.pid), log_tail(second)

    h2 = decide(2, SetQuorum(quorum=4))
    got = send("kba", AddMember(member=K("after-consensus-change").did, roles=["inspector"]), K("after-consensus-change"))
    txid, h3 = got["id"], got["height"]
    assert h1 < h2 < h3
    wait_until(lambda: new_key.did in {a["node"] for a in net_get(f"{kba.url}/v1/blocks/{h3}", timeout=30)
                                       .json()["attestations"]}, 30, f"the new node key to attest block {h3}")
    ev = net_get(f"{kba.url}/v1/txs/{txid}", timeout=30).json()
    genesis = anchor(net)
    with pytest.raises(VerificationError, match="not a node key of the consortium"):
        verify_tx_evidence(ev, genesis)  # what a verifier that never follows governance says

    with Client(kba.url, trust=Path(kba.data) / "genesis.json", key=NODE_KEY) as client:
        info = client.receipt(txid)
        assert info.ok and info.height == h3
        assert [a.height for a in client.anchors] == [0, h1, h2]
        assert client.anchor.quorum == 4 and new_key.did in client.anchor.nodes and len(client.anchor.nodes) == 5
        assert client.checkpoint(h1 - 1).header.height == h1 - 1  # older blocks: judged with the genesis keys
        assert client.state("gov/consensus").value["quorum"] == 4

    # a listed change that was tampered with does not verify
    changes = httpx.get(f"{kba.url}/v1/consensus/changes", params={"after": 0}, timeout=30).json()["changes"]
    assert [c["height"] for c in changes] == [h1, h2]
    forged = [dict(changes[0], raw=changes[0]["raw"].replace('"quorum":3', '"quorum":1'))]
    assert forged[0]["raw"] != changes[0]["raw"]
    with pytest.raises(VerificationError):
        follow_consensus(genesis, forged)
    wait_in_step(net, timeout=90)
