"""The module framework: a domain module declares itself once, the framework does the rest.

A ``Module`` declares its messages (a Struct, a handler, which roles may send it and which
parties must co-sign), its events, parameters, derived index tables, queries, and its *doors*:
the typed Protocols through which other modules and the outer layers (reports, the node) read
its state, each wired to one implementation with ``Module.provide`` in the module's package
``__init__`` and reached through ``Registry.provider``. The framework checks signers and roles
before calling a handler, so handlers hold only domain rules; the API, CLI and SDK are generated
from these declarations.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import Any, Callable, Final, Iterable, Protocol, TypeVar, runtime_checkable

import msgspec

from .access import ReadPolicy
from .encoding import Uint
from .state import Overlay, StateReader
from .tx import Message

ANYONE: Final = "anyone"
"""Any valid key may send (vehicle owners, buyers, devices); revoked member keys still may not."""

MEMBER: Final = "member"
"""Any active member key of any organisation."""

T = TypeVar("T")
MessageT = TypeVar("MessageT", bound=Message)


class Event(msgspec.Struct, tag_field="type", frozen=True, kw_only=True, gc=False):
    """Base of every event. Subclasses set ``tag="module.event_name"``."""


class SignerInfo(msgspec.Struct, frozen=True, gc=False):
    """What the consortium knows about a key that belongs to an organisation."""

    did: str
    org: str
    roles: frozenset[str]
    status: str  # "active", "revoked" or "rotated"
    since: int  # height of the last status change

    @property
    def active(self) -> bool:
        return self.status == "active"


@runtime_checkable
class Directory(Protocol):
    """Who a key is: provided by the governance module, used to authorise every transaction.
    ``watched`` are the state key prefixes whose changes can change an answer."""

    watched: tuple[bytes, ...]

    def signer(self, state: StateReader, did: str) -> SignerInfo | None: ...


class Party(Protocol):
    """Someone who must co-sign a transaction."""

    def satisfied_by(self, did: str, info: SignerInfo | None) -> bool: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class KeyParty:
    """That exact key (an owner, a buyer, a device, a key proving possession)."""

    did: str
    label: str = ""

    def satisfied_by(self, did: str, info: SignerInfo | None) -> bool:
        return did == self.did

    def describe(self) -> str:
        return f"{self.label} {self.did}".strip()


@dataclass(frozen=True)
class OrgParty:
    """Any active key of organisation ``org`` holding ``role`` (any role when empty)."""

    org: str
    role: str = ""
    label: str = ""

    def satisfied_by(self, did: str, info: SignerInfo | None) -> bool:
        return (info is not None and info.active and info.org == self.org
                and (not self.role or self.role in info.roles))

    def describe(self) -> str:
        who = f"a {self.role} key of organisation {self.org!r}" if self.role else f"a key of organisation {self.org!r}"
        return f"{self.label} ({who})" if self.label else who


@dataclass(frozen=True)
class EitherParty:
    """Any one of ``parties`` (the holder or the maker of a vehicle, say)."""

    parties: tuple[Party, ...]

    def satisfied_by(self, did: str, info: SignerInfo | None) -> bool:
        return any(p.satisfied_by(did, info) for p in self.parties)

    def describe(self) -> str:
        return " or ".join(p.describe() for p in self.parties)


Handler = Callable[[Overlay, "Context", Any], None]
Cosigners = Callable[[StateReader, "Context", Any], Iterable[Party]]


@dataclass(frozen=True)
class MessageSpec:
    type: str
    struct: type[Message]
    handler: Handler
    roles: frozenset[str] | str  # a set of roles, or ANYONE / MEMBER
    cosigners: Cosigners | None
    doc: str
    module: str
    new_keys: Callable[[Any], list[str]] | None = None

    def describe_roles(self) -> str:
        if isinstance(self.roles, str):
            return self.roles
        return " or ".join(sorted(self.roles))


@dataclass(frozen=True)
class ParamSpec:
    """A chain parameter: integer, bounded, changed only by a governance vote."""

    name: str
    default: int
    min: int
    max: int
    doc: str
    #: A keyed parameter is a family: ``<name>:<key>`` (say ``attestation_required:cobalt``) is set
    #: per key; a key never set reads ``default``. ``keyed`` describes what the key names.
    keyed: str = ""


@dataclass(frozen=True)
class IndexTable:
    """A derived SQL table written by handlers and rebuilt by replaying blocks.

    ``columns`` are (name, SQL type) pairs with types TEXT, INTEGER or BLOB; ``key`` is the
    primary key; ``lookups`` are extra indexes for queries.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    lookups: tuple[tuple[str, ...], ...] = ()

    @functools.cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.columns)


