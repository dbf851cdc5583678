"""A new node joins from another node's block log: what `blokauto node snapshot` accepts and refuses.

The snapshot is served by a real node (GET /v1/snapshot/chain) while it keeps committing; each
attack changes the downloaded copy and expects `verify_block_log` to refuse it, and the CLI to
exit non-zero without leaving a chain.db behind.
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import msgspec
import pytest

from blokauto.core.block import Header
from blokauto.core.encoding import canonical
from blokauto.modules.governance.messages import AddMember
from blokauto.node.jetstream import delivery_position
from blokauto.node.netconfig import Subjects
from blokauto.node.snapshot import fetch_snapshot, verify_block_log
from blokauto.verify import TrustAnchor, VerificationError

from conftest import JSON_POST, K, NODE_LABEL, consortium, run_cli, signed


def commit_some(live, n: int = 3) -> int:
    with signed(live.url, live.key, timeout=30) as http:
        for i in range(n):
            raw = live.tx(K("oem-admin"), AddMember(member=K(f"m{i}").did, roles=["manufacturer"]), K(f"m{i}"))
            r = http.post("/v1/txs?wait=10", headers=JSON_POST, content=raw)
            assert r.status_code == 200 and r.json()["receipt"]["ok"], r.text
        return http.get("/v1/status").json()["height"]


def with_node_key(folder: Path) -> None:
    """The joining folder's node key: the block log is served to the consortium's node keys only, and
    the test consortium's one node key is K("reg-node")."""
    from blokauto.keystore import KeyStore

    KeyStore(folder / "keys").create("node", kind="node", key=K(NODE_LABEL))


@pytest.fixture
def joined(live_node, tmp_path) -> tuple[object, Path]:
    """A snapshot downloaded by a new node's folder holding the trust anchor and its network.json
    (a snapshot starts a node of a networked chain; only the file's presence matters here)."""
    height = commit_some(live_node)
    new = tmp_path / "new"
    new.mkdir()
    shutil.copyfile(live_node.data / "genesis.json", new / "genesis.json")
    (new / "network.json").write_text("{}")
    with_node_key(new)
    snap = fetch_snapshot(live_node.url, new)
    assert snap.height >= height and snap.attestations == 1
    return live_node, new / "chain.db"


def test_a_genuine_snapshot_verifies_and_the_node_rebuilds_the_same_state(joined, tmp_path):
    """The joining node re-executes the downloaded log (its block committer's recovery) to the
    same state root the serving node committed."""
    live, chain_db = joined
    anchor = TrustAnchor.from_genesis(live.genesis)
    height, _, _ = verify_block_log(chain_db, anchor)
    from blokauto.modules import default_registry
    from blokauto.node.committer import BlockCommitter

    committer = BlockCommitter(chain_db.parent, default_registry(), K("joining-node"), attests_every_block=False)
    try:
        assert committer.recover() == height + 1
        expected = live.http.get(f"/v1/blocks/{height}").json()["header"]["state_root"]
        assert committer.head is not None and committer.head.state_root == expected
    finally:
        committer.close()


def tamper(path: Path, statement: str, *args) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as c:
        assert c.execute(statement, args).rowcount >= 1


def test_a_snapshot_with_a_rewritten_header_is_refused(joined):
    live, chain_db = joined
    raw = sqlite3.connect(chain_db).execute("SELECT header FROM blocks WHERE height=1").fetchone()[0]
    header = msgspec.json.decode(raw, type=Header)
    forged = msgspec.structs.replace(header, state_root="00" * 32)
    tamper(chain_db, "UPDATE blocks SET header=? WHERE height=1", canonical(forged))
    with pytest.raises(VerificationError, match="block 1 does not link"):
        verify_block_log(chain_db, TrustAnchor.from_genesis(live.genesis))


def test_a_snapshot_without_a_quorum_checkpoint_is_refused(joined):
    live, chain_db = joined
    tamper(chain_db, "DELETE FROM attestations")
    with pytest.raises(VerificationError, match="no quorum checkpoint"):
        verify_block_log(chain_db, TrustAnchor.from_genesis(live.genesis))


def test_a_snapshot_of_another_chain_is_refused(joined):
    live, chain_db = joined
    other = consortium(chain="another-chain")
    with pytest.raises(VerificationError, match="another chain"):
        verify_block_log(chain_db, TrustAnchor.from_genesis(other))


def test_a_snapshot_attested_by_a_key_outside_the_consortium_is_refused(joined):
    live, chain_db = joined
    height = sqlite3.connect(chain_db).execute("SELECT max(height) FROM blocks").fetchone()[0]
    tamper(chain_db, "UPDATE attestations SET node=? WHERE height<=?", K("stranger").did, height)
    with pytest.raises(VerificationError):
        verify_block_log(chain_db, TrustAnchor.from_genesis(live.genesis))


def test_the_cli_refuses_a_foreign_snapshot_and_leaves_no_block_log(live_node, tmp_path):
    commit_some(live_node, 1)
    new = tmp_path / "foreign"
    new.mkdir()
    (new / "genesis.json").write_bytes(canonical(consortium(chain="another-chain")))
    (new / "network.json").write_text("{}")
    with_node_key(new)  # served the snapshot: refused only for the chain it holds
    r = run_cli("node", "snapshot", "--from", live_node.url, "--data", str(new))
    assert r.returncode == 3 and "another chain" in (r.stdout + r.stderr)
    assert not (new / "chain.db").exists() and not (new / "chain.db.part").exists()


def test_a_snapshot_into_a_folder_that_already_holds_a_chain_is_refused(live_node):
    r = run_cli("node", "snapshot", "--from", live_node.url, "--data", str(live_node.data))
    assert r.returncode == 2 and "exists" in (r.stdout + r.stderr)


@pytest.mark.parametrize("reply,expected", [
    ("$JS.ACK.ORDER.c1.1.42.41.1795325041188000123.0", (42, 1795325041188000123)),
    ("$JS.ACK.dom.acchash.ORDER.c1.1.7.7.1795325041188000999.3.xyz", (7, 1795325041188000999)),
])
def test_stream_position_and_time_are_read_exactly_from_the_delivery_subject(reply, expected):
    assert delivery_position(reply) == expected


@pytest.mark.parametrize("chain", ["bad.chain", "with space", "star*", "gt>", ""])
def test_a_chain_id_that_cannot_name_a_nats_subject_is_refused(chain):
    with pytest.raises(ValueError):
        Subjects(chain)
