"""Who may send each telemetry and insurance message, and who may read each of their queries and
event types.

Sending: every message against a key of every organisation, an outsider, the car's holder (Alice,
policy 1), another holder (Bob), the car's device key and another car's device key. The table states
the intended permissions (module docstrings, DESIGN §6-7) and the matrix is generated from it
(``helpers.permissions``): one test per (case, actor); a refusal carries its stable code and changes
nothing.

Reading: each query and event type's read policy is called with ``core.access`` callers on a view of
the ledger (as the node's reader does, ``check_read``): the holder, the car's devices and maker and a
lender read its driving data, so does an insurer the holder consented to, while an insurer without
consent is refused ``consent_required`` (403); a policy, its statements and claims are its insurer's
and holder's (and the assessing workshop's claim); regulators read everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from blokauto.core.access import Caller, ReadRefused, check_read
from blokauto.core.crypto import KeyPair
from blokauto.core.module import Page
from blokauto.modules import default_registry
from blokauto.modules.consent.messages import RevokeConsent
from blokauto.modules.insurance import queries as iq
from blokauto.modules.insurance.messages import (AssessClaim, BindPolicy, CancelPolicy, ChooseWorkshop, DecideClaim,
                                                 FileClaim,
                                                 IssueStatements, PayClaim, PayPremium, PublishProduct, RenewPolicy)
from blokauto.modules.insurance.pricing import Pricing
from blokauto.modules.insurance.state import POLICIES
from blokauto.modules.telemetry import queries as tq
from blokauto.modules.telemetry.messages import ReportCrash
from blokauto.modules.vehicles.messages import RecordLien, TransferTitle

from conftest import Chain, K, build_tx
from helpers.insurance import (ALICE, ALL_ORGS, BOB, BOB_DEVICE, DEVICE, HOUR, INS, INS2, OTHER_VIN, PAYD, PERIOD,
                               SHOP, VIN, batch_msg, now, ok, send, trip, world)
from helpers.permissions import expected_code as permission_code
from helpers.vehicles import MemoryView, admin, snapshot

#: Every actor: a founding admin key of each organisation, and keys outside the consortium.
ACTORS: dict[str, KeyPair] = {
    **{org: admin(org) for org in ALL_ORGS},
    "outsider": K("outsider"),
    "owner": ALICE,  # holds VIN (policy 1, consent to ins for driving data)
    "buyer": BOB,  # holds OTHER_VIN
    "device": DEVICE,  # a device key of VIN
    "other_device": BOB_DEVICE,  # a device key of OTHER_VIN
}


def S(chain: Chain) -> int:
    return POLICIES.get(chain.ledger, 1).start


@dataclass(frozen=True)
class Case:
    """One message sent by each actor in turn. ``roles``: the roles that may send it at all (None: any
    key); ``allowed``: the actors it passes for; ``refusal``: the code for the others that may send it;
    ``overrides``: actors refused with another code. ``msg`` and ``at`` read the chain after ``setup``."""

    name: str
    msg: Callable[[Chain], Any]
    roles: frozenset[str] | None
    allowed: frozenset[str]
    refusal: str = ""
    setup: Callable[[Chain], Any] | None = None
    cosigners: Callable[[str], list[KeyPair]] = lambda actor: []
    overrides: dict[str, str] = field(default_factory=dict)
    at: Callable[[Chain], int] | None = None


def signers(*keys: KeyPair) -> Callable[[str], list[KeyPair]]:
    """These co-signers, without the actor itself (a key signs once)."""
    return lambda actor: [k for k in keys if k.did != ACTORS[actor].did]


def crashed(chain: Chain) -> None:
    t = S(chain) + HOUR
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=t, decel_mms2=0, odometer_m=1_000, airbag=True), at=t + 10)


def shop_chosen(chain: Chain) -> None:
    crashed(chain)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))


def assessed(chain: Chain) -> None:
    shop_chosen(chain)
    ok(chain, SHOP, AssessClaim(claim=1, estimate=50_000))


def approved(chain: Chain) -> None:
    assessed(chain)
    ok(chain, INS, DecideClaim(claim=1, approve=True, reason="covered", amount=50_000))


def billed(chain: Chain) -> None:
    ok(chain, INS, IssueStatements(policies=[1]), at=S(chain) + PERIOD)


def after_start(dt: int) -> Callable[[Chain], int]:
    return lambda chain: max(S(chain) + dt, now(chain) + 1)


def recent_batch(chain: Chain) -> Any:
    return batch_msg(VIN, trip(now(chain) - 20_000, 10))


INSURERS = frozenset({"insurer"})

CASES: list[Case] = [
    # telemetry: only a current device key of the vehicle signs for it
    Case("commit_batch", recent_batch, None, frozenset({"device"}), "not_vehicle_device"),
    Case("report_crash", lambda c: ReportCrash(vin=VIN, t=now(c), decel_mms2=45_000, odometer_m=0), None,
         frozenset({"device"}), "not_vehicle_device"),
    # insurance
    Case("publish_product", lambda c: PublishProduct(product="new", currency="EUR", period_days=7, pricing=PAYD,
                                                     max_coverage=10), INSURERS, frozenset({"ins", "ins2"})),
    Case("bind_policy", lambda c: BindPolicy(product="payd", vin=OTHER_VIN, start=now(c) + 1, periods=1,
                                             deductible=0, coverage=0), INSURERS, frozenset({"ins"}),
         "unknown_product", cosigners=signers(BOB)),  # ins2 publishes no payd
    Case("bind_policy_without_the_holder", lambda c: BindPolicy(product="payd", vin=OTHER_VIN, start=now(c) + 1,
                                                                periods=1, deductible=0, coverage=0), INSURERS,
         frozenset(), "missing_cosigner"),
    Case("renew_policy", lambda c: RenewPolicy(policy=1, periods=1), INSURERS, frozenset({"ins"}), "not_your_policy",
         cosigners=signers(ALICE)),
    Case("cancel_policy", lambda c: CancelPolicy(policy=1), None, frozenset({"owner", "ins"}), "not_policy_holder"),
    Case("issue_statements", lambda c: IssueStatements(policies=[1]), INSURERS, frozenset({"ins"}),
         "not_your_policy", at=after_start(PERIOD)),
    Case("pay_premium", lambda c: PayPremium(policy=1, period=0), None, frozenset({"owner"}), "not_policy_holder",
         billed),
    Case("file_claim", lambda c: FileClaim(policy=1, incident=S(c) + 1, odometer_km=0), None, frozenset({"owner"}),
         "not_policy_holder", at=after_start(HOUR)),
    Case("choose_workshop", lambda c: ChooseWorkshop(claim=1, workshop="shop"), None, frozenset({"owner", "ins"}),
         "not_policy_holder", crashed),
    Case("assess_claim", lambda c: AssessClaim(claim=1, estimate=1_000), frozenset({"workshop"}), frozenset({"shop"}),
         "not_claim_workshop", shop_chosen),
    Case("decide_claim", lambda c: DecideClaim(claim=1, approve=True, reason="covered", amount=20_000), INSURERS,
         frozenset({"ins"}), "not_your_claim", assessed),
    Case("deny_claim", lambda c: DecideClaim(claim=1, approve=False, reason="late_notice"), INSURERS,
         frozenset({"ins"}), "not_your_claim", crashed),
    Case("pay_claim", lambda c: PayClaim(claim=1), INSURERS, frozenset({"ins"}), "not_your_claim", approved),
]


def expected_code(case: Case, actor: str) -> str | None:
    """None when ``actor`` may do it; else the refusal code (helpers.permissions)."""
    return permission_code(case, actor, ALL_ORGS)


MATRIX = [pytest.param(case, actor, id=f"{case.name}-{actor}") for case in CASES for actor in ACTORS]


@pytest.mark.parametrize(("case", "actor"), MATRIX)
def test_permission_matrix(case: Case, actor: str) -> None:
    chain = world()
    if case.setup is not None:
        case.setup(chain)
    at = now(chain) + 1 if case.at is None else case.at(chain)
    msg = case.msg(chain)
    before = snapshot(chain)
    receipt = send(chain, ACTORS[actor], msg, *case.cosigners(actor), at=at)
    code = expected_code(case, actor)
    if code is None:
        assert receipt.ok, receipt
        assert snapshot(chain)[:2] != before[:2]
    else:
        assert (receipt.ok, receipt.code) == (False, code), receipt
        assert snapshot(chain)[:2] == before[:2], "a refused transaction changed the ledger"


def test_matrix_covers_every_telemetry_and_insurance_message() -> None:
    declared = {t for t in default_registry().messages if t.startswith(("telemetry.", "insurance."))}
    assert {type(case.msg(world())).__struct_config__.tag for case in CASES} == declared


# ---------------------------------------------------------------- who reads what


class View(MemoryView):
    """A QueryView over a MemoryLedger that also reaches the modules' doors, at the newest block."""

    def __init__(self, chain: Chain) -> None:
        super().__init__(chain)
        self.need = chain.registry.provider
        self.time = chain.ledger.head.time


