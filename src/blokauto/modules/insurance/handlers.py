"""Insurance rules. Signers and sender roles were checked by the framework already.

A policy is in force at time t when ``start <= t < effective_end``: its end, or earlier its
cancellation, or earlier the moment its holder's holding of the title ended (a sale). Its periods
are ``period_ms`` long from ``start``; statements are issued in order, each once its period (cut at
the effective end: pro rata) has ended at block time.
"""

from __future__ import annotations

from msgspec.structs import replace

from ...core.access import ORG_PREFIX
from ...core.module import ANYONE, Context, KeyParty, OrgParty, Party
from ...core.state import Overlay, StateReader
from . import errors
from .messages import (
    AssessClaim,
    BindPolicy,
    CancelPolicy,
    ChooseWorkshop,
    ClaimChanged,
    DecideClaim,
    FileClaim,
    IssueStatements,
    PayClaim,
    PayPremium,
    PolicyChanged,
    PremiumPaid,
    ProductPublished,
    PublishProduct,
    RenewPolicy,
    StatementIssued,
)
from .pricing import check_pricing, premium
from .spec import (CLAIM_LIST, MAX_POLICY_START_MS, MILEAGE_SLACK_KM, POLICY_LIST, PRODUCT_LIST, Consent,
                   Organisations, Payments, Telemetry, Vehicles, module)
from .state import (CLAIMS, CRASH_CLAIMS, NEXT, VEHICLE_CLAIMS, POLICIES, PRODUCTS, STATEMENTS, VEHICLE_POLICIES, Claim, Policy,
                    Product, Statement, VehiclePolicies)

DAY_MS = 86_400_000
FOREVER = 2**53 - 1
#: Crashes of one vehicle reported this close together (ms) are flagged possible_duplicate.
SAME_CRASH_MS = 60_000

# ---------------------------------------------------------------- helpers


def _org(ctx: Context) -> str | None:
    return ctx.member.org if ctx.member is not None else None


def speaks_for(holder: str, ctx: Context) -> bool:
    """Whether the sender signs for ``holder``: that key, or any key of that organisation."""
    org = _org(ctx)
    return holder == ctx.sender or (org is not None and holder == ORG_PREFIX + org)


def holder_party(holder: str, label: str) -> Party:
    if holder.startswith(ORG_PREFIX):
        return OrgParty(holder[len(ORG_PREFIX):], "", label)
    return KeyParty(holder, label)


def _next_id(state: Overlay, name: str) -> int:
    n = NEXT.get(state, name) or 1
    NEXT.put(state, n + 1, name)
    return n


def policy(state: StateReader, pid: int) -> Policy:
    p = POLICIES.get(state, pid) if pid > 0 else None
    if p is None:
        raise errors.UnknownPolicy(policy=pid)
    return p


def _insurer_of(ctx: Context, p: Policy) -> None:
    if _org(ctx) != p.insurer:
        raise errors.NotYourPolicy(policy=p.id, insurer=p.insurer, org=_org(ctx) or ctx.sender)


def effective_end(state: StateReader, ctx: Context, p: Policy) -> int:
    """When ``p`` stops being in force: its end, its cancellation, or the sale that ended its holding
    (``TitleWatch`` records it in the sale's transaction)."""
    end = p.end
    for stop in (p.cancelled, p.sold):
        if stop:
            end = min(end, max(stop, p.start))
    return end


class TitleWatch:
    """Provided to vehicles as ``TitleWatchers``: a sale ends every policy of its seller's holding not
    over yet (the one in force, and one already bound to follow it)."""

    def title_passed(self, state: Overlay, ctx: Context, vin: str, holder: str, since: int) -> None:
        held = VEHICLE_POLICIES.get(state, vin)
        for pid in reversed(held.ids if held is not None else []):  # newest first: one bound to follow too
            p = policy(state, pid)
            if effective_end(state, ctx, p) <= ctx.time:
                return  # it (and every older one) was over before this sale
            if (p.holder, p.holder_since) == (holder, since):
                _put_policy(state, ctx, replace(p, sold=ctx.time), "sold")


def active_policy(state: StateReader, ctx: Context, vin: str, t: int) -> Policy | None:
    """The policy of ``vin`` in force at time ``t`` (policies of a vehicle never overlap)."""
    held = VEHICLE_POLICIES.get(state, vin)
    for pid in reversed(held.ids if held is not None else []):
        p = policy(state, pid)
        if p.start <= t < effective_end(state, ctx, p):
            return p
        if p.start <= t:
            return None  # earlier policies ended before this one started
    return None


