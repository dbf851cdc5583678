"""Governance rules. Each handler assumes the framework already checked signers and roles."""

from __future__ import annotations

import re

from ...core.block import Genesis
from ...core.crypto import check_did
from ...core.module import MEMBER, Context, KeyParty, SignerInfo
from ...core.state import Overlay, StateReader
from . import errors
from .messages import (
    AddMember,
    ConsensusChanged,
    KeyRotated,
    MemberAdded,
    MemberRevoked,
    MemberRolesChanged,
    OrganisationAdmitted,
    OrganisationRemoved,
    ParameterChanged,
    ProposalDecided,
    ProposalOpened,
    Propose,
    RevokeMember,
    RotateKey,
    SetMemberRoles,
    Vote,
    VoteCast,
)
from .spec import MEMBERS_BY_ORG, PROPOSALS_BY_STATUS, module
from .state import (
    ACTIVE_ORGS,
    ADMIN_COUNT,
    CONSENSUS,
    MEMBERS,
    NEXT_PROPOSAL,
    ORGS,
    PROPOSALS,
    ROLES,
    Action,
    AdmitOrganisation,
    Consensus,
    Member,
    NodeKey,
    Organisation,
    Proposal,
    RemoveOrganisation,
    SetNodeKeys,
    SetParameter,
    SetQuorum,
)

_ORG_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")

class GovernanceDirectory:
    """The ``Directory`` the framework uses to authorise every transaction."""

    watched = (MEMBERS.prefix.encode(), ORGS.prefix.encode())

    def signer(self, state: StateReader, did: str) -> SignerInfo | None:
        m = MEMBERS.get(state, did)
        if m is None:
            return None
        status, since = m.status, m.since
        if status == "active":
            org = ORGS.get(state, m.org)
            if org is None or org.status != "active":
                status, since = "revoked", (org.since if org else 0)
        return SignerInfo(did, m.org, frozenset(m.roles), status, since)

    def org_roles(self, state: StateReader, org: str) -> frozenset[str] | None:
        o = ORGS.get(state, org)
        return frozenset(o.roles) if o is not None and o.status == "active" else None



# ---------------------------------------------------------------- helpers


def _check_org_id(org_id: str) -> None:
    if not _ORG_ID.match(org_id):
        raise errors.InvalidIdentifier(value=org_id, what="organisation id",
                                       rule="2-63 lowercase letters, digits or '-', starting with a letter or digit")


def _check_roles(roles: list[str], allowed: frozenset[str] | None = None, org: str = "") -> list[str]:
    for r in roles:
        if r not in ROLES:
            raise errors.UnknownRole(role=r, known=", ".join(sorted(ROLES)))
        if allowed is not None and r != "admin" and r not in allowed:
            raise errors.RoleNotHeld(org=org, role=r, held=", ".join(sorted(allowed)))
    return sorted(set(roles))


def _active_org(state: StateReader, org_id: str) -> Organisation:
    org = ORGS.get(state, org_id)
    if org is None or org.status != "active":
        raise errors.UnknownOrganisation(org=org_id)
    return org


def _key_unused(state: StateReader, did: str) -> None:
    """The key is not yet a member or node key (its validity was checked with the signatures)."""
    if MEMBERS.has(state, did) or any(n.did == did for n in _consensus(state).nodes):
        raise errors.NodeKeyInUse(key=did)


def _consensus(state: StateReader) -> Consensus:
    c = CONSENSUS.get(state)
    return c if c is not None else Consensus(nodes=[], quorum=0)


def _put_member(state: Overlay, ctx: Context, m: Member) -> None:
    MEMBERS.put(state, m, m.did)
    ctx.index_put(MEMBERS_BY_ORG, org=m.org, did=m.did, roles=",".join(m.roles), status=m.status, since=m.since)


def _set_consensus(state: Overlay, ctx: Context, nodes: list[NodeKey], quorum: int) -> None:
    if not nodes or not 1 <= quorum <= len(nodes):
        raise errors.InvalidQuorum(quorum=quorum, nodes=len(nodes))
    old = CONSENSUS.get(state)
    version = old.version + 1 if old is not None else 0
    nodes = sorted(nodes, key=lambda n: n.did)
    CONSENSUS.put(state, Consensus(nodes=nodes, quorum=quorum, version=version, since=ctx.height))
    ctx.emit(ConsensusChanged(version=version, quorum=quorum, nodes=[n.did for n in nodes]))


