"""The console's organisation pages in Chromium: the consortium's directory (organisations, the
consensus, open proposals) and one organisation's roles, member keys, node keys and votes, each with
a badge the page settles itself against the trust anchor (the governance state the answer comes from).

What the page shows is compared with what the Python SDK reads from the same node; which
organisation is the loaded key's own is marked for a member key and a node key, and for nobody's
when the key is a holder's. An answer rewritten in flight turns its badge to failed; the pages work
with the keyboard alone; at 200 % zoom no text leaves the screen.

The test of member keys and votes makes its own changes: keys added to Fairmine Audit (one revoked,
one rotated) and a proposal that changes nothing if passed (a parameter set to its own value), which
the test then has the consortium reject, so no proposal it opened stays open.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from blokauto.client import Client
from blokauto.core.crypto import KeyPair
from blokauto.keystore import KeyStore
from blokauto.modules.governance import messages as gov
from blokauto.modules.governance.state import SetParameter

from helpers.console import TEXT_OUTSIDE_SCREEN, badges, demo_key, key_file, open_console, sdk, settle, wait_until, zoomed

pytest_plugins = ["helpers.reports", "helpers.console"]

ORG = "fairmine-audit"  # the organisation whose keys the test changes


def ok(info: Any) -> Any:
    assert info.ok, info.error
    return info


def rows(page: Any, table: str, attr: str) -> list[dict[str, Any]]:
    """Each row of ``table`` ([data-ATTR]): its key, cells' text and badge."""
    return page.eval_on_selector_all(f"{table} tr[data-{attr}]", f"""(trs) => trs.map((tr) => ({{
        key: tr.dataset['{attr}'], data: Object.assign({{}}, tr.dataset), cells: [...tr.cells].map((c) => c.textContent),
        badge: tr.querySelector('.badge') ? tr.querySelector('.badge').dataset.state : ''}}))""")


def badge_at(page: Any, selector: str) -> dict[str, str]:
    return page.eval_on_selector(f"{selector} .badge", "(b) => ({state: b.dataset.state, text: b.textContent, "
                                                       "reason: b.dataset.reason || ''})")


# ---------------------------------------------------------------- the directory


#: key name -> the organisation the page must call its own (None: none)
WHOSE = {"kba-admin": "kba", "bavaria-motors-admin": "bavaria-motors", "ben": None, "kba-node": "kba"}


@pytest.mark.parametrize("name", sorted(WHOSE))
def test_the_directory_lists_the_ledgers_organisations_and_marks_the_keys_own(console: Any, world: Any, name: str) -> None:
    key = demo_key(world, name)
    with sdk(world, key) as c:
        orgs = c.query("governance", "organisations")
        consensus = c.query("governance", "consensus")
        open_ = c.query("governance", "proposals", status="open")
    open_console(console, world.node.url, "#/organisation", data=world.data, name=name)
    shown = rows(console, "#organisations", "org")
    assert [(r["key"], r["cells"][0].replace(" (yours)", ""), r["cells"][2]) for r in shown] == [
        (o["id"], o["name"], ", ".join(o["roles"])) for o in orgs]
    assert [r["key"] for r in shown if r["data"]["mine"] == "true"] == ([WHOSE[name]] if WHOSE[name] else [])
    nodes = rows(console, "#consensus", "node")
    assert [(r["key"], r["cells"][1]) for r in nodes] == [(n["did"], n["org"]) for n in consensus["nodes"]]
    assert f"{consensus['quorum']} of {len(consensus['nodes'])} node key" in console.inner_text("#consensus")
    assert [int(r["key"]) for r in rows(console, ".proposals[aria-label='Open proposals']", "proposal")] == [
        p["id"] for p in open_["items"]]
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)
    assert console.errors == []


