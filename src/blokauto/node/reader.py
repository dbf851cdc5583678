"""Read side of a node: transactions with inclusion proofs, blocks, checkpoints, state with
proofs, module queries and event history. Used by the HTTP API and by the CLI on a data folder."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import msgspec

from ..core import merkle
from ..core.block import Checkpoint, Receipt
from ..core.encoding import decode, to_builtins
from ..core.errors import MalformedTx, NotFound, RequestError
from ..core.registry import Registry
from ..store.blocks import BlockLog, StoredBlock
from ..store.state import StateStore


class UnknownTx(NotFound):
    code = "unknown_tx"
    template = ("Transaction {tx_id} is not in any committed block; if it was just accepted, ask again with "
                "?wait=SECONDS to wait for its receipt.")


class QueryParamsInvalid(RequestError):
    code = "invalid_query"
    template = "The query parameters are not valid: {reason}"


def event_id(height: int, tx_index: int, event_index: int, derived: int = 0) -> str:
    """``height:tx:event``, and ``height:tx:event:k`` for the k-th event a node derives from it."""
    return f"{height}:{tx_index}:{event_index}" + (f":{derived}" if derived else "")


def parse_event_id(value: str) -> tuple[int, int, int, int]:
    try:
        parts = [int(x) for x in value.split(":")]
        if len(parts) not in (3, 4) or min(parts) < 0:
            raise ValueError
    except ValueError:
        raise MalformedTx(reason=f"{value!r} is not an event id (height:tx:event[:derived])") from None
    return (parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 0)


class ChainReader:
    def __init__(self, registry: Registry, blocks: BlockLog, state: StateStore) -> None:
        self.registry = registry
        self.blocks = blocks
        self.state = state

    # ---------------------------------------------------------------- blocks and checkpoints

    def checkpoint(self, height: int) -> Checkpoint:
        cp = self.blocks.checkpoint(height) if 0 <= height < 2**63 else None
        if cp is None:
            raise NotFound(what="Block", key=str(height))
        return cp

    def block(self, height: int, *, full: bool = False) -> dict[str, Any]:
        b = self.blocks.block(height) if 0 <= height < 2**63 else None
        if b is None:
            raise NotFound(what="Block", key=str(height))
        out: dict[str, Any] = {
            "height": height,
            "hash": b.hash.hex(),
            "header": to_builtins(b.header),
            "tx_ids": [i.hex() for i in b.ids],
            "attestations": to_builtins(self.blocks.attestations(height)),
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
        b = self.blocks.block(height)
        if b is None:
            raise UnknownTx(tx_id=txid.hex())
        return tx_evidence(b, index, self.blocks.attestations(height))

    # ---------------------------------------------------------------- state

    def state_value(self, key: bytes) -> dict[str, Any]:
        """A state key's value (or absence) with its proof against the checkpoint of the same height."""
        with self.state.snapshot() as snap:
            value, proof = snap.prove(key)
            height, root = snap.height, snap.root
        cp = self.checkpoint(height)
        if cp.header.state_root != root.hex():
            raise RuntimeError("state.db and chain.db disagree; run `blokauto audit`")
        return {
            "key": key.decode(),
            "value": None if value is None else msgspec.json.decode(value),
            "raw": None if value is None else value.decode(),
            "height": height,
            "proof": to_builtins(proof),
            "checkpoint": to_builtins(cp),
        }

    # ---------------------------------------------------------------- module queries

    def query(self, module: str, name: str, params: dict[str, Any]) -> dict[str, Any]:
        spec = self.registry.queries.get((module, name))
        if spec is None:
            raise NotFound(what="Query", key=f"{module}.{name}")
        args: list[Any] = []
        if spec.params is not None:
            try:
                args.append(convert_params(params, spec.params))
            except msgspec.ValidationError as exc:
                raise QueryParamsInvalid(reason=str(exc)) from None
        elif params:
            raise QueryParamsInvalid(reason=f"{module}.{name} takes no parameters")
        with self.state.snapshot() as snap:
            result = spec.func(snap, *args)
            height = snap.height
        return {"height": height, "result": result}

    # ---------------------------------------------------------------- events

    def events(self, start: tuple[int, int, int, int], until_height: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event id, event) for events strictly after ``start``, up to a height, derived ones included."""
        h0 = max(start[0], 0)
        for b in self.blocks.blocks(h0, until_height):
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
            if expand is not None and (height, i, j, 1 << 62) > after:
                for k, derived in enumerate(expand(base), start=1):
                    if (height, i, j, k) > after:
                        yield event_id(height, i, j, k), {"height": height, "time": time, "tx": tx_ids[i].hex(), **derived}


def tx_evidence(b: StoredBlock, index: int, attestations: list) -> dict[str, Any]:
    tx_leaves = [merkle.leaf_hash(t) for t in b.txs]
    receipt_leaves = [merkle.leaf_hash(r) for r in b.receipts]
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
        "checkpoint": to_builtins(Checkpoint(b.header, attestations)),
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
