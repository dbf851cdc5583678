"""The vault: personal data an organisation collected, kept beside its node, off the ledger.

One SQLite file (``vault.db``) and one master key (``master.key``, 32 random bytes, mode 0600).
Each person is a subject with an opaque id (``subj-`` + 26 base32 digits from random bytes) and
a random 32-byte key, stored wrapped by the master key (PyNaCl ``SecretBox``); each value is
sealed with the subject's key together with the salt of its commitment. The ledger gets only the
commitment (``blokauto.modules.privacy.commitment``). Erasing a subject destroys its wrapped key
and every sealed value in one transaction, then rewrites the file (``VACUUM``) so no byte of them
stays in it.
"""

from ._errors import (InvalidField, InvalidSubject, SubjectErased, UnknownField, UnknownSubject, VaultDataDamaged,
                      VaultError, VaultFolderUnsafe, VaultKeyInvalid, VaultKeyMissing, VaultKeyUnsafe, VaultKeyWrong)
from ._vault import Disclosure, Vault, new_subject_id

__all__ = ["Disclosure", "InvalidField", "InvalidSubject", "SubjectErased", "UnknownField", "UnknownSubject",
           "Vault", "VaultDataDamaged", "VaultError", "VaultFolderUnsafe", "VaultKeyInvalid", "VaultKeyMissing",
           "VaultKeyUnsafe", "VaultKeyWrong", "new_subject_id"]
