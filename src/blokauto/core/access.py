"""Who may read what: the read policies every module query, event type and API route declares.

A ``Caller`` is the key that signed a request (``api.auth`` checks the signature), as the ledger
knows it at the newest block: a member key of an organisation with roles, a consortium node key,
or any other key (a holder, a device, a buyer). A policy answers for one caller and one object
(a query's parameters, an event) with a view of the state, and refuses with a ``ReadRefused``
whose code names what is missing::

    @module.query("history", HistoryQuery, read=VehicleData("vin", "history"))

    PUBLIC                  anyone, even unsigned (genesis, checkpoints, schemas)
    SIGNED                  any signed request (a route whose answer judges the rest itself)
    IDENTIFIED              any signed, known caller
    NODES                   consortium node keys only (the block log)
    Roles("maker", ...)     members holding one of the roles
    VehicleData(vin, cat)   the vehicle's holder (a key, or any key of a holding organisation), its
                            device keys, its maker, a lender with a lien on it, an organisation the
                            holder consented to for ``cat``, regulators and police
    HolderOf(vin)           the vehicle's holder only
    Own(field)              the key or organisation ``field`` names (org:<id> for an organisation)
    OrgOf(field)            members of the organisation ``field`` names
    Party(fn)               organisations ``fn(view, obj)`` names (supply-chain parties of a trace)
    AnyOf(p, q, ...)        the first that allows

Consortium node keys and the roles in ``READ_ALL`` (regulator, police) read everything but what is
for nodes only. The answer a policy gives depends only on the view it is shown and the caller: no
clock of its own. Consent is judged at the view's ``read_time`` if it has one (a node's reader sets
it to the later of the newest block's time and the node's clock, so a consent does not outlive its
``until`` on a quiet chain), else at the view's block ``time``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import msgspec

from .errors import AuthError

READ_ALL = frozenset({"regulator", "police"})
ORG_PREFIX = "org:"


class Caller(msgspec.Struct, frozen=True):
    """Who signed a request: ``did`` ("" unsigned), the organisation and roles of a member key,
    and whether it is a consortium node key."""

    did: str = ""
    org: str | None = None
    roles: frozenset[str] = frozenset()
    node: bool = False
    #: Whether the ledger knows the key (a node, an active member key, a vehicle holder); an unknown
    #: key reads only what a relation gives it (a device key, its vehicle) and is refused with 401.
    known: bool = True
    #: "revoked:<height>" or "rotated:<height>" for a member key no longer active ("" otherwise).
    status: str = ""

    @property
    def signed(self) -> bool:
        return bool(self.did)

    @property
    def reads_all(self) -> bool:
        return self.node or bool(self.roles & READ_ALL)

    def describe(self) -> str:
        if not self.did:
            return "an unsigned request"
        if self.node:
            return f"node key {self.did} of {self.org}"
        if self.org is not None:
            return f"{self.did} of {self.org} ({', '.join(sorted(self.roles)) or 'no role'})"
        return self.did

    def speaks_for(self, holder: str) -> bool:
        """Whether this caller is ``holder``: that key, or a member key of the organisation org:<id>."""
        if holder.startswith(ORG_PREFIX):
            return self.org is not None and self.org == holder[len(ORG_PREFIX):]
        return bool(self.did) and self.did == holder


ANONYMOUS = Caller()


# ---------------------------------------------------------------- refusals (403)

class ReadRefused(AuthError):
    """The caller is known, but may not read this."""

    code = "read_refused"
    template = "{caller} may not read {what}: {why}"


class NodeKeyRequired(ReadRefused):
    code = "node_key_required"
    template = ("{what} is for the consortium's nodes only, and {caller} is not a node key; sign with a node key "
                "of your organisation (DATA/keys/<org>-node), or read what you need through the queries.")


class RoleRequired(ReadRefused):
    code = "role_required"
    template = "{what} is read by members with the role {roles}; {caller} has none of them."


class ConsentRequired(ReadRefused):
    code = "consent_required"
    template = ("{what} is read by the vehicle {vin}'s holder, its maker, its devices, regulators and police, or an "
                "organisation its holder consented to for {category}; {caller} is none of these. Ask the holder "
                "to grant consent (blokauto consent grant {vin} --to ORG --category {category}).")


class NotYourData(ReadRefused):
    code = "not_your_data"
    template = "{what} is read by {owner} (and regulators); {caller} is not {owner}."


class NotAParty(ReadRefused):
    code = "not_a_party"
    template = ("{what} is read by the organisations that took part in it, regulators and police; {caller} is "
                "not one of them.")


class UnknownCaller(ReadRefused):
    """A key the ledger does not know, refused what no relation gives it (401: say who you are)."""

    code = "unknown_caller"
    template = ("{caller} is not a key this consortium knows (not a member, node or vehicle holder, nor a device "
                "key of what was asked), so it may not read {what}.")


def check_read(policy: "ReadPolicy", view: Any, caller: Caller, obj: Any, what: str) -> None:
    """``policy.check``, with a refusal of a key the ledger does not know turned into ``UnknownCaller``."""
    try:
        policy.check(view, caller, obj, what)
    except ReadRefused:
        if not caller.known:
            raise UnknownCaller(caller=caller.describe(), what=what) from None
        raise


# ---------------------------------------------------------------- the doors policies read through

@runtime_checkable
class VehicleRelations(Protocol):
    """Provided by the vehicles module: how a caller relates to a vehicle (for ``VehicleData``)."""

    def relation(self, state: Any, vin: str, did: str, org: str | None) -> str | None:
        """'holder', 'device', 'maker' or 'lender' (a lien), or None (also for an unknown VIN)."""
        ...

    def holds_any(self, view: Any, did: str) -> bool:
        """Whether the key holds the title of at least one vehicle."""
        ...


@runtime_checkable
class ConsentCheck(Protocol):
    def allows(self, state: Any, need: Callable[[type], Any], vin: str, org: str, category: str,
               now_ms: int) -> int | None: ...


# ---------------------------------------------------------------- policies

class ReadPolicy(Protocol):
    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        """Return if ``caller`` may read ``obj`` (query parameters, an event) in ``view``; else raise
        the ``ReadRefused`` naming what is missing. ``what`` names the thing in the refusal."""
        ...

    def describe(self) -> str: ...


def field_of(obj: Any, name: str) -> Any:
    """A field of a query's parameters (a Struct) or of an event (a dict)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


