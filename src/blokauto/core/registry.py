"""The set of modules a chain runs, wired together: messages, codec, parameters, providers."""

from __future__ import annotations

import re
from typing import Any, Iterable, TypeVar

from .block import Genesis
from .errors import InvalidParameter
from .module import Context, Directory, HistoryChain, IndexTable, MessageSpec, Module, ParamSpec, QuerySpec
from .state import Item, Overlay, StateReader
from .tx import TxCodec

T = TypeVar("T")

CORE_PARAMS = (
    ParamSpec("max_tx_bytes", 65_536, 1_024, 1_048_576, "Largest transaction accepted, in bytes."),
    ParamSpec("max_tx_ttl_ms", 3_600_000, 1_000, 7 * 24 * 3_600_000,
              "How long after the block time a transaction may stay valid; bounds the replay window."),
    ParamSpec("max_block_txs", 10_000, 1, 100_000, "Most transactions in one block."),
)

PARAMS: Item[dict[str, int]] = Item("chain/params", dict[str, int], default=dict)
#: The key of a keyed parameter (``<name>:<key>``): what a material or other identifier may be.
PARAM_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Registry:
    """All modules of a chain. Built once; read-only afterwards."""

    def __init__(self, modules: Iterable[Module]) -> None:
        self.modules: dict[str, Module] = {}
        self.messages: dict[str, MessageSpec] = {}
        self.queries: dict[tuple[str, str], QuerySpec] = {}
        self.indexes: list[IndexTable] = []
        self.chains: dict[str, HistoryChain] = {}  # index table name -> the hash chain its rows form
        self.params: dict[str, ParamSpec] = {p.name: p for p in CORE_PARAMS}
        self._providers: dict[type, Any] = {}
        self.expanders: dict[str, Any] = {}
        self.event_reads: dict[str, Any] = {}  # event type -> its ReadPolicy (core.access)
        for m in modules:
            if m.name in self.modules:
                raise ValueError(f"module {m.name} registered twice")
            self.modules[m.name] = m
            self.messages.update(m.messages)
            self.queries.update({(m.name, q): spec for q, spec in m.queries.items()})
            self.indexes.extend(m.indexes)
            self.chains.update({c.table.name: c for c in m.chains})
            for p in m.params:
                if p.name in self.params:
                    raise ValueError(f"parameter {p.name} declared twice")
                self.params[p.name] = p
            for door, impl in m.provides.items():
                if door in self._providers:
                    raise ValueError(f"{door.__name__} is provided by two modules")
                self._providers[door] = impl
            self.expanders.update(m.expanders)
            self.event_reads.update(m.event_reads)
        self.codec = TxCodec({t: s.struct for t, s in self.messages.items()},
                             {t: s.new_keys for t, s in self.messages.items() if s.new_keys is not None})
        self.directory: Directory = self.provider(Directory)

    def provider(self, protocol: type[T]) -> T:
        """The implementation of ``protocol``: the one a module wired for it (its declared door), or
        any provided object that satisfies it structurally (a module declares what it needs;
        another one has it)."""
        impl = self._providers.get(protocol)
        if impl is None:
            impl = next((o for o in self._providers.values() if isinstance(o, protocol)), None)
            if impl is None:
                raise LookupError(f"no module provides {protocol.__name__}")
            self._providers[protocol] = impl
        return impl

    def read_params(self, state: StateReader) -> dict[str, int]:
        """Every parameter's value: the unkeyed ones with their defaults, and each key of a keyed
        family that was ever set (``Context.param(name, key)`` reads the others as the default)."""
        values = {name: p.default for name, p in self.params.items() if not p.keyed}
        values.update(PARAMS.get(state))
        return values

    def check_param(self, name: str, value: int) -> None:
        base, keyed, key = name.partition(":")
        spec = self.params.get(base)
        if spec is None or bool(keyed) != bool(spec.keyed):
            known = ", ".join(sorted(f"{n}:<{p.keyed}>" if p.keyed else n for n, p in self.params.items()))
            raise InvalidParameter(name=name[:120], reason=f"is unknown; known: {known}")
        if keyed and not PARAM_KEY.fullmatch(key):
            raise InvalidParameter(name=name[:120], reason=f"needs a {spec.keyed} after the colon: letters, digits, "
                                                           "'.', '_' or '-', at most 64")
        if not spec.min <= value <= spec.max:
            raise InvalidParameter(name=name, reason=f"must be between {spec.min} and {spec.max}, not {value}")

    def set_param(self, state: Overlay, name: str, value: int) -> None:
        self.check_param(name, value)
        current = dict(PARAMS.get(state))
        current[name] = value
        PARAMS.put(state, current)

    def apply_genesis(self, state: Overlay, genesis: Genesis) -> list[tuple[IndexTable, bool, dict[str, Any], int]]:
        """Write the genesis state; returns the index rows it derives (block 0 has no txs)."""
        for name, value in sorted(genesis.params.items()):
            self.set_param(state, name, value)
        ctx = Context(self, genesis.chain, 0, genesis.time, bytes(32), "", (), self.read_params(state))
        for m in self.modules.values():
            if m.genesis is not None:
                m.genesis(state, ctx, genesis)
        return [(table, put, row, 0) for table, put, row in ctx.index_ops]
