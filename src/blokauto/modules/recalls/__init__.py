"""Recalls: campaigns, affected vehicles resolved from the installation record, remedies."""

from . import handlers, queries  # noqa: F401  (they register on the module)
from .spec import module

__all__ = ["module"]