def member(org: str) -> Caller:
    return Caller(admin(org).did, org, frozenset(ALL_ORGS[org]))


HOLDER = Caller(ALICE.did)  # known: she holds a vehicle
OTHER_HOLDER = Caller(BOB.did)
DEVICE_KEY = Caller(DEVICE.did, known=False)  # a device key is no member and holds nothing
OTHER_DEVICE = Caller(BOB_DEVICE.did, known=False)
OUTSIDER = Caller(K("outsider").did, known=False)
NODE = Caller(K("reg-node").did, "reg", node=True)
INSURER, OTHER_INSURER, WORKSHOP, MAKER, LENDER, REGULATOR, DEALER = (
    member(o) for o in ("ins", "ins2", "shop", "oem", "bank", "reg", "dealer"))


def read_world() -> Chain:
    """The world with a batch and a crash of Alice's car (claim 1, assessed by shop), a second claim
    filed by Alice (not assessed), a statement for period 0, and a lien of the bank on the car."""
    chain = world()
    ok(chain, admin("bank"), RecordLien(vin=VIN, amount=5_000, currency="EUR"), ALICE)
    s = S(chain)
    samples = trip(s + HOUR, 30)
    ok(chain, DEVICE, batch_msg(VIN, samples), at=samples[-1].t + 1)
    ok(chain, DEVICE, ReportCrash(vin=VIN, t=s + 2 * HOUR, decel_mms2=0, odometer_m=1_000, impact=True),
       at=s + 2 * HOUR + 1)
    ok(chain, ALICE, ChooseWorkshop(claim=1, workshop="shop"))
    ok(chain, SHOP, AssessClaim(claim=1, estimate=10_000))
    ok(chain, ALICE, FileClaim(policy=1, incident=s + 3 * HOUR, odometer_km=1), at=s + 4 * HOUR)
    ok(chain, INS, IssueStatements(policies=[1]), at=s + PERIOD)
    return chain


