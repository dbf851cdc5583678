"""Recall rules. A vehicle is affected by a campaign if, at the block the campaign opened, it
matched the vehicle criteria and carried a part the part criteria name (assemblies included)."""

from __future__ import annotations

from typing import Any, Callable, Literal

import msgspec

from ...core.module import Context
from ...core.state import Overlay, StateReader
from . import errors
from ...core.module import ANYONE
from .messages import (CampaignClosed, CampaignOpened, CloseCampaign, ConfirmSoftwareRemedy, OpenCampaign,
                       RecordRemedy, Remedied)
from ..parts.doors import CarriedPart
from ..vehicles.doors import BirthFacts
from .spec import REMEDIED, PartsOnBoard, SoftwareInventory, VehicleFacts, module
from .state import BY_HARDWARE, BY_PART_NUMBER, CAMPAIGNS, NEXT, NUMBERS, OPEN, REMEDIES, Campaign, Remedy, Scope


def affects(scope: Scope, vin: str, facts: BirthFacts, carried: list[CarriedPart]) -> bool:
    """Whether ``scope`` covers a vehicle with these birth facts carrying these parts."""
    if not scope.covers_vehicle(vin, facts.manufacturer, facts.build_date):
        return False
    return not scope.has_part_criteria or any(scope.covers_part(p.part_number, p.batch, p.serial) for p in carried)


def affected_vehicle(state: StateReader, need: Callable[[type], Any], c: Campaign, vin: str) -> bool:
    """Whether campaign ``c`` covered ``vin`` when it opened (what the vehicle carried then)."""
    facts = need(VehicleFacts).birth_facts(state, vin)
    if facts is None or facts.registered > c.opened:  # a vehicle registered later was not covered when it opened
        return False
    carried = need(PartsOnBoard).installed_at(state, vin, c.opened) if c.scope.has_part_criteria else []
    return affects(c.scope, vin, facts, carried)


def _campaign(state: StateReader, cid: int) -> Campaign:
    c = CAMPAIGNS.get(state, cid)
    if c is None:
        raise errors.UnknownCampaign(campaign=cid)
    return c


@module.message(OpenCampaign, roles={"manufacturer", "regulator"})
def open_campaign(state: Overlay, ctx: Context, msg: OpenCampaign) -> None:
    """Open a campaign; a manufacturer's campaign covers only vehicles it made."""
    assert ctx.member is not None
    org = ctx.member.org
    scope = msg.scope
    if "regulator" not in ctx.member.roles:
        if scope.manufacturer and scope.manufacturer != org:
            raise errors.NotYourCampaign(reason=f"a manufacturer recalls its own vehicles, not {scope.manufacturer!r}'s")
        scope = msgspec.structs.replace(scope, manufacturer=org)
    if not (scope.has_part_criteria or scope.build_dates or scope.vin_ranges):
        raise errors.EmptyScope()
    for r in scope.serial_ranges:
        if r.first > r.last:
            raise errors.ScopeMatchesNothing(reason=f"serial range {r.first}..{r.last} is empty")
    if scope.build_dates and scope.build_dates.first > scope.build_dates.last:
        raise errors.ScopeMatchesNothing(reason="the build date range is empty")
    for vr in scope.vin_ranges:
        if vr.first > vr.last:
            raise errors.ScopeMatchesNothing(reason=f"VIN range {vr.first}..{vr.last} is empty")
    if scope.has_part_criteria:
        parts = ctx.need(PartsOnBoard)
        live = ([pn for pn in scope.part_numbers if parts.part_installed(state, pn)]
                + [b for b in scope.batches if parts.batch_installed(state, f"{b.part_number}:{b.batch}")]
                + [r for r in scope.serial_ranges if parts.part_installed(state, r.part_number)])
        if not live:
            raise errors.ScopeMatchesNothing(reason="none of the part numbers, batches or serial ranges it names is "
                                                    "installed in any vehicle")
    if msg.ota_remedy and msg.software_fix is None:
        raise errors.SoftwareFixRequired()
    existing = NUMBERS.get(state, msg.number)
    if existing is not None:
        raise errors.CampaignNumberTaken(number=msg.number, campaign=existing)
    cid = NEXT.get(state)
    NEXT.put(state, cid + 1)
    c = Campaign(cid, msg.number, scope.manufacturer, org, msg.component, msg.summary, msg.consequence, msg.remedy,
                 msg.do_not_drive, msg.ota_remedy or msg.software_fix is not None, msg.units, scope, ctx.height,
                 ctx.time, software_fix=msg.software_fix if msg.software_fix is not None else msgspec.UNSET)
    CAMPAIGNS.put(state, c, cid)
    NUMBERS.put(state, cid, msg.number)
    OPEN.put(state, OPEN.get(state) + [cid])
    for pn in sorted(scope.part_numbers_named()):
        BY_PART_NUMBER.put(state, (BY_PART_NUMBER.get(state, pn) or []) + [cid], pn)
    if msg.software_fix is not None:
        hw = msg.software_fix.hardware_id
        BY_HARDWARE.put(state, (BY_HARDWARE.get(state, hw) or []) + [cid], hw)
    ctx.emit(CampaignOpened(campaign=cid, number=msg.number, component=msg.component, do_not_drive=msg.do_not_drive))


