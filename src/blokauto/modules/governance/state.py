"""Governance state: organisations, member keys, the consensus record, proposals."""

from __future__ import annotations

from typing import Literal, Union

import msgspec

from ...core.encoding import Uint
from ...core.state import Item, StateMap
from . import keys

#: Roles an organisation (and so its member keys) may hold. ``admin`` is a member-level role:
#: it manages the organisation's keys and votes for it.
ROLES = frozenset({
    "admin", "manufacturer", "supplier", "dealer", "workshop", "insurer", "lender", "regulator",
    "recycler", "police", "inspector", "mobility", "energy", "auditor", "logistics", "fleet",
    "issuer", "toll", "parking", "charging", "fuel", "grid",
})


class Organisation(msgspec.Struct, frozen=True):
    id: str
    name: str
    roles: list[str]
    nodes: list[str]
    status: Literal["active", "removed"] = "active"
    since: Uint = 0


class Member(msgspec.Struct, frozen=True):
    did: str
    org: str
    roles: list[str]
    status: Literal["active", "revoked", "rotated"] = "active"
    since: Uint = 0
    successor: str = ""  # for a rotated key, the key that replaced it


class NodeKey(msgspec.Struct, frozen=True):
    did: str
    org: str


class Consensus(msgspec.Struct, frozen=True):
    """The node keys that attest blocks and how many attestations make a checkpoint."""

    nodes: list[NodeKey]
    quorum: Uint
    version: Uint = 0
    since: Uint = 0


# --- proposal actions (what a vote can do)


class AdmitOrganisation(msgspec.Struct, tag="admit_organisation", tag_field="action", forbid_unknown_fields=True, frozen=True):
    id: str
    name: str
    roles: list[str]
    admins: list[str]
    nodes: list[str] = []


class RemoveOrganisation(msgspec.Struct, tag="remove_organisation", tag_field="action", forbid_unknown_fields=True, frozen=True):
    id: str


class SetParameter(msgspec.Struct, tag="set_parameter", tag_field="action", forbid_unknown_fields=True, frozen=True):
    name: str
    value: Uint


class SetNodeKeys(msgspec.Struct, tag="set_node_keys", tag_field="action", forbid_unknown_fields=True, frozen=True):
    org: str
    nodes: list[str]


class SetQuorum(msgspec.Struct, tag="set_quorum", tag_field="action", forbid_unknown_fields=True, frozen=True):
    quorum: Uint


Action = Union[AdmitOrganisation, RemoveOrganisation, SetParameter, SetNodeKeys, SetQuorum]


class Proposal(msgspec.Struct, frozen=True):
    id: Uint
    action: Action
    proposer: str
    opened: Uint  # height
    expires: Uint  # block time, ms
    votes: dict[str, bool]
    status: Literal["open", "passed", "rejected"] = "open"
    note: str = ""


ORGS = StateMap(keys.ORG, Organisation)
MEMBERS = StateMap(keys.MEMBER, Member)
PROPOSALS = StateMap(keys.PROPOSAL, Proposal)
ACTIVE_ORGS: Item[list[str]] = Item(keys.ACTIVE_ORGS, list[str], default=list)
CONSENSUS: Item[Consensus | None] = Item(keys.CONSENSUS, Consensus)
NEXT_PROPOSAL: Item[int] = Item(keys.NEXT_PROPOSAL, int, default=1)
ADMIN_COUNT: StateMap[int] = StateMap(keys.ADMIN_COUNT, int)  # active admin keys per organisation
