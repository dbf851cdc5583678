"""The console's recalls pages in Chromium: the open campaigns, and one campaign with its proven record,
its progress over time (uPlot), the vehicles it affected, the owners notified and the remedies.

What the page shows is compared with what the node's API and the CLI answer on their own (the demo's
campaigns 24V-117 and 24V-201, and the two the report world adds). A node that rewrites a campaign, a
remedy, a checkpoint or its progress in flight, or proves another campaign than the one asked for, is
caught by the badge, and the rewritten value is not shown as verified; a reader who is not a party to a
campaign sees the refusal with its code; the pages work with the keyboard alone and at 200 % zoom.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest

from blokauto.keystore import KeyStore

from conftest import run_cli, signed
from helpers.console import TEXT_OUTSIDE_SCREEN, badges, go, open_console, settle, zoomed

pytest_plugins = ["helpers.reports", "helpers.console"]

DEMO_NUMBERS = {"24V-117", "24V-201"}


def q(world: Any, name: str, key: str | None = None, **params: Any) -> Any:
    """``recalls <name>`` as the node answers it: to its own key (reads everything) or to ``key``."""
    if key is None:
        r = world.node.http.get(f"/v1/q/recalls/{name}", params=params)
    else:
        with signed(world.node.url, KeyStore(Path(world.data) / "keys").load(key)) as http:
            r = http.get(f"/v1/q/recalls/{name}", params=params)
    return r.json()["result"] if r.status_code == 200 else (r.status_code, r.json()["error"]["code"])


def campaign_id(world: Any, number: str) -> int:
    return next(c["id"] for c in q(world, "open") if c["number"] == number)


def cli_progress(world: Any, cid: int) -> dict[str, Any]:
    """``blokauto query recalls progress campaign=ID`` through the real CLI, as the campaign's manufacturer."""
    r = run_cli("query", "recalls", "progress", f"campaign={cid}", "--as", "bavaria-motors-admin",
                "--data", str(world.data), "--node", world.node.url)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def cells(page: Any, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(f"{selector} tbody tr",
                                     "(rs) => rs.map((r) => [...r.cells].map((c) => c.textContent.trim()))")


def by_id(page: Any) -> dict[str, dict[str, str]]:
    """Each badge by what it checks (its ``data-what``)."""
    return page.eval_on_selector_all("#view .badge", "(bs) => Object.fromEntries(bs.map((b) => [b.dataset.what, "
                                                     "{state: b.dataset.state, text: b.textContent}]))")


# ---------------------------------------------------------------- what the pages show


def test_the_open_campaigns_are_listed_each_proven(console: Any, world: Any) -> None:
    open_campaigns = q(world, "open")
    assert DEMO_NUMBERS <= {c["number"] for c in open_campaigns}
    open_console(console, world.node.url, "#/recalls", data=world.data, name="kba-admin")
    rows = cells(console, "#campaigns")
    assert [r[0] for r in rows] == [c["number"] for c in open_campaigns]
    assert [r[1] for r in rows] == [c["component"] for c in open_campaigns]
    assert [int(r[4]) for r in rows] == [c["remedied"] for c in open_campaigns]
    links = console.eval_on_selector_all("#campaigns tbody a[href^='#/recall/']",
                                         "(as) => as.map((a) => a.getAttribute('href'))")
    assert links == [f"#/recall/{c['id']}" for c in open_campaigns]
    states = [b["state"] for b in badges(console)]
    assert states == ["verified"] * (len(open_campaigns) + 1), badges(console)  # the list, then each campaign
    assert console.errors == []


@pytest.mark.parametrize("number", sorted(DEMO_NUMBERS))
def test_a_campaign_shows_its_proven_record_progress_affected_vehicles_and_remedies(console: Any, world: Any,
                                                                                   number: str) -> None:
    cid = campaign_id(world, number)
    record = q(world, "campaign", id=cid)
    affected = q(world, "affected", campaign=cid)["vehicles"]
    remedies = q(world, "remedies", campaign=cid)["remedies"]
    open_console(console, world.node.url, f"#/recall/{cid}", data=world.data, name="kba-admin")
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)
    assert console.inner_text("h1").startswith(f"Recall {number}")
    facts = console.inner_text("#campaign")
    assert record["summary"] in facts and record["component"] in facts and f"block {record['opened']}" in facts
    progress = console.inner_text("#progress")
    for label, value in (("Affected", record["progress"]["affected"]), ("Remedied", record["remedied"]),
                         ("Outstanding", record["progress"]["outstanding"])):
        assert f"{label}\n{value}" in progress or f"{label}\t{value}" in progress, (label, value, progress)
    assert [r[0] for r in cells(console, "#affected")] == [v["vin"] for v in affected]
    assert [r[2] for r in cells(console, "#affected")] == ["remedied" if v["remedied"] else "outstanding" for v in affected]
    notified = console.inner_text("#notifications")
    assert f"{len(affected)} owner notification" in notified
    assert [(r[0], r[2], r[3]) for r in cells(console, "#remedies")] == [
        (x["vin"], x["method"], f"block {x['height']}") for x in remedies]
    assert len(remedies) == record["remedied"] > 0


