"""Vehicles: identity (VIN), birth record, title and liens, brands, odometer, service,
inspections, accidents, theft and end of life, each vehicle with a hash-chained history.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its door, wired here: ``VehicleDoor``, what parts, recalls and the history report may ask.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import BirthFacts, VehicleDoor, VehicleEvidence, VehicleRegistry
from .spec import module

module.provide(VehicleDoor, VehicleRegistry())

__all__ = ["BirthFacts", "VehicleDoor", "VehicleEvidence", "module"]
