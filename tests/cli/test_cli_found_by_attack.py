"""What an outside tester found by attacking the command line: each case failed before its fix
(a traceback, a wrong exit code, a changed folder). Every case runs the real ``blokauto`` CLI in a
child process; servers listen on 127.0.0.1 and are stopped by the test."""

from __future__ import annotations

import json
import shutil
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blokauto.cli.demo import MARKER_TEXT
from blokauto.keystore import KeyStore

from conftest import NodeProcess, free_port, run_cli

pytestmark = pytest.mark.e2e

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
VIN = "WZZ3E5C22NM400117"  # the demo's car
UNREACHABLE = "http://127.0.0.1:9"  # nothing listens there: a check that must come before asking a node


def cli(*args: Any, **kw: Any):
    return run_cli(*[str(a) for a in args], env=ENV, **kw)


def refused(r, code: int, *words: str) -> None:
    """Exit ``code`` with one sentence on stderr holding ``words``, and no Python traceback."""
    out = r.stdout + r.stderr
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Traceback" not in out and "Errno" not in out, out
    for w in words:
        assert w in " ".join(r.stderr.split()), f"{w!r} not in: {r.stderr}"


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time: what "changed nothing" compares."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory, copy_demo) -> Path:
    """A stopped demo chain (height > 40, the car's report)."""
    data = tmp_path_factory.mktemp("attack") / "demo"
    copy_demo(data)
    return data


@pytest.fixture
def chain(tmp_path) -> Path:
    """A new chain made by ``init``: acme (manufacturer) and kba (regulator), one node key each."""
    data = tmp_path / "chain"
    r = cli("init", "--data", data, "--org", "acme:manufacturer", "--org", "kba:regulator")
    assert r.returncode == 0, r.stderr
    return data


