"""Privacy: personal data stays off the ledger, in the vault of the organisation that collected it
(``blokauto.vault``); the ledger records only that an organisation holds a field about an opaque
subject (a salted commitment, ``commitment.commitment``, which the vault and verifiers share) and, when it erases the person, a
tombstone. Erasure destroys the data and its key in the vault; the chain still verifies.

The module's definition: its messages and queries (declared in ``handlers`` and ``queries``) and
its door, wired here: ``PrivacyDoor``.
"""

from . import handlers, queries  # noqa: F401  (messages and queries declare themselves on the module)
from . import commitment
from .commitment import TAG_COMMITMENT, opens
from .doors import PrivacyDoor, PrivacyRecords
from .spec import module

module.provide(PrivacyDoor, PrivacyRecords())

__all__ = ["PrivacyDoor", "TAG_COMMITMENT", "commitment", "module", "opens"]
