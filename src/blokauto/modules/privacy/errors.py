"""Privacy refusals."""

from ...core.errors import DomainError


class SubjectTombstoned(DomainError):
    code = "subject_tombstoned"
    template = ("Organisation {org} erased subject {subject} at block {height}; it records nothing more about "
                "them (a person who comes back is a new subject: `blokauto privacy record --new`).")


class CommitmentUnchanged(DomainError):
    code = "commitment_unchanged"
    template = ("Organisation {org} already holds commitment {commitment} for {field} of subject {subject} "
                "(version {version}); a replacement commits a new value or a new salt.")


class TooManyFields(DomainError):
    code = "privacy_too_many_fields"
    template = ("Organisation {org} already holds commitments for {count} fields of subject {subject}, the most "
                "one organisation may hold about one subject.")


class SubjectAlreadyErased(DomainError):
    code = "subject_already_erased"
    template = "Organisation {org} already erased subject {subject}, at block {height}."
