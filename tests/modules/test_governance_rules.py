"""The governance module's rules, one row per rule, and its votes.

Three tables:

- ``MATRIX``: every governance message (propose once per action) x who sends it (an admin of
  the organisation it concerns, an admin of another organisation, a member without the admin
  role, an unknown key, a revoked key, a rotated key): only the intended senders pass;
- ``RULES``: each domain rule a handler enforces, with the stable code of its refusal;
- ``ENVELOPE``: the transaction-level checks (chain, expiry, replay) of the state transition.

Every refusal is also checked to be recorded in its block with a failure receipt, to change
nothing (state, derived index rows, state root), and to consume its id so that the same signed
bytes are refused as a replay afterwards. The vote tests that follow cover the threshold,
rejection, expiry, removal of an organisation, and actions taking effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import msgspec
import pytest

from blokauto.core.crypto import KeyPair
from blokauto.core.encoding import canonical
from blokauto.core.tx import Signature, Tx
from blokauto.modules.governance.messages import (
    AddMember,
    Propose,
    RevokeMember,
    RotateKey,
    SetMemberRoles,
    Vote,
)
from blokauto.modules.governance.state import (
    AdmitOrganisation,
    NodeKey,
    RemoveOrganisation,
    SetNodeKeys,
    SetParameter,
    SetQuorum,
)

from conftest import T0, Chain, K, build_tx
from helpers.governance import (
    INS_ADMIN,
    INS_WORKER,
    OEM_ADMIN,
    OEM_OLD,
    OEM_REVOKED,
    OEM_TARGET,
    OEM_WORKER,
    REG_ADMIN,
    REG_NODE,
    STRANGER,
    active_orgs,
    admin_count,
    assert_accepted,
    assert_refused,
    consensus,
    member,
    ok,
    open_proposal,
    org,
    params,
    proposal,
    staffed,
)

NEW = K("new-key")
FRESH = K("fresh-key")
DEALER_ADMIN, DEALER_NODE = K("dealer-admin"), K("dealer-node")
DAY = 24 * 3_600_000


def admit_dealer(**kw: Any) -> AdmitOrganisation:
    fields: dict[str, Any] = dict(id="dealer-co", name="Dealer Co", roles=["dealer"], admins=[DEALER_ADMIN.did],
                                  nodes=[DEALER_NODE.did])
    fields.update(kw)
    return AdmitOrganisation(**fields)


@pytest.fixture
def staffed_chain() -> Chain:
    chain = Chain()
    staffed(chain)
    return chain


# ================================================================ who may send what

SENDERS: dict[str, KeyPair] = {
    "own_admin": OEM_ADMIN,  # admin of oem, the organisation every message below concerns
    "other_org_admin": INS_ADMIN,
    "non_admin_member": OEM_WORKER,
    "unknown_key": STRANGER,
    "revoked_key": OEM_REVOKED,
    "rotated_key": OEM_OLD,
}

#: Refusals that do not depend on the message: the framework checks them before any handler.
KEY_REFUSALS = {"unknown_key": "unknown_signer", "revoked_key": "revoked_key", "rotated_key": "revoked_key"}


@dataclass(frozen=True)
class Case:
    """A message as ``sender`` would send it (after any set-up), and what success does."""

    name: str
    build: Callable[[Chain, KeyPair], tuple[Any, tuple[KeyPair, ...]]]
    effect: Callable[[Chain, KeyPair], None]
    expect: dict[str, str]  # sender kind -> code; "" passes


def _org_of(sender: KeyPair) -> str:
    return "ins" if sender == INS_ADMIN else "oem"


def _added(chain: Chain, sender: KeyPair) -> None:
    m = member(chain, NEW)
    assert m is not None and (m.org, m.roles, m.status) == ("oem", ["manufacturer"], "active")


def _revoked(chain: Chain, sender: KeyPair) -> None:
    assert member(chain, OEM_TARGET).status == "revoked"


def _rotated(chain: Chain, sender: KeyPair) -> None:
    old, new = member(chain, sender), member(chain, FRESH)
    assert (old.status, old.successor) == ("rotated", FRESH.did)
    assert (new.org, new.roles, new.status) == (old.org, old.roles, "active")


def _roles_set(chain: Chain, sender: KeyPair) -> None:
    assert member(chain, OEM_TARGET).roles == ["admin", "manufacturer"]
    assert admin_count(chain, "oem") == 2


def _opened(chain: Chain, sender: KeyPair) -> None:
    p = proposal(chain, 1)
    assert (p.status, p.votes, p.proposer) == ("open", {_org_of(sender): True}, _org_of(sender))


def _propose_case(action_name: str, action: Any) -> Case:
    return Case(f"propose_{action_name}", lambda chain, s: (Propose(action=action), ()), _opened,
                {"own_admin": "", "other_org_admin": "", "non_admin_member": "role_not_allowed"})


def _vote_build(chain: Chain, sender: KeyPair) -> tuple[Any, tuple[KeyPair, ...]]:
    pid = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    return Vote(proposal=pid, approve=True), ()


def _vote_passed(chain: Chain, sender: KeyPair) -> None:
    assert proposal(chain, 1).status == "passed"
    assert params(chain)["proposal_ttl_ms"] == DAY


CASES = [
    Case("add_member", lambda chain, s: (AddMember(member=NEW.did, roles=["manufacturer"]), (NEW,)), _added,
         # another organisation's admin can only add keys to its own organisation, which lacks the role
         {"own_admin": "", "other_org_admin": "role_not_held", "non_admin_member": "role_not_allowed"}),
    Case("revoke_member", lambda chain, s: (RevokeMember(member=OEM_TARGET.did), ()), _revoked,
         {"own_admin": "", "other_org_admin": "not_your_organisation", "non_admin_member": "not_your_organisation"}),
    Case("rotate_key", lambda chain, s: (RotateKey(new_key=FRESH.did), (FRESH,)), _rotated,
         # any active member rotates its own key
         {"own_admin": "", "other_org_admin": "", "non_admin_member": ""}),
    Case("set_member_roles",
         lambda chain, s: (SetMemberRoles(member=OEM_TARGET.did, roles=["admin", "manufacturer"]), ()), _roles_set,
         {"own_admin": "", "other_org_admin": "not_your_organisation", "non_admin_member": "role_not_allowed"}),
    _propose_case("admit_organisation", admit_dealer()),
    _propose_case("remove_organisation", RemoveOrganisation(id="ins")),
    _propose_case("set_parameter", SetParameter(name="max_tx_ttl_ms", value=600_000)),
    _propose_case("set_node_keys", SetNodeKeys(org="oem", nodes=[K("oem-node").did])),
    _propose_case("set_quorum", SetQuorum(quorum=1)),
    # oem opened the proposal (voting yes at once); ins's vote is the second of three and passes it
    Case("vote", _vote_build, _vote_passed,
         {"own_admin": "already_voted", "other_org_admin": "", "non_admin_member": "role_not_allowed"}),
]

MATRIX = [
    pytest.param(case, kind, {**case.expect, **KEY_REFUSALS}[kind], id=f"{case.name}-by-{kind}")
    for case in CASES for kind in SENDERS
]


@pytest.mark.parametrize("case,kind,code", MATRIX)
def test_who_may_send(staffed_chain: Chain, case: Case, kind: str, code: str) -> None:
    sender = SENDERS[kind]
    msg, cosigners = case.build(staffed_chain, sender)
    raw = build_tx(sender, msg, *cosigners)
    if code:
        assert_refused(staffed_chain, raw, code)
    else:
        assert_accepted(staffed_chain, raw)
        case.effect(staffed_chain, sender)


# ================================================================ domain rules, one row per rule


def open_proposal_1(chain: Chain) -> None:
    """Proposal 1 (by oem, so one yes of the two needed): proposal_ttl_ms -> one day."""
    open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))


def passed_proposal(chain: Chain) -> None:
    open_proposal_1(chain)
    assert chain.run(INS_ADMIN, Vote(proposal=1, approve=True)).ok


def rejected_proposal(chain: Chain) -> None:
    open_proposal_1(chain)
    ok(chain.block(build_tx(INS_ADMIN, Vote(proposal=1, approve=False)),
                   build_tx(REG_ADMIN, Vote(proposal=1, approve=False))))
    assert proposal(chain, 1).status == "rejected"


def ins_voted_no(chain: Chain) -> None:
    open_proposal_1(chain)
    assert chain.run(INS_ADMIN, Vote(proposal=1, approve=False)).ok
    assert proposal(chain, 1).status == "open"


def ins_removed(chain: Chain) -> None:
    open_proposal(chain, RemoveOrganisation(id="ins"))
    assert chain.run(REG_ADMIN, Vote(proposal=1, approve=True)).ok
    assert org(chain, "ins").status == "removed"


def admission_whose_key_was_taken(chain: Chain) -> None:
    """Proposal 1 admits dealer-co with admin key NEW; then oem registers NEW as its own member."""
    open_proposal(chain, admit_dealer(admins=[NEW.did], nodes=[]))
    assert chain.run(OEM_ADMIN, AddMember(member=NEW.did, roles=["manufacturer"]), NEW).ok


def node_keys_taken(chain: Chain) -> None:
    """Proposal 1 gives oem a fresh node key (valid when proposed); then proposal 2 admits an
    organisation with that very node key and passes, so deciding proposal 1 must fail.
    (A key already in use when proposed is refused at once: set_node_keys-node_key_of_another_org.)"""
    first = open_proposal(chain, SetNodeKeys(org="oem", nodes=[DEALER_NODE.did]))
    second = open_proposal(chain, admit_dealer())
    assert chain.run(REG_ADMIN, Vote(proposal=second, approve=True)).ok  # 4 organisations now: 3 votes decide
    assert chain.run(REG_ADMIN, Vote(proposal=first, approve=True)).ok   # 2 of 4: the next vote decides


def removal_of_only_node_operator(chain: Chain) -> None:
    open_proposal(chain, RemoveOrganisation(id="reg"))


def expiry_of_proposal_1(chain: Chain) -> int:
    return proposal(chain, 1).expires + 1


@dataclass(frozen=True)
class Rule:
    name: str
    sender: KeyPair
    msg: Any
    code: str
    cosigners: tuple[KeyPair, ...] = ()
    setup: Callable[[Chain], None] | None = None
    at: Callable[[Chain], int] | None = None  # block time, when the rule is about time
    bug: str = ""


def P(action: Any) -> Propose:
    return Propose(action=action)


RULES = [
    # ---- add_member
    Rule("add_member-unknown_role", OEM_ADMIN, AddMember(member=NEW.did, roles=["pilot"]), "unknown_role", (NEW,)),
    Rule("add_member-role_the_organisation_does_not_hold", OEM_ADMIN, AddMember(member=NEW.did, roles=["insurer"]),
         "role_not_held", (NEW,)),
    Rule("add_member-key_of_another_organisation", OEM_ADMIN, AddMember(member=INS_WORKER.did, roles=["manufacturer"]),
         "member_exists", (INS_WORKER,)),
    Rule("add_member-key_already_in_the_organisation", OEM_ADMIN,
         AddMember(member=OEM_WORKER.did, roles=["manufacturer"]), "member_exists", (OEM_WORKER,)),
    Rule("add_member-node_key", OEM_ADMIN, AddMember(member=REG_NODE.did, roles=["manufacturer"]),
         "node_key_in_use", (REG_NODE,)),
    Rule("add_member-revoked_key_brought_back", OEM_ADMIN, AddMember(member=OEM_REVOKED.did, roles=["manufacturer"]),
         "revoked_key", (OEM_REVOKED,)),
    Rule("add_member-rotated_key_brought_back", OEM_ADMIN, AddMember(member=OEM_OLD.did, roles=["manufacturer"]),
         "revoked_key", (OEM_OLD,)),
    Rule("add_member-new_key_did_not_cosign", OEM_ADMIN, AddMember(member=NEW.did, roles=["manufacturer"]),
         "missing_cosigner"),
    Rule("add_member-stray_cosigner", OEM_ADMIN, AddMember(member=NEW.did, roles=["manufacturer"]),
         "unexpected_signer", (NEW, INS_ADMIN)),
    Rule("add_member-sent_by_a_node_key", REG_NODE, AddMember(member=NEW.did, roles=["regulator"]),
         "unknown_signer", (NEW,)),
    # ---- revoke_member
    Rule("revoke_member-unknown_key", OEM_ADMIN, RevokeMember(member=STRANGER.did), "unknown_member"),
    Rule("revoke_member-key_of_another_organisation", OEM_ADMIN, RevokeMember(member=INS_WORKER.did),
         "not_your_organisation"),
    Rule("revoke_member-non_admin_revokes_a_colleague", OEM_WORKER, RevokeMember(member=OEM_TARGET.did),
         "not_your_organisation"),
    Rule("revoke_member-already_revoked", OEM_ADMIN, RevokeMember(member=OEM_REVOKED.did), "member_not_active"),
    Rule("revoke_member-rotated_key", OEM_ADMIN, RevokeMember(member=OEM_OLD.did), "member_not_active"),
    Rule("revoke_member-last_admin_revokes_itself", OEM_ADMIN, RevokeMember(member=OEM_ADMIN.did), "last_admin"),
    Rule("revoke_member-stray_cosigner", OEM_ADMIN, RevokeMember(member=OEM_TARGET.did), "unexpected_signer",
         (OEM_TARGET,)),
    # attack: a state-key-breaking identifier used to stop block production; any member may try it
    Rule("revoke_member-identifier_with_a_slash", OEM_WORKER, RevokeMember(member="gov/member/x"),
         "invalid_identifier_format"),
    Rule("revoke_member-empty_identifier", OEM_WORKER, RevokeMember(member=""), "invalid_identifier_format"),
    Rule("revoke_member-overlong_identifier", OEM_WORKER, RevokeMember(member="z" * 201), "invalid_identifier_format"),
    # ---- rotate_key
    Rule("rotate_key-to_a_member_key", OEM_WORKER, RotateKey(new_key=OEM_TARGET.did), "node_key_in_use",
         (OEM_TARGET,)),
    Rule("rotate_key-to_a_node_key", OEM_WORKER, RotateKey(new_key=REG_NODE.did), "node_key_in_use", (REG_NODE,)),
    Rule("rotate_key-to_itself", OEM_WORKER, RotateKey(new_key=OEM_WORKER.did), "node_key_in_use"),
    Rule("rotate_key-to_a_revoked_key", OEM_WORKER, RotateKey(new_key=OEM_REVOKED.did), "revoked_key",
         (OEM_REVOKED,)),
    Rule("rotate_key-new_key_did_not_cosign", OEM_WORKER, RotateKey(new_key=FRESH.did), "missing_cosigner"),
    # ---- set_member_roles
    Rule("set_member_roles-unknown_role", OEM_ADMIN, SetMemberRoles(member=OEM_TARGET.did, roles=["pilot"]),
         "unknown_role"),
    Rule("set_member_roles-role_the_organisation_does_not_hold", OEM_ADMIN,
         SetMemberRoles(member=OEM_TARGET.did, roles=["regulator"]), "role_not_held"),
    Rule("set_member_roles-revoked_key", OEM_ADMIN, SetMemberRoles(member=OEM_REVOKED.did, roles=["manufacturer"]),
         "member_not_active"),
    Rule("set_member_roles-rotated_key", OEM_ADMIN, SetMemberRoles(member=OEM_OLD.did, roles=["manufacturer"]),
         "member_not_active"),
    Rule("set_member_roles-last_admin_demotes_itself", OEM_ADMIN,
         SetMemberRoles(member=OEM_ADMIN.did, roles=["manufacturer"]), "last_admin"),
    Rule("set_member_roles-key_of_another_organisation", OEM_ADMIN,
         SetMemberRoles(member=INS_WORKER.did, roles=["insurer"]), "not_your_organisation"),
    Rule("set_member_roles-unknown_key", OEM_ADMIN, SetMemberRoles(member=STRANGER.did, roles=["manufacturer"]),
         "unknown_member"),
    Rule("set_member_roles-stray_cosigner", OEM_ADMIN,
         SetMemberRoles(member=OEM_TARGET.did, roles=["admin", "manufacturer"]), "unexpected_signer", (OEM_TARGET,)),
    Rule("set_member_roles-identifier_with_a_slash", OEM_ADMIN, SetMemberRoles(member="a/b", roles=["manufacturer"]),
         "invalid_identifier_format"),
    # ---- propose admit_organisation
    Rule("admit_organisation-uppercase_id", OEM_ADMIN, P(admit_dealer(id="Dealer_Co")), "invalid_identifier"),
    Rule("admit_organisation-one_letter_id", OEM_ADMIN, P(admit_dealer(id="d")), "invalid_identifier"),
    Rule("admit_organisation-id_with_slash", OEM_ADMIN, P(admit_dealer(id="dealer/co")), "invalid_identifier"),
    Rule("admit_organisation-existing_id", OEM_ADMIN, P(admit_dealer(id="ins")), "organisation_exists"),
    Rule("admit_organisation-id_of_a_removed_organisation", OEM_ADMIN, P(admit_dealer(id="ins")),
         "organisation_exists", setup=ins_removed),
    Rule("admit_organisation-unknown_role", OEM_ADMIN, P(admit_dealer(roles=["dealer", "pilot"])), "unknown_role"),
    Rule("admit_organisation-admin_key_already_a_member", OEM_ADMIN, P(admit_dealer(admins=[OEM_WORKER.did])),
         "node_key_in_use"),
    Rule("admit_organisation-admin_key_revoked_elsewhere", OEM_ADMIN, P(admit_dealer(admins=[OEM_REVOKED.did])),
         "node_key_in_use"),
    Rule("admit_organisation-admin_key_is_a_node_key", OEM_ADMIN, P(admit_dealer(admins=[REG_NODE.did])),
         "node_key_in_use"),
    Rule("admit_organisation-node_key_already_a_node_key", OEM_ADMIN, P(admit_dealer(nodes=[REG_NODE.did])),
         "node_key_in_use"),
    Rule("admit_organisation-without_admin_keys", OEM_ADMIN, P(admit_dealer(admins=[])), "invalid_identifier"),
    Rule("admit_organisation-same_key_twice", OEM_ADMIN, P(admit_dealer(nodes=[DEALER_ADMIN.did])),
         "node_key_in_use"),
    # ---- propose remove_organisation
    Rule("remove_organisation-unknown_organisation", OEM_ADMIN, P(RemoveOrganisation(id="nobody")),
         "unknown_organisation"),
    Rule("remove_organisation-id_with_a_slash", OEM_ADMIN, P(RemoveOrganisation(id="ins/x")),
         "invalid_identifier_format"),
    Rule("remove_organisation-already_removed", OEM_ADMIN, P(RemoveOrganisation(id="ins")), "unknown_organisation",
         setup=ins_removed),
    # ---- propose set_parameter
    Rule("set_parameter-unknown_parameter", OEM_ADMIN, P(SetParameter(name="block_reward", value=1)),
         "invalid_parameter"),
    Rule("set_parameter-below_minimum", OEM_ADMIN, P(SetParameter(name="max_tx_ttl_ms", value=999)),
         "invalid_parameter"),
    Rule("set_parameter-above_maximum", OEM_ADMIN, P(SetParameter(name="vote_threshold_pct", value=101)),
         "invalid_parameter"),
    Rule("set_parameter-zero_threshold", OEM_ADMIN, P(SetParameter(name="vote_threshold_pct", value=0)),
         "invalid_parameter"),
    # ---- propose set_node_keys
    Rule("set_node_keys-unknown_organisation", OEM_ADMIN, P(SetNodeKeys(org="nobody", nodes=[K("n").did])),
         "unknown_organisation"),
    Rule("set_node_keys-organisation_with_a_slash", OEM_ADMIN, P(SetNodeKeys(org="oem/x", nodes=[K("n").did])),
         "invalid_identifier_format"),
    Rule("set_node_keys-removed_organisation", OEM_ADMIN, P(SetNodeKeys(org="ins", nodes=[K("n").did])),
         "unknown_organisation", setup=ins_removed),
    Rule("set_node_keys-member_key", OEM_ADMIN, P(SetNodeKeys(org="oem", nodes=[OEM_WORKER.did])),
         "node_key_in_use"),
    Rule("set_node_keys-node_key_of_another_org", OEM_ADMIN, P(SetNodeKeys(org="oem", nodes=[REG_NODE.did])),
         "node_key_in_use"),
    # ---- propose set_quorum
    Rule("set_quorum-zero", OEM_ADMIN, P(SetQuorum(quorum=0)), "invalid_quorum"),
    Rule("set_quorum-more_than_the_node_keys", OEM_ADMIN, P(SetQuorum(quorum=2)), "invalid_quorum"),
    # ---- vote
    Rule("vote-unknown_proposal", INS_ADMIN, Vote(proposal=7, approve=True), "unknown_proposal"),
    Rule("vote-passed_proposal", REG_ADMIN, Vote(proposal=1, approve=True), "proposal_closed", setup=passed_proposal),
    Rule("vote-rejected_proposal", OEM_ADMIN, Vote(proposal=1, approve=True), "proposal_closed",
         setup=rejected_proposal),
    Rule("vote-after_the_proposal_expired", INS_ADMIN, Vote(proposal=1, approve=True), "proposal_expired",
         setup=open_proposal_1, at=expiry_of_proposal_1),
    Rule("vote-proposer_organisation_votes_again", OEM_ADMIN, Vote(proposal=1, approve=False), "already_voted",
         setup=open_proposal_1),
    Rule("vote-organisation_changes_its_vote", INS_ADMIN, Vote(proposal=1, approve=True), "already_voted",
         setup=ins_voted_no),
    Rule("vote-removed_organisation", INS_ADMIN, Vote(proposal=2, approve=True), "revoked_key",
         setup=lambda chain: (ins_removed(chain), open_proposal_1(chain))),
    Rule("vote-deciding_vote_on_an_admission_whose_key_was_taken", INS_ADMIN, Vote(proposal=1, approve=True),
         "node_key_in_use", setup=admission_whose_key_was_taken),
    Rule("vote-deciding_vote_on_node_keys_another_organisation_uses", INS_ADMIN, Vote(proposal=1, approve=True),
         "node_key_in_use", setup=node_keys_taken),
    Rule("vote-deciding_vote_removing_the_only_node_operator", INS_ADMIN, Vote(proposal=1, approve=True),
         "invalid_quorum", setup=removal_of_only_node_operator),
    Rule("vote-non_admin_member", OEM_WORKER, Vote(proposal=1, approve=True), "role_not_allowed",
         setup=open_proposal_1),
]


def _rule_param(rule: Rule) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {rule.bug}")] if rule.bug else []
    return pytest.param(rule, id=rule.name, marks=marks)


@pytest.mark.parametrize("rule", [_rule_param(r) for r in RULES])
def test_rule_refuses(staffed_chain: Chain, rule: Rule) -> None:
    chain = staffed_chain
    if rule.setup is not None:
        rule.setup(chain)
    time = rule.at(chain) if rule.at is not None else None
    kw = {} if time is None else {"expires": time + 60_000}
    raw = build_tx(rule.sender, rule.msg, *rule.cosigners, **kw)
    assert_refused(chain, raw, rule.code, time=time)


def test_every_governance_code_has_a_row() -> None:
    """The stable codes the tables above pin down (a code dropped from a row shows up here)."""
    codes = {r.code for r in RULES} | {c for case in CASES for c in case.expect.values() if c} | set(KEY_REFUSALS.values())
    assert {
        "role_not_allowed", "unknown_signer", "revoked_key", "missing_cosigner", "unexpected_signer",
        "not_your_organisation", "role_not_held", "unknown_role", "member_exists", "node_key_in_use", "last_admin",
        "member_not_active", "unknown_member", "unknown_proposal", "proposal_closed", "proposal_expired",
        "already_voted", "invalid_quorum", "invalid_parameter", "organisation_exists", "unknown_organisation",
        "invalid_identifier",
    } <= codes


# ================================================================ the transaction envelope


ADD_NEW = AddMember(member=NEW.did, roles=["manufacturer"])


def test_replay_in_the_same_block(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW)
    outcome = chain.block(raw, raw)
    first, second = outcome.receipts
    assert first.ok
    assert (second.ok, second.code, second.detail["height"]) == (False, "replayed_tx", outcome.header.height)
    assert [e["type"] for e in first.events] == ["governance.member_added"] and second.events == []
    assert outcome.header.tx_count == 2


def test_replay_in_a_later_block(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW)
    height = chain.block(raw).header.height
    chain.block(build_tx(OEM_ADMIN, AddMember(member=FRESH.did, roles=["manufacturer"]), FRESH))
    receipt = assert_refused(chain, raw, "replayed_tx")
    assert receipt.detail["height"] == height


def test_replay_of_a_refused_transaction(chain: Chain) -> None:
    """The failed attempt is on record once: its id is consumed like an accepted one's."""
    raw = build_tx(OEM_ADMIN, AddMember(member=NEW.did, roles=["insurer"]), NEW)
    assert chain.block(raw).receipts[0].code == "role_not_held"
    assert_refused(chain, raw, "replayed_tx")