def _put_policy(state: Overlay, ctx: Context, p: Policy, change: str) -> None:
    POLICIES.put(state, p, p.id)
    ctx.emit(PolicyChanged(policy=p.id, change=change, vin=p.vin, insurer=p.insurer, holder=p.holder))


def _put_claim(state: Overlay, ctx: Context, c: Claim) -> None:
    CLAIMS.put(state, c, c.id)
    ctx.index_put(CLAIM_LIST, id=c.id, policy=c.policy, insurer=c.insurer, vin=c.vin, status=c.status)
    ctx.emit(ClaimChanged(claim=c.id, policy=c.policy, status=c.status, vin=c.vin, insurer=c.insurer,
                          holder=c.holder, workshop=c.workshop))


# ---------------------------------------------------------------- products and policies


@module.message(PublishProduct, roles={"insurer"})
def publish_product(state: Overlay, ctx: Context, msg: PublishProduct) -> None:
    """A product's pricing must be able to price (min <= max, base <= max); republishing makes a new
    version that only policies bound afterwards use."""
    insurer = _org(ctx)
    assert insurer is not None, "the insurer role is a member's"
    reason = check_pricing(msg.pricing)
    if reason:
        raise errors.InvalidProduct(reason=reason)
    old = PRODUCTS.get(state, insurer, msg.product)
    version = old.version + 1 if old is not None else 1
    PRODUCTS.put(state, Product(insurer, msg.product, version, msg.currency, msg.period_days, msg.pricing,
                                msg.max_coverage, ctx.height), insurer, msg.product)
    ctx.index_put(PRODUCT_LIST, insurer=insurer, product=msg.product, currency=msg.currency)
    ctx.emit(ProductPublished(insurer=insurer, product=msg.product, version=version))


def _bind_parties(state: StateReader, ctx: Context, msg: BindPolicy) -> list[Party]:
    vehicles = ctx.need(Vehicles)
    vehicles.require_vehicle(state, msg.vin)
    return [holder_party(vehicles.title(state, msg.vin).holder, "the title holder")]


@module.message(BindPolicy, roles={"insurer"}, cosigners=_bind_parties)
def bind_policy(state: Overlay, ctx: Context, msg: BindPolicy) -> None:
    """The holder and one of the insurer's keys sign; it starts no earlier than the block time and no
    later than ``policy_max_start_ahead_ms`` after it, after the vehicle's previous policy ends;
    deductible <= coverage <= the product's max_coverage."""
    insurer = _org(ctx)
    assert insurer is not None
    product = PRODUCTS.get(state, insurer, msg.product)
    if product is None:
        raise errors.UnknownProduct(insurer=insurer, product=msg.product)
    vehicles = ctx.need(Vehicles)
    vehicles.require_vehicle(state, msg.vin)
    title = vehicles.title(state, msg.vin)
    ahead = ctx.param(MAX_POLICY_START_MS.name)
    for ok, reason in (
        (msg.coverage <= product.max_coverage, f"coverage {msg.coverage} is above the product's {product.max_coverage}"),
        (msg.deductible <= msg.coverage, f"deductible {msg.deductible} is above the coverage {msg.coverage}"),
        (msg.start >= ctx.time, f"it starts at {msg.start}, before the block time {ctx.time} (no cover backdated)"),
        (msg.start <= ctx.time + ahead, f"it starts more than {ahead} ms after the block time"),
    ):
        if not ok:
            raise errors.InvalidPolicy(reason=reason)
    held = VEHICLE_POLICIES.get(state, msg.vin) or VehiclePolicies()
    for pid in reversed(held.ids):  # the newest that is ever in force (one ended before its start never is)
        last = policy(state, pid)
        last_end = effective_end(state, ctx, last)
        if last_end > last.start:
            if last_end > msg.start:
                raise errors.PolicyOverlaps(vin=msg.vin, policy=last.id, end=last_end)
            break
    period = product.period_days * DAY_MS
    pid = _next_id(state, "policy")
    p = Policy(pid, insurer, msg.product, product.version, msg.vin, title.holder, title.since, product.currency,
               product.pricing, period, msg.start, msg.start + msg.periods * period, msg.deductible, msg.coverage,
               height=ctx.height, billed_seq=ctx.need(Telemetry).last_before(state, msg.vin, msg.start))
    VEHICLE_POLICIES.put(state, VehiclePolicies([*held.ids, pid]), msg.vin)
    ctx.index_put(POLICY_LIST, id=pid, insurer=insurer, vin=msg.vin, holder=title.holder, product=msg.product)
    _put_policy(state, ctx, p, "bound")


