"""Parts: catalogue, serialized twins and batches, custody, condition logs, raw materials,
assemblies, installation and removal.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its door, wired here: ``PartsDoor``, what recalls and the history report may ask.
"""

from . import handlers, logistics_queries, materials, queries  # noqa: F401  (messages and queries declare themselves)
from .doors import CarriedPart, InstalledParts, PartsDoor, PartsEvidence
from .spec import module

module.provide(PartsDoor, InstalledParts())

__all__ = ["CarriedPart", "PartsDoor", "PartsEvidence", "module"]
