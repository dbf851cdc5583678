"""Read side of a node: transactions with inclusion proofs, blocks, checkpoints, state with
proofs, module queries and event history. Used by the HTTP API and by the CLI on a data folder."""

from __future__ import annotations

from typing import Any, Iterator

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


def event_id(height: int, tx_index: int, event_index: int) -> str:
    return f"{height}:{tx_index}:{event_index}"


def parse_event_id(value: str) -> tuple[int, int, int]:
    try:
        h, i, j = (int(x) for x in value.split(":"))
    except ValueError:
        raise MalformedTx(reason=f"{value!r} is not an event id (height:tx:event)") from None
    return h, i, j


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

    def events(self, start: tuple[int, int, int], until_height: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event id, event) for events strictly after ``start`` = (height, tx, event), up to a height."""
        h0 = max(start[0], 0)
        for b in self.blocks.blocks(h0, until_height):
            yield from block_events(b.header.height, b.header.time, b.ids, [decode(r, Receipt) for r in b.receipts], start)


def block_events(height: int, time: int, tx_ids: list[bytes], receipts: list[Receipt],
                 after: tuple[int, int, int] = (-1, -1, -1)) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, receipt in enumerate(receipts):
        for j, ev in enumerate(receipt.events):
            if (height, i, j) <= after:
                continue
            yield event_id(height, i, j), {"height": height, "time": time, "tx": tx_ids[i].hex(), **ev}


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
    """Query-string values (strings) into the query's parameter Struct."""
    return msgspec.convert(params, struct, strict=False)
