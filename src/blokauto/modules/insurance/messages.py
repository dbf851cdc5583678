"""Insurance messages and events. Amounts are integer minor units of the product's currency; times
are ms since 1970 UTC."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .pricing import Money, Pricing
from .state import ApproveReason, DenyReason, Ident

Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]
Currency = Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}\Z", description="ISO 4217 currency code")]
Ref = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]*\Z",
                                  description="a reference (no personal data; no control characters)")]
PolicyIds = Annotated[list[Uint], msgspec.Meta(min_length=1, max_length=1000)]


class PublishProduct(Message, tag="insurance.publish_product"):
    """An insurer publishes (or republishes: a new version) a product: its currency, period, pricing
    parameters and the most it covers per claim."""

    product: Ident
    currency: Currency
    period_days: Annotated[int, msgspec.Meta(ge=1, le=366)]
    pricing: Pricing
    max_coverage: Money


class BindPolicy(Message, tag="insurance.bind_policy"):
    """The insurer binds a policy on a vehicle; its title holder co-signs."""

    product: Ident
    vin: Vin
    start: Uint
    periods: Annotated[int, msgspec.Meta(ge=1, le=60)]
    deductible: Money
    coverage: Money


class RenewPolicy(Message, tag="insurance.renew_policy"):
    """The insurer extends a policy by whole periods, with the pricing it was bound with; the holder co-signs."""

    policy: Uint
    periods: Annotated[int, msgspec.Meta(ge=1, le=60)]


class CancelPolicy(Message, tag="insurance.cancel_policy"):
    """The holder or the insurer ends a policy now; its last period is billed pro rata."""

    policy: Uint


class IssueStatements(Message, tag="insurance.issue_statements"):
    """The insurer computes the next premium statement of each policy, for a period that has ended."""

    policies: PolicyIds


class PayPremium(Message, tag="insurance.pay_premium"):
    """The holder pays a statement from its account (payments) to the insurer's."""

    policy: Uint
    period: Uint


class FileClaim(Message, tag="insurance.file_claim"):
    """The holder files a claim: on a crash the vehicle reported (``crash``), or without one (flagged
    for the insurer's review)."""

    policy: Uint
    incident: Uint
    odometer_km: Annotated[int, msgspec.Meta(ge=0, le=100_000_000)]
    crash: Uint = 0
    reference: Ref = ""
    workshop: Annotated[str, msgspec.Meta(max_length=64, description="the workshop organisation to assess it "
                                                                     "(optional; see choose_workshop)")] = ""


class ChooseWorkshop(Message, tag="insurance.choose_workshop"):
    """The claim's holder or insurer chooses the workshop that assesses it (again, until the decision:
    an estimate of the workshop chosen before is dropped)."""

    claim: Uint
    workshop: Ident


class AssessClaim(Message, tag="insurance.assess_claim"):
    """The chosen workshop's signed repair estimate for a claim (a later one replaces it until the decision)."""

    claim: Uint
    estimate: Money
    reference: Ref = ""


class DecideClaim(Message, tag="insurance.decide_claim"):
    """The policy's insurer approves an amount (after an estimate) or denies, with a reason code."""

    claim: Uint
    approve: bool
    reason: ApproveReason | DenyReason
    amount: Money = 0


class PayClaim(Message, tag="insurance.pay_claim"):
    """The insurer pays an approved claim's payout (approved minus deductible) to the holder's account."""

    claim: Uint


class ProductPublished(Event, tag="insurance.product_published"):
    insurer: str
    product: str
    version: Uint


class PolicyChanged(Event, tag="insurance.policy_changed"):
    policy: Uint
    change: str  # bound, renewed, cancelled
    vin: str
    insurer: str
    holder: str


class StatementIssued(Event, tag="insurance.statement_issued"):
    policy: Uint
    period: Uint
    premium: Uint
    insurer: str
    holder: str


class PremiumPaid(Event, tag="insurance.premium_paid"):
    policy: Uint
    period: Uint
    premium: Uint
    insurer: str
    holder: str


class ClaimChanged(Event, tag="insurance.claim_changed"):
    claim: Uint
    policy: Uint
    status: str
    vin: str
    insurer: str
    holder: str
    workshop: str = ""
