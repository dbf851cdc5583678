"""Shared fixtures and the fraud catalogue for the vehicle history report tests.

Loaded as a pytest plugin (``pytest_plugins = ["helpers.reports"]`` in each report test module), so
its session fixtures exist once per session, whichever report test files run:

- ``world``: ``blokauto demo`` run once into a temporary folder; the demo car's report taken when
  the demo ended (``old``: 9 entries, block 22); then a node process started on that folder (stopped
  by its PID at the end of the session) and more history recorded through it, so a newer report of
  the same car (``new``: 15 entries, the demo's 13 plus two) and a second car with a richer life (``rich``: brands, a
  replaced cluster, a reading beyond the mechanical limit, taxi use, reported stolen) exist too; then two recalls
  whose rules no other report exercises (``recall_reports``, see ``_live_recalls``): a serial range of a serialized
  part, with cars carrying the serial at each end of the range and just outside it on either side, and a VIN range
  with one car registered before the campaign opened and one registered after it (a late registration).
- ``browser``: one Chromium (Debian's, never downloaded) driven by Playwright.

``CASES`` is the catalogue of genuine, stale and tampered reports shared by the tampering, browser
and cross-check tests: each builder returns a ``Case`` (the report, the trust anchor to check it
with, freshness options, and the words the refusal must contain).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec
import pytest

from blokauto.cli.demo import DEMO_VIN
from blokauto.core.block import Genesis, Header, attestation_bytes
from blokauto.core.crypto import KeyPair
from blokauto.core.encoding import canonical, decode
from blokauto.verify import TrustAnchor, VerificationError
from blokauto.verify.report import summarize, verify_report

from conftest import ROOT, NodeProcess, consortium

VIN = DEMO_VIN
RICH_VIN = "WZZ3E5C27NM400200"
DAY_MS = 86_400_000
ARTIFACTS = ROOT / "test-artifacts"
from blokauto.bench.harness import CHROMIUM, CHROMIUM_ARGS, chromium  # noqa: E402,F401  (one Chromium setup)
BADGE_SETTLED = "document.getElementById('badge').dataset.state !== 'pending'"


# ---------------------------------------------------------------- the demo world


@dataclass
class World:
    data: Path
    genesis: Genesis
    old: dict[str, Any]            # the demo car when the demo ended
    new: dict[str, Any]            # the same car after two more entries
    rich: dict[str, Any]           # a second car with brands, a replaced cluster, taxi use, stolen
    node: NodeProcess              # serving ``data``
    node_key: KeyPair              # the consortium's (only) node key
    other_genesis: Genesis         # another consortium (chain "test-chain")
    twin_genesis: Genesis          # same chain id "blokauto-demo", other organisations and node keys
    #: VIN -> its report, or why the node (or the client's check) refused it (see ``_live_recalls``)
    recall_reports: dict[str, dict[str, Any] | str] = field(default_factory=dict)
    #: campaign number -> the VINs the node's recalls module says it affected (``recalls/affected``)
    recall_affected: dict[str, list[str]] = field(default_factory=dict)
    cases: dict[str, "Case"] = field(default_factory=dict)

    @property
    def anchor(self) -> TrustAnchor:
        return TrustAnchor.from_genesis(self.genesis)

    def recall_report(self, vin: str) -> dict[str, Any]:
        """The genuine report of a recall car; fails the calling test if the node would not serve it
        (it checks each report with the Python verifier before serving it, and so does the client)."""
        report = self.recall_reports[vin]
        if isinstance(report, str):
            pytest.fail(f"the genuine report of {vin} could not be obtained: {report}")
        return report

    def case(self, name: str) -> "Case":
        if name not in self.cases:
            self.cases[name] = CASES[name].build(self)
        return self.cases[name]


def _send(client: Any, msg: Any, sender: KeyPair, *cosigners: KeyPair) -> int:
    info = client.send(msg, sender, *cosigners)
    assert info.ok, f"{type(msg).__name__} failed: {info.error}"
    return info.height


def _build_local_report(data: Path, vin: str) -> dict[str, Any]:
    from blokauto.modules import default_registry
    from blokauto.report import build_report
    from blokauto.store.blocks import BlockLog
    from blokauto.store.state import StateStore

    blocks, state = BlockLog(data / "chain.db"), StateStore(data / "state.db", default_registry())
    try:
        return build_report(blocks, state, vin)
    finally:
        blocks.close()
        state.close()


def _live_more_history(node: NodeProcess, data: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Through the node: two more entries for the demo car, and a second car's eventful life."""
    from blokauto.client import Client
    from blokauto.keystore import KeyStore
    from blokauto.modules.vehicles import messages as veh

    keys = KeyStore(data / "keys")
    kba, bmw = keys.load("kba-admin"), keys.load("bavaria-motors-admin")
    allied, shop = keys.load("allied-insurance-admin"), keys.load("meister-werkstatt-admin")
    with Client(node.url, trust=data / "genesis.json", key=node.key) as c:
        _send(c, veh.RecordService(vin=VIN, odometer=33_000, items=["tyres", "wipers"]), shop)
        h = _send(c, veh.RecordInspection(vin=VIN, odometer=33_100, result="pass"), kba)
        new = c.report(VIN, min_height=h)
        _send(c, veh.RegisterVehicle(vin=RICH_VIN, make="Bavaria", model="E3", model_year=2021, body="hatchback",
                                     powertrain="ice", plant="Leipzig", build_date="2021-03-02", country="DE",
                                     odometer_limit_km=99_999), bmw)
        _send(c, veh.ChangeRegistration(vin=RICH_VIN, usage="taxi"), kba)
        _send(c, veh.RecordInspection(vin=RICH_VIN, odometer=40_000, result="fail",
                                      defects=["brake discs", "left tail lamp"]), kba)
        _send(c, veh.RecordService(vin=RICH_VIN, odometer=25_000, unit="mi", items=["oil"]), shop)
        _send(c, veh.ReplaceCluster(vin=RICH_VIN, old_value=52_000, new_value=0), shop)
        _send(c, veh.RecordOdometer(vin=RICH_VIN, value=120_000), kba)
        _send(c, veh.RecordAccident(vin=RICH_VIN, date="2024-05-01", severity="severe",
                                    impact_areas=["rear", "rear_left"], structural_damage=True, total_loss=True,
                                    reference="CLAIM-2024-9912"), allied)
        _send(c, veh.BrandTitle(vin=RICH_VIN, brand="flood", reason="river flood, May 2024"), allied)
        h = _send(c, veh.BrandTitle(vin=RICH_VIN, brand="stolen"), kba)
        rich = c.report(RICH_VIN, min_height=h)
    return new, rich


