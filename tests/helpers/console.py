"""Driving the web console in Chromium (Playwright, Debian's /usr/bin/chromium).

Loaded as a pytest plugin beside ``helpers.reports`` (``pytest_plugins = ["helpers.reports",
"helpers.console"]``), whose ``world`` (the demo's chain, served by a node process stopped by its
PID) and ``browser`` fixtures the console tests share. Tests that write to the chain make their own
vehicles and keys, so they never change what the report tests read.

- ``console``: a fresh browser context and page (closed after the test), viewport 1280×900.
- ``open_console(page, url, hash, key=...)``: opens ``/console``, loads the key file (a path, or a
  key name in the demo's ``keys/``), goes to ``hash`` and waits until the view rendered and every
  badge on it settled.
- ``badges(page)``: each badge's state and text.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from blokauto.core.crypto import KeyPair

VIEW_READY = "document.getElementById('view').dataset.ready === 'true'"
BADGES_SETTLED = "![...document.querySelectorAll('#view .badge')].some((b) => b.dataset.state === 'pending')"
KEY_LOADED = "document.getElementById('who').className === 'ok-text'"
WAIT_MS = 30_000


@pytest.fixture
def console(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.errors = []  # uncaught page errors, which every console test expects to stay empty
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    try:
        yield page
    finally:
        ctx.close()


def sdk(world: Any, key: KeyPair | None = None) -> Any:
    """A Python SDK client of the world's node, pinned to its genesis, signing with ``key`` (the node key by default)."""
    from blokauto.client import Client

    return Client(world.node.url, trust=world.data / "genesis.json", key=key or world.node_key)


def demo_key(world: Any, name: str) -> KeyPair:
    """A key of the demo's ``keys/`` folder."""
    from blokauto.keystore import KeyStore

    return KeyStore(world.data / "keys").load(name)


def key_file(folder: Path, key: KeyPair, name: str) -> Path:
    """A key file as ``blokauto keys new`` writes it."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "did": key.did, "seed": key.seed.hex()}))
    return path


def wait_until(page: Any, expression: str, timeout_ms: int = WAIT_MS) -> None:
    """Poll ``expression`` in the page until it is true. (Playwright's wait_for_function evaluates its
    predicate with eval inside the page, which the console's Content-Security-Policy forbids, as it should.)"""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the console never reached: {expression}")
        time.sleep(0.05)


def settle(page: Any) -> None:
    """Wait until the view rendered and no badge on it is still verifying."""
    wait_until(page, VIEW_READY)
    wait_until(page, BADGES_SETTLED)


def go(page: Any, hash: str) -> None:
    """Go to ``hash`` inside an open console and wait for it to settle."""
    page.evaluate("(h) => { document.getElementById('view').dataset.ready = 'false'; Console.go(h); }", hash)
    settle(page)


def open_console(page: Any, url: str, hash: str = "#/explorer", *, key: Path | None = None,
                 data: Path | None = None, name: str | None = None) -> None:
    """Open the console at ``url``, with a key file (``key``, or ``name`` in ``data``/keys), at ``hash``."""
    page.goto(f"{url}/console{hash}")
    wait_until(page, "document.getElementById('anchor').textContent.indexOf('reading') !== 0")
    if name is not None:
        assert data is not None
        key = data / "keys" / f"{name}.json"
    if key is not None:
        page.set_input_files("#keyfile", str(key))
        wait_until(page, KEY_LOADED)
    go(page, hash)


#: Every line of text in the view, and every control, that leaves the screen's width (tables, charts and
#: graphs scroll inside their ``.box``): measured per line with a DOM Range, so text spilling out of its
#: element counts too. ``page.evaluate(TEXT_OUTSIDE_SCREEN)`` is ``[]`` when nothing is cut off.
TEXT_OUTSIDE_SCREEN = """() => {
    const width = document.documentElement.clientWidth, out = [], range = document.createRange();
    const outside = (r) => r.width > 0 && (r.right > width + 1 || r.left < -1);
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        if (!n.textContent.trim() || n.parentElement.closest('.box, .skip, script, style')) continue;
        range.selectNodeContents(n);
        if ([...range.getClientRects()].some(outside)) out.push(n.parentElement.tagName + ': ' + n.textContent.slice(0, 40));
    }
    for (const e of document.querySelectorAll('input, select, button, .box, fieldset, details, .chart, .graph, canvas')) {
        const inBox = e.parentElement && e.parentElement.closest('.box');
        if (!inBox && outside(e.getBoundingClientRect())) out.push(e.tagName + '#' + e.id);
    }
    return out;
}"""


def zoomed(browser: Any) -> Any:
    """A browser context as a 1280-pixel screen shows pages at 200 % zoom: 640×450 CSS pixels at scale 2."""
    return browser.new_context(viewport={"width": 640, "height": 450}, device_scale_factor=2)


def badges(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#view .badge", "(bs) => bs.map((b) => ({state: b.dataset.state, "
                                                     "text: b.textContent, reason: b.dataset.reason || ''}))")