def test_wrong_chain_is_refused_and_does_not_consume_the_id(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW, chain="another-chain")
    receipt = assert_refused(chain, raw, "wrong_chain", consumed=False)
    assert receipt.detail == {"got": "another-chain", "expected": chain.genesis.chain}


def test_expired_transaction_is_refused_and_does_not_consume_the_id(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW, expires=T0 + 10_000)
    receipt = assert_refused(chain, raw, "tx_expired", consumed=False, time=T0 + 10_001)
    assert receipt.detail == {"expires": T0 + 10_000, "now": T0 + 10_001}


def test_transaction_valid_until_its_expiry_ms(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW, expires=T0 + 10_000)
    assert chain.block(raw, time=T0 + 10_000).receipts[0].ok


def test_expiry_too_far_is_refused_then_accepted_once_within_the_limit(chain: Chain) -> None:
    ttl = params(chain)["max_tx_ttl_ms"]
    t = T0 + 1_000
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW, expires=t + ttl + 2)
    receipt = assert_refused(chain, raw, "expiry_too_far", consumed=False, time=t)  # again at t + 1: too far
    assert receipt.detail == {"ttl_ms": ttl + 2, "max_ttl_ms": ttl}
    assert_accepted(chain, raw, time=t + 2)  # the id was not consumed by the refusal


