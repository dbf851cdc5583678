"""Governance: organisations, member keys and roles, node keys and quorum, votes, parameters.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its doors, wired here: the ``Directory`` that authorises every transaction (vehicles reads
organisations' roles through it too) and ``GovernanceReader`` for the node.
"""

from ...core.module import Directory
from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import ConsensusRecord, GovernanceReader, GovernanceRecords
from .spec import module

module.provide(Directory, handlers.GovernanceDirectory())
module.provide(GovernanceReader, GovernanceRecords())

__all__ = ["ConsensusRecord", "GovernanceReader", "module"]
