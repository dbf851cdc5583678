"""Insurance claims in a vehicle history report: shown, proven, only with the holder's consent.

One node process (``blokauto node start``, stopped by its PID) on a chain where Alice's car, fitted
with a device key, is insured by ``ins`` (EUR, product "payd"); the device reports two crashes, each
opening a claim: the first is assessed by a workshop, approved and paid, the second denied. Bob's
car has one claim of its own (the forger's substitute), Carol's car one claim (shared, then sold),
and Alice's second car none.

1. Who sees the claims: the holder, a regulator and a node key read them; the maker and an
   organisation the holder consented to for ``history`` read the report without them; a share
   link shows them only when the holder signed it ``claims=True``; a sale voids the links. The same
   through the real CLI (``report share --with-claims``, ``report --share``).
2. Forged claims, judged by both verifiers (``blokauto.verify`` and ``web/verifier.js`` in Chromium):
   each is refused with words naming what failed, and the genuine report passes both.
3. A share link made before links had a ``claims`` field still opens the report (without claims),
   and adding the field to a signed link breaks its signature.
4. The report page shows the "Insurance claims" section only for a report that has them.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import msgspec
import pytest

from blokauto.client import Client
from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.crypto import KeyPair, tagged_hash
from blokauto.core.encoding import canonical, to_builtins
from blokauto.keystore import KeyStore
from blokauto.modules.consent.messages import GrantConsent
from blokauto.modules.insurance.messages import (AssessClaim, BindPolicy, ChooseWorkshop, DecideClaim, PayClaim,
                                                 PublishProduct)
from blokauto.modules.payments.messages import AttestReserves, Issue, RegisterCurrency
from blokauto.modules.telemetry.messages import ReportCrash
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle
from blokauto.report.html import render_html, verifier_script
from blokauto.share_tokens import TAG, make_token
from blokauto.verify import TrustAnchor, VerificationError, verify_report

from conftest import CHAIN, K, NodeProcess, now_ms, signed, write_chain

pytest.register_assert_rewrite("helpers.reports")

from helpers.insurance import ALL_ORGS, PAYD  # noqa: E402
from helpers.reports import ARTIFACTS, BADGE_SETTLED, sign_pages  # noqa: E402
from helpers.vehicles import WMI, admin, register_msg, vin_for  # noqa: E402

pytest_plugins = ["helpers.reports"]

VIN = vin_for(WMI["oem"], 301)        # Alice's car: claim 1 paid, claim 2 denied
OTHER_VIN = vin_for(WMI["oem"], 302)  # Bob's car: one claim, opened
SOLD_VIN = vin_for(WMI["oem"], 303)   # Carol's car: one claim; shared, then sold to Dave
CLEAN_VIN = vin_for(WMI["oem"], 304)  # Alice's second car: never claimed on
PEOPLE = {name: K(f"claims-{name}") for name in ("alice", "bob", "carol", "dave")}
ALICE, BOB, CAROL, DAVE = PEOPLE.values()
DEVICE, BOB_DEVICE, CAROL_DEVICE = K("claims-dev-alice"), K("claims-dev-bob"), K("claims-dev-carol")
APPROVED, DEDUCTIBLE = 300_000, 10_000  # EUR cents
HOUR = 3_600_000

REFUSED_LINK = "401 share_token_invalid"
NOT_SHOWN = "the insurance claims are not what the proven records say"


# ---------------------------------------------------------------- the chain


@dataclass
class Claims:
    node: NodeProcess
    data: Path
    genesis: Genesis
    height: int                          # the last block of the set-up
    ids: dict[str, list[int]]            # VIN -> its claim ids, oldest first
    policy: dict[str, int]               # VIN -> its policy id
    crash_t: dict[int, int]              # claim id -> the crash time that opened it
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def anchor(self) -> TrustAnchor:
        return TrustAnchor.from_genesis(self.genesis)

    @property
    def url(self) -> str:
        return self.node.url

    def expected(self, vin: str, claim: int, status: str, reason: str = "", approved: int = 0,
                 payout: int = 0, flags: tuple[str, ...] = ()) -> dict[str, Any]:
        """What a report shows of a claim a crash opened (``claim_view``), written out by hand."""
        return {"claim": claim, "policy": self.policy[vin], "insurer": "ins", "source": "crash",
                "incident": self.crash_t[claim], "status": status, "flags": list(flags), "reason": reason,
                "approved": approved, "payout": payout, "currency": "EUR"}

    def alices_claims(self) -> list[dict[str, Any]]:
        paid, denied = self.ids[VIN]
        return [self.expected(VIN, paid, "paid", "covered", APPROVED, APPROVED - DEDUCTIBLE),
                self.expected(VIN, denied, "denied", "no_damage", flags=("possible_duplicate",))]  # within a minute


def _ok(c: Client, msg: Any, sender: KeyPair, *cosigners: KeyPair) -> Any:
    info = c.send(msg, sender, *cosigners)
    assert info.ok, f"{type(msg).__name__} failed: {info.error}"
    return info


def _event(info: Any, kind: str, name: str) -> int:
    return next(e[name] for e in info.events if e["type"] == kind)


@pytest.fixture(scope="module")
def claims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Claims]:
    data = tmp_path_factory.mktemp("report-claims") / "data"
    orgs = [GenesisOrganisation(org, org.upper(), roles, [admin(org).did], [K("reg-node").did] if org == "reg" else [])
            for org, roles in ALL_ORGS.items()]
    genesis = Genesis(chain=CHAIN, time=now_ms() - 1000, organisations=orgs, quorum=1)
    write_chain(data, genesis)
    keys = KeyStore(data / "keys")
    for name, key in PEOPLE.items():
        keys.create(name, key=key)
    node = NodeProcess(data)
    try:
        with Client(node.url, key=K("reg-node"), trust=genesis) as c:
            _ok(c, AssignWmi(wmi=WMI["oem"], org="oem"), admin("reg"))
            for vin, holder, device in ((VIN, ALICE, DEVICE), (OTHER_VIN, BOB, BOB_DEVICE),
                                        (SOLD_VIN, CAROL, CAROL_DEVICE), (CLEAN_VIN, ALICE, None)):
                _ok(c, register_msg(vin, device_keys=[device.did] if device else []), admin("oem"))
                _ok(c, TransferTitle(vin=vin, to=holder.did, usage="private"), admin("oem"), holder)
            emi = admin("emi")
            _ok(c, RegisterCurrency(currency="EUR", exponent=2), emi)
            _ok(c, AttestReserves(currency="EUR", reserves=10_000_000, evidence="ab" * 32), emi)
            for owner in (ALICE.did, BOB.did, CAROL.did, "org:ins"):
                _ok(c, Issue(currency="EUR", to=owner, amount=1_000_000), emi)
            _ok(c, PublishProduct(product="payd", currency="EUR", period_days=30, pricing=PAYD,
                                  max_coverage=1_000_000), admin("ins"))
            start = now_ms() + 3_000  # a policy starts at or after the block that binds it
            policy = {}
            for vin, holder in ((VIN, ALICE), (OTHER_VIN, BOB), (SOLD_VIN, CAROL)):
                info = _ok(c, BindPolicy(product="payd", vin=vin, start=start, periods=3, deductible=DEDUCTIBLE,
                                         coverage=500_000), admin("ins"), holder)
                policy[vin] = _event(info, "insurance.policy_changed", "policy")
            until = c.checkpoint("latest").header.time + 30 * 86_400_000
            _ok(c, GrantConsent(vin=VIN, org="ins2", categories=["history"], purpose="a quote", until=until), ALICE)
            while now_ms() <= start + 50:
                time.sleep(0.05)
            ids: dict[str, list[int]] = {VIN: [], OTHER_VIN: [], SOLD_VIN: [], CLEAN_VIN: []}
            crash_t: dict[int, int] = {}
            for vin, device, airbag in ((VIN, DEVICE, True), (VIN, DEVICE, False), (OTHER_VIN, BOB_DEVICE, True),
                                        (SOLD_VIN, CAROL_DEVICE, True)):
                t = now_ms() - 5
                info = _ok(c, ReportCrash(vin=vin, t=t, decel_mms2=60_000, odometer_m=20_000, airbag=airbag,
                                          impact=not airbag), device)
                cid = _event(info, "insurance.claim_changed", "claim")
                ids[vin].append(cid)
                crash_t[cid] = t
            paid, denied = ids[VIN]
            _ok(c, ChooseWorkshop(claim=paid, workshop="shop"), admin("ins"))
            _ok(c, AssessClaim(claim=paid, estimate=APPROVED, reference="est-1"), admin("shop"))
            _ok(c, DecideClaim(claim=paid, approve=True, reason="covered", amount=APPROVED), admin("ins"))
            _ok(c, PayClaim(claim=paid), admin("ins"))
            height = _ok(c, DecideClaim(claim=denied, approve=False, reason="no_damage"), admin("ins")).height
        yield Claims(node, data, genesis, height, ids, policy, crash_t)
    finally:
        try:
            node.stop()  # SIGTERM by PID
        finally:
            if node.proc.poll() is None:
                node.kill()


def read(claims: Claims, vin: str, key: KeyPair | None, share: str | None = None) -> httpx.Response:
    """GET /v1/reports/{vin} signed by ``key`` (unsigned if None), with a share token if given."""
    params: dict[str, Any] = {"min_height": claims.height}
    if share is not None:
        params["share"] = share
    if key is None:
        return httpx.get(f"{claims.url}/v1/reports/{vin}", params=params, timeout=30)
    with signed(claims.url, key) as http:
        return http.get(f"/v1/reports/{vin}", params=params)


def outcome(r: httpx.Response) -> str:
    if r.status_code < 400:
        return str(r.status_code)
    return f"{r.status_code} {r.json()['error']['code']}"


def report_of(claims: Claims, vin: str, key: KeyPair | None, share: str | None = None) -> dict[str, Any]:
    r = read(claims, vin, key, share)
    assert r.status_code == 200, r.text
    return r.json()


def token_of(link: str) -> str:
    return link.split("share=", 1)[1]


def link(claims: Claims, vin: str, holder: KeyPair, *, with_claims: bool) -> str:
    with Client(claims.url, trust=claims.genesis) as c:
        return token_of(c.share_report(vin, holder, ttl_ms=HOUR, claims=with_claims))


def genuine(claims: Claims) -> dict[str, Any]:
    """Alice's report as she reads it (with her claims), taken once."""
    if VIN not in claims.reports:
        claims.reports[VIN] = report_of(claims, VIN, ALICE)
    return claims.reports[VIN]


