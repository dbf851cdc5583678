"""Blocks, receipts, attestations, checkpoints and the genesis document (the trust anchor).

A header commits to its transactions (RFC 9162 root over canonical signed txs), their receipts
(root over canonical receipts) and the state root after the block. Every node signs the hash
of each header it committed (an attestation); a checkpoint is a header with attestations from a
quorum of the consortium's node keys.
"""

from __future__ import annotations

from typing import Any

import msgspec

from . import crypto, merkle
from .encoding import Hex32, Hex64, Uint, canonical


class Header(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    chain: str
    height: Uint
    time: Uint  # block time, ms since the Unix epoch (the only clock the ledger knows)
    prev: Hex32  # hash of the previous header; for height 0, the genesis document hash
    tx_count: Uint
    tx_root: Hex32
    receipt_root: Hex32
    state_root: Hex32

    def hash(self) -> bytes:
        return crypto.tagged_hash(crypto.TAG_HEADER, canonical(self))


class Receipt(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """What executing one transaction did. ``code`` is empty on success."""

    tx: Hex32
    ok: bool
    code: str = ""
    detail: dict[str, Any] = {}
    events: list[dict[str, Any]] = []


class NodeSignature(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    node: str  # the node key's did:key
    sig: Hex64


class Checkpoint(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    header: Header
    attestations: list[NodeSignature]


def attestation_bytes(header_hash: bytes) -> bytes:
    return crypto.TAG_ATTEST + header_hash


def attest(header: Header, node_key: crypto.KeyPair) -> NodeSignature:
    return NodeSignature(node_key.did, node_key.sign(attestation_bytes(header.hash())).hex())


def tx_root(canonical_txs: list[bytes]) -> bytes:
    return merkle.root(canonical_txs)


def receipt_root(canonical_receipts: list[bytes]) -> bytes:
    return merkle.root(canonical_receipts)


# ---------------------------------------------------------------- genesis


class GenesisOrganisation(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    id: str
    name: str
    roles: list[str]
    admins: list[str]  # did:key of the organisation's first admin members
    nodes: list[str] = []  # did:key of the organisation's node keys (they attest blocks)


class Genesis(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """The consortium's trust anchor: chain id, founding organisations, node keys, quorum."""

    chain: str
    time: Uint
    organisations: list[GenesisOrganisation]
    quorum: Uint
    params: dict[str, Uint] = {}
    format: str = "blokauto-genesis/1"

    def hash(self) -> bytes:
        return crypto.tagged_hash(crypto.TAG_GENESIS, canonical(self))

    def node_keys(self) -> dict[str, str]:
        """node did -> organisation id."""
        return {n: org.id for org in self.organisations for n in org.nodes}