def _check_admission(state: StateReader, a: AdmitOrganisation) -> list[str]:
    """Everything that must hold for an admission to apply; returns the organisation's roles."""
    _check_org_id(a.id)
    if ORGS.has(state, a.id):
        raise errors.OrganisationExists(org=a.id)
    roles = _check_roles(a.roles)
    if not a.admins:
        raise errors.InvalidIdentifier(value=a.id, what="admission", rule="an organisation needs at least one admin key")
    keys = list(a.admins) + list(a.nodes)
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise errors.NodeKeyInUse(key=twice)
    for did in keys:
        _key_unused(state, did)
    return roles


def _check_node_keys(state: StateReader, org: str, nodes: list[str]) -> None:
    """New node keys of ``org``: no member key, and no node key of another organisation."""
    others = {n.did for n in _consensus(state).nodes if n.org != org}
    for did in nodes:
        if did in others or MEMBERS.has(state, did):
            raise errors.NodeKeyInUse(key=did)


def _admit(state: Overlay, ctx: Context, a: AdmitOrganisation) -> None:
    roles = _check_admission(state, a)
    ORGS.put(state, Organisation(a.id, a.name, roles, sorted(a.nodes), "active", ctx.height), a.id)
    ACTIVE_ORGS.put(state, sorted(set(ACTIVE_ORGS.get(state)) | {a.id}))
    admin_roles = sorted({"admin", *roles})  # a founding admin key may act in every role of its organisation
    for did in a.admins:
        _put_member(state, ctx, Member(did, a.id, admin_roles, "active", ctx.height))
        ctx.emit(MemberAdded(org=a.id, member=did, roles=admin_roles))
    _adjust_admins(state, a.id, len(a.admins))
    if a.nodes:
        c = _consensus(state)
        _set_consensus(state, ctx, c.nodes + [NodeKey(n, a.id) for n in a.nodes], max(c.quorum, 1))
    ctx.emit(OrganisationAdmitted(org=a.id, roles=roles))


def genesis(state: Overlay, ctx: Context, g: Genesis) -> None:
    """Founding organisations, their admin and node keys, and the quorum."""
    for org in g.organisations:
        for did in list(org.admins) + list(org.nodes):
            check_did(did)
        _admit(state, ctx, AdmitOrganisation(org.id, org.name, org.roles, org.admins, org.nodes))
    _set_consensus(state, ctx, _consensus(state).nodes, g.quorum)


module.genesis = genesis


# ---------------------------------------------------------------- member keys


def _own_member(state: StateReader, ctx: Context, did: str) -> Member:
    m = MEMBERS.get(state, did)
    if m is None:
        raise errors.UnknownMember(member=did)
    assert ctx.member is not None
    if m.org != ctx.member.org:
        raise errors.NotYourOrganisation(member=did, org=m.org)
    return m


def _active_admins(state: StateReader, org: str) -> int:
    # Execution never reads derived index tables, so the count lives in state.
    return ADMIN_COUNT.get(state, org) or 0


def _adjust_admins(state: Overlay, org: str, delta: int) -> None:
    ADMIN_COUNT.put(state, _active_admins(state, org) + delta, org)


@module.message(AddMember, roles={"admin"}, cosigners=lambda s, ctx, m: [KeyParty(m.member, "the new key")],
                new_keys=lambda m: [m.member])
def add_member(state: Overlay, ctx: Context, msg: AddMember) -> None:
    """Add a key to the sender's organisation."""
    assert ctx.member is not None
    org = _active_org(state, ctx.member.org)
    roles = _check_roles(msg.roles, frozenset(org.roles), org.id)
    existing = MEMBERS.get(state, msg.member)
    if existing is not None:
        raise errors.MemberExists(member=msg.member, org=existing.org)
    _key_unused(state, msg.member)
    _put_member(state, ctx, Member(msg.member, org.id, roles, "active", ctx.height))
    if "admin" in roles:
        _adjust_admins(state, org.id, 1)
    ctx.emit(MemberAdded(org=org.id, member=msg.member, roles=roles))