# ---------------------------------------------------------------- 1. who sees the claims


def test_the_holder_reads_her_claims_proven(claims: Claims):
    report = genuine(claims)
    assert report["insurance_claims"] == claims.alices_claims()
    ev = report["evidence"]["claims"]
    assert json.loads(ev["list"]["raw"]) == claims.ids[VIN]
    assert [json.loads(c["raw"])["vin"] for c in ev["claims"]] == [VIN, VIN]
    proof = verify_report(report, claims.anchor)
    assert (proof.vin, proof.height) == (VIN, report["as_of"]["height"])
    # the crashes are in the history too (the claims are what came of them)
    assert [e["type"] for e in report["timeline"]].count("crash_reported") == 2


@pytest.mark.parametrize("who,key", [("regulator", admin("reg")), ("node", K("reg-node"))])
def test_a_regulator_and_a_node_read_the_claims(claims: Claims, who: str, key: KeyPair):
    report = report_of(claims, VIN, key)
    assert report["insurance_claims"] == claims.alices_claims(), who
    verify_report(report, claims.anchor)


@pytest.mark.parametrize("who,key", [("consented for history", admin("ins2")), ("maker", admin("oem"))])
def test_others_who_read_the_history_get_it_without_claims(claims: Claims, who: str, key: KeyPair):
    report = report_of(claims, VIN, key)
    assert "insurance_claims" not in report and "claims" not in report["evidence"], who
    assert verify_report(report, claims.anchor).vin == VIN
    assert report["timeline"] == genuine(claims)["timeline"]  # the same history, crashes included


