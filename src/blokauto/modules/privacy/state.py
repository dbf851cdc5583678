"""Commitments and tombstones: which organisation holds which field about which subject (a salted
hash of the value, never the value), and which organisation erased which subject.

The subject is an opaque id the organisation's vault assigned (``subj-`` and 26 base32 digits from
random bytes), the field a short lowercase name ("name", "postal_address"): neither says anything
about the person, and the message types refuse anything else.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ...core.encoding import Uint
from ...core.state import StateMap
from . import keys

Subject = Annotated[str, msgspec.Meta(pattern=r"^subj-[a-z2-7]{26}\Z",
                                      description="an opaque subject id a vault assigned: subj- and 26 base32 digits")]
Field = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,31}\Z",
                                    description="what the value is (name, postal_address): lowercase, digits, _")]
Digest = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z", description="a salted commitment, 64 lowercase hex")]
Status = Literal["live", "replaced", "erased"]


class Commitment(msgspec.Struct, frozen=True):
    """One version of an organisation's commitment to a field of a subject."""

    subject: str
    org: str
    field: str
    version: Uint  # 1, 2, ...: a new value (or a new salt) replaces the one before
    commitment: str
    vin: str | None  # the vehicle the value is held for, if any
    by: str  # the member key that recorded it
    time: Uint  # block time
    height: Uint
    replaced: Uint = 0  # height of the version that replaced it (0: not replaced)


class Tombstone(msgspec.Struct, frozen=True):
    """An organisation erased a subject: its vault destroyed the subject's key and data, and every
    commitment it recorded for the subject is void."""

    subject: str
    org: str
    by: str
    time: Uint
    height: Uint
    voided: Uint  # commitments in force (one per field) it voided


def status(c: Commitment, tombstone: Tombstone | None) -> Status:
    """What ``c`` is now: erased (its organisation erased the subject), replaced, or live."""
    if tombstone is not None:
        return "erased"
    return "replaced" if c.replaced else "live"


COMMITS = StateMap(keys.COMMIT, Commitment)
LATEST = StateMap(keys.LATEST, int)
FIELDS = StateMap(keys.FIELDS, list[str])
TOMBSTONES = StateMap(keys.TOMBSTONE, Tombstone)