def test_a_key_nobody_knows_is_refused_the_directory(console: Any, world: Any, tmp_path: Path) -> None:
    stranger = key_file(tmp_path, KeyPair.from_label("console-organisation-stranger"), "stranger")
    open_console(console, world.node.url, "#/organisation", key=stranger)
    assert console.locator("#view [data-code]").get_attribute("data-code") == "unknown_caller"


def test_an_organisation_nobody_admitted_is_not_found(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/organisation/no-such-org", data=world.data, name="kba-admin")
    assert console.locator("#view [data-code]").get_attribute("data-code") == "not_found"


# ---------------------------------------------------------------- one organisation


@dataclass
class Changes:
    added: KeyPair     # an active member key, added by the test
    revoked: KeyPair   # added, then revoked
    rotated: KeyPair   # added, then rotated away to ``added``
    proposal: int      # open: proposed by ORG (yes), allied-insurance voted no


def _reject(world: Any, c: Client, proposal: int) -> None:
    """Every other organisation votes no until the proposal is rejected."""
    keys = KeyStore(world.data / "keys")
    for o in c.query("governance", "organisations"):
        if c.query("governance", "proposal", id=proposal)["status"] != "open":
            return
        if o["id"] == ORG or not (world.data / "keys" / f"{o['id']}-admin.json").exists():
            continue
        c.send(gov.Vote(proposal=proposal, approve=False), keys.load(f"{o['id']}-admin"))  # already voted: refused, fine
    assert c.query("governance", "proposal", id=proposal)["status"] == "rejected"


@pytest.fixture(scope="module")
def changes(world: Any) -> Iterator[Changes]:
    admin, allied = demo_key(world, f"{ORG}-admin"), demo_key(world, "allied-insurance-admin")
    revoked, rotated, added = (KeyPair.from_label(f"console-organisation-{n}") for n in ("revoked", "rotated", "added"))
    with sdk(world) as c:
        for k in (revoked, rotated):
            ok(c.send(gov.AddMember(member=k.did, roles=["auditor"]), admin, k))
        ok(c.send(gov.RevokeMember(member=revoked.did, reason="left the company"), admin))
        ok(c.send(gov.RotateKey(new_key=added.did), rotated, added))
        value = next(p["value"] for p in c.params() if p["name"] == "max_consent_ms")
        info = ok(c.send(gov.Propose(action=SetParameter(name="max_consent_ms", value=value),
                                     note="console test: changes nothing"), admin))
        proposal = next(e["proposal"] for e in info.events if e["type"] == "governance.proposal_opened")
        ok(c.send(gov.Vote(proposal=proposal, approve=False), allied))
        try:
            yield Changes(added, revoked, rotated, proposal)
        finally:
            _reject(world, c, proposal)


def opened(page: Any, proposal: int) -> list[dict[str, Any]]:
    """The row of open proposal ``proposal`` (a list of one, or none)."""
    return [r for r in rows(page, ".proposals[aria-label='Open proposals']", "proposal") if r["key"] == str(proposal)]


def test_an_organisations_page_shows_its_keys_revoked_and_rotated_ones_marked_and_its_votes(
        console: Any, world: Any, changes: Changes) -> None:
    with sdk(world, demo_key(world, f"{ORG}-admin")) as c:
        org = c.query("governance", "organisation", id=ORG)
        consensus = c.query("governance", "consensus")
        proposal = c.query("governance", "proposal", id=changes.proposal)
        rotated = c.query("governance", "member", did=changes.rotated.did)
    open_console(console, world.node.url, f"#/organisation/{ORG}", data=world.data, name=f"{ORG}-admin")
    assert console.inner_text("h1").startswith(org["name"])
    members = {r["key"]: r for r in rows(console, "#members", "member")}
    assert {(d, r["data"]["status"], r["cells"][1]) for d, r in members.items()} == {
        (m["did"], m["status"], ", ".join(m["roles"])) for m in org["members"]}
    assert members[changes.revoked.did]["data"]["status"] == "revoked"
    assert members[changes.rotated.did]["data"]["status"] == "rotated" and rotated["successor"] == changes.added.did
    assert changes.added.did[:24] in members[changes.rotated.did]["cells"][2]  # the key that replaced it (proven)
    assert members[changes.added.did]["data"]["status"] == "active"
    mine = [d for d, r in members.items() if "(you" in r["cells"][0]]
    assert mine == [demo_key(world, f"{ORG}-admin").did]
    assert "yes" in console.inner_text("#yours")
    assert [r["key"] for r in rows(console, "#nodes", "node")] == org["nodes"] + [
        n["did"] for n in consensus["nodes"] if n["org"] == ORG and n["did"] not in org["nodes"]]
    [shown] = opened(console, changes.proposal)
    assert shown["cells"][1] == f"set max_consent_ms to {proposal['action']['value']}"
    assert shown["cells"][4].startswith("1 yes, 1 no") and proposal["votes"] == {ORG: True, "allied-insurance": False}
    assert shown["cells"][5] == "yes"  # this organisation's vote
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)

    open_console(console, world.node.url, "#/organisation/allied-insurance", data=world.data, name="allied-insurance-admin")
    [shown] = opened(console, changes.proposal)
    assert shown["cells"][5] == "no"
    open_console(console, world.node.url, "#/organisation/kba", data=world.data, name="ben")
    [shown] = opened(console, changes.proposal)
    assert shown["cells"][5] == "not yet" and "no" == console.inner_text("#yours")
    assert console.errors == []


