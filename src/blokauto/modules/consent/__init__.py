"""Consent: the title holder's grants and revocations, per organisation, data category, purpose
and expiry (block time), each on record as a transaction with its event.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its door, wired here: ``ConsentDoor``, what the access-policy code asks before a read.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from .doors import ConsentDoor, ConsentRecords
from .spec import module
from ...core.access import ConsentCheck

consent = module.provide(ConsentDoor, ConsentRecords())
module.provide(ConsentCheck, consent)

__all__ = ["ConsentDoor", "module"]
