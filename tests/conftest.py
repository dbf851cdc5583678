"""Shared fixtures: a test consortium in memory, a transaction builder, and real nodes.

Every server a test starts listens on 127.0.0.1 and is stopped by the test, by its PID.

The tests are grouped by area, each folder importing this file as ``conftest`` and the set-up of
an area as ``helpers.*`` (pytest puts ``tests/`` on the path: ``pythonpath`` in pyproject.toml):

- ``core/``: encoding, signatures, Merkle and state-tree proofs, committed vectors, determinism,
  the error model, and the source's layering (``test_architecture.py``);
- ``modules/``: each module's rules, permissions and invariants (governance, vehicles and the
  odometer, parts, recalls);
- ``node/``: a node's files and processes: recovery, journal, block log, roles, state writer,
  verifier pool, tampering and audit, backup, snapshot join;
- ``network/``: a consortium network's faults, durability and repair;
- ``api/``: the HTTP API, its OpenAPI document and its event stream;
- ``cli/``: the ``blokauto`` command line;
- ``report/``: vehicle history reports, their verifiers (Python and browser) and the report page;
- ``docs/``: the README's commands and the reference docs, as written;
- ``data/``: committed vectors (``make_vectors.py`` regenerates blokauto's own).

File names are unique across the folders (pytest imports each test file by its name).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Self

import pytest

from blokauto.bench.harness import wait_ready
from blokauto.core.block import Genesis, GenesisOrganisation
from blokauto.core.chain import MemoryLedger
from blokauto.core.crypto import KeyPair
from blokauto.core.encoding import canonical
from blokauto.core.tx import Message, make_body, sign
from blokauto.modules import default_registry

ROOT = Path(__file__).resolve().parent.parent  # the repository
DATA = ROOT / "tests" / "data"  # committed vectors and their generator
JSON_POST = {"content-type": "application/json"}  # transactions are submitted as JSON
CHAIN = "test-chain"
T0 = 1_800_000_000_000  # genesis time of test chains (ms)


def K(label: str) -> KeyPair:
    """A deterministic test key."""
    return KeyPair.from_label(label)


def consortium(chain: str = CHAIN, quorum: int = 1, time: int = T0) -> Genesis:
    """Three founding organisations: an automaker, an insurer and a regulator (the node operator)."""
    return Genesis(
        chain=chain,
        time=time,
        organisations=[
            GenesisOrganisation("oem", "Test Motors", ["manufacturer"], [K("oem-admin").did], []),
            GenesisOrganisation("ins", "Test Insurance", ["insurer"], [K("ins-admin").did], []),
            GenesisOrganisation("reg", "Test Registry", ["regulator", "police", "inspector"], [K("reg-admin").did],
                                [K("reg-node").did]),
        ],
        quorum=quorum,
    )


_nonces = itertools.count(1)


def build_tx(sender: KeyPair, msg: Message, *cosigners: KeyPair, chain: str = CHAIN, expires: int = T0 + 3_000_000,
             nonce: str | None = None) -> bytes:
    """Canonical bytes of ``msg`` sent by ``sender`` and co-signed by ``cosigners``."""
    body = make_body(chain, sender.did, msg, nonce=nonce or f"{next(_nonces):032x}", expires=expires)
    return canonical(sign(body, sender, *cosigners))


class Chain:
    """A MemoryLedger with helpers: submit raw txs as one block and get receipts back."""

    def __init__(self, genesis: Genesis | None = None) -> None:
        self.genesis = genesis or consortium()
        self.registry = default_registry()
        self.ledger = MemoryLedger(self.registry, self.genesis)

    def block(self, *raws: bytes, time: int | None = None):
        return self.ledger.add_block([self.ledger.check(r) for r in raws], time=time)

    def run(self, sender: KeyPair, msg: Message, *cosigners: KeyPair, **kw: Any):
        """One transaction in its own block; returns its receipt."""
        return self.block(build_tx(sender, msg, *cosigners, chain=self.genesis.chain, **kw)).receipts[0]

    @property
    def root(self) -> str:
        return self.ledger.head.state_root


@pytest.fixture
def chain() -> Chain:
    return Chain()


# ---------------------------------------------------------------- nodes


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_chain(data: Path, genesis: Genesis | None = None, node_label: str = "reg-node") -> Genesis:
    """A data folder holding ``genesis`` (the test consortium by default) and its node key."""
    from blokauto.keystore import KeyStore

    genesis = genesis or consortium(time=int(time.time() * 1000) - 1000)
    data.mkdir(parents=True, exist_ok=True)
    (data / "genesis.json").write_bytes(canonical(genesis))
    ks = KeyStore(data / "keys")
    ks.create("node", kind="node", key=K(node_label))
    for label in ("oem-admin", "ins-admin", "reg-admin"):
        ks.create(label, key=K(label))
    return genesis


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------- signed requests

#: The key the tests read with: the test consortium's node key (consortium nodes read everything,
#: whole blocks and the block log included). ``write_chain`` stores it as the node's key "node".
NODE_LABEL = "reg-node"


def signed(url: str = "", key: KeyPair | None = None, **kw: Any) -> Any:
    """An ``httpx.Client`` whose every request is signed (RFC 9421) with ``key`` (the node's key,
    K("reg-node"), by default): ``url`` is its base URL (relative paths), or "" for absolute URLs."""
    from blokauto.client import signed_http

    return signed_http(url, key if key is not None else K(NODE_LABEL), **{"timeout": 30, **kw})


def signed_client(url: str, key: KeyPair | None = None, **kw: Any) -> Any:
    """The SDK's ``Client`` for ``url`` signing with ``key`` (the node's key by default)."""
    from blokauto.client import Client

    return Client(url, key=key if key is not None else K(NODE_LABEL), **kw)


def node_key_of(data: Path) -> KeyPair:
    """The node key kept in the data folder ``data`` (``write_chain``'s "node", or the demo's
    "kba-node"): a consortium node key of its chain, which reads everything."""
    from blokauto.keystore import KeyStore

    keys = KeyStore(Path(data) / "keys")
    genesis = (Path(data) / "genesis.json").read_text() if (Path(data) / "genesis.json").exists() else ""
    nodes = sorted((e for e in keys.entries() if e.kind == "node"), key=lambda e: (e.name != "node", e.name))
    for entry in nodes:
        if not genesis or entry.did in genesis:
            return keys.load(entry.name)
    return K(NODE_LABEL)


def signed_request(method: str, url: str, *, key: KeyPair | None = None, **kw: Any) -> Any:
    """``httpx.request`` signed with ``key`` (the node's key by default): one request, one client."""
    timeout = kw.pop("timeout", 30)
    with signed(key=key, timeout=timeout) as http:
        return http.request(method, url, **kw)


def signed_get(url: str, **kw: Any) -> Any:
    """``httpx.get``, signed (see ``signed_request``)."""
    return signed_request("GET", url, **kw)


def signed_post(url: str, **kw: Any) -> Any:
    """``httpx.post``, signed (see ``signed_request``)."""
    return signed_request("POST", url, **kw)


def signature_lines(method: str, target: str, *, host: str = "n", body: bytes = b"",
                    key: KeyPair | None = None) -> bytes:
    """The signature header lines (each ending CRLF) of a request written by hand: ``target`` is its
    path and query as sent, ``host`` its Host header (both signed)."""
    from blokauto.http_signatures import sign_request

    headers: dict[str, str] = {}
    sign_request(key if key is not None else K(NODE_LABEL), method, f"http://{host}{target}", headers, body)
    return b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items())


