"""Payments refusals. Every one leaves every balance, limit, channel and escrow as it was.

    DomainError
    ├── currencies     UnknownCurrency, CurrencyTaken, NotIssuer, ReservesExceeded
    ├── accounts       InsufficientFunds, InvalidAccount, NotAccountHolder, SameAccount
    ├── limits         NotWalletHolder, NotVehicleDevice, InvalidSpendingLimit, NoSpendingLimit,
    │                  SpendingLimitRevoked, SpendingLimitLapsed, CategoryNotAllowed, OverPaymentLimit,
    │                  OverDailyLimit
    ├── merchants      UnknownMerchant, MerchantNotInCategory, InvalidTariff, UnknownTariff, TariffClosed,
    │                  TariffMismatch, AmountNotTariff
    ├── channels       UnknownChannel, ChannelClosed, ChannelClosing, ChannelNotClosing, ChallengeRunning,
    │                  ChallengeOver, NotChannelMerchant, NotChannelPayer, StaleVoucher, VoucherOtherChannel,
    │                  VoucherForged, VoucherOverDeposit
    ├── journeys       InvalidFare, UnknownFare
    └── sales          UnknownEscrow, EscrowClosed, NotEscrowSeller, NotEscrowBuyer, SellerNotHolder,
                       BuyerIsSeller, InvalidEscrowDeadline, EscrowExpired, EscrowDeadlineNotReached,
                       LienCurrencyMismatch, LiensExceedPrice
"""

from ...core.errors import DomainError

# ---------------------------------------------------------------- currencies


class UnknownCurrency(DomainError):
    code = "unknown_currency"
    template = ("No issuer issues {currency} on this chain; `blokauto query payments currencies` lists the "
                "currencies it carries.")


class CurrencyTaken(DomainError):
    code = "currency_taken"
    template = "{currency} is already issued on this chain by {issuer!r}; a currency has one issuer."


class NotIssuer(DomainError):
    code = "not_issuer"
    template = "{currency} is issued by {issuer!r}; a key of {org!r} cannot issue it or attest its reserves."


class ReservesExceeded(DomainError):
    code = "reserves_exceeded"
    template = ("Issuing {amount} more {currency} would take the supply from {supply} past the attested reserves "
                "of {reserves} (minor units); attest the new reserves first.")


# ---------------------------------------------------------------- accounts


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    template = "The {currency} account of {owner} holds {balance}, less than the {amount} (minor units) asked for."


class InvalidAccount(DomainError):
    code = "invalid_account"
    template = "{owner!r} cannot hold an account: {reason}."


class NotAccountHolder(DomainError):
    code = "not_account_holder"
    template = ("{sender} does not act for the account of {account}: only that key, or a key of that "
                "organisation, spends from it.")


class SameAccount(DomainError):
    code = "same_account"
    template = "The payment would go from the account of {owner} to itself; name another account."


# ---------------------------------------------------------------- spending limits


class NotWalletHolder(DomainError):
    code = "not_wallet_holder"
    template = ("Only the title holder of {vin} (or a key of the holding organisation) sets or revokes the "
                "spending limits of its wallet, and {sender} is not it.")


class NotVehicleDevice(DomainError):
    code = "not_a_device_of_vehicle"
    template = "{signer} is not a device key of {vin}; only the vehicle's own device keys spend from its wallet."


class InvalidSpendingLimit(DomainError):
    code = "invalid_spending_limit"
    template = "The spending limit cannot be set: {reason}."


class NoSpendingLimit(DomainError):
    code = "no_spending_limit"
    template = ("The holder of {vin} has set no {currency} spending limit, so its devices may spend nothing; the "
                "holder sets one with payments.set_limit.")


class SpendingLimitRevoked(DomainError):
    code = "spending_limit_revoked"
    template = "The {currency} spending limit of {vin} was revoked at height {height}; its devices may spend nothing."


class SpendingLimitLapsed(DomainError):
    code = "spending_limit_lapsed"
    template = ("The {currency} spending limit of {vin} was set by {holder}, who no longer holds it; the current "
                "holder sets a new one.")


class CategoryNotAllowed(DomainError):
    code = "category_not_allowed"
    template = ("The spending limit of {vin} allows {allowed}, not {category}; the category limit refused the "
                "payment.")


class OverPaymentLimit(DomainError):
    code = "over_payment_limit"
    template = ("{amount} is more than the per-payment limit of {vin} ({limit} minor units); the per-payment limit "
                "refused the payment.")


class OverDailyLimit(DomainError):
    code = "over_daily_limit"
    template = ("{amount} on top of the {spent} already spent today (UTC) is more than the daily limit of {vin} "
                "({limit} minor units); the daily limit refused the payment.")


# ---------------------------------------------------------------- merchants and tariffs


class UnknownMerchant(DomainError):
    code = "unknown_merchant"
    template = "{merchant!r} is not an active organisation of the consortium; pay a merchant governance admitted."


class MerchantNotInCategory(DomainError):
    code = "merchant_not_in_category"
    template = ("{merchant!r} does not take {category} payments: that category needs the role {role!r}, which "
                "governance did not give it.")


class InvalidTariff(DomainError):
    code = "invalid_tariff"
    template = "The tariff cannot be published: {reason}."