# The recalls that no other report of the corpus exercises. Each car carries one part, or none, so
# each report shows one rule's verdict; the expected open recalls are the documented rules
# (docs/recalls.md, "Affected vehicles"): ranges are inclusive, and a vehicle registered after a
# campaign opened is not affected by it, even when its VIN is in the campaign's range.
SERIAL_PN = "BM-INF-12"
SERIAL_CAMPAIGN = "25V-031"
SERIAL_RANGE = ("INF-0100", "INF-0200")
SERIAL_CARS = {  # VIN -> the serial of the inflator fitted at the line
    "WZZ3E5C22NM400501": "INF-0100",   # the range's first serial: affected
    "WZZ3E5C22NM400502": "INF-0200",   # its last serial: affected
    "WZZ3E5C22NM400503": "INF-0099",   # just below it: not affected
    "WZZ3E5C22NM400504": "INF-0201",   # just above it: not affected
}
VIN_CAMPAIGN = "25V-044"
VIN_RANGE = ("WZZ3E5C22NM400600", "WZZ3E5C22NM400699")  # none of the other cars' VINs is in it
EARLY_VIN = "WZZ3E5C22NM400610"  # registered before the campaign opened: affected
LATE_VIN = "WZZ3E5C22NM400620"   # registered after it opened (a late registration): not affected
#: VIN -> the numbers of the open campaigns its report must list (the rules above)
RECALL_EXPECTED = {"WZZ3E5C22NM400501": [SERIAL_CAMPAIGN], "WZZ3E5C22NM400502": [SERIAL_CAMPAIGN],
                   "WZZ3E5C22NM400503": [], "WZZ3E5C22NM400504": [], EARLY_VIN: [VIN_CAMPAIGN], LATE_VIN: []}


