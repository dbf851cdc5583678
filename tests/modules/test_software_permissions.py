"""Who may send each software message, and who may read each software query and event type.

Sending: every message against a founding admin key of every organisation, a manufacturer member key
of oem that is not an admin (``oem_engineer``), an oem key with no role (``oem_clerk``), a revoked oem
key, an outsider, Alice (holder of VIN) and Bob (holder of OTHER_VIN), the car's current device key,
its revoked device key (DEVICE2) and Bob's car's device key. The table states the intended permissions
(the handlers' docstrings, DESIGN §6-7): a maker's member keys register, rotate and anchor its own
repositories and fit its own vehicles' ECUs; anyone may send a manifest, and only a current device key
of that vehicle passes. The matrix is generated from it (``helpers.permissions``): one test per (case,
actor); a refusal carries its stable code and changes nothing, an allowed message changes the ledger.

Reading: each query and event type's read policy is called with ``core.access`` callers on a view of
the ledger (as the node's reader does, ``check_read``): what every vehicle must check (roots,
releases, images) any signed request reads; a vehicle's inventory and installs are its history data
(its holder, devices, maker, lender, an organisation the holder consented to for ``history``,
regulators and nodes); which vehicles run an image is for the maker's organisation (and those who
read everything).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from tuf.api.metadata import Metadata, Root

from blokauto.core.access import ANONYMOUS, Caller, ReadRefused, check_read
from blokauto.core.crypto import KeyPair
from blokauto.modules import default_registry
from blokauto.modules.consent.messages import GrantConsent
from blokauto.modules.governance.messages import AddMember, RevokeMember
from blokauto.modules.software import queries as sq
from blokauto.modules.software.messages import (AnchorRelease, EcuSpec, FitEcus, RegisterRepository, ReportManifest,
                                                RotateRoot)
from blokauto.modules.software.metadata import sha256
from blokauto.modules.software.state import REPOSITORIES
from blokauto.modules.vehicles.messages import RecordLien, RevokeDeviceKey, TransferTitle

from conftest import Chain, K
from helpers.insurance import ALICE, ALL_ORGS, BOB, BOB_DEVICE, DEVICE, DEVICE2, OEM, OTHER_VIN, VIN, now, ok, send
from helpers.permissions import expected_code as permission_code
from helpers.software import (BRAKE_HW, GATEWAY_HW, OtaWorld, SqlView, image, installed, new_root, ota_world,
                              release_text, role_keys, signed_text, target, tuf_time)
from helpers.vehicles import WMI, admin, register_msg, snapshot, vin_for

DAY = 86_400_000
ENGINEER, CLERK, RETIRED = K("oem-engineer"), K("oem-clerk"), K("oem-retired")

#: Every actor: a founding admin key of each organisation, oem's other member keys, and keys outside
#: the consortium.
ACTORS: dict[str, KeyPair] = {
    **{org: admin(org) for org in ALL_ORGS},
    "oem_engineer": ENGINEER,  # oem, role manufacturer (not an admin)
    "oem_clerk": CLERK,  # oem, no role
    "oem_retired": RETIRED,  # oem, manufacturer, revoked
    "outsider": K("outsider"),
    "owner": ALICE,  # holds VIN
    "buyer": BOB,  # holds OTHER_VIN
    "device": DEVICE,  # a current device key of VIN
    "revoked_device": DEVICE2,  # VIN's other device key, revoked (lost)
    "other_device": BOB_DEVICE,  # the device key of OTHER_VIN
}
#: The roles of each member actor.
ROLES: dict[str, list[str]] = {**ALL_ORGS, "oem_engineer": ["manufacturer"], "oem_clerk": [],
                               "oem_retired": ["manufacturer"]}
OEM_KEYS = frozenset({"oem", "oem_engineer"})


def base(tmp: Path) -> OtaWorld:
    """``ota_world`` with oem's other member keys, Alice's DEVICE2 revoked, Bob's car fitted with ECUs, and
    release 2 (brake v2, gateway v2)."""
    w = ota_world(tmp)
    chain = w.chain
    ok(chain, OEM, AddMember(member=ENGINEER.did, roles=["manufacturer"]), ENGINEER)
    ok(chain, OEM, AddMember(member=CLERK.did, roles=[]), CLERK)
    ok(chain, OEM, AddMember(member=RETIRED.did, roles=["manufacturer"]), RETIRED)
    ok(chain, OEM, RevokeMember(member=RETIRED.did))
    ok(chain, ALICE, RevokeDeviceKey(vin=VIN, key=DEVICE2.did, reason="lost"))
    w.fit(vin=OTHER_VIN, factory={"brake-1": sha256(image("brake", 1))})
    w.release(("brake/brake-2.bin", image("brake", 2), BRAKE_HW, 2, ""),
              ("gateway/gw-2.bin", image("gw", 2), GATEWAY_HW, 2, ""))
    return w


_copies = itertools.count(1)


def fork(w: OtaWorld) -> OtaWorld:
    """``w`` with a copy of its chain (the repositories on disk are shared: the cases only read them)."""
    src = w.chain
    chain = Chain.__new__(Chain)
    chain.genesis, chain.registry = src.genesis, src.registry
    ledger = chain.ledger = copy.copy(src.ledger)
    ledger.state, ledger.nodes, ledger.tx_index = dict(ledger.state), dict(ledger.nodes), dict(ledger.tx_index)
    ledger.index = {name: dict(rows) for name, rows in ledger.index.items()}
    ledger.index_heights = {name: dict(rows) for name, rows in ledger.index_heights.items()}
    ledger.headers, ledger.blocks, ledger.window = list(ledger.headers), list(ledger.blocks), ledger.window.copy()
    chain.nonces = itertools.count(10_000 * next(_copies))
    out = copy.copy(w)
    out.chain = chain
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtaWorld]:
    yield base(tmp_path_factory.mktemp("ota"))


# ---------------------------------------------------------------- the messages


def oem2_root(w: OtaWorld) -> RegisterRepository:
    keys = role_keys(1, "perm")
    return RegisterRepository(kind="image", root=signed_text(
        new_root(keys, expires=tuf_time(now(w.chain) + 365 * DAY)), *keys["root"]))


def rotation(w: OtaWorld) -> RotateRoot:
    anchored = REPOSITORIES.get(w.chain.ledger, "oem", "director")
    root = Metadata[Root].from_bytes(anchored.root.encode()).signed
    root.version += 1
    root.expires = tuf_time(now(w.chain) + 365 * DAY)
    return RotateRoot(kind="director", root=signed_text(root, *w.director.role_keys("root")))


def anchor(w: OtaWorld) -> AnchorRelease:
    return AnchorRelease(targets=release_text(w, target("brake/brake-3.bin", image("brake", 3), BRAKE_HW, 3)))


def fit(vin: str) -> Callable[[OtaWorld], FitEcus]:
    return lambda w: FitEcus(vin=vin, ecus=[EcuSpec(ecu="adas-1", hardware_id="adas-v1")])


def brake_v2(vin: str) -> Callable[[OtaWorld], ReportManifest]:
    return lambda w: ReportManifest(vin=vin, t=now(w.chain), installed=installed(
        ("brake-1", "brake/brake-2.bin", image("brake", 2))))


@dataclass(frozen=True)
class Case:
    """One message sent by each actor in turn. ``roles``: the roles that may send it at all (None: any
    key); ``allowed``: the actors it passes for; ``refusal``: the code for the others that may send it;
    ``overrides``: actors refused with another code."""

    name: str
    msg: Callable[[OtaWorld], Any]
    roles: frozenset[str] | None
    allowed: frozenset[str]
    refusal: str = ""
    overrides: dict[str, str] = field(default_factory=dict)


MAKERS = frozenset({"manufacturer"})

CASES: list[Case] = [
    # a maker's repositories: its member keys with the manufacturer role, for its own organisation
    Case("register_repository", oem2_root, MAKERS, frozenset({"oem2"}), "repository_exists"),
    Case("rotate_root", rotation, MAKERS, OEM_KEYS, "unknown_repository"),  # oem2 has no director
    Case("anchor_release", anchor, MAKERS, OEM_KEYS, "unknown_repository"),
    # a maker fits the ECUs of the vehicles it made
    Case("fit_ecus", fit(VIN), MAKERS, OEM_KEYS, "not_vehicle_maker"),
    Case("fit_ecus_of_another_holders_car", fit(OTHER_VIN), MAKERS, OEM_KEYS, "not_vehicle_maker"),
    # a manifest: sent by any key; only a current device key of that vehicle passes
    Case("report_manifest", brake_v2(VIN), None, frozenset({"device"}), "not_vehicle_device",
         {"revoked_device": "device_key_revoked"}),
    Case("report_manifest_of_another_car", brake_v2(OTHER_VIN), None, frozenset({"other_device"}),
         "not_vehicle_device"),
]


def expected_code(case: Case, actor: str) -> str | None:
    """None when ``actor`` may send it; else the refusal code (a revoked member key is refused first)."""
    if actor == "oem_retired":
        return "revoked_key"
    return permission_code(case, actor, ROLES)


MATRIX = [pytest.param(case, actor, id=f"{case.name}-{actor}") for case in CASES for actor in ACTORS]


@pytest.mark.parametrize(("case", "actor"), MATRIX)
def test_permission_matrix(world: OtaWorld, case: Case, actor: str) -> None:
    w = fork(world)
    msg = case.msg(w)
    before = snapshot(w.chain)
    receipt = send(w.chain, ACTORS[actor], msg)
    code = expected_code(case, actor)
    if code is None:
        assert receipt.ok, receipt
        assert snapshot(w.chain)[:2] != before[:2]
    else:
        assert (receipt.ok, receipt.code) == (False, code), receipt
        assert snapshot(w.chain)[:2] == before[:2], "a refused transaction changed the ledger"


def test_matrix_covers_every_software_message(world: OtaWorld) -> None:
    declared = {t for t in default_registry().messages if t.startswith("software.")}
    assert {type(case.msg(world)).__struct_config__.tag for case in CASES} == declared


def test_the_maker_may_fit_every_vehicle_it_made_but_no_other(world: OtaWorld) -> None:
    """oem2 registers a car of its own: it fits that one, and oem does not."""
    w = fork(world)
    theirs = vin_for(WMI["oem2"], 1)
    ok(w.chain, admin("oem2"), register_msg(theirs))
    ok(w.chain, admin("oem2"), fit(theirs)(w))
    r = send(w.chain, OEM, fit(theirs)(w))
    assert (r.code, r.detail["manufacturer"]) == ("not_vehicle_maker", "oem2")


# ---------------------------------------------------------------- who reads what


def member(org: str) -> Caller:
    return Caller(admin(org).did, org, frozenset(ALL_ORGS[org]))


HOLDER = Caller(ALICE.did)
OTHER_HOLDER = Caller(BOB.did)
DEVICE_KEY = Caller(DEVICE.did, known=False)  # a device key is no member and holds nothing
OTHER_DEVICE = Caller(BOB_DEVICE.did, known=False)
OUTSIDER = Caller(K("outsider").did, known=False)
NODE = Caller(K("reg-node").did, "reg", node=True)
MAKER, OTHER_MAKER, CONSENTED, INSURER, LENDER, REGULATOR, WORKSHOP = (
    member(o) for o in ("oem", "oem2", "dealer", "ins", "bank", "reg", "shop"))
ENGINEER_CALLER = Caller(ENGINEER.did, "oem", frozenset({"manufacturer"}))

LABELS = {HOLDER: "holder", OTHER_HOLDER: "other_holder", DEVICE_KEY: "device", OTHER_DEVICE: "other_device",
          OUTSIDER: "outsider", ANONYMOUS: "unsigned", NODE: "node", MAKER: "maker", ENGINEER_CALLER: "engineer",
          OTHER_MAKER: "other_maker", CONSENTED: "consented", INSURER: "insurer", LENDER: "lender",
          REGULATOR: "regulator", WORKSHOP: "workshop"}
EVERYONE = list(LABELS)


def read_world(tmp: Path) -> OtaWorld:
    """``ota_world`` with release 2, brake v2 installed on Alice's car, a lien of the bank on it, Alice's
    consent to dealer for its history and to ins for its driving data only."""
    w = ota_world(tmp)
    ok(w.chain, admin("bank"), RecordLien(vin=VIN, amount=5_000, currency="EUR"), ALICE)
    ok(w.chain, ALICE, GrantConsent(vin=VIN, org="dealer", categories=["history"], purpose="trade-in",
                                    until=now(w.chain) + 300 * DAY))
    w.release(("brake/brake-2.bin", image("brake", 2), BRAKE_HW, 2, ""))
    assert w.report(("brake-1", "brake/brake-2.bin", image("brake", 2))).ok
    return w


def codes(chain: Chain, policy: Any, obj: Any, callers: list[Caller]) -> dict[str, str]:
    """caller label -> "" if it reads, else the refusal code (as the node's reader judges it)."""
    view = SqlView(chain)
    out = {}
    for c in callers:
        try:
            check_read(policy, view, c, obj, "it")
            out[LABELS[c]] = ""
        except ReadRefused as err:
            out[LABELS[c]] = err.code
    return out


#: What every vehicle checks: any signed request.
ANCHORS = {**{k: "" for k in LABELS.values()}, "unsigned": "read_refused"}
#: A vehicle's history data.
HISTORY = {"holder": "", "device": "", "maker": "", "engineer": "", "lender": "", "consented": "", "regulator": "",
           "node": "", "other_holder": "consent_required", "other_device": "unknown_caller",
           "outsider": "unknown_caller", "unsigned": "consent_required", "other_maker": "consent_required",
           "insurer": "consent_required", "workshop": "consent_required"}
#: The maker's organisation (and those who read everything).
MAKERS_OWN = {**{k: "not_your_data" for k in LABELS.values()}, "maker": "", "engineer": "", "regulator": "",
              "node": "", "device": "unknown_caller", "other_device": "unknown_caller", "outsider": "unknown_caller"}

BRAKE2_SHA = sha256(image("brake", 2))
QUERIES = [
    ("repository", sq.RepositoryQuery(maker="oem"), ANCHORS),
    ("releases", sq.ReleasesQuery(maker="oem"), ANCHORS),
    ("release", sq.ReleaseQuery(maker="oem", version=2), ANCHORS),
    ("image", sq.ImageQuery(maker="oem", sha256=BRAKE2_SHA), ANCHORS),
    ("inventory", sq.VinQuery(vin=VIN), HISTORY),
    ("installs", sq.VinPage(vin=VIN), HISTORY),
    ("running", sq.RunningQuery(maker="oem", sha256=BRAKE2_SHA), MAKERS_OWN),
]


@pytest.mark.parametrize("query,params,expected", [pytest.param(*q, id=q[0]) for q in QUERIES])
def test_each_query_is_read_by_its_parties_only(tmp_path: Path, query: str, params: Any,
                                                expected: dict[str, str]) -> None:
    w = read_world(tmp_path)
    spec = w.chain.registry.queries[("software", query)]
    assert codes(w.chain, spec.read, params, EVERYONE) == expected
    assert spec.func(SqlView(w.chain), params)  # and it answers


def test_every_software_query_has_a_row() -> None:
    declared = {q for m, q in default_registry().queries if m == "software"}
    assert {q for q, _, _ in QUERIES} == declared


def test_running_is_the_org_named_in_the_query_not_the_image_maker(tmp_path: Path) -> None:
    """oem2 may ask which of its own vehicles run a hash (none), never which of oem's do."""
    w = read_world(tmp_path)
    policy = w.chain.registry.queries[("software", "running")].read
    assert codes(w.chain, policy, sq.RunningQuery(maker="oem2", sha256=BRAKE2_SHA), [MAKER, OTHER_MAKER]) == {
        "maker": "not_your_data", "other_maker": ""}
    assert sq.running(SqlView(w.chain), sq.RunningQuery(maker="oem2", sha256=BRAKE2_SHA))["vehicles"] == []


def test_a_sale_moves_the_software_history_to_the_new_holder(tmp_path: Path) -> None:
    w = read_world(tmp_path)
    ok(w.chain, ALICE, TransferTitle(vin=VIN, to=BOB.did), BOB, admin("bank"))
    policy = w.chain.registry.queries[("software", "inventory")].read
    assert codes(w.chain, policy, sq.VinQuery(vin=VIN), [HOLDER, OTHER_HOLDER, CONSENTED, MAKER, DEVICE_KEY]) == {
        "holder": "consent_required", "other_holder": "", "consented": "consent_required", "maker": "",
        "device": ""}


# ---------------------------------------------------------------- events


def events_of(chain: Chain) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for block in chain.ledger.blocks:
        for receipt in block.receipts:
            for ev in receipt.events:
                out.setdefault(ev["type"], []).append(ev)
    return out


EVENTS = {
    "software.repository_anchored": ANCHORS,
    "software.release_anchored": ANCHORS,
    "software.ecus_fitted": HISTORY,
    "software.installed": HISTORY,
}


def test_each_event_type_is_read_by_its_parties(tmp_path: Path) -> None:
    w = read_world(tmp_path)
    seen = events_of(w.chain)
    for etype, expected in EVENTS.items():
        policy = w.chain.registry.event_reads[etype]
        assert codes(w.chain, policy, seen[etype][-1], EVERYONE) == expected, etype


def test_every_software_event_type_has_a_row() -> None:
    declared = {t for t in default_registry().event_reads if t.startswith("software.")}
    assert set(EVENTS) == declared
