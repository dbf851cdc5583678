"""The SDK's voucher code for both sides of a payment channel (``blokauto.client.payments``):
the payer's amount only goes up and never past the deposit; the merchant refuses a voucher that is
stale, over the deposit, of another channel or chain, or not signed by the payer, and what it
accepts is what the ledger's own check accepts."""

from __future__ import annotations

import pytest

from blokauto.client.payments import MerchantChannel, PayerChannel
from blokauto.core.crypto import KeyPair
from blokauto.core.errors import BlokautoError
from blokauto.modules.payments.messages import ClaimChannel, CloseChannel
from blokauto.modules.payments.vouchers import Voucher, check_voucher, make_voucher

CHAIN = "test-chain"
CAR = KeyPair(b"\x01" * 32)
THIEF = KeyPair(b"\x02" * 32)


def pair(deposit: int = 1_000, channel: int = 7) -> tuple[PayerChannel, MerchantChannel]:
    return (PayerChannel(CAR, chain=CHAIN, channel=channel, deposit=deposit),
            MerchantChannel(chain=CHAIN, channel=channel, payer=CAR.did, deposit=deposit, merchant="park"))


def code(fn) -> str:
    with pytest.raises(BlokautoError) as err:
        fn()
    return err.value.code


def test_the_payer_signs_cumulative_amounts_the_merchant_accepts_in_order() -> None:
    payer, merchant = pair()
    got = [merchant.accept(payer.pay(amount)) for amount in (100, 250, 50)]
    assert got == [100, 250, 50]  # new money each time
    assert (payer.paid, payer.remaining, merchant.amount) == (400, 600, 400)
    assert merchant.best == payer.latest and merchant.best.amount == 400
    assert merchant.accept(payer.latest) == 0  # the same voucher again: nothing new, no refusal
    assert check_voucher(merchant.best, chain=CHAIN, channel=7, payer=CAR.did, deposit=1_000) == 400  # the ledger's rule
    assert merchant.claim() == ClaimChannel(channel=7, voucher=merchant.best)
    assert payer.close() == CloseChannel(channel=7, voucher=payer.latest)


def test_an_older_voucher_is_stale() -> None:
    payer, merchant = pair()
    old = payer.pay(100)
    merchant.accept(payer.pay(200))
    assert code(lambda: merchant.check(old)) == "stale_voucher"
    assert merchant.amount == 300  # the refusal kept the best
    assert code(lambda: payer.pay_up_to(250)) == "stale_voucher"  # the payer never goes back either


def test_a_merchant_starts_from_the_best_voucher_on_the_ledger() -> None:
    payer = PayerChannel(CAR, chain=CHAIN, channel=7, deposit=1_000, paid=300)
    merchant = MerchantChannel(chain=CHAIN, channel=7, payer=CAR.did, deposit=1_000, best=300)
    assert code(lambda: merchant.check(make_voucher(CAR, CHAIN, 7, 200))) == "stale_voucher"
    assert merchant.accept(payer.pay(50)) == 50


def test_over_the_deposit_is_refused_on_both_sides() -> None:
    payer, merchant = pair(deposit=500)
    merchant.accept(payer.pay(500))
    assert code(lambda: payer.pay(1)) == "voucher_over_deposit"
    assert payer.paid == 500  # nothing signed
    assert code(lambda: merchant.check(make_voucher(CAR, CHAIN, 7, 501))) == "voucher_over_deposit"


@pytest.mark.parametrize("voucher", [
    make_voucher(CAR, CHAIN, 8, 100),  # another channel of the same payer
    make_voucher(CAR, "other-chain", 7, 100),  # the same channel number on another chain
], ids=["other_channel", "other_chain"])
def test_a_voucher_of_another_channel_is_worthless(voucher: Voucher) -> None:
    _, merchant = pair()
    assert code(lambda: merchant.accept(voucher)) == "voucher_other_channel"
    assert merchant.best is None


def test_forged_vouchers_are_refused() -> None:
    payer, merchant = pair()
    good = merchant.accept(payer.pay(100)) and merchant.best
    by_thief = make_voucher(THIEF, CHAIN, 7, 900)  # signed, but not by the payer
    raised = Voucher(chain=CHAIN, channel=7, amount=900, sig=good.sig)  # the payer's signature on a higher amount
    same_amount = Voucher(chain=CHAIN, channel=7, amount=100, sig=by_thief.sig)  # held amount, someone else's sig
    for forged in (by_thief, raised, same_amount):
        assert code(lambda: merchant.accept(forged)) == "voucher_forged"
    assert merchant.best == good and merchant.amount == 100


def test_a_payer_cannot_start_above_its_deposit_and_claims_need_a_voucher() -> None:
    with pytest.raises(ValueError):
        PayerChannel(CAR, chain=CHAIN, channel=7, deposit=100, paid=101)
    with pytest.raises(ValueError):
        PayerChannel(CAR, chain=CHAIN, channel=7, deposit=100).pay(0)
    with pytest.raises(ValueError):
        pair()[1].claim()
