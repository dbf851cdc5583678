"""The console's consent manager in Chromium: a holder's vehicles and their consent grants, each with
a badge the page settles itself against the trust anchor, and grants and revocations signed in the
browser that land on the ledger (checked afterwards through the Python SDK).

What the page shows is compared with what the SDK reads from the same node. A grant the ledger
refuses (an end in the past, a vehicle sold while the page was open) shows the failure's code and
sentence and changes nothing; an answer rewritten in flight turns its badge to failed; the grant
form works with the keyboard alone; at 200 % zoom no text leaves the screen.

Tests that write make their own vehicles (VINs WZZ3E5C22NMC0xxxx) and give them to keys they make:
the demo's vehicles are read, never changed.
"""

from __future__ import annotations

import datetime
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from blokauto.client import Client
from blokauto.core.crypto import KeyPair
from blokauto.modules.consent import errors as consent_errors
from blokauto.modules.consent.messages import GrantConsent
from blokauto.modules.consent.state import CATEGORIES
from blokauto.modules.vehicles import messages as veh

from helpers.console import TEXT_OUTSIDE_SCREEN, badges, demo_key, key_file, open_console, sdk, settle, wait_until, zoomed

pytest_plugins = ["helpers.reports", "helpers.console"]

DAY_MS = 86_400_000
DEMO_VIN = "WZZ3E5C22NM400117"  # ben's, with the demo's grant to allied-insurance


# ---------------------------------------------------------------- the world's keys and the test's own vehicles


@dataclass
class Holding:
    vin: str
    key: KeyPair
    path: Path  # the holder's key file, for the browser


def ok(info: Any) -> Any:
    assert info.ok, info.error
    return info


def give_vehicle(world: Any, vin: str, holder: KeyPair) -> int:
    """Bavaria Motors registers ``vin`` and sells it to ``holder``; the height of the sale."""
    maker = demo_key(world, "bavaria-motors-admin")
    with sdk(world) as c:
        ok(c.send(veh.RegisterVehicle(vin=vin, make="Bavaria", model="E3", model_year=2026, body="hatchback",
                                      powertrain="bev", plant="Leipzig", build_date="2026-02-02", country="DE"), maker))
        return ok(c.send(veh.TransferTitle(vin=vin, to=holder.did), maker, holder)).height


_serials = itertools.count(1)  # the world lives for the session: each vehicle of this file gets the next serial


@pytest.fixture
def holding(world: Any, tmp_path: Path) -> Callable[[], Holding]:
    """``holding()``: a new vehicle (WZZ3E5C22NMC0nnnn) held by a key made for it."""
    def make() -> Holding:
        vin = f"WZZ3E5C22NMC{next(_serials):05d}"
        key = KeyPair.from_label(f"console-consent-{vin}")
        give_vehicle(world, vin, key)
        return Holding(vin, key, key_file(tmp_path, key, vin))

    return make


def head_time(world: Any) -> int:
    with sdk(world) as c:
        return c.checkpoint("latest").header.time


def day_after(ms: int, days: int) -> str:
    """The UTC date ``days`` after block time ``ms`` (what the form's date field takes)."""
    return (datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC) + datetime.timedelta(days=days)).date().isoformat()


def end_of(day: str) -> int:
    """The ``until`` the page sends for a date: the end of that day, UTC, in ms."""
    d = datetime.date.fromisoformat(day)
    return int(datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.UTC).timestamp() * 1000) + DAY_MS


# ---------------------------------------------------------------- reading the page


def section(vin: str) -> str:
    return f'section.vehicle[data-vin="{vin}"]'


def grant_rows(page: Any, vin: str) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(f"{section(vin)} tr[data-grant]", """(trs) => trs.map((tr) => ({
        id: Number(tr.dataset.grant), status: tr.dataset.status, org: tr.cells[1].querySelector('a').textContent,
        categories: tr.cells[2].textContent, purpose: tr.cells[3].textContent,
        badge: tr.querySelector('.badge').dataset.state, proof: tr.querySelector('.badge').textContent,
        revocable: !!tr.querySelector('[data-revoke]')}))""")


def badge_at(page: Any, selector: str) -> dict[str, str]:
    return page.eval_on_selector(f"{selector} .badge", "(b) => ({state: b.dataset.state, text: b.textContent, "
                                                       "reason: b.dataset.reason || ''})")


