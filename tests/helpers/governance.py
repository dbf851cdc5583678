"""Shared set-up for the governance tests: a staffed test consortium, readers over a
MemoryLedger, and the check every refused transaction must pass (recorded, changes nothing,
id consumed)."""

from __future__ import annotations

from typing import Any

from blokauto.core.crypto import KeyPair
from blokauto.modules.governance.messages import AddMember, Propose, RevokeMember, RotateKey
from blokauto.modules.governance.state import (
    ACTIVE_ORGS,
    ADMIN_COUNT,
    CONSENSUS,
    MEMBERS,
    NEXT_PROPOSAL,
    ORGS,
    PROPOSALS,
    Consensus,
    Member,
    Organisation,
    Proposal,
)

from conftest import Chain, K, build_tx

OEM_ADMIN, INS_ADMIN, REG_ADMIN = K("oem-admin"), K("ins-admin"), K("reg-admin")
REG_NODE = K("reg-node")
OEM_WORKER = K("oem-worker")  # active, manufacturer, not an admin
OEM_TARGET = K("oem-target")  # active, manufacturer: the key admins act on
OEM_REVOKED = K("oem-revoked")  # revoked by oem-admin
OEM_OLD = K("oem-old")  # rotated to oem-new
OEM_NEW = K("oem-new")
INS_WORKER = K("ins-worker")  # active, insurer
STRANGER = K("stranger")  # never registered


def staffed(chain: Chain) -> None:
    """oem gets a worker, a target, a revoked key and a rotated key; ins gets a worker."""
    adds = [build_tx(OEM_ADMIN, AddMember(member=k.did, roles=["manufacturer"]), k)
            for k in (OEM_WORKER, OEM_TARGET, OEM_REVOKED, OEM_OLD)]
    adds.append(build_tx(INS_ADMIN, AddMember(member=INS_WORKER.did, roles=["insurer"]), INS_WORKER))
    ok(chain.block(*adds))
    ok(chain.block(build_tx(OEM_ADMIN, RevokeMember(member=OEM_REVOKED.did, reason="lost")),
                   build_tx(OEM_OLD, RotateKey(new_key=OEM_NEW.did), OEM_NEW)))


def ok(outcome: Any) -> Any:
    for r in outcome.receipts:
        assert r.ok, r
    return outcome


# ---------------------------------------------------------------- readers


def member(chain: Chain, key: KeyPair | str) -> Member | None:
    return MEMBERS.get(chain.ledger, key if isinstance(key, str) else key.did)


def org(chain: Chain, org_id: str) -> Organisation | None:
    return ORGS.get(chain.ledger, org_id)


def active_orgs(chain: Chain) -> list[str]:
    return ACTIVE_ORGS.get(chain.ledger)


def admin_count(chain: Chain, org_id: str) -> int:
    return ADMIN_COUNT.get(chain.ledger, org_id) or 0


def consensus(chain: Chain) -> Consensus:
    c = CONSENSUS.get(chain.ledger)
    assert c is not None
    return c


def proposal(chain: Chain, pid: int) -> Proposal:
    p = PROPOSALS.get(chain.ledger, pid)
    assert p is not None
    return p


def params(chain: Chain) -> dict[str, int]:
    return chain.registry.read_params(chain.ledger)


def open_proposal(chain: Chain, action: Any, by: KeyPair = OEM_ADMIN, **kw: Any) -> int:
    """Propose ``action`` (the proposer's organisation votes yes) and return its id."""
    pid = NEXT_PROPOSAL.get(chain.ledger)
    r = chain.run(by, Propose(action=action), **kw)
    assert r.ok, r
    return pid


# ---------------------------------------------------------------- the refusal check


def snapshot(chain: Chain) -> tuple[dict, dict, str]:
    """Everything a transaction may change: state, derived index rows and the state root."""
    index = {name: {k: dict(v) for k, v in rows.items()} for name, rows in chain.ledger.index.items()}
    return dict(chain.ledger.state), index, chain.root


def tx_id(chain: Chain, raw: bytes) -> bytes:
    return chain.ledger.check(raw).id


def assert_refused(chain: Chain, raw: bytes, code: str, *, consumed: bool = True, time: int | None = None) -> Any:
    """Submit ``raw`` alone in a block: it must fail with ``code``, be recorded in the block
    with a failure receipt, and change nothing. When ``consumed`` (every refusal from execution
    step 4 on), the same bytes are then refused as a replay; otherwise they fail the same way."""
    before = snapshot(chain)
    height = chain.ledger.head.height
    outcome = chain.block(raw, time=time)
    receipt = outcome.receipts[0]
    assert not receipt.ok and receipt.code == code, receipt
    assert outcome.header.height == height + 1 and outcome.header.tx_count == 1
    assert outcome.txs == [chain.ledger.check(raw).raw]
    assert receipt.tx == tx_id(chain, raw).hex()
    assert outcome.writes == {} and outcome.index_ops == []
    assert snapshot(chain) == before, "a refused transaction changed the ledger"
    assert outcome.header.state_root == before[2]
    again = chain.block(raw, time=None if time is None else time + 1).receipts[0]
    if consumed:
        assert not again.ok and again.code == "replayed_tx", again
        # the height the id was consumed at: this block's, or the original's for a replay
        assert again.detail["height"] == receipt.detail.get("height", height + 1)
    else:
        assert not again.ok and again.code == code, again
    assert snapshot(chain) == before
    return receipt


def assert_accepted(chain: Chain, raw: bytes, time: int | None = None) -> Any:
    """Submit ``raw`` alone in a block: it must succeed, change the state root, and consume its id."""
    before = chain.root
    receipt = chain.block(raw, time=time).receipts[0]
    assert receipt.ok, receipt
    assert chain.root != before
    after = snapshot(chain)
    again = chain.block(raw, time=None if time is None else time + 1).receipts[0]
    assert again.code == "replayed_tx", again
    assert snapshot(chain) == after
    return receipt
