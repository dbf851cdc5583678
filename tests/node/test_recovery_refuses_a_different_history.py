"""Recovery never carries on from a state or a block that re-execution does not reproduce.

Two checks stand between a node's files and the state it serves: the state root ``state.db``
records must be the stored header's at that height (else ``state.db`` is set aside and rebuilt
from the block log), and every block re-executed at start must give exactly its stored header
(else the node refuses to start, naming the height and both values). Each is tested by a
change that passes every other check.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from blokauto.core.block import Header, attest
from blokauto.core.encoding import canonical
from blokauto.core.tx import check_stateless
from blokauto.modules import default_registry
from blokauto.modules.governance.messages import AddMember
from blokauto.node.committer import BlockCommitter
from blokauto.node.faults import Divergence
from blokauto.node.node import Node

from conftest import K, build_tx, now_ms, write_chain


def chain_with_blocks(data: Path, n: int = 4) -> list[Header]:
    genesis = write_chain(data)
    registry = default_registry()
    engine = BlockCommitter(data, registry, K("reg-node"), genesis=genesis)
    engine.recover()
    headers = []
    for i in range(n):
        key = K(f"recovery-{i}")
        raw = build_tx(K("oem-admin"), AddMember(member=key.did, roles=["manufacturer"]), key, chain=genesis.chain,
                       expires=now_ms() + 600_000)
        checked = check_stateless(raw, registry.codec, chain=genesis.chain, max_bytes=1 << 20)
        headers.append(engine.produce([checked]).header)
    engine.close()
    return headers


def test_a_state_db_whose_root_is_not_the_headers_is_set_aside_and_rebuilt(tmp_path):
    data = tmp_path / "data"
    headers = chain_with_blocks(data)
    with closing(sqlite3.connect(data / "state.db", isolation_level=None)) as c:
        c.execute("UPDATE meta SET v=? WHERE k='root'", (bytes(32),))  # a root no header has
    node = Node(data, workers=1)
    node.start()
    try:
        assert node.rebuilt_state is not None and "state_root: stored" in node.rebuilt_state
        assert node.committer.state.root.hex() == headers[-1].state_root
        assert node.status()["healthy"] is True
    finally:
        node.stop()
    assert any(p.name.startswith("state.db.damaged-") for p in data.iterdir())


def test_a_block_that_re_executes_differently_stops_the_node_naming_the_height(tmp_path):
    """The newest block's header is rewritten with another state root and attested again with the
    node's own key (as software that executes differently would have written it): links, roots
    and signatures all check out, only re-execution tells."""
    data = tmp_path / "data"
    headers = chain_with_blocks(data)
    last = headers[-1]
    forged = msgspec.structs.replace(last, state_root="ab" * 32)
    att = attest(forged, K("reg-node"))
    with closing(sqlite3.connect(data / "chain.db", isolation_level=None)) as c:
        c.execute("UPDATE blocks SET header=?, hash=? WHERE height=?", (canonical(forged), forged.hash(), last.height))
        c.execute("UPDATE attestations SET sig=? WHERE height=?", (att.sig, last.height))
    (data / "head.json").unlink()  # a folder written by that other software would record its own head
    for name in ("state.db", "state.db-wal", "state.db-shm"):  # state.db must be rebuilt: re-execution runs
        (data / name).unlink(missing_ok=True)
    node = Node(data, workers=1)
    with pytest.raises(Divergence) as err:
        node.start()
    node.stop()
    message = str(err.value)
    assert f"block {last.height} does not re-execute" in message
    assert "ab" * 32 in message and last.state_root in message
