"""``blokauto node start --log-format json``: every line the node writes is one JSON object with the
documented fields (docs/operations.md#json-logs), each HTTP request leaves an access line, and a
share link's token, sent in a query string, is never written anywhere."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import httpx
import psutil
import pytest

from conftest import NODE_LABEL, K, run_cli, signed, write_chain

SHARE_TOKEN = "SECRET-SHARE-TOKEN-0123456789"
VIN = "WVWZZZ1JZXW000001"
LEVELS = {"debug", "info", "warning", "error", "critical"}


class JsonNode:
    """``blokauto node start --log-format json --port 0`` in a child process: its address read from
    its own log line, stopped by its PID."""

    def __init__(self, data: Path) -> None:
        self.stdout, self.stderr = data.parent / "node.stdout", data.parent / "node.stderr"
        with open(self.stdout, "wb") as out, open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data), "--host", "127.0.0.1",
                 "--port", "0", "--workers", "1", "--log-format", "json"], stdout=out, stderr=err)
        self.url = self._announced_url()

    def _announced_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            for line in self.stderr.read_text().splitlines():
                if line.startswith("{") and "url" in (record := json.loads(line)):
                    return record["url"]
            time.sleep(0.1)
        raise AssertionError(f"the node announced no url: {self.stderr.read_text()}")

    def stop(self) -> None:
        """SIGTERM by PID (the node stops its workers itself); any child left behind is killed."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(60)
        for child in children:
            try:
                child.kill()
            except psutil.Error:
                pass

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.read_text().splitlines()]


@pytest.fixture
def json_node(tmp_path: Path) -> Iterator[JsonNode]:
    write_chain(tmp_path / "data")
    node = JsonNode(tmp_path / "data")
    try:
        yield node
    finally:
        node.stop()


def _invalid_http_request(url: str) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        s.recv(4096)


def test_every_line_is_a_json_object_and_each_request_an_access_line(json_node):
    with httpx.Client(base_url=json_node.url, timeout=30) as anyone, signed(json_node.url) as node_key:
        assert anyone.get("/v1/status").status_code == 200
        assert anyone.get("/v1/blocks/latest").status_code == 401
        assert node_key.get("/v1/blocks/latest").status_code == 200
        assert anyone.get(f"/v1/reports/{VIN}", params={"share": SHARE_TOKEN}).status_code == 401
        assert anyone.get("/metrics").status_code == 200
    _invalid_http_request(json_node.url)
    json_node.stop()
    assert json_node.proc.returncode == 0
    assert json_node.stdout.read_text() == "", "a node logging JSON writes nothing else"
    text = json_node.stderr.read_text()
    assert SHARE_TOKEN not in text
    lines = json_node.lines()
    for line in lines:
        assert set(line) >= {"timestamp", "level", "logger", "event"}, line
        assert list(line)[:4] == ["timestamp", "level", "logger", "event"], line
        assert line["level"] in LEVELS, line
        assert datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00")).utcoffset() == timedelta(0), line
    start = lines[0]
    assert start["logger"] == "blokauto.cli" and start["chain"] == "test-chain" and start["ordering"] == "solo"
    assert lines[-1]["event"] == "node stopped cleanly"
    access = [line for line in lines if line["logger"] == "blokauto.access"]
    assert all(line["event"] == "request" and line["duration_ms"] >= 0 and line["client"] == "127.0.0.1"
               for line in access), access
    seen = {(a["method"], a["route"], a["path"], a["status"], a.get("code"), a.get("caller")) for a in access}
    assert seen >= {
        ("GET", "/v1/status", "/v1/status", 200, None, None),
        ("GET", "/v1/blocks/latest", "/v1/blocks/latest", 401, "signature_required", None),
        ("GET", "/v1/blocks/latest", "/v1/blocks/latest", 200, None, K(NODE_LABEL).did),
        ("GET", "/v1/reports/{vin}", f"/v1/reports/{VIN}", 401, "share_token_invalid", None),
        ("GET", "/metrics", "/metrics", 200, None, None),
    }, seen
    assert any(line["logger"].startswith("uvicorn") and line["level"] == "warning" for line in lines), \
        "uvicorn's own lines come out as JSON too"


def test_an_http_client_in_a_json_logging_process_does_not_log_the_share_token(json_node):
    """The demo's story and a node asking its peers use httpx, whose info lines name whole URLs."""
    script = ("import sys, httpx; from blokauto.logs import configure; configure('json'); "
              "print(httpx.get(sys.argv[1]).status_code)")
    url = f"{json_node.url}/v1/reports/{VIN}?share={SHARE_TOKEN}"
    r = subprocess.run([sys.executable, "-c", script, url], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "401", r.stderr
    assert SHARE_TOKEN not in r.stderr
    json_node.stop()
    assert SHARE_TOKEN not in json_node.stderr.read_text()


REFUSED_STARTS = [
    ("a folder without a chain", ["--log-format", "json"], 2, "genesis.json"),
    ("an address that is not this machine's", ["--log-format", "json", "--host", "not an address"], 2, "cannot listen"),
]


@pytest.mark.parametrize("what,args,code,says", REFUSED_STARTS, ids=[r[0] for r in REFUSED_STARTS])
def test_a_refused_start_is_a_json_line_too(tmp_path, what, args, code, says):
    data = tmp_path / "data"
    if "genesis" not in says:
        write_chain(data)
    r = run_cli("node", "start", "--data", str(data), "--port", "0", *args)
    assert r.returncode == code, r.stdout + r.stderr
    assert r.stdout == ""
    lines = [json.loads(line) for line in r.stderr.splitlines()]
    assert lines and lines[-1]["level"] == "error" and lines[-1]["exit_code"] == code, lines
    assert says in lines[-1]["event"], lines


def test_an_unknown_log_format_is_refused_naming_the_formats(tmp_path):
    write_chain(tmp_path / "data")
    r = run_cli("node", "start", "--data", str(tmp_path / "data"), "--port", "0", "--log-format", "xml")
    assert r.returncode == 2
    assert "text, json" in r.stderr and not (tmp_path / "data" / "chain.db").exists()


@pytest.mark.parametrize("log_format,passed", [("text", []), ("json", ["--log-format", "json"])])
def test_network_up_starts_each_node_with_its_log_format(tmp_path, monkeypatch, log_format, passed):
    """``blokauto network up --log-format json`` hands the format to every node it starts (each logs
    into its node.log); the text default adds nothing to the command."""
    from blokauto.node import network

    started: list[list[str]] = []
    monkeypatch.setattr(network, "_spawn", lambda cmd, log, cwd=None: started.append(cmd) or 4242)
    state = network.NetworkState("c", str(tmp_path), "", "", [], [], "nats-server")
    network.start_node(state, network.OrgNode("org-a", str(tmp_path / "a"), 8545), log_format=log_format)
    (cmd,) = started
    assert cmd[cmd.index("start"):] == ["start", "--data", str(tmp_path / "a"), "--port", "8545", *passed]

