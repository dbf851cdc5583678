"""Turning stored blocks back into executable transactions (for recovery and audit)."""

from __future__ import annotations

from typing import Any

import msgspec

from ..core import crypto
from ..core.block import Receipt
from ..core.encoding import canonical, decode
from ..core.errors import BlokautoError
from ..core.execute import STATELESS_CODES, BlockTx, RefusedTx
from ..core.tx import CheckedTx
from ..store.blocks import CorruptBlock, StoredBlock


def stored_txs(codec: Any, block: StoredBlock) -> list[BlockTx]:
    """The block's transactions as the engine executed them, trusting the node's own checks.

    A transaction whose receipt shows a stateless refusal is rebuilt as that refusal; every
    other one must decode, and its id is recomputed from its body.
    """
    out: list[BlockTx] = []
    for i, raw in enumerate(block.txs):
        try:
            receipt = decode(block.receipts[i], Receipt)
        except (msgspec.ValidationError, msgspec.DecodeError, IndexError):
            raise CorruptBlock(block.header.height, f"receipt {i} cannot be read") from None
        if not receipt.ok and receipt.code in STATELESS_CODES:
            out.append(RefusedTx(bytes.fromhex(receipt.tx), raw, receipt.code, receipt.detail))
            continue
        try:
            tx = codec.decode(raw)
        except BlokautoError as exc:
            raise CorruptBlock(block.header.height, f"transaction {i} cannot be decoded ({exc})") from None
        out.append(CheckedTx(tx, crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)), raw))
    return out
