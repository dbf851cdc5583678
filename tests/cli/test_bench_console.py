"""``blokauto bench console`` through the real CLI at a tiny size: one JSON object with every documented
field, both pages verified in Chromium, the timed vehicle holding the asked number of entries (reached
by adding readings to the run's copy), and the cached data set left as it was. No timing is checked
here: timings belong in benchmarks."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from blokauto.bench.console import EXPLORER_PHASES, MAIN_THREAD, VEHICLE_PHASES, pick_vehicle
from blokauto.bench.fleet import vin_of

from conftest import run_cli

pytestmark = pytest.mark.e2e  # starts a real node process and Chromium

VEHICLES = 30
SAMPLES = 2

TIMINGS = ("vehicle_page_ms", "vehicle_page_p95_ms", "explorer_ms", "explorer_p95_ms", "vehicle_route_ms",
           "vehicle_route_p95_ms", "explorer_route_ms", "explorer_route_p95_ms", "verify_report_ms",
           "verify_report_p95_ms", "verify_blocks_ms", "verify_blocks_p95_ms", "report_http_ms", "report_http_p95_ms",
           "state_http_ms", "state_http_p95_ms", "blocks_http_ms", "blocks_http_p95_ms", "dataset_build_s",
           "dataset_copy_s")
CONTEXT = ("vehicles", "entries", "samples", "blocks", "height", "console_files", "console_file_bytes", "dataset_txs",
           "db_bytes_per_vehicle", "readings_added", "report_bytes")


def bench(cache: Path, entries: int) -> dict:
    r = run_cli("bench", "console", "--vehicles", str(VEHICLES), "--entries", str(entries), "--samples", str(SAMPLES),
                "--cache", str(cache), timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def chain_height(data: Path) -> int:
    with sqlite3.connect(f"file:{data / 'chain.db'}?mode=ro", uri=True) as c:
        return c.execute("SELECT count(*) FROM blocks").fetchone()[0]


@pytest.mark.parametrize("vehicles,entries,expected", [
    (30, 200, (0, 0)),       # a 200-entry vehicle of the data set as it is
    (30, 250, (0, 50)),      # the 200-entry vehicle and 50 readings more
    (30, 120, (10, 20)),     # the 100-entry vehicle and 20 readings more
    (30, 100, (10, 0)),
    (15, 150, (10, 50)),
])
def test_the_timed_vehicle_is_the_data_sets_longest_history_not_above_entries(
        vehicles: int, entries: int, expected: tuple[int, int]) -> None:
    assert pick_vehicle(vehicles, entries) == expected


def test_a_vehicle_shorter_than_any_history_is_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        pick_vehicle(10, 2)


def test_bench_console_prints_every_field_with_both_pages_verified_and_leaves_the_data_set(tmp_path: Path) -> None:
    out = bench(tmp_path, 120)  # vehicle 10 (100 entries) and 20 readings added to the run's copy
    assert out["bench"] == "console"
    for name in TIMINGS + CONTEXT:
        assert isinstance(out.get(name), (int, float)) and not isinstance(out[name], bool), name
    assert out["vehicles"] == VEHICLES and out["entries"] == 120 and out["samples"] == SAMPLES
    assert out["blocks"] == min(20, out["height"] + 1)  # the explorer's page: a tiny chain has fewer blocks
    assert out["vin"] == vin_of(10) and out["readings_added"] == 20
    assert len(out["load_avg_1m"]) == 2  # the machine's load when the run started and ended
    assert out["vehicle_verified"] is True and out["explorer_verified"] is True
    assert set(out["vehicle_phases_ms"]) == set(VEHICLE_PHASES)
    assert set(out["explorer_phases_ms"]) == set(EXPLORER_PHASES)
    for page in ("vehicle", "explorer"):
        assert set(out[f"{page}_main_thread_ms"]) == set(MAIN_THREAD)
    assert set(out["vehicle_requests_ms"]) == {"report", "report_wait", "state", "state_wait"}
    assert set(out["explorer_requests_ms"]) == {"blocks", "blocks_wait"}
    # the readings went to the run's copy, which is gone: the cached data set is as it was built
    data = tmp_path / f"fleet-{VEHICLES}"
    built = json.loads((data / "dataset.json").read_text())
    height = chain_height(data)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"fleet-{VEHICLES}"]

    again = bench(tmp_path, 200)  # the data set's own 200-entry vehicle, nothing added
    assert again["vin"] == vin_of(0) and again["readings_added"] == 0 and again["entries"] == 200
    assert again["vehicle_verified"] is True and again["explorer_verified"] is True
    assert json.loads((data / "dataset.json").read_text()) == built and chain_height(data) == height
    assert again["dataset_txs"] == out["dataset_txs"]
