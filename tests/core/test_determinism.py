"""Determinism: the same blocks (same transaction bytes, same block times) give the same chain.

Hypothesis draws random governance histories from a small pool of deterministic keys: members
added, revoked, rotated and re-roled, proposals and votes, replays, wrong roles and senders,
expired and too-far expiries, unregistrable keys and forged signatures. They run in random
block splits on one ``MemoryLedger`` (the invariants below are checked after every block), then:

- the same blocks replayed into a fresh ``MemoryLedger`` give identical headers, receipts and
  state roots at every height;
- the same blocks committed through the on-disk engine (``chain.db`` + ``state.db``) give the
  same headers and roots; a reopened engine recovers the same head, state and replay window,
  and so does one that rebuilds ``state.db`` from the block log.

Invariants: an active member's roles are within its organisation's roles plus ``admin``; every
active organisation has an active admin, and the stored admin count is the real one; the
consensus quorum is between 1 and the number of node keys, and node keys are exactly the active
organisations' ones, each with one purpose.

The block committer is driven without an ordering: ``BlockCommitter.produce`` takes the block time
from the wall clock, so blocks are made with ``make_block`` at the recorded times and committed
with ``BlockCommitter.commit`` (the same call ``produce`` makes).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from blokauto.core import crypto
from blokauto.core.block import Genesis
from blokauto.core.chain import BlockOutcome, MemoryLedger, make_block
from blokauto.core.encoding import canonical
from blokauto.core.errors import RequestError
from blokauto.core.execute import BlockTx, RefusedTx
from blokauto.core.tx import Signature, Tx, check_stateless, make_body, sign
from blokauto.modules import default_registry
from blokauto.modules.governance.messages import AddMember, Propose, RevokeMember, RotateKey, SetMemberRoles, Vote
from blokauto.modules.governance.state import (
    ACTIVE_ORGS,
    ADMIN_COUNT,
    CONSENSUS,
    MEMBERS,
    ORGS,
    AdmitOrganisation,
    RemoveOrganisation,
    SetNodeKeys,
    SetParameter,
    SetQuorum,
)
from blokauto.node.committer import BlockCommitter

from conftest import CHAIN, T0, K, consortium, write_chain

DAY = 24 * 3_600_000
GENESIS = consortium()

ADMINS = ["oem-admin", "ins-admin", "reg-admin"]
OTHERS = ["p0", "p1", "p2", "p3", "p4", "p5", "stranger"]
TARGETS = ADMINS + OTHERS + ["reg-node", "newco-node"]
ROLE_SETS = [["manufacturer"], ["insurer"], ["regulator", "police"], ["admin"], ["admin", "manufacturer"],
             ["dealer"], ["pilot"], []]
ACTIONS = [
    SetParameter(name="max_tx_ttl_ms", value=1_800_000),
    SetParameter(name="vote_threshold_pct", value=33),
    SetParameter(name="proposal_ttl_ms", value=DAY),
    SetQuorum(quorum=2),
    SetQuorum(quorum=1),
    AdmitOrganisation(id="newco", name="New Co", roles=["dealer"], admins=[K("p5").did], nodes=[K("newco-node").did]),
    RemoveOrganisation(id="ins"),
    SetNodeKeys(org="oem", nodes=[K("oem-node").did]),
    AdmitOrganisation(id="emptyco", name="Empty", roles=["dealer"], admins=[]),  # can never be applied
    SetParameter(name="max_tx_ttl_ms", value=1),  # out of range
]
EXPIRIES = {"soon": 1_000, "normal": 600_000, "late": 3_000_000, "expired": -1, "too_far": 3_600_001}
GAPS = [1, 1, 1_000, 60_000, 3_600_000, DAY, 8 * DAY]  # 8 days: every open proposal has expired

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- random histories

senders = st.sampled_from(ADMINS * 8 + OTHERS)
targets = st.sampled_from(TARGETS + OTHERS[:-1] * 2)  # mostly keys that can be registered
role_sets = st.integers(0, len(ROLE_SETS) - 1)


ARGS = {
    "add": st.tuples(senders, targets, role_sets, st.booleans()),
    "revoke": st.tuples(senders, targets),
    "rotate": st.tuples(senders, targets, st.booleans()),
    "roles": st.tuples(senders, targets, role_sets),
    "propose": st.tuples(senders, st.integers(0, len(ACTIONS) - 1)),
    "vote": st.tuples(senders, st.integers(1, 3), st.booleans()),
    "replay": st.tuples(st.integers(0, 10_000)),
    "bad_key": st.tuples(senders),
    "forged": st.tuples(senders, targets),
    "wrong_chain": st.tuples(senders, targets),
}
#: How often each kind is drawn: mostly operations that can succeed.
WEIGHTS = {"add": 8, "revoke": 3, "rotate": 3, "roles": 3, "propose": 4, "vote": 6, "replay": 2, "bad_key": 1,
           "forged": 1, "wrong_chain": 1}


def ops(wrong_chain: bool) -> st.SearchStrategy:
    """One operation (kind, *args) and its expiry."""
    kinds = [k for k, w in WEIGHTS.items() for _ in range(w) if wrong_chain or k != "wrong_chain"]
    op = st.sampled_from(kinds).flatmap(lambda k: ARGS[k].map(lambda args: (k, *args)))
    return st.tuples(op, st.sampled_from(["normal"] * 12 + list(EXPIRIES)))


def blocks_of(wrong_chain: bool) -> st.SearchStrategy:
    """A history: blocks of (gap since the previous block, ops)."""
    return st.lists(st.tuples(st.sampled_from(GAPS), st.lists(ops(wrong_chain), max_size=8)), min_size=1, max_size=12)


@dataclass(frozen=True)
class Block:
    time: int
    raws: list[bytes]


def _tx(i: int, sender: str, msg: Any, cosigners: list[str], expires: int, chain: str = CHAIN) -> bytes:
    body = make_body(chain, K(sender).did, msg, nonce=f"{i:032x}", expires=expires)
    return canonical(sign(body, K(sender), *(K(c) for c in cosigners)))


def build_blocks(spec: list[tuple[int, list]]) -> list[Block]:
    """The signed transactions of a drawn history (deterministic: nonces count up)."""
    out: list[Block] = []
    sent: list[bytes] = []
    t = T0
    n = 0
    for gap, block_ops in spec:
        t += gap
        raws = []
        for (kind, *args), expiry in block_ops:
            n += 1
            expires = t + EXPIRIES[expiry]
            if kind == "replay":
                if not sent:
                    continue
                raw = sent[args[0] % len(sent)]
            elif kind == "add":
                sender, target, roles, cosign = args
                raw = _tx(n, sender, AddMember(member=K(target).did, roles=ROLE_SETS[roles]),
                          [target] if cosign and target != sender else [], expires)
            elif kind == "revoke":
                raw = _tx(n, args[0], RevokeMember(member=K(args[1]).did), [], expires)
            elif kind == "rotate":
                sender, target, cosign = args
                raw = _tx(n, sender, RotateKey(new_key=K(target).did), [target] if cosign and target != sender else [],
                          expires)
            elif kind == "roles":
                raw = _tx(n, args[0], SetMemberRoles(member=K(args[1]).did, roles=ROLE_SETS[args[2]]), [], expires)
            elif kind == "propose":
                raw = _tx(n, args[0], Propose(action=ACTIONS[args[1]]), [], expires)
            elif kind == "vote":
                raw = _tx(n, args[0], Vote(proposal=args[1], approve=args[2]), [], expires)
            elif kind == "bad_key":
                raw = _tx(n, args[0], AddMember(member="did:key:z6MkNotAKey", roles=["manufacturer"]), [], expires)
            elif kind == "forged":
                good = _tx(n, args[0], AddMember(member=K(args[1]).did, roles=["manufacturer"]), [args[1]], expires)
                tx = default_registry().codec.decode(good)
                sigs = [Signature(s.signer, K("forger").sign(b"x").hex()) if j == 0 else s for j, s in enumerate(tx.sigs)]
                raw = canonical(Tx(body=tx.body, sigs=sigs))
            elif kind == "wrong_chain":
                raw = _tx(n, args[0], AddMember(member=K(args[1]).did, roles=["manufacturer"]), [args[1]], expires,
                          chain="another-chain")
            else:  # pragma: no cover
                raise AssertionError(kind)
            sent.append(raw)
            raws.append(raw)
        out.append(Block(t, raws))
    return out


# ---------------------------------------------------------------- invariants


def _scan(ledger: MemoryLedger, smap: Any) -> dict[str, Any]:
    prefix = smap.prefix.encode()
    return {k[len(prefix):].decode(): smap.decode(v) for k, v in ledger.state.items() if k.startswith(prefix)}


def check_invariants(ledger: MemoryLedger) -> None:
    orgs = _scan(ledger, ORGS)
    members = _scan(ledger, MEMBERS)
    active = [o for o in orgs.values() if o.status == "active"]
    assert ACTIVE_ORGS.get(ledger) == sorted(o.id for o in active)
    for m in members.values():
        if m.status == "active":
            assert set(m.roles) <= set(orgs[m.org].roles) | {"admin"}, m
        if m.status == "rotated":
            # A key hands over to a successor in its own organisation (which takes its roles then; an
            # admin may change the successor's roles afterwards, so only the organisation is for ever).
            assert members[m.successor].org == m.org
    for o in active:
        admins = sum(1 for m in members.values() if m.org == o.id and m.status == "active" and "admin" in m.roles)
        assert admins >= 1, f"organisation {o.id} has no active admin"
        assert ADMIN_COUNT.get(ledger, o.id) == admins
    c = CONSENSUS.get(ledger)
    assert c is not None and 1 <= c.quorum <= len(c.nodes)
    node_dids = [n.did for n in c.nodes]
    assert len(set(node_dids)) == len(node_dids) and not set(node_dids) & set(members)
    assert sorted((n.org, n.did) for n in c.nodes) == sorted((o.id, d) for o in active for d in o.nodes)


# ---------------------------------------------------------------- the runs


def run_in_memory(blocks: list[Block], *, invariants: bool = False) -> tuple[MemoryLedger, list[BlockOutcome]]:
    ledger = MemoryLedger(default_registry(), GENESIS)
    if invariants:
        check_invariants(ledger)
    outcomes = []
    for b in blocks:
        outcomes.append(ledger.add_block([ledger.check(r) for r in b.raws], time=b.time))
        if invariants:
            check_invariants(ledger)
    return ledger, outcomes


def assert_same_chain(a: MemoryLedger, b: MemoryLedger) -> None:
    assert [h.hash() for h in a.headers] == [h.hash() for h in b.headers]
    assert [h.state_root for h in a.headers] == [h.state_root for h in b.headers]
    assert [o.receipt_bytes for o in a.blocks] == [o.receipt_bytes for o in b.blocks]
    assert a.state == b.state and a.nodes == b.nodes and a.index == b.index and a.tx_index == b.tx_index


def _summary(outcomes: list[BlockOutcome]) -> str:
    codes: dict[str, int] = {}
    for o in outcomes:
        for r in o.receipts:
            codes[r.code or "ok"] = codes.get(r.code or "ok", 0) + 1
    return ", ".join(f"{c}={n}" for c, n in sorted(codes.items()))


@settings(max_examples=100, **SETTINGS)
@given(blocks_of(wrong_chain=True))
def test_replaying_the_same_blocks_gives_the_same_headers_receipts_and_roots(spec: list) -> None:
    blocks = build_blocks(spec)
    first, outcomes = run_in_memory(blocks, invariants=True)
    note(_summary(outcomes))
    second, _ = run_in_memory(blocks)
    assert_same_chain(first, second)


# ---------------------------------------------------------------- the on-disk engine


def engine_check(engine: BlockCommitter, raw: bytes) -> BlockTx:
    """The stateless checks a node repeats before executing an ordered transaction (as
    ``MemoryLedger.check`` does them: no wall clock, expiry is judged at the block time)."""
    params = engine.registry.read_params(engine.state)
    try:
        return check_stateless(raw, engine.registry.codec, chain=engine.chain, max_bytes=params["max_tx_bytes"])
    except RequestError as err:
        return RefusedTx(crypto.tagged_hash(crypto.TAG_TX_ID, raw), raw, err.code, dict(err.detail))


def open_engine(data: Path, genesis: Genesis = GENESIS) -> BlockCommitter:
    return BlockCommitter(data, default_registry(), K("reg-node"), genesis=genesis)


def commit(engine: BlockCommitter, block: Block) -> BlockOutcome:
    assert engine.head is not None
    outcome = make_block(engine.registry, engine.state, engine.window, prev=engine.head, time=block.time,
                         txs=[engine_check(engine, r) for r in block.raws])
    engine.commit(outcome)  # what BlockCommitter.produce does after making the block
    return outcome


def assert_engine_matches(engine: BlockCommitter, ledger: MemoryLedger) -> None:
    """Head, state root, state values, tree nodes and replay window equal the in-memory run's."""
    assert engine.head == ledger.head
    assert engine.state.root == ledger.root
    for key, value in ledger.state.items():
        assert engine.state.get(key) == value
    for path, node in ledger.nodes.items():
        assert engine.state.get_node(path) == node
    now = ledger.head.time
    for txid, height, _, expires in ledger.tx_index.values():
        if expires >= now:
            assert engine.window.height_of(txid) == ledger.window.height_of(txid) == height


