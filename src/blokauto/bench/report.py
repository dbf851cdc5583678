"""``blokauto bench report``: assembling and verifying history reports at fleet scale.

On the cached fleet data set: the node-side assembly time of the report of a 100-entry vehicle
(``build_report``, what ``GET /v1/reports/{vin}`` runs), its verification time in Python and in
Chromium (the page's JavaScript verifier, driven by Playwright), and the report size for 100 and
200 entries (it grows linearly with entries and only with the depth of the state proof, i.e.
logarithmically, with the chain). The floor measured in the same run is the bare cryptography a
verification must do (the SHA-256 of every entry and one Ed25519 verification), so the ratio
says how much the rest costs.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import msgspec

from ..core import crypto
from ..core.block import attestation_bytes
from ..modules import default_registry
from ..report import build_report
from ..report.html import verifier_script
from ..store.blocks import BlockLog
from ..store.state import StateStore
from ..verify import TrustAnchor
from ..verify.report import verify_report
from .dataset import build_fleet, default_cache
from .fleet import LONG_100, LONG_200, vin_of
from .harness import chromium


def _median_ms(fn: Any, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _crypto_floor_ms(report: dict[str, Any], n: int) -> float:
    """SHA-256 over every entry (the history chain) plus one Ed25519 verification."""
    raws = [e.encode() for e in report["evidence"]["entries"]]
    att = report["evidence"]["checkpoint"]["attestations"][0]
    key = crypto.public_key_from_did(att["node"])
    header_hash = crypto.tagged_hash(crypto.TAG_HEADER, report["evidence"]["checkpoint"]["header_raw"].encode())
    sig, msg = bytes.fromhex(att["sig"]), attestation_bytes(header_hash)

    def floor() -> None:
        head = bytes(32)
        for raw in raws:
            head = crypto.tagged_hash(crypto.TAG_HISTORY, head + raw)
        crypto.verify_signature(key, sig, msg)

    return _median_ms(floor, n)


def _browser_verify_ms(report: dict[str, Any], genesis: dict[str, Any], n: int) -> tuple[float, bool]:
    import tempfile

    with chromium() as browser, tempfile.TemporaryDirectory() as tmp:
        # WebCrypto needs a secure context: a file:// page is one, about:blank is not.
        page_file = Path(tmp) / "verify.html"
        page_file.write_text("<!doctype html><title>bench</title><script>" + verifier_script() + "</script>")
        page = browser.new_page()
        page.goto(page_file.as_uri())
        result = page.evaluate(
            """async ([report, genesis, n]) => {
                const anchor = await BlokautoVerifier.anchorFromGenesis(genesis);
                await BlokautoVerifier.verifyReport(report, anchor);          // warm-up
                const times = [];
                for (let i = 0; i < n; i++) {
                    const t = performance.now();
                    await BlokautoVerifier.verifyReport(report, anchor);
                    times.push(performance.now() - t);
                }
                times.sort((a, b) => a - b);
                return {median: times[Math.floor(times.length / 2)], ok: true};
            }""", [report, genesis, n])
    return result["median"], result["ok"]


def run(*, vehicles: int = 1_000_000, samples: int = 50, cache: Path | None = None,
        browser: bool = True) -> dict[str, Any]:
    data = (cache or default_cache()) / f"fleet-{vehicles}"
    info = build_fleet(data, vehicles=vehicles)
    registry = default_registry()
    blocks, state = BlockLog(data / "chain.db"), StateStore(data / "state.db", registry)
    try:
        genesis = blocks.genesis()
        assert genesis is not None
        anchor = TrustAnchor.from_genesis(genesis)
        vins = [vin_of(i) for i in LONG_100 if i < vehicles]
        build_report(blocks, state, vins[0])  # warm caches
        assemble = []
        for k in range(samples):
            vin = vins[k % len(vins)]
            t = time.perf_counter()
            build_report(blocks, state, vin)
            assemble.append((time.perf_counter() - t) * 1000)
        report = build_report(blocks, state, vins[0])
        report_200 = build_report(blocks, state, vin_of(LONG_200[0]))
        verify_ms = _median_ms(lambda: verify_report(report, anchor), samples)
        floor_ms = _crypto_floor_ms(report, samples)
        browser_ms, browser_ok = (_browser_verify_ms(report, msgspec.to_builtins(genesis), samples) if browser
                                  else (None, None))
    finally:
        blocks.close()
        state.close()
    size = len(msgspec.json.encode(report))
    ev = report["evidence"]
    return {
        "bench": "report",
        "vehicles": vehicles,
        "dataset_txs": info["txs"],
        "entries": report["summary"]["entries"],
        "assemble_p50_ms": round(statistics.median(assemble), 2),
        "assemble_p99_ms": round(sorted(assemble)[min(len(assemble) - 1, int(0.99 * len(assemble)))], 2),
        "verify_python_ms": round(verify_ms, 2),
        "verify_browser_ms": round(browser_ms, 2) if browser_ms is not None else None,
        "browser_verified": browser_ok,
        "crypto_floor_python_ms": round(floor_ms, 3),
        "verify_python_vs_floor": round(verify_ms / floor_ms, 1),
        "report_bytes": size,
        "report_bytes_200_entries": len(msgspec.json.encode(report_200)),
        "entries_bytes": sum(len(e) for e in ev["entries"]),
        "state_proof_bytes": len(msgspec.json.encode(ev["vehicle"]["proof"])),
        "state_proof_levels": len(ev["vehicle"]["proof"]["levels"]),
    }