def test_the_insurer_of_the_claims_without_consent_is_refused_the_report(claims: Claims):
    # ins insures the car but the holder never consented to it reading the history: no report at all
    assert outcome(read(claims, VIN, admin("ins"))) == "403 consent_required"


def test_a_share_link_shows_the_claims_only_when_the_holder_says_so(claims: Claims):
    plain = report_of(claims, VIN, None, link(claims, VIN, ALICE, with_claims=False))
    assert "insurance_claims" not in plain and "claims" not in plain["evidence"]
    verify_report(plain, claims.anchor)
    shown = report_of(claims, VIN, None, link(claims, VIN, ALICE, with_claims=True))
    assert shown["insurance_claims"] == claims.alices_claims()
    verify_report(shown, claims.anchor)
    # the SDK opens it with no key and verifies it too; the PDF route takes the same link
    with Client(claims.url, trust=claims.genesis) as c:
        token = link(claims, VIN, ALICE, with_claims=True)
        assert c.report(VIN, share=token)["insurance_claims"] == claims.alices_claims()
        assert c.report_pdf(VIN, share=token).startswith(b"%PDF")


def test_a_consented_organisation_with_a_claims_link_sees_the_claims(claims: Claims):
    """The link is what lets the claims show, whoever opens it (signed or not)."""
    token = link(claims, VIN, ALICE, with_claims=True)
    report = report_of(claims, VIN, admin("ins2"), token)
    assert report["insurance_claims"] == claims.alices_claims()


