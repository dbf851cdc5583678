"""Checkpoints, Merkle inclusion and state proofs: the checks every other one builds on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from ..core import crypto, merkle, smt
from ..core.block import Checkpoint, Header, attestation_bytes

if TYPE_CHECKING:
    from ._anchor import TrustAnchor


class VerificationError(Exception):
    """What was claimed is not proven. The message says what failed."""


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


def _checkpoint(evidence: dict[str, Any]) -> Checkpoint:
    try:
        return msgspec.convert(evidence["checkpoint"], Checkpoint)
    except (msgspec.ValidationError, KeyError, TypeError) as exc:
        raise VerificationError(f"the evidence has no readable checkpoint: {exc}") from None
