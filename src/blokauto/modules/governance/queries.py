"""Governance queries (read-only)."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.encoding import Uint, to_builtins
from ...core.errors import NotFound
from ...core.access import IDENTIFIED
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .spec import MEMBERS_BY_ORG, PROPOSALS_BY_STATUS, module
from .state import ACTIVE_ORGS, CONSENSUS, MEMBERS, ORGS, PROPOSALS

#: Most proposals one page of ``proposals`` returns.
PROPOSALS_PAGE_MAX = 500
#: Most member keys ``organisation`` lists.
MEMBERS_MAX = 10_000


class OrgQuery(msgspec.Struct):
    id: KeyPart


class MemberQuery(msgspec.Struct):
    did: KeyPart


class ProposalQuery(msgspec.Struct):
    id: Uint


class ProposalsQuery(Page, kw_only=True):
    status: str = "open"
    limit: Uint = 50


@module.query("organisations", read=IDENTIFIED)
def organisations(view: QueryView) -> list[dict[str, Any]]:
    """Active organisations with their roles and node keys."""
    out = []
    for org_id in ACTIVE_ORGS.get(view):
        org = ORGS.get(view, org_id)
        if org is not None:
            out.append(to_builtins(org))
    return out


@module.query("organisation", OrgQuery, read=IDENTIFIED, proof_keys=lambda q: [ORGS.key(q.id)])
def organisation(view: QueryView, q: OrgQuery) -> dict[str, Any]:
    """One organisation and its member keys."""
    org = ORGS.get(view, q.id)
    if org is None:
        raise NotFound(what="Organisation", key=q.id)
    members = view.rows(MEMBERS_BY_ORG, {"org": q.id}, order=("did",), limit=MEMBERS_MAX)
    return {**to_builtins(org), "members": [
        {"did": m["did"], "roles": m["roles"].split(",") if m["roles"] else [], "status": m["status"], "since": m["since"]}
        for m in members]}


@module.query("member", MemberQuery, read=IDENTIFIED, proof_keys=lambda q: [MEMBERS.key(q.did)])
def member(view: QueryView, q: MemberQuery) -> dict[str, Any]:
    """A key's organisation, roles and status."""
    m = MEMBERS.get(view, q.did)
    if m is None:
        raise NotFound(what="Member key", key=q.did)
    return to_builtins(m)


@module.query("consensus", read=IDENTIFIED, proof_keys=lambda q: [CONSENSUS.key])
def consensus(view: QueryView) -> dict[str, Any]:
    """Node keys that attest blocks and the quorum of attestations a checkpoint needs."""
    return to_builtins(CONSENSUS.get(view))


@module.query("proposal", ProposalQuery, read=IDENTIFIED, proof_keys=lambda q: [PROPOSALS.key(q.id)])
def proposal(view: QueryView, q: ProposalQuery) -> dict[str, Any]:
    """One proposal with its votes."""
    p = PROPOSALS.get(view, q.id)
    if p is None:
        raise NotFound(what="Proposal", key=str(q.id))
    return to_builtins(p)


@module.query("proposals", ProposalsQuery, read=IDENTIFIED)
def proposals(view: QueryView, q: ProposalsQuery) -> dict[str, Any]:
    """Proposals by status (open, passed, rejected), newest first."""
    rows = view.rows(PROPOSALS_BY_STATUS, {"status": q.status}, order=("id",), descending=True,
                     limit=q.size(PROPOSALS_PAGE_MAX), offset=q.offset)
    items = [to_builtins(PROPOSALS.get(view, r["id"])) for r in rows]
    return {"items": items, "total": view.count(PROPOSALS_BY_STATUS, {"status": q.status})}


module.reads(IDENTIFIED, "governance.member_added", "governance.member_revoked", "governance.key_rotated",
             "governance.member_roles_changed", "governance.proposal_opened", "governance.vote_cast",
             "governance.proposal_decided", "governance.organisation_admitted", "governance.organisation_removed",
             "governance.parameter_changed", "governance.consensus_changed")
