"""Recalls: campaigns, affected vehicles resolved from the installation record, remedies.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its doors, wired here: ``RecallsDoor``, what parts and the history report may ask; ``SoftwareRemedies``,
how a vehicle's install manifest remedies the software recalls it fixes.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from ..software.doors import SoftwareRemedies
from .doors import CampaignRecords, OpenRecall, RecallEvidence, RecallsDoor, SoftwareFixes
from .spec import module

module.provide(RecallsDoor, CampaignRecords())
module.provide(SoftwareRemedies, SoftwareFixes())

__all__ = ["OpenRecall", "RecallEvidence", "RecallsDoor", "module"]