@pytest.fixture(scope="module")
def backup_of_demo(demo, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("attack-backup") / "bk"
    r = cli("node", "backup", "--data", demo, "--to", dest)
    assert r.returncode == 0, r.stderr
    return dest


# ---------------------------------------------------------------- 1. node start with a member key


def test_a_member_key_cannot_start_a_solo_node_and_the_folder_still_starts_with_its_node_key(chain):
    before = listing(chain)
    r = cli("node", "start", "--data", chain, "--node-key", "acme-admin", "--port", 0)
    refused(r, 2, "acme-admin", "is not a node key of chain 'blokauto-local'", "acme-node, kba-node")
    assert listing(chain) == before  # refused before anything was written
    node = NodeProcess(chain, "--node-key", "kba-node", "--workers", "1")
    try:
        assert json.loads(cli("status", "--node", node.url, "--json").stdout)["healthy"] is True
    finally:
        node.stop()
    assert (chain / "state.db").exists()
    before = listing(chain)  # the consensus record in state.db is read without writing beside it (-wal, -shm)
    refused(cli("node", "start", "--data", chain, "--node-key", "acme-admin", "--port", 0), 2, "is not a node key")
    assert listing(chain) == before


def test_a_node_key_that_is_not_the_consortiums_cannot_start_a_solo_node(chain):
    KeyStore(chain / "keys").create("stray-node", kind="node")
    refused(cli("node", "start", "--data", chain, "--node-key", "stray-node", "--port", 0), 2,
            "stray-node (node key", "is not a node key")
    for name in ("acme-node", "kba-node"):
        (chain / "keys" / f"{name}.json").unlink()
    before = listing(chain)
    # without --node-key the node used to fall back to any node key in DATA/keys
    refused(cli("node", "start", "--data", chain, "--port", 0), 2, "no node key to attest with", "of acme", "of kba")
    assert listing(chain) == before


# ---------------------------------------------------------------- 2 and 7. the trust anchor of --data


def test_a_report_from_a_folder_is_verified_against_its_genesis_json(demo, chain, tmp_path):
    good = cli("report", VIN, "--data", demo)
    assert good.returncode == 0 and f"trust anchor {demo / 'genesis.json'}" in good.stderr, good.stderr
    mixed = shutil.copytree(demo, tmp_path / "mixed")
    shutil.copy(chain / "genesis.json", mixed / "genesis.json")  # another consortium's anchor beside this log
    refused(cli("report", VIN, "--data", mixed), 3, "not verified", f"{mixed / 'chain.db'} is not of the chain")


def test_a_mistyped_data_folder_is_refused_instead_of_verifying_unpinned(demo):
    typo = demo / "kyes"
    for args in (("state", f"veh/v/{VIN}", "--node", UNREACHABLE), ("tx", "get", "ab" * 32, "--node", UNREACHABLE),
                 ("report", VIN)):
        r = cli(*args, "--data", typo)
        refused(r, 2, f"{typo} holds no genesis.json: is it a data folder?")
        assert "not pinned" not in r.stderr


# ---------------------------------------------------------------- 3. tracebacks instead of sentences


def test_node_start_on_a_port_in_use_says_so_and_creates_nothing(chain):
    before = listing(chain)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("node", "start", "--data", chain, "--port", port)
    refused(r, 2, f"port {port} on 127.0.0.1 is in use")
    assert listing(chain) == before and not (chain / "chain.db").exists()


@pytest.mark.parametrize("args,words", [
    (("--port", "99999"), ("--port", "65535")),
    (("--host", "999.1.1.1"), ("cannot listen on '999.1.1.1'", "not an address of this machine")),
    (("--block-txs", "0"), ("--block-txs", "greater than or equal to 1")),
], ids=["port-out-of-range", "unresolvable-host", "zero-block-txs"])
def test_node_start_refuses_bad_listen_addresses_and_sizes(chain, args, words):
    before = listing(chain)
    refused(cli("node", "start", "--data", chain, *args), 2, *words)
    assert listing(chain) == before


def test_a_report_written_into_a_folder_is_a_usage_error(demo, tmp_path):
    refused(cli("report", VIN, "--data", demo, "--pdf", tmp_path), 2, f"--pdf {tmp_path} is a folder")
    refused(cli("report", VIN, "--data", demo, "--html", tmp_path / "no" / "x.html"), 2, "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_verify_says_a_file_that_is_not_a_report_cannot_be_read(demo, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    nested = tmp_path / "nested.json"
    nested.write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    array = tmp_path / "array.json"
    array.write_text("[]")
    trust = demo / "genesis.json"
    refused(cli("verify", deep, "--trust", trust), 2, "cannot be read", "nested too deeply")
    refused(cli("verify", nested, "--trust", trust), 2, "cannot be read", "nested too deeply")
    r = cli("verify", array, "--trust", trust)
    refused(r, 2, "cannot be read as a report", "JSON array")
    assert "AttributeError" not in r.stderr
    report = tmp_path / "report.json"
    assert cli("report", VIN, "--data", demo, "--json", report).returncode == 0
    refused(cli("verify", report, "--trust", deep), 2, f"the trust anchor file {deep} cannot be read")
    assert cli("verify", report, "--trust", trust).returncode == 0


# ---------------------------------------------------------------- 4. exit codes


def test_missing_folders_are_usage_errors_for_backup_and_restore(tmp_path):
    refused(cli("node", "backup", "--data", tmp_path / "nonexist", "--to", tmp_path / "bk"), 2, "is not a folder")
    refused(cli("node", "restore", "--from", tmp_path / "nonexist", "--data", tmp_path / "r"), 2, "is not a folder")
    (tmp_path / "empty").mkdir()
    refused(cli("node", "backup", "--data", tmp_path / "empty", "--to", tmp_path / "bk"), 2, "holds no chain")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]


@pytest.mark.parametrize("args,words", [
    (("--org", "x:regulator"), ("[invalid_identifier]", "'x' is not a valid organisation id")),
    (("--org", "ab:wizard"), ("[unknown_role]", "'wizard' is not a role")),
    (("--quorum", "0"), ("--quorum", "greater than or equal to 1")),
    (("--org", "ab:regulator", "--org", "cd:insurer", "--quorum", "3"), ("a quorum of 3 is impossible with 2",)),
    (("--chain-id", ""), ("'' is not a chain id",)),
    (("--chain-id", "bad chain/id"), ("'bad chain/id' is not a chain id", "letters, digits")),
], ids=["short-org-id", "unknown-role", "zero-quorum", "quorum-above-nodes", "empty-chain-id", "chain-id-with-slash"])
def test_init_refuses_bad_values_and_leaves_nothing_behind(tmp_path, args, words):
    refused(cli("init", "--data", tmp_path / "new" / "chain", *args), 2, *words)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its parent was left behind
    (tmp_path / "empty").mkdir()
    refused(cli("init", "--data", tmp_path / "empty", *args), 2, *words)
    assert list((tmp_path / "empty").iterdir()) == []  # a folder that was there stays, empty


def test_init_where_no_folder_can_be_made_says_so():
    refused(cli("init", "--data", "/proc/blokauto-nope"), 2, "cannot create the chain in /proc/blokauto-nope")


def test_a_bad_tx_id_and_a_missing_query_parameter_are_usage_errors(chain):
    refused(cli("tx", "get", "xyz", "--data", chain, "--node", UNREACHABLE), 2, "'xyz' is not a transaction id")
    refused(cli("query", "vehicles", "history", "--node", UNREACHABLE), 2, "the query vehicles history needs vin=…")
    refused(cli("query", "vehicles", "history", "vim=WZZ", "--node", UNREACHABLE), 2, "has no parameter vim")


# ---------------------------------------------------------------- 5. negative and zero values


@pytest.mark.parametrize("args", [
    ("verify", "{report}", "--trust", "{genesis}", "--max-age-days", "-1"),
    ("verify", "{report}", "--trust", "{genesis}", "--min-height", "-5"),
    ("tx", "get", "ab" * 32, "--data", "{data}", "--wait", "-1"),
    ("tx", "send", "governance.add_member", "--key", "kba-admin", "--data", "{data}", "--wait", "-1"),
    ("node", "start", "--data", "{data}", "--block-ms", "-5"),
    ("node", "start", "--data", "{data}", "--scrub-minutes", "-1"),
    ("node", "start", "--data", "{data}", "--workers", "0"),
    ("audit", "--data", "{data}", "--workers", "0"),
    ("events", "--from-height", "-1", "--node", UNREACHABLE),
], ids=lambda a: " ".join(x for x in a if not x.startswith("{")))
def test_negative_and_zero_values_are_usage_errors(chain, tmp_path, args):
    report = tmp_path / "r.json"
    report.write_text("{}")
    filled = [a.format(report=report, genesis=chain / "genesis.json", data=chain) for a in args]
    before = listing(chain)
    option = next(a for a in args if a.startswith("--") and a not in ("--trust", "--data", "--key", "--node"))
    refused(cli(*filled), 2, f"Invalid value for '{option}'")
    assert listing(chain) == before


# ---------------------------------------------------------------- 6. restore into a folder in use


def test_restore_refuses_a_folder_that_is_not_empty_and_changes_nothing(backup_of_demo, chain, tmp_path):
    keys = chain / "keys"  # a node's keys folder, the tester's case
    before = listing(chain)
    refused(cli("node", "restore", "--from", backup_of_demo, "--data", keys), 2, f"{keys} is not empty",
            "acme-admin.json")
    assert listing(chain) == before
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "notes.txt").write_text("mine")
    refused(cli("node", "restore", "--from", backup_of_demo, "--data", notes), 2, "not empty (it holds notes.txt)")
    assert [p.name for p in notes.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli("node", "restore", "--from", backup_of_demo, "--data", empty)
    assert r.returncode == 0 and "restored" in r.stdout, r.stderr


# ---------------------------------------------------------------- 9. demo replaces only its own folder


def test_demo_does_not_wipe_a_folder_with_a_forged_or_crowded_marker(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".blokauto-demo").write_text("{}")
    (folder / "notes.txt").write_text("my notes")
    refused(cli("demo", "--data", folder), 2, "not the one a demo writes", "notes.txt")
    (folder / ".blokauto-demo").write_text(MARKER_TEXT)  # a genuine marker, but notes a demo never wrote
    (folder / "genesis.json").write_text("{}")
    refused(cli("demo", "--data", folder), 2, "also holds notes.txt, which a demo does not write")
    assert (folder / "notes.txt").read_text() == "my notes"


# ---------------------------------------------------------------- 10. an event stream that breaks off


class FakeEventStream:
    """An HTTP server on 127.0.0.1 whose ``/v1/events`` answers are scripted per connection: each
    script is a list of SSE event texts, then ``"drop"`` (close mid-way, no end of the chunked body)."""

    def __init__(self, scripts: list[list[str]]) -> None:
        self.scripts = scripts
        self.requests: list[str] = []
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = self.rfile.readline()
                    if not line:
                        return
                    head += line
                outer.requests.append(head.decode())
                script = outer.scripts[min(len(outer.requests), len(outer.scripts)) - 1]
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                 b"transfer-encoding: chunked\r\n\r\n")
                for part in script:
                    if part == "drop":
                        self.wfile.flush()
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    body = part.encode()
                    self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sse(eid: str, type_: str, **data: Any) -> str:
    return f"id: {eid}\nevent: {type_}\ndata: {json.dumps({'type': type_, **data})}\n\n"


