"""Payments queries and who reads them (and each event type).

An account's balance is its owner's; a currency's supply and reserves are its issuer's; a vehicle's
spending limit is its holder's and its devices'; a channel is its payer's, funder's and
merchant's; an escrow its buyer's and seller's. Tariffs and journey fares are offers: any signed
request reads them (a vehicle's device key too). Regulators, police and nodes read everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import msgspec

from ...core.access import IDENTIFIED, SIGNED, AnyOf, Caller, NotYourData, OrgOf, Own, Party, VehicleRelations, field_of
from ...core.errors import QueryParamsInvalid
from ...core.encoding import Uint, to_builtins
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .spec import CHANNEL_LIST, CURRENCY_LIST, TARIFF_LIST, Vehicles, module
from .state import (ACCOUNTS, CHANNELS, CURRENCIES, ESCROWS, FARES, LIMITS, MINUTE_MS, MINUTES_PER_DAY, TARIFFS,
                    band_at, org_of, spent_today, tariff_price)

#: Most rows one page of a listing returns.
PAGE_MAX = 1000


def parties(*owners: Any) -> set[str]:
    """The names ``Party`` matches for account owners: the key itself, or the organisation id."""
    out: set[str] = set()
    for owner in owners:
        if isinstance(owner, str) and owner:
            out.add(org_of(owner) or owner)
    return out


@dataclass(frozen=True)
class HolderOrDevice:
    """Data of the vehicle whose VIN is ``field``: its holder (a key, or any key of a holding
    organisation) and its device keys (and regulators, police)."""

    field: str

    def check(self, view: Any, caller: Caller, obj: Any, what: str) -> None:
        vin = field_of(obj, self.field)
        if caller.reads_all or (isinstance(vin, str) and view.need(VehicleRelations).relation(
                view, vin, caller.did, caller.org) in ("holder", "device")):
            return
        raise NotYourData(what=what, owner=f"the holder or a device of {str(vin)[:40]}", caller=caller.describe())

    def describe(self) -> str:
        return "the vehicle's holder and its device keys"


def _issuer(view: Any, obj: Any) -> set[str]:
    c = CURRENCIES.get(view, str(field_of(obj, "currency"))) if _part(field_of(obj, "currency")) else None
    return {c.issuer} if c is not None else set()


def _part(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 200 and "/" not in value


def _channel_parties(view: Any, obj: Any) -> set[str]:
    cid = field_of(obj, "channel")
    ch = CHANNELS.get(view, cid) if isinstance(cid, int) and cid >= 0 else None
    return parties(ch.payer, ch.funder, "org:" + ch.merchant) if ch is not None else set()


def _escrow_parties(view: Any, obj: Any) -> set[str]:
    eid = field_of(obj, "escrow")
    e = ESCROWS.get(view, eid) if isinstance(eid, int) and eid >= 0 else None
    return parties(e.buyer, e.seller) if e is not None else set()


#: Event fields that name organisation ids (the others name account owners: keys or org:<id>).
ORG_FIELDS = frozenset({"merchant", "lenders", "operators", "parts", "issuer"})


def _named(*fields: str) -> Party:
    """The parties an event's ``fields`` name."""

    def named(view: Any, ev: Any) -> set[str]:
        out: set[str] = set()
        for f in fields:
            v = field_of(ev, f)
            values: Iterable[Any] = v if isinstance(v, (list, dict)) else [v]
            names = [x for x in values if isinstance(x, str) and x]
            out |= set(names) if f in ORG_FIELDS else parties(*names)
        return out

    return Party(named, f"the parties the event names ({', '.join(fields)})")


# ---------------------------------------------------------------- accounts and currencies


class BalanceQuery(msgspec.Struct):
    owner: KeyPart
    currency: KeyPart


class CurrencyQuery(msgspec.Struct):
    currency: KeyPart


@module.query("balance", BalanceQuery, read=Own("owner"))
def balance(view: QueryView, q: BalanceQuery) -> dict[str, Any]:
    """An account's balance in minor units (0 for an account that never held any)."""
    return {"owner": q.owner, "currency": q.currency, "balance": ACCOUNTS.get(view, q.currency, q.owner) or 0}


