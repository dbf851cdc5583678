"""The OpenAPI document describes the API as it is: schemathesis, with every check, against a node
holding the demo chain finds no failure (statuses, bodies, headers and media types as declared,
schema-valid requests accepted, schema-violating ones refused, no server error)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NodeProcess, signed_get

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

HERE = Path(__file__).parent
CONFIG = HERE / "schemathesis.toml"


@pytest.mark.timeout(900)  # 180 s alone on CI's 2 cores; over 300 s beside another test worker or a loaded machine
def test_schemathesis_with_every_check_finds_nothing(tmp_path, copy_demo):
    data = tmp_path / "demo"
    copy_demo(data)
    node = NodeProcess(data, "--workers", "1", "--scrub-minutes", "0")
    try:
        out = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(CONFIG), "run",
             f"{node.url}/schema/openapi.json", "--checks", "all", "--max-examples", "10", "--seed", "20261206",
             "--phases", "examples,coverage,fuzzing,stateful", "--no-color"],
            capture_output=True, text=True, timeout=1200,
            # every call signed with the node's key (reads everything): see schemathesis_hooks.py
            env={**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks",
                 "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
                 "BLOKAUTO_TEST_KEYS": str(data / "keys"), "BLOKAUTO_TEST_KEY": "kba-node"})
    finally:
        node.stop()
    tail = out.stdout[-6000:]
    assert out.returncode == 0, tail
    import re

    counts = re.search(r"(\d+) generated, (\d+) passed", tail)
    assert counts and counts.group(1) == counts.group(2) and int(counts.group(1)) > 1000, tail


def test_an_unknown_vin_on_the_report_page_is_a_page(live_node):
    r = signed_get(f"{live_node.url}/reports/WVWZZZ1JZ00000000", timeout=10)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    body = r.text.split("<body>", 1)[1]
    assert "No vehicle with VIN" in body and "unknown_vin" in body and "{" not in body and '"error"' not in body
    r = signed_get(f"{live_node.url}/reports/WVWZZZ1JZ00000000", params={"min_height": "soon"}, timeout=10)
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
