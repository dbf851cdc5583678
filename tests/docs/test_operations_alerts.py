"""The alerts shipped in deploy/prometheus/alerts.yml and the metrics docs/operations.md lists: a
Prometheus rule file whose every alert is explained and built only on metrics a node's ``/metrics``
exposes, and a doc that names every metric and every alert."""

from __future__ import annotations

import re
from typing import Any

import httpx
import yaml

from helpers.metrics import add_member, sample_names, scrape

from conftest import JSON_POST, ROOT

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
OPERATIONS = ROOT / "docs" / "operations.md"


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_alerts_file_is_a_prometheus_rules_file_with_every_alert_explained():
    rules = _rules()
    assert len(rules) >= 9
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}, rule
        assert re.fullmatch(r"Blokauto[A-Za-z0-9]+", rule["alert"]), rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        for field in ("summary", "description", "action"):
            assert len(rule["annotations"].get(field, "")) > 20, f"{rule['alert']}: {field}"
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))


def test_every_alert_is_built_on_metrics_a_node_exposes(live_node):
    with live_node.http as http:  # a refusal and a failed transaction, so their counters have series
        http.post("/v1/txs", params={"wait": 20}, headers=JSON_POST,
                  content=add_member(live_node, "alert-wrong-role", ("insurer",)))
        raw = add_member(live_node, "alert-member")
        http.post("/v1/txs", params={"wait": 20}, headers=JSON_POST, content=raw)
        http.post("/v1/txs/batch", headers=JSON_POST, content=b"[" + raw + b"]")
    httpx.get(live_node.url + "/v1/blocks/latest")
    exposed = sample_names(scrape(live_node))
    for rule in _rules():
        used = set(re.findall(r"\bblokauto_[a-z0-9_]+", rule["expr"]))
        assert used or rule["expr"].startswith("up{"), f"{rule['alert']} names no blokauto metric"
        assert used <= exposed, f"{rule['alert']}: {sorted(used - exposed)} are not exposed by /metrics"


def test_operations_doc_lists_every_metric_and_alert(live_node):
    doc = OPERATIONS.read_text()
    for family in scrape(live_node).values():
        if family.name.startswith("blokauto_"):
            shown = family.name + ("_total" if family.type == "counter" else "")
            assert f"`{shown}" in doc, f"docs/operations.md does not describe {shown}"
    for rule in _rules():
        assert f"`{rule['alert']}`" in doc, f"docs/operations.md does not explain the alert {rule['alert']}"