def _live_recalls(node: NodeProcess, data: Path) -> tuple[dict[str, dict[str, Any] | str], dict[str, list[str]]]:
    """Through the node: a serial-range recall of an airbag inflator Bavaria Motors makes and fits
    itself, and a regulator's VIN-range recall opened between two registrations in its range.

    Returns each car's report (or, as text, why it could not be had: a broken rule in the Python
    verifier makes the node refuse to serve a genuine report, as damaged data, and stop serving
    reports; that must fail the cases, not the whole session) and, per campaign, the VINs the
    recalls module resolved as affected."""
    from blokauto.client import Client
    from blokauto.keystore import KeyStore
    from blokauto.modules.parts import messages as parts
    from blokauto.modules.recalls import messages as recalls
    from blokauto.modules.recalls.state import Scope, SerialRange, VinRange
    from blokauto.modules.vehicles import messages as veh

    keys = KeyStore(data / "keys")
    kba, bmw = keys.load("kba-admin"), keys.load("bavaria-motors-admin")

    def register(c: Client, vin: str) -> int:
        return _send(c, veh.RegisterVehicle(vin=vin, make="Bavaria", model="E3", model_year=2025, body="hatchback",
                                            powertrain="bev", plant="Leipzig", build_date="2025-01-20", country="DE"),
                     bmw)

    def opened(c: Client, number: str, component: str, scope: Scope, sender: KeyPair) -> tuple[int, int]:
        info = c.send(recalls.OpenCampaign(number=number, component=component, summary=f"{component} recall.",
                                           consequence="Risk of injury.", remedy="Replace it free of charge.",
                                           scope=scope), sender)
        assert info.ok, f"OpenCampaign {number} failed: {info.error}"
        return next(e["campaign"] for e in info.events if e["type"] == "recalls.campaign_opened"), info.height

    with Client(node.url, trust=data / "genesis.json", key=node.key) as c:
        _send(c, parts.RegisterPartType(part_number=SERIAL_PN, name="driver airbag inflator", category="airbag",
                                        serialized=True), bmw)
        _send(c, parts.MintParts(part_number=SERIAL_PN, serials=sorted(SERIAL_CARS.values()), produced="2025-01-06",
                                 plant="Leipzig"), bmw)
        for vin, serial in SERIAL_CARS.items():
            register(c, vin)
            _send(c, parts.Install(vin=vin, items=[parts.InstallItem(part=f"{SERIAL_PN}:{serial}",
                                                                     position="steering wheel")]), bmw)
        serial_id, _ = opened(c, SERIAL_CAMPAIGN, f"driver airbag inflator ({SERIAL_PN})",
                              Scope(serial_ranges=[SerialRange(SERIAL_PN, *SERIAL_RANGE)]), bmw)
        register(c, EARLY_VIN)
        vin_id, at = opened(c, VIN_CAMPAIGN, "rear axle bolts", Scope(vin_ranges=[VinRange(*VIN_RANGE)]), kba)
        h = register(c, LATE_VIN)
        assert h > at, "the late car must be registered in a later block than the campaign opened"
        affected = {number: [row["vin"] for row in c.query("recalls", "affected", campaign=cid)["vehicles"]]
                    for number, cid in ((SERIAL_CAMPAIGN, serial_id), (VIN_CAMPAIGN, vin_id))}
        reports: dict[str, dict[str, Any] | str] = {}
        for vin in RECALL_EXPECTED:
            try:
                reports[vin] = c.report(vin, min_height=h)
            except Exception as exc:  # noqa: BLE001 - reported by the cases that need this report
                reports[vin] = f"{type(exc).__name__}: {exc}"
    return reports, affected


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory, copy_demo: Callable[[Path], str]) -> Iterator[World]:
    data = tmp_path_factory.mktemp("reports") / "demo"
    copy_demo(data)
    old = _build_local_report(data, VIN)
    genesis = decode((data / "genesis.json").read_bytes(), Genesis)
    from blokauto.keystore import KeyStore

    node_key = KeyStore(data / "keys").load("kba-node")
    node = NodeProcess(data)
    try:
        new, rich = _live_more_history(node, data)
        recall_reports, recall_affected = _live_recalls(node, data)
        yield World(data, genesis, old, new, rich, node, node_key,
                    other_genesis=consortium(), twin_genesis=consortium(chain=genesis.chain, time=genesis.time),
                    recall_reports=recall_reports, recall_affected=recall_affected)
    finally:
        try:
            node.stop()  # SIGTERM by PID
        finally:
            if node.proc.poll() is None:
                node.kill()


def signature_headers(method: str, url: str, key: KeyPair, body: bytes = b"") -> dict[str, str]:
    """The RFC 9421 signature headers of one request to ``url`` (absolute) signed by ``key``."""
    from blokauto.http_signatures import sign_request

    headers: dict[str, str] = {}
    sign_request(key, method, url, headers, body)
    return headers