def test_progress_over_time_is_a_chart_of_what_the_cli_answers(console: Any, world: Any) -> None:
    cid = campaign_id(world, "24V-201")
    expected = cli_progress(world, cid)
    assert expected["remedied"] == q(world, "campaign", id=cid)["remedied"] == len(expected["points"]) > 1
    open_console(console, world.node.url, f"#/recall/{cid}", data=world.data, name="bavaria-motors-admin")
    assert console.locator("#progress-chart .uplot canvas").count() == 1  # drawn by uPlot
    assert "block height" in console.inner_text("#progress-chart .u-legend")  # the x axis (its label is drawn)
    assert "by block height" in console.get_attribute("#progress-chart", "aria-label")
    rows = cells(console, "#progress-table")
    assert rows == [[f"block {p['height']}", str(p["remedied"])] for p in expected["points"]]
    assert by_id(console)["the progress against the proven record"]["state"] == "verified"
    assert f"block {expected['opened']} is when the campaign opened" in console.inner_text("#progress-over-time")


def test_a_workshop_sees_the_campaign_but_not_its_vehicles_nor_progress(console: Any, world: Any) -> None:
    cid = campaign_id(world, "24V-117")
    for name in ("affected", "progress", "remedies"):
        assert q(world, name, key="meister-werkstatt-admin", campaign=cid) == (403, "not_a_party")
    open_console(console, world.node.url, f"#/recall/{cid}", data=world.data, name="meister-werkstatt-admin")
    assert by_id(console)[f"campaign {cid}"]["state"] == "verified"  # the record: any known key
    for section in ("#affected-vehicles", "#progress-over-time", "#remedy-list"):
        refusal = console.locator(f"{section} [data-code]")
        assert refusal.get_attribute("data-code") == "not_a_party", section
        assert "Not yours to read" in refusal.inner_text()
    assert console.locator("#affected").count() == 0
    assert not any(v["vin"] in console.inner_text("#view") for v in q(world, "affected", campaign=cid)["vehicles"])


# ---------------------------------------------------------------- answers rewritten in flight


