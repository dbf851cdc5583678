"""Who may send each energy message, and who may read each energy query and event type.

Sending: every message against the zone's grid operator (``grid``), another grid operator
(``grid2``), a grid key with no role, the meter operators (``meterco``: house-a and v2g-c, and a
technician key of it; ``chargeco``: cp-b and its own depot charger, and a clerk key of it with no
role), the issuer, the regulator, a manufacturer, a revoked meterco key, the meter's owner (Alice),
another owner (Bob), an unknown key, the house meter's device key and another meter's device key.
The table states the intended permissions (the handlers' docstrings, ``energy/__init__``): a grid
operator opens zones and sets its own zones' terms; a meter operator (energy, charging or grid role)
registers meters and rotates and revokes its own; any key acting for a meter's owner (that key, or
any key of the owning organisation) orders and cancels; only the meter's current device key reads;
anyone clears and settles. The matrix is generated from it (``helpers.permissions``): one test per
(case, actor); a refusal carries its stable code and changes nothing, an allowed message changes
the ledger.

Reading: each query and event type's read policy is called with the callers the node's reader
would see (``helpers.energy.caller_of``: a person's key holding no vehicle is an unknown key, a
revoked member key carries its status and is refused by the API before any policy) on a view of the
ledger (``check_read``): zones, books and clearing are for any signed request; a meter, its readings
and positions (and its events) for its owner, its operator, its zone's grid operator and its own
device key; an order (and its events) for its owner and the zone's grid operator; an account's orders
and meters for that account; regulators and nodes read everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest

from blokauto.core.access import Caller, ReadRefused, check_read
from blokauto.core.crypto import KeyPair
from blokauto.core.module import Page
from blokauto.modules import default_registry
from blokauto.modules.energy import queries as eq
from blokauto.modules.energy.messages import (CancelOrder, ClearInterval, OpenZone, PlaceOrder, RegisterMeter,
                                              RevokeMeter, RotateMeterKey, SetTerms, SettleInterval, SubmitReading)
from blokauto.modules.governance.messages import AddMember, RevokeMember
from blokauto.modules.payments.messages import Issue

from conftest import Chain, K
from helpers.energy import (ALICE, ALL_ORGS, BOB, CHARGECO, CP_KEY, DAVE, EMI, GRID, HOUSE_KEY, INTERVAL, METERCO,
                            TERMS, EnergyView, caller_of, end, fork, gate, next_start, now, ok, send, snapshot,
                            terms_start, world)
from helpers.permissions import expected_code as permission_code
from helpers.vehicles import admin

TECH, RETIRED = K("meterco-tech"), K("meterco-retired")  # meterco keys with role energy (the second revoked)
GRID_CLERK, CHARGECO_CLERK = K("grid-clerk"), K("chargeco-clerk")  # keys with no role
DEPOT_KEY = K("en-meter-depot")

#: Every actor.
ACTORS: dict[str, KeyPair] = {
    "grid": GRID,  # operates zone Z1
    "grid2": admin("grid2"),  # another grid operator
    "grid_clerk": GRID_CLERK,
    "meterco": METERCO,  # operates house-a and v2g-c
    "meterco_tech": TECH,
    "meterco_retired": RETIRED,
    "chargeco": CHARGECO,  # operates cp-b and its own depot charger (owner org:chargeco)
    "chargeco_clerk": CHARGECO_CLERK,
    "emi": EMI,
    "reg": admin("reg"),
    "oem": admin("oem"),
    "owner": ALICE,  # house-a's owner
    "other_owner": BOB,  # cp-b's owner
    "outsider": K("outsider"),
    "device": HOUSE_KEY,  # house-a's device key
    "other_device": CP_KEY,  # cp-b's device key
}
#: The roles of each member actor.
ROLES: dict[str, list[str]] = {
    **{org: ALL_ORGS[org] for org in ("grid", "grid2", "meterco", "chargeco", "emi", "reg", "oem")},
    "grid_clerk": [], "meterco_tech": ["energy"], "meterco_retired": ["energy"], "chargeco_clerk": []}
METER_OPS = frozenset({"energy", "charging", "grid"})


class Times:
    """The base world's intervals: ``a`` has ended (orders of house-a, cp-b and the depot, all read);
    ``b`` is open (Alice's bid seq 1, the depot's bid seq 2); ``terms`` is the first whose terms may
    still be set (its gate closes more than energy_terms_notice_ms after the head)."""

    a = 0
    b = 0
    terms = 0


def base() -> Chain:
    w = world()
    ok(w, METERCO, AddMember(member=TECH.did, roles=["energy"]), TECH)
    ok(w, METERCO, AddMember(member=RETIRED.did, roles=["energy"]), RETIRED)
    ok(w, METERCO, RevokeMember(member=RETIRED.did, reason="left"))
    ok(w, GRID, AddMember(member=GRID_CLERK.did, roles=[]), GRID_CLERK)
    ok(w, CHARGECO, AddMember(member=CHARGECO_CLERK.did, roles=[]), CHARGECO_CLERK)
    ok(w, CHARGECO, RegisterMeter(meter="depot", zone="Z1", kind="charge_point", key=DEPOT_KEY.did,
                                  owner="org:chargeco", max_power_w=50_000))
    ok(w, EMI, Issue(currency="EUR", to="org:chargeco", amount=10_000))
    a = Times.a = next_start(w)
    ok(w, ALICE, PlaceOrder(meter="house-a", start=a, side="sell", price=10, wh=3_000))
    ok(w, BOB, PlaceOrder(meter="cp-b", start=a, side="buy", price=35, wh=2_000))
    ok(w, CHARGECO, PlaceOrder(meter="depot", start=a, side="buy", price=35, wh=2_000))
    ok(w, HOUSE_KEY, SubmitReading(meter="house-a", start=a, imported_wh=0, exported_wh=3_000), at=end(a))
    ok(w, CP_KEY, SubmitReading(meter="cp-b", start=a, imported_wh=2_000, exported_wh=0))
    ok(w, DEPOT_KEY, SubmitReading(meter="depot", start=a, imported_wh=2_000, exported_wh=0))
    b = Times.b = next_start(w)
    ok(w, ALICE, PlaceOrder(meter="house-a", start=b, side="buy", price=20, wh=1_000))
    ok(w, CHARGECO_CLERK, PlaceOrder(meter="depot", start=b, side="buy", price=20, wh=1_000))
    Times.terms = terms_start(w)
    return w


@pytest.fixture(scope="module")
def world_a() -> Iterator[Chain]:
    yield base()


# ---------------------------------------------------------------- the messages


@dataclass(frozen=True)
class Case:
    """One message sent by each actor in turn. ``roles``: the roles that may send it at all (None: any
    key); ``allowed``: the actors it passes for; ``refusal``: the code for the others that may send it;
    ``overrides``: actors refused with another code."""

    name: str
    msg: Callable[[Chain], Any]
    roles: frozenset[str] | None
    allowed: frozenset[str]
    refusal: str = ""
    overrides: dict[str, str] = field(default_factory=dict)


def c(name: str, msg: Callable[[Chain], Any], roles: Any, allowed: set[str], refusal: str = "", **overrides: str) -> Case:
    return Case(name, msg, roles if roles is None else frozenset(roles), frozenset(allowed), refusal, overrides)


CASES: list[Case] = [
    # a grid operator opens zones, and sets the terms of its own
    c("open_zone", lambda w: OpenZone(zone="Z9", currency="EUR", terms=TERMS), {"grid"}, {"grid", "grid2"}),
    c("set_terms", lambda w: SetTerms(zone="Z1", start=Times.terms, terms=TERMS), {"grid"}, {"grid"},
      "not_zone_operator"),
    # a meter operator registers meters, and rotates and revokes its own
    c("register_meter", lambda w: RegisterMeter(meter="m-new", zone="Z1", kind="home", key=K("en-m-new").did,
                                                owner=DAVE.did, max_power_w=5_000),
      METER_OPS, {"grid", "grid2", "meterco", "meterco_tech", "chargeco"}),
    c("rotate_meter_key", lambda w: RotateMeterKey(meter="house-a", key=K("en-house-new").did), METER_OPS,
      {"meterco", "meterco_tech"}, "not_meter_operator"),
    c("revoke_meter", lambda w: RevokeMeter(meter="house-a"), METER_OPS, {"meterco", "meterco_tech"},
      "not_meter_operator"),
    c("revoke_meter_of_chargeco", lambda w: RevokeMeter(meter="cp-b"), METER_OPS, {"chargeco"},
      "not_meter_operator"),
    # a key acting for the meter's owner orders and cancels
    c("place_order", lambda w: PlaceOrder(meter="house-a", start=Times.b, side="sell", price=5, wh=500), None,
      {"owner"}, "not_meter_owner"),
    c("place_order_for_an_org_meter", lambda w: PlaceOrder(meter="depot", start=Times.b, side="buy", price=5,
                                                           wh=500), None,
      {"chargeco", "chargeco_clerk"}, "not_meter_owner"),
    c("cancel_order", lambda w: CancelOrder(zone="Z1", start=Times.b, seq=1), None, {"owner"}, "not_order_owner"),
    c("cancel_order_of_an_org_meter", lambda w: CancelOrder(zone="Z1", start=Times.b, seq=2), None,
      {"chargeco", "chargeco_clerk"}, "not_order_owner"),
    # only the meter's current device key reads (here an interval in which house-a has no position)
    c("submit_reading", lambda w: SubmitReading(meter="house-a", start=Times.a - INTERVAL, imported_wh=10,
                                                exported_wh=0), None, {"device"}, "not_meter_key"),
    # anyone clears and settles
    c("clear", lambda w: ClearInterval(zone="Z1", start=Times.a), None, set(ACTORS) - {"meterco_retired"}),
    c("settle", lambda w: SettleInterval(zone="Z1", start=Times.a), None, set(ACTORS) - {"meterco_retired"}),
]


def expected_code(case: Case, actor: str) -> str | None:
    """None when ``actor`` may send it; else the refusal code (a revoked member key is refused first)."""
    if actor == "meterco_retired":
        return "revoked_key"
    return permission_code(case, actor, ROLES)


MATRIX = [pytest.param(case, actor, id=f"{case.name}-{actor}") for case in CASES for actor in ACTORS]


@pytest.mark.parametrize(("case", "actor"), MATRIX)
def test_permission_matrix(world_a: Chain, case: Case, actor: str) -> None:
    w = fork(world_a)
    before = snapshot(w)
    receipt = send(w, ACTORS[actor], case.msg(w))
    code = expected_code(case, actor)
    if code is None:
        assert receipt.ok, receipt
        assert snapshot(w)[:2] != before[:2]
    else:
        assert (receipt.ok, receipt.code) == (False, code), receipt
        assert receipt.events == []
        assert snapshot(w)[:2] == before[:2], "a refused transaction changed the ledger"


def test_matrix_covers_every_energy_message(world_a: Chain) -> None:
    declared = {t for t in default_registry().messages if t.startswith("energy.")}
    assert {type(case.msg(world_a)).__struct_config__.tag for case in CASES} == declared


def test_the_base_world_is_what_the_cases_assume(world_a: Chain) -> None:
    """Interval a has ended with every position read and nobody cleared it; b's gate is open."""
    t = now(world_a)
    assert end(Times.a) <= t < gate(Times.b)
    assert t + 3_600_000 < gate(Times.terms) - 60_000  # the terms' notice (with room for a block or two)
    assert t < Times.a + INTERVAL + 3_600_000  # a's reading window is open (and so is the one before)


