"""The consent module's door: what the access-policy code (and other modules) may ask of consent.

One question: does the holder's consent let an organisation read a category of a vehicle's data
at a block time, and which grant says so. The rules are the module's own (``state.allows``).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

from ...core.state import StateReader
from .spec import Titles
from .state import GRANT_RECORDS, LIVE, allows


@runtime_checkable
class ConsentDoor(Protocol):
    """The consent module's door."""

    def allows(self, state: StateReader, need: Callable[[type], Any], vin: str, org: str, category: str,
               now_ms: int) -> int | None:
        """The id of a grant in force at block time ``now_ms`` that lets ``org`` read ``category`` of
        ``vin`` (the oldest such), or None."""
        ...

    def held_through(self, state: StateReader, vin: str, org: str, category: str, holder: str, since: int,
                     from_ms: int, until_ms: int) -> int | None:
        """The id of a grant the holding ``holder`` since ``since`` made (it may have ended with a sale
        since) that let ``org`` read ``category`` of ``vin`` from ``from_ms`` (granted by then) until
        ``until_ms`` (its ``until`` not before), never revoked (the oldest such), or None: consent for
        a whole past stretch of that holding."""
        ...


class ConsentRecords:
    """The implementation of ``ConsentDoor`` wired in the module's definition."""

    def allows(self, state: StateReader, need: Callable[[type], Any], vin: str, org: str, category: str,
               now_ms: int) -> int | None:
        if not vin.isalnum() or not org or "/" in org or len(org) > 200:
            return None
        title = need(Titles).title(state, vin)
        for gid in LIVE.get(state, vin, org) or []:
            g = GRANT_RECORDS.get(state, gid)
            if g is not None and allows(g, title, now_ms, org, category):
                return gid
        return None

    def held_through(self, state: StateReader, vin: str, org: str, category: str, holder: str, since: int,
                     from_ms: int, until_ms: int) -> int | None:
        if not vin.isalnum() or not org or "/" in org or len(org) > 200:
            return None
        for gid in LIVE.get(state, vin, org) or []:
            g = GRANT_RECORDS.get(state, gid)
            if (g is not None and not g.revoked and (g.holder, g.holder_since) == (holder, since)
                    and category in g.categories and g.granted <= from_ms and until_ms <= g.until):
                return gid
        return None