class _SignedAccess:
    """``.key``, ``.http`` (a signed httpx client for ``.url``, made once, closed by ``close_http``)
    and ``.client(**kw)`` (a new SDK Client signing with ``.key``) for objects that have a ``url``."""

    url: str
    key: KeyPair = K(NODE_LABEL)
    _http: Any = None

    @property
    def http(self) -> Any:
        if self._http is None or self._http.is_closed:
            self._http = signed(self.url, self.key)
        return self._http

    def client(self, **kw: Any) -> Any:
        return signed_client(self.url, self.key, **kw)

    def close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


@pytest.fixture
def live_node(tmp_path: Path) -> Iterator[Any]:
    """A node with its HTTP API in this process (threads), on 127.0.0.1."""
    from blokauto.api.server import ApiServer
    from blokauto.node.ordering import NodeConfig
    from blokauto.node.node import Node

    genesis = write_chain(tmp_path / "data")
    node = Node(tmp_path / "data", config=NodeConfig(block_interval_ms=20), workers=1)
    node.start()
    server = ApiServer(node, "127.0.0.1", 0)
    url = server.start()

    class Live(_SignedAccess):
        pass

    live = Live()
    live.url, live.node, live.genesis, live.data = url, node, genesis, tmp_path / "data"
    live.tx = lambda sender, msg, *co, **kw: build_tx(sender, msg, *co, chain=genesis.chain,
                                                         expires=kw.pop("expires", now_ms() + 600_000), **kw)
    try:
        yield live
    finally:
        live.close_http()
        server.stop()
        node.stop()