def test_replayed_after_its_expiry_is_refused_as_expired(chain: Chain) -> None:
    """The replay window forgets ids once they expired; expiry still refuses the copy."""
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW, expires=T0 + 10_000)
    assert chain.block(raw).receipts[0].ok
    assert chain.block(raw, time=T0 + 10_001).receipts[0].code == "tx_expired"
    assert chain.block(raw, time=T0 + 10 * 60_000).receipts[0].code == "tx_expired"
    assert raw and chain.ledger.check(raw).id not in chain.ledger.window


def test_unregistrable_key_is_refused_before_execution_without_consuming_the_id(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, P(admit_dealer(admins=["did:key:z6MkNotAKey"])))
    assert_refused(chain, raw, "invalid_key", consumed=False)


def test_forged_copy_published_first_does_not_block_the_genuine_transaction(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW)
    tx = chain.registry.codec.decode(raw)
    forged_sig = STRANGER.sign(b"anything").hex()
    forged = canonical(Tx(body=tx.body, sigs=[Signature(tx.sigs[0].signer, forged_sig), tx.sigs[1]]))
    assert_refused(chain, forged, "bad_signature", consumed=False)
    assert_accepted(chain, raw)
    assert member(chain, NEW).status == "active"


def test_missing_sender_signature_is_refused(chain: Chain) -> None:
    raw = build_tx(OEM_ADMIN, ADD_NEW, NEW)
    tx = chain.registry.codec.decode(raw)
    unsigned = canonical(msgspec.structs.replace(tx, sigs=[s for s in tx.sigs if s.signer != OEM_ADMIN.did]))
    assert_refused(chain, unsigned, "missing_signature", consumed=False)