@module.query("currencies", Page, read=IDENTIFIED)
def currencies(view: QueryView, q: Page) -> dict[str, Any]:
    """The currencies the ledger carries and their issuers, by code."""
    rows = view.rows(CURRENCY_LIST, {}, order=("code",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"currencies": [{"currency": r["code"], "issuer": r["issuer"]} for r in rows]}


@module.query("supply", CurrencyQuery, read=Party(_issuer, "the currency's issuer"))
def supply(view: QueryView, q: CurrencyQuery) -> dict[str, Any]:
    """A currency's supply (units outstanding) and the reserves its issuer last attested."""
    c = CURRENCIES.get(view, q.currency)
    return {"currency": q.currency, "found": c is not None, **(to_builtins(c) if c is not None else {})}


# ---------------------------------------------------------------- a vehicle's wallet


class LimitQuery(msgspec.Struct):
    vin: KeyPart
    currency: KeyPart


@module.query("limit", LimitQuery, read=HolderOrDevice("vin"))
def limit(view: QueryView, q: LimitQuery) -> dict[str, Any]:
    """A vehicle's spending limit and its status at the block the query reads: active, revoked or
    lapsed (set by a former holder); ``spent_today`` is the UTC day's spending so far."""
    lim = LIMITS.get(view, q.vin, q.currency)
    if lim is None:
        return {"vin": q.vin, "currency": q.currency, "limit": None}
    title = view.need(Vehicles).title(view, q.vin)
    status = ("revoked" if lim.revoked else
              "active" if title is not None and (title.holder, title.since) == (lim.holder, lim.holder_since)
              else "lapsed")
    if status == "lapsed":  # a former holder's: its amounts and spending are not the new holder's to read
        return {"vin": q.vin, "currency": q.currency, "limit": None, "status": "lapsed"}
    return {"vin": q.vin, "currency": q.currency, "limit": to_builtins(lim), "status": status,
            "spent_today": spent_today(lim, view.time) if status == "active" else 0}


# ---------------------------------------------------------------- tariffs


class TariffQuery(msgspec.Struct):
    merchant: KeyPart
    tariff: KeyPart


class TariffsQuery(Page, kw_only=True):
    merchant: KeyPart


class PriceQuery(msgspec.Struct, kw_only=True):
    merchant: KeyPart
    tariff: KeyPart
    quantity: Uint
    at: Uint | None = None  # block time; default: the time of the block the query reads


@module.query("tariff", TariffQuery, read=SIGNED)
def tariff(view: QueryView, q: TariffQuery) -> dict[str, Any]:
    """One tariff of a merchant (None if it has not published it)."""
    t = TARIFFS.get(view, q.merchant, q.tariff)
    return {"merchant": q.merchant, "tariff": to_builtins(t) if t is not None else None}


@module.query("tariffs", TariffsQuery, read=SIGNED)
def tariffs(view: QueryView, q: TariffsQuery) -> dict[str, Any]:
    """A merchant's tariffs, by id."""
    rows = view.rows(TARIFF_LIST, {"merchant": q.merchant}, order=("tariff",), limit=q.size(PAGE_MAX),
                     offset=q.offset)
    found = [TARIFFS.get(view, q.merchant, r["tariff"]) for r in rows]
    return {"merchant": q.merchant, "total": view.count(TARIFF_LIST, {"merchant": q.merchant}),
            "tariffs": [to_builtins(t) for t in found if t is not None]}


@module.query("price", PriceQuery, read=SIGNED)
def price(view: QueryView, q: PriceQuery) -> dict[str, Any]:
    """What ``quantity`` units cost under a tariff at block time ``at``: the amount a vehicle signs
    in ``payments.vehicle_pay`` naming that tariff (None when no band is open then)."""
    at = view.time if q.at is None else q.at
    t = TARIFFS.get(view, q.merchant, q.tariff)
    band = band_at(t, at) if t is not None else None
    return {"merchant": q.merchant, "tariff": q.tariff, "quantity": q.quantity, "at": at,
            "minute": (at // MINUTE_MS) % MINUTES_PER_DAY if at >= 0 else None,
            "currency": t.currency if t is not None else None,
            "amount": _json_safe(tariff_price(t, band, q.quantity)) if t is not None and band is not None else None}


def _json_safe(amount: int) -> int:
    """An amount a client can read exactly (2^53-1 at most, as every integer blokauto answers)."""
    if amount > MAX_SAFE:
        raise QueryParamsInvalid(reason=f"that quantity costs more than {MAX_SAFE} minor units, the most an amount "
                                        f"may be; ask for a smaller quantity")
    return amount


MAX_SAFE = 2**53 - 1


# ---------------------------------------------------------------- channels, fares, escrows


class ChannelQuery(msgspec.Struct):
    channel: Uint


class ChannelsQuery(Page, kw_only=True):
    merchant: KeyPart


class FareQuery(msgspec.Struct):
    fare: Uint


class EscrowQuery(msgspec.Struct):
    escrow: Uint


@module.query("channel", ChannelQuery, read=Party(_channel_parties, "the channel's payer, funder and merchant"))
def channel(view: QueryView, q: ChannelQuery) -> dict[str, Any]:
    """A payment channel: deposit, the highest voucher presented, status and, when closing, the end of
    its challenge period."""
    ch = CHANNELS.get(view, q.channel)
    if ch is None:
        return {"channel": q.channel, "found": False}
    return {"channel": q.channel, "found": True, **to_builtins(ch),
            "challenge_until": ch.closing + ch.challenge_ms if ch.status == "closing" else None}


@module.query("channels_of", ChannelsQuery, read=OrgOf("merchant"))
def channels_of(view: QueryView, q: ChannelsQuery) -> dict[str, Any]:
    """A merchant's payment channels, oldest first, with their status."""
    rows = view.rows(CHANNEL_LIST, {"merchant": q.merchant}, order=("id",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"merchant": q.merchant, "total": view.count(CHANNEL_LIST, {"merchant": q.merchant}),
            "channels": [dict(r) for r in rows]}


@module.query("fare", FareQuery, read=SIGNED)
def fare(view: QueryView, q: FareQuery) -> dict[str, Any]:
    """A journey fare: its operators, their categories and shares (basis points)."""
    f = FARES.get(view, q.fare)
    return {"fare": q.fare, "found": f is not None, **(to_builtins(f) if f is not None else {})}


@module.query("escrow", EscrowQuery, read=Party(_escrow_parties, "the sale's buyer and seller"))
def escrow(view: QueryView, q: EscrowQuery) -> dict[str, Any]:
    """A sale escrow: vehicle, buyer, seller, price, deadline and status. The price is read by the
    parties (and regulators); the vehicle's history says only that the sale was paid."""
    e = ESCROWS.get(view, q.escrow)
    return {"escrow": q.escrow, "found": e is not None, **(to_builtins(e) if e is not None else {})}


# ---------------------------------------------------------------- who reads each event

module.reads(IDENTIFIED, "payments.currency_registered", "payments.fare_agreed")
module.reads(SIGNED, "payments.tariff_published")
module.reads(_named("issuer"), "payments.reserves_attested")
module.reads(_named("issuer", "to"), "payments.issued")
module.reads(_named("issuer", "owner"), "payments.redeemed")
module.reads(_named("payer", "to"), "payments.transferred")
module.reads(HolderOrDevice("vin"), "payments.limit_set", "payments.limit_revoked")
module.reads(AnyOf(HolderOrDevice("vin"), OrgOf("merchant")), "payments.vehicle_paid")
module.reads(_named("payer", "funder", "merchant"), "payments.channel_opened", "payments.channel_closing",
             "payments.channel_closed")
module.reads(_named("payer", "parts"), "payments.journey_paid")
module.reads(_named("buyer", "seller"), "payments.sale_locked", "payments.sale_reclaimed")
module.reads(_named("buyer", "seller", "lenders"), "payments.sale_settled")
