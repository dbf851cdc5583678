"""Payments rules. Signers and sender roles were checked by the framework already; these rules say
whose money it is. A refusal raises before the transaction's writes are kept, so it moves nothing.

Value is conserved: only ``issue`` creates units and only ``redeem`` destroys them. Every other
message moves units between accounts and the deposits and escrows that hold them for a while, so
at every height, per currency::

    supply == sum(balances) + sum(deposits of channels not closed) + sum(prices of locked escrows)
              + sum(units other modules hold, ``HELD``: energy's bids until their interval settles)

and no balance is negative (a debit larger than the balance is refused, ``insufficient_funds``).
"""

from __future__ import annotations

import itertools
from typing import Iterable

import msgspec

from ...core.access import VehicleRelations
from ...core.crypto import check_did
from ...core.errors import InvalidKey
from ...core.module import ANYONE, Context, OrgParty, Party
from ...core.state import Overlay, StateReader
from . import errors
from .messages import (
    AgreeFare,
    AttestReserves,
    ChannelClosed,
    ChannelClosing,
    ChannelOpened,
    ClaimChannel,
    CloseChannel,
    CurrencyRegistered,
    FareAgreed,
    Issue,
    Issued,
    JourneyPaid,
    LimitRevoked,
    LimitSet,
    LockSale,
    OpenChannel,
    PayJourney,
    PublishTariff,
    ReclaimSale,
    Redeem,
    Redeemed,
    RegisterCurrency,
    ReservesAttested,
    RevokeLimit,
    SaleLocked,
    SaleReclaimed,
    SaleSettled,
    SetLimit,
    SettleChannel,
    SettleSale,
    TariffPublished,
    Transfer,
    Transferred,
    VehiclePaid,
    VehiclePay,
)
from .spec import CHANNEL_CHALLENGE_MS, CHANNEL_LIST, CURRENCY_LIST, MAX_ESCROW_MS, TARIFF_LIST, Organisations, Vehicles, module
from .state import (
    ACCOUNTS,
    BPS,
    CATEGORY_ROLES,
    CHANNELS,
    CURRENCIES,
    ESCROWS,
    FARES,
    LIMITS,
    MERCHANT_ROLES,
    MINUTE_MS,
    MINUTES_PER_DAY,
    NEXT,
    ORG_PREFIX,
    TARIFFS,
    Channel,
    CurrencyRecord,
    Escrow,
    Fare,
    SpendingLimit,
    Tariff,
    band_at,
    org_of,
    speaks_for,
    spent_today,
    split,
    tariff_price,
    utc_day,
)
from .vouchers import Voucher, check_voucher

# ---------------------------------------------------------------- helpers: currencies and accounts


def _sender_org(ctx: Context) -> str | None:
    return ctx.member.org if ctx.member is not None else None


def _currency(state: StateReader, code: str) -> CurrencyRecord:
    c = CURRENCIES.get(state, code)
    if c is None:
        raise errors.UnknownCurrency(currency=code)
    return c


def _issuer_of(state: StateReader, ctx: Context, code: str) -> CurrencyRecord:
    """The currency, if the sender is a key of its issuer."""
    c = _currency(state, code)
    if _sender_org(ctx) != c.issuer:
        raise errors.NotIssuer(currency=code, issuer=c.issuer, org=_sender_org(ctx) or ctx.sender)
    return c


def check_owner(state: StateReader, ctx: Context, owner: str) -> str:
    """``owner`` if it can hold an account: a usable Ed25519 did:key, or org:<an active organisation>."""
    org = org_of(owner)
    if org is not None:
        if not org or ctx.need(Organisations).org_roles(state, org) is None:
            raise errors.InvalidAccount(owner=owner, reason="it names no active organisation")
        return owner
    try:
        check_did(owner)
    except InvalidKey as err:
        raise errors.InvalidAccount(owner=owner[:120], reason=str(err.detail.get("reason", "not a did:key"))) from None
    return owner


def balance(state: StateReader, currency: str, owner: str) -> int:
    return ACCOUNTS.get(state, currency, owner) or 0


def credit(state: Overlay, currency: str, owner: str, amount: int) -> None:
    if amount:
        ACCOUNTS.put(state, balance(state, currency, owner) + amount, currency, owner)