# ================================================================ key life cycle


def test_rotated_key_is_refused_and_its_successor_inherits_organisation_and_roles(chain: Chain) -> None:
    assert chain.run(OEM_ADMIN, RotateKey(new_key=FRESH.did), FRESH).ok
    old, new = member(chain, OEM_ADMIN), member(chain, FRESH)
    assert (old.status, old.successor) == ("rotated", FRESH.did)
    assert (new.org, new.roles, new.status) == ("oem", ["admin", "manufacturer"], "active")
    assert admin_count(chain, "oem") == 1  # the admin moved to the new key; the count is unchanged
    receipt = assert_refused(chain, build_tx(OEM_ADMIN, ADD_NEW, NEW), "revoked_key")
    assert receipt.detail["status"] == "rotated"
    assert chain.run(FRESH, ADD_NEW, NEW).ok
    # the successor is now the only admin: it cannot leave without another admin
    assert_refused(chain, build_tx(FRESH, RevokeMember(member=FRESH.did)), "last_admin")


def test_member_revokes_its_own_key_and_is_refused_afterwards(staffed_chain: Chain) -> None:
    chain = staffed_chain
    assert_accepted(chain, build_tx(OEM_WORKER, RevokeMember(member=OEM_WORKER.did, reason="device lost")))
    assert member(chain, OEM_WORKER).status == "revoked"
    assert_refused(chain, build_tx(OEM_WORKER, RotateKey(new_key=FRESH.did), FRESH), "revoked_key")


