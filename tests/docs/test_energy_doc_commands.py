"""docs/energy.md's command-line round, run exactly as written after `blokauto demo`: the block
marked ``<!-- doc-test: energy-round -->`` goes through bash in a fresh folder, with the demo's node
running in the background as the doc's first terminal would (stopped by PID with Ctrl-C, SIGINT)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_software_doc_commands import background, bash, stop, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BLOCK = re.compile(r"<!-- doc-test: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)
DOC = ROOT / "docs" / "energy.md"


def doc_blocks() -> dict[str, str]:
    return {name: text for name, _, text in BLOCK.findall(DOC.read_text())}


def test_the_doc_marks_its_round():
    blocks = doc_blocks()
    assert set(blocks) == {"energy-round"}
    reads = [line for line in blocks["energy-round"].splitlines() if re.match(r"blokauto energy (book|position)", line)]
    assert len(reads) == 2 and all("--as " in line for line in reads), reads


@pytest.mark.usefixtures("default_ports")  # the node on 8545 as written: one such test at a time
def test_the_round_works_as_written_after_the_demo(tmp_path):
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    bash("blokauto demo > demo.log", tmp_path)
    node = background("blokauto node start --data blokauto-data", tmp_path, tmp_path / "node.log")
    try:
        wait_for("http://127.0.0.1:8545/v1/status", node, tmp_path / "node.log")
        out = bash(doc_blocks()["energy-round"], tmp_path).stdout
        # the doc's promise: 20 Wh from the roof and 30 from the grid at 65 c; Dan's wallbox 5 Wh long
        assert "cleared at 0.65 EUR/kWh, 50 Wh matched" in out, out
        assert "the grid sold 30 Wh into the zone" in out, out
        assert "settled, 2 position(s), 0 without a reading" in out, out
        assert "long 5 Wh" in out and "bought 50 Wh" in out and "proven   en/pos/muc-schwabing/" in out, out
    finally:
        stop(node)
    assert node.returncode == 0, (tmp_path / "node.log").read_text()