def sdk_rows(grants: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(g["id"], g["status"], g["org"], ", ".join(g["categories"]), g["purpose"]) for g in grants]


def page_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["id"], r["status"], r["org"], r["categories"], r["purpose"]) for r in rows]


def section_ready(page: Any, vin: str) -> None:
    wait_until(page, f"document.querySelector('{section(vin)}').dataset.state === 'ready'")
    settle(page)


def submit_grant(page: Any, *, org: str, categories: list[str], purpose: str, day: str) -> dict[str, str]:
    """Fills the grant form, submits it, waits for the receipt and the refreshed list; the outcome."""
    page.select_option("#grant-org", org)
    for c in categories:
        page.check(f'#grant-form input[name="category"][value="{c}"]')
    page.fill("#grant-purpose", purpose)
    page.fill("#grant-until", day)
    page.click("#grant-form button[type=submit]")
    wait_until(page, "document.getElementById('grant-form').dataset.state === 'done'")
    settle(page)
    return outcome(page, "#grant-outcome")


def outcome(page: Any, where: str) -> dict[str, str]:
    return page.eval_on_selector(f"{where} [data-outcome]", """(o) => {
        const tx = o.querySelector('a[href^="#/tx/"]'), sentence = o.querySelector('.sentence');
        const badge = o.querySelector('.badge');
        return {outcome: o.dataset.outcome, code: o.dataset.code || '', grant: o.dataset.grant || '', text: o.textContent,
                sentence: sentence ? sentence.textContent : '', tx: tx ? tx.getAttribute('href').slice(5) : '',
                badge: badge ? badge.dataset.state : ''};
    }""")


# ---------------------------------------------------------------- what a holder sees


@pytest.mark.parametrize("name", ["ben", "dan", "bavaria-motors-admin"])
def test_a_holder_sees_the_vehicles_it_holds_and_their_grants_each_verified(console: Any, world: Any, name: str) -> None:
    """A person (ben: one car with a grant; dan: two cars) and an organisation's member key (the
    maker's stock, held by org:bavaria-motors) see what the ledger says they hold."""
    key = demo_key(world, name)
    with sdk(world, key) as c:
        me = c.query("governance", "member", did=key.did) if name.endswith("-admin") else None
        holders = [key.did] + ([f"org:{me['org']}"] if me else [])
        vins = [v["vin"] for h in holders for v in c.query("vehicles", "vehicles_of", holder=h, limit=50)["vehicles"]]
        assert vins, f"{name} holds vehicles in the demo world"
        open_console(console, world.node.url, "#/consent", data=world.data, name=name)
        grants = {vin: c.query("consent", "grants_of", vin=vin)["grants"] for vin in vins}
    shown = console.eval_on_selector_all("section.vehicle", "(ss) => ss.map((s) => s.dataset.vin)")
    assert shown == vins
    for vin in vins:
        assert page_rows(grant_rows(console, vin)) == sdk_rows(grants[vin]), vin
        assert badge_at(console, f"{section(vin)} dl")["state"] == "verified", vin
    assert any(grants.values()) or name == "bavaria-motors-admin", "ben's and dan's cars carry the demo's grants"
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)
    assert console.errors == []


def test_a_holders_badge_proves_the_grant_by_its_transaction_and_a_regulators_by_its_record(console: Any, world: Any) -> None:
    """The holder may not read the grant's state key (consent/g/ is for regulators, police and nodes):
    its badge proves the transaction that made the grant; a regulator's proves the record itself."""
    open_console(console, world.node.url, f"#/consent/{DEMO_VIN}", data=world.data, name="ben")
    ben = grant_rows(console, DEMO_VIN)
    with sdk(world, demo_key(world, "kba-admin")) as c:
        first = c.query("consent", "grants_of", vin=DEMO_VIN)["grants"][0]
    assert ben[0]["badge"] == "verified" and f"its transaction, block {first['height']}" in ben[0]["proof"]
    assert "no revocation" in console.eval_on_selector(f"{section(DEMO_VIN)} tr[data-grant] .badge", "(b) => b.title")
    open_console(console, world.node.url, f"#/consent/{DEMO_VIN}", data=world.data, name="kba-admin")
    kba = grant_rows(console, DEMO_VIN)
    assert page_rows(kba) == page_rows(ben)
    assert kba[0]["badge"] == "verified" and "its record" in kba[0]["proof"]
    assert not kba[0]["revocable"] and console.query_selector("#grant-form") is None  # a regulator does not hold it
    assert console.query_selector("#not-holder") is not None


