"""The consent module's rules, one row per rule, on a MemoryLedger.

The holder of a vehicle grants an organisation some data categories until a block time and
revokes the grant; a grant counts only while the holding that made it lasts. Refusals are one
table (``REFUSALS``): each names the stable code, and each checks that the failed transaction
changed nothing and cannot be replayed. A property test replays random grant, revoke, sale and
clock sequences: the same sequence gives the same state root, and ``allowed`` agrees at every
step with a model written here, independently of the module.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blokauto.core.crypto import KeyPair
from blokauto.modules.consent import ConsentDoor
from blokauto.modules.consent import queries
from blokauto.modules.consent.handlers import MAX_LIVE_GRANTS
from blokauto.modules.consent.messages import GrantConsent, RevokeConsent
from blokauto.modules.consent.state import GRANT_RECORDS, LIVE, Grant, status
from blokauto.modules.consent.state import allows as rule_allows
from blokauto.modules.vehicles.doors import Title
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle

from conftest import T0, Chain, K, build_tx
from helpers.vehicles import WMI, MemoryView, admin, event_types, register_msg, snapshot, vehicles_genesis, vin_for

VIN = vin_for(WMI["oem"], 1)
FLEET_VIN = vin_for(WMI["oem"], 2)  # held by an organisation (org:oem, its maker) throughout
ALICE, BOB, CAROL = K("alice"), K("bob"), K("carol")
OEM, DEALER, INS = admin("oem"), admin("dealer"), admin("ins")
DAY = 86_400_000
YEAR = 365 * DAY  # max_consent_ms by default


class View(MemoryView):
    """A QueryView over a MemoryLedger that also reaches the other modules' doors."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.need = chain.registry.provider


def now(chain: Chain) -> int:
    return chain.ledger.head.time


def tx(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int) -> bytes:
    """A transaction valid at block time ``at``, with a nonce counted per chain (so a replayed
    sequence of steps signs the very same bytes)."""
    return build_tx(sender, msg, *cosigners, expires=at + 600_000, nonce=f"{next(chain.nonces):032x}")


def send(chain: Chain, sender: KeyPair, msg: Any, *cosigners: KeyPair, at: int | None = None) -> Any:
    """One transaction in its own block at block time ``at`` (default: 1 ms after the last)."""
    t = now(chain) + 1 if at is None else at
    return chain.block(tx(chain, sender, msg, *cosigners, at=t), time=t).receipts[0]


def grant_msg(vin: str = VIN, org: str = "ins", categories: tuple[str, ...] = ("history", "odometer"),
              until: int | None = None, purpose: str = "quote a policy") -> GrantConsent:
    return GrantConsent(vin=vin, org=org, categories=list(categories), purpose=purpose,
                        until=T0 + 30 * DAY if until is None else until)


def allows(chain: Chain, vin: str, org: str, category: str, at: int) -> int | None:
    return chain.registry.provider(ConsentDoor).allows(chain.ledger, chain.registry.provider, vin, org, category, at)


def owned() -> Chain:
    """VIN registered by oem, sold through the dealer to ALICE; FLEET_VIN held by org:oem."""
    chain = Chain(vehicles_genesis())
    chain.nonces = itertools.count(1)
    for org, wmi in WMI.items():
        assert send(chain, admin("reg"), AssignWmi(wmi=wmi, org=org)).ok
    assert send(chain, OEM, register_msg(VIN)).ok
    assert send(chain, OEM, register_msg(FLEET_VIN)).ok
    assert send(chain, OEM, TransferTitle(vin=VIN, to="org:dealer"), DEALER).ok
    assert send(chain, DEALER, TransferTitle(vin=VIN, to=ALICE.did), ALICE).ok
    return chain


def granted(chain: Chain, **kw: Any) -> int:
    r = send(chain, ALICE, grant_msg(**kw))
    assert r.ok, r
    return r.events[0]["grant"]


# ---------------------------------------------------------------- grant and revoke


def test_holder_grants_consent_on_record() -> None:
    chain = owned()
    r = send(chain, ALICE, grant_msg(categories=("odometer", "history", "odometer")))
    assert r.ok, r
    assert event_types(r) == ["consent.granted"]
    ev = r.events[0]
    assert ev == {"type": "consent.granted", "grant": 1, "vin": VIN, "org": "ins",
                  "categories": ["history", "odometer"], "until": T0 + 30 * DAY}
    g = GRANT_RECORDS.get(chain.ledger, 1)
    assert g is not None
    assert (g.holder, g.granted_by, g.categories, g.revoked) == (ALICE.did, ALICE.did, ["history", "odometer"], 0)
    assert LIVE.get(chain.ledger, VIN, "ins") == [1]
    assert allows(chain, VIN, "ins", "history", now(chain)) == 1
    assert allows(chain, VIN, "ins", "location", now(chain)) is None
    assert allows(chain, VIN, "bank", "history", now(chain)) is None


