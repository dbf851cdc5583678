"""Insurance from Python, for both sides of a policy. The insurer publishes products, binds policies
(the title holder co-signs), issues premium statements and decides claims; the holder pays, files
claims and checks every cent of a statement against the vehicle's own trip totals.

    from blokauto.client.insurance import Insurance, Pricing

    ins = Insurance(client)                                     # a Client pinned to the trust anchor
    ins.publish_product(insurer, "payd", currency="EUR", period_days=30, max_coverage=1_000_000,
                        pricing=Pricing(base=2_000, per_km=5, min_premium=1_000, max_premium=20_000))
    info = ins.bind_policy(insurer, holder, product="payd", vin=VIN, start=t, periods=12,
                           deductible=10_000, coverage=500_000)  # the insurer sends, the holder co-signs
    pid = policy_id(info)
    for due in ins.due_statements("allied", key=insurer):       # periods that ended at block time
        ...
    ins.issue_statements(insurer, [pid])
    ins.check_statement(pid, 0, key=holder)                     # PremiumMismatch names what differs
    ins.pay_premium(holder, pid, 0)

Sending methods return the ``TxInfo`` of the committed transaction, as ``Client.send`` does: a
transaction the ledger refused is on record with its failure receipt (``info.ok`` is False;
``info.raise_for_status()`` raises the module's error class). Reads are the module's queries,
signed with ``key=`` or the client's own key; refusals are the node's own classes
(``UnknownPolicy``, ``ConsentRequired``...).

The premium is the module's own pure function (``expected_premium`` hands it on): the SDK never
keeps a second copy of the formula that could drift from the ledger's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import msgspec

from ..core.crypto import KeyPair
from ..modules.insurance import Pricing, premium
from ..modules.insurance.messages import (AssessClaim, BindPolicy, CancelPolicy, ChooseWorkshop, DecideClaim,
                                          FileClaim,
                                          IssueStatements, PayClaim, PayPremium, PublishProduct, RenewPolicy)
from ..modules.telemetry import Totals
from ._client import Client
from ._results import TxInfo

__all__ = ["Due", "Insurance", "PremiumMismatch", "Pricing", "StatementCheck", "Totals", "claim_id",
           "effective_end", "expected_premium", "policy_id"]

#: The most policies one ``insurance.issue_statements`` lists (the message's bound).
MAX_PER_ISSUE = 1000
#: The usage a statement records, compared with the vehicle's trip totals for its window.
USAGE_FIELDS = ("batches", "distance_m", "night_distance_m", "harsh_brakes", "over_limit_s")


class PremiumMismatch(ValueError):
    """A premium statement is not what the policy's pricing gives for the vehicle's trip totals.
    ``field`` names the first difference: a usage field (``distance_m``...: the statement counted
    other batches than the vehicle's totals for its window hold) or ``premium`` itself."""

    def __init__(self, policy: int, period: int, field: str, ledger: Any, expected: Any, why: str = "") -> None:
        self.policy, self.period, self.field = policy, period, field
        self.ledger, self.expected = ledger, expected
        super().__init__(f"the statement of policy {policy} for period {period} says {field} = {ledger}, and "
                         f"{why or 'the pricing over the trip totals gives'} {expected}")


@dataclass(frozen=True)
class StatementCheck:
    """A statement checked cent by cent: what the ledger says, and what it was checked against."""

    statement: dict[str, Any]
    policy: dict[str, Any]
    pricing: Pricing
    totals: Totals | None  # the vehicle's trip totals for the window (None: the holder had not consented)
    expected: int  # the premium the formula gives: the statement's


@dataclass(frozen=True)
class Due:
    """A policy whose next period has ended at block time: its statement can be issued."""

    policy: int
    period: int
    start: int
    end: int
    holder: str
    vin: str


def expected_premium(pricing: Pricing | Mapping[str, Any], totals: Totals | Mapping[str, Any] | None,
                     elapsed: int, period: int) -> int:
    """The premium the ledger computes (the module's ``pricing.premium``, unchanged) for ``elapsed``
    ms of a ``period`` ms period with ``totals`` (the ``telemetry totals`` query's answer, or None
    when the holder did not consent to driving data: the product's cap). Dicts as the queries answer
    them are accepted."""
    p = pricing if isinstance(pricing, Pricing) else msgspec.convert(dict(pricing), Pricing)
    t = totals if totals is None or isinstance(totals, Totals) else _totals(totals)
    return premium(p, t, elapsed, period)


def effective_end(policy: Mapping[str, Any]) -> int:
    """When a policy (the ``policy`` query's answer) stops being in force: its end, or earlier its
    cancellation or the sale of its vehicle (the module's rule, on the record it keeps)."""
    end = policy["end"]
    for stop in (policy.get("cancelled", 0), policy.get("sold", 0)):
        if stop:
            end = min(end, max(stop, policy["start"]))
    return int(end)


def _totals(answer: Mapping[str, Any]) -> Totals:
    return Totals(**{f: int(answer[f]) for f in Totals.__struct_fields__})


def _event(info: TxInfo, type_: str, field: str) -> int:
    info.raise_for_status()
    for e in info.events:
        if e["type"] == type_:
            return int(e[field])
    raise ValueError(f"transaction {info.id} emitted no {type_} event")


def policy_id(info: TxInfo) -> int:
    """The policy a committed ``bind_policy`` (or renewal, cancellation) is about; raises its error if it failed."""
    return _event(info, "insurance.policy_changed", "policy")


def claim_id(info: TxInfo) -> int:
    """The claim a committed transaction opened or changed (``file_claim``, a crash report...);
    raises its error if it failed, ``ValueError`` if it touched no claim (a crash without a policy)."""
    return _event(info, "insurance.claim_changed", "claim")


class Insurance:
    """Insurance through one node: ``client`` (its trust anchor checks every receipt). Reads are
    signed with ``key=`` or the client's own key."""

    def __init__(self, client: Client) -> None:
        self.client = client

    # ---------------------------------------------------------------- the insurer

    def publish_product(self, insurer: KeyPair, product: str, *, currency: str, period_days: int, pricing: Pricing,
                        max_coverage: int, wait: float = 30.0) -> TxInfo:
        """Publish (or republish: a new version, for policies bound from then on) a product."""
        return self.client.send(PublishProduct(product=product, currency=currency, period_days=period_days,
                                               pricing=pricing, max_coverage=max_coverage), insurer, wait=wait)

    def bind_policy(self, insurer: KeyPair, holder: KeyPair, *, product: str, vin: str, start: int, periods: int,
                    deductible: int, coverage: int, wait: float = 30.0) -> TxInfo:
        """Bind a policy on ``vin`` from ``start`` (ms, not before the block time) for ``periods`` of
        the product's period: a key of the insurer sends, the title holder co-signs (as a sale's
        buyer does). ``policy_id(info)`` is the new policy's id."""
        return self.client.send(BindPolicy(product=product, vin=vin, start=start, periods=periods,
                                           deductible=deductible, coverage=coverage), insurer, holder, wait=wait)

    def renew_policy(self, insurer: KeyPair, holder: KeyPair, policy: int, periods: int, *,
                     wait: float = 30.0) -> TxInfo:
        """Add ``periods`` whole periods to a policy before it ends, at the pricing it was bound with;
        the holder co-signs."""
        return self.client.send(RenewPolicy(policy=policy, periods=periods), insurer, holder, wait=wait)

    def cancel_policy(self, by: KeyPair, policy: int, *, wait: float = 30.0) -> TxInfo:
        """The holder or the insurer ends a policy now; its last period is billed pro rata."""
        return self.client.send(CancelPolicy(policy=policy), by, wait=wait)

    def issue_statements(self, insurer: KeyPair, policies: Iterable[int], *, wait: float = 30.0) -> list[TxInfo]:
        """The next statement of each listed policy, in transactions of at most ``MAX_PER_ISSUE``
        policies. One policy whose period has not ended fails its whole transaction (see
        ``issue_due``, which sends only what is due)."""
        ids = list(policies)
        return [self.client.send(IssueStatements(policies=ids[i:i + MAX_PER_ISSUE]), insurer, wait=wait)
                for i in range(0, len(ids), MAX_PER_ISSUE)]

    def due_statements(self, insurer: str, *, key: KeyPair | None = None, min_height: int = -1,
                       progress: Callable[[int, int], None] | None = None) -> list[Due]:
        """The insurer's policies whose next period has ended at the newest block's time (read from
        its verified checkpoint): the statements ``issue_statements`` can issue now. ``insurer`` is
        the organisation's id; read with a key of it. ``progress(done, total)`` is called as the
        policies are read, one query each. A period ends at the policy's end, its cancellation or the
        sale of its vehicle, whichever comes first (``effective_end``)."""
        c = self._as(key)
        head = c.checkpoint("latest").header
        now, height = head.time, max(min_height, head.height)
        ids = [row["id"] for row in self._pages(c, "insurer_policies", "policies", insurer=insurer, min_height=height)]
        due = []
        for n, pid in enumerate(ids, 1):
            p = c.query("insurance", "policy", policy=pid, min_height=height)
            end = effective_end(p)
            start = p["start"] + p["billed"] * p["period_ms"]
            if start < end and min(start + p["period_ms"], end) <= now:
                due.append(Due(pid, p["billed"], start, min(start + p["period_ms"], end), p["holder"], p["vin"]))
            if progress is not None:
                progress(n, len(ids))
        return due

    def issue_due(self, insurer: KeyPair, org: str, *, wait: float = 30.0,
                  progress: Callable[[int, int], None] | None = None) -> tuple[list[TxInfo], list[Due]]:
        """Issue every statement that is due (``due_statements``), as few transactions as the
        message allows. A transaction that fails on one policy (cancelled or sold in a block after
        it was read, say) is sent again without it; that attempt stays on record. Returns the
        committed transactions and the statements issued."""
        due = self.due_statements(org, key=insurer, progress=progress)
        by_id = {d.policy: d for d in due}
        pending, sent, issued = [d.policy for d in due], [], []
        while pending:
            chunk, pending = pending[:MAX_PER_ISSUE], pending[MAX_PER_ISSUE:]
            while chunk:
                info = self.client.send(IssueStatements(policies=chunk), insurer, wait=wait)
                sent.append(info)
                if info.ok:
                    issued += [by_id[p] for p in chunk]
                    break
                bad = info.receipt.detail.get("policy")
                if bad not in chunk:
                    info.raise_for_status()  # a refusal about no single policy: nothing to drop
                chunk = [p for p in chunk if p != bad]
        return sent, issued

    # ---------------------------------------------------------------- the holder

    def pay_premium(self, holder: KeyPair, policy: int, period: int, *, wait: float = 30.0) -> TxInfo:
        """Pay a due statement from the holder's account to the insurer's (payments)."""
        return self.client.send(PayPremium(policy=policy, period=period), holder, wait=wait)

    def check_statement(self, policy: int, period: int, *, pricing: Pricing | None = None,
                        key: KeyPair | None = None, min_height: int = -1) -> StatementCheck:
        """Check a statement cent by cent: raise ``PremiumMismatch`` unless the usage it counted is
        the vehicle's trip totals of the batches it names (``telemetry seq_totals``: those not billed
        before, ending before the period's end) and its premium is
        what the formula gives for them over the part of the period it covers (the product's cap
        when it records no consent). ``pricing``: the terms you agreed to (default: the policy's, as
        the ledger holds them). Read by the holder (who reads the vehicle's driving data) or the
        insurer with the holder's consent."""
        c = self._as(key)
        s = c.query("insurance", "statement", policy=policy, period=period, min_height=min_height)
        p = c.query("insurance", "policy", policy=policy, min_height=min_height)
        terms = pricing if pricing is not None else msgspec.convert(p["pricing"], Pricing)
        totals = None
        if s["consented"]:
            totals = _totals(c.query("telemetry", "seq_totals", vin=p["vin"], after=s["after_seq"],
                                     through=s["through_seq"], min_height=min_height))
            if s["through_seq"] and c.query("telemetry", "batch", vin=p["vin"], seq=s["through_seq"],
                                            min_height=min_height)["summary"]["end"] >= s["end"]:
                raise PremiumMismatch(policy, period, "through_seq", s["through_seq"], "a batch ending before "
                                      f"{s['end']}", "the period's end bounds the batches it counts:")
            for f in USAGE_FIELDS:
                if s[f] != getattr(totals, f):
                    raise PremiumMismatch(policy, period, f, s[f], getattr(totals, f),
                                          f"the vehicle's trip totals of batches {s['after_seq'] + 1} to "
                                          f"{s['through_seq']} hold")
        elif any(s[f] for f in USAGE_FIELDS):
            raise PremiumMismatch(policy, period, next(f for f in USAGE_FIELDS if s[f]), "usage", 0,
                                  "without the holder's consent no usage is read:")
        expected = expected_premium(terms, totals, s["end"] - s["start"], p["period_ms"])
        if s["premium"] != expected:
            raise PremiumMismatch(policy, period, "premium", s["premium"], expected)
        return StatementCheck(s, p, terms, totals, expected)

    def file_claim(self, holder: KeyPair, policy: int, *, incident: int, odometer_km: int, crash: int = 0,
                   reference: str = "", workshop: str = "", wait: float = 30.0) -> TxInfo:
        """The holder claims: on crash ``crash`` of the vehicle (its time and odometer count), or
        without one (flagged ``no_crash_event`` for the insurer), naming the ``workshop`` to assess it
        if it likes. ``claim_id(info)`` is the claim."""
        return self.client.send(FileClaim(policy=policy, incident=incident, odometer_km=odometer_km, crash=crash,
                                          reference=reference, workshop=workshop), holder, wait=wait)

    def choose_workshop(self, chooser: KeyPair, claim: int, workshop: str, *, wait: float = 30.0) -> TxInfo:
        """The claim's holder or insurer chooses the workshop organisation that assesses it (again,
        until the decision: the former one's estimate is dropped)."""
        return self.client.send(ChooseWorkshop(claim=claim, workshop=workshop), chooser, wait=wait)

    # ---------------------------------------------------------------- claims: workshop and insurer

    def assess_claim(self, workshop: KeyPair, claim: int, estimate: int, *, reference: str = "",
                     wait: float = 30.0) -> TxInfo:
        """The chosen workshop's repair estimate (a later one replaces it until the insurer decides)."""
        return self.client.send(AssessClaim(claim=claim, estimate=estimate, reference=reference), workshop, wait=wait)

    def approve_claim(self, insurer: KeyPair, claim: int, amount: int, *, wait: float = 30.0) -> TxInfo:
        """Approve ``amount`` (within the policy's coverage, after an estimate); the payout is the
        amount less the deductible."""
        return self.client.send(DecideClaim(claim=claim, approve=True, reason="covered", amount=amount), insurer,
                                wait=wait)

    def deny_claim(self, insurer: KeyPair, claim: int, reason: str, *, wait: float = 30.0) -> TxInfo:
        """Deny with a reason code (not_covered, policy_exclusion, fraud_suspected, under_deductible,
        duplicate, late_notice, no_damage, other)."""
        return self.client.send(DecideClaim(claim=claim, approve=False, reason=reason), insurer,  # type: ignore[arg-type]
                                wait=wait)

    def pay_claim(self, insurer: KeyPair, claim: int, *, wait: float = 30.0) -> TxInfo:
        """Pay an approved claim's payout from the insurer's account to the holder's."""
        return self.client.send(PayClaim(claim=claim), insurer, wait=wait)

    # ---------------------------------------------------------------- reading

    def product(self, insurer: str, product: str, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """A product: currency, period, pricing, version (any known key reads offers)."""
        return self._as(key).query("insurance", "product", insurer=insurer, product=product, min_height=min_height)

    def products(self, *, key: KeyPair | None = None, min_height: int = -1) -> list[dict[str, Any]]:
        """Every published product (insurer, product, currency)."""
        c = self._as(key)
        return list(self._pages(c, "products", "products", min_height=min_height))

    def policy(self, policy: int, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """A policy as bound, renewed or cancelled (its insurer and holder read it)."""
        return self._as(key).query("insurance", "policy", policy=policy, min_height=min_height)

    def statements(self, policy: int, *, key: KeyPair | None = None, min_height: int = -1) -> list[dict[str, Any]]:
        """A policy's statements, oldest first."""
        c = self._as(key)
        return list(self._pages(c, "statements", "statements", policy=policy, min_height=min_height))

    def statement(self, policy: int, period: int, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """One statement (period 0 is the first)."""
        return self._as(key).query("insurance", "statement", policy=policy, period=period, min_height=min_height)

    def claim(self, claim: int, *, key: KeyPair | None = None, min_height: int = -1) -> dict[str, Any]:
        """A claim: source, flags, estimate, decision, payout (its insurer, holder and assessing workshop read it)."""
        return self._as(key).query("insurance", "claim", claim=claim, min_height=min_height)

    def insurer_claims(self, insurer: str, status: str = "opened", *, key: KeyPair | None = None,
                       min_height: int = -1) -> list[dict[str, Any]]:
        """An insurer's claims in one status (opened, assessed, approved, denied, paid), by id."""
        c = self._as(key)
        return list(self._pages(c, "insurer_claims", "claims", insurer=insurer, status=status, min_height=min_height))

    def insurer_policies(self, insurer: str, *, key: KeyPair | None = None, min_height: int = -1) -> list[dict[str, Any]]:
        """An insurer's policies (id, vin, holder, product), by id."""
        c = self._as(key)
        return list(self._pages(c, "insurer_policies", "policies", insurer=insurer, min_height=min_height))

    # ---------------------------------------------------------------- plumbing

    def _as(self, key: KeyPair | None) -> Client:
        return self.client if key is None or key is self.client.key else self.client.as_key(key)

    @staticmethod
    def _pages(c: Client, query: str, field: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every row of a paged insurance query (1,000 a page, the queries' most)."""
        offset = 0
        while True:
            rows = c.query("insurance", query, limit=MAX_PER_ISSUE, offset=offset, **params)[field]
            yield from rows
            if len(rows) < MAX_PER_ISSUE:
                return
            offset += len(rows)