def test_the_form_offers_the_modules_categories_and_the_active_organisations(console: Any, world: Any, holding: Any) -> None:
    h = holding()
    open_console(console, world.node.url, f"#/consent/{h.vin}", key=h.path)
    boxes = console.eval_on_selector_all('#grant-form input[name="category"]', "(is) => is.map((i) => i.value)")
    assert boxes == list(CATEGORIES)
    with sdk(world, h.key) as c:
        orgs = [o["id"] for o in c.query("governance", "organisations")]
    options = console.eval_on_selector_all("#grant-org option", "(os) => os.map((o) => o.value)")
    assert options == [""] + orgs


# ---------------------------------------------------------------- writing from the browser


def test_a_grant_and_its_revocation_made_in_the_browser_land_on_the_ledger(console: Any, world: Any, holding: Any) -> None:
    h = holding()
    open_console(console, world.node.url, "#/consent", key=h.path)
    assert grant_rows(console, h.vin) == []
    day = day_after(head_time(world), 30)
    got = submit_grant(console, org="allied-insurance", categories=["history", "driving"],
                       purpose="a quote for a pay-per-km policy", day=day)
    assert got["outcome"] == "ok" and got["badge"] == "verified", got
    with sdk(world, h.key) as c:
        grants = c.query("consent", "grants_of", vin=h.vin)["grants"]
    assert [(g["id"], g["org"], g["categories"], g["purpose"], g["until"], g["status"], g["granted_by"]) for g in grants] == [
        (int(got["grant"]), "allied-insurance", ["driving", "history"], "a quote for a pay-per-km policy", end_of(day),
         "active", h.key.did)]
    rows = grant_rows(console, h.vin)
    assert page_rows(rows) == sdk_rows(grants) and rows[0]["badge"] == "verified" and rows[0]["revocable"]

    gid = grants[0]["id"]
    console.click(f'{section(h.vin)} [data-revoke="{gid}"]')
    console.click(f'{section(h.vin)} [data-confirm="{gid}"]')
    section_ready(console, h.vin)
    done = outcome(console, section(h.vin))
    assert done["outcome"] == "ok" and done["grant"] == str(gid), done
    with sdk(world, h.key) as c:
        after = c.query("consent", "grants_of", vin=h.vin)["grants"]
        allowed = c.query("consent", "allowed", vin=h.vin, org="allied-insurance", category="history")
    assert [(g["id"], g["status"], g["revoked_by"]) for g in after] == [(gid, "revoked", h.key.did)]
    assert allowed["allowed"] is False
    rows = grant_rows(console, h.vin)
    assert page_rows(rows) == sdk_rows(after) and not rows[0]["revocable"]
    assert rows[0]["badge"] == "verified" and f"revoked, block {after[0]['revoked']}" in rows[0]["proof"]
    assert console.errors == []


def sell_on(world: Any, h: Holding) -> None:
    """The holder sells the vehicle to another key while its page is open."""
    buyer = KeyPair.from_label(f"console-consent-buyer-{h.vin}")
    with sdk(world) as c:
        ok(c.send(veh.TransferTitle(vin=h.vin, to=buyer.did), h.key, buyer))


def on_record(regulator: Client, vin: str) -> list[tuple[Any, ...]]:
    """Every grant ever made on ``vin`` (a regulator reads every holding's), as recorded."""
    answer = regulator.query("consent", "grants_of", vin=vin, holdings="all")
    return [(g["id"], g["org"], g["categories"], g["purpose"], g["until"], g["revoked"]) for g in answer["grants"]]


REFUSALS: dict[str, tuple[int, Callable[[Any, Holding], None], Callable[[Holding, dict[str, Any]], str] | None]] = {
    # name: (days from the head's block time for the form's date, what happens after the page opened,
    #        the sentence independently of the node (None: the SDK's rendering of the proven receipt))
    "consent_expiry_past": (-2, lambda world, h: None, None),
    "not_holder": (30, sell_on, lambda h, tx: str(consent_errors.NotHolder(vin=h.vin, sender=h.key.did))),
}


