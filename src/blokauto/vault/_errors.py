"""The vault's refusals: each a ``BlokautoError`` with a stable code (never sent over the ledger;
the CLI shows them as ``[code] sentence`` and exits 1)."""

from __future__ import annotations

from ..core.errors import BlokautoError


class VaultError(BlokautoError):
    """Base of the vault's refusals."""

    code = "vault_error"
    template = "The vault refused: {reason}."


class UnknownSubject(VaultError):
    code = "unknown_subject"
    template = ("The vault at {vault} holds nothing about subject {subject!r}; `blokauto privacy record --new "
                "FIELD VALUE` creates a subject.")


class InvalidSubject(VaultError):
    code = "invalid_subject_id"
    template = ("{subject!r} is not a subject id: a vault names subjects subj- and 26 base32 digits (a-z, 2-7), "
                "never after anything about the person.")


class InvalidField(VaultError):
    code = "invalid_vault_field"
    template = ("{field!r} is not a field name: 1-32 characters, a lowercase letter first, then lowercase letters, "
                "digits and _ (name, postal_address).")


class UnknownField(VaultError):
    code = "unknown_vault_field"
    template = "The vault holds no {field} for subject {subject}; it holds: {held}."


class SubjectErased(VaultError):
    code = "subject_erased"
    template = ("Subject {subject} was erased from the vault at {erased_at}: its key and data are destroyed and "
                "nothing about them can be read any more.")


class VaultKeyMissing(VaultError):
    code = "vault_key_missing"
    template = ("{path} is missing but the vault {db} exists: without its master key nothing in the vault can be "
                "read. Restore master.key from the organisation's backup; never create a new one for an existing "
                "vault.")


class VaultKeyUnsafe(VaultError):
    code = "vault_key_unsafe"
    template = ("{path} may be read or written by others (mode {mode}); the vault's master key must be readable by "
                "its owner only: run `chmod 600 {path}` (and check who else has read it).")


class VaultFolderUnsafe(VaultError):
    code = "vault_folder_unsafe"
    template = ("{path} {why}; a vault's files must be its owner's alone (someone who can write the folder can "
                "swap the master key or the database): {fix}")


class VaultKeyInvalid(VaultError):
    code = "vault_key_invalid"
    template = "{path} holds {size} bytes; a vault's master key is 32 random bytes. Restore it from the backup."


class VaultKeyWrong(VaultError):
    code = "vault_key_wrong"
    template = ("{path} does not open the vault {db}: it is another vault's master key, or it was changed. "
                "Restore this vault's master.key from the organisation's backup.")


class VaultDataDamaged(VaultError):
    code = "vault_data_damaged"
    template = ("The vault's {what} for subject {subject} does not decrypt ({reason}): it was changed or damaged on "
                "disk. Restore vault.db from the organisation's backup.")
