"""Payments messages and events. Amounts are integer minor units; times are block times (ms).

An optional ``payer`` names the account to spend from when it is not the sender's own key: an
``org:<id>`` the sender is a key of. An optional ``vin`` spends from that vehicle's wallet (its
holder's account) instead: the sender is then one of the vehicle's device keys, and the holder's
spending limit applies.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import Hex32, Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Amount, Band, Category, Currency, Ident, Owner, Share, TariffUnit
from .vouchers import Voucher

Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]
OptVin = Annotated[str, msgspec.Meta(max_length=40, description="a VIN, or empty")]
Payer = Annotated[str, msgspec.Meta(max_length=120, pattern="^[^/]*$",
                                    description="the account to spend from (default: the sender's key)")]
Memo = Annotated[str, msgspec.Meta(max_length=140, description="a reference for the payee (no personal data)")]
Zone = Annotated[str, msgspec.Meta(min_length=1, max_length=64, description="a zone the merchant names")]

# ---------------------------------------------------------------- currencies and accounts


class RegisterCurrency(Message, tag="payments.register_currency"):
    """An issuer (an e-money institution governance admitted with the ``issuer`` role) starts issuing
    a currency on the ledger; a currency has one issuer."""

    currency: Currency
    exponent: Annotated[int, msgspec.Meta(ge=0, le=4, description="digits of the minor unit (2 for EUR)")]


class AttestReserves(Message, tag="payments.attest_reserves"):
    """The issuer attests the reserves backing its currency (minor units), naming the hash of the
    attestation document (an auditor's report, kept off the ledger)."""

    currency: Currency
    reserves: Uint
    evidence: Hex32


class Issue(Message, tag="payments.issue"):
    """The issuer credits an account with new units, within its attested reserves."""

    currency: Currency
    to: Owner
    amount: Amount


class Redeem(Message, tag="payments.redeem"):
    """An account holder hands units back to the issuer, which pays them out off the ledger; the
    units leave the supply."""

    currency: Currency
    amount: Amount
    payer: Payer = ""


class Transfer(Message, tag="payments.transfer"):
    """Move units from the sender's account (or ``payer``) to another account."""

    currency: Currency
    to: Owner
    amount: Amount
    payer: Payer = ""
    memo: Memo = ""


# ---------------------------------------------------------------- a vehicle's wallet


class SetLimit(Message, tag="payments.set_limit"):
    """The title holder (a key, or a key of the holding organisation: a fleet manager) lets the
    vehicle's device keys spend from the holder's account: at most ``per_payment`` per payment,
    ``per_day`` per UTC day, only in ``categories``. It replaces the limit in force."""

    vin: Vin
    currency: Currency
    per_payment: Amount
    per_day: Amount
    categories: Annotated[list[Category], msgspec.Meta(min_length=1, max_length=6)]


class RevokeLimit(Message, tag="payments.revoke_limit"):
    """The title holder revokes the vehicle's spending limit: its devices spend nothing more."""

    vin: Vin
    currency: Currency


class VehiclePay(Message, tag="payments.vehicle_pay"):
    """A vehicle's device key pays a merchant from the vehicle's wallet, within the holder's limit.
    Naming a ``tariff`` (of that merchant) with a ``quantity`` has the ledger check that ``amount``
    is the tariff's price at the block time."""

    vin: Vin
    merchant: Ident
    category: Category
    currency: Currency
    amount: Amount
    tariff: Annotated[str, msgspec.Meta(max_length=64)] = ""
    quantity: Uint = 0
    memo: Memo = ""


# ---------------------------------------------------------------- merchants


class PublishTariff(Message, tag="payments.publish_tariff"):
    """A merchant (toll, parking, charging, fuel, ride or insurance operator) publishes or replaces
    a tariff for a zone: ``base`` per use plus, in the time band (minutes of the UTC day) of the
    moment of use, ``price`` per ``per`` units of ``unit``."""

    tariff: Ident
    category: Category
    currency: Currency
    unit: TariffUnit
    zone: Zone
    bands: Annotated[list[Band], msgspec.Meta(min_length=1, max_length=48)]
    per: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1
    base: Uint = 0


# ---------------------------------------------------------------- payment channels


class OpenChannel(Message, tag="payments.open_channel"):
    """Open a unidirectional payment channel to a merchant with a deposit; the sender's key signs
    the vouchers. With ``vin`` the deposit comes from the vehicle's wallet (the sender is a device
    key of it, within the limit); otherwise from the sender's account (or ``payer``)."""

    merchant: Ident
    category: Category
    currency: Currency
    deposit: Amount
    vin: OptVin = ""
    payer: Payer = ""


class ClaimChannel(Message, tag="payments.claim_channel"):
    """The merchant closes a channel with the payer's latest voucher: it is paid the voucher's
    amount (or a higher one the payer presented), the rest of the deposit goes back."""

    channel: Uint
    voucher: Voucher


class CloseChannel(Message, tag="payments.close_channel"):
    """The payer (or the account that funded it) starts closing a channel, optionally presenting the
    latest voucher it signed; the merchant has the challenge period to present a higher one."""

    channel: Uint
    voucher: Voucher | None = None


class SettleChannel(Message, tag="payments.settle_channel"):
    """After the challenge period of a closing channel, anyone settles it: the merchant gets the
    highest voucher presented, the funder the rest."""

    channel: Uint


# ---------------------------------------------------------------- journeys


class AgreeFare(Message, tag="payments.agree_fare"):
    """Operators agree how a journey's fare is split (basis points adding up to 10,000): the lead
    operator sends it, and a key of every other operator co-signs."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    currency: Currency
    shares: Annotated[list[Share], msgspec.Meta(min_length=1, max_length=16)]


class PayJourney(Message, tag="payments.pay_journey"):
    """Pay a journey in one transaction: the amount is split between the fare's operators, all or
    nothing. With ``vin``, from the vehicle's wallet within its limit (every operator's category
    allowed)."""

    fare: Uint
    amount: Amount
    vin: OptVin = ""
    payer: Payer = ""
    memo: Memo = ""


# ---------------------------------------------------------------- sales (delivery versus payment)


class LockSale(Message, tag="payments.lock_sale"):
    """A buyer locks the price of a vehicle in escrow: the title holder ``seller`` is paid (each
    lender first) in the transaction that moves the title to the buyer, before ``deadline``; after
    it, the buyer takes the money back."""

    vin: Vin
    seller: Owner
    currency: Currency
    price: Amount
    deadline: Uint
    payer: Payer = ""


class SettleSale(Message, tag="payments.settle_sale"):
    """The seller delivers: the title passes to the buyer, each lien is paid off and released, and
    the seller gets the rest of the price, all in this one transaction."""

    escrow: Uint


class ReclaimSale(Message, tag="payments.reclaim_sale"):
    """The buyer takes back the price of a sale that did not complete: after the deadline, or as
    soon as the seller no longer holds the title."""

    escrow: Uint


# ---------------------------------------------------------------- events


class CurrencyRegistered(Event, tag="payments.currency_registered"):
    currency: str
    issuer: str
    exponent: Uint


class ReservesAttested(Event, tag="payments.reserves_attested"):
    currency: str
    issuer: str
    reserves: Uint
    supply: Uint
    evidence: str


class Issued(Event, tag="payments.issued"):
    currency: str
    issuer: str
    to: str
    amount: Uint


class Redeemed(Event, tag="payments.redeemed"):
    currency: str
    issuer: str
    owner: str
    amount: Uint


class Transferred(Event, tag="payments.transferred"):
    currency: str
    payer: str
    to: str
    amount: Uint
    memo: str = ""


class LimitSet(Event, tag="payments.limit_set"):
    vin: str
    currency: str
    per_payment: Uint
    per_day: Uint
    categories: list[str]


class LimitRevoked(Event, tag="payments.limit_revoked"):
    vin: str
    currency: str


class VehiclePaid(Event, tag="payments.vehicle_paid"):
    vin: str
    merchant: str
    category: str
    currency: str
    amount: Uint
    tariff: str = ""


class TariffPublished(Event, tag="payments.tariff_published"):
    merchant: str
    tariff: str
    category: str
    version: Uint


class ChannelOpened(Event, tag="payments.channel_opened"):
    channel: Uint
    payer: str
    funder: str
    merchant: str
    currency: str
    deposit: Uint
    vin: str = ""


class ChannelClosing(Event, tag="payments.channel_closing"):
    channel: Uint
    payer: str
    funder: str
    merchant: str
    best: Uint
    until: Uint


class ChannelClosed(Event, tag="payments.channel_closed"):
    channel: Uint
    payer: str
    funder: str
    merchant: str
    paid: Uint
    refunded: Uint


class FareAgreed(Event, tag="payments.fare_agreed"):
    fare: Uint
    lead: str
    operators: list[str]


class JourneyPaid(Event, tag="payments.journey_paid"):
    fare: Uint
    payer: str
    currency: str
    amount: Uint
    parts: dict[str, Uint]
    vin: str = ""


class SaleLocked(Event, tag="payments.sale_locked"):
    escrow: Uint
    vin: str
    buyer: str
    seller: str
    deadline: Uint


class SaleSettled(Event, tag="payments.sale_settled"):
    escrow: Uint
    vin: str
    buyer: str
    seller: str
    lenders: list[str]


class SaleReclaimed(Event, tag="payments.sale_reclaimed"):
    escrow: Uint
    vin: str
    buyer: str
    seller: str