def sign_pages(context: Any, url: str, key: KeyPair) -> None:
    """Every request the browser ``context`` sends to the node at ``url`` is signed with ``key``, as
    the reader's own key would sign it (the report routes answer signed requests or share links)."""
    def sign(route: Any) -> None:
        req = route.request
        route.continue_(headers={**req.headers, **signature_headers(req.method, req.url, key,
                                                                    req.post_data_buffer or b"")})

    context.route(f"{url}/**", sign)
    context.route(url, sign)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: while Playwright's sync API runs, its event loop is this thread's
    running loop and ``asyncio.run`` fails, so a browser kept open would break the tests a worker runs
    after this module (``network_up`` and helpers.network use ``asyncio.run``)."""
    with chromium() as b:  # Debian's Chromium, launched as the benches launch it
        yield b


# ---------------------------------------------------------------- report surgery


def record_of(report: dict[str, Any]) -> dict[str, Any]:
    return msgspec.json.decode(report["evidence"]["vehicle"]["raw"])


def entries_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [msgspec.json.decode(e) for e in report["evidence"]["entries"]]


def header_of(report: dict[str, Any]) -> Header:
    return msgspec.json.decode(report["evidence"]["checkpoint"]["header_raw"], type=Header)


def consistent(report: dict[str, Any], entries: list[dict[str, Any]], *, renumber: bool = True) -> dict[str, Any]:
    """What a careful forger does: new entry bytes, and the timeline and summary that match them."""
    x = copy.deepcopy(report)
    if renumber:
        entries = [{**e, "seq": i + 1} for i, e in enumerate(entries)]
    x["evidence"]["entries"] = [canonical(e).decode() for e in entries]
    x["timeline"] = copy.deepcopy(entries)
    x["summary"] = summarize(record_of(x), entries)
    return x


def edited(report: dict[str, Any], fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    x = copy.deepcopy(report)
    fn(x)
    return x


def seq_of(report: dict[str, Any], kind: str) -> int:
    return next(e["seq"] for e in report["timeline"] if e["type"] == kind)


# ---------------------------------------------------------------- the catalogue


@dataclass
class Case:
    report: dict[str, Any]
    genesis: Genesis                    # the verifier's trust anchor
    expect: str | None                  # None: must verify; else words the refusal must contain
    min_height: int | None = None
    now_ms: int | None = None
    max_age_ms: int | None = None

    def verify(self) -> Any:
        return verify_report(self.report, TrustAnchor.from_genesis(self.genesis), now_ms=self.now_ms,
                             max_age_ms=self.max_age_ms, min_height=self.min_height)

    def js_opts(self) -> dict[str, Any]:
        opts = {"nowMs": self.now_ms, "maxAgeMs": self.max_age_ms, "minHeight": self.min_height}
        return {k: v for k, v in opts.items() if v is not None}

    @property
    def freshness(self) -> bool:
        return self.min_height is not None or self.max_age_ms is not None


@dataclass(frozen=True)
class Builder:
    name: str
    kind: str          # genuine | fraud | stale | variant
    build: Callable[[World], Case]
    #: set when a verifier gets the case wrong (a real bug): which one, and why
    bug_python: str | None = None   # the Python verifier's verdict is wrong
    bug_agree: str | None = None    # the verifiers disagree (cross-check)
    bug_page: str | None = None     # the page's badge is wrong


CASES: dict[str, Builder] = {}


def case(name: str, kind: str, **bugs: str) -> Callable[[Callable[[World], Case]], Callable[[World], Case]]:
    def register(fn: Callable[[World], Case]) -> Callable[[World], Case]:
        CASES[name] = Builder(name, kind, fn, **bugs)
        return fn
    return register


def names(*kinds: str) -> list[str]:
    return [n for n, b in CASES.items() if b.kind in kinds]


HISTORY = "the history is incomplete or altered"
NOT_PROVEN = "is not proven holding that value"
BAD_SIG = "does not verify for block"
NOT_NODE = "which is not a node key of the consortium"
STALE = "the report is stale"
SUMMARY = "the summary is not what the entries say"
OTHER_ANCHOR = "the report is for another chain or genesis than the trust anchor"

BUG_BOOL = ("BUG: verify/report.py compares timeline and summary with Python ==, where False == 0 and True == 1, "
            "so a summary or timeline value changed between a boolean and an integer passes (verifier.js refuses it)")
BUG_AS_OF = ("BUG: as_of (the block and date the page and PDF show as the report's date) is never checked against "
             "the checkpoint header, so an old report can claim to be current and still verify")


# genuine


@case("genuine_old", "genuine")
def _genuine_old(w: World) -> Case:
    return Case(w.old, w.genesis, None)


@case("genuine_new", "genuine")
def _genuine_new(w: World) -> Case:
    return Case(w.new, w.genesis, None)


@case("genuine_rich", "genuine")
def _genuine_rich(w: World) -> Case:
    return Case(w.rich, w.genesis, None)


@case("old_report_within_max_age", "genuine")
def _old_fresh_enough(w: World) -> Case:
    t = header_of(w.old).time
    return Case(w.old, w.genesis, None, now_ms=t + 29 * DAY_MS, max_age_ms=30 * DAY_MS,
                min_height=header_of(w.old).height)


# recalls: a serial range (its ends, just outside it) and a VIN range with a late registration


def _recall_car(vin: str) -> Callable[[World], Case]:
    return lambda w: Case(w.recall_report(vin), w.genesis, None)


_SERIAL_FIRST, _SERIAL_LAST, _SERIAL_BELOW, _SERIAL_ABOVE = SERIAL_CARS
case("recall_serial_range_first_serial", "genuine")(_recall_car(_SERIAL_FIRST))
case("recall_serial_range_last_serial", "genuine")(_recall_car(_SERIAL_LAST))
case("recall_serial_range_just_below", "genuine")(_recall_car(_SERIAL_BELOW))
case("recall_serial_range_just_above", "genuine")(_recall_car(_SERIAL_ABOVE))
case("recall_vin_range_registered_before", "genuine")(_recall_car(EARLY_VIN))
case("recall_vin_range_late_registration", "genuine")(_recall_car(LATE_VIN))


def _with_recalls(report: dict[str, Any], recalls: list[dict[str, Any]]) -> dict[str, Any]:
    """What a careful forger does: the summary (warnings included) recomputed for other open recalls."""
    x = copy.deepcopy(report)
    x["summary"] = summarize(record_of(x), entries_of(x), recalls)
    return x


def _recall_hidden(vin: str) -> Callable[[World], Case]:
    def build(w: World) -> Case:
        report = w.recall_report(vin)
        assert report["summary"]["open_recalls"], f"{vin} should have an open recall to hide"
        return Case(_with_recalls(report, []), w.genesis, f"{SUMMARY}: summary.open_recalls")
    return build


def _recall_claimed(vin: str, donor: str) -> Callable[[World], Case]:
    """``vin``'s report claiming the open recall ``donor`` has (the same campaign)."""
    def build(w: World) -> Case:
        report = w.recall_report(vin)
        assert report["summary"]["open_recalls"] == [], f"{vin} should have no open recall"
        return Case(_with_recalls(report, copy.deepcopy(w.recall_report(donor)["summary"]["open_recalls"])), w.genesis,
                    f"{SUMMARY}: summary.open_recalls")
    return build