def _renew_parties(state: StateReader, ctx: Context, msg: RenewPolicy) -> list[Party]:
    return [holder_party(policy(state, msg.policy).holder, "the policy holder")]


@module.message(RenewPolicy, roles={"insurer"}, cosigners=_renew_parties)
def renew_policy(state: Overlay, ctx: Context, msg: RenewPolicy) -> None:
    """Only the vehicle's newest policy, before it ends, not cancelled, its holder still holding."""
    p = policy(state, msg.policy)
    _insurer_of(ctx, p)
    if p.cancelled:
        raise errors.PolicyCancelled(policy=p.id, cancelled=p.cancelled)
    title = ctx.need(Vehicles).title(state, p.vin)
    if title is None or (title.holder, title.since) != (p.holder, p.holder_since):
        raise errors.HolderChanged(vin=p.vin, holder=p.holder, policy=p.id)
    if ctx.time >= p.end:
        raise errors.PolicyNotRenewable(policy=p.id, reason=f"it ended at {p.end}; bind a new one")
    held = VEHICLE_POLICIES.get(state, p.vin)
    if held is None or held.ids[-1] != p.id:
        raise errors.PolicyNotRenewable(policy=p.id, reason="a newer policy follows it")
    _put_policy(state, ctx, replace(p, end=p.end + msg.periods * p.period_ms), "renewed")


@module.message(CancelPolicy, roles=ANYONE)
def cancel_policy(state: Overlay, ctx: Context, msg: CancelPolicy) -> None:
    """The holder or the insurer, while it is not over; the last period is billed up to now."""
    p = policy(state, msg.policy)
    if not (speaks_for(p.holder, ctx) or _org(ctx) == p.insurer):
        raise errors.NotPolicyHolder(policy=p.id, holder=p.holder, sender=ctx.sender)
    if p.cancelled:
        raise errors.PolicyCancelled(policy=p.id, cancelled=p.cancelled)
    end = effective_end(state, ctx, p)
    if ctx.time >= end:
        raise errors.PolicyEnded(policy=p.id, end=end)
    _put_policy(state, ctx, replace(p, cancelled=ctx.time), "cancelled")


# ---------------------------------------------------------------- premium statements


@module.message(IssueStatements, roles={"insurer"})
def issue_statements(state: Overlay, ctx: Context, msg: IssueStatements) -> None:
    """For each listed policy (the sender's insurer's, each once), the next period's statement, once
    that period has ended: the usage of the vehicle's batches not billed yet that end before the
    period's end (a batch committed late, dated in a period already billed, counts in the next
    statement; batches that ended before the policy started never count), priced by the policy's pricing
    (``pricing.premium``), if the policy's holder consented to the insurer for driving data through the
    whole period (a grant of that holding made by the period's start, never revoked, counting until
    its end, even if a sale ended the holding since); otherwise the product's cap. A period cut short by a cancellation or
    sale is pro rata."""
    seen: set[int] = set()
    telemetry, consent = ctx.need(Telemetry), ctx.need(Consent)
    for pid in msg.policies:
        if pid in seen:
            raise errors.DuplicatePolicy(policy=pid)
        seen.add(pid)
        p = policy(state, pid)
        _insurer_of(ctx, p)
        end = effective_end(state, ctx, p)
        k = p.billed
        ws = p.start + k * p.period_ms
        if ws >= end:
            raise errors.PolicyFullyBilled(policy=p.id, billed=k)
        we = min(ws + p.period_ms, end)
        if ctx.time < we:
            raise errors.PeriodNotEnded(policy=p.id, period=k, end=we, time=ctx.time)
        consented = consent.held_through(state, p.vin, p.insurer, "driving", p.holder, p.holder_since, ws,
                                         we) is not None
        after = max(p.billed_seq, telemetry.last_before(state, p.vin, p.start))  # nothing from before the policy
        through = max(telemetry.last_before(state, p.vin, we), after)
        totals = (telemetry.through(state, p.vin, through).minus(telemetry.through(state, p.vin, after))
                  if consented else None)
        amount = premium(p.pricing, totals, we - ws, p.period_ms)
        STATEMENTS.put(state, Statement(
            p.id, k, ws, we, consented, totals.batches if totals else 0, totals.distance_m if totals else 0,
            totals.night_distance_m if totals else 0, totals.harsh_brakes if totals else 0,
            totals.over_limit_s if totals else 0, amount, "paid" if amount == 0 else "due", ctx.height,
            after_seq=after, through_seq=through), p.id, k)
        POLICIES.put(state, replace(p, billed=k + 1, billed_seq=through), p.id)
        ctx.emit(StatementIssued(policy=p.id, period=k, premium=amount, insurer=p.insurer, holder=p.holder))