# ---------------------------------------------------------------- who reads what

LABELS = [*ACTORS, "node", "unsigned"]


def callers(w: Chain) -> dict[str, Caller]:
    out = {label: caller_of(w, key) for label, key in ACTORS.items()}
    out["node"] = caller_of(w, K("reg-node"))
    out["unsigned"] = caller_of(w, None)
    return out


def codes(w: Chain, policy: Any, obj: Any) -> dict[str, str]:
    """caller label -> "" if it reads, else the refusal code: a revoked member key is refused by the
    API (``revoked_caller``) before any policy is asked, the others as the node's reader judges them."""
    view = EnergyView(w)
    out = {}
    for label, caller in callers(w).items():
        if caller.status:
            out[label] = "revoked_caller"
            continue
        try:
            check_read(policy, view, caller, obj, "it")
            out[label] = ""
        except ReadRefused as err:
            out[label] = err.code
    return out


def reads(readers: set[str], refusal: str) -> dict[str, str]:
    """``readers`` (and regulators and nodes) read; the other known callers are refused with ``refusal``,
    unknown keys (people holding no vehicle, device keys, outsiders) with ``unknown_caller``."""
    unknown = {"owner", "other_owner", "outsider", "device", "other_device"}
    out = {}
    for label in LABELS:
        if label in readers or label in ("reg", "node"):
            out[label] = ""
        elif label == "meterco_retired":
            out[label] = "revoked_caller"
        else:
            out[label] = "unknown_caller" if label in unknown else refusal
    return out