case("serial_recall_hidden_at_first_serial", "fraud")(_recall_hidden(_SERIAL_FIRST))
case("serial_recall_hidden_at_last_serial", "fraud")(_recall_hidden(_SERIAL_LAST))
case("serial_recall_claimed_just_below", "fraud")(_recall_claimed(_SERIAL_BELOW, _SERIAL_FIRST))
case("serial_recall_claimed_just_above", "fraud")(_recall_claimed(_SERIAL_ABOVE, _SERIAL_LAST))
case("vin_range_recall_hidden", "fraud")(_recall_hidden(EARLY_VIN))
case("late_registration_recall_claimed", "fraud")(_recall_claimed(LATE_VIN, EARLY_VIN))


# the history


@case("drop_accident", "fraud")
def _drop_accident(w: World) -> Case:
    seq = seq_of(w.new, "accident")
    entries = [e for e in entries_of(w.new) if e["seq"] != seq]
    for e in entries:
        if e["data"].get("accident") == seq:
            e["data"]["accident"] = 0  # the repair no longer points at a crash
    x = consistent(w.new, entries)
    assert x["summary"]["accidents"] == [] and len(x["timeline"]) == len(w.new["timeline"]) - 1
    return Case(x, w.genesis, HISTORY)


@case("lower_odometer", "fraud")
def _lower_odometer(w: World) -> Case:
    entries = entries_of(w.new)
    service = next(e for e in entries if e["type"] == "service")
    service["data"].update(km=13_050, odometer=13_050)  # was 30,050 km
    x = consistent(w.new, entries, renumber=False)
    assert 13_050 in [p["km"] for p in x["summary"]["odometer"]["series"]]
    return Case(x, w.genesis, HISTORY)


