"""The recalls module's door: what parts and the history report may read of recalls.

Parts asks whether an open campaign blocks an installation; the report asks which state values
prove the recalls of a vehicle, and which open campaigns covered it (by the module's own rules,
so the report's verifier, which has its own implementation, checks one against the other).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, runtime_checkable

import msgspec

from ...core.access import Party
from ...core.module import Context
from ...core.state import Overlay, StateReader
from .handlers import affected_vehicle, remedy_by_software
from .spec import VehicleFacts
from .state import BY_PART_NUMBER, CAMPAIGNS, OPEN, REMEDIES


class RecallEvidence(msgspec.Struct, frozen=True):
    """The state keys that prove a vehicle's recalls: the open campaign list, each open campaign and
    its remedy on the vehicle (proven present or absent), in the list's order; and the part numbers
    those campaigns name (what the parts evidence must cover)."""

    open_key: bytes
    campaign_keys: list[bytes]
    remedy_keys: list[bytes]
    named: frozenset[str]


class OpenRecall(msgspec.Struct, frozen=True):
    """An open campaign that covered a vehicle when it opened, and whether it was remedied on it."""

    campaign: int
    number: str
    component: str
    summary: str
    remedy: str
    do_not_drive: bool
    remedied: bool


@runtime_checkable
class RecallsDoor(Protocol):
    """The recalls module's door."""

    def blocking_campaign(self, state: StateReader, need: Callable[[type], Any], part_number: str, batch: str,
                          serial: str, vin: str) -> tuple[int, str] | None:
        """(id, number) of an open campaign covering this part on ``vin``, if any: it may not be installed."""
        ...

    def recall_evidence(self, state: StateReader, vin: str) -> RecallEvidence:
        """The keys proving ``vin``'s recalls."""
        ...

    def open_recalls(self, state: StateReader, need: Callable[[type], Any], vin: str) -> list[OpenRecall]:
        """The open campaigns that covered ``vin`` when they opened, in the order they opened."""
        ...


class SoftwareFixes:
    """Recalls' implementation of software's ``SoftwareRemedies``: a vehicle's install manifest
    remedies the open campaigns it fixes (``handlers.remedy_by_software``)."""

    def software_installed(self, state: Overlay, ctx: Context, vin: str, installed: list[Any]) -> None:
        for item in installed:
            remedy_by_software(state, ctx, vin, item.hardware_id, item.release_counter, item.image)


class CampaignRecords:
    """The implementation of ``RecallsDoor`` wired in the module's definition."""

    def blocking_campaign(self, state: StateReader, need: Callable[[type], Any], part_number: str, batch: str,
                          serial: str, vin: str) -> tuple[int, str] | None:
        for cid in BY_PART_NUMBER.get(state, part_number) or []:
            c = CAMPAIGNS.get(state, cid)
            if c is None or c.status != "open" or not c.scope.covers_part(part_number, batch, serial):
                continue
            if c.scope.manufacturer or c.scope.build_dates or c.scope.vin_ranges:
                facts = need(VehicleFacts).birth_facts(state, vin)
                if facts is None or not c.scope.covers_vehicle(vin, facts.manufacturer, facts.build_date):
                    continue
            return c.id, c.number
        return None

    def recall_evidence(self, state: StateReader, vin: str) -> RecallEvidence:
        open_ids = OPEN.get(state)
        named: set[str] = set()
        for cid in open_ids:
            c = CAMPAIGNS.get(state, cid)
            if c is not None:
                named |= c.scope.part_numbers_named()
        return RecallEvidence(OPEN.key, [CAMPAIGNS.key(cid) for cid in open_ids],
                              [REMEDIES.key(cid, vin) for cid in open_ids], frozenset(named))

    def open_recalls(self, state: StateReader, need: Callable[[type], Any], vin: str) -> list[OpenRecall]:
        out = []
        for cid in OPEN.get(state):
            c = CAMPAIGNS.get(state, cid)
            if c is not None and vin.isalnum() and affected_vehicle(state, need, c, vin):
                out.append(OpenRecall(c.id, c.number, c.component, c.summary, c.remedy, c.do_not_drive,
                                      REMEDIES.has(state, c.id, vin)))
        return out


def _campaign_parties(view: Any, q: Any) -> set[str]:
    """Who reads a campaign's affected vehicles: its manufacturer and the key or organisation that opened it."""
    c = CAMPAIGNS.get(view, q.campaign)
    return set() if c is None else {c.manufacturer, c.opened_by} - {""}


CAMPAIGN_PARTIES = Party(_campaign_parties, "the campaign's manufacturer and opener")