def stop(engine: BlockCommitter) -> None:
    engine.state.start()  # recover() starts the state flusher only when it succeeds; stop() flushes through it
    engine.close()


def run_through_engine(data: Path, blocks: list[Block], ledger: MemoryLedger) -> None:
    engine = open_engine(data)
    try:
        assert engine.recover() == 0
        assert engine.head == ledger.headers[0]
        for b, expected in zip(blocks, ledger.blocks[1:]):
            outcome = commit(engine, b)
            assert outcome.header == expected.header
            assert outcome.receipt_bytes == expected.receipt_bytes
            assert engine.state.root.hex() == expected.header.state_root
    finally:
        stop(engine)


def remove_state_db(data: Path) -> None:
    for f in data.iterdir():
        if f.name.startswith("state.db"):
            f.unlink()


@settings(max_examples=50, **SETTINGS)
@given(blocks_of(wrong_chain=False))
def test_engine_on_disk_commits_and_recovers_the_same_chain(spec: list) -> None:
    blocks = build_blocks(spec)
    ledger, outcomes = run_in_memory(blocks)
    note(_summary(outcomes))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        write_chain(data, GENESIS)
        run_through_engine(data, blocks, ledger)

        # reopen: state.db was flushed at stop, nothing to replay
        engine = open_engine(data)
        try:
            assert engine.recover() == 0
            assert_engine_matches(engine, ledger)
        finally:
            stop(engine)

        # rebuild state.db from the block log: every block re-executed and checked
        remove_state_db(data)
        engine = open_engine(data)
        try:
            assert engine.recover() == len(blocks) + 1
            assert_engine_matches(engine, ledger)
            # the recovered replay window refuses exactly what the in-memory one does
            last = Block(ledger.head.time + 1, [r for b in blocks for r in b.raws])
            expected = ledger.add_block([ledger.check(r) for r in last.raws], time=last.time)
            outcome = commit(engine, last)
            assert outcome.header == expected.header and outcome.receipt_bytes == expected.receipt_bytes
        finally:
            stop(engine)