def test_a_claims_link_signed_by_someone_else_is_refused(claims: Claims):
    assert outcome(read(claims, VIN, None, link(claims, VIN, BOB, with_claims=True))) == REFUSED_LINK


def test_a_vehicle_without_claims_shows_an_empty_proven_list_to_its_holder(claims: Claims):
    report = report_of(claims, CLEAN_VIN, ALICE)
    assert report["insurance_claims"] == []
    assert report["evidence"]["claims"]["list"]["raw"] is None and report["evidence"]["claims"]["claims"] == []
    verify_report(report, claims.anchor)


def test_a_sale_voids_the_links_and_the_claims_stay_with_their_holding(claims: Claims):
    with_claims, without = (link(claims, SOLD_VIN, CAROL, with_claims=w) for w in (True, False))
    before = report_of(claims, SOLD_VIN, None, with_claims)
    [cid] = claims.ids[SOLD_VIN]
    assert before["insurance_claims"] == [claims.expected(SOLD_VIN, cid, "opened")]
    assert "insurance_claims" not in report_of(claims, SOLD_VIN, None, without)
    with Client(claims.url, key=K("reg-node"), trust=claims.genesis) as c:
        sold = _ok(c, TransferTitle(vin=SOLD_VIN, to=DAVE.did, usage="private"), CAROL, DAVE)
    for token in (with_claims, without):
        r = httpx.get(f"{claims.url}/v1/reports/{SOLD_VIN}", params={"share": token, "min_height": sold.height},
                      timeout=30)
        assert outcome(r) == REFUSED_LINK and "does not hold" in r.json()["error"]["message"]
    # the new holder's report shows its own holding's claims: none yet; Carol's stay hers (found by the
    # outside attack: the buyer read, and could publish, the seller's claims, payouts and key)
    after = report_of(claims, SOLD_VIN, DAVE)
    assert after["insurance_claims"] == [] and "holder" not in str(after["evidence"]["claims"]["claims"])
    verify_report(after, claims.anchor)
    # Carol holds nothing now; a link she signs after the sale opens nothing
    r = httpx.get(f"{claims.url}/v1/reports/{SOLD_VIN}",
                  params={"share": link(claims, SOLD_VIN, CAROL, with_claims=True), "min_height": sold.height},
                  timeout=30)
    assert outcome(r) == REFUSED_LINK


