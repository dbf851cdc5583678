"""Privacy messages and events. Neither carries personal data: subject ids and commitments only."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ...core.encoding import Uint
from ...core.module import Event
from ...core.tx import Message
from .state import Digest, Field, Subject

Vin = Annotated[str, msgspec.Meta(min_length=1, max_length=40, description="17-character ISO 3779 VIN")]


class CommitPersonalData(Message, tag="privacy.commit"):
    """A member records that its organisation holds a value of ``field`` about ``subject`` in its
    vault: the salted commitment, never the value (``blokauto privacy record`` makes both). A new
    commitment for a field the organisation already holds replaces the previous one (which stays
    on record as replaced); the same commitment again is refused. Refused after the organisation's
    tombstone for the subject."""

    subject: Subject
    field: Field
    commitment: Digest
    vin: Vin | None = None  # the vehicle the value is held for (a registered VIN), if any


class EraseSubject(Message, tag="privacy.erase"):
    """A member records that its organisation erased ``subject`` from its vault (key and data
    destroyed): a tombstone, once per organisation and subject, voiding its commitments."""

    subject: Subject


class PersonalDataCommitted(Event, tag="privacy.committed"):
    subject: str
    org: str
    field: str
    version: Uint
    commitment: str
    vin: str | None = None


class SubjectErased(Event, tag="privacy.erased"):
    subject: str
    org: str
    voided: Uint
