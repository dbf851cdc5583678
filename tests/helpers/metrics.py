"""Reading a node's ``/metrics`` in tests (tests/api/test_metrics.py, tests/docs/test_operations_alerts.py)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from blokauto.modules.governance.messages import AddMember

from conftest import K


def scrape(live: Any, **headers: str) -> dict[str, Any]:
    """Every family of an unsigned scrape, by name."""
    r = httpx.get(live.url + "/metrics", headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    return {f.name: f for f in text_string_to_metric_families(r.text)}


def value(families: dict[str, Any], sample: str, **labels: str) -> float:
    """The value of the sample ``sample`` with exactly ``labels`` (0 if there is none yet)."""
    family = families.get(re.sub(r"_(total|bucket|count|sum)$", "", sample)) or families.get(sample)
    for s in family.samples if family else ():
        if s.name == sample and s.labels == labels:
            return s.value
    return 0.0


def sample_names(families: dict[str, Any]) -> set[str]:
    return {s.name for f in families.values() for s in f.samples}


def add_member(live: Any, label: str, roles: tuple[str, ...] = ("manufacturer",)) -> bytes:
    return live.tx(K("oem-admin"), AddMember(member=K(label).did, roles=list(roles)), K(label))