# ---------------------------------------------------------------- a fixed story, through every path


def story() -> list[Block]:
    """A history where most things succeed: staff, rotate, admit an organisation with a node,
    raise the quorum, remove an organisation, and the refusals that follow."""
    ops: list[tuple[int, list[tuple[tuple, str]]]] = [
        (1, [(("add", "oem-admin", "p0", 0, True), "normal"), (("add", "ins-admin", "p1", 1, True), "normal"),
             (("add", "oem-admin", "p2", 4, True), "normal")]),
        (1_000, [(("rotate", "p0", "p3", True), "normal"), (("revoke", "oem-admin", "p2"), "normal"),
                 (("replay", 0), "normal")]),
        (60_000, [(("propose", "oem-admin", 5), "normal"), (("vote", "ins-admin", 1, True), "normal")]),
        (1, [(("propose", "reg-admin", 3), "normal"), (("vote", "p5", 2, True), "normal"),
             (("vote", "oem-admin", 2, True), "normal")]),
        (3_600_000, [(("propose", "oem-admin", 6), "normal"), (("vote", "reg-admin", 3, True), "normal"),
                     (("vote", "p5", 3, True), "normal"), (("add", "ins-admin", "p4", 1, True), "normal")]),
        (DAY, [(("bad_key", "oem-admin"), "normal"), (("forged", "oem-admin", "p4"), "normal"),
               (("rotate", "p3", "p4", True), "expired"), (("roles", "p3", "p3", 0), "too_far")]),
    ]
    return build_blocks(ops)