def test_second_admin_lets_the_first_step_down(staffed_chain: Chain) -> None:
    chain = staffed_chain
    assert chain.run(OEM_ADMIN, SetMemberRoles(member=OEM_TARGET.did, roles=["admin", "manufacturer"])).ok
    assert admin_count(chain, "oem") == 2
    assert chain.run(OEM_ADMIN, SetMemberRoles(member=OEM_ADMIN.did, roles=["manufacturer"])).ok
    assert admin_count(chain, "oem") == 1
    assert_refused(chain, build_tx(OEM_ADMIN, ADD_NEW, NEW), "role_not_allowed")
    assert_refused(chain, build_tx(OEM_TARGET, RevokeMember(member=OEM_TARGET.did)), "last_admin")
    assert chain.run(OEM_TARGET, RevokeMember(member=OEM_ADMIN.did)).ok


def test_admin_added_by_add_member_counts_as_admin(chain: Chain) -> None:
    assert chain.run(OEM_ADMIN, AddMember(member=NEW.did, roles=["admin"]), NEW).ok
    assert admin_count(chain, "oem") == 2
    assert chain.run(NEW, RevokeMember(member=OEM_ADMIN.did)).ok
    assert admin_count(chain, "oem") == 1


# ================================================================ votes


def test_two_of_three_organisations_pass_a_proposal(chain: Chain) -> None:
    pid = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    assert proposal(chain, pid).status == "open"
    assert params(chain)["proposal_ttl_ms"] == 7 * DAY
    receipt = chain.run(REG_ADMIN, Vote(proposal=pid, approve=True))
    assert receipt.ok
    assert proposal(chain, pid).status == "passed" and proposal(chain, pid).votes == {"oem": True, "reg": True}
    assert params(chain)["proposal_ttl_ms"] == DAY
    decided = [e for e in receipt.events if e["type"] == "governance.proposal_decided"]
    assert decided == [{"type": "governance.proposal_decided", "proposal": pid, "status": "passed", "yes": 2, "no": 0}]