def test_holder_revokes_and_the_grant_stops_counting() -> None:
    chain = owned()
    gid = granted(chain)
    r = send(chain, ALICE, RevokeConsent(vin=VIN, grant=gid))
    assert r.ok, r
    assert r.events == [{"type": "consent.revoked", "grant": gid, "vin": VIN, "org": "ins"}]
    g = GRANT_RECORDS.get(chain.ledger, gid)
    assert g is not None and g.revoked == chain.ledger.head.height and g.revoked_by == ALICE.did
    assert LIVE.get(chain.ledger, VIN, "ins") is None
    assert allows(chain, VIN, "ins", "history", now(chain)) is None


def test_any_key_of_a_holding_organisation_grants_and_revokes() -> None:
    chain = owned()
    r = send(chain, OEM, grant_msg(vin=FLEET_VIN, org="bank", categories=("location",)))
    assert r.ok, r
    gid = r.events[0]["grant"]
    assert GRANT_RECORDS.get(chain.ledger, gid).holder == "org:oem"
    assert allows(chain, FLEET_VIN, "bank", "location", now(chain)) == gid
    assert send(chain, OEM, RevokeConsent(vin=FLEET_VIN, grant=gid)).ok


def test_a_second_grant_to_the_same_organisation_adds_to_the_first() -> None:
    chain = owned()
    first = granted(chain, categories=("history",))
    second = granted(chain, categories=("location",))
    assert LIVE.get(chain.ledger, VIN, "ins") == [first, second]
    assert allows(chain, VIN, "ins", "history", now(chain)) == first
    assert allows(chain, VIN, "ins", "location", now(chain)) == second


# ---------------------------------------------------------------- refusals: one row per rule


@dataclass(frozen=True)
class Refusal:
    name: str
    sender: KeyPair
    msg: Any
    code: str
    setup: Callable[[Chain], None] | None = None
    at: int | None = None  # the block time (default: 1 ms after the set-up)
    detail: dict[str, Any] = field(default_factory=dict)


def r(name: str, who: KeyPair, msg: Any, code: str, setup: Any = None, at: int | None = None, **detail: Any) -> Any:
    return pytest.param(Refusal(name, who, msg, code, setup, at, detail), id=name)


def revoked(chain: Chain) -> None:
    gid = granted(chain)
    assert send(chain, ALICE, RevokeConsent(vin=VIN, grant=gid)).ok


def full(chain: Chain) -> None:
    for _ in range(MAX_LIVE_GRANTS):
        granted(chain)