class NodeProcess(_SignedAccess):
    """``blokauto node start`` in a child process, stopped by its PID; ``.http`` and ``.client()``
    sign with ``.key`` (the test chain's node key)."""

    def __init__(self, data: Path, *extra: str) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data / "node.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data), "--host", "127.0.0.1",
             "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self.key = node_key_of(data)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        wait_ready(self.proc, self.url, timeout, self.data / "node.log")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Kill the node and its verifier workers (by PID)."""
        import psutil

        try:
            children = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            children = []
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
            self.proc.wait(30)
        for c in children:
            try:
                c.kill()
                c.wait(10)
            except psutil.Error:
                pass
        self.log.close()
        self.close_http()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[Any]:
    """Start real node processes on a fresh test chain: ``start()`` returns a NodeProcess."""
    started: list[NodeProcess] = []
    data = tmp_path / "data"
    genesis = write_chain(data)

    class Factory:
        pass

    f = Factory()
    f.data, f.genesis = data, genesis

    def start(*extra: str) -> NodeProcess:
        p = NodeProcess(data, *extra)
        started.append(p)
        return p

    f.start = start
    try:
        yield f
    finally:
        for p in started:
            if p.proc.poll() is None:
                p.kill()


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Any]:
    """A consortium network (3 NATS JetStream servers, 4 organisations' nodes) as real processes: a
    ``helpers.network.Net``, stopped after the test."""
    from helpers.network import Net

    n = Net.up(tmp_path / "net")
    try:
        yield n
    finally:
        n.close()


