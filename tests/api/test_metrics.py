"""``GET /metrics``: Prometheus' text format, read without a signature, whose numbers follow what
the node does (blocks, transactions, refusals by code), whose labels stay bounded whatever
clients send (a cardinality attack), and which never names a path, a VIN or a token. The alerts
built on it: tests/docs/test_operations_alerts.py."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from helpers.metrics import add_member, scrape, value

from conftest import JSON_POST


def test_metrics_are_read_without_a_signature_in_the_text_format_prometheus_parses(live_node):
    r = httpx.get(live_node.url + "/metrics", timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    for name in ("blokauto_chain_height", "blokauto_committed_transactions", "blokauto_block_commit_seconds",
                 "blokauto_healthy", "blokauto_quorum_lag_blocks", "blokauto_flush_lag_blocks",
                 "blokauto_verifier_lag_seconds", "blokauto_intake_pending_transactions", "blokauto_data_file_bytes",
                 "blokauto_http_request_duration_seconds", "process_resident_memory_bytes"):
        assert name in families, name
        assert families[name].documentation, f"{name} has no help text"
    assert value(families, "blokauto_healthy") == 1
    assert value(families, "blokauto_quorum_lag_blocks") == 0  # a solo node attests every block it commits
    assert value(families, "blokauto_data_file_bytes", file="chain.db") > 0
    own = [f for f in families if not f.startswith(("process_", "python_"))]
    assert all(f.startswith("blokauto_") for f in own), own


def test_a_scraper_asking_for_openmetrics_gets_it(live_node):
    r = httpx.get(live_node.url + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_committed_transactions_and_height_move_as_blocks_are_committed(live_node):
    before = scrape(live_node)
    with live_node.http as http:
        for i in range(3):
            r = http.post("/v1/txs", params={"wait": 20}, headers=JSON_POST, content=add_member(live_node, f"m-{i}"))
            assert r.status_code == 200 and r.json()["receipt"]["ok"], r.text
        failed = http.post("/v1/txs", params={"wait": 20}, headers=JSON_POST,
                           content=add_member(live_node, "wrong-role", ("insurer",)))
        assert failed.json()["receipt"]["code"] == "role_not_held"
    after = scrape(live_node)
    moved = {name: value(after, name) - value(before, name) for name in (
        "blokauto_committed_transactions_total", "blokauto_block_transactions_sum", "blokauto_chain_height")}
    assert moved["blokauto_committed_transactions_total"] == 4
    assert moved["blokauto_block_transactions_sum"] == 4
    assert moved["blokauto_chain_height"] >= 1
    assert value(after, "blokauto_block_commit_seconds_count") > value(before, "blokauto_block_commit_seconds_count")
    assert value(after, "blokauto_failed_transactions_total", code="role_not_held") == \
        value(before, "blokauto_failed_transactions_total", code="role_not_held") + 1
    assert value(after, "blokauto_head_block_timestamp_seconds") >= value(before, "blokauto_head_block_timestamp_seconds")


def _unsigned(live: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, live.url + path, timeout=30, **kw)


def _signed(live: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    return live.http.request(method, path, **kw)


REFUSALS = [
    ("an unsigned read of a signed route", _unsigned, "GET", "/v1/blocks/latest", {}, 401, "signature_required"),
    ("a malformed transaction", _signed, "POST", "/v1/txs", {"content": b'{"body": {"chain": ', "headers": JSON_POST},
     400, "malformed_tx"),
    ("a transaction not sent as JSON", _signed, "POST", "/v1/txs", {"content": b"{}"}, 415, "unsupported_media_type"),
    ("a misspelt query parameter", _unsigned, "GET", "/v1/status?verbose=1", {}, 400, "unknown_parameter"),
    ("a path that is no route", _unsigned, "GET", "/v1/nothing-here", {}, 404, "not_found"),
    ("a method a route does not take", _unsigned, "DELETE", "/v1/status", {}, 405, "method_not_allowed"),
    ("a report page without a signature or a share link", _unsigned, "GET", "/reports/WVWZZZ1JZXW000001", {}, 401,
     "signature_required"),
]


@pytest.mark.parametrize("what,send,method,path,kw,status,code", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_is_counted_by_its_code(live_node, what, send, method, path, kw, status, code):
    before = value(scrape(live_node), "blokauto_http_refusals_total", code=code)
    r = send(live_node, method, path, **kw)
    assert r.status_code == status, r.text
    after = scrape(live_node)
    assert value(after, "blokauto_http_refusals_total", code=code) == before + 1
    template = re.sub(r"\?.*", "", path) if code not in ("not_found", "method_not_allowed") else "unmatched"
    if path.startswith("/reports/"):
        template = "/reports/{vin}"
    assert value(after, "blokauto_http_request_duration_seconds_count", route=template, method=method,
                 status=f"{status // 100}xx") >= 1


def test_transactions_refused_in_a_batch_are_counted_by_code(live_node):
    raw = add_member(live_node, "batch-member")
    with live_node.http as http:
        assert http.post("/v1/txs", params={"wait": 20}, headers=JSON_POST, content=raw).status_code == 200
        before = value(scrape(live_node), "blokauto_refused_transactions_total", code="replayed_tx")
        r = http.post("/v1/txs/batch", headers=JSON_POST, content=b"[" + raw + b"," + raw + b"]")
    assert r.status_code == 200 and r.json()["accepted"] == 0
    assert value(scrape(live_node), "blokauto_refused_transactions_total", code="replayed_tx") == before + 2


def test_a_thousand_distinct_paths_and_methods_add_no_label_values(live_node):
    """A cardinality attack: every request names a path (or a method) never seen before; the
    histogram's labels stay the route templates, the methods named in the code and "other"."""
    with httpx.Client(base_url=live_node.url, timeout=30) as http:
        for i in range(1000):
            http.get(f"/v1/nothing/{i:04d}x" if i % 2 else f"/v1/reports/ZZCARDINALITY{i:04d}?share=TOKEN{i:04d}")
        for i in range(20):
            http.request(f"FOO{i:02d}", "/v1/status")
    families = scrape(live_node)
    histogram = families["blokauto_http_request_duration_seconds"]
    labels = {(s.labels["route"], s.labels["method"], s.labels["status"]) for s in histogram.samples
              if s.name.endswith("_count")}
    assert {r for r, _, _ in labels} <= {"unmatched", "/metrics", "/v1/reports/{vin}", "/v1/status"}, labels
    assert {m for _, m, _ in labels} <= {"GET", "other"}, labels
    assert len(labels) < 10, labels
    text = httpx.get(live_node.url + "/metrics").text
    for leaked in ("ZZCARDINALITY", "TOKEN0", "0999x", "FOO1"):
        assert leaked not in text, leaked


def test_metrics_live_in_each_apps_own_registry(live_node):
    """Tests and tools run several nodes in one process: nothing is registered in the global registry."""
    scrape(live_node)
    assert b"blokauto_" not in generate_latest(REGISTRY)