@module.message(CloseCampaign, roles={"manufacturer", "regulator"})
def close_campaign(state: Overlay, ctx: Context, msg: CloseCampaign) -> None:
    """Close a campaign (its record and remedies stay)."""
    assert ctx.member is not None
    c = _campaign(state, msg.campaign)
    if c.status != "open":
        raise errors.CampaignClosed(campaign=c.id)
    if ctx.member.org != c.opened_by and "regulator" not in ctx.member.roles:
        raise errors.NotYourCampaign(reason=f"campaign {c.id} was opened by {c.opened_by!r}")
    CAMPAIGNS.put(state, msgspec.structs.replace(c, status="closed", closed=ctx.height), c.id)
    OPEN.put(state, [x for x in OPEN.get(state) if x != c.id])
    for pn in sorted(c.scope.part_numbers_named()):
        left = [x for x in BY_PART_NUMBER.get(state, pn) or [] if x != c.id]
        if left:
            BY_PART_NUMBER.put(state, left, pn)
        else:
            BY_PART_NUMBER.delete(state, pn)
    if c.software_fix is not msgspec.UNSET:
        hw = c.software_fix.hardware_id
        left = [x for x in BY_HARDWARE.get(state, hw) or [] if x != c.id]
        if left:
            BY_HARDWARE.put(state, left, hw)
        else:
            BY_HARDWARE.delete(state, hw)
    ctx.emit(CampaignClosed(campaign=c.id))


@module.message(RecordRemedy, roles={"workshop", "dealer", "manufacturer"})
def record_remedy(state: Overlay, ctx: Context, msg: RecordRemedy) -> None:
    """A remedy on an affected vehicle, once per vehicle and campaign."""
    assert ctx.member is not None
    c = _campaign(state, msg.campaign)
    if c.status != "open":
        raise errors.CampaignClosed(campaign=c.id)
    if msg.method == "software" and not c.ota_remedy:
        raise errors.NotYourCampaign(reason=f"campaign {c.id} has no over-the-air remedy")
    if msg.method == "software" and c.software_fix is not msgspec.UNSET:
        fix = c.software_fix
        raise errors.RemedyNeedsManifest(campaign=c.id, hardware_id=fix.hardware_id,
                                         min_release_counter=fix.min_release_counter)
    if not msg.vin.isalnum() or not affected_vehicle(state, ctx.need, c, msg.vin):
        raise errors.NotAffected(vin=msg.vin, campaign=c.id, height=c.opened)
    if not {"workshop", "dealer"} & set(ctx.member.roles):  # a manufacturer: over the air, on its own vehicles
        facts = ctx.need(VehicleFacts).birth_facts(state, msg.vin)
        if msg.method != "software":
            raise errors.NotYourCampaign(reason="a manufacturer attests only over-the-air remedies; "
                                                "a workshop or dealer attests a workshop remedy")
        if facts is None or facts.manufacturer != ctx.member.org:
            raise errors.NotYourCampaign(reason=f"{msg.vin} was not made by {ctx.member.org!r}")
    done = REMEDIES.get(state, c.id, msg.vin)
    if done is not None:
        raise errors.AlreadyRemedied(vin=msg.vin, campaign=c.id, height=done.height)
    remedy(state, ctx, c, msg.vin, ctx.member.org, msg.method, msg.notes)


