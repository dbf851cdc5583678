"""Payment-channel vouchers for both sides, off the ledger.

The payer (a car's device key, a person's key) opens a channel on the ledger with a deposit, then
pays by signing vouchers: each says "channel N owes the merchant A minor units in all". The
merchant checks each one before it serves another minute or kWh, keeps the best, and closes the
channel with it (``payments.claim_channel``), or answers a payer's close with it during the
challenge period. The signature format and the checks are the ledger's own
(``blokauto.modules.payments.vouchers``, reached through its door): a voucher the merchant accepts is one the ledger pays.

    from blokauto.client.payments import PayerChannel, MerchantChannel

    payer = PayerChannel(car_key, chain="blokauto-demo", channel=7, deposit=2_000)
    v = payer.pay(150)                        # cumulative: 150 in all
    v = payer.pay(150)                        # 300 in all; send v to the merchant

    merchant = MerchantChannel.from_ledger(client, 7)     # as a key of the merchant
    merchant.accept(v)                        # -> 300 (new money: 300); raises if worthless
    client.send(merchant.claim(), merchant_key)           # paid 300, the rest refunded

Refusals are the ledger's error classes (``VoucherForged``, ``VoucherOtherChannel``,
``VoucherOverDeposit``, ``StaleVoucher``, ``ChannelClosed``, ``ChannelClosing``), so ``except``
works the same on either side of the wire.
"""

from __future__ import annotations

from typing import Any

from ..core.crypto import KeyPair
from ..modules.payments import errors
from ..modules.payments.messages import ClaimChannel, CloseChannel
from ..modules.payments.doors import Voucher, check_voucher, make_voucher

__all__ = ["MerchantChannel", "PayerChannel", "Voucher"]


class PayerChannel:
    """The payer's side of one channel: the cumulative amount signed so far and the latest voucher.
    The amount never goes down and never past the deposit, so the payer cannot sign more than it
    put in."""

    def __init__(self, key: KeyPair, *, chain: str, channel: int, deposit: int, paid: int = 0) -> None:
        if not 0 <= paid <= deposit:
            raise ValueError(f"paid ({paid}) must be between 0 and the deposit ({deposit})")
        self.key = key
        self.chain = chain
        self.channel = channel
        self.deposit = deposit
        self.paid = paid
        self.latest: Voucher | None = make_voucher(key, chain, channel, paid) if paid else None

    @classmethod
    def from_ledger(cls, client: Any, channel: int, key: KeyPair, *, paid: int = 0,
                    min_height: int = -1) -> "PayerChannel":
        """The channel as the ledger has it (read as ``key``: the payer reads its channels), starting
        at ``paid`` (what earlier vouchers already promised; at least the best presented on the ledger).
        ``min_height``: read a state at least that new (the block that opened it, say)."""
        ch = client.as_key(key).query("payments", "channel", channel=channel, min_height=min_height)
        _must_be_open(ch, channel)
        if ch["payer"] != key.did:
            raise errors.NotChannelPayer(payer=ch["payer"], funder=ch["funder"], channel=channel)
        return cls(key, chain=client.chain, channel=channel, deposit=ch["deposit"], paid=max(paid, ch["best"]))

    @property
    def remaining(self) -> int:
        """What the deposit still covers."""
        return self.deposit - self.paid

    def pay(self, amount: int) -> Voucher:
        """Pay ``amount`` more: the next voucher, for the new cumulative total."""
        if amount < 1:
            raise ValueError(f"a payment is at least 1 minor unit, not {amount}")
        return self.pay_up_to(self.paid + amount)

    def pay_up_to(self, total: int) -> Voucher:
        """A voucher for ``total`` in all (a metered service states the running total itself)."""
        if total > self.deposit:
            raise errors.VoucherOverDeposit(channel=self.channel, amount=total, deposit=self.deposit)
        if total < self.paid:
            raise errors.StaleVoucher(channel=self.channel, amount=total, best=self.paid)
        if total != self.paid or self.latest is None:
            self.latest = make_voucher(self.key, self.chain, self.channel, total)
            self.paid = total
        return self.latest

    def close(self) -> CloseChannel:
        """The message that starts closing the channel, presenting the latest voucher (send it with
        the payer's key); the merchant has the challenge period to present a higher one."""
        return CloseChannel(channel=self.channel, voucher=self.latest)