def test_one_no_vote_of_three_keeps_the_proposal_open(chain: Chain) -> None:
    pid = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    assert chain.run(INS_ADMIN, Vote(proposal=pid, approve=False)).ok
    assert proposal(chain, pid).status == "open"
    assert chain.run(REG_ADMIN, Vote(proposal=pid, approve=True)).ok
    assert proposal(chain, pid).status == "passed"


def test_proposal_rejected_once_passing_is_impossible(chain: Chain) -> None:
    pid = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    assert chain.run(INS_ADMIN, Vote(proposal=pid, approve=False)).ok
    before = params(chain)
    receipt = chain.run(REG_ADMIN, Vote(proposal=pid, approve=False))
    assert receipt.ok
    assert proposal(chain, pid).status == "rejected"
    assert params(chain) == before
    assert receipt.events[-1] == {"type": "governance.proposal_decided", "proposal": pid, "status": "rejected",
                                  "yes": 1, "no": 2}
    assert_refused(chain, build_tx(REG_ADMIN, Vote(proposal=pid, approve=True)), "proposal_closed")


def test_three_of_four_organisations_needed_after_an_admission(chain: Chain) -> None:
    pid = open_proposal(chain, admit_dealer())
    assert chain.run(INS_ADMIN, Vote(proposal=pid, approve=True)).ok
    assert active_orgs(chain) == ["dealer-co", "ins", "oem", "reg"]
    pid2 = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    assert chain.run(INS_ADMIN, Vote(proposal=pid2, approve=True)).ok
    assert proposal(chain, pid2).status == "open"  # 2 of 4 < ceil(66% of 4) = 3
    assert chain.run(DEALER_ADMIN, Vote(proposal=pid2, approve=True)).ok
    assert proposal(chain, pid2).status == "passed"