@pytest.fixture
def fake_stream() -> Iterator[Any]:
    made: list[FakeEventStream] = []

    def make(*scripts: list[str]) -> FakeEventStream:
        made.append(FakeEventStream(list(scripts)))
        return made[-1]

    yield make
    for s in made:
        s.close()


def error_event(eid: str, code: str, message: str) -> str:
    """How a node ends a stream that cannot go on (docs/api.md): an error body, the last id sent."""
    return f"id: {eid}\nevent: error\ndata: {json.dumps({'error': {'code': code, 'message': message, 'detail': {}}})}\n\n"


ERROR = error_event("40:0:0", "integrity_failure", "This node's copy of the block log at block 41 does not match")


def test_events_no_follow_says_the_stream_broke_off_instead_of_a_traceback(fake_stream):
    s = fake_stream([sse("40:0:0", "vehicles.registered", height=40, vin=VIN), "drop"])
    r = cli("events", "--from-height", 40, "--no-follow", "--node", s.url, timeout=60)
    refused(r, 1, f"the event stream from {s.url} broke off after event 40:0:0", "closed the connection mid-way")
    assert json.loads(r.stdout)["id"] == "40:0:0"  # what came before the break was printed


def test_events_prints_the_code_and_message_of_an_error_event(fake_stream):
    s = fake_stream([sse("40:0:0", "vehicles.registered", height=40, vin=VIN), ERROR, "drop"])
    r = cli("events", "--from-height", 40, "--no-follow", "--node", s.url, timeout=60)
    refused(r, 1, "ended the event stream with an error: [integrity_failure] This node's copy of the block log at "
                  "block 41 does not match")
    assert json.loads(r.stdout)["id"] == "40:0:0"


