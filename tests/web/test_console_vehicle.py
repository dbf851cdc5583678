"""A vehicle's page in the console, in Chromium: the history report verified in the browser, the
timeline, the odometer chart with the suspected rollback, parts and software proven from state,
recalls, and the holder's share link signed in the page.

What the page shows is compared with what the ledger says through the SDK, not with fixed strings;
a report or a state value rewritten in flight fails its badge and none of it is shown as verified;
a reader without consent sees the node's refusal.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from helpers.console import badges, open_console, settle

pytest_plugins = ["helpers.reports", "helpers.console"]


@pytest.fixture
def vin(world: Any) -> str:
    return world.old["vin"]


def report_of(world: Any, vin: str) -> dict[str, Any]:
    return world.node.http.get(f"/v1/reports/{vin}").json()


def state(world: Any, key: str) -> Any:
    return world.node.http.get(f"/v1/state/{key}").json()["value"]


def test_the_holder_sees_the_verified_history_of_the_car(console: Any, world: Any, vin: str) -> None:
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="ben")
    report = report_of(world, vin)
    assert [b["state"] for b in badges(console)] == ["verified"] * 3, badges(console)  # report, parts, software
    items = console.eval_on_selector_all("#timeline li", "(ls) => ls.length")
    assert items == len(report["timeline"]) == report["summary"]["entries"]
    assert console.inner_text("#holder") == json.loads(report["evidence"]["vehicle"]["raw"])["holder"]
    series = report["summary"]["odometer"]["series"]
    assert console.eval_on_selector_all("#odometer-table tbody tr", "(rs) => rs.length") == len(series)
    assert console.query_selector("#odometer-chart canvas") is not None
    flagged = [p for p in series if p["flag"]]
    assert flagged and "suspected rollback" in console.text_content("#odometer-table")
    recalls = console.eval_on_selector_all("#recalls tbody tr", "(rs) => rs.map((r) => r.cells[0].textContent)")
    assert recalls == [r["number"] for r in report["summary"]["open_recalls"]]
    assert console.errors == []


def test_parts_and_software_are_the_proven_state(console: Any, world: Any, vin: str) -> None:
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="kba-admin")
    bom = state(world, f"parts/bom/{vin}")
    shown = console.eval_on_selector_all("#parts tbody tr", "(rs) => rs.map((r) => r.cells[0].textContent)")
    assert shown == [i["ref"] for i in bom["items"]]
    software = state(world, f"sw/veh/{vin}")
    ecus = console.eval_on_selector_all("#software tbody tr", "(rs) => rs.map((r) => r.cells[0].textContent)")
    assert ecus == [e["ecu"] for e in software["ecus"]]


REPORT_TAMPER = {
    "an odometer reading lowered": lambda r: r["timeline"][4]["data"].__setitem__("km", 1),
    "an entry dropped": lambda r: (r["timeline"].pop(), r["evidence"]["entries"].pop()),
    "the accident hidden from the summary": lambda r: r["summary"].__setitem__("accidents", []),
    "the holder swapped": lambda r: r["evidence"]["vehicle"].__setitem__(
        "raw", r["evidence"]["vehicle"]["raw"].replace(json.loads(r["evidence"]["vehicle"]["raw"])["holder"],
                                                       "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK")),
}


@pytest.mark.parametrize("what", sorted(REPORT_TAMPER))
def test_a_report_rewritten_in_flight_is_not_shown(console: Any, world: Any, vin: str, what: str) -> None:
    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        report = answer.json()
        REPORT_TAMPER[what](report)
        route.fulfill(response=answer, body=json.dumps(report))

    console.route(f"**/v1/reports/{vin}*", rewrite)
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="ben")
    assert badges(console)[0]["state"] == "failed", badges(console)
    assert console.query_selector("#unverified") is not None
    assert console.query_selector("#timeline") is None and console.query_selector("#holder") is None


def test_a_bill_of_parts_rewritten_in_flight_fails_its_badge(console: Any, world: Any, vin: str) -> None:
    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        ev = answer.json()
        ev["raw"] = ev["raw"].replace("SW-PAD-44:B2024-09", "SW-PAD-44:B2024-11")
        ev["value"] = json.loads(ev["raw"])
        route.fulfill(response=answer, body=json.dumps(ev))

    console.route(f"**/v1/state/parts/bom/{vin}*", rewrite)
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="ben")
    states = [b["state"] for b in badges(console)]
    assert states == ["verified", "failed", "verified"], badges(console)
    assert console.query_selector("#parts") is None


def test_a_reader_without_consent_sees_the_refusal(console: Any, world: Any, vin: str) -> None:
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="stopwell-brakes-admin")
    assert console.locator("#view [data-code]").first.get_attribute("data-code") == "consent_required"
    assert console.query_selector("#timeline") is None


def test_a_vin_that_is_not_one_is_refused_in_the_page(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/vehicle/IOQ", data=world.data, name="kba-admin")
    assert "is not a VIN" in console.inner_text("#view")


def test_the_holder_makes_a_share_link_that_opens_the_report_without_a_key(console: Any, world: Any, vin: str,
                                                                           browser: Any) -> None:
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="ben")
    console.fill("#share-days", "3")
    console.click("button:has-text('Make a share link')")
    console.wait_for_selector("#share-url")
    url = console.input_value("#share-url")
    token = parse_qs(urlparse(url).query)["share"][0]
    assert httpx.get(f"{world.node.url}/v1/reports/{vin}", params={"share": token}).status_code == 200
    assert httpx.get(f"{world.node.url}/v1/reports/{world.rich['vin']}", params={"share": token}).status_code == 401
    ctx = browser.new_context()  # a buyer: no key, only the link
    try:
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_selector("#badge")
        for _ in range(300):
            if page.evaluate("document.getElementById('badge').dataset.state") != "pending":
                break
            page.wait_for_timeout(50)
        assert page.evaluate("document.getElementById('badge').dataset.state") == "ok"
    finally:
        ctx.close()


def test_only_the_holder_is_offered_a_share_link(console: Any, world: Any, vin: str) -> None:
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="kba-admin")
    assert console.query_selector("#share-days") is None
    settle(console)


def test_a_share_link_outside_its_allowed_life_is_not_made(console: Any, world: Any, vin: str) -> None:
    open_console(console, world.node.url, f"#/vehicle/{vin}", data=world.data, name="ben")
    console.fill("#share-days", "91")
    console.click("button:has-text('Make a share link')")  # the browser's own check holds the form back
    assert console.evaluate("document.getElementById('share-days').matches(':invalid')")
    console.evaluate("document.getElementById('share-days').removeAttribute('max')")  # and the page's, without it
    console.click("button:has-text('Make a share link')")
    console.wait_for_selector("#share-link p")
    assert "1 to 90 days" in console.inner_text("#share-link")
    assert console.query_selector("#share-url") is None