def test_story_replays_identically_in_memory_and_on_disk(tmp_path: Path) -> None:
    blocks = story()
    ledger, outcomes = run_in_memory(blocks, invariants=True)
    codes = [[r.code or "ok" for r in o.receipts] for o in outcomes]
    assert codes == [
        ["ok", "ok", "ok"],
        ["ok", "ok", "replayed_tx"],
        ["ok", "ok"],  # newco admitted with its node key
        ["ok", "ok", "ok"],  # quorum 2 needs 3 of 4: reg, newco (p5), oem
        ["ok", "ok", "ok", "revoked_key"],  # ins removed: its admin is refused
        ["invalid_key", "bad_signature", "tx_expired", "expiry_too_far"],
    ]
    c = CONSENSUS.get(ledger)
    assert c is not None and c.quorum == 2 and len(c.nodes) == 2
    second, _ = run_in_memory(blocks)
    assert_same_chain(ledger, second)
    data = tmp_path / "data"
    write_chain(data, GENESIS)
    run_through_engine(data, blocks, ledger)
    remove_state_db(data)
    engine = open_engine(data)
    try:
        assert engine.recover() == len(blocks) + 1
        assert_engine_matches(engine, ledger)
    finally:
        stop(engine)


def test_rebuilding_state_from_the_block_log_with_a_wrong_chain_refusal_in_a_block(tmp_path: Path) -> None:
    blocks = build_blocks([(1, [(("wrong_chain", "oem-admin", "p0"), "normal"),
                                (("add", "oem-admin", "p0", 0, True), "normal")])])
    ledger, outcomes = run_in_memory(blocks)
    assert [r.code or "ok" for r in outcomes[0].receipts] == ["wrong_chain", "ok"]
    data = tmp_path / "data"
    write_chain(data, GENESIS)
    run_through_engine(data, blocks, ledger)
    remove_state_db(data)
    engine = open_engine(data)
    try:
        assert engine.recover() == 2
        assert_engine_matches(engine, ledger)
    finally:
        stop(engine)
