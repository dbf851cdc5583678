"""Insurance refusals. Each leaves products, policies, statements, claims and accounts as they were.

    DomainError
    ├── products    InvalidProduct, UnknownProduct
    ├── policies    UnknownPolicy, NotYourPolicy, NotPolicyHolder, HolderChanged, PolicyOverlaps, PolicyEnded,
    │               InvalidPolicy, PolicyNotRenewable, PolicyCancelled
    ├── statements  PeriodNotEnded, PolicyFullyBilled, UnknownStatement, StatementPaid, DuplicatePolicy
    └── claims      NoActivePolicy, UnknownCrash, ClaimExists, UnknownClaim, NotYourClaim, ClaimDecided,
                    ClaimNotAssessed, ClaimNotApproved, OverCoverage, ReasonMismatch, IncidentInFuture,
                    NotAWorkshop, NotClaimWorkshop
"""

from ...core.errors import DomainError, NotFound


class InvalidProduct(DomainError):
    code = "invalid_product"
    template = "The product cannot be published: {reason}."


class UnknownProduct(NotFound):
    code = "unknown_product"
    template = "Insurer {insurer!r} publishes no product {product!r}; `blokauto insurance product list` lists them."


class UnknownPolicy(NotFound):
    code = "unknown_policy"
    template = "There is no policy {policy}."


class NotYourPolicy(DomainError):
    code = "not_your_policy"
    template = "Policy {policy} is {insurer!r}'s; a key of {org!r} cannot act on it as its insurer."


class NotPolicyHolder(DomainError):
    code = "not_policy_holder"
    template = "Policy {policy} is held by {holder}; {sender} does not sign for it."


class HolderChanged(DomainError):
    code = "policy_holder_changed"
    template = ("The title of {vin} passed from {holder} after policy {policy} was bound; a policy ends with its "
                "holding: bind a new one with the new holder.")


class PolicyOverlaps(DomainError):
    code = "policy_overlaps"
    template = ("{vin} is insured by policy {policy} until {end}; a new policy starts at or after that (or "
                "cancel it first).")


class InvalidPolicy(DomainError):
    code = "invalid_policy"
    template = "The policy cannot be bound: {reason}."


class PolicyNotRenewable(DomainError):
    code = "policy_not_renewable"
    template = "Policy {policy} cannot be renewed: {reason}."


class PolicyCancelled(DomainError):
    code = "policy_cancelled"
    template = "Policy {policy} was cancelled at {cancelled}."


class PeriodNotEnded(DomainError):
    code = "period_not_ended"
    template = ("Period {period} of policy {policy} ends at {end}, after the block time {time}; its statement can "
                "be issued once it has ended.")


class PolicyFullyBilled(DomainError):
    code = "policy_fully_billed"
    template = "Every period of policy {policy} has its statement ({billed})."


class DuplicatePolicy(DomainError):
    code = "duplicate_policy"
    template = "Policy {policy} is listed twice; a statement is issued once per period."


class UnknownStatement(NotFound):
    code = "unknown_statement"
    template = "Policy {policy} has no statement for period {period}."


class StatementPaid(DomainError):
    code = "statement_paid"
    template = "The statement of policy {policy} for period {period} is already paid."


class NoActivePolicy(DomainError):
    code = "no_active_policy"
    template = "Policy {policy} was not in force at {incident} (it covers {start} to {end}{cancelled})."


class UnknownCrash(NotFound):
    code = "unknown_crash"
    template = "{vin} reported no crash {crash}; `blokauto query telemetry crashes vin={vin}` lists them."


class ClaimExists(DomainError):
    code = "claim_exists"
    template = "Crash {crash} of {vin} already has claim {claim}; one event is claimed once."


class UnknownClaim(NotFound):
    code = "unknown_claim"
    template = "There is no claim {claim}."


class NotYourClaim(DomainError):
    code = "not_your_claim"
    template = "Claim {claim} is on a policy of {insurer!r}; a key of {org!r} cannot decide or pay it."


class ClaimDecided(DomainError):
    code = "claim_decided"
    template = "Claim {claim} is {status}; it can no longer be assessed or decided."


class ClaimNotAssessed(DomainError):
    code = "claim_not_assessed"
    template = "Claim {claim} has no workshop estimate yet; approve it after one (insurance.assess_claim)."


class ClaimNotApproved(DomainError):
    code = "claim_not_approved"
    template = "Claim {claim} is {status}; only an approved claim is paid."


class OverCoverage(DomainError):
    code = "over_coverage"
    template = "{amount} is above the coverage of policy {policy} ({coverage}) per claim."


class ReasonMismatch(DomainError):
    code = "reason_mismatch"
    template = "{reason!r} is not a reason to {verb} a claim; {allowed}."


class IncidentInFuture(DomainError):
    code = "claim_incident_in_future"
    template = "The incident is dated {incident}, after the block time {time}."


class PolicyEnded(DomainError):
    code = "policy_ended"
    template = "Policy {policy} ended at {end}; there is nothing left to cancel."


class NotAWorkshop(DomainError):
    code = "not_a_workshop"
    template = "{workshop!r} is not an active organisation with the workshop role; choose one that is."


class NotClaimWorkshop(DomainError):
    code = "not_claim_workshop"
    template = ("Claim {claim} is assessed by {chosen}; a key of {org!r} cannot estimate it (the claim's holder or "
                "insurer chooses the workshop: insurance.choose_workshop).")