def debit(state: Overlay, currency: str, owner: str, amount: int) -> None:
    have = balance(state, currency, owner)
    if have < amount:
        raise errors.InsufficientFunds(owner=owner, currency=currency, balance=have, amount=amount)
    if have == amount:
        ACCOUNTS.delete(state, currency, owner)
    elif amount:
        ACCOUNTS.put(state, have - amount, currency, owner)


def payer_account(ctx: Context, payer: str) -> str:
    """The account a message spends from: the sender's key, or ``payer`` if the sender acts for it."""
    if not payer or payer == ctx.sender:
        return ctx.sender
    if not speaks_for(payer, ctx.sender, _sender_org(ctx)):
        raise errors.NotAccountHolder(account=payer, sender=ctx.sender)
    return payer


def _next_id(state: Overlay, name: str) -> int:
    n = NEXT.get(state, name) or 1
    NEXT.put(state, n + 1, name)
    return n


# ---------------------------------------------------------------- helpers: merchants and wallets


def check_merchant(state: StateReader, ctx: Context, merchant: str, category: str) -> None:
    """``merchant`` is an active organisation holding the role of ``category``."""
    roles = ctx.need(Organisations).org_roles(state, merchant)
    if roles is None:
        raise errors.UnknownMerchant(merchant=merchant)
    role = CATEGORY_ROLES[category]
    if role not in roles:
        raise errors.MerchantNotInCategory(merchant=merchant, category=category, role=role)


def spend_from_wallet(state: Overlay, ctx: Context, vin: str, currency: str, amount: int,
                      categories: Iterable[str]) -> str:
    """A device key of ``vin`` spends ``amount`` from the vehicle's wallet, judged against the limit
    in force (its categories, per payment, per UTC day); returns the wallet's owner (the holder),
    already debited. Each refusal names the limit that stopped it."""
    vehicles = ctx.need(Vehicles)
    vehicles.require_vehicle(state, vin)  # unknown_vehicle, vehicle_scrapped
    if ctx.need(VehicleRelations).relation(state, vin, ctx.sender, None) != "device":
        vehicles.refuse_retired_key(state, vin, ctx.sender)  # device_key_revoked, naming the revocation
        raise errors.NotVehicleDevice(signer=ctx.sender, vin=vin)
    limit = LIMITS.get(state, vin, currency)
    if limit is None:
        raise errors.NoSpendingLimit(vin=vin, currency=currency)
    if limit.revoked:
        raise errors.SpendingLimitRevoked(vin=vin, currency=currency, height=limit.revoked)
    title = vehicles.title(state, vin)
    if title is None or (title.holder, title.since) != (limit.holder, limit.holder_since):
        raise errors.SpendingLimitLapsed(vin=vin, currency=currency, holder=limit.holder)
    for category in sorted(set(categories)):
        if category not in limit.categories:
            raise errors.CategoryNotAllowed(vin=vin, category=category, allowed=", ".join(limit.categories))
    if amount > limit.per_payment:
        raise errors.OverPaymentLimit(vin=vin, amount=amount, limit=limit.per_payment)
    spent = spent_today(limit, ctx.time)
    if spent + amount > limit.per_day:
        raise errors.OverDailyLimit(vin=vin, amount=amount, spent=spent, limit=limit.per_day)
    debit(state, currency, limit.holder, amount)
    LIMITS.put(state, msgspec.structs.replace(limit, day=utc_day(ctx.time), spent=spent + amount), vin, currency)
    return limit.holder


# ---------------------------------------------------------------- currencies


@module.message(RegisterCurrency, roles={"issuer"})
def register_currency(state: Overlay, ctx: Context, msg: RegisterCurrency) -> None:
    """An issuer starts issuing a currency; its reserves start at zero until it attests them."""
    assert ctx.member is not None
    existing = CURRENCIES.get(state, msg.currency)
    if existing is not None:
        raise errors.CurrencyTaken(currency=msg.currency, issuer=existing.issuer)
    CURRENCIES.put(state, CurrencyRecord(msg.currency, ctx.member.org, msg.exponent), msg.currency)
    ctx.index_put(CURRENCY_LIST, code=msg.currency, issuer=ctx.member.org)
    ctx.emit(CurrencyRegistered(currency=msg.currency, issuer=ctx.member.org, exponent=msg.exponent))