@case("hide_rollback_flag", "fraud")
def _hide_rollback(w: World) -> Case:
    entries = entries_of(w.new)
    for e in entries:
        e["data"].pop("flag", None)
    x = consistent(w.new, entries, renumber=False)
    assert x["summary"]["odometer"]["suspected_rollbacks"] == []
    return Case(x, w.genesis, HISTORY)


@case("reorder_entries", "fraud")
def _reorder(w: World) -> Case:
    entries = entries_of(w.new)
    entries[3], entries[4] = entries[4], entries[3]  # the service before the telematics reading
    return Case(consistent(w.new, entries), w.genesis, HISTORY)


@case("add_entry", "fraud")
def _add_entry(w: World) -> Case:
    entries = entries_of(w.new)
    extra = {**copy.deepcopy(next(e for e in entries if e["type"] == "service")), "seq": len(entries) + 1}
    return Case(consistent(w.new, entries + [extra]), w.genesis, HISTORY)


# the checkpoint and its attestations


@case("checkpoint_of_newer_height", "fraud")
def _newer_checkpoint(w: World) -> Case:
    x = copy.deepcopy(w.old)
    x["evidence"]["checkpoint"] = copy.deepcopy(w.new["evidence"]["checkpoint"])
    x["as_of"] = copy.deepcopy(w.new["as_of"])
    return Case(x, w.genesis, NOT_PROVEN)


@case("checkpoint_of_older_height", "fraud")
def _older_checkpoint(w: World) -> Case:
    x = copy.deepcopy(w.new)
    x["evidence"]["checkpoint"] = copy.deepcopy(w.old["evidence"]["checkpoint"])
    x["as_of"] = copy.deepcopy(w.old["as_of"])
    return Case(x, w.genesis, NOT_PROVEN)


@case("header_with_other_state_root", "fraud")
def _other_root(w: World) -> Case:
    header = msgspec.structs.replace(header_of(w.old), state_root=header_of(w.new).state_root)
    x = copy.deepcopy(w.new)  # its record and proof lead to that root, but the header was never signed
    x["evidence"]["checkpoint"] = {"header_raw": canonical(header).decode(),
                                   "attestations": copy.deepcopy(w.old["evidence"]["checkpoint"]["attestations"])}
    return Case(x, w.genesis, BAD_SIG)


@case("attestation_by_unknown_key", "fraud")
def _unknown_key(w: World) -> Case:
    forger = KeyPair.generate()
    sig = forger.sign(attestation_bytes(header_of(w.new).hash())).hex()
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"].update(attestations=[{"node": forger.did, "sig": sig}]))
    return Case(x, w.genesis, NOT_NODE)


@case("unknown_attestation_added", "fraud")
def _unknown_added(w: World) -> Case:
    forger = KeyPair.generate()
    sig = forger.sign(attestation_bytes(header_of(w.new).hash())).hex()
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"]["attestations"].append({"node": forger.did, "sig": sig}))
    return Case(x, w.genesis, NOT_NODE)


@case("node_key_signed_another_header", "fraud")
def _signed_other(w: World) -> Case:
    sig = w.node_key.sign(attestation_bytes(header_of(w.old).hash())).hex()  # a real signature, for block 22
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"].update(attestations=[{"node": w.node_key.did, "sig": sig}]))
    return Case(x, w.genesis, BAD_SIG)


@case("node_key_signature_corrupted", "fraud")
def _corrupted(w: World) -> Case:
    def flip(r: dict[str, Any]) -> None:
        att = r["evidence"]["checkpoint"]["attestations"][0]
        att["sig"] = att["sig"][:10] + format(int(att["sig"][10], 16) ^ 1, "x") + att["sig"][11:]
    return Case(edited(w.new, flip), w.genesis, BAD_SIG)


@case("node_key_signed_without_attest_tag", "fraud")
def _untagged(w: World) -> Case:
    sig = w.node_key.sign(header_of(w.new).hash()).hex()  # right key, right header, wrong domain
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"].update(attestations=[{"node": w.node_key.did, "sig": sig}]))
    return Case(x, w.genesis, BAD_SIG)


