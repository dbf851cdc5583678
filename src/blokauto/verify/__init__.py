"""Offline verification: Merkle proofs, state proofs and checkpoints against a trust anchor.

Nothing here talks to a node. A verifier holds the consortium's trust anchor (its genesis
document: chain id, node keys, quorum) and checks, with ``verify_*`` functions that raise
``VerificationError``:

- a checkpoint: every attestation is a valid Ed25519 signature by a distinct node key of the
  anchor over the header hash, and there are at least ``quorum`` of them;
- a transaction or receipt: its RFC 9162 inclusion proof leads to the header's tx/receipt root;
- a state value (or its absence): its proof leads to the header's state root.

If the consortium's node keys change, ``TrustAnchor.advance`` moves the anchor forward with a
checkpoint signed by the current quorum and a proof of the new consensus record in its state;
``follow_consensus`` does it for each change a node lists (``GET /v1/consensus/changes``), in
order. An anchor advanced at height H judges checkpoints above H; ``anchor_for`` picks, among a
verifier's anchors, the one for a height.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core import crypto, merkle, smt
from ..core.block import Checkpoint, Genesis, Header, attestation_bytes
from ..core.encoding import canonical, decode


class VerificationError(Exception):
    """What was claimed is not proven. The message says what failed."""


@dataclass(frozen=True)
class TrustAnchor:
    chain: str
    genesis_hash: bytes
    nodes: dict[str, str]  # node did -> organisation
    quorum: int
    height: int = 0  # checkpoints above this height are judged with these keys
    version: int = 0
    history: tuple[str, ...] = field(default=())

    @classmethod
    def from_genesis(cls, genesis: Genesis) -> "TrustAnchor":
        if genesis.quorum < 1:
            raise VerificationError("the genesis quorum must be at least 1")
        return cls(genesis.chain, genesis.hash(), genesis.node_keys(), genesis.quorum)

    @classmethod
    def load(cls, data: bytes) -> "TrustAnchor":
        """From genesis JSON bytes (the ``genesis.json`` a consortium publishes)."""
        try:
            return cls.from_genesis(decode(data, Genesis))
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise VerificationError(f"not a blokauto genesis document: {exc}") from None

    def advance(self, checkpoint: Checkpoint, consensus_raw: bytes, proof: smt.StateProof) -> "TrustAnchor":
        """The anchor after a change of node keys or quorum proven at ``checkpoint``."""
        if checkpoint.header.height <= self.height:
            raise VerificationError(f"the consensus change at block {checkpoint.header.height} is not after the "
                                    f"anchor's height {self.height}")
        verify_checkpoint(checkpoint, self)
        verify_state(checkpoint.header, b"gov/consensus", consensus_raw, proof)
        try:
            record = msgspec.json.decode(consensus_raw)
            nodes = {n["did"]: n["org"] for n in record["nodes"]}
            quorum, version = int(record["quorum"]), int(record["version"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
            raise VerificationError(f"the proven consensus record cannot be read: {exc}") from None
        if version <= self.version:
            raise VerificationError("the consensus record is not newer than the anchor")
        if not 1 <= quorum <= len(nodes):
            raise VerificationError(f"the consensus record's quorum {quorum} is not between 1 and its {len(nodes)} node keys")
        return TrustAnchor(self.chain, self.genesis_hash, nodes, int(record["quorum"]), checkpoint.header.height,
                           int(record["version"]), self.history + (checkpoint.header.hash().hex(),))


def follow_consensus(anchor: TrustAnchor, changes: list[dict[str, Any]]) -> list[TrustAnchor]:
    """The anchors after each consensus change above ``anchor`` (a ``GET /v1/consensus/changes``
    answer's ``changes``), each proven with the keys in force before it; raises on the first that
    does not verify. A checkpoint's attestations by keys the anchor does not know are set aside:
    the quorum of known keys is what proves the change."""
    out: list[TrustAnchor] = []
    for change in sorted(changes, key=lambda c: int(c["height"])):
        if int(change["height"]) <= anchor.height:
            continue
        cp = _checkpoint(change)
        if cp.header.height != int(change["height"]):
            raise VerificationError(f"the consensus change listed at block {change['height']} carries the checkpoint "
                                    f"of block {cp.header.height}")
        known = Checkpoint(cp.header, [a for a in cp.attestations if a.node in anchor.nodes])
        try:
            proof = msgspec.convert(change["proof"], smt.StateProof)
            raw = change["raw"].encode()
        except (msgspec.ValidationError, KeyError, AttributeError) as exc:
            raise VerificationError(f"the consensus change at block {change.get('height')} is malformed: {exc}") from None
        anchor = anchor.advance(known, raw, proof)
        out.append(anchor)
    return out


def anchor_for(anchors: list[TrustAnchor], height: int) -> TrustAnchor:
    """Of a verifier's anchors (genesis first, then each change), the one that judges ``height``."""
    chosen = anchors[0]
    for a in anchors[1:]:
        if a.height < height:
            chosen = a
    return chosen


def verify_checkpoint(checkpoint: Checkpoint, anchor: TrustAnchor) -> None:
    """Raise unless a quorum of the anchor's node keys signed this header, and nobody else did."""
    header = checkpoint.header
    if header.chain != anchor.chain:
        raise VerificationError(f"the checkpoint is for chain {header.chain!r}, not {anchor.chain!r}")
    if header.height == 0 and header.prev != anchor.genesis_hash.hex():
        raise VerificationError("block 0 does not commit to this genesis document")
    message = attestation_bytes(header.hash())
    signers: set[str] = set()
    for att in checkpoint.attestations:
        if att.node in signers:
            raise VerificationError(f"node {att.node} attested twice")
        if att.node not in anchor.nodes:
            raise VerificationError(f"attestation by {att.node}, which is not a node key of the consortium")
        try:
            key = crypto.public_key_from_did(att.node)
            sig = bytes.fromhex(att.sig)
        except (ValueError, crypto.InvalidKey):
            raise VerificationError(f"attestation by {att.node} is malformed") from None
        if not crypto.verify_signature(key, sig, message):
            raise VerificationError(f"attestation by {att.node} does not verify for block {header.height}")
        signers.add(att.node)
    if len(signers) < anchor.quorum:
        raise VerificationError(f"block {header.height} has {len(signers)} valid attestations; the quorum is {anchor.quorum}")


def verify_inclusion(root_hex: str, count: int, leaf: bytes, index: int, proof_hex: list[str], what: str) -> None:
    try:
        proof = [bytes.fromhex(p) for p in proof_hex]
        root = bytes.fromhex(root_hex)
    except ValueError:
        raise VerificationError(f"the {what} proof is not hex") from None
    try:
        merkle.verify_inclusion(index, count, merkle.leaf_hash(leaf), proof, root)
    except merkle.ProofError as exc:
        raise VerificationError(f"the {what} is not in the block: {exc}") from None


def verify_state(header: Header, key: bytes, raw_value: bytes | None, proof: smt.StateProof) -> None:
    """Raise unless ``key`` holds ``raw_value`` (None: is absent) in the state after ``header``."""
    try:
        smt.verify_proof(bytes.fromhex(header.state_root), key, raw_value, proof)
    except smt.StateProofError as exc:
        what = "absent" if raw_value is None else "holding that value"
        raise VerificationError(f"{key.decode(errors='replace')!r} is not proven {what} at height {header.height}: {exc}") from None


# ---------------------------------------------------------------- API evidence documents


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


def _checkpoint(evidence: dict[str, Any]) -> Checkpoint:
    try:
        return msgspec.convert(evidence["checkpoint"], Checkpoint)
    except (msgspec.ValidationError, KeyError, TypeError) as exc:
        raise VerificationError(f"the evidence has no readable checkpoint: {exc}") from None


__all__ = [
    "TrustAnchor", "VerificationError", "anchor_for", "follow_consensus", "verify_checkpoint", "verify_inclusion", "verify_state",
    "verify_state_evidence", "verify_tx_evidence",
]
