"""The node's roles (committer, orderings, checkpoint service, event feed) and the API's one door.

The shape is the point of these tests as much as the behaviour: the HTTP layer reaches the node
only through ``Node``'s door; a quorum wait lives in the checkpoint service, not the block log;
an ordering that fails answers every transaction it still held.
"""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest

from blokauto.core.block import NodeSignature, attest
from blokauto.core.errors import Unavailable
from blokauto.core.tx import check_stateless
from blokauto.modules import default_registry
from blokauto.modules.governance.messages import AddMember
from blokauto.node.committer import BlockCommitter
from blokauto.node.ordering import NodeConfig, Submission
from blokauto.node.solo import SoloOrdering
from blokauto.store.blocks import BlockLog

from conftest import CHAIN, ROOT, K, build_tx, now_ms, write_chain

API = ROOT / "src" / "blokauto" / "api"
#: What the API may import of the node: the door, the event feed, the checked reads, the faults.
API_MAY_IMPORT = {"blokauto.node.node", "blokauto.node.event_feed", "blokauto.node.reader", "blokauto.node.faults",
                  "blokauto.node.sample_store", "blokauto.node.intake_pool"}  # the telemetry route's store and workers
#: The node's insides the API must not touch (through the door only).
NODE_INSIDES = {"committer", "ordering", "blocks", "checkpoints", "verifier", "engine"}


