"""Payments state: currencies and their issuers, accounts, vehicles' spending limits, tariffs,
payment channels, journey fares and sale escrows; and the pure rules that judge them (a tariff's
price at a block time, a limit's room on a UTC day, a fare's split).

Every amount is an integer number of minor units of its currency (cents for EUR); no floats.
An owner is a ``did:key`` or ``org:<id>``.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.access import ORG_PREFIX
from ...core.encoding import MAX_SAFE_INT, Uint
from ...core.state import StateMap
from . import keys

Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z", description="ISO 4217 currency code")]
Amount = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INT, description="minor units of the currency")]
Owner = Annotated[str, msgspec.Meta(min_length=5, max_length=120, pattern="^[^/]+$",
                                    description="an account owner: a did:key, or org:<id>")]
Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z", description="an identifier")]
Category = Literal["toll", "parking", "charging", "fuel", "ride", "insurance"]
TariffUnit = Literal["km", "minute", "kwh", "wh", "entry"]
ChannelStatus = Literal["open", "closing", "closed"]
EscrowStatus = Literal["locked", "settled", "reclaimed"]

DAY_MS = 86_400_000
MINUTE_MS = 60_000
MINUTES_PER_DAY = 1_440
BPS = 10_000  # shares of a fare are in basis points: they add up to 10,000

#: Which organisation role lets a merchant take payments in each category.
CATEGORY_ROLES: dict[str, str] = {
    "toll": "toll",
    "parking": "parking",
    "charging": "charging",
    "fuel": "fuel",
    "ride": "mobility",
    "insurance": "insurer",
}
MERCHANT_ROLES = frozenset(CATEGORY_ROLES.values())


class CurrencyRecord(msgspec.Struct, frozen=True):
    """A currency the ledger carries: its one issuer, the reserves it last attested (minor units,
    with the hash of the attestation's evidence) and the units outstanding."""

    code: str
    issuer: str  # organisation id
    exponent: Uint  # digits of the minor unit (2 for EUR)
    supply: Uint = 0
    reserves: Uint = 0
    evidence: str = ""  # SHA-256 (hex) of the attestation document, off the ledger
    attested: Uint = 0  # block time of the last attestation


class SpendingLimit(msgspec.Struct, frozen=True):
    """What a vehicle's device keys may spend from its holder's account in one currency. It counts
    only while the holding that set it lasts (``holder`` since ``holder_since``) and until revoked;
    ``spent`` is what was spent on UTC day ``day`` (block time // 86,400,000)."""

    vin: str
    currency: str
    holder: str
    holder_since: Uint
    per_payment: Uint
    per_day: Uint
    categories: list[str]  # sorted, unique
    set_by: str
    height: Uint
    day: Uint = 0
    spent: Uint = 0
    revoked: Uint = 0  # height of the revocation (0: in force)


class Band(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A time band of a tariff: minutes of the UTC day [start, end) and the price of ``per`` units."""

    start: Annotated[int, msgspec.Meta(ge=0, le=1_439)]
    end: Annotated[int, msgspec.Meta(ge=1, le=1_440)]
    price: Uint


class Tariff(msgspec.Struct, frozen=True):
    """A merchant's published price list for one zone: ``base`` per use plus the band's ``price``
    per ``per`` units of ``unit``, rounded down (in the payer's favour)."""

    merchant: str
    id: str
    category: str
    currency: str
    unit: str
    per: Uint
    zone: str
    base: Uint
    bands: list[Band]
    version: Uint
    height: Uint


class Channel(msgspec.Struct, frozen=True):
    """A unidirectional payment channel: ``payer`` (the key that signs vouchers) to ``merchant``,
    funded by ``funder``'s account with ``deposit``. ``best`` is the highest voucher presented;
    a payer's close starts the challenge at ``closing``."""

    id: Uint
    payer: str
    funder: str
    merchant: str
    currency: str
    category: str
    deposit: Uint
    challenge_ms: Uint
    opened: Uint  # block time
    vin: str = ""
    status: ChannelStatus = "open"
    best: Uint = 0
    closing: Uint = 0  # block time of the payer's close
    paid: Uint = 0  # what the merchant received at the end


class Share(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One operator's part of a journey fare: its category and share in basis points."""

    org: Ident
    category: Category
    bps: Annotated[int, msgspec.Meta(ge=1, le=BPS)]


class Fare(msgspec.Struct, frozen=True):
    """A journey fare the operators agreed: a payment to it is split by ``shares``; the rounding
    remainder goes to the lead operator (the one that proposed it)."""

    id: Uint
    lead: str
    name: str
    currency: str
    shares: list[Share]
    height: Uint


class Escrow(msgspec.Struct, frozen=True):
    """A vehicle sale's price, locked from the buyer's account until the title moves to the buyer
    (``settled``) or the buyer takes it back after ``deadline`` (``reclaimed``)."""

    id: Uint
    vin: str
    buyer: str
    seller: str
    currency: str
    price: Uint
    deadline: Uint  # block time: settle strictly before it, reclaim from it on
    locked: Uint  # block time
    status: EscrowStatus = "locked"
    closed: Uint = 0  # height of the settlement or reclaim


# ---------------------------------------------------------------- pure rules


def org_of(owner: str) -> str | None:
    """The organisation id of an ``org:<id>`` owner (None for a key)."""
    return owner[len(ORG_PREFIX):] if owner.startswith(ORG_PREFIX) else None


def speaks_for(owner: str, sender: str, sender_org: str | None) -> bool:
    """Whether the key ``sender`` (a member of ``sender_org``, if any) acts for ``owner``: that very
    key, or any active key of the owning organisation."""
    org = org_of(owner)
    if org is not None:
        return sender_org is not None and sender_org == org
    return sender == owner


def utc_day(time_ms: int) -> int:
    return time_ms // DAY_MS


def spent_today(limit: SpendingLimit, now: int) -> int:
    """What the limit's wallet spent on the UTC day of block time ``now``."""
    return limit.spent if limit.day == utc_day(now) else 0


def band_at(tariff: Tariff, now: int) -> Band | None:
    """The band of ``tariff`` in force at block time ``now`` (UTC minute of the day)."""
    minute = (now // MINUTE_MS) % MINUTES_PER_DAY
    return next((b for b in tariff.bands if b.start <= minute < b.end), None)


def tariff_price(tariff: Tariff, band: Band, quantity: int) -> int:
    """The price of ``quantity`` units in ``band``: base + quantity x price / per, rounded down."""
    return tariff.base + quantity * band.price // tariff.per


def split(fare: Fare, amount: int) -> list[tuple[str, int]]:
    """Each operator's part of ``amount``, in the fare's order, rounded down; the remainder goes to
    the lead. The parts add up to ``amount`` exactly."""
    parts = [(s.org, amount * s.bps // BPS) for s in fare.shares]
    rest = amount - sum(p for _, p in parts)
    return [(org, part + (rest if org == fare.lead else 0)) for org, part in parts]


CURRENCIES = StateMap(keys.CURRENCY, CurrencyRecord)
ACCOUNTS = StateMap(keys.ACCOUNT, int)  # (currency, owner) -> balance; absent when zero
LIMITS = StateMap(keys.LIMIT, SpendingLimit)  # (vin, currency)
TARIFFS = StateMap(keys.TARIFF, Tariff)  # (merchant, tariff id)
CHANNELS = StateMap(keys.CHANNEL, Channel)
FARES = StateMap(keys.FARE, Fare)
ESCROWS = StateMap(keys.ESCROW, Escrow)
HELD = StateMap(keys.HELD, int)  # (currency, module) -> units held for that module's rules; absent when zero
NEXT = StateMap(keys.NEXT, int)  # "channel", "fare", "escrow" -> the next id
