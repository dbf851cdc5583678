"""The privacy module's state-key prefixes, declared once: its state maps, the verifiers and the
access-policy code read them here. No key or value under them holds personal data: subjects are
opaque ids a vault assigned, commitments are salted hashes."""

COMMIT = "privacy/c/"  # (subject, organisation, field, version) -> a commitment record
LATEST = "privacy/v/"  # (subject, organisation, field) -> its newest version
FIELDS = "privacy/f/"  # (subject, organisation) -> the fields it holds a commitment for (until erased)
TOMBSTONE = "privacy/t/"  # (subject, organisation) -> the organisation's erasure of the subject