def cli(*args: Any, cwd: Path) -> subprocess.CompletedProcess:
    """The real CLI, with no key, data folder or node from the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("BLOKAUTO_KEY", "BLOKAUTO_DATA", "BLOKAUTO_NODE")}
    r = subprocess.run([sys.executable, "-m", "blokauto.cli", *[str(a) for a in args]], capture_output=True, text=True,
                       check=False, timeout=120, cwd=cwd, env={**env, "COLUMNS": "200", "NO_COLOR": "1"})
    assert r.returncode == 0, f"{args}: exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in r.stderr
    return r


@pytest.mark.parametrize("with_claims", [True, False], ids=["with-claims", "without"])
def test_the_cli_shares_the_claims_only_with_with_claims(claims: Claims, tmp_path: Path, with_claims: bool):
    flag = ["--with-claims"] if with_claims else []
    shared = cli("report", "share", VIN, "--expires", "1h", "--as", "alice", *flag, "--data", claims.data,
                 "--node", claims.url, cwd=tmp_path)
    url = shared.stdout.strip()
    assert url.startswith(f"{claims.url}/reports/{VIN}?share=") and "\n" not in url
    # a reader with the link only: no key, no data folder, the node named by the link
    opened = cli("report", VIN, "--share", url, "--trust", claims.data / "genesis.json", "--json", "-", cwd=tmp_path)
    doc = json.loads(opened.stdout)
    if with_claims:
        assert doc["insurance_claims"] == claims.alices_claims()
    else:
        assert "insurance_claims" not in doc and "claims" not in doc["evidence"]
    assert verify_report(doc, claims.anchor).vin == VIN
    assert "verified against trust anchor" in opened.stderr


# ---------------------------------------------------------------- 2. forged claims, both verifiers


def _edited(report: dict[str, Any], fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    x = copy.deepcopy(report)
    fn(x)
    return x


def _claim_raw_changed(claims: Claims) -> dict[str, Any]:
    """The paid claim rewritten as denied in its proven bytes, and the view made to match."""
    def forge(r: dict[str, Any]) -> None:
        item = r["evidence"]["claims"]["claims"][0]
        c = msgspec.json.decode(item["raw"])
        c.update(status="denied", reason="no_damage", approved=0, payout=0)
        item["raw"] = canonical(c).decode()
        r["insurance_claims"][0].update(status="denied", reason="no_damage", approved=0, payout=0)
    return _edited(genuine(claims), forge)


def _substituted(claims: Claims) -> dict[str, Any]:
    """Alice's paid claim replaced, in the evidence and the view, by Bob's proven claim."""
    bobs = report_of(claims, OTHER_VIN, admin("reg"))
    def forge(r: dict[str, Any]) -> None:
        r["evidence"]["claims"]["claims"][0] = copy.deepcopy(bobs["evidence"]["claims"]["claims"][0])
        r["insurance_claims"][0] = copy.deepcopy(bobs["insurance_claims"][0])
    return _edited(genuine(claims), forge)


def _all_substituted(claims: Claims) -> dict[str, Any]:
    """Alice's claim evidence and view replaced by Bob's car's (one opened claim instead of a paid and a denied)."""
    bobs = report_of(claims, OTHER_VIN, admin("reg"))
    return _edited(genuine(claims), lambda r: (r["evidence"].update(claims=copy.deepcopy(bobs["evidence"]["claims"])),
                                               r.update(insurance_claims=copy.deepcopy(bobs["insurance_claims"]))))


def _key(claims: Claims, i: int) -> str:
    return f"ins/claim/{claims.ids[VIN][i]:016d}"