@module.message(PayPremium, roles=ANYONE)
def pay_premium(state: Overlay, ctx: Context, msg: PayPremium) -> None:
    """The policy's holder pays a due statement from its account to the insurer's (payments)."""
    p = policy(state, msg.policy)
    if not speaks_for(p.holder, ctx):
        raise errors.NotPolicyHolder(policy=p.id, holder=p.holder, sender=ctx.sender)
    s = STATEMENTS.get(state, p.id, msg.period)
    if s is None:
        raise errors.UnknownStatement(policy=p.id, period=msg.period)
    if s.status == "paid":
        raise errors.StatementPaid(policy=p.id, period=msg.period)
    ctx.need(Payments).pay(state, ctx, p.currency, p.holder, ORG_PREFIX + p.insurer, s.premium,
                           f"premium policy {p.id} period {s.period}")
    STATEMENTS.put(state, replace(s, status="paid"), p.id, msg.period)
    ctx.emit(PremiumPaid(policy=p.id, period=s.period, premium=s.premium, insurer=p.insurer, holder=p.holder))


# ---------------------------------------------------------------- claims


def check_workshop(state: StateReader, ctx: Context, workshop: str) -> str:
    roles = ctx.need(Organisations).org_roles(state, workshop) if workshop else None
    if roles is None or "workshop" not in roles:
        raise errors.NotAWorkshop(workshop=workshop[:64])
    return workshop


def _open_claim(state: Overlay, ctx: Context, p: Policy, source: str, crash: int, incident: int, km: int,
                flags: list[str], workshop: str = "") -> Claim:
    if km + ctx.param(MILEAGE_SLACK_KM.name) < ctx.need(Vehicles).odometer_km(state, p.vin):
        flags = [*flags, "mileage_inconsistent"]
    c = Claim(_next_id(state, "claim"), p.id, p.vin, p.insurer, p.holder, source, crash,  # type: ignore[arg-type]
              incident, km, sorted(flags), "opened", ctx.height, workshop=workshop, currency=p.currency)
    if crash:
        CRASH_CLAIMS.put(state, c.id, p.vin, crash)
    held = VEHICLE_CLAIMS.get(state, p.vin, p.holder_since) or []  # per holding: a buyer's report shows its own
    VEHICLE_CLAIMS.put(state, [*held, c.id], p.vin, p.holder_since)
    _put_claim(state, ctx, c)
    return c