@pytest.mark.parametrize("code", sorted(REFUSALS))
def test_a_grant_the_ledger_refuses_shows_its_code_and_sentence_and_changes_nothing(
        console: Any, world: Any, holding: Any, code: str) -> None:
    days, meanwhile, sentence = REFUSALS[code]
    h = holding()
    with sdk(world, h.key) as c:
        ok(c.send(GrantConsent(vin=h.vin, org="meister-werkstatt", categories=["history"], purpose="service reminders",
                               until=c.checkpoint("latest").header.time + 10 * DAY_MS), h.key))
    open_console(console, world.node.url, f"#/consent/{h.vin}", key=h.path)
    before = grant_rows(console, h.vin)
    with sdk(world, demo_key(world, "kba-admin")) as reg:
        every_before = on_record(reg, h.vin)
    meanwhile(world, h)
    got = submit_grant(console, org="allied-insurance", categories=["odometer"], purpose="a quote",
                       day=day_after(head_time(world), days))
    assert got["outcome"] == "failed" and got["code"] == code, got
    with sdk(world) as c:  # the node's key reads every receipt (the seller's key is no one's after the sale)
        receipt = c.receipt(got["tx"])
    assert not receipt.ok and receipt.error is not None and receipt.error.code == code
    expected = sentence(h, got) if sentence else receipt.error.message
    assert got["sentence"] == expected and expected
    assert got["badge"] == "verified"  # the failed receipt itself is proven
    with sdk(world, demo_key(world, "kba-admin")) as reg:
        assert on_record(reg, h.vin) == every_before
    if code != "not_holder":
        assert grant_rows(console, h.vin) == before  # the refreshed list: as it was
    assert console.errors == []


def test_a_form_without_a_category_sends_nothing(console: Any, world: Any, holding: Any) -> None:
    h = holding()
    open_console(console, world.node.url, f"#/consent/{h.vin}", key=h.path)
    with sdk(world) as c:
        height = c.status()["height"]
    console.select_option("#grant-org", "allied-insurance")
    console.fill("#grant-purpose", "a quote")
    console.fill("#grant-until", day_after(head_time(world), 5))
    console.click("#grant-form button[type=submit]")
    assert outcome(console, "#grant-outcome")["outcome"] == "invalid"
    assert console.evaluate("document.activeElement.value") == CATEGORIES[0]
    with sdk(world) as c:
        assert c.status()["height"] == height  # no transaction was sent
    assert grant_rows(console, h.vin) == []


def test_a_key_that_holds_nothing_is_told_so(console: Any, world: Any, tmp_path: Path) -> None:
    nobody = KeyPair.from_label("console-consent-holds-nothing")
    with sdk(world, nobody) as c:
        assert c.query("vehicles", "vehicles_of", holder=nobody.did)["total"] == 0
    open_console(console, world.node.url, "#/consent", key=key_file(tmp_path, nobody, "nobody"))
    assert "holds no vehicle" in console.inner_text("#view")
    assert console.query_selector("section.vehicle") is None and console.query_selector("#grant-form") is None


def _answer_with(evidence: dict[str, Any]) -> Callable[[Any], None]:
    """A route that submits the transaction for real and answers with ``evidence`` (another transaction's proven receipt)."""
    def answer(route: Any) -> None:
        if route.request.method != "POST":
            return route.continue_()
        real = route.fetch()
        route.fulfill(response=real, body=json.dumps(evidence))
    return answer


def test_a_node_answering_a_grant_with_another_transactions_receipt_is_caught(console: Any, world: Any,
                                                                              granted: Holding) -> None:
    """The node answers the browser's grant with the proven receipt of the holder's earlier grant:
    a genuine receipt, of another transaction. The page says it is not this one's."""
    with sdk(world, granted.key) as c:
        [earlier] = c.query("consent", "grants_of", vin=granted.vin)["grants"]
        txid = next(t for t in world.node.http.get(f"/v1/blocks/{earlier['height']}").json()["tx_ids"])
    console.route("**/v1/txs?wait=*", _answer_with(world.node.http.get(f"/v1/txs/{txid}").json()))
    open_console(console, world.node.url, f"#/consent/{granted.vin}", key=granted.path)
    got = submit_grant(console, org="meister-werkstatt", categories=["odometer"], purpose="reminders",
                       day=day_after(head_time(world), 3))
    assert got["outcome"] == "unverified" and got["badge"] == "failed", got