def test_events_following_says_it_reconnects_and_resumes_after_the_last_event(fake_stream):
    s = fake_stream([sse("40:0:0", "vehicles.registered", height=40, vin=VIN), "drop"],
                    [sse("40:1:0", "vehicles.sold", height=40, vin=VIN),
                     error_event("40:1:0", "unavailable", "The state did not reach block 41 within 30 s")],
                    [ERROR])
    r = cli("events", "--from-height", 40, "--node", s.url, timeout=60)
    said = " ".join(r.stderr.split())
    assert "broke off after event 40:0:0 (the node closed the connection mid-way" in said, r.stderr
    assert "after event 40:1:0 (the node ended it with [unavailable]" in said and said.count("reconnecting") == 2
    refused(r, 1, "[integrity_failure]")  # an error that reconnecting cannot cure ends it
    assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == ["40:0:0", "40:1:0"]
    assert len(s.requests) == 3 and "from_height=40" in s.requests[0]
    assert "last-event-id: 40:0:0" in s.requests[1].lower() and "last-event-id: 40:1:0" in s.requests[2].lower()


def test_events_from_an_unreachable_node_is_a_usage_error():
    refused(cli("events", "--node", f"http://127.0.0.1:{free_port()}", timeout=60), 2, "cannot reach the node")