REFUSALS = [
    r("stranger_grants_on_someone_elses_vehicle", BOB, grant_msg(), "not_holder", sender=BOB.did),
    r("previous_holder_grants_after_selling", DEALER, grant_msg(), "not_holder"),
    r("other_organisation_grants_on_an_organisations_vehicle", INS, grant_msg(vin=FLEET_VIN), "not_holder"),
    r("grant_on_an_unregistered_vehicle", ALICE, grant_msg(vin=vin_for(WMI["oem"], 99)), "unknown_vehicle"),
    r("grant_on_a_vin_with_a_slash", ALICE, grant_msg(vin="WVW/ZZ1JZ00000001"), "unknown_vehicle"),
    r("grant_to_an_unknown_organisation", ALICE, grant_msg(org="nobody"), "unknown_grantee", org="nobody"),
    r("grant_of_an_unknown_category", ALICE, grant_msg(categories=("history", "medical")), "unknown_category",
      category="medical"),
    r("grant_ending_at_the_block_time", ALICE, grant_msg(until=T0 + 10 * DAY), "consent_expiry_past",
      at=T0 + 10 * DAY),
    r("grant_ending_before_the_block_time", ALICE, grant_msg(until=T0 + 10 * DAY - 1), "consent_expiry_past",
      at=T0 + 10 * DAY),
    r("grant_longer_than_max_consent_ms", ALICE, grant_msg(until=T0 + 10 * DAY + YEAR + 1), "consent_too_long",
      at=T0 + 10 * DAY, max_ms=YEAR),
    r("grant_beyond_the_most_grants_in_force", ALICE, grant_msg(), "too_many_grants", setup=full),
    r("revoke_an_unknown_grant", ALICE, RevokeConsent(vin=VIN, grant=7), "unknown_grant"),
    r("revoke_a_grant_under_another_vin", OEM, RevokeConsent(vin=FLEET_VIN, grant=1), "unknown_grant",
      setup=lambda c: granted(c)),
    r("revoke_twice", ALICE, RevokeConsent(vin=VIN, grant=1), "grant_already_revoked", setup=revoked),
    r("stranger_revokes", BOB, RevokeConsent(vin=VIN, grant=1), "not_grantor", setup=lambda c: granted(c)),
    r("grantee_revokes", INS, RevokeConsent(vin=VIN, grant=1), "not_grantor", setup=lambda c: granted(c)),
]


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_and_changes_nothing_and_cannot_be_replayed(case: Refusal) -> None:
    chain = owned()
    if case.setup is not None:
        case.setup(chain)
    at = now(chain) + 1 if case.at is None else case.at
    before = snapshot(chain)
    raw = tx(chain, case.sender, case.msg, at=at)
    receipt = chain.block(raw, time=at).receipts[0]
    assert (receipt.ok, receipt.code) == (False, case.code), receipt
    assert receipt.events == []
    for k, v in case.detail.items():
        assert receipt.detail[k] == v, receipt.detail
    assert snapshot(chain) == before, "a failed transaction changed the ledger"
    again = chain.block(raw, time=at).receipts[0]
    assert (again.ok, again.code) == (False, "replayed_tx")


# ---------------------------------------------------------------- expiry at the block time


@pytest.mark.parametrize("until_after,ok", [(1, True), (0, False), (YEAR, True), (YEAR + 1, False)],
                         ids=["one_ms_ahead", "at_the_block_time", "exactly_max_consent_ms", "one_ms_past_max"])
def test_grant_expiry_bounds_at_the_block_time(until_after: int, ok: bool) -> None:
    chain = owned()
    at = T0 + 10 * DAY
    assert send(chain, ALICE, grant_msg(until=at + until_after), at=at).ok is ok


@pytest.mark.parametrize("at_offset,status,allowed", [(-1, "active", True), (0, "expired", False),
                                                      (1, "expired", False)],
                         ids=["one_ms_before_until", "at_until", "one_ms_after_until"])
def test_a_grant_counts_until_the_block_time_reaches_until(at_offset: int, status: str, allowed: bool) -> None:
    chain = owned()
    until = T0 + 20 * DAY
    gid = granted(chain, until=until)
    at = until + at_offset
    assert (allows(chain, VIN, "ins", "history", at) == gid) is allowed
    view = View(chain)
    assert queries.grants_of(view, queries.VehicleGrantsQuery(vin=VIN, at=at))["grants"][0]["status"] == status
    answer = queries.allowed(view, queries.AllowedQuery(vin=VIN, org="ins", category="history", at=at))
    assert (answer["allowed"], answer["grant"]) == (allowed, gid if allowed else None)


def test_an_expired_grant_is_no_longer_counted_against_the_limit() -> None:
    chain = owned()
    for _ in range(MAX_LIVE_GRANTS):
        granted(chain, until=T0 + 20 * DAY)
    assert send(chain, ALICE, grant_msg(until=T0 + 40 * DAY), at=T0 + 20 * DAY).ok
    assert len(LIVE.get(chain.ledger, VIN, "ins")) == 1


# ---------------------------------------------------------------- a new holder


def test_a_sale_ends_the_old_holders_grants() -> None:
    chain = owned()
    gid = granted(chain)
    assert send(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB).ok
    assert allows(chain, VIN, "ins", "history", now(chain)) is None
    view = View(chain)
    every = queries.grants_of(view, queries.VehicleGrantsQuery(vin=VIN, at=now(chain), holdings="all"))
    assert every["grants"][0]["status"] == "holder_changed"
    # the new holder's own view: none of the former holder's choices (found by the fourth attack)
    assert queries.grants_of(view, queries.VehicleGrantsQuery(vin=VIN, at=now(chain)))["total"] == 0
    assert send(chain, ALICE, grant_msg()).code == "not_holder"  # the data is no longer hers to share
    mine = send(chain, BOB, grant_msg(categories=("history",)))
    assert mine.ok and allows(chain, VIN, "ins", "history", now(chain)) == mine.events[0]["grant"]
    assert send(chain, ALICE, RevokeConsent(vin=VIN, grant=gid)).ok  # the old holder may still put an end on record