@dataclass(frozen=True)
class _Public:
    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        return None

    def describe(self) -> str:
        return "anyone"


@dataclass(frozen=True)
class _Identified:
    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if not caller.known:
            raise ReadRefused(what=what, caller=caller.describe(), why="it is not a key the consortium knows")

    def describe(self) -> str:
        return "any known key"


@dataclass(frozen=True)
class _Nodes:
    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if not caller.node:
            raise NodeKeyRequired(what=what, caller=caller.describe())

    def describe(self) -> str:
        return "consortium node keys"


@dataclass(frozen=True)
class _Signed:
    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if not caller.signed:
            raise ReadRefused(what=what, caller=caller.describe(), why="it is not signed")

    def describe(self) -> str:
        return "any signed request (what it may read is judged by what it asks)"


PUBLIC = _Public()
SIGNED = _Signed()
IDENTIFIED = _Identified()
NODES = _Nodes()


@dataclass(frozen=True)
class Roles:
    roles: frozenset[str]

    def __init__(self, *roles: str) -> None:
        object.__setattr__(self, "roles", frozenset(roles))

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if not (caller.reads_all or caller.roles & self.roles):
            raise RoleRequired(what=what, roles=" or ".join(sorted(self.roles)), caller=caller.describe())

    def describe(self) -> str:
        return f"members with role {' or '.join(sorted(self.roles))}, regulators, police"


@dataclass(frozen=True)
class VehicleData:
    """Data about the vehicle whose VIN is ``field`` of the object, in consent ``category``."""

    field: str
    category: str

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if caller.reads_all:
            return
        vin = field_of(obj, self.field)
        if not isinstance(vin, str):
            raise ConsentRequired(what=what, vin="?", category=self.category, caller=caller.describe())
        if view.need(VehicleRelations).relation(view, vin, caller.did, caller.org) is not None:
            return
        if caller.org is not None and view.need(ConsentCheck).allows(view, view.need, vin, caller.org, self.category,
                                                                     getattr(view, "read_time", view.time)) is not None:
            return
        raise ConsentRequired(what=what, vin=vin[:40], category=self.category, caller=caller.describe())

    def describe(self) -> str:
        return f"the vehicle's holder, devices, maker and lenders; consented organisations ({self.category})"


@dataclass(frozen=True)
class HolderOf:
    """Data only the holder of the vehicle whose VIN is ``field`` reads (and regulators, police)."""

    field: str

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        vin = field_of(obj, self.field)
        if caller.reads_all or (isinstance(vin, str) and view.need(VehicleRelations).relation(
                view, vin, caller.did, caller.org) == "holder"):
            return
        raise NotYourData(what=what, owner=f"the holder of {str(vin)[:40]}", caller=caller.describe())

    def describe(self) -> str:
        return "the vehicle's holder"


@dataclass(frozen=True)
class Own:
    """Data of the key or organisation (org:<id>) named by ``field``."""

    field: str

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        owner = field_of(obj, self.field)
        if caller.reads_all or (isinstance(owner, str) and caller.speaks_for(owner)):
            return
        raise NotYourData(what=what, owner=str(owner)[:120], caller=caller.describe())

    def describe(self) -> str:
        return f"the key or organisation named by {self.field}"


@dataclass(frozen=True)
class OrgOf:
    """Data of the organisation whose id is ``field``."""

    field: str

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        org = field_of(obj, self.field)
        if caller.reads_all or (caller.org is not None and caller.org == org):
            return
        raise NotYourData(what=what, owner=f"organisation {str(org)[:80]}", caller=caller.describe())

    def describe(self) -> str:
        return f"members of the organisation named by {self.field}"


@dataclass(frozen=True)
class Party:
    """Data the parties ``parties(view, obj)`` names took part in (a supply-chain trace): organisation
    ids (a member key of one reads) and keys."""

    parties: Callable[[Any, Any], set[str]]
    label: str = "the parties"

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        if caller.reads_all:
            return
        named = self.parties(view, obj)
        if (caller.org is not None and caller.org in named) or (caller.did and caller.did in named):
            return
        raise NotAParty(what=what, caller=caller.describe())

    def describe(self) -> str:
        return self.label


@dataclass(frozen=True)
class AnyOf:
    """Allowed by any of ``policies``; refused with the first one's refusal."""

    policies: tuple[ReadPolicy, ...]

    def __init__(self, *policies: ReadPolicy) -> None:
        object.__setattr__(self, "policies", policies)

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        first: ReadRefused | None = None
        for p in self.policies:
            try:
                p.check(view, caller, obj, what)
                return
            except ReadRefused as err:
                first = first or err
        assert first is not None
        raise first

    def describe(self) -> str:
        return "; or ".join(p.describe() for p in self.policies)
