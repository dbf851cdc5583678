"""The read policies of ``core.access``, judged on a ledger without a node: each relation, each
role, consent at the block time (granted, expired at ``until`` exactly, revoked, voided by a sale),
declarations complete (every query and event type says who reads it) and the share links."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blokauto.core.access import (ANONYMOUS, IDENTIFIED, NODES, PUBLIC, SIGNED, AnyOf, Caller, ConsentRequired,
                                  HolderOf, NodeKeyRequired, NotAParty, NotYourData, OrgOf, Own, Party, ReadRefused,
                                  RoleRequired, Roles, UnknownCaller, VehicleData, check_read)
from blokauto.core.module import Event
from blokauto.modules import default_registry
from blokauto.modules.consent.messages import GrantConsent, RevokeConsent
from blokauto.modules.vehicles.messages import RecordLien, TransferTitle
from blokauto.share_tokens import MAX_TTL_MS, ShareRefused, make_token, read_token

from conftest import T0, K
from helpers.vehicles import MemoryView, admin, register, vehicles_chain, vin_for

VIN, VIN2, VIN3 = vin_for("WVW", 1), vin_for("WVW", 2), vin_for("WVW", 3)  # VIN3: held by a fleet organisation
OWNER, DEVICE = K("pol-owner"), K("pol-device")
UNTIL = T0 + 10_000_000


class View(MemoryView):
    """A MemoryView with a block time and the modules' doors, as a node's query view has."""

    def __init__(self, chain: Any, time: int) -> None:
        super().__init__(chain)
        self.time = time
        self.registry = default_registry()

    def need(self, protocol: type) -> Any:
        return self.registry.provider(protocol)


@pytest.fixture(scope="module")
def world() -> Any:
    chain = vehicles_chain()
    register(chain, VIN, device_keys=[DEVICE.did])
    register(chain, VIN2)
    register(chain, VIN3)
    assert chain.run(admin("oem"), TransferTitle(vin=VIN, to=OWNER.did, usage="private"), OWNER).ok
    assert chain.run(admin("oem"), TransferTitle(vin=VIN3, to="org:fleet"), admin("fleet")).ok
    assert chain.run(admin("bank"), RecordLien(vin=VIN, amount=5, currency="EUR"), OWNER).ok
    r = chain.run(OWNER, GrantConsent(vin=VIN, org="ins", categories=["history"], purpose="quote", until=UNTIL))
    assert r.ok, r.error
    granted = chain.run(OWNER, GrantConsent(vin=VIN, org="shop", categories=["history"], purpose="x", until=UNTIL))
    shop_grant = next(e["grant"] for e in granted.events if e["type"] == "consent.granted")
    assert chain.run(OWNER, RevokeConsent(vin=VIN, grant=shop_grant)).ok
    return chain


def member(org: str, *roles: str) -> Caller:
    return Caller(admin(org).did, org, frozenset(roles))


CASES = [  # (caller, VIN, category, allowed at a time before UNTIL)
    (Caller(K("reg-node").did, "reg", node=True), VIN2, "history", True),
    (member("reg", "regulator"), VIN2, "history", True),
    (member("reg", "police"), VIN2, "location", True),
    (member("reg", "inspector"), VIN2, "history", False),
    (member("oem", "manufacturer"), VIN, "history", True),  # the maker
    (member("oem2", "manufacturer"), VIN, "history", False),  # another maker
    (member("bank", "lender"), VIN, "history", True),  # a lien
    (member("bank", "lender"), VIN2, "history", False),
    (member("ins", "insurer"), VIN, "history", True),  # consent
    (member("ins", "insurer"), VIN, "location", False),  # consent for another category
    (member("ins", "insurer"), VIN2, "history", False),
    (member("shop", "workshop"), VIN, "history", False),  # consent revoked
    (Caller(OWNER.did), VIN, "location", True),  # the holder
    (Caller(OWNER.did), VIN2, "history", False),
    (Caller(DEVICE.did, known=False), VIN, "history", True),  # the vehicle's own device
    (Caller(DEVICE.did, known=False), VIN2, "history", False),
    (Caller(K("stranger").did, known=False), VIN, "history", False),
    (member("fleet", "fleet"), VIN3, "location", True),  # any key of the holding organisation
    (member("fleet", "fleet"), VIN, "history", False),
    (Caller(K("fleet-node").did, None), VIN3, "history", False),  # a key of no organisation is not org:fleet
    (ANONYMOUS, VIN, "history", False),
]


@pytest.mark.parametrize("caller,vin,category,allowed", CASES,
                         ids=[f"{c.describe()[:30]}-{v[-2:]}-{cat}" for c, v, cat, _ in CASES])
def test_vehicle_data_is_read_by_relation_role_or_consent(world: Any, caller: Caller, vin: str, category: str,
                                                          allowed: bool) -> None:
    view = View(world, T0 + 1000)
    policy = VehicleData("vin", category)
    if allowed:
        check_read(policy, view, caller, {"vin": vin}, "it")
        return
    with pytest.raises(ReadRefused) as refused:
        check_read(policy, view, caller, {"vin": vin}, "it")
    expected = UnknownCaller if not caller.known else ConsentRequired
    assert type(refused.value) is expected
    if expected is ConsentRequired:
        assert refused.value.detail["category"] == category and refused.value.detail["vin"] == vin


def test_consent_counts_until_its_until_at_block_time_and_not_at_it(world: Any) -> None:
    insurer = member("ins", "insurer")
    check_read(VehicleData("vin", "history"), View(world, UNTIL - 1), insurer, {"vin": VIN}, "it")
    with pytest.raises(ConsentRequired):
        check_read(VehicleData("vin", "history"), View(world, UNTIL), insurer, {"vin": VIN}, "it")


def test_a_sale_voids_the_former_holders_consent_and_access() -> None:
    chain = vehicles_chain()
    register(chain, VIN)
    new_owner = K("pol-buyer")
    assert chain.run(admin("oem"), TransferTitle(vin=VIN, to=OWNER.did, usage="private"), OWNER).ok
    assert chain.run(OWNER, GrantConsent(vin=VIN, org="ins", categories=["history"], purpose="q", until=UNTIL)).ok
    assert chain.run(OWNER, TransferTitle(vin=VIN, to=new_owner.did), new_owner).ok
    view = View(chain, T0 + 1000)
    with pytest.raises(ConsentRequired):
        check_read(VehicleData("vin", "history"), view, member("ins", "insurer"), {"vin": VIN}, "it")
    with pytest.raises(ConsentRequired):
        check_read(VehicleData("vin", "history"), view, Caller(OWNER.did), {"vin": VIN}, "it")
    check_read(VehicleData("vin", "history"), view, Caller(new_owner.did), {"vin": VIN}, "it")


@pytest.mark.parametrize("policy,caller,obj,refusal", [
    (PUBLIC, ANONYMOUS, None, None),
    (SIGNED, ANONYMOUS, None, ReadRefused),
    (SIGNED, Caller(K("x").did, known=False), None, None),
    (IDENTIFIED, Caller(K("x").did, known=False), None, UnknownCaller),
    (IDENTIFIED, member("ins", "insurer"), None, None),
    (NODES, member("reg", "regulator"), None, NodeKeyRequired),
    (NODES, Caller(K("reg-node").did, "reg", node=True), None, None),
    (OrgOf("org"), member("ins", "insurer"), {"org": "ins"}, None),
    (OrgOf("org"), member("oem", "manufacturer"), {"org": "ins"}, NotYourData),
    (OrgOf("org"), member("reg", "police"), {"org": "ins"}, None),
    (Own("holder"), Caller(OWNER.did), {"holder": OWNER.did}, None),
    (Own("holder"), Caller(OWNER.did), {"holder": K("other").did}, NotYourData),
    (Own("holder"), member("dealer", "dealer"), {"holder": "org:dealer"}, None),
    (Own("holder"), Caller(K("dealer-node").did, "dealer", node=True), {"holder": "org:dealer"}, None),
    (Own("holder"), member("oem", "manufacturer"), {"holder": "org:dealer"}, NotYourData),
    (HolderOf("vin"), Caller(OWNER.did), {"vin": VIN}, None),
    (HolderOf("vin"), member("fleet", "fleet"), {"vin": VIN3}, None),
    (HolderOf("vin"), member("oem", "manufacturer"), {"vin": VIN3}, NotYourData),
    (HolderOf("vin"), member("oem", "manufacturer"), {"vin": VIN}, NotYourData),  # the maker is not the holder
    (HolderOf("vin"), Caller(DEVICE.did, known=False), {"vin": VIN}, UnknownCaller),
    (Party(lambda v, o: {"shop", K("lone").did}), member("shop", "workshop"), None, None),
    (Party(lambda v, o: {"shop", K("lone").did}), Caller(K("lone").did), None, None),
    (Party(lambda v, o: {"shop"}), member("oem", "manufacturer"), None, NotAParty),
    (Roles("manufacturer"), member("oem", "manufacturer"), None, None),
    (Roles("manufacturer"), member("ins", "insurer"), None, RoleRequired),
    (AnyOf(OrgOf("org"), HolderOf("vin")), Caller(OWNER.did), {"org": "ins", "vin": VIN}, None),
    (AnyOf(OrgOf("org"), HolderOf("vin")), member("oem", "manufacturer"), {"org": "ins", "vin": VIN}, NotYourData),
])
def test_each_policy_allows_and_refuses_as_declared(world: Any, policy: Any, caller: Caller, obj: Any,
                                                    refusal: type | None) -> None:
    view = View(world, T0 + 1000)
    if refusal is None:
        check_read(policy, view, caller, obj, "it")
    else:
        with pytest.raises(refusal):
            check_read(policy, view, caller, obj, "it")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([c for c, *_ in CASES]), st.sampled_from([VIN, VIN2]),
       st.sampled_from(["history", "odometer", "location", "driving", "identity"]),
       st.integers(min_value=T0, max_value=UNTIL + 1000))
def test_a_policys_answer_depends_only_on_the_state_and_caller(world: Any, caller: Caller, vin: str, category: str,
                                                                time: int) -> None:
    """Asked twice about the same state, a policy answers the same (no clock, no cache, no randomness)."""
    def answer() -> str:
        try:
            check_read(VehicleData("vin", category), View(world, time), caller, {"vin": vin}, "it")
            return "ok"
        except ReadRefused as err:
            return err.code
    assert answer() == answer()


def test_every_query_and_every_event_type_declares_who_reads_it() -> None:
    registry = default_registry()
    for (module, name), spec in registry.queries.items():
        assert hasattr(spec.read, "check") and spec.read.describe(), f"{module}.{name}"
    declared = set(registry.event_reads)
    emitted = set()
    stack = list(Event.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        tag = cls.__struct_config__.tag
        if isinstance(tag, str) and tag.split(".")[0] in registry.modules:
            emitted.add(tag)
    derived = {"recalls.owner_notified", "recalls.scope_matched_nothing"}
    assert emitted | derived <= declared, f"event types nobody declared readers for: {sorted(emitted | derived - declared)}"


# ---------------------------------------------------------------- share links

def test_a_share_link_opens_its_vin_on_its_chain_until_it_expires() -> None:
    token = make_token(OWNER, "c", VIN, 60_000, now_ms=1_000)
    grant = read_token(token, chain="c", vin=VIN, now_ms=60_999)
    assert grant.holder == OWNER.did and grant.expires == 61_000
    for kw, reason in [(dict(chain="c", vin=VIN, now_ms=61_000), "expired"),
                       (dict(chain="other", vin=VIN, now_ms=2_000), "chain"),
                       (dict(chain="c", vin=VIN2, now_ms=2_000), "opens the report of")]:
        with pytest.raises(ShareRefused) as refused:
            read_token(token, **kw)
        assert reason in refused.value.message


@pytest.mark.parametrize("tamper", ["body", "signature", "dots", "long", "empty", "not_base64"])
def test_a_tampered_share_link_is_refused(tamper: str) -> None:
    token = make_token(OWNER, "c", VIN, 60_000, now_ms=1_000)
    body, sig = token.split(".")
    bad = {"body": make_token(OWNER, "c", VIN2, 60_000, now_ms=1_000).split(".")[0] + "." + sig,
           "signature": body + "." + make_token(K("x"), "c", VIN, 60_000, now_ms=1_000).split(".")[1],
           "dots": token + ".x", "long": "a" * 5000, "empty": "", "not_base64": "!!!.???"}[tamper]
    with pytest.raises(ShareRefused):
        read_token(bad, chain="c", vin=VIN, now_ms=2_000)


def test_a_share_link_cannot_claim_more_than_ninety_days() -> None:
    with pytest.raises(ValueError):
        make_token(OWNER, "c", VIN, MAX_TTL_MS + 1)
    with pytest.raises(ShareRefused):  # a body that does not decode as a grant
        read_token("eyJ2IjoxfQ." + "A" * 86, chain="c", vin=VIN, now_ms=0)


def test_a_consent_does_not_outlive_its_until_on_a_quiet_chain(world: Any) -> None:
    """Found by the fourth attack: no block came after ``until``, so the newest block's time was
    still before it and the consent kept opening reads. A node judges reads at the later of the
    block's time and its clock."""
    view = View(world, UNTIL - 1_000)  # the newest block is from before UNTIL
    insurer = member("ins", "insurer")
    view.read_time = UNTIL - 1
    check_read(VehicleData("vin", "history"), view, insurer, {"vin": VIN}, "it")
    view.read_time = UNTIL  # the node's clock has passed it: refused, though no block came since
    with pytest.raises(ConsentRequired):
        check_read(VehicleData("vin", "history"), view, insurer, {"vin": VIN}, "it")