def test_the_frameworks_send_refuses_a_receipt_of_another_transaction(console: Any, world: Any, granted: Holding) -> None:
    with sdk(world, granted.key) as c:
        [earlier] = c.query("consent", "grants_of", vin=granted.vin)["grants"]
    txid = world.node.http.get(f"/v1/blocks/{earlier['height']}").json()["tx_ids"][0]
    console.route("**/v1/txs?wait=*", _answer_with(world.node.http.get(f"/v1/txs/{txid}").json()))
    open_console(console, world.node.url, f"#/consent/{granted.vin}", key=granted.path)
    said = console.evaluate("""async (vin) => {
        try {
            const r = await Console.send({type: "consent.revoke", vin, grant: 999999});
            return "taken: the receipt of " + r.evidence.id + " for " + r.id;
        } catch (e) { return "refused: " + e.message; }
    }""", granted.vin)
    assert said.startswith("refused"), said


# ---------------------------------------------------------------- answers rewritten in flight


def _edit_value(field: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def edit(answer: dict[str, Any]) -> None:
        answer["value"][field] = change(answer["value"][field])
    return edit


def _edit_raw(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(answer: dict[str, Any]) -> None:
        raw = json.loads(answer["raw"])
        raw[field] = value
        answer["raw"] = json.dumps(raw, separators=(",", ":"), sort_keys=True)
        answer["value"] = raw
    return edit


def _edit_grant(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(answer: dict[str, Any]) -> None:
        answer["result"]["grants"][0][field] = value
    return edit


def _edit_receipt_event(answer: dict[str, Any]) -> None:
    for ev in answer["receipt"]["events"]:
        if ev["type"] == "consent.granted":
            ev["categories"] = list(CATEGORIES)


def _edit_listed_since(answer: dict[str, Any]) -> None:
    answer["result"]["vehicles"][0]["since"] += 1


#: what is rewritten: (the key that reads the page, its page (the vehicle's or the list), the route, the edit,
#: the badge that must fail, words of its reason)
TAMPER: dict[str, tuple[str, str, str, Callable[[dict[str, Any]], None], str, str]] = {
    "the vehicle record's holding time": (
        "holder", "vehicle", "**/v1/state/veh/v/{vin}*", _edit_value("holder_since", lambda t: t + 1), "dl", "proven bytes"),
    "the vehicle record's holder, bytes and all": (
        "holder", "vehicle", "**/v1/state/veh/v/{vin}*", _edit_raw("holder", "org:kba"), "dl", "state"),
    "the list of held vehicles' holding time": (
        "holder", "list", "**/v1/q/vehicles/vehicles_of?*", _edit_listed_since, "dl", "the proven record says"),
    "a grant's purpose in the list": (
        "holder", "vehicle", "**/v1/q/consent/grants_of?*", _edit_grant("purpose", "anything at all"), "tr[data-grant]",
        "purpose"),
    "a grant's categories in the list": (
        "holder", "list", "**/v1/q/consent/grants_of?*", _edit_grant("categories", list(CATEGORIES)), "tr[data-grant]",
        "categories"),
    "a grant's status in the list": (
        "holder", "vehicle", "**/v1/q/consent/grants_of?*", _edit_grant("status", "expired"), "tr[data-grant]",
        "proven records say active"),
    "the grant's transaction receipt": (
        "holder", "vehicle", "**/v1/txs/*", _edit_receipt_event, "tr[data-grant]", "proven bytes"),
    "the grant's record (a regulator reads it)": (
        "kba-admin", "vehicle", "**/v1/state/consent/g/*", _edit_value("until", lambda t: t + DAY_MS), "tr[data-grant]",
        "proven bytes"),
    "a grant's purpose in the list (a regulator's page)": (
        "kba-admin", "vehicle", "**/v1/q/consent/grants_of?*", _edit_grant("purpose", "anything at all"),
        "tr[data-grant]", "the proven record says 'a quote'"),
    "a grant's status in the list (a regulator's page)": (
        "kba-admin", "vehicle", "**/v1/q/consent/grants_of?*", _edit_grant("status", "revoked"),
        "tr[data-grant]", "proven records say active"),
}


@pytest.fixture
def granted(world: Any, holding: Any) -> Holding:
    """A vehicle of the test's with one grant to allied-insurance, made through the SDK."""
    h = holding()
    with sdk(world, h.key) as c:
        ok(c.send(GrantConsent(vin=h.vin, org="allied-insurance", categories=["history"], purpose="a quote",
                               until=c.checkpoint("latest").header.time + 20 * DAY_MS), h.key))
    return h


@pytest.mark.parametrize("what", sorted(TAMPER))
def test_an_answer_rewritten_in_flight_fails_its_badge(console: Any, world: Any, granted: Holding, what: str) -> None:
    reader, shown, pattern, edit, where, reason = TAMPER[what]

    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200 or route.request.method != "GET":
            return route.fulfill(response=answer)
        body = answer.json()
        edit(body)
        route.fulfill(response=answer, body=json.dumps(body))

    console.route(pattern.format(vin=granted.vin), rewrite)
    hash = f"#/consent/{granted.vin}" if shown == "vehicle" else "#/consent"
    if reader == "holder":
        open_console(console, world.node.url, hash, key=granted.path)
    else:
        open_console(console, world.node.url, hash, data=world.data, name=reader)
    b = badge_at(console, f"{section(granted.vin)} {where}")
    assert b["state"] == "failed" and reason in b["reason"], b
    states = sorted(x["state"] for x in badges(console))
    assert states == ["failed"] + ["verified"] * (len(states) - 1), badges(console)  # the one rewritten, no other
    assert console.errors == []


def test_the_untampered_page_verifies_every_badge(console: Any, world: Any, granted: Holding) -> None:
    """The control for the rewrites above: the same page, nothing rewritten."""
    open_console(console, world.node.url, f"#/consent/{granted.vin}", key=granted.path)
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)


# ---------------------------------------------------------------- keyboard and zoom


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until ``selector`` has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement === document.querySelector(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def test_the_grant_form_is_filled_and_sent_and_a_grant_revoked_with_the_keyboard_alone(
        browser: Any, world: Any, holding: Any) -> None:
    h = holding()
    day = day_after(head_time(world), 40)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = ctx.new_page()
    try:
        open_console(page, world.node.url, f"#/consent/{h.vin}", key=h.path)
        page.evaluate("document.activeElement.blur()")
        tab_to(page, "#grant-org")
        page.keyboard.type("Meister")  # a closed select's type-ahead
        assert page.evaluate("document.getElementById('grant-org').value") == "meister-werkstatt"
        tab_to(page, '#grant-form input[value="history"]')
        page.keyboard.press("Space")
        page.keyboard.press("Tab")
        page.keyboard.press("Space")  # odometer
        tab_to(page, "#grant-purpose")
        page.keyboard.type("service reminders")
        tab_to(page, "#grant-until")
        y, m, d = day.split("-")
        page.keyboard.type(f"{m}{d}{y}")  # en-US: month, day, year
        assert page.evaluate("document.getElementById('grant-until').value") == day
        tab_to(page, "#grant-form button[type=submit]")
        page.keyboard.press("Enter")
        wait_until(page, "document.getElementById('grant-form').dataset.state === 'done'")
        settle(page)
        got = outcome(page, "#grant-outcome")
        assert got["outcome"] == "ok", got
        with sdk(world, h.key) as c:
            [g] = c.query("consent", "grants_of", vin=h.vin)["grants"]
        assert (g["org"], g["categories"], g["purpose"], g["until"]) == (
            "meister-werkstatt", ["history", "odometer"], "service reminders", end_of(day))

        tab_to(page, f'[data-revoke="{g["id"]}"]')
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.dataset.confirm") == str(g["id"])  # the focus moves to the confirmation
        page.keyboard.press("Enter")
        section_ready(page, h.vin)
        with sdk(world, h.key) as c:
            assert [x["status"] for x in c.query("consent", "grants_of", vin=h.vin)["grants"]] == ["revoked"]
    finally:
        ctx.close()




def test_at_200_percent_zoom_no_text_leaves_the_screen(browser: Any, world: Any, granted: Holding) -> None:
    ctx = zoomed(browser)
    page = ctx.new_page()
    try:
        for hash in ["#/consent", f"#/consent/{granted.vin}"]:
            open_console(page, world.node.url, hash, key=granted.path)
            assert page.query_selector("#grant-form") is not None
            assert page.evaluate(TEXT_OUTSIDE_SCREEN) == [], hash
        open_console(page, world.node.url, "#/consent", data=world.data, name="dan")  # two vehicles, a grant
        assert page.evaluate(TEXT_OUTSIDE_SCREEN) == []
    finally:
        ctx.close()