class CrashClaimsOpener:
    """Provided to telemetry as ``CrashClaims``: a reported crash opens a claim on the policy in force
    at its time, if there is one (a crash without a policy stays a crash)."""

    def crash_reported(self, state: Overlay, ctx: Context, vin: str, crash: int) -> None:
        telemetry = ctx.need(Telemetry)
        c = telemetry.crash(state, vin, crash)
        assert c is not None, "telemetry reported a crash it does not hold"
        p = active_policy(state, ctx, vin, c.t)
        if p is not None and CRASH_CLAIMS.get(state, vin, crash) is None:
            before = telemetry.crash(state, vin, crash - 1)
            close = before is not None and abs(c.t - before.t) <= SAME_CRASH_MS
            _open_claim(state, ctx, p, "crash", crash, c.t, c.odometer_m // 1000, ["possible_duplicate"] if close else [])


@module.message(FileClaim, roles=ANYONE)
def file_claim(state: Overlay, ctx: Context, msg: FileClaim) -> None:
    """The policy's holder claims for an incident while the policy was in force: on a crash of the
    vehicle (its time and odometer count, once per crash) or without one (flagged no_crash_event).
    A claimed odometer more than ``claim_mileage_slack_km`` below the record is flagged
    mileage_inconsistent. Flags are for the insurer's review; they refuse nothing."""
    p = policy(state, msg.policy)
    if not speaks_for(p.holder, ctx):
        raise errors.NotPolicyHolder(policy=p.id, holder=p.holder, sender=ctx.sender)
    incident, km, flags = msg.incident, msg.odometer_km, []
    if msg.crash:
        c = ctx.need(Telemetry).crash(state, p.vin, msg.crash)
        if c is None:
            raise errors.UnknownCrash(vin=p.vin, crash=msg.crash)
        existing = CRASH_CLAIMS.get(state, p.vin, msg.crash)
        if existing is not None:
            raise errors.ClaimExists(vin=p.vin, crash=msg.crash, claim=existing)
        incident, km = c.t, c.odometer_m // 1000
    else:
        flags.append("no_crash_event")
    if incident > ctx.time:
        raise errors.IncidentInFuture(incident=incident, time=ctx.time)
    end = effective_end(state, ctx, p)
    if not p.start <= incident < end:
        raise errors.NoActivePolicy(policy=p.id, incident=incident, start=p.start, end=end,
                                    cancelled=f", cancelled at {p.cancelled}" if p.cancelled else "")
    workshop = check_workshop(state, ctx, msg.workshop) if msg.workshop else ""
    _open_claim(state, ctx, p, "holder", msg.crash, incident, km, flags, workshop)


def claim(state: StateReader, cid: int) -> Claim:
    c = CLAIMS.get(state, cid) if cid > 0 else None
    if c is None:
        raise errors.UnknownClaim(claim=cid)
    return c


@module.message(ChooseWorkshop, roles=ANYONE)
def choose_workshop(state: Overlay, ctx: Context, msg: ChooseWorkshop) -> None:
    """The claim's holder (a key, or any key of a holding organisation) or a key of its insurer, until
    the decision; an estimate by a workshop chosen before is dropped (the claim is opened again)."""
    c = claim(state, msg.claim)
    if not (speaks_for(c.holder, ctx) or _org(ctx) == c.insurer):
        raise errors.NotPolicyHolder(policy=c.policy, holder=c.holder, sender=ctx.sender)
    if c.status not in ("opened", "assessed"):
        raise errors.ClaimDecided(claim=c.id, status=c.status)
    workshop = check_workshop(state, ctx, msg.workshop)
    if workshop != c.workshop:
        _put_claim(state, ctx, replace(c, workshop=workshop, status="opened", estimate=0, estimate_ref=""))


@module.message(AssessClaim, roles={"workshop"})
def assess_claim(state: Overlay, ctx: Context, msg: AssessClaim) -> None:
    """The chosen workshop's estimate, until the insurer decides (a later one replaces it)."""
    c = claim(state, msg.claim)
    if c.status not in ("opened", "assessed"):
        raise errors.ClaimDecided(claim=c.id, status=c.status)
    if not c.workshop or _org(ctx) != c.workshop:
        raise errors.NotClaimWorkshop(claim=c.id, chosen=repr(c.workshop) if c.workshop else "no workshop yet",
                                      org=_org(ctx) or ctx.sender)
    _put_claim(state, ctx, replace(c, status="assessed", estimate=msg.estimate, estimate_ref=msg.reference))


@module.message(DecideClaim, roles={"insurer"})
def decide_claim(state: Overlay, ctx: Context, msg: DecideClaim) -> None:
    """The policy's insurer only, once: approval needs an estimate, the reason ``covered`` and an amount
    within the coverage (the payout is the amount less the deductible); a denial names its reason."""
    c = claim(state, msg.claim)
    if _org(ctx) != c.insurer:
        raise errors.NotYourClaim(claim=c.id, insurer=c.insurer, org=_org(ctx) or ctx.sender)
    if c.status not in ("opened", "assessed"):
        raise errors.ClaimDecided(claim=c.id, status=c.status)
    if msg.approve != (msg.reason == "covered"):
        raise errors.ReasonMismatch(reason=msg.reason, verb="approve" if msg.approve else "deny",
                                    allowed="approve with 'covered'" if msg.approve else "deny with another reason")
    if not msg.approve:
        _put_claim(state, ctx, replace(c, status="denied", reason=msg.reason))
        return
    if c.status != "assessed":
        raise errors.ClaimNotAssessed(claim=c.id)
    p = policy(state, c.policy)
    if msg.amount > p.coverage:
        raise errors.OverCoverage(amount=msg.amount, policy=p.id, coverage=p.coverage)
    payout = max(0, msg.amount - p.deductible)
    _put_claim(state, ctx, replace(c, status="approved" if payout else "paid", reason=msg.reason,
                                    approved=msg.amount, payout=payout))


@module.message(PayClaim, roles={"insurer"})
def pay_claim(state: Overlay, ctx: Context, msg: PayClaim) -> None:
    """The policy's insurer pays an approved claim's payout from its account to the policy holder's."""
    c = claim(state, msg.claim)
    if _org(ctx) != c.insurer:
        raise errors.NotYourClaim(claim=c.id, insurer=c.insurer, org=_org(ctx) or ctx.sender)
    if c.status != "approved":
        raise errors.ClaimNotApproved(claim=c.id, status=c.status)
    p = policy(state, c.policy)
    ctx.need(Payments).pay(state, ctx, p.currency, ORG_PREFIX + c.insurer, c.holder, c.payout, f"claim {c.id}")
    _put_claim(state, ctx, replace(c, status="paid"))
