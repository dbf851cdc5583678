"""Insurance: usage-based premiums from verified trip summaries, and claims that open themselves.

Decisions (each handler's docstring lists its rules):

- **Products** are data: an insurer (role ``insurer``) publishes a currency, a period in days, the
  integer parameters of one declared formula (``pricing.premium``: base, per km, night factor,
  per harsh brake, per minute over the limit, min and max per period) and the most it covers per
  claim. Republishing makes a new version; a policy keeps the pricing it was bound with.
- **Policies** bind holder, vehicle, insurer, start, periods, deductible and coverage; the insurer
  sends and the title holder co-signs. A vehicle's policies never overlap; a policy is in force from
  its start until its end, its cancellation (holder or insurer), or the sale of the vehicle
  (a policy ends with its holding, as consent grants and spending limits do). Renewal (both sign)
  adds whole periods before it ends.
- **Premium statements** are computed on the ledger, period by period in order, once the period
  ended at block time: the trip totals of the batches ending in the period (telemetry's door, two
  state reads) priced by the formula; if the holder has not consented to the insurer for
  ``driving`` data at that block, the usage is not read and the premium is the cap (declared in the
  product). A period cut short is pro rata. The holder pays a statement through payments.
- **Claims** open on the vehicle's own crash report (telemetry calls ``CrashClaims`` in the same
  transaction) against the policy in force at the crash's time, or are filed by the holder (on a
  reported crash, or without one: flagged ``no_crash_event``). One claim per crash; no claim outside
  the policy's time; a claimed odometer below the record is flagged ``mileage_inconsistent``.
  Lifecycle: opened → (the holder or insurer chooses the workshop) → assessed (that workshop's
  estimate) → approved (reason ``covered``, an amount
  within the coverage; payout = amount - deductible) or denied (a reason code) → paid (insurer's
  account to the holder's).
- **Reads**: a policy, its statements and claims are its insurer's and holder's (and the assessing
  workshop's claim); products are offers any known key reads.
"""

from ..telemetry.doors import CrashClaims
from ..vehicles.doors import TitleWatchers
from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import ClaimEvidence, CrashClaimsOpener, InsuranceDoor, InsuranceRecords
from .pricing import Pricing, premium
from .spec import module

module.provide(InsuranceDoor, InsuranceRecords())
module.provide(CrashClaims, CrashClaimsOpener())
module.provide(TitleWatchers, handlers.TitleWatch())

__all__ = ["ClaimEvidence", "InsuranceDoor", "Pricing", "module", "premium"]