def test_buying_the_vehicle_back_does_not_revive_old_grants() -> None:
    chain = owned()
    granted(chain)
    assert send(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB).ok
    assert send(chain, BOB, TransferTitle(vin=VIN, to=ALICE.did), ALICE).ok
    assert allows(chain, VIN, "ins", "history", now(chain)) is None


def test_a_sale_in_the_block_that_began_the_holding_still_ends_its_grants() -> None:
    """The holding is (holder, since): a sale at the very block time the seller's holding began
    leaves ``since`` unchanged, and the holder alone tells the holdings apart."""
    chain = owned()
    assert send(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB).ok
    t = now(chain) + 1
    out = chain.block(tx(chain, BOB, TransferTitle(vin=VIN, to=CAROL.did), CAROL, at=t),
                      tx(chain, CAROL, grant_msg(), at=t),
                      tx(chain, CAROL, TransferTitle(vin=VIN, to=ALICE.did), ALICE, at=t), time=t)
    assert all(rec.ok for rec in out.receipts), out.receipts
    assert allows(chain, VIN, "ins", "history", t) is None


# ---------------------------------------------------------------- the rule itself, one row per condition

RULE_GRANT = Grant(id=1, vin=VIN, org="ins", categories=["history", "odometer"], purpose="p", until=T0 + 100,
                   holder=ALICE.did, holder_since=T0, granted_by=ALICE.did, granted=T0, height=5)


@pytest.mark.parametrize("grant,title,at,org,category,expected", [
    (RULE_GRANT, Title(ALICE.did, T0), T0 + 99, "ins", "history", ("active", True)),
    (RULE_GRANT, Title(ALICE.did, T0), T0 + 100, "ins", "history", ("expired", False)),
    (RULE_GRANT, Title(ALICE.did, T0), T0 + 99, "bank", "history", ("active", False)),
    (RULE_GRANT, Title(ALICE.did, T0), T0 + 99, "ins", "location", ("active", False)),
    (RULE_GRANT, Title(BOB.did, T0), T0 + 99, "ins", "history", ("holder_changed", False)),
    (RULE_GRANT, Title(ALICE.did, T0 + 7), T0 + 99, "ins", "history", ("holder_changed", False)),
    (RULE_GRANT, None, T0 + 99, "ins", "history", ("holder_changed", False)),
    (msgspec.structs.replace(RULE_GRANT, revoked=9), Title(ALICE.did, T0), T0 + 99, "ins", "history",
     ("revoked", False)),
    (msgspec.structs.replace(RULE_GRANT, revoked=9), Title(BOB.did, T0), T0 + 100, "ins", "history",
     ("revoked", False)),
], ids=["active", "at_until", "another_org", "another_category", "another_holder", "a_later_holding",
        "no_vehicle", "revoked", "revoked_wins_over_the_rest"])
def test_the_rule_for_a_grant(grant: Grant, title: Title | None, at: int, org: str, category: str,
                              expected: tuple[str, bool]) -> None:
    assert (status(grant, title, at), rule_allows(grant, title, at, org, category)) == expected


# ---------------------------------------------------------------- queries


def test_grants_of_a_vehicle_and_to_an_organisation_with_their_status() -> None:
    chain = owned()
    a = granted(chain, org="ins", until=T0 + 5 * DAY)
    b = granted(chain, org="bank", categories=("identity",))
    c = granted(chain, org="ins", categories=("driving",))
    assert send(chain, ALICE, RevokeConsent(vin=VIN, grant=c)).ok
    other = send(chain, OEM, grant_msg(vin=FLEET_VIN, org="ins")).events[0]["grant"]
    view = View(chain)
    at = T0 + 6 * DAY
    of = queries.grants_of(view, queries.VehicleGrantsQuery(vin=VIN, at=at))
    assert of["total"] == 3
    assert [(g["id"], g["org"], g["status"]) for g in of["grants"]] == [
        (a, "ins", "expired"), (b, "bank", "active"), (c, "ins", "revoked")]
    to = queries.grants_to(view, queries.OrgGrantsQuery(org="ins", at=at))
    assert [(g["id"], g["vin"], g["status"]) for g in to["grants"]] == [
        (a, VIN, "expired"), (c, VIN, "revoked"), (other, FLEET_VIN, "active")]
    page = queries.grants_to(view, queries.OrgGrantsQuery(org="ins", at=at, limit=1, offset=1))
    assert [g["id"] for g in page["grants"]] == [c] and page["total"] == 3


