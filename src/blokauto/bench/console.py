"""``blokauto bench console``: the web console's first render in Chromium at fleet scale.

A real node (no background scrub) serves a copy of the cached fleet data set (``fleet-<N>``, shared
with ``history`` and ``report``); Chromium (Playwright) opens the console in a fresh browser context
for every sample, as a user's first visit: navigate, load the key file, wait. Two pages are timed:

- ``/console#/vehicle/VIN`` of a vehicle with ``entries`` history entries, with its holder's key: from
  navigation start until the report badge says verified, every other badge on the view settled and
  the timeline rendered, then the frame that draws it (``vehicle_page_ms``);
- ``/console#/explorer``, with the regulator's key: until each of the newest 20 blocks' badges is
  settled, every one verified in the page, then that frame (``explorer_ms``).

Every time is the page's own clock (``performance.now()`` from navigation start). An init script
(Playwright's, injected before the page's scripts; the console's Content-Security-Policy forbids eval,
which ``wait_for_function`` needs, but does not apply to it) marks each moment from a
``MutationObserver``, and the bench reads the marks by polling ``page.evaluate``. The same script
chooses the key file the moment the page shows its trust anchor (the input's files set, then its
change event, as when a user picks it), so neither a harness round trip nor a human is timed.

Where the milliseconds go, from the same loads: each moment (files received, DOMContentLoaded, anchor,
key, the view's requests sent and answered, report verified, ...), each signed request's duration and
the node's part of it (Resource Timing), and Chromium's main-thread time by kind (CDP). The raw limits
of the same run: the node's answers to the same signed requests over httpx; ``verifyReport`` and the
20 checkpoint verifications alone in a console page; each view rendered again inside an open console
(no page start).

The data set holds vehicles with 200 (0-9) and 100 (10-19) entries; another ``entries`` is reached by
adding odometer readings to the run's copy, never to the cached data set.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import httpx

from ..core.crypto import KeyPair
from ..keystore import KeyStore
from ..modules.parts import keys as parts_keys
from .dataset import add_readings, build_fleet, db_bytes, default_cache
from .fleet import LONG_100, LONG_200, owner_key, planned_events, vin_of
from .harness import NodeProcess, chromium, percentile, signed_client

BLOCKS = 20  # the explorer's page of newest blocks
MEAN_EVENTS = 1  # the fleet data set's (build_fleet's default)
REGULATOR = "kba-admin"
WAIT_S = 60.0
POLL_S = 0.05  # the marks carry the page's own times: polling less often only disturbs the page less

#: Injected before the console's own scripts in every page: marks (performance.now(), from navigation
#: start) when the key file is chosen and loaded, the trust anchor read, the report verified, and the
#: view done (``__MODE__``: "vehicle" or "explorer"), then the frame after it drawn.
OBSERVER = r"""
(() => {
  const mode = "__MODE__", blocks = __BLOCKS__, keyFile = __KEY__;
  const marks = {};
  const now = () => performance.now();
  // For a view rendered again in the same page: forget the view's marks and go to ``hash``.
  const go = (hash) => {
    for (const k of ["report", "verified", "badges", "entries", "done", "frame", "painted"]) delete marks[k];
    marks.start = now();
    window.Console.go(hash);
  };
  window.__bench = { marks, go };
  // The user's key file, chosen the moment the page shows the trust anchor it read (what the browser
  // does when a file is picked: the input's files set, then its change event), so no harness round
  // trip is timed. (Chosen before the anchor is read, the key's render and the anchor's would both run.)
  function chooseKey() {
    const input = document.getElementById("keyfile");
    const files = new DataTransfer();
    files.items.add(new File([keyFile], "key.json", { type: "application/json" }));
    input.files = files.files;
    marks.key_chosen = now();
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function settledView(view) {
    const all = [...view.querySelectorAll(".badge")];
    return all.length > 0 && !all.some((b) => b.dataset.state === "pending") ? all : null;
  }
  function check() {
    const view = document.getElementById("view");
    if (!view) return;
    if (marks.anchor === undefined) {
      const a = document.getElementById("anchor");
      if (a && a.textContent && !a.textContent.startsWith("reading")) {
        marks.anchor = now();
        if (marks.key_chosen === undefined) chooseKey();
      }
    }
    if (marks.key === undefined) {
      const w = document.getElementById("who");
      if (w && w.className === "ok-text") marks.key = now();
    }
    if (marks.done !== undefined) return;
    if (mode === "vehicle") {
      const report = view.querySelector(".badge");
      if (!report || report.dataset.state !== "verified") return;
      if (marks.report === undefined) marks.report = now();
      const all = settledView(view);
      if (!all || !view.querySelector("#timeline")) return;
      marks.verified = all.every((b) => b.dataset.state === "verified");
      marks.badges = all.length;
      marks.entries = view.querySelectorAll("#timeline > li").length;
    } else {
      if (view.dataset.page !== "explorer" || !view.querySelector("#blocks")) return;
      const all = [...view.querySelectorAll("#blocks .badge")];
      if (all.length < blocks || all.some((b) => b.dataset.state === "pending")) return;
      marks.verified = all.every((b) => b.dataset.state === "verified");
      marks.badges = all.length;
    }
    marks.done = now();
    // The frame that draws the view: its animation frame, then a task after that frame's paint.
    requestAnimationFrame(() => { marks.frame = now(); setTimeout(() => { marks.painted = now(); }, 0); });
  }
  new MutationObserver(check).observe(document,
    { subtree: true, childList: true, attributes: true, characterData: true });
})();
"""

#: Read once the view is done: the marks, the navigation's own timing and each API request's timing.
COLLECT = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const requests = performance.getEntriesByType("resource").filter((r) => r.name.includes("/v1/")).map((r) => {
    const u = new URL(r.name);
    return { path: u.pathname + u.search, start: r.startTime, end: r.responseEnd, status: r.responseStatus || 0,
             wait: r.responseStart - r.requestStart };
  });
  const files = performance.getEntriesByType("resource")
    .filter((r) => new URL(r.name).pathname.startsWith("/console/"));
  return { marks: window.__bench.marks, dom_content_loaded: nav.domContentLoadedEventEnd, requests,
           files: 1 + files.length, file_bytes: files.reduce((n, r) => n + r.encodedBodySize, nav.encodedBodySize),
           files_received: Math.max(nav.responseEnd, ...files.map((r) => r.responseEnd)) };
}"""

#: verifyReport alone on the report the page verified, with the anchor the page uses, ``n`` times.
VERIFY_REPORT = """async ([vin, n]) => {
  const C = window.Console, V = window.BlokautoVerifier;
  const report = await C.api(`/v1/reports/${vin}`);
  const anchor = C.anchorAt(report.as_of.height);
  await V.verifyReport(report, anchor);
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await V.verifyReport(report, anchor);
    times.push(performance.now() - t);
  }
  return times;
}"""

#: The explorer's 20 checkpoint verifications alone (all at once, as the page starts them), ``n`` times.
VERIFY_BLOCKS = """async ([limit, n]) => {
  const C = window.Console;
  const page = await C.api(`/v1/blocks?limit=${limit}`);
  const all = () => Promise.all(page.blocks.map((b) =>
    C.verifyCheckpoint({ header: b.header, attestations: b.attestations })));
  await all();
  const times = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await all();
    times.push(performance.now() - t);
  }
  return times;
}"""


def pick_vehicle(vehicles: int, entries: int) -> tuple[int, int]:
    """(vehicle index, readings to add): the data set's vehicle with the most entries not above
    ``entries`` (0-9 have 200, 10-19 have 100, the rest birth, two sales and 0-2 events)."""
    best: tuple[int, int] | None = None
    candidates = [LONG_200[0], LONG_100[0]] + list(range(LONG_100.stop, min(vehicles, LONG_100.stop + 100)))
    for i in candidates:
        if i >= vehicles:
            continue
        have = 3 + planned_events(i, MEAN_EVENTS)
        if have <= entries and (best is None or have > best[1]):
            best = (i, have)
    if best is None:
        raise ValueError(f"no vehicle of a {vehicles:,}-vehicle data set has {entries} entries or fewer: "
                         f"ask for at least 3 (birth and two sales), or more vehicles")
    return best[0], entries - best[1]


def run(*, vehicles: int = 1_000_000, entries: int = 200, samples: int = 20,
        cache: Path | None = None) -> dict[str, Any]:
    if vehicles < len(LONG_200):
        raise ValueError(f"--vehicles must be at least {len(LONG_200)} (vehicles 0-9 carry 200 history entries)")
    cached = (cache or default_cache()) / f"fleet-{vehicles}"
    info = build_fleet(cached, vehicles=vehicles)
    index, missing = pick_vehicle(vehicles, entries)
    data = cached.with_name(f"{cached.name}-console-run")
    shutil.rmtree(data, ignore_errors=True)
    size = db_bytes(cached)
    print(f"copying the data set ({size / 2**20:,.0f} MiB) so this run leaves it as it was...", file=sys.stderr,
          flush=True)
    t = time.perf_counter()
    shutil.copytree(cached, data)
    copy_s = time.perf_counter() - t
    load_start = os.getloadavg()[0]
    try:
        if missing:
            print(f"adding {missing} odometer readings to vehicle {index} of the copy...", file=sys.stderr, flush=True)
            add_readings(data, index, missing)
        out = _measure(data, vin_of(index), owner_key(index), entries, samples)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {"bench": "console", "vehicles": vehicles, "dataset_txs": info["txs"], "dataset_build_s": info["build_s"],
            "dataset_copy_s": round(copy_s, 1), "db_bytes_per_vehicle": round(size / vehicles), "vin": vin_of(index),
            "readings_added": missing, "load_avg_1m": [round(load_start, 2), round(os.getloadavg()[0], 2)], **out}


def _key_file(folder: Path, key: KeyPair, name: str) -> Path:
    """A key file as ``blokauto keys new`` writes it (what a user loads into the console)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "did": key.did, "seed": key.seed.hex()}))
    return path


def _measure(data: Path, vin: str, holder: KeyPair, entries: int, samples: int) -> dict[str, Any]:
    regulator = KeyStore(data / "keys").load(REGULATOR)
    node = NodeProcess(data, extra=("--scrub-minutes", "0"))  # no background re-verification competing for the 2 cores
    try:
        node.wait_ready(timeout=600)
        with tempfile.TemporaryDirectory() as tmp:
            holder_file = _key_file(Path(tmp), holder, "holder")
            regulator_file = Path(tmp) / f"{REGULATOR}.json"
            shutil.copyfile(data / "keys" / f"{REGULATOR}.json", regulator_file)
            raw = _raw_http(node.url, vin, holder, regulator, entries, samples)
            shown = min(BLOCKS, raw["height"] + 1)  # a tiny chain has fewer blocks than a page
            with chromium() as browser:
                vehicle = _page_samples(browser, node.url, f"#/vehicle/{vin}", holder_file, "vehicle", shown, samples,
                                        f"vehicle page ({entries} entries)")
                explorer = _page_samples(browser, node.url, "#/explorer", regulator_file, "explorer", shown, samples,
                                         "explorer")
                in_page = {**_in_page(browser, node.url, "vehicle", f"#/vehicle/{vin}", holder_file, shown,
                                      VERIFY_REPORT, [vin, samples], samples),
                           **_in_page(browser, node.url, "explorer", "#/explorer", regulator_file, shown,
                                      VERIFY_BLOCKS, [BLOCKS, samples], samples)}
    finally:
        node.stop()
    bad = [s for s in vehicle if s["entries"] != entries]
    if bad:
        raise RuntimeError(f"the vehicle page showed {bad[0]['entries']} timeline entries, not {entries}")
    return {
        "entries": entries,
        "samples": samples,
        "blocks": shown,
        "vehicle_page_ms": _p(vehicle, "painted", 0.5),
        "vehicle_page_p95_ms": _p(vehicle, "painted", 0.95),
        "explorer_ms": _p(explorer, "painted", 0.5),
        "explorer_p95_ms": _p(explorer, "painted", 0.95),
        "vehicle_verified": all(s["verified"] for s in vehicle),
        "explorer_verified": all(s["verified"] for s in explorer),
        "vehicle_phases_ms": _phases(vehicle, VEHICLE_PHASES),
        "explorer_phases_ms": _phases(explorer, EXPLORER_PHASES),
        "console_files": vehicle[-1]["files"],
        "console_file_bytes": vehicle[-1]["file_bytes"],
        "vehicle_main_thread_ms": _phases(vehicle, tuple(MAIN_THREAD)),
        "explorer_main_thread_ms": _phases(explorer, tuple(MAIN_THREAD)),
        "vehicle_requests_ms": _spans(vehicle, ("report", "state")),
        "explorer_requests_ms": _spans(explorer, ("blocks",)),
        **in_page,
        **raw,
    }


#: Chromium's main-thread time of the page (CDP ``Performance.getMetrics``, seconds), by what it did.
MAIN_THREAD = {"busy": "TaskDuration", "script": "ScriptDuration", "layout": "LayoutDuration",
               "style": "RecalcStyleDuration"}

#: The moments of a page load, in the order they happen (ms from navigation start).
VEHICLE_PHASES = ("files_received", "dom_content_loaded", "anchor_read", "key_chosen", "key_loaded", "report_sent",
                  "report_received", "report_verified", "state_received", "view_done", "frame", "painted")
EXPLORER_PHASES = ("files_received", "dom_content_loaded", "anchor_read", "key_chosen", "key_loaded", "blocks_sent",
                   "blocks_received", "view_done", "frame", "painted")


def _p(rows: list[dict[str, Any]], field: str, q: float) -> float:
    return round(percentile([r[field] for r in rows], q), 1)


def _phases(rows: list[dict[str, Any]], fields: tuple[str, ...]) -> dict[str, float]:
    """The p50 of each field (a moment in ms from navigation start, or a duration) over the samples
    that have it."""
    out = {}
    for f in fields:
        values = [r[f] for r in rows if r.get(f) is not None]
        if values:
            out[f] = round(statistics.median(values), 1)
    return out


def _spans(rows: list[dict[str, Any]], kinds: tuple[str, ...]) -> dict[str, float]:
    """The p50 of each signed request's duration seen by the page (sent to last byte), and of the
    server's part of it (request sent to first byte)."""
    out = {}
    for k in kinds:
        for part in ("", "_wait"):
            values = [r[f"{k}_request{part}"] for r in rows if r.get(f"{k}_request{part}") is not None]
            if values:
                out[f"{k}{part}"] = round(statistics.median(values), 1)
    return out


def _page_samples(browser: Any, url: str, hash: str, key_file: Path, mode: str, blocks: int, samples: int,
                  label: str) -> list[dict[str, Any]]:
    _load(browser, url, hash, key_file, mode, blocks)  # warm-up: the node's caches, Chromium's code cache
    rows = []
    for k in range(samples):
        rows.append(_load(browser, url, hash, key_file, mode, blocks))
        print(f"\r{label}: {k + 1}/{samples} page loads", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return rows


def _observer(mode: str, blocks: int, key_file: Path) -> str:
    return (OBSERVER.replace("__MODE__", mode).replace("__BLOCKS__", str(blocks))
            .replace("__KEY__", json.dumps(key_file.read_text())))


def _load(browser: Any, url: str, hash: str, key_file: Path, mode: str, blocks: int) -> dict[str, Any]:
    """One fresh page load in its own browser context: navigate (the key file is chosen as soon as the
    page's scripts ran, a user cannot pick it sooner), wait for the view's marks; the sample's moments."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        ctx.add_init_script(script=_observer(mode, blocks, key_file))
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        cdp = ctx.new_cdp_session(page)
        cdp.send("Performance.enable")  # the renderer's main-thread time, by kind, for the whole load
        page.goto(f"{url}/console{hash}", wait_until="commit")
        _wait(page, "window.__bench.marks.painted !== undefined", f"{mode} page")
        seen = page.evaluate(COLLECT)
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        if errors:
            raise RuntimeError(f"the {mode} page raised: {errors[0]}")
        busy = {name: metrics.get(metric, 0.0) * 1000 for name, metric in MAIN_THREAD.items()}
        return {**_sample(seen, mode), **busy}
    finally:
        ctx.close()


def _wait(page: Any, expression: str, what: str) -> None:
    """Poll ``expression`` with page.evaluate (wait_for_function evals in the page, which the CSP forbids)."""
    deadline = time.monotonic() + WAIT_S
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            view = page.evaluate("document.getElementById('view').innerText.slice(0, 500)")
            raise TimeoutError(f"the {what} never settled within {WAIT_S:.0f} s; it shows: {view}")
        time.sleep(POLL_S)


def _sample(seen: dict[str, Any], mode: str) -> dict[str, Any]:
    m = seen["marks"]
    out: dict[str, Any] = {"files_received": seen["files_received"], "files": seen["files"],
                           "file_bytes": seen["file_bytes"], "dom_content_loaded": seen["dom_content_loaded"],
                           "verified": bool(m.get("verified")),
                           "entries": m.get("entries"), "anchor_read": m.get("anchor"),
                           "key_chosen": m.get("key_chosen"),
                           "key_loaded": m.get("key"), "report_verified": m.get("report"), "view_done": m["done"],
                           "frame": m["frame"], "painted": m["painted"]}
    ok = [r for r in seen["requests"] if r["status"] in (200, 0) and r["end"] <= m["done"]]  # 0: not reported
    kinds = {"report": "/v1/reports/", "state": "/v1/state/"} if mode == "vehicle" else {"blocks": "/v1/blocks"}
    for kind, prefix in kinds.items():
        found = [r for r in ok if r["path"].startswith(prefix)]
        if found:  # the view's first request of the kind, and the arrival of its last
            out[f"{kind}_sent"], out[f"{kind}_received"] = found[0]["start"], found[-1]["end"]
            out[f"{kind}_request"] = statistics.mean(r["end"] - r["start"] for r in found)
            out[f"{kind}_request_wait"] = statistics.mean(r["wait"] for r in found)
    return out


def _raw_http(url: str, vin: str, holder: KeyPair, regulator: KeyPair, entries: int, samples: int) -> dict[str, Any]:
    """The node's answers to the pages' signed requests, timed as an httpx client sees them (its
    signing included): the report and the two state reads of the vehicle page, the explorer's blocks."""
    out: dict[str, Any] = {"height": httpx.get(url + "/v1/status").json()["height"]}
    with signed_client(url, holder) as h, signed_client(url, regulator) as r:
        report = h.get(f"/v1/reports/{vin}")
        report.raise_for_status()
        got = report.json()["summary"]["entries"]
        if got != entries:
            raise RuntimeError(f"the vehicle {vin} has {got} history entries, not {entries}")
        out["report_bytes"] = len(report.content)
        reads: dict[str, tuple[httpx.Client, str]] = {
            "report": (h, f"/v1/reports/{vin}"),
            "state": (h, f"/v1/state/{parts_keys.BOM}{vin}"),
            "blocks": (r, f"/v1/blocks?limit={BLOCKS}"),
        }
        for name, (client, path) in reads.items():
            times = _timed(lambda: client.get(path).raise_for_status(), samples)
            out[f"{name}_http_ms"] = round(statistics.median(times), 2)
            out[f"{name}_http_p95_ms"] = round(percentile(times, 0.95), 2)
    return out


def _timed(fn: Callable[[], Any], n: int, warm: int = 3) -> list[float]:
    for _ in range(warm):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def _in_page(browser: Any, url: str, mode: str, hash: str, key_file: Path, blocks: int, script: str,
             args: list[Any], samples: int) -> dict[str, Any]:
    """In one console page with its key loaded: the view rendered again from an empty one (a route
    change, no page start: ``{mode}_route_ms``), then the verification alone (``verify_report`` or
    ``verify_blocks``, with the page's own anchor)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        ctx.add_init_script(script=_observer(mode, blocks, key_file))
        page = ctx.new_page()
        page.goto(f"{url}/console#/vehicle", wait_until="commit")
        _wait(page, "window.__bench.marks.key !== undefined && window.__bench.marks.anchor !== undefined", "console")
        route = []
        for k in range(samples + 1):  # the first is a warm-up
            page.evaluate("() => { document.getElementById('view').dataset.ready = 'false'; Console.go('#/vehicle'); }")
            _wait(page, "document.getElementById('view').dataset.ready === 'true'", "empty vehicle page")
            page.evaluate("(h) => window.__bench.go(h)", hash)
            _wait(page, "window.__bench.marks.painted !== undefined", f"{mode} view")
            m = page.evaluate("window.__bench.marks")
            if not m.get("verified"):
                raise RuntimeError(f"the {mode} view did not verify when rendered again")
            if k:
                route.append(m["painted"] - m["start"])
        times = page.evaluate(script, args)
    finally:
        ctx.close()
    name = "verify_report" if mode == "vehicle" else "verify_blocks"
    return {f"{mode}_route_ms": round(statistics.median(route), 1),
            f"{mode}_route_p95_ms": round(percentile(route, 0.95), 1),
            f"{name}_ms": round(statistics.median(times), 2), f"{name}_p95_ms": round(percentile(times, 0.95), 2)}
