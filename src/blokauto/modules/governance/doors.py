"""Governance's door: what other code may read of the consortium's state, as typed records.

The node (attestations, checkpoints, audits) reads the consensus record here, never through
governance's state map: ``registry.provider(GovernanceReader).consensus(state)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import msgspec

from ...core.state import StateReader
from . import keys
from .state import CONSENSUS, ORGS


class ConsensusRecord(msgspec.Struct, frozen=True):
    """The node keys that attest blocks (did -> organisation), how many attestations make a
    checkpoint, and the record's version (0 at genesis, +1 per change) and height of its change."""

    nodes: dict[str, str]
    quorum: int
    version: int
    since: int

    @property
    def node_keys(self) -> frozenset[str]:
        return frozenset(self.nodes)


@runtime_checkable
class GovernanceReader(Protocol):
    """Governance's door for the node and verifiers."""

    consensus_key: bytes  # the state key a consensus change writes (prove it to follow a change)

    def consensus(self, state: StateReader) -> ConsensusRecord | None:
        """The consensus record in ``state`` (None before genesis wrote one)."""
        ...

    def organisation_active(self, state: StateReader, org: str) -> bool:
        """Whether ``org`` is an organisation of the consortium, not removed."""
        ...


class GovernanceRecords:
    """The implementation of ``GovernanceReader`` wired in the module's definition."""

    consensus_key = keys.CONSENSUS.encode()

    def consensus(self, state: StateReader) -> ConsensusRecord | None:
        c = CONSENSUS.get(state)
        if c is None:
            return None
        return ConsensusRecord({n.did: n.org for n in c.nodes}, c.quorum, c.version, c.since)

    def organisation_active(self, state: StateReader, org: str) -> bool:
        o = ORGS.get(state, org) if org and "/" not in org else None
        return o is not None and o.status == "active"
