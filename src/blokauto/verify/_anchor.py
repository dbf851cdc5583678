"""The trust anchor (the consortium's genesis: chain id, node keys, quorum) and how it follows
proven changes of node keys and quorum."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from ..core import smt
from ..core.block import Checkpoint, Genesis
from ..core.encoding import decode
from ._keys import CONSENSUS_KEY
from ._proofs import VerificationError, _checkpoint, verify_checkpoint, verify_state


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
        verify_state(checkpoint.header, CONSENSUS_KEY, consensus_raw, proof)
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