@case("no_attestations", "fraud")
def _no_attestations(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"].update(attestations=[]))
    return Case(x, w.genesis, "valid attestations; the quorum is 1")


# replays of an old report


@case("replay_old_below_min_height", "stale")
def _replay_min_height(w: World) -> Case:
    return Case(w.old, w.genesis, STALE, min_height=header_of(w.new).height)


@case("replay_old_too_old", "stale")
def _replay_max_age(w: World) -> Case:
    return Case(w.old, w.genesis, STALE, now_ms=header_of(w.old).time + 31 * DAY_MS, max_age_ms=30 * DAY_MS)


@case("old_checkpoint_with_new_entries", "fraud")
def _old_cp_new_entries(w: World) -> Case:
    return Case(consistent(w.old, entries_of(w.new)), w.genesis, HISTORY)


@case("new_checkpoint_with_old_entries", "fraud")
def _new_cp_old_entries(w: World) -> Case:
    return Case(consistent(w.new, entries_of(w.old)), w.genesis, HISTORY)


@case("as_of_claims_newer_block", "fraud")
def _as_of(w: World) -> Case:
    x = edited(w.old, lambda r: r.update(as_of=copy.deepcopy(w.new["as_of"])))
    return Case(x, w.genesis, f"but its checkpoint is block {w.old['as_of']['height']} at time {w.old['as_of']['time']}")


# the summary and the timeline


def _summary_case(fn: Callable[[dict[str, Any]], Any], path: str) -> Callable[[World], Case]:
    return lambda w: Case(edited(w.new, lambda r: fn(r["summary"])), w.genesis, f"{SUMMARY}: {path}")


case("summary_owners", "fraud")(_summary_case(lambda s: s.update(owners=1), "summary.owners"))
case("summary_warnings", "fraud")(_summary_case(lambda s: s.update(warnings=[]), "summary.warnings"))
case("summary_odometer_status", "fraud")(
    _summary_case(lambda s: s["odometer"].update(status="actual"), "summary.odometer.status"))
case("summary_accident_severity", "fraud")(
    _summary_case(lambda s: s["accidents"][0].update(severity="minor"), "summary.accidents[0].severity"))
case("summary_accident_removed", "fraud")(_summary_case(lambda s: s.update(accidents=[]), "summary.accidents"))
case("summary_rollback_removed", "fraud")(
    _summary_case(lambda s: s["odometer"].update(suspected_rollbacks=[]), "summary.odometer.suspected_rollbacks"))
case("summary_liens_false", "fraud")(
    _summary_case(lambda s: s.update(liens=False), "summary.liens"))
case("summary_airbags_as_number", "fraud")(
    _summary_case(lambda s: s["accidents"][0].update(airbags_deployed=1), "summary.accidents[0].airbags_deployed"))


@case("timeline_accident_softened", "fraud")
def _timeline_only(w: World) -> Case:
    seq = seq_of(w.new, "accident")
    x = edited(w.new, lambda r: r["timeline"][seq - 1]["data"].update(severity="minor", airbags_deployed=False))
    return Case(x, w.genesis, f"the timeline differs from the proven entries (at entry {seq})")


@case("timeline_accident_dropped", "fraud")
def _timeline_drop(w: World) -> Case:
    seq = seq_of(w.new, "accident")
    x = edited(w.new, lambda r: r["timeline"].pop(seq - 1))
    return Case(x, w.genesis, "the timeline differs from the proven entries")


@case("timeline_airbags_as_number", "fraud")
def _timeline_bool(w: World) -> Case:
    seq = seq_of(w.new, "accident")
    x = edited(w.new, lambda r: r["timeline"][seq - 1]["data"].update(airbags_deployed=1))
    return Case(x, w.genesis, f"the timeline differs from the proven entries (at entry {seq})")


# the vehicle record, the VIN, the trust anchor


@case("record_raw_changed", "fraud")
def _record_raw(w: World) -> Case:
    record = record_of(w.new)
    record["owners"] = 1
    record["odometer"].update(status="actual", rollbacks=0)
    x = edited(w.new, lambda r: r["evidence"]["vehicle"].update(raw=canonical(record).decode()))
    x["summary"] = summarize(record, entries_of(x))  # consistent with the forged record
    return Case(x, w.genesis, NOT_PROVEN)


@case("relabelled_for_another_vin", "fraud")
def _other_vin(w: World) -> Case:
    x = edited(w.rich, lambda r: r.update(vin=VIN))  # the stolen, flooded car sold as the demo car
    x["summary"]["vin"] = VIN
    return Case(x, w.genesis, "the proven vehicle record is not the report's VIN")


@case("other_vin_with_its_key", "fraud")
def _other_vin_key(w: World) -> Case:
    x = edited(w.rich, lambda r: r.update(vin=VIN))
    x["summary"]["vin"] = VIN
    x["evidence"]["vehicle"]["key"] = "veh/v/" + VIN
    # the proof no longer fits the key's path: "... a proof entry is malformed ..." or "... leads to a
    # different root", depending on the tree's shape; both verifiers name the key first
    return Case(x, w.genesis, f"'veh/v/{VIN}' is not proven holding that value")


@case("wrong_trust_anchor", "fraud")
def _wrong_anchor(w: World) -> Case:
    return Case(w.new, w.other_genesis, OTHER_ANCHOR)


@case("wrong_anchor_same_chain_id", "fraud")
def _twin_anchor(w: World) -> Case:
    return Case(w.new, w.twin_genesis, OTHER_ANCHOR)


@case("report_relabelled_for_wrong_anchor", "fraud")
def _relabelled_anchor(w: World) -> Case:
    x = edited(w.new, lambda r: r.update(trust={"chain": w.other_genesis.chain,
                                                "genesis_hash": w.other_genesis.hash().hex()}))
    return Case(x, w.other_genesis, "the checkpoint is for chain 'blokauto-demo', not 'test-chain'")


@case("report_relabelled_for_twin_anchor", "fraud")
def _relabelled_twin(w: World) -> Case:
    x = edited(w.new, lambda r: r.update(trust={"chain": w.twin_genesis.chain,
                                                "genesis_hash": w.twin_genesis.hash().hex()}))
    return Case(x, w.twin_genesis, NOT_NODE)


# encodings and malformed reports (cross-check only: both verifiers must give the same verdict)


@case("header_not_canonical", "variant")
def _header_spaces(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"].update(
        header_raw=r["evidence"]["checkpoint"]["header_raw"].replace(",", ", ")))
    return Case(x, w.genesis, "not in canonical form")