#: name -> (forged report, words both refusals must contain; None: the report must verify)
FORGERIES: dict[str, Callable[[Claims], tuple[dict[str, Any], str | None]]] = {
    "genuine": lambda w: (genuine(w), None),
    "stripped_of_claims_altogether": lambda w: (  # a report without claims is what others are given: valid
        _edited(genuine(w), lambda r: (r.pop("insurance_claims"), r["evidence"].pop("claims"))), None),
    "status_changed_in_view": lambda w: (
        _edited(genuine(w), lambda r: r["insurance_claims"][0].update(status="denied")),
        f"{NOT_SHOWN}: insurance_claims[0].status"),
    "payout_changed_in_view": lambda w: (
        _edited(genuine(w), lambda r: r["insurance_claims"][0].update(payout=0)),
        f"{NOT_SHOWN}: insurance_claims[0].payout"),
    "claim_dropped_from_view": lambda w: (
        _edited(genuine(w), lambda r: r["insurance_claims"].pop(0)), f"{NOT_SHOWN}: insurance_claims[0]"),
    "last_claim_dropped_from_view": lambda w: (
        _edited(genuine(w), lambda r: r["insurance_claims"].pop()), f"{NOT_SHOWN}: insurance_claims (length 1 vs 2)"),
    "view_emptied": lambda w: (
        _edited(genuine(w), lambda r: r.update(insurance_claims=[])), f"{NOT_SHOWN}: insurance_claims (length 0 vs 2)"),
    "view_removed": lambda w: (
        _edited(genuine(w), lambda r: r.pop("insurance_claims")), NOT_SHOWN),
    "claim_dropped_from_evidence": lambda w: (
        _edited(genuine(w), lambda r: (r["evidence"]["claims"]["claims"].pop(0), r["insurance_claims"].pop(0))),
        "the claim evidence does not cover every claim on the vehicle"),
    "every_claim_dropped_from_evidence": lambda w: (
        _edited(genuine(w), lambda r: (r["evidence"]["claims"].update(claims=[]), r.update(insurance_claims=[]))),
        "the claim evidence does not cover every claim on the vehicle"),
    "claims_reordered": lambda w: (
        _edited(genuine(w), lambda r: (r["evidence"]["claims"]["claims"].reverse(), r["insurance_claims"].reverse())),
        f"the claim {w.ids[VIN][0]} is for '{_key(w, 1)}', not '{_key(w, 0)}'"),
    "claim_raw_edited": lambda w: (_claim_raw_changed(w), f"'{_key(w, 0)}' is not proven holding that value"),
    "evidence_removed_view_kept": lambda w: (
        _edited(genuine(w), lambda r: r["evidence"].pop("claims")),
        "the report shows insurance claims without the evidence that proves them"),
    "other_vins_claim_substituted": lambda w: (
        _substituted(w), f"the claim {w.ids[VIN][0]} is for 'ins/claim/{w.ids[OTHER_VIN][0]:016d}'"),
    "other_vins_claim_list_substituted": lambda w: (
        _all_substituted(w), f"the claim list is for 'ins/veh-claims/{OTHER_VIN}/"),
    "unknown_field_in_claim_evidence": lambda w: (
        _edited(genuine(w), lambda r: r["evidence"]["claims"].update(note="all settled")),
        "the report is malformed: the claim evidence has"),
    "unknown_field_in_a_proven_claim": lambda w: (
        _edited(genuine(w), lambda r: r["evidence"]["claims"]["claims"][0].update(note="settled")),
        f"the report is malformed: the claim {w.ids[VIN][0]} has"),
    "claim_evidence_not_an_object": lambda w: (
        _edited(genuine(w), lambda r: r["evidence"].update(claims=[])), "the report is malformed: the claim evidence"),
}

