"""Privacy rules. The framework let only active member keys through (``MEMBER``); these rules
say what their organisation may record.

- A commitment is the sender's organisation's: (subject, organisation, field) has one in force,
  numbered by version. A different commitment for the same field replaces it (the person moved:
  the vault holds the new address under a new salt); the old version stays on record, marked
  replaced. The same commitment again is refused (``commitment_unchanged``).
- An organisation holds commitments for at most ``MAX_FIELDS`` fields of one subject.
- A VIN, when given, names a registered vehicle (the vehicles door says so).
- Erasure is a tombstone per (subject, organisation): recorded once, it voids every commitment
  the organisation made for the subject and refuses any later one. Other organisations'
  commitments about the same subject id are theirs and stay as they are.
- Nothing here holds personal data: the message types admit only opaque subject ids, field
  names and 64-hex commitments.
"""

from __future__ import annotations

import msgspec

from ...core.module import MEMBER, Context
from ...core.state import Overlay
from . import errors
from .messages import CommitPersonalData, EraseSubject, PersonalDataCommitted, SubjectErased
from .spec import COMMITS as COMMITS_IX
from .spec import MAX_FIELDS, TOMBSTONES as TOMBSTONES_IX
from .spec import Vehicles, module
from .state import COMMITS, FIELDS, LATEST, TOMBSTONES, Commitment, Tombstone


def _org(ctx: Context) -> str:
    assert ctx.member is not None, "privacy messages are sent by member keys (roles=MEMBER)"
    return ctx.member.org


@module.message(CommitPersonalData, roles=MEMBER)
def commit(state: Overlay, ctx: Context, msg: CommitPersonalData) -> None:
    """The sender's organisation records a commitment to a value it holds about a subject."""
    org = _org(ctx)
    tomb = TOMBSTONES.get(state, msg.subject, org)
    if tomb is not None:
        raise errors.SubjectTombstoned(org=org, subject=msg.subject, height=tomb.height)
    if msg.vin is not None:
        ctx.need(Vehicles).require_vehicle(state, msg.vin, allow_scrapped=True)  # raises unknown_vehicle
    latest = LATEST.get(state, msg.subject, org, msg.field)
    if latest is not None:
        current = COMMITS.get(state, msg.subject, org, msg.field, latest)
        assert current is not None, f"privacy/v names version {latest}, which is not recorded"
        if current.commitment == msg.commitment:
            raise errors.CommitmentUnchanged(org=org, commitment=msg.commitment, field=msg.field,
                                             subject=msg.subject, version=latest)
        COMMITS.put(state, msgspec.structs.replace(current, replaced=ctx.height), msg.subject, org, msg.field, latest)
        version = latest + 1
    else:
        fields = FIELDS.get(state, msg.subject, org) or []
        if len(fields) >= MAX_FIELDS:
            raise errors.TooManyFields(org=org, count=len(fields), subject=msg.subject)
        FIELDS.put(state, sorted([*fields, msg.field]), msg.subject, org)
        version = 1
    COMMITS.put(state, Commitment(msg.subject, org, msg.field, version, msg.commitment, msg.vin, ctx.sender,
                                  ctx.time, ctx.height), msg.subject, org, msg.field, version)
    LATEST.put(state, version, msg.subject, org, msg.field)
    ctx.index_put(COMMITS_IX, subject=msg.subject, org=org, field=msg.field, version=version,
                  commitment=msg.commitment)
    ctx.emit(PersonalDataCommitted(subject=msg.subject, org=org, field=msg.field, version=version,
                                   commitment=msg.commitment, vin=msg.vin))


@module.message(EraseSubject, roles=MEMBER)
def erase(state: Overlay, ctx: Context, msg: EraseSubject) -> None:
    """The sender's organisation records that it erased a subject: a tombstone, once."""
    org = _org(ctx)
    tomb = TOMBSTONES.get(state, msg.subject, org)
    if tomb is not None:
        raise errors.SubjectAlreadyErased(org=org, subject=msg.subject, height=tomb.height)
    fields = FIELDS.get(state, msg.subject, org) or []
    TOMBSTONES.put(state, Tombstone(msg.subject, org, ctx.sender, ctx.time, ctx.height, len(fields)),
                   msg.subject, org)
    if fields:
        FIELDS.delete(state, msg.subject, org)
    ctx.index_put(TOMBSTONES_IX, subject=msg.subject, org=org)
    ctx.emit(SubjectErased(subject=msg.subject, org=org, voided=len(fields)))
