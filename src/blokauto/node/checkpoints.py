"""Checkpoints: a committed header with the node attestations that make it verifiable.

A networked node commits a block before the other nodes have attested it; their attestations
arrive afterwards (from the attestation stream, or fetched from peers). What it serves with a
checkpoint should verify against the consortium's quorum, so a read of a fresh block waits (up
to ``wait_s``) for ``quorum`` attestations, then serves what there is. This is node-level
consensus policy; the block log only stores attestations.
"""

from __future__ import annotations

import threading

from ..core.block import NodeSignature
from ..store.blocks import BlockLog


class CheckpointService:
    """Stores attestations and lets reads wait for a quorum of them (solo nodes: quorum 1, no wait)."""

    def __init__(self, blocks: BlockLog) -> None:
        self.blocks = blocks
        self.quorum = 1  # attestations a served checkpoint waits for (a networked node sets the consortium's)
        self.wait_s = 0.0
        self._attested = threading.Condition()

    def set_policy(self, *, quorum: int | None = None, wait_s: float | None = None) -> None:
        if quorum is not None:
            self.quorum = quorum
        if wait_s is not None:
            self.wait_s = wait_s

    def add(self, height: int, att: NodeSignature) -> bool:
        """Store another node's attestation of ``height`` (True if it was new) and wake readers."""
        added = self.blocks.add_attestation(height, att)
        with self._attested:
            self._attested.notify_all()
        return added

    def wait_for_quorum(self, height: int) -> None:
        """Wait (up to ``wait_s``) until ``height`` has ``quorum`` attestations, so what is served
        with a checkpoint verifies; after the wait, serve what there is."""
        if self.quorum <= 1 or self.wait_s <= 0:
            return
        with self._attested:
            self._attested.wait_for(lambda: self.blocks.attestation_count(height) >= self.quorum, self.wait_s)

    def attestations(self, height: int) -> list[NodeSignature]:
        """The attestations of ``height``, after the quorum wait."""
        self.wait_for_quorum(height)
        return self.blocks.attestations(height)
