"""Governance refusals."""

from ...core.errors import DomainError


class UnknownOrganisation(DomainError):
    code = "unknown_organisation"
    template = "There is no active organisation {org!r}; GET /v1/q/governance/organisations lists them."


class OrganisationExists(DomainError):
    code = "organisation_exists"
    template = "An organisation with id {org!r} already exists; choose another id."


class MemberExists(DomainError):
    code = "member_exists"
    template = "{member} is already a key of organisation {org!r}; a key belongs to one organisation once."


class UnknownMember(DomainError):
    code = "unknown_member"
    template = "{member} is not a key of any organisation."


class NotYourOrganisation(DomainError):
    code = "not_your_organisation"
    template = "{member} belongs to {org!r}; only that organisation's admins may change it."


class RoleNotHeld(DomainError):
    code = "role_not_held"
    template = "Organisation {org!r} does not hold role {role!r} (it holds {held}); a member can only get roles its organisation holds."


class UnknownRole(DomainError):
    code = "unknown_role"
    template = "{role!r} is not a role; roles are: {known}."


class LastAdmin(DomainError):
    code = "last_admin"
    template = "{member} is the last active admin of {org!r}; add another admin before removing this one."


class MemberNotActive(DomainError):
    code = "member_not_active"
    template = "{member} is already {status}."


class UnknownProposal(DomainError):
    code = "unknown_proposal"
    template = "There is no proposal {proposal}."


class ProposalClosed(DomainError):
    code = "proposal_closed"
    template = "Proposal {proposal} is {status}; votes are no longer counted."


class ProposalExpired(DomainError):
    code = "proposal_expired"
    template = "Proposal {proposal} expired at {expires} (ms); open a new one."


class AlreadyVoted(DomainError):
    code = "already_voted"
    template = "Organisation {org!r} already voted on proposal {proposal}."


class InvalidQuorum(DomainError):
    code = "invalid_quorum"
    template = "A quorum of {quorum} is impossible with {nodes} node keys; it must be between 1 and the number of node keys."


class NodeKeyInUse(DomainError):
    code = "node_key_in_use"
    template = "{key} is already a node or member key; every key has one purpose."


class InvalidIdentifier(DomainError):
    code = "invalid_identifier"
    template = "{value!r} is not a valid {what}: {rule}."
