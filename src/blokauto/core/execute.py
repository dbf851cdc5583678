"""The state transition: (state, block of checked transactions) -> receipts and writes.

Pure: no I/O, no clock but the block's, no randomness, no floats. For each transaction, in order:

1. it is for this chain;
2. it has not expired at the block time, and its expiry is within ``max_tx_ttl_ms`` of it;
3. its id was not accepted before (the replay window holds every id that has not expired);
4. its message type is known;
5. no signer is a revoked key; the sender holds a role allowed to send the message;
6. every party the message requires has signed, and nobody else has;
7. the module's handler accepts it.

A transaction failing 1-7 still gets a receipt with a stable error code and changes nothing
(from step 4 on, its id is consumed, so the failed attempt itself cannot be replayed later).
A transaction whose signatures failed to verify is recorded too, but does not consume its id,
so nobody can block a genuine transaction by first publishing it with a forged signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from .encoding import canonical, to_builtins
from .errors import (
    BlokautoError,
    HandlerError,
    ExpiryTooFar,
    MissingCosigner,
    ReplayedTx,
    RevokedKey,
    RoleNotAllowed,
    TxExpired,
    UnexpectedSigner,
    UnknownMessage,
    UnknownSigner,
    WrongChain,
)
from .block import Receipt
from .module import ANYONE, MEMBER, Context, IndexTable, MessageSpec, SignerInfo
from .registry import Registry
from .state import Overlay, StateReader
from .tx import CheckedTx


class RefusedTx(msgspec.Struct, frozen=True):
    """A transaction that failed the stateless checks but was ordered anyway (a faulty peer
    published it); it is recorded with its error and changes nothing."""

    id: bytes
    raw: bytes
    code: str
    detail: dict[str, Any]


BlockTx = CheckedTx | RefusedTx

#: Plain Python errors a buggy handler can raise on some input. They fail that transaction with
#: ``handler_error`` instead of stopping the chain (MemoryError and the like still stop it).
HANDLER_BUGS = (ValueError, KeyError, IndexError, TypeError, AttributeError, ArithmeticError, AssertionError,
                msgspec.ValidationError)

#: Codes the stateless checks of a block's transactions give (without a wall clock): a receipt with
#: one of them belongs to a ``RefusedTx`` and is rebuilt as one when blocks are replayed.
STATELESS_CODES = frozenset({
    "malformed_tx", "tx_too_large", "unknown_message", "wrong_chain", "bad_signature", "missing_signature",
    "duplicate_signer", "invalid_key",
})


class Window(Protocol):
    """Where execution learns whether an id was consumed before. Only ids that have not expired
    matter (expiry is checked first), so a window may forget expired ids whenever it likes."""

    def height_of(self, txid: bytes) -> int | None: ...

    def add(self, txid: bytes, expires: int, height: int) -> None: ...

    def prune(self, time: int) -> None:
        """Called before each block with its time."""


class ReplayWindow:
    """Ids of included transactions that have not expired, in memory: a transaction is accepted once.

    Bounded: an id leaves once the block time passes its expiry, and expiries are at most
    ``max_tx_ttl_ms`` past the block time that included them.
    """

    _BUCKET_MS = 60_000

    def __init__(self) -> None:
        self._ids: dict[bytes, int] = {}  # id -> height it was included at
        self._buckets: dict[int, list[bytes]] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, txid: bytes) -> bool:
        return txid in self._ids

    def height_of(self, txid: bytes) -> int | None:
        return self._ids.get(txid)

    def add(self, txid: bytes, expires: int, height: int) -> None:
        self._ids[txid] = height
        self._buckets.setdefault(expires // self._BUCKET_MS, []).append(txid)

    def prune(self, time: int) -> None:
        """Forget ids that expired before ``time`` (expiry is checked before replay, so when an
        id is forgotten cannot change any receipt)."""
        limit = time // self._BUCKET_MS
        for b in [b for b in self._buckets if b < limit]:
            for txid in self._buckets.pop(b):
                self._ids.pop(txid, None)

    def copy(self) -> "ReplayWindow":
        other = ReplayWindow()
        other._ids = dict(self._ids)
        other._buckets = {b: list(ids) for b, ids in self._buckets.items()}
        return other


@dataclass
class BlockResult:
    receipts: list[Receipt]
    receipt_bytes: list[bytes]
    writes: dict[bytes, bytes | None]
    index_ops: list[tuple[IndexTable, bool, dict[str, Any], int]] = field(default_factory=list)
    accepted: list[tuple[bytes, int, int]] = field(default_factory=list)  # (id, expires, index) consumed


class SignerCache:
    """Directory answers kept between transactions: cleared as soon as a transaction writes a key
    the directory watches, so a cached answer is always the one a fresh lookup would give."""

    __slots__ = ("_infos", "_watched")

    def __init__(self, watched: tuple[bytes, ...]) -> None:
        self._infos: dict[str, SignerInfo | None] = {}
        self._watched = watched

    def lookup(self, directory: Any, state: StateReader, did: str) -> SignerInfo | None:
        try:
            return self._infos[did]
        except KeyError:
            if len(self._infos) > 100_000:
                self._infos.clear()
            info = self._infos[did] = directory.signer(state, did)
            return info

    def note_writes(self, writes: dict[bytes, bytes | None]) -> None:
        watched = self._watched
        if any(k.startswith(watched) for k in writes):
            self._infos.clear()

    def clear(self) -> None:
        self._infos.clear()


def authorise(registry: Registry, state: StateReader, ctx: Context, spec: MessageSpec, checked: CheckedTx,
              cache: SignerCache | None = None) -> None:
    """Steps 5-6: signer status, sender role, required co-signers, no stray signers."""
    directory = registry.directory
    signers = ctx.signers
    infos: dict[str, SignerInfo | None] = {}
    for did in signers:
        info = directory.signer(state, did) if cache is None else cache.lookup(directory, state, did)
        if info is not None and not info.active:
            raise RevokedKey(signer=did, status=info.status, since=info.since)
        infos[did] = info
    sender_info = infos.get(ctx.sender)
    ctx.member = sender_info
    if spec.roles != ANYONE:
        if sender_info is None:
            raise UnknownSigner(signer=ctx.sender)
        if spec.roles != MEMBER and not (sender_info.roles & spec.roles):  # type: ignore[operator]
            raise RoleNotAllowed(type=spec.type, allowed=spec.describe_roles(), signer=ctx.sender,
                                 org=sender_info.org, roles=", ".join(sorted(sender_info.roles)) or "no roles")
    used = {ctx.sender}
    if spec.cosigners is not None:
        for party in spec.cosigners(state, ctx, checked.tx.body.msg):
            matched = [d for d in signers if party.satisfied_by(d, infos[d])]
            if not matched:
                raise MissingCosigner(type=spec.type, party=party.describe())
            used.update(matched)
    for did in signers:
        if did not in used:
            raise UnexpectedSigner(signer=did, type=spec.type)


def _failure(txid: bytes, err: BlokautoError) -> Receipt:
    return Receipt(tx=txid.hex(), ok=False, code=err.code, detail=to_builtins(err.detail))


def execute_tx(registry: Registry, state: Overlay, window: Window, *, chain: str, height: int,
               time: int, params: dict[str, int], checked: CheckedTx,
               index_ops: list, tx_index: int, cache: SignerCache | None = None) -> tuple[Receipt, int | None]:
    """Run steps 1-7 for one transaction. Returns its receipt and, when its id was consumed,
    its expiry (the caller adds it to the replay window)."""
    tx = checked.tx
    body = tx.body
    txid = checked.id
    try:
        if body.chain != chain:
            raise WrongChain(got=body.chain, expected=chain)
        if body.expires < time:
            raise TxExpired(expires=body.expires, now=time)
        if body.expires - time > params["max_tx_ttl_ms"]:
            raise ExpiryTooFar(ttl_ms=body.expires - time, max_ttl_ms=params["max_tx_ttl_ms"])
        seen = window.height_of(txid)
        if seen is not None:
            raise ReplayedTx(tx_id=txid.hex(), height=seen)
    except BlokautoError as err:
        return _failure(txid, err), None
    msg = body.msg
    ctx = Context(registry, chain, height, time, txid, body.sender, tuple(s.signer for s in tx.sigs), params)
    overlay = Overlay(state)
    tag = msg.__struct_config__.tag
    try:
        spec = registry.messages.get(tag)
        if spec is None:
            raise UnknownMessage(type=tag)
        authorise(registry, overlay, ctx, spec, checked, cache)
        spec.handler(overlay, ctx, msg)
    except BlokautoError as err:
        return _failure(txid, err), body.expires
    except HANDLER_BUGS as exc:  # deterministic for the same input on every node: record, do not halt
        return _failure(txid, HandlerError(type=tag, error=type(exc).__name__)), body.expires
    state.writes.update(overlay.writes)
    if cache is not None:
        cache.note_writes(overlay.writes)
    for table, put, row in ctx.index_ops:
        index_ops.append((table, put, row, tx_index))
    events = [to_builtins(e) for e in ctx.events]
    return Receipt(tx=txid.hex(), ok=True, events=events), body.expires


def execute_block(registry: Registry, reader: StateReader, window: Window, *, chain: str,
                  height: int, time: int, txs: list[BlockTx], signer_cache: SignerCache | None = None) -> BlockResult:
    """Execute ``txs`` in order over ``reader``; the window is updated in place. ``signer_cache``
    may carry directory answers over from earlier blocks (it is kept correct as this one writes)."""
    state = Overlay(reader)
    cache = signer_cache if signer_cache is not None else SignerCache(registry.directory.watched)
    params = registry.read_params(state)
    window.prune(time)
    receipts: list[Receipt] = []
    index_ops: list = []
    accepted: list[tuple[bytes, int, int]] = []
    for i, item in enumerate(txs):
        if isinstance(item, RefusedTx):
            receipt = Receipt(tx=item.id.hex(), ok=False, code=item.code, detail=item.detail)
        else:
            receipt, expires = execute_tx(registry, state, window, chain=chain, height=height, time=time,
                                          params=params, checked=item, index_ops=index_ops, tx_index=i, cache=cache)
            if expires is not None:
                window.add(item.id, expires, height)
                accepted.append((item.id, expires, i))
        receipts.append(receipt)
    return BlockResult(receipts, [canonical(r) for r in receipts], state.writes, index_ops, accepted)