def codes(chain: Chain, policy: Any, obj: Any, callers: list[Caller]) -> dict[str, str]:
    """caller label -> "" if it reads, else the refusal code (as the node's reader judges it)."""
    view = View(chain)
    out = {}
    for c in callers:
        try:
            check_read(policy, view, c, obj, "it")
            out[label(c)] = ""
        except ReadRefused as err:
            out[label(c)] = err.code
    return out


LABELS = {HOLDER: "holder", OTHER_HOLDER: "other_holder", DEVICE_KEY: "device", OTHER_DEVICE: "other_device",
          OUTSIDER: "outsider", NODE: "node", INSURER: "insurer", OTHER_INSURER: "other_insurer",
          WORKSHOP: "workshop", MAKER: "maker", LENDER: "lender", REGULATOR: "regulator", DEALER: "dealer"}
EVERYONE = list(LABELS)


def label(c: Caller) -> str:
    return LABELS[c]


#: Who reads a vehicle's driving data (telemetry), and with which code the others are refused.
DRIVING = {"holder": "", "device": "", "maker": "", "lender": "", "insurer": "", "regulator": "", "node": "",
           "other_holder": "consent_required", "other_device": "unknown_caller", "outsider": "unknown_caller",
           "other_insurer": "consent_required", "workshop": "consent_required", "dealer": "consent_required"}
