"""Vehicles: identity (VIN), birth record, title and liens, brands, odometer, service,
inspections, accidents, theft and end of life, each vehicle with a hash-chained history.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its doors, wired here: ``VehicleDoor``, what parts, recalls and the history report may ask, and
``VehicleRelations``, how a caller relates to a vehicle (the read policies of ``core.access``).
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import BirthFacts, VehicleDoor, VehicleEvidence, VehicleRegistry
from .spec import module
from ...core.access import VehicleRelations

registry = module.provide(VehicleDoor, VehicleRegistry())
module.provide(VehicleRelations, registry)

__all__ = ["BirthFacts", "VehicleDoor", "VehicleEvidence", "module"]