def test_vote_counts_until_the_expiry_ms_and_is_refused_after(chain: Chain) -> None:
    pid = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    expires = proposal(chain, pid).expires
    assert expires == chain.ledger.head.time + 7 * DAY
    late = build_tx(INS_ADMIN, Vote(proposal=pid, approve=True), expires=expires + 60_000)
    assert_refused(chain, late, "proposal_expired", time=expires + 1)

    chain2 = Chain()
    pid = open_proposal(chain2, SetParameter(name="proposal_ttl_ms", value=DAY))
    on_time = build_tx(INS_ADMIN, Vote(proposal=pid, approve=True), expires=expires + 60_000)
    assert chain2.block(on_time, time=expires).receipts[0].ok
    assert proposal(chain2, pid).status == "passed"


def test_removed_organisation_keys_are_refused_afterwards(staffed_chain: Chain) -> None:
    chain = staffed_chain
    ins_removed(chain)
    assert active_orgs(chain) == ["oem", "reg"]
    for sender, msg, cos in [
        (INS_ADMIN, AddMember(member=NEW.did, roles=["insurer"]), (NEW,)),
        (INS_ADMIN, P(SetParameter(name="proposal_ttl_ms", value=DAY)), ()),
        (INS_WORKER, RotateKey(new_key=FRESH.did), (FRESH,)),
        (INS_WORKER, RevokeMember(member=INS_WORKER.did), ()),
    ]:
        receipt = assert_refused(chain, build_tx(sender, msg, *cos), "revoked_key")
        assert receipt.detail["status"] == "revoked"
    # nobody else can act on its keys either
    assert_refused(chain, build_tx(OEM_ADMIN, RevokeMember(member=INS_WORKER.did)), "not_your_organisation")


def test_removed_organisation_no_longer_counts_towards_the_threshold(chain: Chain) -> None:
    ins_removed(chain)
    pid = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=DAY))
    assert proposal(chain, pid).status == "open"  # 1 of 2 < ceil(66% of 2) = 2
    assert chain.run(REG_ADMIN, Vote(proposal=pid, approve=True)).ok
    assert proposal(chain, pid).status == "passed"


def test_parameter_change_takes_effect_from_the_next_block(chain: Chain) -> None:
    pid = open_proposal(chain, SetParameter(name="max_tx_ttl_ms", value=600_000))
    t = chain.ledger.head.time + 1
    far = build_tx(OEM_ADMIN, ADD_NEW, NEW, expires=t + 1_000_000)
    outcome = chain.block(build_tx(INS_ADMIN, Vote(proposal=pid, approve=True), expires=t + 60_000), far, time=t)
    assert [r.ok for r in outcome.receipts] == [True, True]  # the old limit holds for the rest of the block
    assert params(chain)["max_tx_ttl_ms"] == 600_000
    t += 1
    too_far = build_tx(OEM_ADMIN, AddMember(member=FRESH.did, roles=["manufacturer"]), FRESH, expires=t + 600_002)
    receipt = assert_refused(chain, too_far, "expiry_too_far", consumed=False, time=t)
    assert receipt.detail == {"ttl_ms": 600_002, "max_ttl_ms": 600_000}
    assert chain.run(OEM_ADMIN, AddMember(member=FRESH.did, roles=["manufacturer"]), FRESH,
                     expires=chain.ledger.head.time + 1 + 600_000).ok


def test_threshold_change_takes_effect_from_the_next_block(chain: Chain) -> None:
    pid = open_proposal(chain, SetParameter(name="vote_threshold_pct", value=33))
    outcome = chain.block(build_tx(INS_ADMIN, Vote(proposal=pid, approve=True)),
                          build_tx(OEM_ADMIN, P(SetParameter(name="proposal_ttl_ms", value=DAY))))
    assert all(r.ok for r in outcome.receipts)
    assert proposal(chain, pid + 1).status == "open"  # decided under the old threshold, 66%
    pid3 = open_proposal(chain, SetParameter(name="proposal_ttl_ms", value=2 * DAY))
    assert proposal(chain, pid3).status == "passed"  # the proposer's yes: 1 of 3 >= ceil(33% of 3) = 1