def _imports(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level)[0] if node.level else ""
            name = f"{base}.{node.module}" if node.module and base else (node.module or base)
            out.append((node.lineno, name))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_the_api_reaches_the_node_only_through_its_door() -> None:
    problems = []
    for path in sorted(API.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for line, name in _imports(tree, f"blokauto.api.{path.stem}"):
            if name.startswith("blokauto.node") and name not in API_MAY_IMPORT:
                problems.append(f"{path.name}:{line}: imports {name}")
            if name.startswith("blokauto.store") and name != "blokauto.store.damage":
                problems.append(f"{path.name}:{line}: imports {name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in NODE_INSIDES:
                problems.append(f"{path.name}:{node.lineno}: reaches .{node.attr}")
    assert problems == []


def test_the_door_check_finds_a_reach_into_the_committer() -> None:
    tree = ast.parse("from ..node.committer import BlockCommitter\nx = node.committer.state.flushed_height\n")
    assert ("blokauto.node.committer" in {n for _, n in _imports(tree, "blokauto.api.app")})
    assert any(isinstance(n, ast.Attribute) and n.attr in NODE_INSIDES for n in ast.walk(tree))


def test_the_block_log_stores_attestations_and_knows_no_quorum(tmp_path: Path) -> None:
    assert not any(hasattr(BlockLog, name) for name in ("quorum", "quorum_wait_s", "wait_quorum"))


def _committer(tmp_path: Path, *, recover: bool = True) -> BlockCommitter:
    data = tmp_path / "data"
    genesis = write_chain(data)
    committer = BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)
    if recover:
        committer.recover()
    return committer


@pytest.mark.timeout(30)
def test_a_checkpoint_read_waits_for_the_quorum_and_wakes_when_it_is_reached(tmp_path: Path) -> None:
    committer = _committer(tmp_path)
    try:
        service = committer.checkpoints
        header = committer.head
        assert header is not None
        assert [a.node for a in service.attestations(header.height)] == [K("reg-node").did]  # quorum 1: no wait
        service.set_policy(quorum=2, wait_s=20.0)
        other = attest(header, K("dealer-node"))
        assert other is not None
        threading.Timer(0.3, service.add, (header.height, other)).start()
        t0 = time.monotonic()
        atts = service.attestations(header.height)
        waited = time.monotonic() - t0
        assert {a.node for a in atts} == {K("reg-node").did, K("dealer-node").did}
        assert 0.2 < waited < 15  # woken by the attestation, not by the 20 s timeout
        assert service.add(header.height, other) is False  # stored once
        service.set_policy(quorum=3, wait_s=0.3)
        t0 = time.monotonic()
        assert len(service.attestations(header.height)) == 2  # after the wait: what there is
        assert time.monotonic() - t0 >= 0.25
    finally:
        committer.close()


def _item(registry, label: str) -> tuple:
    raw = build_tx(K("oem-admin"), AddMember(member=K(label).did, roles=["manufacturer"]), K(label),
                   expires=now_ms() + 600_000)
    sub = Submission(1)
    return (check_stateless(raw, registry.codec, chain=CHAIN, max_bytes=1 << 20), sub, 0), sub


@pytest.mark.timeout(60)
def test_a_halted_ordering_answers_what_it_held_and_refuses_what_comes_after(tmp_path: Path) -> None:
    committer = _committer(tmp_path, recover=False)
    ordering = SoloOrdering(committer, NodeConfig(block_interval_ms=10))
    ordering.recover()
    ordering.start()
    try:
        item, sub = _item(committer.registry, "before-halt")
        ordering.enqueue([item])
        assert sub.future.result(10) == [item[0].id]  # journaled, answered
        ordering.halt(RuntimeError("damage found by a read"))
        deadline = time.monotonic() + 10
        while ordering.failure is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert str(ordering.failure) == "damage found by a read"
        late, late_sub = _item(committer.registry, "after-halt")
        ordering.enqueue([late])
        [answer] = late_sub.future.result(5)
        assert isinstance(answer, Unavailable) and "engine stopped" in answer.message
    finally:
        ordering.stop()
        committer.close(healthy=ordering.failure is None)


@pytest.mark.timeout(60)
def test_a_stopping_solo_ordering_commits_what_it_answered(tmp_path: Path) -> None:
    committer = _committer(tmp_path, recover=False)
    ordering = SoloOrdering(committer, NodeConfig(block_interval_ms=60_000))  # never cut by time
    ordering.recover()
    ordering.start()
    item, sub = _item(committer.registry, "answered-then-stopped")
    ordering.enqueue([item])
    assert sub.future.result(10) == [item[0].id]
    ordering.stop()
    try:
        assert committer.locate(item[0].id) is not None  # the open block was committed on stop
    finally:
        committer.close()


def test_a_committer_signs_only_what_its_attester_says(tmp_path: Path) -> None:
    committer = _committer(tmp_path)
    try:
        committer.attester = lambda header: None  # a networked observer follows without attesting
        outcome = committer.produce([])
        assert committer.blocks.attestations(outcome.header.height) == []
        committer.attester = lambda header: NodeSignature("did:key:zX", "00")
        outcome = committer.produce([])
        assert [a.node for a in committer.blocks.attestations(outcome.header.height)] == ["did:key:zX"]
    finally:
        committer.close()


@pytest.mark.timeout(30)
def test_a_solo_quorum_never_waits_even_for_a_block_nobody_attested(tmp_path: Path) -> None:
    committer = _committer(tmp_path)
    try:
        committer.attester = lambda header: None
        height = committer.produce([]).header.height
        committer.checkpoints.set_policy(quorum=1, wait_s=10.0)
        t0 = time.monotonic()
        assert committer.checkpoints.attestations(height) == []
        assert time.monotonic() - t0 < 2  # quorum 1 is this node's own: nothing to wait for
    finally:
        committer.close()


@pytest.mark.timeout(60)
def test_answered_transactions_waiting_for_their_block_count_as_pending(tmp_path: Path) -> None:
    committer = _committer(tmp_path, recover=False)
    ordering = SoloOrdering(committer, NodeConfig(block_interval_ms=60_000))  # the block stays open
    ordering.recover()
    ordering.start()
    try:
        item, sub = _item(committer.registry, "waits-for-its-block")
        ordering.enqueue([item])
        assert sub.future.result(10) == [item[0].id]
        deadline = time.monotonic() + 5
        while ordering.pending != 1:
            assert time.monotonic() < deadline, ordering.pending
            time.sleep(0.01)
    finally:
        ordering.stop()
        committer.close()
    assert ordering.pending == 0  # committed on stop
