"""Privacy queries: every commitment and tombstone about a subject (for the organisations that
hold data about it, regulators and police), and whether one given commitment is on record (for
whoever holds a disclosure of it).

Who reads what (``core.access``):

- ``commitments`` lists which organisations hold which fields about a person, and when: metadata
  about personal data. Members of an organisation that recorded a commitment or a tombstone for
  the subject read it, and regulators and police (``Party``); nobody else.
- ``commitment`` answers for one commitment the caller already has (from a disclosure the person
  handed over): whether it is on record, by which organisation, and whether it is still in force.
  It lists nothing and cannot be used to find a subject's data: a caller who does not hold the
  64-hex commitment learns nothing, so any known key may ask (``IDENTIFIED``).
- The events name the organisation that made them: its members, regulators and police read them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import IDENTIFIED, OrgOf, Party, field_of
from ...core.encoding import to_builtins
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from .spec import COMMITS as COMMITS_IX
from .spec import TOMBSTONES as TOMBSTONES_IX
from .spec import module
from .state import COMMITS, TOMBSTONES, Commitment, Tombstone, status

#: Most commitments one page of ``commitments`` returns.
COMMITMENTS_PAGE_MAX = 1000


class SubjectQuery(Page, kw_only=True):
    subject: KeyPart


class CommitmentQuery(msgspec.Struct):
    subject: KeyPart
    field: KeyPart
    commitment: KeyPart


def organisations_of(view: Any, obj: Any) -> set[str]:
    """The organisations that recorded a commitment or a tombstone for the subject of ``obj``."""
    subject = field_of(obj, "subject")
    if not isinstance(subject, str):
        return set()
    orgs = {r["org"] for r in view.rows(TOMBSTONES_IX, {"subject": subject}, limit=10_000)}
    orgs |= {r["org"] for r in view.rows(COMMITS_IX, {"subject": subject}, limit=10_000)}
    return orgs


HOLDERS_OF_THE_SUBJECT = Party(organisations_of, "members of an organisation that holds data about the subject "
                                                 "(a commitment or a tombstone), regulators, police")

module.reads(OrgOf("org"), "privacy.committed", "privacy.erased")


def _tombstones(view: QueryView, subject: str) -> dict[str, Tombstone]:
    out = {}
    for r in view.rows(TOMBSTONES_IX, {"subject": subject}, order=("org",), limit=10_000):
        t = TOMBSTONES.get(view, subject, r["org"])
        if t is not None:
            out[t.org] = t
    return out


def _row(c: Commitment, tombs: dict[str, Tombstone]) -> dict[str, Any]:
    return {**to_builtins(c), "status": status(c, tombs.get(c.org))}


@module.query("commitments", SubjectQuery, read=HOLDERS_OF_THE_SUBJECT)
def commitments(view: QueryView, q: SubjectQuery) -> dict[str, Any]:
    """Every commitment recorded about a subject, by organisation, field and version, each with its
    status (live, replaced, or erased: its organisation erased the subject), and every tombstone."""
    tombs = _tombstones(view, q.subject)
    rows = view.rows(COMMITS_IX, {"subject": q.subject}, order=("org", "field", "version"),
                     limit=q.size(COMMITMENTS_PAGE_MAX), offset=q.offset)
    out = []
    for r in rows:
        c = COMMITS.get(view, q.subject, r["org"], r["field"], r["version"])
        if c is not None:
            out.append(_row(c, tombs))
    return {"subject": q.subject, "total": view.count(COMMITS_IX, {"subject": q.subject}), "commitments": out,
            "tombstones": [to_builtins(t) for t in tombs.values()]}


@module.query("commitment", CommitmentQuery, read=IDENTIFIED)
def commitment(view: QueryView, q: CommitmentQuery) -> dict[str, Any]:
    """Whether ``commitment`` is recorded for ``field`` of ``subject``, and if so by which
    organisation, its status (live, replaced, erased) and the tombstone that erased it. For whoever
    checks a disclosure: it answers only about the commitment the caller names."""
    found = None
    for r in view.rows(COMMITS_IX, {"commitment": q.commitment}, order=("subject", "org", "field", "version"),
                       limit=10_000):
        if r["subject"] == q.subject and r["field"] == q.field:
            found = COMMITS.get(view, q.subject, r["org"], q.field, r["version"])
            break
    if found is None:
        return {"subject": q.subject, "field": q.field, "commitment": q.commitment, "recorded": False,
                "status": None, "record": None, "tombstone": None}
    tomb = TOMBSTONES.get(view, q.subject, found.org)
    return {"subject": q.subject, "field": q.field, "commitment": q.commitment, "recorded": True,
            "status": status(found, tomb), "record": to_builtins(found),
            "tombstone": None if tomb is None else to_builtins(tomb)}
