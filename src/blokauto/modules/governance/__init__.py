"""Governance: organisations, member keys and roles, node keys and quorum, votes, parameters."""

from . import handlers, queries  # noqa: F401  (they register on the module)
from .spec import module

__all__ = ["module"]
