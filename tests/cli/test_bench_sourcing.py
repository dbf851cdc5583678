"""``blokauto bench sourcing`` through the real CLI at a tiny size: one JSON object with every documented
field, percentiles in order, and counts that agree with the data sets it built (a pack's cobalt five lot
steps from the mine through three raw materials, every handoff counted, the slowest legs first). A second
run reuses both cached data sets, unchanged by the first, and measures the same thing. No timing is checked
here: timings belong in benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blokauto.bench.sourcing import CELLS_PER_PACK, TARGETS, pack_cells

from conftest import run_cli

pytestmark = pytest.mark.e2e  # starts real node processes

LOTS = 2_000
HANDOFFS = 5_000
SAMPLES = 6

#: Timings through the node, in-process and raw, each {p50, p95, p99} in ms.
PERCENTILES = ("origin_ms", "origin_warm_ms", "origin_query_ms", "origin_unverified_ms", "origin_sql_ms", "mix_ms",
               "legs_ms", "legs_part_number_ms", "legs_supplier_ms", "legs_query_ms", "legs_sql_ms",
               "lanes_ms", "lanes_part_number_ms", "lanes_supplier_ms", "lanes_query_ms", "lanes_sql_ms",
               "in_transit_ms", "in_transit_part_number_ms", "in_transit_supplier_ms", "in_transit_query_ms",
               "in_transit_sql_ms")
NUMBERS = ("cores", "samples", "origin_samples", "origin_distinct_packs", "origin_lots_consumed", "origin_materials",
           "origin_lot_steps", "origin_answer_bytes", "origin_sql_statements", "origin_dataset_copy_s",
           "legs_dataset_copy_s", "legs_samples", "legs_targets", "legs_page", "lanes_max", "in_transit_items_max")
DATASET = ("txs", "blocks", "build_s", "build_tx_per_s", "build_cpu_s", "bytes")


def bench(cache: Path) -> dict:
    r = run_cli("bench", "sourcing", "--lots", str(LOTS), "--handoffs", str(HANDOFFS), "--samples", str(SAMPLES),
                "--cache", str(cache), timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0


def check(out: dict) -> None:
    assert out["bench"] == "sourcing" and out["samples"] == SAMPLES
    for name in PERCENTILES:
        p = out[name]
        assert set(p) == {"p50", "p95", "p99"} and all(number(v) for v in p.values()), name
        assert 0 < p["p50"] <= p["p95"] <= p["p99"], (name, p)
    for name in NUMBERS:
        assert number(out.get(name)), name
    assert out["targets"] == TARGETS
    assert out["met"] == {name: {p: out[name][p] <= limit for p in ("p50", "p95", "p99")}
                          for name, limit in TARGETS.items()}
    assert len(out["load_avg_1m"]) == 2 and all(number(v) for v in out["load_avg_1m"])

    lots, handoffs = out["datasets"]["lots"], out["datasets"]["handoffs"]
    for d in (lots, handoffs):
        assert all(number(d[k]) and d[k] > 0 for k in DATASET)
    # the lots data set: about --lots lots, every kind of step, a pack of two cell batches' cells
    assert abs(lots["lots"] - LOTS) <= LOTS // 20
    assert lots["lots"] == lots["ore_lots"] + lots["split_lots"] + lots["merged_lots"] + lots["transformed_lots"]
    assert lots["split_lots"] == 2 * lots["ore_lots"] and lots["merged_lots"] > 0 and lots["mines"] >= 200
    assert 0 < lots["max_lot_origins"] <= 256 and lots["cells"] == lots["packs"] * CELLS_PER_PACK
    assert len(pack_cells(0)) == CELLS_PER_PACK and len(set(pack_cells(0))) == CELLS_PER_PACK
    # a pack's origins: cobalt, nickel and lithium; five lot steps (and the cell batch: six); four lots
    # consumed (two cathode lots in each of its two batches); read: the pack, its cells, their two batches,
    # the four lots and every origin lot (for its producer and attestations)
    assert out["origin_materials"] == 3 and out["origin_lot_steps"] == 5 and out["origin_lots_consumed"] == 4
    assert 0 < out["origin_origins"]["p50"] <= out["origin_origins"]["max"] <= 4 * lots["max_lot_origins"]
    assert out["origin_keys_read"]["p50"] == 1 + CELLS_PER_PACK + 2 + 4 + out["origin_origins"]["p50"]
    assert out["origin_samples"] == SAMPLES and out["origin_distinct_packs"] == min(SAMPLES, lots["packs"])
    assert out["origin_sql_statements"] >= out["origin_keys_read"]["p50"]
    # the handoffs data set: at least --handoffs shipment and receipt rows, each receipt a leg
    assert handoffs["handoffs"] >= HANDOFFS and handoffs["legs"] <= handoffs["handoffs"] // 2
    assert handoffs["handoffs"] == 2 * handoffs["legs"] + handoffs["in_transit"]
    assert handoffs["made"] == handoffs["parts"] + handoffs["batches"] + handoffs["lots"]
    assert handoffs["suppliers"] == 12 and len(handoffs["top_part_numbers"]) == 10
    assert handoffs["top_part_number_legs"] == sorted(handoffs["top_part_number_legs"], reverse=True)
    # the queries answered: a full page of legs (slowest first, checked by the bench), lanes, stock on the way
    assert out["legs_page"] == 20 and out["lanes_max"] > 0 and out["in_transit_items_max"] > 0
    assert out["legs_targets"] == 10 + 12


def test_bench_sourcing_prints_every_field_and_counts_that_agree(tmp_path: Path) -> None:
    out = bench(tmp_path)
    check(out)
    assert out["datasets"]["lots"]["reused"] is False and out["datasets"]["handoffs"]["reused"] is False
    # the data sets are cached where asked; the runs' copies are gone
    names = [f"sourcing-handoffs-{HANDOFFS}", f"sourcing-lots-{LOTS}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
    built = {n: json.loads((tmp_path / n / "dataset.json").read_text()) for n in names}

    again = bench(tmp_path)  # both data sets reused, unchanged by the first run (which wrote blocks to a copy)
    check(again)
    assert again["datasets"]["lots"]["reused"] is True and again["datasets"]["handoffs"]["reused"] is True
    assert {n: json.loads((tmp_path / n / "dataset.json").read_text()) for n in names} == built
    for kind in ("lots", "handoffs"):
        first = {k: v for k, v in out["datasets"][kind].items() if k != "reused"}
        assert {k: v for k, v in again["datasets"][kind].items() if k != "reused"} == first
    assert again["origin_origins"] == out["origin_origins"] and again["origin_keys_read"] == out["origin_keys_read"]
    assert sorted(p.name for p in tmp_path.iterdir()) == names
