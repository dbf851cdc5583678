"""``blokauto bench ota`` through the real CLI at a tiny size: one JSON object with every documented
field, and counts that agree (every manifest committed and remedying its vehicle's recall, the
campaign covering the whole fleet). A second run reuses the cached data set and measures the same
thing, because a run works on a copy. No timing is checked here: timings belong in benchmarks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli

pytestmark = pytest.mark.e2e  # starts a real node process

VEHICLES = 50
SAMPLES = 3
VERIFIES = 2

TIMINGS = ("manifests_per_s", "raw_verify_per_s", "raw_limit_tx_per_s", "ratio", "campaign_progress_ms",
           "campaign_progress_p95_ms", "client_verify_ms", "client_verify_p95_ms", "elapsed_s", "generate_s",
           "start_manifests_per_s", "end_manifests_per_s", "peak_rss_mb", "node_main_cpu_us_per_tx",
           "node_workers_cpu_us_per_tx", "node_writer_cpu_us_per_tx", "dataset_build_s", "dataset_software_build_s")
CONTEXT = ("vehicles", "ecus_per_vehicle", "cores", "verify_workers", "signatures_per_tx", "tx_bytes", "blocks",
           "dataset_txs", "db_bytes_per_vehicle", "campaign", "campaign_samples", "client_verify_runs")


def bench(cache: Path) -> dict:
    r = run_cli("bench", "ota", "--vehicles", str(VEHICLES), "--samples", str(SAMPLES), "--verifies", str(VERIFIES),
                "--cache", str(cache), timeout=280)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_bench_ota_prints_every_field_and_counts_that_agree(tmp_path: Path) -> None:
    out = bench(tmp_path)
    assert out["bench"] == "ota"
    for name in TIMINGS + CONTEXT:
        assert isinstance(out.get(name), (int, float)) and not isinstance(out[name], bool), name
    assert out["vehicles"] == VEHICLES and out["ecus_per_vehicle"] == 2
    assert out["signatures_per_tx"] == 1  # each manifest: the vehicle's device key alone
    # every manifest committed, none refused or failed, each remedying its vehicle
    assert out["manifests"] == out["committed"] == out["manifests_ok"] == VEHICLES
    assert out["failed"] == out["refused"] == 0 and out["first_errors"] == []
    assert out["affected"] == VEHICLES and out["remedied"] == out["manifests_ok"] and out["outstanding"] == 0
    assert out["counts_agree"] is True
    assert out["campaign_samples"] == SAMPLES and out["client_verify_runs"] == VERIFIES
    # the data sets are cached where asked, and the run's copy is gone
    assert (tmp_path / f"fleet-{VEHICLES}" / "dataset.json").exists()
    built = json.loads((tmp_path / f"ota-{VEHICLES}" / "dataset.json").read_text())
    assert built["software_txs"] == VEHICLES + 3  # two roots and release 1, then one fit_ecus per vehicle
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"fleet-{VEHICLES}", f"ota-{VEHICLES}"]

    again = bench(tmp_path)  # the cached data set, unchanged by the first run: the same manifests commit
    assert json.loads((tmp_path / f"ota-{VEHICLES}" / "dataset.json").read_text()) == built
    assert again["committed"] == again["manifests_ok"] == again["remedied"] == VEHICLES
    assert again["failed"] == again["refused"] == 0 and again["counts_agree"] is True
    assert again["dataset_txs"] == out["dataset_txs"]
