"""The console's network page in Chromium: nodes, heights, lag, each node's checkpoint at the
common height checked in the page, the quorum of the newest blocks; and ``/v1/network``, which
relays the peers' answers, asked of real nodes.

A peer that signed another header at the same height (an equivocating or diverged node) is shown
as a divergence, proven by signatures; a peer whose checkpoint is forged fails its own badge and
proves nothing; a peer that does not answer is listed as such.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import msgspec

from blokauto.api.console_routes import _ask_peers
from blokauto.core.block import Checkpoint, Header, attest
from blokauto.core.encoding import to_builtins

from conftest import free_port
from helpers.console import badges, open_console

pytest_plugins = ["helpers.reports", "helpers.console"]


def with_peer(console: Any, make_peer: Any) -> None:
    """Every /v1/network answer gets one more peer, made from this node's own entry."""
    def rewrite(route: Any) -> None:
        answer = route.fetch()
        if answer.status != 200:
            return route.fulfill(response=answer)
        net = answer.json()
        net["peers"].append(make_peer(net))
        route.fulfill(response=answer, body=json.dumps(net))

    console.route("**/v1/network", rewrite)


def test_a_solo_node_agrees_with_itself_and_meets_its_quorum(console: Any, world: Any) -> None:
    open_console(console, world.node.url, "#/network", data=world.data, name="kba-admin")
    assert {b["state"] for b in badges(console)} == {"verified"}
    assert "agree on block" in console.inner_text("#agreement")
    rows = console.eval_on_selector_all("#quorum tbody tr", "(rs) => rs.map((r) => r.cells[2].textContent)")
    assert rows and set(rows) == {"1 of 1"}


def test_a_peer_with_another_header_signed_by_a_consortium_node_key_is_a_divergence(console: Any, world: Any) -> None:
    def forked(net: dict[str, Any]) -> dict[str, Any]:
        mine = net["self"]["checkpoint"]["header"]
        other = msgspec.convert({**mine, "state_root": "ee" * 32}, Header)
        return {"url": "http://127.0.0.1:1", "status": {**net["self"]["status"], "state_root": "ee" * 32},
                "checkpoint": {"header": to_builtins(other), "attestations": [to_builtins(attest(other, world.node_key))]}}

    with_peer(console, forked)
    open_console(console, world.node.url, "#/network", data=world.data, name="kba-admin")
    text = console.inner_text("#agreement")
    assert text.startswith("Divergence at block") and "2 different headers" in text
    assert console.get_attribute("#agreement", "role") == "alert"


def test_a_peer_whose_checkpoint_is_forged_proves_nothing(console: Any, world: Any) -> None:
    def forged(net: dict[str, Any]) -> dict[str, Any]:
        cp = net["self"]["checkpoint"]
        header = {**cp["header"], "state_root": "ee" * 32}  # re-using the real signature of another header
        return {"url": "http://127.0.0.1:1", "status": net["self"]["status"],
                "checkpoint": {"header": header, "attestations": cp["attestations"]}}

    with_peer(console, forged)
    open_console(console, world.node.url, "#/network", data=world.data, name="kba-admin")
    states = [b["state"] for b in badges(console)]
    assert states[:2] == ["verified", "failed"], badges(console)
    assert "agree on block" in console.inner_text("#agreement")  # one verified header: no divergence claimed


def test_a_peer_that_does_not_answer_is_listed(console: Any, world: Any) -> None:
    with_peer(console, lambda net: {"url": "http://127.0.0.1:1", "error": "ConnectError: connection refused"})
    open_console(console, world.node.url, "#/network", data=world.data, name="kba-admin")
    assert "no answer" in console.inner_text("#nodes")
    assert badges(console)[1]["state"] == "unreadable"


def test_the_relay_asks_real_peers_and_reports_those_that_do_not_answer(world: Any) -> None:
    """``/v1/network``'s relay, run against the demo's node as a peer and a port nobody listens on."""
    silent = f"http://127.0.0.1:{free_port()}"
    status = world.node.http.get("/v1/status").json()
    reader = SimpleNamespace(checkpoint=lambda h: msgspec.convert(world.node.http.get(f"/v1/checkpoints/{h}").json(),
                                                                 Checkpoint))
    api = SimpleNamespace(node=SimpleNamespace(network=SimpleNamespace(peers=[world.node.url, silent]),
                                               status=lambda: status), reader=reader)
    with ThreadPoolExecutor(1) as pool:  # a thread of its own: Playwright's loop runs in this one
        view = pool.submit(asyncio.run, _ask_peers(api)).result()
    assert view["common_height"] == status["height"]
    live, dead = view["peers"]
    assert live["status"]["state_root"] == status["state_root"]
    assert live["checkpoint"] == view["self"]["checkpoint"]
    assert "error" in dead and "checkpoint" not in dead


def test_network_needs_a_known_key(world: Any) -> None:
    import httpx

    r = httpx.get(f"{world.node.url}/v1/network")
    assert r.status_code == 401 and r.json()["error"]["code"] == "signature_required"
    net = world.node.http.get("/v1/network").json()
    assert net["peers"] == [] and net["self"]["status"]["ordering"] == "solo"