class MerchantChannel:
    """The merchant's side of one channel: checks each voucher (same chain and channel, the payer's
    signature, within the deposit, not below the best one held) and keeps the best for closing.

    Cheap refusals come first; a voucher no higher than the best held costs no signature check.
    """

    def __init__(self, *, chain: str, channel: int, payer: str, deposit: int, best: int = 0,
                 merchant: str = "") -> None:
        self.chain = chain
        self.channel = channel
        self.payer = payer
        self.deposit = deposit
        self.merchant = merchant
        self.floor = best  # the best voucher presented on the ledger: nothing below it is worth anything
        self.best: Voucher | None = None

    @classmethod
    def from_ledger(cls, client: Any, channel: int, *, min_height: int = -1) -> "MerchantChannel":
        """The channel as the ledger has it, read with the client's key (a key of the merchant). A
        channel that is closing or closed is refused: serve nothing more on it. ``min_height``: read
        a state at least that new (the block that opened it, say)."""
        return cls.from_answer(client.chain, client.query("payments", "channel", channel=channel,
                                                          min_height=min_height))

    @classmethod
    def from_answer(cls, chain: str, ch: dict[str, Any]) -> "MerchantChannel":
        """From the answer of the ``payments channel`` query (refused unless the channel is open)."""
        _must_be_open(ch, ch["channel"])
        return cls(chain=chain, channel=ch["channel"], payer=ch["payer"], deposit=ch["deposit"], best=ch["best"],
                   merchant=ch["merchant"])

    @property
    def amount(self) -> int:
        """What the best voucher held is worth (the ledger's best if none is held yet)."""
        return self.best.amount if self.best is not None else self.floor

    def check(self, voucher: Voucher) -> int:
        """What ``voucher`` is worth on this channel; raises (``VoucherOtherChannel``,
        ``StaleVoucher``, ``VoucherForged``, ``VoucherOverDeposit``) if it is worth nothing more
        than what is held. Keeps nothing: see ``accept``."""
        if voucher.channel == self.channel and voucher.chain == self.chain:
            if voucher.amount < self.amount:
                raise errors.StaleVoucher(channel=self.channel, amount=voucher.amount, best=self.amount)
            if voucher.amount > self.deposit:  # before the signature: no crypto for an impossible claim
                raise errors.VoucherOverDeposit(channel=self.channel, amount=voucher.amount, deposit=self.deposit)
            if self.best is not None and voucher.amount == self.best.amount and voucher.sig == self.best.sig:
                return voucher.amount  # the one already held, sent again
        return check_voucher(voucher, chain=self.chain, channel=self.channel, payer=self.payer, deposit=self.deposit)

    def accept(self, voucher: Voucher) -> int:
        """Check ``voucher`` and keep it as the best; returns the new money it brings (0 for the
        voucher already held)."""
        before = self.amount
        worth = self.check(voucher)
        self.best = voucher
        return worth - before

    def claim(self) -> ClaimChannel:
        """The message that closes the channel with the best voucher (send it with a key of the
        merchant): at once while open, or during the challenge period of a payer's close."""
        if self.best is None:
            raise ValueError(f"no voucher of channel {self.channel} is held yet: accept one first")
        return ClaimChannel(channel=self.channel, voucher=self.best)


def _must_be_open(ch: dict[str, Any], channel: int) -> None:
    if not ch.get("found"):
        raise errors.UnknownChannel(channel=channel)
    if ch["status"] == "closed":
        raise errors.ChannelClosed(channel=channel, paid=ch["paid"])
    if ch["status"] == "closing":
        raise errors.ChannelClosing(channel=channel, closing=ch["closing"])
