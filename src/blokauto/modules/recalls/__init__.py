"""Recalls: campaigns, affected vehicles resolved from the installation record, remedies.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its door, wired here: ``RecallsDoor``, what parts and the history report may ask.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import CampaignRecords, OpenRecall, RecallEvidence, RecallsDoor
from .spec import module

module.provide(RecallsDoor, CampaignRecords())

__all__ = ["OpenRecall", "RecallEvidence", "RecallsDoor", "module"]