@dataclass(frozen=True)
class HistoryChain:
    """Index rows that form, per parent (a vehicle, a part), the hash chain a state record commits to.

    A read of ``table`` by exactly its ``parent`` columns is checked before it is served: all the
    parent's rows, in ``seq`` order, must hash (``TAG_HISTORY``, as the record's head was built) to
    the ``(count, head)`` that ``committed(view, parent_values)`` reads from state. A row changed,
    added, moved or removed fails the check, so an index read is as trustworthy as a state proof.
    """

    table: IndexTable
    parent: tuple[str, ...]
    seq: str
    entry: str
    committed: Callable[[Any, tuple], "tuple[int, str] | None"]


class QueryView(Protocol):
    """What a query may read: state values and index rows (never writes)."""

    height: int  # the block the view reads the state of (-1: none yet)
    time: int  # that block's time (ms; -1: none yet): "now" for a query
    # A node's reader also sets ``read_time``: when read policies judge (the later of ``time`` and the
    # node's clock; core.access). Handlers never see it: what is committed stays clock-free.

    def get(self, key: bytes) -> bytes | None: ...

    def rows(self, table: IndexTable, where: dict[str, Any], *, order: tuple[str, ...] = (),
             limit: int = 100, offset: int = 0, descending: bool = False) -> list[dict[str, Any]]: ...

    def count(self, table: IndexTable, where: dict[str, Any]) -> int: ...

    def sql(self, text: str, args: Any = (), **tables: IndexTable) -> list[tuple]:
        """A read-only SQL query; ``{name}`` in ``text`` is replaced by the table passed as ``name``."""
        ...

    def need(self, protocol: type[T]) -> T: ...


class Page(msgspec.Struct, kw_only=True):
    """Paging parameters of a query that lists: at most ``limit`` items (capped by the query's
    declared maximum, see ``size``) from ``offset``. A query's parameters subclass it (and may
    set another default ``limit``)."""

    limit: Uint = 100
    offset: Uint = 0

    def size(self, maximum: int) -> int:
        """``limit``, at most ``maximum`` (a module constant of the query)."""
        return min(self.limit, maximum)


@dataclass(frozen=True)
class QuerySpec:
    name: str
    func: Callable[..., Any]
    params: type[msgspec.Struct] | None
    doc: str
    module: str
    read: ReadPolicy
    proof_keys: Callable[[Any], list[bytes]] | None = None


