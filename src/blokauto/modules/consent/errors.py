"""Consent refusals."""

from ...core.errors import DomainError


class NotHolder(DomainError):
    code = "not_holder"
    template = ("Only the title holder of {vin} grants consent to its data, and {sender} does not hold it; "
                "the holder signs the grant (for a title held by org:<id>, any key of that organisation).")


class NotGrantor(DomainError):
    code = "not_grantor"
    template = ("Grant {grant} on {vin} was made by {holder}; only that holder revokes it, and {sender} does not "
                "act for it.")


class UnknownGrantee(DomainError):
    code = "unknown_grantee"
    template = ("There is no active organisation {org!r} to grant consent to; `blokauto query governance "
                "organisations` lists them.")


class UnknownCategory(DomainError):
    code = "unknown_category"
    template = "{category!r} is not a data category; a grant names some of: {known}."


class ConsentExpiryPast(DomainError):
    code = "consent_expiry_past"
    template = ("The grant would end at {until} ms, not after the block time {now} ms; give an expiry in the "
                "future.")


class ConsentTooLong(DomainError):
    code = "consent_too_long"
    template = ("The grant would run until {until} ms, more than the chain's max_consent_ms ({max_ms} ms) after "
                "the block time {now} ms; give an expiry no later than {latest} ms and renew it later.")


class TooManyGrants(DomainError):
    code = "too_many_grants"
    template = ("{vin} already has {count} grants in force for {org!r}, the most one organisation may hold on one "
                "vehicle; revoke one first.")


class UnknownGrant(DomainError):
    code = "unknown_grant"
    template = "There is no consent grant {grant} on {vin}; `blokauto consent list {vin}` lists its grants."


class AlreadyRevoked(DomainError):
    code = "grant_already_revoked"
    template = "Grant {grant} on {vin} was already revoked at block {height}."
