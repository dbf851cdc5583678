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

A vehicle history report is checked by ``verify_report`` (rules in ``_report``). The
implementation lives in private modules (``_proofs``, ``_anchor``, ``_evidence``, ``_report``,
``_keys``); these names are the public surface. Nothing here imports the node or the store.
"""

from ._anchor import TrustAnchor, anchor_for, follow_consensus
from ._evidence import verify_state_evidence, verify_tx_evidence
from ._proofs import VerificationError, verify_checkpoint, verify_inclusion, verify_state
from ._report import REPORT_FORMAT, ReportProof, open_recalls, summarize, verify_report, verify_report_evidence

__all__ = [
    "REPORT_FORMAT", "ReportProof", "TrustAnchor", "VerificationError", "anchor_for", "follow_consensus", "open_recalls",
    "summarize", "verify_checkpoint", "verify_inclusion", "verify_report", "verify_report_evidence", "verify_state",
    "verify_state_evidence", "verify_tx_evidence",
]
