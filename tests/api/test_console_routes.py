"""The console's own routes: the page and its assets, ``/v1/blocks`` (the explorer's list) and
their refusals: a path outside the console's files, odd block ranges, unsigned reads."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest

from blokauto.api.console_routes import BLOCKS_PAGE_MAX, CONSOLE_CSP

from conftest import K, signed


def test_the_console_page_is_served_with_its_content_security_policy(live_node: Any) -> None:
    r = httpx.get(f"{live_node.url}/console")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CONSOLE_CSP
    assert "<script>" not in r.text  # no inline script: the policy allows none
    for src in ["/console/assets/console.js", "/console/assets/verifier.js", "/console/assets/signing.js"]:
        assert src in r.text
        assert httpx.get(f"{live_node.url}{src}").headers["content-type"].startswith("text/javascript")


#: The vendored libraries, byte for byte the npm releases named in web/console/vendor/README.txt.
VENDORED = {
    "vendor/uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",  # uplot@1.6.32
    "vendor/cytoscape.min.js": "71fa9ebec21a7ca2c40cff6aacc30d1f6464e363662ad4b2c197e1adc770cd94",  # cytoscape@3.35.0
}


@pytest.mark.parametrize("name", sorted(VENDORED))
def test_the_vendored_libraries_are_the_released_files(live_node: Any, name: str) -> None:
    body = httpx.get(f"{live_node.url}/console/assets/{name}").content
    assert hashlib.sha256(body).hexdigest() == VENDORED[name]


@pytest.mark.parametrize("path", ["nothing.js", "../app.py", "..%2F..%2Fapi%2Fapp.py", "index.html", "report.html",
                                  "vendor", "pages", "%00.js", "x" * 5000])
def test_only_the_console_files_are_served(live_node: Any, path: str) -> None:
    r = httpx.get(f"{live_node.url}/console/assets/{path}")
    assert r.status_code in (400, 404), r.status_code
    if r.status_code == 404:
        assert r.json()["error"]["code"] in ("unknown_asset", "not_found")


def test_blocks_lists_the_newest_first_with_what_verifies_them(live_node: Any) -> None:
    with signed(live_node.url, K("reg-admin")) as http:
        page = http.get("/v1/blocks", params={"limit": 3}).json()
        head = page["head"]
        assert [b["height"] for b in page["blocks"]] == list(range(head, max(head - 3, -1), -1))
        for b in page["blocks"]:
            assert b == {**b, **{k: v for k, v in http.get(f"/v1/blocks/{b['height']}").json().items()
                                 if k in ("hash", "header", "attestations")}}
        assert http.get("/v1/blocks", params={"before": 1}).json()["blocks"][0]["height"] == 0
        assert http.get("/v1/blocks", params={"before": 0}).json()["blocks"] == []
        assert http.get("/v1/blocks", params={"before": 10**12}).json()["blocks"][0]["height"] == head


@pytest.mark.parametrize("params,code", [
    ({"limit": 0}, "bad_request"), ({"limit": BLOCKS_PAGE_MAX + 1}, "bad_request"), ({"before": -2}, "bad_request"),
    ({"before": "x"}, "bad_request"), ({"before": 2**53}, "bad_request"), ({"full": "true"}, "unknown_parameter"),
])
def test_blocks_refuses_odd_ranges(live_node: Any, params: dict[str, Any], code: str) -> None:
    with signed(live_node.url, K("reg-admin")) as http:
        r = http.get("/v1/blocks", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code or r.json()["error"]["code"].endswith("invalid"), r.json()


def test_blocks_need_a_known_key(live_node: Any) -> None:
    r = httpx.get(f"{live_node.url}/v1/blocks")
    assert r.status_code == 401 and r.json()["error"]["code"] == "signature_required"
    from blokauto.core.crypto import KeyPair

    with signed(live_node.url, KeyPair.from_label("nobody-at-all")) as http:
        r = http.get("/v1/blocks")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unknown_caller"


def test_a_returning_browser_gets_304_for_the_files_it_holds(live_node: Any) -> None:
    first = httpx.get(f"{live_node.url}/console/assets/console.js")
    etag = first.headers["etag"]
    again = httpx.get(f"{live_node.url}/console/assets/console.js", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    other = httpx.get(f"{live_node.url}/console/assets/console.js", headers={"if-none-match": '"0000"'})
    assert other.status_code == 200 and other.content == first.content
    assert httpx.get(f"{live_node.url}/console/assets/verifier.js").headers["etag"] != etag
