"""Read side of a node: transactions with inclusion proofs, blocks, checkpoints, state with
proofs, module queries and event history. Used by the HTTP API and by the CLI on a data folder.

A node never serves what it cannot prove: every answer is checked against what the node
committed before it leaves (a block against its header, links and attestations; a transaction
and its receipt against the header's roots; a state value against its proof and the header's
state root; index rows against their check hashes). Damage raises ``DamagedData``, which the API
turns into ``integrity_failure`` and an unhealthy node; known damage is refused at once.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Collection, Iterator

import msgspec

from ..core import merkle, smt
from ..core.access import Caller, ReadPolicy, ReadRefused, VehicleRelations, check_read
from ..core.block import Checkpoint, Header, NodeSignature, Receipt
from ..core.encoding import decode, to_builtins
from ..core.errors import BadEventId, NotFound, QueryParamsInvalid, UnknownTx
from ..core.registry import Registry
from ..modules.governance import GovernanceReader
from ..store.blocks import BlockLog, StoredBlock
from ..store.state import StateStore
from .faults import IntegrityFault
from .health import Health
from .integrity import checked_attestations, tx_id_of, verify_block


MAX_PARAM_CHARS = 8_192  # one query parameter's value (a recall scope as JSON fits many times over)


class _NoGenesis:
    @staticmethod
    def node_keys() -> dict[str, str]:
        return {}


_NO_GENESIS = _NoGenesis()


def event_id(height: int, tx_index: int, event_index: int, derived: int = 0) -> str:
    """``height:tx:event``, and ``height:tx:event:k`` for the k-th event a node derives from it."""
    return f"{height}:{tx_index}:{event_index}" + (f":{derived}" if derived else "")


#: An event position (transaction, event, derived event) after every event of its block.
AFTER_BLOCK = (1 << 62, 1 << 62, 1 << 62)


_DIGITS = re.compile(r"0|[1-9][0-9]{0,18}", re.ASCII)
MAX_EVENT_HEIGHT = 2**53 - 1


def parse_event_id(value: str) -> tuple[int, int, int, int]:
    """``height:tx:event[:derived]`` (an event the client saw), or a bare ``height`` (after that block)."""
    fields = value.split(":")
    # ASCII digits only (int() would take " 7", "+7", "1_0" and other scripts' digits); a height is
    # below 2^53 as everywhere in the API, positions within a block below 2^62
    if (len(fields) not in (1, 3, 4) or not all(_DIGITS.fullmatch(f) for f in fields)
            or int(fields[0]) > MAX_EVENT_HEIGHT or max(int(f) for f in fields) >= 2**62):
        raise BadEventId(value=value[:80])
    parts = [int(f) for f in fields]
    if len(parts) == 1:
        return (parts[0], *AFTER_BLOCK)
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 0)


class ChainReader:
    VERIFIED_HEADERS = 4096  # headers kept after a full check of their block

    def __init__(self, registry: Registry, blocks: BlockLog, state: StateStore, *, health: Health | None = None,
                 node_keys: Callable[[], Collection[str]] | None = None, own_node: str | None = None,
                 attestations: Callable[[int], list[NodeSignature]] | None = None) -> None:
        """``attestations(height)``: how checkpoints read a block's attestations (a networked node's
        ``CheckpointService`` waits for a quorum first); the block log's by default."""
        self.registry = registry
        self.blocks = blocks
        self._attestations = attestations or blocks.attestations
        self.state = state
        self.health = health
        self.node_keys = node_keys or (lambda: (blocks.genesis() or _NO_GENESIS).node_keys())
        self._verified: OrderedDict[int, Header] = OrderedDict()
        self.own_node = own_node  # a solo node's key: its attestation of every block must be there

    # ---------------------------------------------------------------- blocks and checkpoints

    def _verified_block(self, height: int) -> StoredBlock:
        if not 0 <= height < 2**63:
            raise NotFound(what="Block", key=str(height))
        if self.health is not None:
            self.health.check_block(height)
        b = verify_block(self.blocks, height, self.node_keys(), self.own_node)
        if b is None:
            if height <= self.blocks.height():
                raise IntegrityFault("the block log", f"block {height}", "it is missing below the last block",
                                     scope="block", height=height)
            raise NotFound(what="Block", key=str(height))
        self._remember(b.header)
        return b

    def _remember(self, header: Header) -> None:
        self._verified[header.height] = header
        self._verified.move_to_end(header.height)
        if len(self._verified) > self.VERIFIED_HEADERS:
            self._verified.popitem(last=False)

    def header(self, height: int) -> Header:
        """The header at ``height``, checked with its whole block the first time it is read."""
        header = self._verified.get(height)
        if header is None:
            return self._verified_block(height).header
        if self.health is not None:
            self.health.check_block(height)
        return header

    def attestations(self, header: Header) -> list[NodeSignature]:
        """The stored attestations of ``header`` (after the quorum wait); each is checked, and a bad one is damage."""
        atts = self._attestations(header.height)
        if self.own_node is not None and not any(a.node == self.own_node for a in atts):
            raise IntegrityFault("the block log", f"block {header.height}",
                                 "this node's own attestation of it is missing", scope="block", height=header.height)
        for att, ok in checked_attestations(atts, header.hash()):
            if not ok:
                raise IntegrityFault("the block log", f"block {header.height}",
                                     f"the stored attestation by {att.node} does not verify", scope="block",
                                     height=header.height)
        return atts

    def checkpoint(self, height: int) -> Checkpoint:
        header = self.header(height)
        return Checkpoint(header, self.attestations(header))

    def block(self, height: int, *, full: bool = False) -> dict[str, Any]:
        b = self._verified_block(height)
        out: dict[str, Any] = {
            "height": height,
            "hash": b.hash.hex(),
            "header": to_builtins(b.header),
            "tx_ids": [i.hex() for i in b.ids],
            "attestations": to_builtins(self.attestations(b.header)),
        }
        if full:
            out["txs"] = [msgspec.json.decode(t) for t in b.txs]
            out["receipts"] = [msgspec.json.decode(r) for r in b.receipts]
        return out

    # ---------------------------------------------------------------- transactions

    def tx(self, txid: bytes, location: tuple[int, int] | None) -> dict[str, Any]:
        """A committed transaction, its receipt, and both inclusion proofs with the checkpoint."""
        if location is None:
            raise UnknownTx(tx_id=txid.hex())
        height, index = location
        header = self.header(height)
        b = self.blocks.block(height)
        if b is None:
            raise UnknownTx(tx_id=txid.hex())
        if not (0 <= index < len(b.txs)) or index >= len(b.ids) or b.ids[index] != txid \
                or tx_id_of(b.txs[index]) != txid:
            raise IntegrityFault("the transaction index", f"transaction {txid.hex()}",
                                 f"it points at transaction {index} of block {height}, which is another one",
                                 scope="state")
        return tx_evidence(b, index, self.attestations(header), header)

    # ---------------------------------------------------------------- state

    def state_value(self, key: bytes) -> dict[str, Any]:
        """A state key's value (or absence) with its proof against the checkpoint of the same height."""
        if self.health is not None:
            self.health.check_state()
        with self.state.snapshot() as snap:
            try:
                value, proof = snap.prove(key)
            except (KeyError, ValueError) as exc:  # a tree node missing or unreadable
                raise IntegrityFault("state.db", f"key {key.decode(errors='replace')!r}",
                                     f"its proof cannot be built ({exc})", scope="state") from None
            height, root = snap.height, snap.root
        cp = self.checkpoint(height)
        if cp.header.state_root != root.hex():
            raise IntegrityFault("state.db", f"height {height}", "its state root is not the header's", scope="state")
        try:
            smt.verify_proof(root, key, value, proof)
        except smt.StateProofError as exc:
            raise IntegrityFault("state.db", f"key {key.decode(errors='replace')!r}",
                                 f"the stored value or tree does not prove it ({exc})", scope="state") from None
        return {
            "key": key.decode(),
            "value": None if value is None else msgspec.json.decode(value),
            "raw": None if value is None else value.decode(),
            "height": height,
            "proof": to_builtins(proof),
            "checkpoint": to_builtins(cp),
        }

    # ---------------------------------------------------------------- module queries

    def query(self, module: str, name: str, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """A module query's answer, if ``caller`` may read it (its declared read policy, judged on the
        same state the query reads)."""
        spec = self.registry.queries.get((module, name))
        if spec is None:
            raise NotFound(what="Query", key=f"{module}.{name}"[:120])
        args: list[Any] = []
        if spec.params is not None:
            too_long = next((k for k, v in params.items() if len(str(v)) > MAX_PARAM_CHARS), None)
            if too_long is not None:
                raise QueryParamsInvalid(reason=f"{too_long} is longer than {MAX_PARAM_CHARS} characters")
            try:
                args.append(convert_params(params, spec.params))
            except msgspec.ValidationError as exc:
                raise QueryParamsInvalid(reason=str(exc)) from None
            except RecursionError:
                raise QueryParamsInvalid(reason="a parameter is nested too deeply") from None
        elif params:
            raise QueryParamsInvalid(reason=f"{module}.{name} takes no parameters")
        with self.view() as snap:
            check_read(spec.read, snap, caller, args[0] if args else None, f"the query {module}.{name}")
            result = spec.func(snap, *args)  # every state value it reads is proven against that root
            return {"height": snap.height, "result": result}

    @contextmanager
    def view(self) -> Iterator[Any]:
        """The newest flushed state as queries read it (its values proven against the header's state
        root; ``time`` the block's time, ``need`` the modules' doors)."""
        if self.health is not None:
            self.health.check_state()
        with self.state.snapshot(verified=True) as snap:
            height, root = snap.height, snap.root
            if height >= 0:
                header = self.header(height)
                if header.state_root != root.hex():
                    raise IntegrityFault("state.db", f"height {height}", "its state root is not the header's",
                                         scope="state")
                snap.time = header.time
            # Reads are judged no earlier than now: on a quiet chain the newest block may be old, and a
            # consent must not outlive its ``until`` because no block came since (answers only get
            # stricter; what is committed is not affected).
            snap.read_time = max(snap.time, time.time_ns() // 1_000_000)
            yield snap

    # ---------------------------------------------------------------- callers and read policies

    def caller(self, did: str) -> Caller:
        """Who ``did`` is at the newest block: a consortium node key, a member key (its organisation
        and roles; ``status`` says if it was revoked or rotated away), or another key (``known``
        if it holds a vehicle)."""
        with self.view() as snap:
            consensus = self.registry.provider(GovernanceReader).consensus(snap)
            if consensus is not None and did in consensus.nodes:
                return Caller(did, consensus.nodes[did], frozenset(), node=True)
            info = self.registry.directory.signer(snap, did)
            if info is not None:
                if not info.active:
                    return Caller(did, info.org, frozenset(), known=False, status=f"{info.status}:{info.since}")
                return Caller(did, info.org, frozenset(info.roles))
            holds = self.registry.provider(VehicleRelations).holds_any(snap, did)
            return Caller(did, known=holds)

    def check_read(self, policy: ReadPolicy, caller: Caller, obj: Any, what: str) -> None:
        """Refuse (``ReadRefused``; ``UnknownCaller`` for a key the ledger does not know) unless
        ``policy`` lets ``caller`` read ``obj`` at the newest block."""
        if caller.reads_all:
            return
        with self.view() as snap:
            check_read(policy, snap, caller, obj, what)

    def visible(self, caller: Caller, events: list[dict[str, Any]]) -> list[bool]:
        """Which of ``events`` ``caller`` may read (their types' declared policies, at the newest
        block); an event type nobody declared goes only to nodes, regulators and police."""
        if caller.reads_all:
            return [True] * len(events)
        out = []
        with self.view() as snap:
            for ev in events:
                policy = self.registry.event_reads.get(ev.get("type", ""))
                try:
                    if policy is None:
                        raise ReadRefused(what="this event", caller=caller.describe(), why="no one declared who reads it")
                    policy.check(snap, caller, ev, "the event")
                    out.append(True)
                except ReadRefused:
                    out.append(False)
        return out

    # ---------------------------------------------------------------- events

    def events(self, start: tuple[int, int, int, int], until_height: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event id, event) for events strictly after ``start``, up to a height, derived ones included."""
        h0 = max(start[0], 0)
        for b in self.blocks.blocks(h0, until_height):
            header = self.header(b.header.height)
            if merkle.root(b.receipts).hex() != header.receipt_root or b.header != header:
                raise IntegrityFault("the block log", f"block {header.height}",
                                     "its receipts do not hash to the header's receipt root", scope="block",
                                     height=header.height)
            yield from block_events(b.header.height, b.header.time, b.ids, [decode(r, Receipt) for r in b.receipts],
                                    start, self.expand)

    def expand(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The events this node derives from ``event`` (its module's expander, on derived indexes)."""
        fn = self.registry.expanders.get(event["type"])
        if fn is None:
            return []
        with self.state.snapshot() as snap:
            return fn(snap, event)

    def expands(self, receipts: list[Receipt]) -> bool:
        return any(ev.get("type") in self.registry.expanders for r in receipts for ev in r.events)


def block_events(height: int, time: int, tx_ids: list[bytes], receipts: list[Receipt],
                 after: tuple[int, int, int, int] = (-1, -1, -1, -1),
                 expand: Callable[[dict[str, Any]], list[dict[str, Any]]] | None = None
                 ) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, receipt in enumerate(receipts):
        for j, ev in enumerate(receipt.events):
            base = {"height": height, "time": time, "tx": tx_ids[i].hex(), **ev}
            if (height, i, j, 0) > after:
                yield event_id(height, i, j), base
            if expand is not None and (height, i, j, AFTER_BLOCK[0]) > after:
                for k, derived in enumerate(expand(base), start=1):
                    if (height, i, j, k) > after:
                        yield event_id(height, i, j, k), {"height": height, "time": time, "tx": tx_ids[i].hex(), **derived}


def tx_evidence(b: StoredBlock, index: int, attestations: list, header: Header | None = None) -> dict[str, Any]:
    """A transaction and its receipt with inclusion proofs; with ``header`` (the committed one), both
    roots are checked against it first."""
    tx_leaves = [merkle.leaf_hash(t) for t in b.txs]
    receipt_leaves = [merkle.leaf_hash(r) for r in b.receipts]
    if header is not None and (b.header != header or merkle.root_from_leaf_hashes(tx_leaves).hex() != header.tx_root
                               or merkle.root_from_leaf_hashes(receipt_leaves).hex() != header.receipt_root):
        raise IntegrityFault("the block log", f"block {header.height}",
                             "its transactions or receipts do not hash to the header's roots", scope="block",
                             height=header.height)
    return {
        "id": b.ids[index].hex(),
        "height": b.header.height,
        "index": index,
        "tx": msgspec.json.decode(b.txs[index]),
        "tx_raw": b.txs[index].decode(),
        "receipt": msgspec.json.decode(b.receipts[index]),
        "receipt_raw": b.receipts[index].decode(),
        "proof": {
            "tx": [h.hex() for h in merkle.inclusion_proof(tx_leaves, index)],
            "receipt": [h.hex() for h in merkle.inclusion_proof(receipt_leaves, index)],
        },
        "checkpoint": to_builtins(Checkpoint(header or b.header, attestations)),
    }


def convert_params(params: dict[str, Any], struct: type) -> Any:
    """Query-string values (strings) into the query's parameter Struct; a structured parameter
    (an object or a list, e.g. a recall scope) is given as JSON."""
    structured = {f.name for f in msgspec.structs.fields(struct)
                  if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct)
                  or getattr(f.type, "__origin__", None) in (list, dict)}
    values = dict(params)
    for name in structured & values.keys():
        if isinstance(values[name], str):
            try:
                values[name] = msgspec.json.decode(values[name])
            except msgspec.DecodeError as exc:
                raise msgspec.ValidationError(f"{name} must be JSON: {exc}") from None
    return msgspec.convert(values, struct, strict=False)