#: Any signed request (zones, books, clearing: public to the consortium's participants).
ANY_SIGNED = {**{label: "" for label in LABELS}, "unsigned": "read_refused", "meterco_retired": "revoked_caller"}
#: house-a's data: its owner, its operator, its zone's grid operator, and its own device key (not cp-b's).
HOUSE = reads({"owner", "meterco", "meterco_tech", "grid", "grid_clerk", "device"}, "not_a_party")
#: Alice's order: its owner and the zone's grid operator (not the meter operator).
ALICES_ORDER = reads({"owner", "grid", "grid_clerk"}, "not_a_party")
#: The depot's order (org:chargeco): any chargeco key, and the zone's grid operator.
DEPOT_ORDER = reads({"chargeco", "chargeco_clerk", "grid", "grid_clerk"}, "not_a_party")
#: What an account holds: that account only.
ALICES = reads({"owner"}, "not_your_data")
CHARGECOS = reads({"chargeco", "chargeco_clerk"}, "not_your_data")

QUERIES = [
    ("zone", lambda: eq.ZoneQuery(zone="Z1"), ANY_SIGNED),
    ("zones", lambda: Page(), ANY_SIGNED),
    ("book", lambda: eq.IntervalQuery(zone="Z1", start=Times.b), ANY_SIGNED),
    ("order", lambda: eq.OrderQuery(zone="Z1", start=Times.b, seq=1), ALICES_ORDER),
    ("orders", lambda: eq.OwnerOrders(owner=ALICE.did), ALICES),
    ("meter", lambda: eq.MeterQuery(meter="house-a"), HOUSE),
    ("meters", lambda: eq.OwnerPage(owner=ALICE.did), ALICES),
    ("reading", lambda: eq.MeterIntervalQuery(meter="house-a", start=Times.a), HOUSE),
    ("position", lambda: eq.MeterIntervalQuery(meter="house-a", start=Times.a), HOUSE),
    ("positions", lambda: eq.MeterPage(meter="house-a"), HOUSE),
]