@module.message(RevokeMember, roles=MEMBER)
def revoke_member(state: Overlay, ctx: Context, msg: RevokeMember) -> None:
    """Revoke a key: by an admin of its organisation, or by the key itself."""
    assert ctx.member is not None
    m = _own_member(state, ctx, msg.member)
    if msg.member != ctx.sender and "admin" not in ctx.member.roles:
        raise errors.NotYourOrganisation(member=msg.member, org=m.org)
    if m.status != "active":
        raise errors.MemberNotActive(member=msg.member, status=m.status)
    if "admin" in m.roles:
        if _active_admins(state, m.org) <= 1:
            raise errors.LastAdmin(member=msg.member, org=m.org)
        _adjust_admins(state, m.org, -1)
    _put_member(state, ctx, Member(m.did, m.org, m.roles, "revoked", ctx.height))
    ctx.emit(MemberRevoked(org=m.org, member=m.did, reason=msg.reason))


@module.message(RotateKey, roles=MEMBER, cosigners=lambda s, ctx, m: [KeyParty(m.new_key, "the new key")],
                new_keys=lambda m: [m.new_key])
def rotate_key(state: Overlay, ctx: Context, msg: RotateKey) -> None:
    """Replace the sender's key by a new one with the same organisation and roles."""
    old = MEMBERS.get(state, ctx.sender)
    assert old is not None
    _key_unused(state, msg.new_key)
    _put_member(state, ctx, Member(old.did, old.org, old.roles, "rotated", ctx.height, msg.new_key))
    _put_member(state, ctx, Member(msg.new_key, old.org, old.roles, "active", ctx.height))
    ctx.emit(KeyRotated(org=old.org, old_key=old.did, new_key=msg.new_key))


@module.message(SetMemberRoles, roles={"admin"})
def set_member_roles(state: Overlay, ctx: Context, msg: SetMemberRoles) -> None:
    """Change the roles of a key of the sender's organisation."""
    m = _own_member(state, ctx, msg.member)
    if m.status != "active":
        raise errors.MemberNotActive(member=msg.member, status=m.status)
    org = _active_org(state, m.org)
    roles = _check_roles(msg.roles, frozenset(org.roles), org.id)
    was_admin, is_admin = "admin" in m.roles, "admin" in roles
    if was_admin and not is_admin:
        if _active_admins(state, m.org) <= 1:
            raise errors.LastAdmin(member=m.did, org=m.org)
        _adjust_admins(state, m.org, -1)
    elif is_admin and not was_admin:
        _adjust_admins(state, m.org, 1)
    _put_member(state, ctx, Member(m.did, m.org, roles, "active", m.since))
    ctx.emit(MemberRolesChanged(org=m.org, member=m.did, roles=roles))


# ---------------------------------------------------------------- proposals and votes


def _check_action(state: StateReader, ctx: Context, action: Action) -> None:
    """Refuse a proposal that could never be applied."""
    if isinstance(action, AdmitOrganisation):
        _check_admission(state, action)
    elif isinstance(action, RemoveOrganisation):
        _active_org(state, action.id)
    elif isinstance(action, SetParameter):
        ctx.check_param(action.name, action.value)
    elif isinstance(action, SetNodeKeys):
        _active_org(state, action.org)
        _check_node_keys(state, action.org, list(action.nodes))
    elif isinstance(action, SetQuorum):
        nodes = len(_consensus(state).nodes)
        if not 1 <= action.quorum <= nodes:
            raise errors.InvalidQuorum(quorum=action.quorum, nodes=nodes)


