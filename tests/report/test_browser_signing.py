"""The start page signs its own requests in Chromium: a person loads their key file, the page signs
each request with WebCrypto (RFC 9421, the profile of blokauto.http_signatures) and the node,
checking with the http-message-signatures package, answers what that key may read.

The holder's key opens the report (green badge); an insurer without consent and a key nobody
knows are refused with the node's code shown on the page; a file that is not a key is refused
before any request; the same browser with a share link and no key opens the report too.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from blokauto.client import Client
from blokauto.core.block import Genesis
from blokauto.core.crypto import KeyPair
from blokauto.modules.vehicles.messages import AssignWmi, TransferTitle

from conftest import K, Served, consortium, write_chain
from helpers.console import key_file
from helpers.reports import BADGE_SETTLED
from helpers.vehicles import register_msg, vin_for

pytest_plugins = ["helpers.reports"]

VIN = vin_for("WVW", 7)
OWNER = K("browser-owner")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("browser-signing") / "data"
    genesis: Genesis = consortium(time=int(time.time() * 1000) - 1000)
    write_chain(data, genesis)
    served = Served(data)
    try:
        with Client(served.url, key=K("reg-node"), trust=genesis) as c:
            c.send(AssignWmi(wmi="WVW", org="oem"), K("reg-admin")).raise_for_status()
            c.send(register_msg(VIN), K("oem-admin")).raise_for_status()
            c.send(TransferTitle(vin=VIN, to=OWNER.did, usage="private"), K("oem-admin"), OWNER).raise_for_status()
            served.share = c.share_report(VIN, OWNER, ttl_ms=3_600_000)
        yield served
    finally:
        served.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context()
    p = ctx.new_page()
    try:
        yield p
    finally:
        ctx.close()


def open_with_key(page: Any, node: Any, path: Path | None) -> None:
    page.goto(node.url + "/")
    if path is not None:
        page.set_input_files("#keyfile", str(path))
        page.wait_for_function("document.getElementById('who').className !== 'none' || "
                               "document.getElementById('problem').style.display === 'block'")
    page.fill("#vin", VIN)
    page.click("button[type=submit]")


def test_the_holder_opens_the_report_with_a_request_the_browser_signed(page: Any, node: Any, tmp_path: Path) -> None:
    open_with_key(page, node, key_file(tmp_path, OWNER, "anna"))
    page.wait_for_selector("#badge", timeout=15_000)
    page.wait_for_function(BADGE_SETTLED, timeout=15_000)
    assert page.eval_on_selector("#badge", "e => e.dataset.state") == "ok"
    assert VIN in page.inner_text("#vin")


@pytest.mark.parametrize("who,code", [("insurer", "consent_required"), ("stranger", "unknown_caller")])
def test_a_key_that_may_not_read_the_report_sees_the_nodes_refusal(page: Any, node: Any, tmp_path: Path,
                                                                   who: str, code: str) -> None:
    key = K("ins-admin") if who == "insurer" else KeyPair.generate()
    open_with_key(page, node, key_file(tmp_path, key, who))
    page.wait_for_function("document.getElementById('problem').dataset.code !== undefined", timeout=15_000)
    assert page.eval_on_selector("#problem", "e => e.dataset.code") == code
    assert page.query_selector("#badge") is None


def test_a_file_that_is_not_a_key_is_refused_in_the_page(page: Any, node: Any, tmp_path: Path) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text(json.dumps({"did": OWNER.did, "seed": K("someone-else").seed.hex()}))
    page.goto(node.url + "/")
    page.set_input_files("#keyfile", str(bad))
    page.wait_for_function("document.getElementById('problem').style.display === 'block'")
    assert "does not belong" in page.inner_text("#problem")
    assert page.inner_text("#who").startswith("no key loaded")


def test_without_a_key_the_page_says_to_sign_and_a_share_link_opens_the_report(page: Any, node: Any) -> None:
    open_with_key(page, node, None)
    page.wait_for_selector("#code")
    assert page.inner_text("#code") == "signature_required"
    page.goto(node.share)
    page.wait_for_function(BADGE_SETTLED, timeout=15_000)
    assert page.eval_on_selector("#badge", "e => e.dataset.state") == "ok"
