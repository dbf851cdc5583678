"""Consent grants: who granted which organisation which data categories of a vehicle, for what
purpose, until when; and the rule that says whether a grant counts at a block time."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.access import ORG_PREFIX
from ...core.encoding import Uint
from ...core.state import Item, StateMap
from ..vehicles.doors import Title
from . import keys

#: The data categories a grant may name (a closed set).
CATEGORIES = ("history", "odometer", "location", "driving", "identity")

Ident = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z",
                                    description="an organisation id")]
Purpose = Annotated[str, msgspec.Meta(min_length=1, max_length=200, description="why the data is shared")]
Status = Literal["active", "expired", "revoked", "holder_changed"]



class Grant(msgspec.Struct, frozen=True):
    """One grant. It counts at block time ``t`` while it is not revoked, ``t < until``, and the
    holding that made it (``holder`` since ``holder_since``) still holds the title."""

    id: Uint
    vin: str
    org: str
    categories: list[str]  # sorted, unique, from CATEGORIES
    purpose: str
    until: Uint  # block time, ms: from this time on the grant no longer counts
    holder: str  # the title holder who granted it (a did:key or org:<id>)
    holder_since: Uint  # block time that holder took the title
    granted_by: str  # the key that signed the grant
    granted: Uint  # block time
    height: Uint
    revoked: Uint = 0  # height of the revocation (0: not revoked)
    revoked_by: str = ""


def status(grant: Grant, title: Title | None, now: int) -> Status:
    """What ``grant`` is at block time ``now`` with the vehicle's current ``title``."""
    if grant.revoked:
        return "revoked"
    if title is None or title.holder != grant.holder or title.since != grant.holder_since:
        return "holder_changed"
    if now >= grant.until:
        return "expired"
    return "active"


def allows(grant: Grant, title: Title | None, now: int, org: str, category: str) -> bool:
    """Whether ``grant`` lets ``org`` read ``category`` at block time ``now``."""
    return grant.org == org and category in grant.categories and status(grant, title, now) == "active"


def speaks_for(holder: str, sender: str, sender_org: str | None) -> bool:
    """Whether the key ``sender`` (of organisation ``sender_org``, if any) acts for ``holder``:
    that very key, or any active key of the holding organisation."""
    if holder.startswith(ORG_PREFIX):
        return sender_org is not None and sender_org == holder[len(ORG_PREFIX):]
    return sender == holder


GRANT_RECORDS = StateMap(keys.GRANT, Grant)
LIVE = StateMap(keys.LIVE, list[int])  # (vin, org) -> grants that may still count, oldest first
NEXT: Item[int] = Item(keys.NEXT, int, default=1)