@case("attestation_twice", "variant")
def _twice(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"]["attestations"].append(
        dict(r["evidence"]["checkpoint"]["attestations"][0])))
    return Case(x, w.genesis, "attested twice")


@case("attestation_sig_uppercase", "variant")
def _sig_upper(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"]["attestations"][0].update(
        sig=r["evidence"]["checkpoint"]["attestations"][0]["sig"].upper()))
    return Case(x, w.genesis, "an attestation is malformed")


@case("entries_missing", "variant")
def _no_entries(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"].pop("entries"))
    return Case(x, w.genesis, "malformed")


@case("not_a_report", "variant")
def _not_a_report(w: World) -> Case:
    return Case(edited(w.new, lambda r: r.update(format="blokauto-report/0")), w.genesis, "not a blokauto-report/1 report")


@case("owners_as_float", "variant")
def _owners_float(w: World) -> Case:
    # 2.0 for 2: JSON.parse cannot tell them apart, so both verifiers read the same number and accept
    return Case(edited(w.new, lambda r: r["summary"].update(owners=float(r["summary"]["owners"]))), w.genesis, None)


@case("unknown_top_level_field", "variant")
def _extra_field(w: World) -> Case:
    return Case(edited(w.new, lambda r: r.update(comment="clean car, one owner")), w.genesis, None)


BUG_ATT_FIELD = ("BUG: verifiers disagree on an attestation with an extra field: Python decodes attestations as "
                 "NodeSignature (forbid_unknown_fields) and refuses the report, verifier.js ignores the field and "
                 "accepts it")
BUG_PROOF_HEX = ("BUG: verifiers disagree on a state proof written in upper-case hex: smt.root_from_proof uses "
                 "bytes.fromhex (accepts upper case and spaces) and accepts the report, verifier.js unhex() refuses it")
BUG_SURROGATE = ("BUG: verify_report lets UnicodeEncodeError escape (str.encode of a lone surrogate in the evidence) "
                 "instead of raising VerificationError; verifier.js refuses the report")


@case("attestation_extra_field", "variant")
def _att_extra(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["checkpoint"]["attestations"][0].update(note="ok"))
    return Case(x, w.genesis, "the report is malformed: the attestation has")


@case("proof_uppercase_hex", "variant")
def _proof_upper(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["vehicle"]["proof"].update(
        levels=[[s.upper() for s in level] for level in r["evidence"]["vehicle"]["proof"]["levels"]]))
    return Case(x, w.genesis, f"'veh/v/{w.new['vin']}' is not proven holding that value")


@case("entry_with_lone_surrogate", "variant")
def _surrogate(w: World) -> Case:
    x = edited(w.new, lambda r: r["evidence"]["entries"].__setitem__(0, r["evidence"]["entries"][0][:-1] + "\ud800}"))
    return Case(x, w.genesis, HISTORY)


def refusal(case_: Case) -> str:
    """Verify ``case_`` expecting a refusal; returns the message (fails the test if it verifies)."""
    with pytest.raises(VerificationError) as exc:
        case_.verify()
    return str(exc.value)
