"""Recall refusals."""

from ...core.errors import DomainError


class ScopeMatchesNothing(DomainError):
    code = "scope_matches_nothing"
    template = ("The scope matches no installed part: {reason}. A campaign must name a part number, batch or serial "
                "range that is installed in some vehicle, or vehicle criteria only.")


class EmptyScope(DomainError):
    code = "empty_scope"
    template = "A campaign scope needs at least one criterion: part numbers, batches, serial ranges, build dates or VIN ranges."


class CampaignNumberTaken(DomainError):
    code = "campaign_number_taken"
    template = "Campaign number {number!r} is already used by campaign {campaign}."


class UnknownCampaign(DomainError):
    code = "unknown_campaign"
    template = "There is no recall campaign {campaign}."


class CampaignClosed(DomainError):
    code = "campaign_closed"
    template = "Recall campaign {campaign} is closed."


class NotAffected(DomainError):
    code = "not_affected"
    template = "{vin} was not covered by campaign {campaign} when it opened (block {height}); no remedy to record."


class AlreadyRemedied(DomainError):
    code = "already_remedied"
    template = "{vin} was already remedied for campaign {campaign} at block {height}."


class NotYourCampaign(DomainError):
    code = "not_your_campaign"
    template = "{reason}."


class SoftwareFixRequired(DomainError):
    code = "software_fix_required"
    template = ("A campaign with an over-the-air remedy names its fix (software_fix: the hardware id and the lowest "
                "release counter that fixes it), so the vehicle's install manifest can remedy it.")


class RemedyNeedsManifest(DomainError):
    code = "remedy_needs_manifest"
    template = ("Campaign {campaign} is remedied over the air by the vehicle's own install manifest of an image for "
                "{hardware_id} with release counter {min_release_counter} or higher, not by an attestation.")


class FixNotInstalled(DomainError):
    code = "fix_not_installed"
    template = ("{vin} runs no image for {hardware_id} with release counter {min_release_counter} or higher on the "
                "ledger; it is remedied when its install manifest of one is committed.")