class Served(_SignedAccess):
    """A node on the data folder ``data`` with its HTTP API in this process (threads), on 127.0.0.1;
    ``stop()`` stops both (or use it as a context manager). ``.http`` and ``.client()`` sign with
    ``.key`` (the test chain's node key)."""

    def __init__(self, data: Path, **kw: Any) -> None:
        from blokauto.api.server import ApiServer
        from blokauto.node.node import Node

        self.data = data
        self.key = node_key_of(data)
        self.node = Node(data, workers=1, **kw)
        self.node.start()
        self.server = ApiServer(self.node, "127.0.0.1", 0)
        self.url = self.server.start()

    def stop(self) -> None:
        self.close_http()
        self.server.stop()
        self.node.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real ``blokauto`` CLI."""
    return subprocess.run([sys.executable, "-m", "blokauto.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, **(env or {})})


def make_demo(data: Path) -> str:
    """The demo chain in ``data``, built by the real ``blokauto demo``; returns what it printed.
    A test that only needs a stopped demo chain takes ``copy_demo`` instead (a copy of one built once)."""
    r = run_cli("demo", "--data", str(data), timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


# ---------------------------------------------------------------- one run, several processes
#
# ``./scripts/test`` runs the suite in pytest-xdist workers (one process each, ``--dist loadfile``:
# a file's tests run in one worker, in order). What the workers of one run share lives under
# ``shared_tmp`` and is made under a lock (``locked``); a test that needs something of the whole
# machine (a fixed port) holds a machine-wide lock while it runs.


def shared_tmp(factory: pytest.TempPathFactory) -> Path:
    """A folder shared by every worker of this run (the run's own temp folder when there are none)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on the file ``path`` (created if missing), across processes; released when the
    block ends or the process dies."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


#: Tests whose parametrized cases the parallel run may give to different workers (every other
#: file's tests run in one worker, in order): long sweeps split in parts, each part a test.
SPREAD = ("tests/node/test_tampered_data_is_never_served.py::test_one_changed_value_anywhere_is_never_served_as_genuine[",)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: unknown when it is not loaded (-p no:xdist)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadfile``: a file's tests go to one worker (its module fixtures built once),
    except the cases of a ``SPREAD`` test, each of which may go to any worker; files are handed out
    in the order collected (``pytest_collection_modifyitems``: the longest first), not by size."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.startswith(SPREAD) else nodeid.split("::", 1)[0]

    config.option.loadscopereorder = False
    return FileScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files holding ``slow`` tests first, then those holding ``e2e`` tests, then the rest (each in
    the order collected): the workers start on the longest files, so that no long file is left to
    run alone at the end (``pytest_xdist_make_scheduler`` hands out files in this order)."""
    weight: dict[str, int] = {}
    for item in items:
        w = 2 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("e2e") else 0
        weight[item.nodeid.split("::")[0]] = max(w, weight.get(item.nodeid.split("::")[0], 0))
    items.sort(key=lambda item: -weight[item.nodeid.split("::")[0]])


@pytest.fixture(scope="session")
def copy_demo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], str]:
    """``copy_demo(data)`` puts a stopped demo chain in ``data`` and returns what the demo printed: a
    copy of one chain built by the real ``blokauto demo`` once per run (by the first worker that needs
    it; the others wait for it), so each test or module still gets a folder of its own to change."""
    shared = shared_tmp(tmp_path_factory)
    built, printed = shared / "demo-template" / "demo", shared / "demo-template" / "printed.txt"
    with locked(shared / "demo-template.lock"):
        if not printed.exists():  # written last: the chain is complete
            shutil.rmtree(built.parent, ignore_errors=True)
            printed.parent.mkdir(parents=True)
            printed.write_text(make_demo(built))
    story = printed.read_text()

    def copy(data: Path) -> str:
        shutil.copytree(built, data, symlinks=True)
        return story

    return copy


@pytest.fixture
def default_ports() -> Iterator[None]:
    """For a test whose commands use the default ports as written (the node's 8545, a software server's
    8600): held while it runs, so that no other test of this machine's runs does the same meanwhile."""
    import tempfile

    with locked(Path(tempfile.gettempdir()) / "blokauto-tests-default-ports.lock"):
        yield


def change_one_index_row(state_db: Path) -> str:
    """Append a character to a text column of one row of a non-empty index table; returns the table."""
    import sqlite3

    with sqlite3.connect(state_db) as c:
        tables = [n for (n,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        for name in tables:
            info = list(c.execute(f"PRAGMA table_info({name})"))
            if not any(r[1] == "_h" for r in info) or not c.execute(f"SELECT count(*) FROM {name}").fetchone()[0]:
                continue
            text = next((r[1] for r in info if r[2] == "TEXT"), None)
            if text is None:
                continue
            c.execute(f"UPDATE {name} SET {text} = {text} || 'x' WHERE _h = (SELECT _h FROM {name} LIMIT 1)")
            return name
    raise AssertionError("no index row to change")


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, event type, JSON data) of each event of a text/event-stream, parsed apart from the SDK's
    parser so that the tests check the SDK rather than share its mistakes."""
    eid = etype = ""
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield eid, etype, json.loads("\n".join(data))
            eid, etype, data = "", "", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                eid = value
            elif field == "event":
                etype = value
            elif field == "data":
                data.append(value)