# ================================================================ node keys and quorum


def test_admission_adds_its_node_keys_to_the_consensus_record(chain: Chain) -> None:
    before = consensus(chain)
    assert (before.quorum, [n.did for n in before.nodes]) == (1, [REG_NODE.did])
    pid = open_proposal(chain, admit_dealer())
    assert consensus(chain) == before  # nothing changes while the proposal is open
    receipt = chain.run(INS_ADMIN, Vote(proposal=pid, approve=True))
    assert receipt.ok
    after = consensus(chain)
    assert sorted(after.nodes, key=lambda n: n.did) == after.nodes
    assert set(after.nodes) == {NodeKey(REG_NODE.did, "reg"), NodeKey(DEALER_NODE.did, "dealer-co")}
    assert (after.quorum, after.version, after.since) == (1, before.version + 1, chain.ledger.head.height)
    assert org(chain, "dealer-co").nodes == [DEALER_NODE.did]
    assert "governance.consensus_changed" in [e["type"] for e in receipt.events]
    # the founding admin key acts at once, with the organisation's roles
    assert member(chain, DEALER_ADMIN).roles == ["admin", "dealer"]
    assert chain.run(DEALER_ADMIN, AddMember(member=NEW.did, roles=["dealer"]), NEW).ok
    # its node key is taken: no other purpose
    assert_refused(chain, build_tx(OEM_ADMIN, AddMember(member=DEALER_NODE.did, roles=["manufacturer"]), DEALER_NODE),
                   "node_key_in_use")


def two_node_operators(chain: Chain) -> None:
    pid = open_proposal(chain, admit_dealer())
    assert chain.run(INS_ADMIN, Vote(proposal=pid, approve=True)).ok
    assert len(consensus(chain).nodes) == 2


def test_quorum_set_by_vote_within_the_node_keys(chain: Chain) -> None:
    two_node_operators(chain)
    assert_refused(chain, build_tx(OEM_ADMIN, P(SetQuorum(quorum=3))), "invalid_quorum")
    pid = open_proposal(chain, SetQuorum(quorum=2))
    assert consensus(chain).quorum == 1
    assert chain.run(REG_ADMIN, Vote(proposal=pid, approve=True)).ok
    assert chain.run(DEALER_ADMIN, Vote(proposal=pid, approve=True)).ok
    assert consensus(chain).quorum == 2


def quorum_two(chain: Chain) -> None:
    two_node_operators(chain)
    pid = open_proposal(chain, SetQuorum(quorum=2))
    ok(chain.block(build_tx(REG_ADMIN, Vote(proposal=pid, approve=True)),
                   build_tx(DEALER_ADMIN, Vote(proposal=pid, approve=True))))
    assert consensus(chain).quorum == 2


def test_removing_a_node_operator_drops_its_node_keys_and_lowers_the_quorum(chain: Chain) -> None:
    quorum_two(chain)
    pid = open_proposal(chain, RemoveOrganisation(id="dealer-co"))
    ok(chain.block(build_tx(REG_ADMIN, Vote(proposal=pid, approve=True)),
                   build_tx(INS_ADMIN, Vote(proposal=pid, approve=True))))
    c = consensus(chain)
    assert (c.nodes, c.quorum) == ([NodeKey(REG_NODE.did, "reg")], 1)
    assert org(chain, "dealer-co").status == "removed" and org(chain, "dealer-co").nodes == []


def test_set_node_keys_replaces_the_organisation_keys_and_keeps_the_quorum_possible(chain: Chain) -> None:
    quorum_two(chain)
    new_nodes = sorted([K("reg-node-2").did, K("reg-node-3").did])
    pid = open_proposal(chain, SetNodeKeys(org="reg", nodes=new_nodes))
    ok(chain.block(build_tx(INS_ADMIN, Vote(proposal=pid, approve=True)),
                   build_tx(REG_ADMIN, Vote(proposal=pid, approve=True))))
    c = consensus(chain)
    assert {(n.did, n.org) for n in c.nodes} == {(DEALER_NODE.did, "dealer-co")} | {(d, "reg") for d in new_nodes}
    assert c.quorum == 2 and org(chain, "reg").nodes == new_nodes
    # an organisation that drops all its node keys lowers the quorum to what remains
    pid = open_proposal(chain, SetNodeKeys(org="reg", nodes=[]))
    ok(chain.block(build_tx(INS_ADMIN, Vote(proposal=pid, approve=True)),
                   build_tx(REG_ADMIN, Vote(proposal=pid, approve=True))))
    c = consensus(chain)
    assert (c.nodes, c.quorum) == ([NodeKey(DEALER_NODE.did, "dealer-co")], 1)
    assert org(chain, "reg").nodes == []


def test_removing_the_only_node_operator_fails_at_the_deciding_vote_and_changes_nothing(chain: Chain) -> None:
    pid = open_proposal(chain, RemoveOrganisation(id="reg"))
    assert_refused(chain, build_tx(INS_ADMIN, Vote(proposal=pid, approve=True)), "invalid_quorum")
    assert proposal(chain, pid).status == "open" and "reg" in active_orgs(chain)
    assert consensus(chain).nodes == [NodeKey(REG_NODE.did, "reg")]