#: A policy, its statements: its insurer and holder (and those who read everything).
POLICY = {"holder": "", "insurer": "", "regulator": "", "node": "",
          "other_holder": "not_a_party", "device": "unknown_caller", "other_device": "unknown_caller",
          "outsider": "unknown_caller", "other_insurer": "not_a_party", "workshop": "not_a_party",
          "maker": "not_a_party", "lender": "not_a_party", "dealer": "not_a_party"}
CLAIM = {**POLICY, "workshop": ""}  # claim 1: shop assessed it
OFFERS = {**{k: "" for k in LABELS.values()}, "device": "unknown_caller", "other_device": "unknown_caller",
          "outsider": "unknown_caller"}
OWN_INSURER = {**{k: "not_your_data" for k in LABELS.values()}, "insurer": "", "regulator": "", "node": "",
               "device": "unknown_caller", "other_device": "unknown_caller", "outsider": "unknown_caller"}
OWN_HOLDER = {**OWN_INSURER, "insurer": "not_your_data", "holder": ""}

QUERIES = [
    ("telemetry", "batches", tq.VinPage(vin=VIN), DRIVING),
    ("telemetry", "batch", tq.BatchQuery(vin=VIN, seq=1), DRIVING),
    ("telemetry", "totals", tq.WindowQuery(vin=VIN), DRIVING),
    ("telemetry", "seq_totals", tq.SeqQuery(vin=VIN, after=0, through=1), DRIVING),
    ("telemetry", "crashes", tq.VinPage(vin=VIN), DRIVING),
    ("insurance", "products", Page(), OFFERS),
    ("insurance", "product", iq.ProductQuery(insurer="ins", product="payd"), OFFERS),
    ("insurance", "policy", iq.PolicyQuery(policy=1), POLICY),
    ("insurance", "statements", iq.PolicyPage(policy=1), POLICY),
    ("insurance", "statement", iq.StatementQuery(policy=1, period=0), POLICY),
    ("insurance", "claim", iq.ClaimQuery(claim=1), CLAIM),
    ("insurance", "insurer_policies", iq.InsurerPage(insurer="ins"), OWN_INSURER),
    ("insurance", "insurer_claims", iq.InsurerClaims(insurer="ins"), OWN_INSURER),
    ("insurance", "holder_policies", iq.HolderPage(holder=ALICE.did), OWN_HOLDER),
    ("insurance", "vehicle_policies", iq.VinQuery(vin=VIN), OWN_HOLDER),
]


@pytest.mark.parametrize("module,query,params,expected", [pytest.param(*q, id=f"{q[0]}.{q[1]}") for q in QUERIES])
def test_each_query_is_read_by_its_parties_only(module: str, query: str, params: Any,
                                                expected: dict[str, str]) -> None:
    chain = read_world()
    spec = chain.registry.queries[(module, query)]
    assert codes(chain, spec.read, params, EVERYONE) == expected
    spec.func(View(chain), params)  # and it answers


def test_every_telemetry_and_insurance_query_has_a_row() -> None:
    declared = {k for k in default_registry().queries if k[0] in ("telemetry", "insurance")}
    assert {(m, q) for m, q, _, _ in QUERIES} == declared


