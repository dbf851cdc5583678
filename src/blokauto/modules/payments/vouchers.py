"""Payment-channel vouchers: what the payer signs off the ledger and the merchant presents on it.

A voucher says "channel ``channel`` of chain ``chain`` owes the merchant ``amount`` minor units in
all" (cumulative: each new voucher replaces the last, so only the latest one matters). The payer's
key signs, with Ed25519, the tagged hash of the canonical ``{amount, chain, channel}``::

    digest = SHA-256("blokauto/voucher/v1\\0" || canonical({"amount": A, "chain": C, "channel": N}))

Pure and deterministic: the vehicle (``make_voucher``), the merchant (``check_voucher`` before it
serves another minute or kWh) and the ledger (``check_voucher`` in the handlers) run the same code.
The SDK exports both.
"""

from __future__ import annotations

import msgspec

from ...core.crypto import KeyPair, public_key_from_did, tagged_hash, verify_signature
from ...core.encoding import Hex64, Uint, canonical
from ...core.errors import InvalidKey
from . import errors

TAG_VOUCHER = b"blokauto/voucher/v1\x00"


class Voucher(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A signed cumulative amount for one channel (``sig``: 64 bytes, hex)."""

    chain: str
    channel: Uint
    amount: Uint
    sig: Hex64


def voucher_digest(chain: str, channel: int, amount: int) -> bytes:
    """The 32 bytes a voucher's signature covers."""
    return tagged_hash(TAG_VOUCHER, canonical({"amount": amount, "chain": chain, "channel": channel}))


def make_voucher(payer: KeyPair, chain: str, channel: int, amount: int) -> Voucher:
    """The payer signs that ``channel`` owes ``amount`` in all."""
    return Voucher(chain=chain, channel=channel, amount=amount,
                   sig=payer.sign(voucher_digest(chain, channel, amount)).hex())


def check_voucher(voucher: Voucher, *, chain: str, channel: int, payer: str, deposit: int) -> int:
    """The amount ``voucher`` is worth on ``channel`` of ``chain`` (paid by the key ``payer``, with
    ``deposit``); raises ``VoucherOtherChannel``, ``VoucherForged`` or ``VoucherOverDeposit``
    otherwise, so a worthless voucher cannot be mistaken for a good one."""
    if voucher.chain != chain or voucher.channel != channel:
        raise errors.VoucherOtherChannel(channel=channel, chain=chain, voucher_channel=voucher.channel,
                                         voucher_chain=voucher.chain[:64])
    try:
        key = public_key_from_did(payer)
    except InvalidKey:
        raise errors.VoucherForged(channel=channel, payer=payer) from None
    if not verify_signature(key, bytes.fromhex(voucher.sig), voucher_digest(chain, channel, voucher.amount)):
        raise errors.VoucherForged(channel=channel, payer=payer)
    if voucher.amount > deposit:
        raise errors.VoucherOverDeposit(channel=channel, amount=voucher.amount, deposit=deposit)
    return voucher.amount
