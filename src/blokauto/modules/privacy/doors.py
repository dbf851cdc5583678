"""The privacy module's door: what the access-policy code, the reports and other modules may ask
of privacy: whether an organisation erased a subject, and the commitment it holds for a field."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...core.state import StateReader
from .state import COMMITS, LATEST, TOMBSTONES


@runtime_checkable
class PrivacyDoor(Protocol):
    """The privacy module's door."""

    def erased_at(self, state: StateReader, subject: str, org: str) -> int | None:
        """The height of ``org``'s tombstone for ``subject``, or None."""
        ...

    def commitment_of(self, state: StateReader, subject: str, org: str, field: str) -> str | None:
        """The commitment in force that ``org`` holds for ``field`` of ``subject`` (None if there is
        none, or the organisation erased the subject)."""
        ...


def _ok(*parts: str) -> bool:
    return all(p and "/" not in p and len(p) <= 200 for p in parts)


class PrivacyRecords:
    """The implementation of ``PrivacyDoor`` wired in the module's definition."""

    def erased_at(self, state: StateReader, subject: str, org: str) -> int | None:
        if not _ok(subject, org):
            return None
        tomb = TOMBSTONES.get(state, subject, org)
        return None if tomb is None else tomb.height

    def commitment_of(self, state: StateReader, subject: str, org: str, field: str) -> str | None:
        if not _ok(subject, org, field) or TOMBSTONES.has(state, subject, org):
            return None
        version = LATEST.get(state, subject, org, field)
        c = None if version is None else COMMITS.get(state, subject, org, field, version)
        return None if c is None else c.commitment
