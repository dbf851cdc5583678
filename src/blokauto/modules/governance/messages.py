"""Governance messages and events."""

from __future__ import annotations

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Action


class AddMember(Message, tag="governance.add_member"):
    """An admin adds a key to its own organisation with some of the organisation's roles.
    The new key co-signs, proving its holder has the private key."""

    member: str
    roles: list[str]


class RevokeMember(Message, tag="governance.revoke_member"):
    """An admin revokes a key of its organisation (or a key revokes itself); the key's later
    transactions are refused."""

    member: str
    reason: str = ""


class RotateKey(Message, tag="governance.rotate_key"):
    """A member replaces its key: the new key inherits organisation and roles, the old one is
    retired. The new key co-signs."""

    new_key: str


class SetMemberRoles(Message, tag="governance.set_member_roles"):
    """An admin changes the roles of a key of its organisation."""

    member: str
    roles: list[str]


class Propose(Message, tag="governance.propose"):
    """An admin opens a proposal for the consortium; its organisation votes yes at once."""

    action: Action
    note: str = ""


class Vote(Message, tag="governance.vote"):
    """An admin votes for its organisation; the proposal is applied as soon as the yes votes
    reach the threshold (``vote_threshold_pct`` of active organisations)."""

    proposal: Uint
    approve: bool


class MemberAdded(Event, tag="governance.member_added"):
    org: str
    member: str
    roles: list[str]


class MemberRevoked(Event, tag="governance.member_revoked"):
    org: str
    member: str
    reason: str


class KeyRotated(Event, tag="governance.key_rotated"):
    org: str
    old_key: str
    new_key: str


class MemberRolesChanged(Event, tag="governance.member_roles_changed"):
    org: str
    member: str
    roles: list[str]


class ProposalOpened(Event, tag="governance.proposal_opened"):
    proposal: Uint
    action: str
    org: str


class VoteCast(Event, tag="governance.vote_cast"):
    proposal: Uint
    org: str
    approve: bool


class ProposalDecided(Event, tag="governance.proposal_decided"):
    proposal: Uint
    status: str
    yes: Uint
    no: Uint


class OrganisationAdmitted(Event, tag="governance.organisation_admitted"):
    org: str
    roles: list[str]


class OrganisationRemoved(Event, tag="governance.organisation_removed"):
    org: str


class ParameterChanged(Event, tag="governance.parameter_changed"):
    name: str
    value: Uint


class ConsensusChanged(Event, tag="governance.consensus_changed"):
    version: Uint
    quorum: Uint
    nodes: list[str]