@pytest.fixture(scope="module")
def settled_world(world_a: Chain) -> Chain:
    """The base world with interval a settled (positions to read)."""
    w = fork(world_a)
    ok(w, DAVE, SettleInterval(zone="Z1", start=Times.a))
    return w


@pytest.mark.parametrize("query,params,expected", [pytest.param(*q, id=q[0]) for q in QUERIES])
def test_each_query_is_read_by_its_parties_only(settled_world: Chain, query: str, params: Any,
                                                expected: dict[str, str]) -> None:
    spec = settled_world.registry.queries[("energy", query)]
    assert codes(settled_world, spec.read, params()) == expected
    assert spec.func(EnergyView(settled_world), params())  # and it answers


def test_every_energy_query_has_a_row() -> None:
    declared = {q for m, q in default_registry().queries if m == "energy"}
    assert {q for q, _, _ in QUERIES} == declared


@pytest.mark.parametrize("query,params,expected", [
    pytest.param("order", lambda: eq.OrderQuery(zone="Z1", start=Times.b, seq=2), DEPOT_ORDER, id="order"),
    pytest.param("orders", lambda: eq.OwnerOrders(owner="org:chargeco"), CHARGECOS, id="orders"),
    pytest.param("meters", lambda: eq.OwnerPage(owner="org:chargeco"), CHARGECOS, id="meters"),
    pytest.param("meter", lambda: eq.MeterQuery(meter="depot"),
                 reads({"chargeco", "chargeco_clerk", "grid", "grid_clerk"}, "not_a_party"), id="meter"),
])
def test_an_organisations_meter_and_orders_are_read_by_any_of_its_keys(settled_world: Chain, query: str,
                                                                       params: Any, expected: dict[str, str]) -> None:
    spec = settled_world.registry.queries[("energy", query)]
    assert codes(settled_world, spec.read, params()) == expected