def _apply(state: Overlay, ctx: Context, action: Action) -> None:
    h = ctx.height
    if isinstance(action, AdmitOrganisation):
        _admit(state, ctx, action)
    elif isinstance(action, RemoveOrganisation):
        org = _active_org(state, action.id)
        ORGS.put(state, Organisation(org.id, org.name, org.roles, [], "removed", h), org.id)
        ACTIVE_ORGS.put(state, [o for o in ACTIVE_ORGS.get(state) if o != org.id])
        c = _consensus(state)
        nodes = [n for n in c.nodes if n.org != org.id]
        if len(nodes) != len(c.nodes):
            _set_consensus(state, ctx, nodes, min(c.quorum, len(nodes)))
        ctx.emit(OrganisationRemoved(org=org.id))
    elif isinstance(action, SetParameter):
        ctx.set_param(state, action.name, action.value)
        ctx.emit(ParameterChanged(name=action.name, value=action.value))
    elif isinstance(action, SetNodeKeys):
        org = _active_org(state, action.org)
        _check_node_keys(state, org.id, list(action.nodes))
        c = _consensus(state)
        others = [n for n in c.nodes if n.org != org.id]
        nodes = others + [NodeKey(d, org.id) for d in sorted(set(action.nodes))]
        ORGS.put(state, Organisation(org.id, org.name, org.roles, sorted(set(action.nodes)), org.status, org.since), org.id)
        _set_consensus(state, ctx, nodes, min(c.quorum, len(nodes)))
    elif isinstance(action, SetQuorum):
        c = _consensus(state)
        _set_consensus(state, ctx, c.nodes, action.quorum)


def _tally(state: Overlay, ctx: Context, p: Proposal) -> Proposal:
    active = ACTIVE_ORGS.get(state)
    votes = {o: v for o, v in p.votes.items() if o in active}
    yes = sum(1 for v in votes.values() if v)
    no = sum(1 for v in votes.values() if not v)
    pct = ctx.param("vote_threshold_pct")
    needed = -(-pct * len(active) // 100)  # ceil, in integers
    status = p.status
    if yes >= needed:
        _apply(state, ctx, p.action)
        status = "passed"
    elif len(active) - no < needed:
        status = "rejected"
    if status != p.status:
        ctx.emit(ProposalDecided(proposal=p.id, status=status, yes=yes, no=no))
    return Proposal(p.id, p.action, p.proposer, p.opened, p.expires, p.votes, status, p.note)


def _save_proposal(state: Overlay, ctx: Context, p: Proposal) -> None:
    PROPOSALS.put(state, p, p.id)
    ctx.index_put(PROPOSALS_BY_STATUS, id=p.id, status=p.status, action=p.action.__struct_config__.tag,
                  opened=p.opened)


def _proposal_keys(msg: Propose) -> list[str]:
    a = msg.action
    if isinstance(a, AdmitOrganisation):
        return list(a.admins) + list(a.nodes)
    if isinstance(a, SetNodeKeys):
        return list(a.nodes)
    return []


@module.message(Propose, roles={"admin"}, new_keys=_proposal_keys)
def propose(state: Overlay, ctx: Context, msg: Propose) -> None:
    """Open a proposal; the proposer's organisation votes yes."""
    assert ctx.member is not None
    _check_action(state, ctx, msg.action)
    pid = NEXT_PROPOSAL.get(state)
    NEXT_PROPOSAL.put(state, pid + 1)
    org = ctx.member.org
    p = Proposal(pid, msg.action, org, ctx.height, ctx.time + ctx.param("proposal_ttl_ms"), {org: True}, "open", msg.note)
    ctx.emit(ProposalOpened(proposal=pid, action=msg.action.__struct_config__.tag, org=org))
    ctx.emit(VoteCast(proposal=pid, org=org, approve=True))
    _save_proposal(state, ctx, _tally(state, ctx, p))


@module.message(Vote, roles={"admin"})
def vote(state: Overlay, ctx: Context, msg: Vote) -> None:
    """Vote for the sender's organisation."""
    assert ctx.member is not None
    p = PROPOSALS.get(state, msg.proposal)
    if p is None:
        raise errors.UnknownProposal(proposal=msg.proposal)
    if p.status != "open":
        raise errors.ProposalClosed(proposal=p.id, status=p.status)
    if ctx.time > p.expires:
        raise errors.ProposalExpired(proposal=p.id, expires=p.expires)
    org = ctx.member.org
    if org in p.votes:
        raise errors.AlreadyVoted(org=org, proposal=p.id)
    votes = dict(p.votes)
    votes[org] = msg.approve
    ctx.emit(VoteCast(proposal=p.id, org=org, approve=msg.approve))
    _save_proposal(state, ctx, _tally(state, ctx, Proposal(p.id, p.action, p.proposer, p.opened, p.expires, votes, p.status, p.note)))
