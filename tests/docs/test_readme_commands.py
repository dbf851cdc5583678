"""The README's commands, run exactly as written: the blocks marked ``<!-- readme-test: NAME -->``
go through bash (or Python) in a fresh folder, with the node of the first block running in the
background as the README's first terminal would, and stopped with Ctrl-C (SIGINT), cleanly."""

from __future__ import annotations


import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT

pytestmark = pytest.mark.e2e

BLOCK = re.compile(r"<!-- readme-test: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)


def readme_blocks() -> dict[str, tuple[str, str]]:
    return {name: (lang, text) for name, lang, text in BLOCK.findall((ROOT / "README.md").read_text())}


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    r = subprocess.run(["bash", "-e", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"{script}\n--- exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def test_the_readme_marks_the_blocks_it_promises():
    assert set(readme_blocks()) == {"start", "while-running", "after-stop", "python"}


def test_the_readmes_reads_are_signed():
    """A node answers only signed reads: every read of a node in the README's blocks names a key."""
    blocks = readme_blocks()
    reads = [line for line in blocks["while-running"][1].splitlines()
             if re.match(r"blokauto (query|state|events|tx get|consent list|report share) ", line)]
    assert reads and all(" --as " in line for line in reads), reads
    assert "key=" in blocks["python"][1]  # Client(..., key=...) signs the SDK's reads


@pytest.mark.usefixtures("default_ports")  # the node on 8545 as written: one such test at a time
def test_the_readmes_own_chain_commands_work_as_written(tmp_path):
    blocks = readme_blocks()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)  # what the scripts made
    start = blocks["start"][1].strip().splitlines()
    assert start[-1].startswith("blokauto node start")
    before, node_line = "\n".join(start[:-1]), start[-1]
    bash(before, tmp_path)
    log = open(tmp_path / "node.log", "w")
    node = subprocess.Popen(["bash", "-c", f"source .venv/bin/activate && exec {node_line}"], cwd=tmp_path,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert node.poll() is None, (tmp_path / "node.log").read_text()
            try:
                if httpx.get("http://127.0.0.1:8545/v1/status", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the README's node did not start"
            time.sleep(0.2)
        out = bash("source .venv/bin/activate\n" + blocks["while-running"][1], tmp_path)
        assert "committed" in out.stdout and "verified" in out.stdout and "backed up" in out.stdout
        assert "verified against trust anchor mychain/genesis.json" in out.stderr
        link = next(line for line in out.stdout.splitlines() if "?share=" in line)
        assert link.startswith("http://127.0.0.1:8545/reports/WZZ3E5C22NM400117?share=")
        opened = bash(f"source .venv/bin/activate\nblokauto report WZZ3E5C22NM400117 --share '{link}'", tmp_path)
        assert "verified" in opened.stdout  # the link opens the report with no key at all
        assert (tmp_path / "car.html").read_text().startswith("<!doctype html>")
        py = subprocess.run([sys.executable, "-c", blocks["python"][1]], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
        assert py.returncode == 0 and py.stdout.startswith("True "), py.stdout + py.stderr
    finally:
        node.send_signal(signal.SIGINT)  # Ctrl-C in the first terminal
        try:
            node.wait(60)
        finally:
            log.close()
    printed = (tmp_path / "node.log").read_text()
    assert node.returncode == 0, printed
    assert "Traceback" not in printed and "Task was destroyed" not in printed and "KeyboardInterrupt" not in printed
    assert "node stopped cleanly" in printed
    out = bash("source .venv/bin/activate\n" + blocks["after-stop"][1], tmp_path)
    assert "audit OK" in out.stdout and "restored" in out.stdout
    assert (tmp_path / "restored" / "chain.db").exists()
    wal = tmp_path / "mychain" / "chain.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # checkpointed on stop: every block is in chain.db itself