def test_a_workshop_reads_only_the_claim_it_assessed() -> None:
    chain = read_world()
    policy = chain.registry.queries[("insurance", "claim")].read
    assert codes(chain, policy, iq.ClaimQuery(claim=2), [WORKSHOP, INSURER, HOLDER]) == {
        "workshop": "not_a_party", "insurer": "", "holder": ""}


def test_consent_revoked_closes_the_driving_data_to_the_insurer() -> None:
    chain = read_world()
    policy = chain.registry.queries[("telemetry", "batches")].read
    ok(chain, ALICE, RevokeConsent(vin=VIN, grant=1))
    assert codes(chain, policy, tq.VinPage(vin=VIN), [INSURER, HOLDER]) == {"insurer": "consent_required",
                                                                             "holder": ""}
    # the policy stays the insurer's to read
    assert codes(chain, chain.registry.queries[("insurance", "policy")].read, iq.PolicyQuery(policy=1),
                 [INSURER]) == {"insurer": ""}


def test_a_sale_moves_the_driving_data_to_the_new_holder() -> None:
    chain = read_world()
    ok(chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, admin("bank"))
    policy = chain.registry.queries[("telemetry", "crashes")].read
    assert codes(chain, policy, tq.VinPage(vin=VIN), [HOLDER, OTHER_HOLDER, INSURER, LENDER]) == {
        "holder": "consent_required", "other_holder": "", "insurer": "consent_required", "lender": ""}
    # Alice's policy remains hers to read
    assert codes(chain, chain.registry.queries[("insurance", "policy")].read, iq.PolicyQuery(policy=1),
                 [HOLDER, OTHER_HOLDER]) == {"holder": "", "other_holder": "not_a_party"}


# ---------------------------------------------------------------- events


def events_of(chain: Chain) -> dict[str, list[dict[str, Any]]]:
    """Every event of the chain so far, by type."""
    out: dict[str, list[dict[str, Any]]] = {}
    for block in chain.ledger.blocks:
        for receipt in block.receipts:
            for ev in receipt.events:
                out.setdefault(ev["type"], []).append(ev)
    return out


EVENTS = {
    "telemetry.batch_committed": DRIVING,
    "telemetry.crash_reported": DRIVING,
    "insurance.product_published": OFFERS,
    "insurance.policy_changed": POLICY,
    "insurance.statement_issued": POLICY,
    "insurance.premium_paid": POLICY,
    "insurance.claim_changed": POLICY,  # as opened: no workshop named yet
}


def test_each_event_type_is_read_by_its_parties() -> None:
    chain = read_world()
    ok(chain, ALICE, PayPremium(policy=1, period=0))
    seen = events_of(chain)
    for etype, expected in EVENTS.items():
        policy = chain.registry.event_reads[etype]
        ev = seen[etype][0]
        assert codes(chain, policy, ev, EVERYONE) == expected, etype
    assessed_ev = next(e for e in seen["insurance.claim_changed"] if e["status"] == "assessed")
    policy = chain.registry.event_reads["insurance.claim_changed"]
    assert codes(chain, policy, assessed_ev, EVERYONE) == CLAIM


def test_every_telemetry_and_insurance_event_type_has_a_row() -> None:
    declared = {t for t in default_registry().event_reads if t.startswith(("telemetry.", "insurance."))}
    assert set(EVENTS) == declared


def test_a_product_of_another_pricing_is_an_offer_every_member_reads() -> None:
    chain = read_world()
    ok(chain, INS2, PublishProduct(product="flat", currency="EUR", period_days=30,
                                   pricing=Pricing(base=1, max_premium=1),
                                   max_coverage=0))
    spec = chain.registry.queries[("insurance", "product")]
    assert codes(chain, spec.read, iq.ProductQuery(insurer="ins2", product="flat"), [INSURER, HOLDER, DEALER]) == {
        "insurer": "", "holder": "", "dealer": ""}
