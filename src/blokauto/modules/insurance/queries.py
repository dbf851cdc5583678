"""Insurance queries and who reads them. Products are offers: any known key reads them. A policy,
its statements and its claims are read by its insurer and its holder (a claim also by the workshop
that assessed it); an insurer lists its own policies and claims; a holder its own policies; regulators,
police and nodes read everything."""

from __future__ import annotations

from typing import Any

import msgspec

from ...core.access import IDENTIFIED, AnyOf, HolderOf, OrgOf, Own, Party, field_of
from ...core.encoding import Uint, to_builtins
from ...core.module import Page, QueryView
from ...core.state import KeyPart
from . import errors
from .spec import CLAIM_LIST, POLICY_LIST, PRODUCT_LIST, module
from .state import CLAIMS, POLICIES, PRODUCTS, STATEMENTS, VEHICLE_POLICIES

PAGE_MAX = 1000


def _names(*owners: Any) -> set[str]:
    """What ``Party`` matches: an organisation id for org:<id>, else the key itself."""
    return {o[4:] if o.startswith("org:") else o for o in owners if isinstance(o, str) and o}


def _policy_parties(view: Any, obj: Any) -> set[str]:
    pid = field_of(obj, "policy")
    p = POLICIES.get(view, pid) if isinstance(pid, int) and pid > 0 else None
    return _names(p.insurer, p.holder) if p is not None else set()


def _claim_parties(view: Any, obj: Any) -> set[str]:
    cid = field_of(obj, "claim")
    c = CLAIMS.get(view, cid) if isinstance(cid, int) and cid > 0 else None
    return _names(c.insurer, c.holder, c.workshop) if c is not None else set()


def _event_parties(view: Any, ev: Any) -> set[str]:
    return _names(field_of(ev, "insurer"), field_of(ev, "holder"), field_of(ev, "workshop"))


POLICY_PARTIES = Party(_policy_parties, "the policy's insurer and holder")
CLAIM_PARTIES = Party(_claim_parties, "the claim's insurer, holder and assessing workshop")


class ProductQuery(msgspec.Struct):
    insurer: KeyPart
    product: KeyPart


class PolicyQuery(msgspec.Struct):
    policy: Uint


class StatementQuery(msgspec.Struct):
    policy: Uint
    period: Uint


class PolicyPage(Page, kw_only=True):
    policy: Uint


class ClaimQuery(msgspec.Struct):
    claim: Uint


class InsurerPage(Page, kw_only=True):
    insurer: KeyPart


class InsurerClaims(Page, kw_only=True):
    insurer: KeyPart
    status: KeyPart = "opened"


class HolderPage(Page, kw_only=True):
    holder: KeyPart


class VinQuery(msgspec.Struct):
    vin: KeyPart


@module.query("products", Page, read=IDENTIFIED)
def products(view: QueryView, q: Page) -> dict[str, Any]:
    """Every published product, by insurer and id (its pricing: `insurance product`)."""
    rows = view.rows(PRODUCT_LIST, {}, order=("insurer", "product"), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"products": [dict(r) for r in rows]}


@module.query("product", ProductQuery, read=IDENTIFIED, proof_keys=lambda q: [PRODUCTS.key(q.insurer, q.product)])
def product(view: QueryView, q: ProductQuery) -> dict[str, Any]:
    """A product: currency, period, the pricing parameters of its formula, its version."""
    p = PRODUCTS.get(view, q.insurer, q.product)
    if p is None:
        raise errors.UnknownProduct(insurer=q.insurer, product=q.product)
    return to_builtins(p)


@module.query("policy", PolicyQuery, read=POLICY_PARTIES, proof_keys=lambda q: [POLICIES.key(q.policy)])
def policy(view: QueryView, q: PolicyQuery) -> dict[str, Any]:
    """A policy as bound (and renewed or cancelled), with how many periods have a statement."""
    p = POLICIES.get(view, q.policy) if q.policy > 0 else None
    if p is None:
        raise errors.UnknownPolicy(policy=q.policy)
    return to_builtins(p)


