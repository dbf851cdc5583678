"""Checking the evidence documents a node's API serves with each answer."""

from __future__ import annotations

from typing import Any

import msgspec

from ..core import crypto, smt
from ..core.block import Checkpoint
from ..core.encoding import canonical
from ._anchor import TrustAnchor
from ._proofs import VerificationError, _checkpoint, verify_checkpoint, verify_inclusion, verify_state


def verify_tx_evidence(evidence: dict[str, Any], anchor: TrustAnchor) -> Checkpoint:
    """Check a ``GET /v1/txs/{id}`` answer: checkpoint, tx and receipt inclusion, id and receipt match."""
    cp = _checkpoint(evidence)
    verify_checkpoint(cp, anchor)
    tx_raw = evidence["tx_raw"].encode()
    receipt_raw = evidence["receipt_raw"].encode()
    index = int(evidence["index"])
    verify_inclusion(cp.header.tx_root, cp.header.tx_count, tx_raw, index, evidence["proof"]["tx"], "transaction")
    verify_inclusion(cp.header.receipt_root, cp.header.tx_count, receipt_raw, index, evidence["proof"]["receipt"], "receipt")
    tx = msgspec.json.decode(tx_raw)
    receipt = msgspec.json.decode(receipt_raw)
    txid = crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx["body"])).hex()
    if txid != evidence["id"]:
        raise VerificationError("the transaction does not have the claimed id")
    if receipt["tx"] != txid:
        raise VerificationError("the receipt belongs to another transaction")
    _agrees(evidence, "tx", tx)
    _agrees(evidence, "receipt", receipt)
    _agrees(evidence, "height", cp.header.height)
    return cp


def verify_state_evidence(evidence: dict[str, Any], anchor: TrustAnchor) -> Checkpoint:
    """Check a ``GET /v1/state/{key}`` answer."""
    cp = _checkpoint(evidence)
    verify_checkpoint(cp, anchor)
    raw = evidence.get("raw")
    proof = msgspec.convert(evidence["proof"], smt.StateProof)
    verify_state(cp.header, evidence["key"].encode(), None if raw is None else raw.encode(), proof)
    _agrees(evidence, "value", None if raw is None else msgspec.json.decode(raw))
    _agrees(evidence, "height", cp.header.height)
    return cp


def _agrees(evidence: dict[str, Any], field: str, proven: Any) -> None:
    """A decoded convenience field must say exactly what the proven bytes say."""
    if field in evidence and (msgspec.json.encode(evidence[field], order="sorted")
                              != msgspec.json.encode(proven, order="sorted")):
        raise VerificationError(f"the answer's '{field}' differs from what the proof covers")