@pytest.mark.parametrize("vin,org,category", [(VIN, "ins", "medical"), ("WVW/1", "ins", "history"),
                                              (VIN, "a/b", "history"), (VIN, "nobody", "history")],
                         ids=["unknown_category", "vin_with_slash", "org_with_slash", "unknown_org"])
def test_allowed_is_false_for_what_no_grant_names(vin: str, org: str, category: str) -> None:
    chain = owned()
    granted(chain, categories=("history", "odometer", "location", "driving", "identity"))
    assert allows(chain, vin, org, category, now(chain)) is None


# ---------------------------------------------------------------- properties: determinism and the rule


HOLDERS = [ALICE, BOB, CAROL]
ORGS_ = ["ins", "bank", "nobody"]
CATS = ["history", "odometer", "location", "driving", "identity"]

ops = st.lists(st.one_of(
    st.tuples(st.just("grant"), st.integers(0, 2), st.sampled_from(ORGS_),
              st.lists(st.sampled_from(CATS + ["medical"]), min_size=1, max_size=3),
              st.integers(-2 * DAY, 2 * DAY)),
    st.tuples(st.just("revoke"), st.integers(0, 2), st.integers(1, 8)),
    st.tuples(st.just("sell"), st.integers(0, 2)),
    st.tuples(st.just("wait"), st.integers(0, 3 * DAY)),
), max_size=14)


@dataclass
class Model:
    """What ``allowed`` must answer, kept by the test: grants (id -> org, categories, until,
    holding, revoked, grantor) and the current holding (a counter that moves with every sale)."""

    holder: int = 0
    holding: int = 0
    grants: dict[int, list] = field(default_factory=dict)

    def allowed(self, org: str, cat: str, t: int) -> int | None:
        ids = [gid for gid, (o, cats, until, holding, rev, _) in sorted(self.grants.items())
               if o == org and cat in cats and t < until and holding == self.holding and not rev]
        return ids[0] if ids else None


def play(steps: list, check: Callable[[Chain, Model], None] | None = None) -> str:
    chain = owned()
    model = Model()
    t = now(chain)
    for step in steps:
        t += 1
        kind = step[0]
        if kind == "wait":
            t += step[1]
            continue
        if kind == "grant":
            _, who, org, cats, ttl = step
            rec = send(chain, HOLDERS[who], grant_msg(org=org, categories=tuple(cats), until=max(t + ttl, 0)), at=t)
            expected = who == model.holder and org != "nobody" and "medical" not in cats and ttl > 0
            assert rec.ok is expected, (step, rec)
            if rec.ok:
                model.grants[rec.events[0]["grant"]] = [org, set(cats), t + ttl, model.holding, False, who]
        elif kind == "revoke":
            _, who, gid = step
            rec = send(chain, HOLDERS[who], RevokeConsent(vin=VIN, grant=gid), at=t)
            g = model.grants.get(gid)
            assert rec.ok is (g is not None and not g[4] and g[5] == who), (step, rec)
            if rec.ok:
                g[4] = True
        else:
            _, to = step
            if to == model.holder:
                continue
            rec = send(chain, HOLDERS[model.holder], TransferTitle(vin=VIN, to=HOLDERS[to].did), HOLDERS[to], at=t)
            assert rec.ok, rec
            model.holder, model.holding = to, model.holding + 1
        if check is not None:
            check(chain, model)
    return chain.root


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops)
def test_replaying_the_same_grants_revocations_and_sales_gives_the_same_state_root(steps: list) -> None:
    assert play(steps) == play(steps)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.lists(st.integers(0, 3 * DAY), min_size=1, max_size=3))
def test_allowed_only_for_an_active_unrevoked_unexpired_grant_of_the_current_holder(steps: list,
                                                                                   later: list[int]) -> None:
    def check(chain: Chain, model: Model) -> None:
        t = now(chain)
        for dt in [0, *later]:
            for org in ("ins", "bank"):
                for cat in ("history", "location"):
                    assert allows(chain, VIN, org, cat, t + dt) == model.allowed(org, cat, t + dt), (org, cat, dt)

    play(steps, check)
