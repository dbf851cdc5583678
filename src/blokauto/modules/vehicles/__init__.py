"""Vehicles: identity (VIN), birth record, title and liens, brands, odometer, service,
inspections, accidents, theft and end of life, each vehicle with a hash-chained history."""

from . import handlers, queries  # noqa: F401  (they register on the module)
from .spec import module

__all__ = ["module"]