class UnknownTariff(DomainError):
    code = "unknown_tariff"
    template = "{merchant!r} has published no tariff {tariff!r}."


class TariffClosed(DomainError):
    code = "tariff_closed"
    template = "Tariff {tariff!r} of {merchant!r} has no time band at minute {minute} of the UTC day."


class TariffMismatch(DomainError):
    code = "tariff_mismatch"
    template = "The payment names {field} {got!r} but tariff {tariff!r} is in {expected!r}."


class AmountNotTariff(DomainError):
    code = "amount_not_tariff"
    template = ("The payment of {amount} does not match tariff {tariff!r}, which prices it at {price} (minor "
                "units) now; sign the tariff's price.")


# ---------------------------------------------------------------- channels


class UnknownChannel(DomainError):
    code = "unknown_channel"
    template = "There is no payment channel {channel}."


class ChannelClosed(DomainError):
    code = "channel_closed"
    template = "Payment channel {channel} is already closed; it paid {paid} to the merchant and cannot close again."


class ChannelClosing(DomainError):
    code = "channel_closing"
    template = ("Payment channel {channel} is already closing (since block time {closing}); the merchant may "
                "still present a voucher, then anyone settles it.")


class ChannelNotClosing(DomainError):
    code = "channel_not_closing"
    template = ("Payment channel {channel} is open: the payer closes it first (payments.close_channel), and it "
                "settles after the challenge period.")


class ChallengeRunning(DomainError):
    code = "challenge_period_running"
    template = ("The challenge period of channel {channel} runs until block time {until} (now {now}); the "
                "merchant may still present a higher voucher until then.")


class ChallengeOver(DomainError):
    code = "challenge_period_over"
    template = ("The challenge period of channel {channel} ended at block time {until} (now {now}); it settles at "
                "the highest voucher presented before then (payments.settle_channel).")


class NotChannelMerchant(DomainError):
    code = "not_channel_merchant"
    template = "Only a key of the channel's merchant {merchant!r} presents vouchers of channel {channel}."


class NotChannelPayer(DomainError):
    code = "not_channel_payer"
    template = "Only the payer {payer} (or the account {funder} that funded it) closes channel {channel}."


class StaleVoucher(DomainError):
    code = "stale_voucher"
    template = ("A voucher for {best} was already presented on channel {channel}; one for {amount} is older "
                "(vouchers are cumulative: the highest wins).")


class VoucherOtherChannel(DomainError):
    code = "voucher_other_channel"
    template = ("The voucher is for channel {voucher_channel} of chain {voucher_chain!r}, not channel {channel} of "
                "{chain!r}; a voucher is worth nothing elsewhere.")


class VoucherForged(DomainError):
    code = "voucher_forged"
    template = "The voucher's signature is not the payer {payer}'s over channel {channel} and its amount."


class VoucherOverDeposit(DomainError):
    code = "voucher_over_deposit"
    template = "The voucher claims {amount} but channel {channel} holds a deposit of {deposit}; it is worthless."


# ---------------------------------------------------------------- journeys


class InvalidFare(DomainError):
    code = "invalid_fare"
    template = "The journey fare cannot be agreed: {reason}."


class UnknownFare(DomainError):
    code = "unknown_fare"
    template = "There is no journey fare {fare}."


# ---------------------------------------------------------------- sales (delivery versus payment)


class UnknownEscrow(DomainError):
    code = "unknown_escrow"
    template = "There is no sale escrow {escrow}."


class EscrowClosed(DomainError):
    code = "escrow_closed"
    template = "Sale escrow {escrow} was already {status}; its money moved once."


class NotEscrowSeller(DomainError):
    code = "not_escrow_seller"
    template = "Only the seller {seller} settles sale escrow {escrow}, and {sender} does not act for it."


class NotEscrowBuyer(DomainError):
    code = "not_escrow_buyer"
    template = "Only the buyer {buyer} takes back sale escrow {escrow}, and {sender} does not act for it."


class SellerNotHolder(DomainError):
    code = "seller_not_holder"
    template = "{seller} does not hold the title of {vin} (its holder is {holder}), so it cannot sell it."


class BuyerIsSeller(DomainError):
    code = "buyer_is_seller"
    template = "{owner} would buy {vin} from itself."


class InvalidEscrowDeadline(DomainError):
    code = "escrow_deadline_invalid"
    template = ("The deadline {deadline} must be after the block time {now} and no later than {latest} (the "
                "chain's max_escrow_ms).")


class EscrowExpired(DomainError):
    code = "escrow_expired"
    template = ("Sale escrow {escrow} ended at block time {deadline} (now {now}); the title no longer moves "
                "against it and the buyer takes the money back.")


class EscrowDeadlineNotReached(DomainError):
    code = "escrow_deadline_not_reached"
    template = ("Sale escrow {escrow} runs until block time {deadline} (now {now}) and the seller still holds the "
                "title; the buyer takes the money back after the deadline.")


class LienCurrencyMismatch(DomainError):
    code = "lien_currency_mismatch"
    template = ("Lien {lien} on {vin} is in {lien_currency}, the price in {currency}; the lender releases it "
                "first, or the sale is priced in {lien_currency}.")


class LiensExceedPrice(DomainError):
    code = "liens_exceed_price"
    template = "The liens on {vin} add up to {liens}, more than the price of {price}; the sale cannot pay them off."