def remedy(state: Overlay, ctx: Context, c: Campaign, vin: str, by: str, method: Literal["workshop", "software"],
           notes: str) -> None:
    """Record campaign ``c``'s remedy on ``vin`` (affected, not yet remedied: the caller checked)."""
    REMEDIES.put(state, Remedy(c.id, vin, by, method, ctx.height, notes), c.id, vin)
    ctx.index_put(REMEDIED, campaign=c.id, vin=vin, height=ctx.height)
    CAMPAIGNS.put(state, msgspec.structs.replace(c, remedied=c.remedied + 1), c.id)
    ctx.need(VehicleFacts).record_event(state, ctx, vin, "recall_remedied",
                                        {"campaign": c.id, "number": c.number, "method": method})
    ctx.emit(Remedied(campaign=c.id, vin=vin))


def remedy_by_software(state: Overlay, ctx: Context, vin: str, hardware_id: str, release_counter: int,
                       image: str) -> None:
    """A vehicle's install manifest put ``image`` (``release_counter``) on an ECU of ``hardware_id``: every open
    campaign it fixes that covered the vehicle, not yet remedied on it, is remedied (method software,
    by the device key that signed the manifest)."""
    for cid in BY_HARDWARE.get(state, hardware_id) or []:
        c = CAMPAIGNS.get(state, cid)
        if c is None or c.status != "open" or c.software_fix is msgspec.UNSET:
            continue
        if release_counter < c.software_fix.min_release_counter or REMEDIES.has(state, c.id, vin):
            continue
        if affected_vehicle(state, ctx.need, c, vin):
            remedy(state, ctx, c, vin, ctx.sender, "software", f"image {image} (release counter {release_counter})")


@module.message(ConfirmSoftwareRemedy, roles=ANYONE)
def confirm_software_remedy(state: Overlay, ctx: Context, msg: ConfirmSoftwareRemedy) -> None:
    """An open campaign with a software fix that covered the vehicle, not yet remedied on it: remedied
    (method software) if the vehicle's inventory on the ledger shows an ECU of the fix's hardware at
    the fix's release counter or higher; ``fix_not_installed`` otherwise."""
    c = _campaign(state, msg.campaign)
    if c.status != "open":
        raise errors.CampaignClosed(campaign=c.id)
    if c.software_fix is msgspec.UNSET:
        raise errors.NotYourCampaign(reason=f"campaign {c.id} has no software fix")
    if not msg.vin.isalnum() or not affected_vehicle(state, ctx.need, c, msg.vin):
        raise errors.NotAffected(vin=msg.vin, campaign=c.id, height=c.opened)
    done = REMEDIES.get(state, c.id, msg.vin)
    if done is not None:
        raise errors.AlreadyRemedied(vin=msg.vin, campaign=c.id, height=done.height)
    fix = c.software_fix
    running = next((e for e in ctx.need(SoftwareInventory).inventory(state, msg.vin)
                    if e.hardware_id == fix.hardware_id and e.image and e.release_counter >= fix.min_release_counter),
                   None)
    if running is None:
        raise errors.FixNotInstalled(vin=msg.vin, hardware_id=fix.hardware_id,
                                     min_release_counter=fix.min_release_counter)
    remedy(state, ctx, c, msg.vin, ctx.sender, "software",
           f"image {running.image} (release counter {running.release_counter}), on record before")