JS_VERIFY = """async ([report, genesis]) => {
  const V = window.BlokautoVerifier;
  const anchor = await V.anchorFromGenesis(genesis);
  try {
    const proof = await V.verifyReport(report, anchor, {});
    return {ok: true, vin: proof.vin, height: proof.height, entries: proof.entries};
  } catch (e) {
    return {ok: false, error: String(e && e.message), verificationError: e instanceof V.VerificationError};
  }
}"""


@pytest.fixture(scope="module")
def js(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """verifier.js in a blank page opened from file:// (WebCrypto needs a secure context)."""
    blank = tmp_path_factory.mktemp("claims-blank") / "blank.html"
    blank.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>")
    page = browser.new_page()
    try:
        page.goto(blank.as_uri())
        page.add_script_tag(content=verifier_script())
        assert page.evaluate("() => typeof window.BlokautoVerifier.verifyReport") == "function"
        yield page
    finally:
        page.close()


@pytest.mark.parametrize("name", list(FORGERIES))
def test_both_verifiers_judge_the_claims(claims: Claims, js: Any, name: str):
    report, expect = FORGERIES[name](claims)
    try:
        proof = verify_report(report, claims.anchor)
        py: dict[str, Any] = {"ok": True, "vin": proof.vin, "height": proof.height, "entries": proof.entries}
    except VerificationError as exc:
        py = {"ok": False, "error": str(exc)}
    jv = js.evaluate(JS_VERIFY, [report, to_builtins(claims.genesis)])
    if expect is None:
        assert py["ok"] and jv["ok"], (py, jv)
        assert jv == py  # the same facts proven
        return
    assert not py["ok"], f"the Python verifier accepted the forgery {name}"
    assert not jv["ok"], f"verifier.js accepted the forgery {name}"
    assert jv["verificationError"], jv  # a refusal, not a crash
    for who, verdict in (("Python", py), ("verifier.js", jv)):
        assert expect in verdict["error"], f"{who}: {verdict['error']!r} does not say {expect!r}"


# ---------------------------------------------------------------- 3. links made before the claims field


def _old_token(holder: KeyPair, vin: str, expires: int) -> str:
    """A share token as links were made before ``claims`` existed: its canonical body has no such key."""
    body = canonical({"v": 1, "chain": CHAIN, "vin": vin, "holder": holder.did, "expires": expires,
                      "nonce": "00112233aabbccdd"})
    return _b64(body) + "." + _b64(holder.sign(tagged_hash(TAG, body)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _body(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_an_old_share_link_still_opens_the_report_without_claims(claims: Claims):
    old = _old_token(ALICE, VIN, now_ms() + HOUR)
    assert "claims" not in _body(old)
    report = report_of(claims, VIN, None, old)
    assert "insurance_claims" not in report and "claims" not in report["evidence"]
    verify_report(report, claims.anchor)


def test_a_link_without_claims_is_written_as_before(claims: Claims):
    """Links that do not show claims keep the old body byte for byte (omit_defaults), so a node that
    predates the field still reads them; one that does carries ``claims: true``."""
    plain = make_token(ALICE, CHAIN, VIN, HOUR)
    assert set(_body(plain)) == {"v", "chain", "vin", "holder", "expires", "nonce"}
    assert _body(make_token(ALICE, CHAIN, VIN, HOUR, claims=True))["claims"] is True


def test_claims_added_to_a_signed_link_break_its_signature(claims: Claims):
    plain = link(claims, VIN, ALICE, with_claims=False)
    body = _body(plain)
    body["claims"] = True
    forged = _b64(canonical(body)) + "." + plain.split(".")[1]
    r = read(claims, VIN, None, forged)
    assert outcome(r) == REFUSED_LINK and "signature" in r.json()["error"]["message"]


# ---------------------------------------------------------------- 4. the report page


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1100, "height": 1000})
    p = ctx.new_page()
    try:
        yield p
    finally:
        ctx.close()


def _settled(page: Any) -> dict[str, Any]:
    page.wait_for_function(BADGE_SETTLED, timeout=15_000)
    return page.eval_on_selector("#badge", "e => ({state: e.dataset.state, "
                                           "detail: (e.querySelector('small') || {}).textContent || ''})")


def _section(page: Any) -> dict[str, Any]:
    return page.eval_on_selector("#claims-section", "s => ({hidden: s.hidden, visible: s.offsetParent !== null, "
                                                    "lines: Array.from(s.querySelectorAll('#claims p'), p => p.textContent)})")


def test_the_page_shows_the_claims_a_link_lets_it_show(claims: Claims, page: Any):
    page.goto(f"{claims.url}/reports/{VIN}?share={link(claims, VIN, ALICE, with_claims=True)}")
    assert _settled(page)["state"] == "ok"
    s = _section(page)
    assert not s["hidden"] and s["visible"], s
    paid, denied = claims.ids[VIN]
    assert len(s["lines"]) == 2
    assert s["lines"][0].startswith(f"Claim {paid} (ins, policy {claims.policy[VIN]}): ")
    assert "opened by the vehicle's crash report, paid" in s["lines"][0] and "paid out" in s["lines"][0]
    assert s["lines"][1].startswith(f"Claim {denied} ") and "denied (no damage)" in s["lines"][1]
    assert s["lines"][1].endswith("flagged: possible duplicate")
    rows = page.eval_on_selector_all("#timeline tr", "rs => rs.map(r => Array.from(r.cells, c => c.textContent))")
    crashes = [r for r in rows if r[2] == "crash reported"]
    assert [r[4] for r in crashes] == ["the vehicle reported a crash (airbag deployed), 20 km",
                                       "the vehicle reported a crash (impact), 20 km"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "report-claims.png"), full_page=True)


def test_the_page_hides_the_section_without_claims(claims: Claims, page: Any):
    page.goto(f"{claims.url}/reports/{VIN}?share={link(claims, VIN, ALICE, with_claims=False)}")
    assert _settled(page)["state"] == "ok"
    s = _section(page)
    assert s["hidden"] and not s["visible"] and s["lines"] == [], s


@pytest.mark.parametrize("who,key,shown", [("holder", ALICE, True), ("consented for history", admin("ins2"), False)])
def test_a_signed_reader_sees_the_section_only_as_the_holder(claims: Claims, browser: Any, who: str, key: KeyPair,
                                                             shown: bool):
    ctx = browser.new_context()
    try:
        sign_pages(ctx, claims.url, key)  # every request of the page signed by the reader's key
        page = ctx.new_page()
        page.goto(f"{claims.url}/reports/{VIN}?min_height={claims.height}")
        assert _settled(page)["state"] == "ok"
        s = _section(page)
        assert (s["visible"], len(s["lines"])) == ((True, 2) if shown else (False, 0)), (who, s)
    finally:
        ctx.close()


def test_the_page_says_when_no_claim_was_ever_made(claims: Claims, page: Any):
    page.goto(f"{claims.url}/reports/{CLEAN_VIN}?share={link(claims, CLEAN_VIN, ALICE, with_claims=True)}")
    assert _settled(page)["state"] == "ok"
    s = _section(page)
    assert s["visible"] and s["lines"] == ["No insurance claim was ever made on this vehicle."], s


def test_a_page_with_a_forged_claim_turns_red(claims: Claims, page: Any, tmp_path: Path):
    forged, expect = FORGERIES["status_changed_in_view"](claims)
    path = tmp_path / "forged.html"
    path.write_text(render_html(forged, claims.genesis), encoding="utf-8")
    page.goto(path.as_uri())
    b = _settled(page)
    assert b["state"] == "bad" and expect in b["detail"], b


def test_the_page_shows_the_payout_as_money(claims: Claims, page: Any):
    page.goto(f"{claims.url}/reports/{VIN}?share={link(claims, VIN, ALICE, with_claims=True)}")
    assert _settled(page)["state"] == "ok"
    line = _section(page)["lines"][0]
    assert "2,900.00" in line and "EUR" in line, line
