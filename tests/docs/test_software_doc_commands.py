"""docs/software.md's quick start, run exactly as written after `blokauto demo`: the blocks marked
``<!-- doc-test: NAME -->`` go through bash in a fresh folder, with the demo's node and the
repository server running in the background as the doc's other terminals would (both stopped by
PID with Ctrl-C, SIGINT)."""

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

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BLOCK = re.compile(r"<!-- doc-test: ([\w-]+) -->\n```(\w+)\n(.*?)```", re.S)
DOC = ROOT / "docs" / "software.md"


def doc_blocks() -> dict[str, str]:
    return {name: text for name, _, text in BLOCK.findall(DOC.read_text())}


def bash(script: str, cwd: Path) -> subprocess.CompletedProcess:
    r = subprocess.run(["bash", "-e", "-c", "source .venv/bin/activate\n" + script], cwd=cwd, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, f"{script}\n--- exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def background(line: str, cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(["bash", "-c", f"source .venv/bin/activate && exec {line}"], cwd=cwd,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def wait_for(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer: {log.read_text()}"
        time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # Ctrl-C in its terminal
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_the_doc_marks_its_quick_start():
    assert set(doc_blocks()) == {"ota-release", "ota-serve", "ota-update"}
    reads = [line for line in doc_blocks()["ota-update"].splitlines()
             if re.match(r"blokauto software (inventory|releases|running|installs)", line)]
    assert reads and all("--as " in line or line.rstrip().endswith("\\") for line in reads), reads


@pytest.mark.usefixtures("default_ports")  # the node on 8545 as written: one such test at a time
def test_the_quick_start_works_as_written_after_the_demo(tmp_path):
    blocks = doc_blocks()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    bash("blokauto demo > demo.log", tmp_path)
    node = background("blokauto node start --data blokauto-data", tmp_path, tmp_path / "node.log")
    server = None
    try:
        wait_for("http://127.0.0.1:8545/v1/status", node, tmp_path / "node.log")
        released = bash(blocks["ota-release"], tmp_path)
        assert "software.release_anchored" in released.stdout
        assert "WZZ3E5C22NM400117: brake -> e5/brake-2.2.bin" in released.stdout
        server = background(blocks["ota-serve"].strip(), tmp_path, tmp_path / "serve.log")
        wait_for("http://127.0.0.1:8600/image/metadata/1.root.json", server, tmp_path / "serve.log")
        out = bash(blocks["ota-update"], tmp_path).stdout
        assert "brake -> e5/brake-2.2.bin (counter 4)" in out  # --check: verified, nothing installed yet
        assert "installed e5/brake-2.2.bin on brake (counter 4)" in out and "manifest committed" in out
        assert re.search(r"brake \(brake-ctl-e5\): e5/brake-2\.2\.bin \(counter 4", out), out
        assert "release 4 " in out and "1 ECU(s) run" in out and "WZZ3E5C22NM400117 brake" in out
        again = bash(blocks["ota-update"].split("\n\n# what the car runs")[0], tmp_path).stdout
        assert "is up to date (release 4)" in again  # the doc's promise: a second update does nothing
        assert httpx.get("http://127.0.0.1:8600/image-keys/root-1.json").status_code == 404
    finally:
        if server is not None:
            stop(server)
        stop(node)
    assert node.returncode == 0, (tmp_path / "node.log").read_text()