@module.message(AttestReserves, roles={"issuer"})
def attest_reserves(state: Overlay, ctx: Context, msg: AttestReserves) -> None:
    """The issuer attests its reserves; below the supply it may issue nothing until they cover it."""
    c = _issuer_of(state, ctx, msg.currency)
    CURRENCIES.put(state, msgspec.structs.replace(c, reserves=msg.reserves, evidence=msg.evidence,
                                                  attested=ctx.time), c.code)
    ctx.emit(ReservesAttested(currency=c.code, issuer=c.issuer, reserves=msg.reserves, supply=c.supply,
                              evidence=msg.evidence))


@module.message(Issue, roles={"issuer"})
def issue(state: Overlay, ctx: Context, msg: Issue) -> None:
    """New units, within the attested reserves."""
    c = _issuer_of(state, ctx, msg.currency)
    to = check_owner(state, ctx, msg.to)
    if c.supply + msg.amount > c.reserves:
        raise errors.ReservesExceeded(currency=c.code, supply=c.supply, amount=msg.amount, reserves=c.reserves)
    CURRENCIES.put(state, msgspec.structs.replace(c, supply=c.supply + msg.amount), c.code)
    credit(state, c.code, to, msg.amount)
    ctx.emit(Issued(currency=c.code, issuer=c.issuer, to=to, amount=msg.amount))


@module.message(Redeem, roles=ANYONE)
def redeem(state: Overlay, ctx: Context, msg: Redeem) -> None:
    """Units handed back to the issuer leave the supply; the issuer pays them out off the ledger."""
    c = _currency(state, msg.currency)
    owner = payer_account(ctx, msg.payer)
    debit(state, c.code, owner, msg.amount)
    CURRENCIES.put(state, msgspec.structs.replace(c, supply=c.supply - msg.amount), c.code)
    ctx.emit(Redeemed(currency=c.code, issuer=c.issuer, owner=owner, amount=msg.amount))


@module.message(Transfer, roles=ANYONE)
def transfer(state: Overlay, ctx: Context, msg: Transfer) -> None:
    """Units from one account to another."""
    c = _currency(state, msg.currency)
    payer = payer_account(ctx, msg.payer)
    to = check_owner(state, ctx, msg.to)
    if to == payer:
        raise errors.SameAccount(owner=payer)
    debit(state, c.code, payer, msg.amount)
    credit(state, c.code, to, msg.amount)
    ctx.emit(Transferred(currency=c.code, payer=payer, to=to, amount=msg.amount, memo=msg.memo))


# ---------------------------------------------------------------- a vehicle's wallet


@module.message(SetLimit, roles=ANYONE)
def set_limit(state: Overlay, ctx: Context, msg: SetLimit) -> None:
    """The holder lets the vehicle's devices spend from its account, within limits."""
    vehicles = ctx.need(Vehicles)
    vehicles.require_vehicle(state, msg.vin)
    title = vehicles.title(state, msg.vin)
    assert title is not None, "require_vehicle accepted an unregistered VIN"
    if not speaks_for(title.holder, ctx.sender, _sender_org(ctx)):
        raise errors.NotWalletHolder(vin=msg.vin, sender=ctx.sender)
    _currency(state, msg.currency)
    if msg.per_payment > msg.per_day:
        raise errors.InvalidSpendingLimit(reason=f"the per-payment limit {msg.per_payment} is above the daily "
                                                 f"limit {msg.per_day}")
    old = LIMITS.get(state, msg.vin, msg.currency)
    keep = old is not None and not old.revoked and (old.holder, old.holder_since) == (title.holder, title.since)
    categories = sorted(set(msg.categories))
    LIMITS.put(state, SpendingLimit(msg.vin, msg.currency, title.holder, title.since, msg.per_payment, msg.per_day,
                                    categories, ctx.sender, ctx.height,
                                    day=old.day if keep and old else 0, spent=old.spent if keep and old else 0),
               msg.vin, msg.currency)
    ctx.emit(LimitSet(vin=msg.vin, currency=msg.currency, per_payment=msg.per_payment, per_day=msg.per_day,
                      categories=categories))