def test_a_regulators_organisation_page_shows_its_node_key_attesting_blocks(console: Any, world: Any) -> None:
    with sdk(world) as c:
        consensus = c.query("governance", "consensus")
    open_console(console, world.node.url, "#/organisation/kba", data=world.data, name="kba-node")
    nodes = rows(console, "#nodes", "node")
    assert [(r["key"], r["cells"][1]) for r in nodes] == [(n["did"], "yes") for n in consensus["nodes"] if n["org"] == "kba"]
    assert world.node_key.did in [r["key"] for r in nodes]
    assert "node key of kba" in console.inner_text("#me")
    assert {b["state"] for b in badges(console)} == {"verified"}, badges(console)


# ---------------------------------------------------------------- answers rewritten in flight


def _query(edit: Callable[[Any], None]) -> Callable[[dict[str, Any]], None]:
    return lambda answer: edit(answer["result"])


def _state_value(field: str, change: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def edit(answer: dict[str, Any]) -> None:
        answer["value"][field] = change(answer["value"][field])
    return edit


def _state_raw(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(answer: dict[str, Any]) -> None:
        raw = json.loads(answer["raw"])
        raw[field] = value
        answer["raw"] = json.dumps(raw, separators=(",", ":"), sort_keys=True)
        answer.pop("value", None)
    return edit


def _first_proposal(answer: dict[str, Any]) -> None:
    answer["result"]["items"][0]["votes"]["kba"] = False


#: what is rewritten: (the page, the route, the edit, the badge that must fail, words of its reason)
TAMPER: dict[str, tuple[str, str, Callable[[dict[str, Any]], None], str, str]] = {
    "an organisation's name": ("#/organisation/kba", "**/v1/q/governance/organisation?*",
                               _query(lambda o: o.__setitem__("name", "Kraftfahrt-Bundesamt (forged)")), "h1", "name"),
    "an organisation's roles": ("#/organisation/kba", "**/v1/q/governance/organisation?*",
                                _query(lambda o: o["roles"].append("manufacturer")), "h1", "roles"),
    "an organisation's record, bytes and all": ("#/organisation/kba", "**/v1/state/gov/org/kba*",
                                                _state_raw("roles", ["manufacturer"]), "h1", "state"),
    "a member key's status": ("#/organisation/kba", "**/v1/q/governance/organisation?*",
                              _query(lambda o: o["members"][0].__setitem__("status", "revoked")), "#members", "status"),
    "a member key's record": ("#/organisation/kba", "**/v1/state/gov/member/*",
                              _state_value("roles", lambda r: r + ["manufacturer"]), "#members", "proven bytes"),
    "the consensus quorum": ("#/organisation", "**/v1/q/governance/consensus*",
                             _query(lambda c: c.__setitem__("quorum", c["quorum"] + 1)), "#consensus h2", "quorum"),
    "the consensus record": ("#/organisation", "**/v1/state/gov/consensus*",
                             _state_raw("quorum", 2), "#consensus h2", "state"),
    "an organisation left out of the list": ("#/organisation", "**/v1/q/governance/organisations*",
                                             _query(lambda orgs: orgs.pop(0)), "#orgs-title", "leaves out"),
    "a listed organisation's node keys": ("#/organisation", "**/v1/q/governance/organisations*",
                                          _query(lambda orgs: orgs[0]["nodes"].append("did:key:z6MkForged")),
                                          "#organisations tbody tr:first-child", "nodes"),
    "a decided proposal's votes": ("#/organisation", "**/v1/q/governance/proposals?status=passed*", _first_proposal,
                                   "#decided tbody tr:first-child", "votes"),
}


@pytest.mark.parametrize("what", sorted(TAMPER))
def test_an_answer_rewritten_in_flight_fails_its_badge(console: Any, world: Any, what: str) -> None:
    hash, pattern, edit, where, reason = TAMPER[what]

    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        body = answer.json()
        edit(body)
        route.fulfill(response=answer, body=json.dumps(body))

    console.route(pattern, rewrite)
    open_console(console, world.node.url, hash, data=world.data, name="kba-admin")
    b = badge_at(console, where)
    assert b["state"] == "failed" and reason in b["reason"], b
    states = [x["state"] for x in badges(console)]
    assert "pending" not in states and states.count("failed") >= 1
    assert console.errors == []


def test_the_untampered_pages_verify_every_badge(console: Any, world: Any) -> None:
    """The control for the rewrites above."""
    for hash in ["#/organisation", "#/organisation/kba"]:
        open_console(console, world.node.url, hash, data=world.data, name="kba-admin")
        assert {b["state"] for b in badges(console)} == {"verified"}, (hash, badges(console))


# ---------------------------------------------------------------- keyboard and zoom


def test_an_organisation_is_opened_from_the_directory_with_the_keyboard_alone(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/organisation", data=world.data, name="ben")
    console.evaluate("document.activeElement.blur()")
    for _ in range(120):
        console.keyboard.press("Tab")
        if console.evaluate("document.activeElement.getAttribute('href')") == "#/organisation/kba":
            break
    else:
        raise AssertionError("the link to kba is not reachable with Tab")
    console.keyboard.press("Enter")
    wait_until(console, "!!document.querySelector('#view h1[data-org=\"kba\"]')")
    settle(console)
    assert console.evaluate("location.hash") == "#/organisation/kba"
    console.evaluate("document.activeElement.blur()")
    for _ in range(120):  # the decided proposals open with the keyboard too
        console.keyboard.press("Tab")
        if console.evaluate("document.activeElement.tagName") == "SUMMARY":
            break
    else:
        raise AssertionError("the decided proposals are not reachable with Tab")
    console.keyboard.press("Enter")
    assert console.evaluate("document.getElementById('decided').open") is True




def test_at_200_percent_zoom_no_text_leaves_the_screen(browser: Any, world: Any) -> None:
    ctx = zoomed(browser)
    page = ctx.new_page()
    try:
        for hash in ["#/organisation", "#/organisation/kba", f"#/organisation/{ORG}"]:
            open_console(page, world.node.url, hash, data=world.data, name="kba-admin")
            page.evaluate("document.querySelectorAll('#view details').forEach((d) => { d.open = true; })")
            assert page.evaluate(TEXT_OUTSIDE_SCREEN) == [], hash
    finally:
        ctx.close()