def test_a_meter_that_does_not_exist_is_read_by_no_party(settled_world: Chain) -> None:
    """Only regulators and nodes (who read everything) are told there is no such meter."""
    spec = settled_world.registry.queries[("energy", "meter")]
    got = codes(settled_world, spec.read, eq.MeterQuery(meter="m-none"))
    assert {k for k, v in got.items() if v == ""} == {"reg", "node"}


def test_a_revoked_member_key_passes_the_party_policies_and_only_the_api_stops_it(settled_world: Chain) -> None:
    """The caller the node's reader makes of a revoked key keeps its organisation: the meter and
    organisation policies (Party, Own) let it through on their own; the API refuses it first
    (``revoked_caller``, api/app.py) whatever the route."""
    caller = caller_of(settled_world, RETIRED)
    assert (caller.org, caller.known, caller.status.split(":")[0]) == ("meterco", False, "revoked")
    spec = settled_world.registry.queries[("energy", "meter")]
    check_read(spec.read, EnergyView(settled_world), caller, eq.MeterQuery(meter="house-a"), "it")


# ---------------------------------------------------------------- events


def events_of(w: Chain) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for block in w.ledger.blocks:
        for receipt in block.receipts:
            for ev in receipt.events:
                out.setdefault(ev["type"], []).append(ev)
    return out


#: Event types any signed request reads.
EVENTS = {
    "energy.zone_opened": ANY_SIGNED,
    "energy.terms_set": ANY_SIGNED,
    "energy.cleared": ANY_SIGNED,
    "energy.settled": ANY_SIGNED,
}


def test_each_event_type_is_read_by_its_parties(settled_world: Chain) -> None:
    """Each type's newest event about house-a or Alice (the rotation of house-a's key and Alice's
    cancellation added): a meter's events are its parties' (its device key: the current one, so after
    the rotation the old key reads them no more and the new one does), an order's its owner's and the
    zone's grid operator's."""
    w = fork(settled_world)
    new_key = K("en-house-new")
    ok(w, METERCO, RotateMeterKey(meter="house-a", key=new_key.did))
    ok(w, ALICE, CancelOrder(zone="Z1", start=Times.b, seq=1))
    rotated_out = {**HOUSE, "device": "unknown_caller"}
    expected = {**EVENTS, "energy.meter_registered": rotated_out, "energy.meter_changed": rotated_out,
                "energy.reading_submitted": rotated_out, "energy.order_placed": ALICES_ORDER,
                "energy.order_cancelled": ALICES_ORDER}
    ours = {"energy.meter_registered", "energy.reading_submitted", "energy.order_placed"}
    seen = events_of(w)
    view = EnergyView(w)
    for etype, want in expected.items():
        ev = [e for e in seen[etype] if etype not in ours or e.get("meter") == "house-a" or e.get("owner") == ALICE.did]
        assert codes(w, w.registry.event_reads[etype], ev[-1]) == want, etype
        if want is rotated_out:
            check_read(w.registry.event_reads[etype], view, caller_of(w, new_key), ev[-1], "it")


def test_the_depots_events_are_read_by_any_key_of_its_organisation(settled_world: Chain) -> None:
    seen = events_of(settled_world)
    registered = [e for e in seen["energy.meter_registered"] if e["meter"] == "depot"][-1]
    placed = [e for e in seen["energy.order_placed"] if e["owner"] == "org:chargeco"][-1]
    assert codes(settled_world, settled_world.registry.event_reads["energy.meter_registered"], registered) == reads(
        {"chargeco", "chargeco_clerk", "grid", "grid_clerk"}, "not_a_party")
    assert codes(settled_world, settled_world.registry.event_reads["energy.order_placed"], placed) == DEPOT_ORDER


def test_every_energy_event_type_has_a_row() -> None:
    declared = {t for t in default_registry().event_reads if t.startswith("energy.")}
    assert declared == {*EVENTS, "energy.meter_registered", "energy.meter_changed", "energy.reading_submitted",
                        "energy.order_placed", "energy.order_cancelled"}