def rewrite_json(page: Any, matches: Callable[[str], bool], change: Callable[[Any, Any], None]) -> list[str]:
    """Every 200 answer whose URL ``matches`` goes to the page with ``change(body, route)`` applied; returns the URLs."""
    seen: list[str] = []

    def handle(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        body = answer.json()
        change(body, route)
        seen.append(route.request.url)
        route.fulfill(response=answer, body=json.dumps(body))

    page.route(lambda url: matches(url), handle)
    return seen


def forged_value(ev: dict[str, Any], field: str, value: Any) -> None:
    """What a careful forger does: the value's bytes and the decoded value, changed alike."""
    v = json.loads(ev["raw"])
    v[field] = value
    ev["raw"] = json.dumps(v, separators=(",", ":"), sort_keys=True)
    ev["value"] = v


def other_campaign(world: Any) -> Callable[[Any, Any], None]:
    other = world.node.http.get(f"/v1/state/recall/c/{campaign_id(world, '24V-201'):016d}").json()

    def swap(ev: dict[str, Any], route: Any) -> None:
        ev.clear()
        ev.update(other)
    return swap


CAMPAIGN_TAMPER: dict[str, Callable[[Any], Callable[[Any, Any], None]]] = {
    "its summary": lambda w: lambda ev, r: forged_value(ev, "summary", "TAMPERED: nothing to worry about."),
    "its remedied count": lambda w: lambda ev, r: forged_value(ev, "remedied", 2),
    "the checkpoint's state root": lambda w: lambda ev, r: ev["checkpoint"]["header"].__setitem__("state_root", "ab" * 32),
    "an attestation's signature": lambda w: lambda ev, r: ev["checkpoint"]["attestations"][0].__setitem__("sig", "00" * 64),
    "another campaign's proof": other_campaign,
}


@pytest.mark.parametrize("what", sorted(CAMPAIGN_TAMPER))
def test_a_campaign_record_rewritten_in_flight_fails_its_badge(console: Any, world: Any, what: str) -> None:
    cid = campaign_id(world, "24V-117")
    seen = rewrite_json(console, lambda u: f"/v1/state/recall/c/{cid:016d}" in u, CAMPAIGN_TAMPER[what](world))
    open_console(console, world.node.url, f"#/recall/{cid}", data=world.data, name="kba-admin")
    assert seen, "the page asked for the campaign's proof"
    state = by_id(console)[f"campaign {cid}"]
    assert state["state"] == "failed", state
    text = console.inner_text("#view")
    assert "TAMPERED" not in text and "24V-201" not in console.inner_text("h1")
    assert "Not verified" in console.inner_text("#campaign")
    assert "(proven record)" not in console.inner_text("#progress")


def test_a_listed_campaign_the_node_rewrote_fails_its_row(console: Any, world: Any) -> None:
    def change(body: Any, route: Any) -> None:
        body["result"][0]["component"] = "TAMPERED component"

    rewrite_json(console, lambda u: u.endswith("/v1/q/recalls/open"), change)
    open_console(console, world.node.url, "#/recalls", data=world.data, name="kba-admin")
    states = [b["state"] for b in badges(console)]
    assert states[1] == "failed" and states[0] == "verified" and set(states[2:]) == {"verified"}, badges(console)
    assert "'component'" in badges(console)[1]["reason"]


def rewrite_last_remedy(body: Any, route: Any) -> None:
    body["result"]["remedies"][-1]["by"] = "someone-else"


@pytest.mark.parametrize("where", ["its proven record", "the node's list"])
def test_a_remedy_the_node_rewrote_fails_its_row(console: Any, world: Any, where: str) -> None:
    cid = campaign_id(world, "24V-201")
    vin = q(world, "remedies", campaign=cid)["remedies"][-1]["vin"]
    if where == "its proven record":
        rewrite_json(console, lambda u: u.endswith(f"/v1/state/recall/remedy/{cid:016d}/{vin}"),
                     lambda ev, r: forged_value(ev, "by", "someone-else"))
    else:
        rewrite_json(console, lambda u: "/v1/q/recalls/remedies?" in u, rewrite_last_remedy)
    open_console(console, world.node.url, f"#/recall/{cid}", data=world.data, name="kba-admin")
    rows = console.eval_on_selector_all("#remedies tbody tr", "(rs) => rs.map((r) => [r.cells[0].innerText, "
                                                              "r.querySelector('.badge').dataset.state])")
    assert rows[-1] == [vin, "failed"] and {s for _, s in rows[:-1]} == {"verified"}, rows
    if where == "its proven record":
        assert "someone-else" not in console.inner_text("#remedies")


def test_progress_the_node_inflated_disagrees_with_the_proven_record(console: Any, world: Any) -> None:
    cid = campaign_id(world, "24V-117")

    def change(body: Any, route: Any) -> None:
        p = body["result"]
        p["points"].append({"height": p["points"][-1]["height"] + 1, "remedied": p["remedied"] + 1})
        p["remedied"] += 1

    rewrite_json(console, lambda u: "/v1/q/recalls/progress?" in u, change)
    open_console(console, world.node.url, f"#/recall/{cid}", data=world.data, name="kba-admin")
    check = by_id(console)["the progress against the proven record"]
    assert check["state"] == "failed" and "the proven record says 1" in check["text"], check
    assert by_id(console)[f"campaign {cid}"]["state"] == "verified"


def test_the_framework_refuses_a_proof_of_another_key_than_the_one_asked(console: Any, world: Any) -> None:
    cid = campaign_id(world, "24V-117")
    rewrite_json(console, lambda u: f"/v1/state/recall/c/{cid:016d}" in u, other_campaign(world))
    open_console(console, world.node.url, "#/recalls", data=world.data, name="kba-admin")
    outcome = console.evaluate("(k) => Console.provenState(k).then((p) => 'accepted ' + p.value.number, "
                               "(e) => 'refused: ' + e.message)", f"recall/c/{cid:016d}")
    assert outcome.startswith("refused"), outcome


# ---------------------------------------------------------------- keyboard and zoom


def focused(page: Any) -> str:
    return page.evaluate("document.activeElement.id || document.activeElement.getAttribute('href') || "
                         "document.activeElement.tagName")


def test_the_recalls_pages_work_with_the_keyboard_alone(console: Any, world: Any) -> None:
    first, second = (campaign_id(world, n) for n in ("24V-117", "24V-201"))
    open_console(console, world.node.url, "#/recalls", data=world.data, name="bavaria-motors-admin")
    console.focus("#recall-find")
    console.keyboard.type(str(second))
    console.keyboard.press("Enter")
    settle(console)
    assert console.evaluate("location.hash") == f"#/recall/{second}"
    assert console.inner_text("h1").startswith("Recall 24V-201")
    go(console, "#/recalls")
    console.focus("#recall-find")
    for _ in range(10):  # from the search field, on through its button, to the first campaign's link
        console.keyboard.press("Tab")
        if focused(console) == f"#/recall/{first}":
            break
    assert focused(console) == f"#/recall/{first}"
    console.keyboard.press("Enter")
    settle(console)
    assert console.evaluate("location.hash") == f"#/recall/{first}"
    go(console, "#/recalls")
    console.focus("#recall-find")
    console.keyboard.type("24V")
    console.keyboard.press("Enter")
    assert "is not a campaign id" in console.inner_text("#problem")


def test_at_200_percent_zoom_no_recall_text_leaves_the_screen(browser: Any, world: Any) -> None:
    ctx = zoomed(browser)
    page = ctx.new_page()
    try:
        for hash in ["#/recalls", f"#/recall/{campaign_id(world, '24V-117')}", f"#/recall/{campaign_id(world, '24V-201')}"]:
            open_console(page, world.node.url, hash, data=world.data, name="kba-admin")
            wide = page.evaluate(TEXT_OUTSIDE_SCREEN)
            assert wide == [], (hash, wide)
            chart = page.evaluate("() => [...document.querySelectorAll('#progress-chart .uplot, #progress-chart canvas')]"
                                  ".every((c) => c.getBoundingClientRect().right <= document.documentElement.clientWidth)")
            assert chart, hash  # the chart itself fits: it is drawn to its box's width
    finally:
        ctx.close()