@module.message(RevokeLimit, roles=ANYONE)
def revoke_limit(state: Overlay, ctx: Context, msg: RevokeLimit) -> None:
    """The holder revokes the limit at once; a new one may be set later."""
    vehicles = ctx.need(Vehicles)
    vehicles.require_vehicle(state, msg.vin, allow_scrapped=True)
    title = vehicles.title(state, msg.vin)
    assert title is not None, "require_vehicle accepted an unregistered VIN"
    if not speaks_for(title.holder, ctx.sender, _sender_org(ctx)):
        raise errors.NotWalletHolder(vin=msg.vin, sender=ctx.sender)
    limit = LIMITS.get(state, msg.vin, msg.currency)
    if limit is None:
        raise errors.NoSpendingLimit(vin=msg.vin, currency=msg.currency)
    if limit.revoked:
        raise errors.SpendingLimitRevoked(vin=msg.vin, currency=msg.currency, height=limit.revoked)
    LIMITS.put(state, msgspec.structs.replace(limit, revoked=ctx.height), msg.vin, msg.currency)
    ctx.emit(LimitRevoked(vin=msg.vin, currency=msg.currency))


@module.message(VehiclePay, roles=ANYONE)
def vehicle_pay(state: Overlay, ctx: Context, msg: VehiclePay) -> None:
    """A device pays a merchant of the category from the vehicle's wallet, within the limit."""
    _currency(state, msg.currency)
    check_merchant(state, ctx, msg.merchant, msg.category)
    if msg.tariff:
        t = tariff(state, msg.merchant, msg.tariff)
        for name, got, expected in (("category", msg.category, t.category), ("currency", msg.currency, t.currency)):
            if got != expected:
                raise errors.TariffMismatch(field=name, got=got, tariff=t.id, expected=expected)
        band = band_at(t, ctx.time)
        if band is None:
            raise errors.TariffClosed(tariff=t.id, merchant=t.merchant,
                                      minute=(ctx.time // MINUTE_MS) % MINUTES_PER_DAY)
        price = tariff_price(t, band, msg.quantity)
        if price != msg.amount:
            raise errors.AmountNotTariff(amount=msg.amount, tariff=t.id, price=price)
    spend_from_wallet(state, ctx, msg.vin, msg.currency, msg.amount, [msg.category])
    credit(state, msg.currency, ORG_PREFIX + msg.merchant, msg.amount)
    ctx.emit(VehiclePaid(vin=msg.vin, merchant=msg.merchant, category=msg.category, currency=msg.currency,
                         amount=msg.amount, tariff=msg.tariff))


# ---------------------------------------------------------------- merchants


def tariff(state: StateReader, merchant: str, tariff_id: str) -> Tariff:
    t = TARIFFS.get(state, merchant, tariff_id) if tariff_id and "/" not in tariff_id else None
    if t is None:
        raise errors.UnknownTariff(merchant=merchant, tariff=tariff_id)
    return t


@module.message(PublishTariff, roles=MERCHANT_ROLES)
def publish_tariff(state: Overlay, ctx: Context, msg: PublishTariff) -> None:
    """A merchant publishes (or replaces) a tariff in one of its categories."""
    assert ctx.member is not None
    org = ctx.member.org
    check_merchant(state, ctx, org, msg.category)
    _currency(state, msg.currency)
    bands = sorted(msg.bands, key=lambda b: b.start)
    for b in bands:
        if b.start >= b.end:
            raise errors.InvalidTariff(reason=f"the band starting at minute {b.start} ends at {b.end}, not after it")
    for a, b in itertools.pairwise(bands):
        if b.start < a.end:
            raise errors.InvalidTariff(reason=f"the bands starting at minutes {a.start} and {b.start} overlap")
    old = TARIFFS.get(state, org, msg.tariff)
    version = old.version + 1 if old is not None else 1
    TARIFFS.put(state, Tariff(org, msg.tariff, msg.category, msg.currency, msg.unit, msg.per, msg.zone, msg.base,
                              bands, version, ctx.height), org, msg.tariff)
    ctx.index_put(TARIFF_LIST, merchant=org, tariff=msg.tariff, category=msg.category, zone=msg.zone)
    ctx.emit(TariffPublished(merchant=org, tariff=msg.tariff, category=msg.category, version=version))


# ---------------------------------------------------------------- payment channels


def _channel(state: StateReader, cid: int) -> Channel:
    ch = CHANNELS.get(state, cid)
    if ch is None:
        raise errors.UnknownChannel(channel=cid)
    return ch


def _put_channel(state: Overlay, ctx: Context, ch: Channel) -> None:
    CHANNELS.put(state, ch, ch.id)
    ctx.index_put(CHANNEL_LIST, id=ch.id, merchant=ch.merchant, payer=ch.payer, funder=ch.funder, status=ch.status)


def _voucher(ctx: Context, ch: Channel, voucher: Voucher) -> int:
    amount = check_voucher(voucher, chain=ctx.chain, channel=ch.id, payer=ch.payer, deposit=ch.deposit)
    if amount < ch.best:
        raise errors.StaleVoucher(channel=ch.id, amount=amount, best=ch.best)
    return amount


def _close(state: Overlay, ctx: Context, ch: Channel, paid: int) -> None:
    """Pay ``paid`` to the merchant and the rest of the deposit back to the funder."""
    credit(state, ch.currency, ORG_PREFIX + ch.merchant, paid)
    credit(state, ch.currency, ch.funder, ch.deposit - paid)
    _put_channel(state, ctx, msgspec.structs.replace(ch, status="closed", best=paid, paid=paid))
    ctx.emit(ChannelClosed(channel=ch.id, payer=ch.payer, funder=ch.funder, merchant=ch.merchant, paid=paid,
                           refunded=ch.deposit - paid))


@module.message(OpenChannel, roles=ANYONE)
def open_channel(state: Overlay, ctx: Context, msg: OpenChannel) -> None:
    """The deposit leaves the funder's account into the channel; the sender's key signs vouchers."""
    _currency(state, msg.currency)
    check_merchant(state, ctx, msg.merchant, msg.category)
    if msg.vin:
        if msg.payer:
            raise errors.NotAccountHolder(account=msg.payer, sender=ctx.sender)  # a device spends only the wallet
        funder = spend_from_wallet(state, ctx, msg.vin, msg.currency, msg.deposit, [msg.category])
    else:
        funder = payer_account(ctx, msg.payer)
        debit(state, msg.currency, funder, msg.deposit)
    if funder == ORG_PREFIX + msg.merchant:
        raise errors.SameAccount(owner=funder)
    cid = _next_id(state, "channel")
    ch = Channel(cid, ctx.sender, funder, msg.merchant, msg.currency, msg.category, msg.deposit,
                 ctx.param(CHANNEL_CHALLENGE_MS.name), ctx.time, vin=msg.vin)
    _put_channel(state, ctx, ch)
    ctx.emit(ChannelOpened(channel=cid, payer=ch.payer, funder=funder, merchant=ch.merchant, currency=ch.currency,
                           deposit=ch.deposit, vin=msg.vin))


@module.message(ClaimChannel, roles=MERCHANT_ROLES)
def claim_channel(state: Overlay, ctx: Context, msg: ClaimChannel) -> None:
    """The merchant closes with the latest voucher, while the channel is open or its challenge period
    runs: the highest voucher presented wins. After the period only ``settle_channel`` ends it."""
    ch = _channel(state, msg.channel)
    if _sender_org(ctx) != ch.merchant:
        raise errors.NotChannelMerchant(merchant=ch.merchant, channel=ch.id)
    if ch.status == "closed":
        raise errors.ChannelClosed(channel=ch.id, paid=ch.paid)
    if ch.status == "closing" and ctx.time >= ch.closing + ch.challenge_ms:
        raise errors.ChallengeOver(channel=ch.id, until=ch.closing + ch.challenge_ms, now=ctx.time)
    _close(state, ctx, ch, _voucher(ctx, ch, msg.voucher))


@module.message(CloseChannel, roles=ANYONE)
def close_channel(state: Overlay, ctx: Context, msg: CloseChannel) -> None:
    """The payer starts the challenge period, presenting its latest voucher if it likes."""
    ch = _channel(state, msg.channel)
    if ctx.sender != ch.payer and not speaks_for(ch.funder, ctx.sender, _sender_org(ctx)):
        raise errors.NotChannelPayer(payer=ch.payer, funder=ch.funder, channel=ch.id)
    if ch.status == "closed":
        raise errors.ChannelClosed(channel=ch.id, paid=ch.paid)
    if ch.status == "closing":
        raise errors.ChannelClosing(channel=ch.id, closing=ch.closing)
    best = _voucher(ctx, ch, msg.voucher) if msg.voucher is not None else ch.best
    ch = msgspec.structs.replace(ch, status="closing", closing=ctx.time, best=best)
    _put_channel(state, ctx, ch)
    ctx.emit(ChannelClosing(channel=ch.id, payer=ch.payer, funder=ch.funder, merchant=ch.merchant, best=best,
                            until=ch.closing + ch.challenge_ms))


@module.message(SettleChannel, roles=ANYONE)
def settle_channel(state: Overlay, ctx: Context, msg: SettleChannel) -> None:
    """After the challenge period: the merchant gets the highest voucher presented, the funder the rest."""
    ch = _channel(state, msg.channel)
    if ch.status == "closed":
        raise errors.ChannelClosed(channel=ch.id, paid=ch.paid)
    if ch.status == "open":
        raise errors.ChannelNotClosing(channel=ch.id)
    until = ch.closing + ch.challenge_ms
    if ctx.time < until:
        raise errors.ChallengeRunning(channel=ch.id, until=until, now=ctx.time)
    _close(state, ctx, ch, ch.best)


# ---------------------------------------------------------------- journeys


def _fare_parties(state: StateReader, ctx: Context, msg: AgreeFare) -> list[Party]:
    """A key of every operator named (active ones; the handler refuses the others)."""
    orgs = ctx.need(Organisations)
    return [OrgParty(org, "", f"operator {org}") for org in sorted({s.org for s in msg.shares})
            if orgs.org_roles(state, org) is not None]


@module.message(AgreeFare, roles=MERCHANT_ROLES, cosigners=_fare_parties)
def agree_fare(state: Overlay, ctx: Context, msg: AgreeFare) -> None:
    """Operators agree a journey fare's shares; the sender's organisation leads it."""
    assert ctx.member is not None
    lead = ctx.member.org
    _currency(state, msg.currency)
    orgs = [s.org for s in msg.shares]
    if len(set(orgs)) != len(orgs):
        raise errors.InvalidFare(reason="an operator is named twice")
    if lead not in orgs:
        raise errors.InvalidFare(reason=f"the lead operator {lead!r} (the sender's organisation) has no share")
    total = sum(s.bps for s in msg.shares)
    if total != BPS:
        raise errors.InvalidFare(reason=f"the shares add up to {total} basis points, not {BPS}")
    for s in msg.shares:
        check_merchant(state, ctx, s.org, s.category)
    fid = _next_id(state, "fare")
    FARES.put(state, Fare(fid, lead, msg.name, msg.currency, list(msg.shares), ctx.height), fid)
    ctx.emit(FareAgreed(fare=fid, lead=lead, operators=orgs))


@module.message(PayJourney, roles=ANYONE)
def pay_journey(state: Overlay, ctx: Context, msg: PayJourney) -> None:
    """One payment, split between the fare's operators: every part is credited, or nothing is."""
    fare = FARES.get(state, msg.fare)
    if fare is None:
        raise errors.UnknownFare(fare=msg.fare)
    for s in fare.shares:  # an operator removed since the agreement is paid nothing, so nobody is
        check_merchant(state, ctx, s.org, s.category)
    if msg.vin:
        if msg.payer:
            raise errors.NotAccountHolder(account=msg.payer, sender=ctx.sender)
        payer = spend_from_wallet(state, ctx, msg.vin, fare.currency, msg.amount, [s.category for s in fare.shares])
    else:
        payer = payer_account(ctx, msg.payer)
        debit(state, fare.currency, payer, msg.amount)
    parts = split(fare, msg.amount)
    for org, part in parts:
        credit(state, fare.currency, ORG_PREFIX + org, part)
    ctx.emit(JourneyPaid(fare=fare.id, payer=payer, currency=fare.currency, amount=msg.amount,
                         parts={org: part for org, part in parts}, vin=msg.vin))


# ---------------------------------------------------------------- sales: delivery versus payment


def _escrow(state: StateReader, eid: int) -> Escrow:
    e = ESCROWS.get(state, eid)
    if e is None:
        raise errors.UnknownEscrow(escrow=eid)
    if e.status != "locked":
        raise errors.EscrowClosed(escrow=eid, status=e.status)
    return e


@module.message(LockSale, roles=ANYONE)
def lock_sale(state: Overlay, ctx: Context, msg: LockSale) -> None:
    """The buyer locks the price for a vehicle its holder sells, until a deadline."""
    vehicles = ctx.need(Vehicles)
    vehicles.require_vehicle(state, msg.vin)
    title = vehicles.title(state, msg.vin)
    assert title is not None
    _currency(state, msg.currency)
    buyer = payer_account(ctx, msg.payer)
    if msg.seller != title.holder:
        raise errors.SellerNotHolder(seller=msg.seller, vin=msg.vin, holder=title.holder)
    if buyer == msg.seller:
        raise errors.BuyerIsSeller(owner=buyer, vin=msg.vin)
    latest = ctx.time + ctx.param(MAX_ESCROW_MS.name)
    if not ctx.time < msg.deadline <= latest:
        raise errors.InvalidEscrowDeadline(deadline=msg.deadline, now=ctx.time, latest=latest)
    debit(state, msg.currency, buyer, msg.price)
    eid = _next_id(state, "escrow")
    ESCROWS.put(state, Escrow(eid, msg.vin, buyer, msg.seller, msg.currency, msg.price, msg.deadline, ctx.time), eid)
    ctx.emit(SaleLocked(escrow=eid, vin=msg.vin, buyer=buyer, seller=msg.seller, deadline=msg.deadline))


@module.message(SettleSale, roles=ANYONE)
def settle_sale(state: Overlay, ctx: Context, msg: SettleSale) -> None:
    """The seller delivers: liens paid off and released, the title to the buyer, the rest of the price
    to the seller, and "sale paid" (no amount) on the vehicle's history: one transaction."""
    e = _escrow(state, msg.escrow)
    if not speaks_for(e.seller, ctx.sender, _sender_org(ctx)):
        raise errors.NotEscrowSeller(escrow=e.id, seller=e.seller, sender=ctx.sender)
    if ctx.time >= e.deadline:
        raise errors.EscrowExpired(escrow=e.id, deadline=e.deadline, now=ctx.time)
    vehicles = ctx.need(Vehicles)
    title = vehicles.title(state, e.vin)
    holder = title.holder if title is not None else "nobody"
    if holder != e.seller:
        raise errors.SellerNotHolder(seller=e.seller, vin=e.vin, holder=holder)
    liens = vehicles.transfer_paid(state, ctx, e.vin, e.buyer)  # the title moves (or this raises)
    owed = 0
    for lien in liens:
        if lien.currency != e.currency:
            raise errors.LienCurrencyMismatch(lien=lien.id, vin=e.vin, lien_currency=lien.currency,
                                              currency=e.currency)
        owed += lien.amount
    if owed > e.price:
        raise errors.LiensExceedPrice(vin=e.vin, liens=owed, price=e.price)
    for lien in liens:
        credit(state, e.currency, ORG_PREFIX + lien.lender, lien.amount)
    credit(state, e.currency, e.seller, e.price - owed)
    ESCROWS.put(state, msgspec.structs.replace(e, status="settled", closed=ctx.height), e.id)
    vehicles.record_event(state, ctx, e.vin, "sale_paid", {"escrow": e.id, "liens_paid_off": len(liens)})
    ctx.emit(SaleSettled(escrow=e.id, vin=e.vin, buyer=e.buyer, seller=e.seller,
                         lenders=sorted({lien.lender for lien in liens})))


@module.message(ReclaimSale, roles=ANYONE)
def reclaim_sale(state: Overlay, ctx: Context, msg: ReclaimSale) -> None:
    """The buyer takes the price back: after the deadline, or once the seller no longer holds the title."""
    e = _escrow(state, msg.escrow)
    if not speaks_for(e.buyer, ctx.sender, _sender_org(ctx)):
        raise errors.NotEscrowBuyer(escrow=e.id, buyer=e.buyer, sender=ctx.sender)
    title = ctx.need(Vehicles).title(state, e.vin)
    seller_holds = title is not None and title.holder == e.seller
    if ctx.time < e.deadline and seller_holds:
        raise errors.EscrowDeadlineNotReached(escrow=e.id, deadline=e.deadline, now=ctx.time)
    credit(state, e.currency, e.buyer, e.price)
    ESCROWS.put(state, msgspec.structs.replace(e, status="reclaimed", closed=ctx.height), e.id)
    ctx.emit(SaleReclaimed(escrow=e.id, vin=e.vin, buyer=e.buyer, seller=e.seller))
