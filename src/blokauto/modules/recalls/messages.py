"""Recall messages and events."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Scope, SoftwareFix, Text


class OpenCampaign(Message, tag="recalls.open"):
    """A manufacturer (for its own vehicles) or a regulator opens a recall campaign. The ledger
    resolves the affected vehicles from what they carried at this block, assemblies included."""

    number: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")]
    component: Text
    summary: Text
    consequence: Text
    remedy: Text
    scope: Scope
    do_not_drive: bool = False
    ota_remedy: bool = False
    units: Uint = 0
    #: With ``ota_remedy``: the release that fixes it (the vehicle's own install manifest remedies it).
    software_fix: SoftwareFix | None = None


class CloseCampaign(Message, tag="recalls.close"):
    """The organisation that opened a campaign (or a regulator) closes it."""

    campaign: Uint
    reason: Text = ""


class RecordRemedy(Message, tag="recalls.remedy"):
    """A workshop or dealer attests the remedy on a vehicle. An over-the-air remedy is recorded by the
    vehicle's own install manifest (software.report_manifest), not attested."""

    campaign: Uint
    vin: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
    method: Literal["workshop", "software"] = "workshop"
    notes: Text = ""


class ConfirmSoftwareRemedy(Message, tag="recalls.confirm_software_remedy"):
    """Anyone points out that the ledger already proves a vehicle runs a campaign's software fix (it
    installed the fixing image before the campaign opened, say): the vehicle's software inventory,
    built from its own signed manifests, shows an ECU of the fix's hardware at the fix's release
    counter or higher."""

    campaign: Uint
    vin: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class CampaignOpened(Event, tag="recalls.campaign_opened"):
    campaign: Uint
    number: str
    component: str
    do_not_drive: bool


class CampaignClosed(Event, tag="recalls.campaign_closed"):
    campaign: Uint


class Remedied(Event, tag="recalls.remedied"):
    campaign: Uint
    vin: str
