"""Consent rules. Signers were checked by the framework already; anyone may send, and these rules
say whose grant or revocation it is.

- Only the title holder grants (the holder's key, or any key of a holding organisation), read
  through the vehicles door; the grantee is an active organisation (governance's directory).
- Categories come from a closed set; the purpose is short text; ``until`` is a block time after
  the recording block and at most ``max_consent_ms`` after it.
- A grant records the holding that made it (holder and the block time it took the title) and
  counts only while that holding lasts: a sale ends it, and buying the vehicle back starts a new
  holding that the old grants do not reach.
- Only the holder who made a grant revokes it (also after a sale, to put the end on record); a
  grant is revoked once.
"""

from __future__ import annotations

import msgspec

from ...core.module import ANYONE, Context
from ...core.state import Overlay, StateReader
from ..vehicles.doors import Title
from . import errors
from .messages import ConsentGranted, ConsentRevoked, GrantConsent, RevokeConsent
from .spec import GRANTS, MAX_CONSENT_MS, Organisations, Titles, module
from .state import CATEGORIES, GRANT_RECORDS, LIVE, NEXT, Grant, speaks_for, status

#: Most grants one organisation may have in force on one vehicle (bounds the list ``allows`` reads).
MAX_LIVE_GRANTS = 16


def title_of(state: StateReader, ctx: Context, vin: str) -> Title:
    """The title of ``vin``; refused by the vehicles module (unknown_vehicle) if it is not registered."""
    titles = ctx.need(Titles)
    title = titles.title(state, vin)
    if title is None:
        titles.require_vehicle(state, vin, allow_scrapped=True)  # raises unknown_vehicle
        raise AssertionError("require_vehicle accepted an unregistered VIN")
    return title


def _sender_org(ctx: Context) -> str | None:
    """The sender's organisation, if it is a member key (the framework refused inactive ones)."""
    return ctx.member.org if ctx.member is not None else None


@module.message(GrantConsent, roles=ANYONE)
def grant_consent(state: Overlay, ctx: Context, msg: GrantConsent) -> None:
    """The holder grants an organisation consent to some data categories of a vehicle."""
    title = title_of(state, ctx, msg.vin)
    if not speaks_for(title.holder, ctx.sender, _sender_org(ctx)):
        raise errors.NotHolder(vin=msg.vin, sender=ctx.sender)
    if ctx.need(Organisations).org_roles(state, msg.org) is None:
        raise errors.UnknownGrantee(org=msg.org)
    for c in msg.categories:
        if c not in CATEGORIES:
            raise errors.UnknownCategory(category=c, known=", ".join(CATEGORIES))
    if msg.until <= ctx.time:
        raise errors.ConsentExpiryPast(until=msg.until, now=ctx.time)
    max_ms = ctx.param(MAX_CONSENT_MS.name)
    if msg.until - ctx.time > max_ms:
        raise errors.ConsentTooLong(until=msg.until, max_ms=max_ms, now=ctx.time, latest=ctx.time + max_ms)
    live = [gid for gid in LIVE.get(state, msg.vin, msg.org) or []
            if status(_grant(state, gid), title, ctx.time) == "active"]
    if len(live) >= MAX_LIVE_GRANTS:
        raise errors.TooManyGrants(vin=msg.vin, org=msg.org, count=len(live))
    gid = NEXT.get(state)
    NEXT.put(state, gid + 1)
    categories = sorted(set(msg.categories))
    GRANT_RECORDS.put(state, Grant(gid, msg.vin, msg.org, categories, msg.purpose, msg.until, title.holder,
                                   title.since, ctx.sender, ctx.time, ctx.height), gid)
    LIVE.put(state, live + [gid], msg.vin, msg.org)
    ctx.index_put(GRANTS, id=gid, vin=msg.vin, org=msg.org)
    ctx.emit(ConsentGranted(grant=gid, vin=msg.vin, org=msg.org, categories=categories, until=msg.until))


def _grant(state: StateReader, gid: int) -> Grant:
    g = GRANT_RECORDS.get(state, gid)
    assert g is not None, f"consent/live names grant {gid}, which is not recorded"
    return g


@module.message(RevokeConsent, roles=ANYONE)
def revoke_consent(state: Overlay, ctx: Context, msg: RevokeConsent) -> None:
    """The holder who made a grant revokes it."""
    g = GRANT_RECORDS.get(state, msg.grant)
    if g is None or g.vin != msg.vin:
        raise errors.UnknownGrant(grant=msg.grant, vin=msg.vin)
    if g.revoked:
        raise errors.AlreadyRevoked(grant=g.id, vin=g.vin, height=g.revoked)
    if not speaks_for(g.holder, ctx.sender, _sender_org(ctx)):
        raise errors.NotGrantor(grant=g.id, vin=g.vin, holder=g.holder, sender=ctx.sender)
    GRANT_RECORDS.put(state, msgspec.structs.replace(g, revoked=ctx.height, revoked_by=ctx.sender), g.id)
    left = [gid for gid in LIVE.get(state, g.vin, g.org) or [] if gid != g.id]
    if left:
        LIVE.put(state, left, g.vin, g.org)
    else:
        LIVE.delete(state, g.vin, g.org)
    ctx.emit(ConsentRevoked(grant=g.id, vin=g.vin, org=g.org))