@dataclass
class Module:
    """One domain: ``governance = Module("governance", "Organisations, keys, votes")``."""

    name: str
    doc: str
    messages: dict[str, MessageSpec] = field(default_factory=dict)
    events: dict[str, type[Event]] = field(default_factory=dict)
    queries: dict[str, QuerySpec] = field(default_factory=dict)
    indexes: list[IndexTable] = field(default_factory=list)
    chains: list[HistoryChain] = field(default_factory=list)
    params: list[ParamSpec] = field(default_factory=list)
    provides: dict[type, Any] = field(default_factory=dict)
    #: Who may read each event type on the event stream (``reads``); an undeclared one goes to nobody
    #: but nodes, regulators and police.
    event_reads: dict[str, ReadPolicy] = field(default_factory=dict)
    genesis: Callable[[Overlay, "Context", Any], None] | None = None
    expanders: dict[str, Callable[[Any, dict[str, Any]], list[dict[str, Any]]]] = field(default_factory=dict)

    def expander(self, event_type: str) -> Callable[[Callable], Callable]:
        """Derived events a node adds after ``event_type`` on its event stream (for example one
        notification per affected vehicle owner after a recall opens). They are computed from
        derived indexes at the event's height, so every node derives the same ones, but they are
        not part of receipts or state."""

        def register(fn: Callable) -> Callable:
            self.expanders[event_type] = fn
            return fn

        return register

    def message(self, struct: type[MessageT], *, roles: Iterable[str] | str, cosigners: Cosigners | None = None,
                new_keys: Callable[[Any], list[str]] | None = None) -> Callable[[Handler], Handler]:
        """Declare a message. ``new_keys(msg)`` lists keys it registers: they are checked (canonical,
        not of small order, in the prime-order subgroup) with the signatures, before ordering."""
        tag = struct.__struct_config__.tag
        if not isinstance(tag, str) or not tag.startswith(self.name + "."):
            raise TypeError(f"{struct.__name__} needs tag='{self.name}.<name>'")
        role_set: frozenset[str] | str = roles if isinstance(roles, str) else frozenset(roles)

        def register(handler: Handler) -> Handler:
            self.messages[tag] = MessageSpec(tag, struct, handler, role_set, cosigners,
                                             (handler.__doc__ or struct.__doc__ or "").strip(), self.name, new_keys)
            return handler

        return register

    def event(self, cls: type[Event]) -> type[Event]:
        tag = cls.__struct_config__.tag
        if not isinstance(tag, str) or not tag.startswith(self.name + "."):
            raise TypeError(f"{cls.__name__} needs tag='{self.name}.<name>'")
        self.events[tag] = cls
        return cls

    def query(self, name: str, params: type[msgspec.Struct] | None = None, *, read: ReadPolicy,
              proof_keys: Callable[[Any], list[bytes]] | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Declare a query; ``read`` says who may ask it (``core.access``), checked against the same
        state the query reads."""
        def register(func: Callable[..., T]) -> Callable[..., T]:
            self.queries[name] = QuerySpec(name, func, params, (func.__doc__ or "").strip(), self.name, read,
                                           proof_keys)
            return func

        return register

    def reads(self, policy: ReadPolicy, *event_types: str) -> None:
        """Declare who may read events of ``event_types`` (committed or derived) on the event stream."""
        for t in event_types:
            if not t.startswith(self.name + "."):
                raise TypeError(f"event type {t!r} is not of module {self.name}")
            if t in self.event_reads:
                raise ValueError(f"module {self.name} declares who reads {t} twice")
            self.event_reads[t] = policy

    def index(self, name: str, columns: Iterable[tuple[str, str]], key: Iterable[str],
              lookups: Iterable[Iterable[str]] = ()) -> IndexTable:
        table = IndexTable(f"ix_{self.name}_{name}", tuple(columns), tuple(key), tuple(tuple(x) for x in lookups))
        self.indexes.append(table)
        return table

    def history_chain(self, table: IndexTable, *, parent: Iterable[str], seq: str, entry: str,
                      committed: Callable[[Any, tuple], tuple[int, str] | None]) -> HistoryChain:
        """Declare that ``table``'s rows per parent are the hash chain a state record commits to."""
        chain = HistoryChain(table, tuple(parent), seq, entry, committed)
        self.chains.append(chain)
        return chain

    def param(self, name: str, default: int, *, min: int, max: int, doc: str, keyed: str = "") -> ParamSpec:
        """Declare a chain parameter; ``keyed`` (what the key names) makes it a family set per key,
        ``<name>:<key>`` (a key never set reads ``default``)."""
        spec = ParamSpec(name, default, min, max, doc, keyed)
        self.params.append(spec)
        return spec

    def provide(self, door: type[T], impl: T) -> T:
        """Wire ``impl`` as this module's implementation of ``door``, a ``runtime_checkable``
        Protocol; refused if ``impl`` lacks one of its members or the door is wired twice."""
        if not getattr(door, "_is_runtime_protocol", False):
            raise TypeError(f"{door.__name__} is not a runtime_checkable Protocol")
        if door in self.provides:
            raise ValueError(f"module {self.name} provides {door.__name__} twice")
        if not isinstance(impl, door):
            missing = sorted(m for m in _protocol_members(door) if not hasattr(impl, m))
            raise TypeError(f"{type(impl).__name__} does not implement {door.__name__} (lacks {', '.join(missing)})")
        self.provides[door] = impl
        return impl


def _protocol_members(protocol: type) -> set[str]:
    members = getattr(protocol, "__protocol_attrs__", None)  # Python 3.12+
    if members is None:
        from typing import _get_protocol_attrs  # type: ignore[attr-defined]

        members = _get_protocol_attrs(protocol)
    return set(members)


class Context:
    """What a handler knows about the transaction it is executing (no clock but the block's)."""

    __slots__ = ("chain", "height", "time", "tx_id", "sender", "signers", "member", "params",
                 "events", "index_ops", "_registry")

    def __init__(self, registry: Any, chain: str, height: int, time: int, tx_id: bytes, sender: str,
                 signers: tuple[str, ...], params: dict[str, int]) -> None:
        self._registry = registry
        self.chain = chain
        self.height = height
        self.time = time
        self.tx_id = tx_id
        self.sender = sender
        self.signers = signers
        self.member: SignerInfo | None = None
        self.params = params
        self.events: list[Event] = []
        self.index_ops: list[tuple[IndexTable, bool, dict[str, Any]]] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def index_put(self, table: IndexTable, **row: Any) -> None:
        self.index_ops.append((table, True, row))

    def index_delete(self, table: IndexTable, **key: Any) -> None:
        self.index_ops.append((table, False, key))

    def need(self, protocol: type[T]) -> T:
        """The implementation of ``protocol`` another module provides."""
        return self._registry.provider(protocol)

    def param(self, name: str, key: str | None = None) -> int:
        """A parameter's value; for a keyed one, ``key``'s value (its default when never set)."""
        if key is None:
            return self.params[name]
        return self.params.get(f"{name}:{key}", self._registry.params[name].default)

    def check_param(self, name: str, value: int) -> None:
        self._registry.check_param(name, value)

    def set_param(self, state: Overlay, name: str, value: int) -> None:
        """Change a chain parameter (takes effect from the next block)."""
        self._registry.set_param(state, name, value)
