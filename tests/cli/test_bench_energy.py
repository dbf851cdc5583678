"""``blokauto bench energy`` through the real CLI at a tiny size: one JSON object with every documented
field, and figures that agree with each other (every order committed and cleared, every meter holding
a position with its reading, the clearing the module's own auction gives for the bench's orders, the
node's clearing and settlement equal to the in-process ones). No timing is checked here: timings
belong in benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blokauto.bench.energy import INTERVAL_MS, meter_power_w, order_terms, power_limit_wh, reading_of
from blokauto.modules.energy import Offer, clear
from blokauto.modules.energy.handlers import GRID_KEY
from blokauto.modules.energy.state import Meter, Zone, power_limit

from conftest import run_cli

ORDERS = 240
METERS = 24

TIMINGS = ("tx_per_s", "raw_verify_tx_per_s", "raw_verifies_per_s", "raw_append_tx_per_s", "raw_limit_tx_per_s",
           "ratio_to_raw", "start_tx_per_s", "end_tx_per_s", "elapsed_s", "generate_s", "peak_rss_mb",
           "node_main_cpu_us_per_tx", "node_workers_cpu_us_per_tx", "node_writer_cpu_us_per_tx", "clear_ms",
           "clear_handler_ms", "clear_warm_ms", "clear_warm_handler_ms", "clear_node_ms", "settle_ms",
           "settle_handler_ms", "settle_node_ms", "first_block_ms", "first_block_node_ms")
HEADLINES = ("tx_per_s", "raw_limit_tx_per_s", "clear_ms", "clear_handler_ms", "clear_warm_ms", "clear_warm_handler_ms",
             "clear_node_ms", "settle_ms", "settle_handler_ms", "settle_node_ms", "first_block_ms",
             "first_block_node_ms")
COUNTS = ("orders", "meters", "cores", "verify_workers", "signatures_per_tx", "tx_bytes", "blocks", "setup_txs",
          "committed", "failed", "refused", "orders_ok", "readings", "open_orders", "cleared_orders", "price",
          "matched_wh", "grid_import_wh", "grid_export_wh", "positions", "missing_readings", "bought_paid", "sold_paid",
          "short_paid", "short_unpaid", "long_paid", "interval_start", "interval_ms", "gate_closes_after_s")


def expected_auction(orders: int, meters: int) -> tuple[int, int]:
    """(price, matched Wh) of the bench's orders and the zone's grid offers, by the module's auction
    (neither depends on the orders' keys, which only rank Wh left by rounding)."""
    offers = [Offer(f"{j:08d}", side, price, wh) for j in range(orders)
              for _, side, price, wh in [order_terms(j, meters)]]
    offers += [Offer(GRID_KEY, "sell", 30, 500_000), Offer(GRID_KEY, "buy", 8, 200_000)]
    r = clear(offers)
    return r.price, r.matched_wh


@pytest.mark.parametrize("orders,meters", [(240, 1), (240, 2), (240, 7), (240, 24), (240, 1_000), (100_000, 1_000),
                                           (100_000, 10_000)])
def test_the_bench_orders_fit_every_meters_power_and_every_meter_crosses(orders: int, meters: int) -> None:
    """What the module enforces (open orders per side, a reading in and out together, within the meter's
    power: its own ``power_limit``), so no set-up order or reading of the bench is refused."""
    zone = Zone("BENCH-1", "grid", "EUR", INTERVAL_MS, 300_000, 3_600_000, 1)
    meter = Meter("m", "meterco", "BENCH-1", "home", "k", "o", meter_power_w(orders, meters), 1)
    limit = power_limit(meter, zone)
    assert limit == power_limit_wh(orders, meters)
    per_side: dict[int, int] = {}
    for j in range(orders):
        i, side, price, wh = order_terms(j, meters)
        assert side == ("buy" if i % 2 == 0 else "sell") and 5 <= price <= 45 and 50 <= wh <= 500
        per_side[i] = per_side.get(i, 0) + wh
    assert max(per_side.values()) <= limit
    for i in range(min(meters, orders)):
        first = order_terms(i, meters)
        assert first[0] == i and first[2] == (45 if first[1] == "buy" else 5)  # above every ask, below every bid
        imported, exported = reading_of(i, orders, meters)
        assert 0 < imported + exported <= limit and (imported == 0 or exported == 0)


@pytest.mark.e2e  # starts a real node process, twice
def test_bench_energy_prints_every_field_and_figures_that_agree(tmp_path: Path) -> None:
    keep = tmp_path / "data"
    r = run_cli("bench", "energy", "--orders", str(ORDERS), "--meters", str(METERS), "--keep", str(keep), timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["bench"] == "energy" and out["zone"] == "BENCH-1"
    for name in TIMINGS + COUNTS:
        assert isinstance(out.get(name), (int, float)) and not isinstance(out[name], bool), name
    for name in HEADLINES:
        assert out["measured"][name], name  # each headline figure says where it was measured
    assert out["orders"] == ORDERS and out["meters"] == METERS and out["signatures_per_tx"] == 1
    # every order committed, none refused or failed; every one open at the clearing and cleared
    assert out["committed"] == out["orders_ok"] == out["open_orders"] == out["cleared_orders"] == ORDERS
    assert out["failed"] == out["refused"] == 0 and out["first_errors"] == []
    # currency, reserves and zone; the operator and every owner funded; every meter registered
    assert out["setup_txs"] == 3 + 1 + 2 * METERS
    # every meter read and holds a position
    assert out["readings"] == out["positions"] == METERS and out["missing_readings"] == 0
    # the raw limit is the slower of verification and the append; the ratio is of the figures printed
    assert out["raw_limit_tx_per_s"] == min(out["raw_verify_tx_per_s"], out["raw_append_tx_per_s"])
    assert out["ratio_to_raw"] == round(out["tx_per_s"] / out["raw_limit_tx_per_s"], 3)
    # the clearing is the module's auction over the bench's orders and the grid's offers
    assert (out["price"], out["matched_wh"]) == expected_auction(ORDERS, METERS)
    assert out["results_agree"] is True  # the node cleared and settled exactly as the in-process engine did
    assert out["short_unpaid"] == 0  # every owner was funded for any short charge
    # the block times the bench needed: the gate at least 20 minutes after the orders were signed
    assert out["gate_closes_after_s"] >= 20 * 60 and out["interval_start"] % out["interval_ms"] == 0
    assert (keep / "genesis.json").exists() and not keep.with_name("data-in-process").exists()