@module.query("statements", PolicyPage, read=POLICY_PARTIES)
def statements(view: QueryView, q: PolicyPage) -> dict[str, Any]:
    """A policy's premium statements, oldest first: period, usage counted, premium, paid or due."""
    p = POLICIES.get(view, q.policy) if q.policy > 0 else None
    if p is None:
        raise errors.UnknownPolicy(policy=q.policy)
    periods = range(q.offset, min(p.billed, q.offset + q.size(PAGE_MAX)))
    return {"policy": p.id, "billed": p.billed,
            "statements": [to_builtins(STATEMENTS.get(view, p.id, k)) for k in periods]}


@module.query("statement", StatementQuery, read=POLICY_PARTIES,
              proof_keys=lambda q: [STATEMENTS.key(q.policy, q.period)])
def statement(view: QueryView, q: StatementQuery) -> dict[str, Any]:
    """One premium statement, with its proof: the holder checks every cent against the pricing."""
    s = STATEMENTS.get(view, q.policy, q.period)
    if s is None:
        raise errors.UnknownStatement(policy=q.policy, period=q.period)
    return to_builtins(s)


@module.query("claim", ClaimQuery, read=CLAIM_PARTIES, proof_keys=lambda q: [CLAIMS.key(q.claim)])
def claim(view: QueryView, q: ClaimQuery) -> dict[str, Any]:
    """A claim: how it opened (the vehicle's crash, or the holder), flags, estimate, decision, payout."""
    c = CLAIMS.get(view, q.claim) if q.claim > 0 else None
    if c is None:
        raise errors.UnknownClaim(claim=q.claim)
    return to_builtins(c)


@module.query("insurer_policies", InsurerPage, read=OrgOf("insurer"))
def insurer_policies(view: QueryView, q: InsurerPage) -> dict[str, Any]:
    """An insurer's policies by id."""
    rows = view.rows(POLICY_LIST, {"insurer": q.insurer}, order=("id",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"insurer": q.insurer, "total": view.count(POLICY_LIST, {"insurer": q.insurer}),
            "policies": [dict(r) for r in rows]}


@module.query("insurer_claims", InsurerClaims, read=OrgOf("insurer"))
def insurer_claims(view: QueryView, q: InsurerClaims) -> dict[str, Any]:
    """An insurer's claims in one status (opened, assessed, approved, denied, paid), by id."""
    where = {"insurer": q.insurer, "status": q.status}
    rows = view.rows(CLAIM_LIST, where, order=("id",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"insurer": q.insurer, "status": q.status, "total": view.count(CLAIM_LIST, where),
            "claims": [dict(r) for r in rows]}


@module.query("holder_policies", HolderPage, read=Own("holder"))
def holder_policies(view: QueryView, q: HolderPage) -> dict[str, Any]:
    """The policies a key (or org:<id>) holds, by id."""
    rows = view.rows(POLICY_LIST, {"holder": q.holder}, order=("id",), limit=q.size(PAGE_MAX), offset=q.offset)
    return {"holder": q.holder, "policies": [dict(r) for r in rows]}


@module.query("vehicle_policies", VinQuery, read=AnyOf(HolderOf("vin")))
def vehicle_policies(view: QueryView, q: VinQuery) -> dict[str, Any]:
    """The policies ever bound on a vehicle, oldest first (for its current holder)."""
    held = VEHICLE_POLICIES.get(view, q.vin)
    return {"vin": q.vin, "policies": list(held.ids) if held is not None else []}


module.reads(IDENTIFIED, "insurance.product_published")
module.reads(Party(_event_parties, "the parties the event names (insurer, holder, workshop)"),
             "insurance.policy_changed", "insurance.statement_issued", "insurance.premium_paid",
             "insurance.claim_changed")
