"""Insurance state: products, policies, premium statements and claims."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.state import StateMap
from . import keys
from .pricing import Pricing

Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z", description="an identifier")]
ClaimStatus = Literal["opened", "assessed", "approved", "denied", "paid"]
ApproveReason = Literal["covered"]
DenyReason = Literal["not_covered", "policy_exclusion", "fraud_suspected", "under_deductible", "duplicate",
                     "late_notice", "no_damage", "other"]


class Product(msgspec.Struct, frozen=True):
    insurer: str  # organisation id
    product: str
    version: Uint  # 1, then +1 each time it is republished (policies keep the pricing they were bound with)
    currency: str
    period_days: Uint
    pricing: Pricing
    max_coverage: Uint
    height: Uint


class Policy(msgspec.Struct, frozen=True):
    """A policy binds holder, vehicle, insurer, period, deductible and coverage; both signed it."""

    id: Uint
    insurer: str
    product: str
    version: Uint
    vin: str
    holder: str  # the title holder who signed it (did:key or org:<id>)
    holder_since: Uint  # its holding: the policy ends when the title passes
    currency: str
    pricing: Pricing
    period_ms: Uint
    start: Uint
    end: Uint  # start + periods * period_ms (renewals extend it)
    deductible: Uint
    coverage: Uint  # most paid for one claim
    billed: Uint = 0  # periods with a statement
    cancelled: Uint = 0  # block time of the cancellation (0: not cancelled)
    height: Uint = 0
    sold: Uint = 0  # block time its holder's holding ended (the vehicle was sold; 0: not sold)
    billed_seq: Uint = 0  # the vehicle's batches up to this sequence number are billed (or predate the policy)


class Statement(msgspec.Struct, frozen=True):
    """The premium of one period, computed on the ledger from the period's summaries."""

    policy: Uint
    period: Uint  # 0 for the first
    start: Uint
    end: Uint
    consented: bool  # whether the holder's driving-data consent let the usage count
    batches: Uint
    distance_m: Uint
    night_distance_m: Uint
    harsh_brakes: Uint
    over_limit_s: Uint
    premium: Uint
    status: Literal["due", "paid"]
    height: Uint
    after_seq: Uint = 0  # it counts the vehicle's batches after_seq + 1 .. through_seq
    through_seq: Uint = 0


class Claim(msgspec.Struct, frozen=True):
    id: Uint
    policy: Uint
    vin: str
    insurer: str
    holder: str
    source: Literal["crash", "holder"]  # opened by the vehicle's crash report, or filed by the holder
    crash: Uint  # the vehicle's crash seq (0: none)
    incident: Uint  # when it happened (ms)
    odometer_km: Uint
    flags: list[str]  # no_crash_event, mileage_inconsistent: for the insurer's review
    status: ClaimStatus
    opened: Uint  # height
    estimate: Uint = 0
    workshop: str = ""  # the workshop the holder or insurer chose to assess it
    estimate_ref: str = ""
    reason: str = ""
    approved: Uint = 0
    payout: Uint = 0  # approved minus the deductible
    currency: str = ""  # the policy's (amounts are its minor units)


class VehiclePolicies(msgspec.Struct, frozen=True):
    ids: list[Uint] = []


PRODUCTS = StateMap(keys.PRODUCT, Product)
POLICIES = StateMap(keys.POLICY, Policy)
VEHICLE_POLICIES = StateMap(keys.VEHICLE, VehiclePolicies)
STATEMENTS = StateMap(keys.STATEMENT, Statement)
CLAIMS = StateMap(keys.CLAIM, Claim)
VEHICLE_CLAIMS = StateMap(keys.VEHICLE_CLAIMS, list[int])
CRASH_CLAIMS = StateMap(keys.CRASH_CLAIM, int)
NEXT = StateMap(keys.NEXT, int)
