"""Shared machinery of the consortium-network fault tests: a local network (3 NATS JetStream
servers and one node per organisation, all on 127.0.0.1) whose every process is stopped by PID,
a steady load of signed transactions over HTTP that records what was acknowledged, and the
checks that nothing acknowledged was lost once the nodes are back in step.

Every wait is bounded and says what it waited for.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import httpx
import msgspec
import psutil

from blokauto.core.crypto import KeyPair
from blokauto.modules.governance.messages import AddMember
from blokauto.node.netconfig import NetworkSettings, Subjects, load_network
from blokauto.node.network import (NatsServer, NetworkState, OrgNode, admin_connect, alive, network_down,
                                   network_up, node_status, start_node, start_server, stop_pid, stream_leader)
from blokauto.node.node import load_genesis
from blokauto.verify import TrustAnchor, VerificationError, verify_tx_evidence

from conftest import JSON_POST, build_tx, now_ms, signed, signed_request

K = KeyPair.from_label  # network_up(key_factory=K): every founding key is K("<org>-admin") / K("<org>-node")

#: The key the tests read and submit with: kba's node key, a consortium node key of every test network
#: (node keys read everything, whole blocks included).
NODE_KEY = K("kba-node")


def net_http(url: str = "", **kw: Any) -> httpx.Client:
    """An ``httpx.Client`` for ``url`` (or absolute URLs) whose every request is signed with ``NODE_KEY``."""
    return signed(url, NODE_KEY, **kw)


def net_get(url: str, **kw: Any) -> httpx.Response:
    """``httpx.get`` signed with ``NODE_KEY``."""
    return signed_request("GET", url, key=NODE_KEY, **kw)


def net_post(url: str, **kw: Any) -> httpx.Response:
    """``httpx.post`` signed with ``NODE_KEY``."""
    return signed_request("POST", url, key=NODE_KEY, **kw)


#: The organisations ``network_up(orgs=4)`` runs nodes for, and a role each one's admin may give.
ROLE_OF = {"kba": "inspector", "bavaria-motors": "manufacturer", "allied-insurance": "insurer",
           "meister-werkstatt": "workshop"}


def wait_until(pred: Callable[[], Any], timeout: float, what: str, *, every: float = 0.1,
               detail: Callable[[], str] | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:g} s waiting for {what}" + (f": {detail()}" if detail else ""))
        time.sleep(every)


def log_tail(node: OrgNode, chars: int = 3000) -> str:
    path = Path(node.data) / "node.log"
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no node.log)"


# ---------------------------------------------------------------- the network


class Net:
    """A running local network; ``close()`` stops every process it started, by PID."""

    def __init__(self, base: Path, state: NetworkState) -> None:
        self.base = base
        self.state = state
        self.pids: dict[int, float] = {}  # every server, node and signature-worker PID seen -> its start time
        self.paused: set[int] = set()
        self._note_pids()

    @classmethod
    def up(cls, base: Path, **kw: Any) -> "Net":
        return cls(base.resolve(), network_up(base, orgs=4, workers=1, key_factory=K, **kw))

    # ------------------------------------------------------------ processes

    def _note(self, pid: int) -> None:
        try:
            self.pids[pid] = psutil.Process(pid).create_time()
        except psutil.Error:
            pass  # already gone

    def _note_pids(self) -> None:
        for p in [*self.state.servers, *self.state.nodes]:
            if p.pid > 0:
                self._note(p.pid)
        for n in self.state.nodes:
            for pid in self.workers_of(n):
                self._note(pid)

    def _still_ours(self, pid: int) -> bool:
        """The process with this PID is the one this network started (not a later one reusing the PID)."""
        try:
            return psutil.Process(pid).create_time() == self.pids[pid]
        except psutil.Error:
            return False

    @staticmethod
    def workers_of(node: OrgNode) -> list[int]:
        try:
            return [c.pid for c in psutil.Process(node.pid).children(recursive=True)]
        except psutil.Error:
            return []

    @property
    def nodes(self) -> list[OrgNode]:
        return self.state.nodes

    def node(self, org: str) -> OrgNode:
        return next(n for n in self.state.nodes if n.org == org)

    def server(self, name: str) -> NatsServer:
        return next(s for s in self.state.servers if s.name == name)

    def kill_node(self, node: OrgNode) -> None:
        """SIGKILL a node (its signature workers see their pipe close and exit on their own)."""
        workers = self.workers_of(node)
        for pid in workers:
            self._note(pid)
        os.kill(node.pid, signal.SIGKILL)
        wait_until(lambda: not alive(node.pid), 10, f"node {node.org} (pid {node.pid}) to die")
        for pid in workers:
            wait_until(lambda: not alive(pid), 10, f"signature worker {pid} of node {node.org} to exit")

    def restart_node(self, node: OrgNode, timeout: float = 60) -> None:
        assert not alive(node.pid), f"node {node.org} is still running"
        start_node(self.state, node, workers=1)
        self.state.save()
        self._note(node.pid)
        wait_until(lambda: node_status(node) is not None or not alive(node.pid), timeout,
                   f"node {node.org} to serve its API again", detail=lambda: log_tail(node))
        assert alive(node.pid), f"node {node.org} exited on restart:\n{log_tail(node)}"
        self._note_pids()

    def pause(self, proc: OrgNode | NatsServer) -> None:
        """SIGSTOP a node or a NATS server (``close()`` continues it if the test does not)."""
        self._note(proc.pid)
        self.paused.add(proc.pid)
        os.kill(proc.pid, signal.SIGSTOP)

    def resume(self, proc: OrgNode | NatsServer) -> None:
        os.kill(proc.pid, signal.SIGCONT)
        self.paused.discard(proc.pid)

    def restart_server(self, server: NatsServer) -> None:
        assert not alive(server.pid), f"NATS server {server.name} is still running"
        start_server(self.state, server)
        self.state.save()
        self._note(server.pid)

    def close(self) -> None:
        for pid in list(self.paused):  # a stopped process cannot act on SIGTERM
            if self._still_ours(pid):
                os.kill(pid, signal.SIGCONT)
        self._note_pids()
        try:
            self.state.save()
            network_down(self.base)
        finally:
            for pid in sorted(self.pids):  # anything left: a restarted process's predecessor, a worker
                if self._still_ours(pid):
                    stop_pid(pid, timeout=5)

    # ------------------------------------------------------------ the operator's view of NATS

    def admin(self, fn: Callable[[Any, Any], Any], timeout: float = 20) -> Any:
        """Run ``await fn(nc, js)`` on a connection as the operator's admin user."""

        async def go() -> Any:
            nc = await admin_connect(self.state, max_reconnect_attempts=2)
            try:
                return await asyncio.wait_for(fn(nc, nc.jetstream(timeout=5)), timeout)
            finally:
                await nc.close()

        return asyncio.run(go())

    def leader(self, timeout: float = 20) -> NatsServer:
        return stream_leader(self.state, timeout=timeout)

    def order_stream_info(self) -> Any:
        return self.admin(lambda nc, js: js.stream_info(Subjects(self.state.chain).order_stream))

    def wait_replicas_current(self, timeout: float = 60) -> None:
        """The ordering stream has a leader and both other servers are current replicas."""
        def check() -> bool:
            try:
                info = self.order_stream_info()
            except Exception:  # noqa: BLE001 - no leader yet
                return False
            c = info.cluster
            return bool(c and c.leader and c.replicas and len(c.replicas) == 2
                        and all(r.current and not r.offline for r in c.replicas))

        wait_until(check, timeout, "the ordering stream to have a leader and 2 current replicas", every=0.5,
                   detail=lambda: repr(_safe(lambda: self.order_stream_info().cluster)))

    def settings(self, org: str) -> NetworkSettings:
        s = load_network(Path(self.node(org).data))
        assert s is not None
        return s

    def org_options(self, org: str) -> dict[str, Any]:
        """``nats.connect`` keyword arguments of an organisation's node (its credentials, TLS, inbox)."""
        return self.settings(org).connect_options(Path(self.node(org).data))


def _safe(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - only for error messages
        return f"({type(exc).__name__}: {exc})"


# ---------------------------------------------------------------- load


class Load:
    """Steady load over HTTP: submitter threads post batches of signed ``governance.add_member``
    transactions (one admin per organisation, round robin over ``urls``) and, now and then, a
    single transaction (POST /v1/txs, 202) and a pair adding the same key twice (both are
    accepted; the second fails when executed, so failed receipts are exercised too).

    Records every id acknowledged (202, or an id in a batch answer). A transaction answered
    ``unavailable`` (503 or per item) is sent again, to the next node, until acknowledged or
    answered ``replayed_tx`` (it was committed meanwhile). Anything else is recorded in
    ``unexpected``; transport errors in ``transport_errors``.
    """

    BATCH = 20
    PAUSE_S = 0.08

    def __init__(self, urls: list[str], chain: str, prefix: str, *, submitters: int = 2,
                 admins: list[str] | None = None) -> None:
        self.urls, self.chain, self.prefix = urls, chain, prefix
        self.admins = admins or list(ROLE_OF)
        self.acked: dict[str, bytes] = {}  # id -> raw
        self.replayed: dict[str, int] = {}  # id answered replayed_tx on a retry -> the height given
        self.unavailable: Counter[str] = Counter()  # message of each retryable refusal seen
        self.status_codes: Counter[int] = Counter()
        self.unexpected: list[str] = []
        self.transport_errors: list[str] = []
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._n = itertools.count()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True, name=f"load-{i}")
                         for i in range(submitters)]

    def start(self) -> "Load":
        for t in self._threads:
            t.start()
        return self

    def halt(self) -> None:
        self.stop.set()
        for t in self._threads:
            t.join(60)
            assert not t.is_alive(), "a load thread did not stop within 60 s"

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def _tx(self, admin_org: str, member_label: str) -> bytes:
        member = K(member_label)
        return build_tx(K(f"{admin_org}-admin"), AddMember(member=member.did, roles=[ROLE_OF[admin_org]]), member,
                        chain=self.chain, expires=now_ms() + 600_000)

    def _fresh(self, count: int) -> list[bytes]:
        out = []
        for _ in range(count):
            n = next(self._n)
            out.append(self._tx(self.admins[n % len(self.admins)], f"{self.prefix}-m{n}"))
        return out

    def _run(self, worker: int) -> None:
        retry: list[bytes] = []
        k = worker
        with net_http(timeout=httpx.Timeout(45, connect=3)) as http:
            while not self.stop.is_set():
                url = self.urls[k % len(self.urls)]
                k += 1
                if k % 7 == 0:
                    raws = retry[:1] or self._fresh(1)
                    retry = retry[1:]
                    retry += self._single(http, url, raws[0])
                else:
                    raws, retry = retry[: self.BATCH], retry[self.BATCH:]
                    raws += self._fresh(self.BATCH - len(raws))
                    if k % 5 == 0:  # the same key added twice in one batch: the second fails in its block
                        n = next(self._n)
                        admin = self.admins[n % len(self.admins)]
                        raws += [self._tx(admin, f"{self.prefix}-twice{n}"), self._tx(admin, f"{self.prefix}-twice{n}")]
                    retry += self._batch(http, url, raws)
                self.stop.wait(self.PAUSE_S)

    def _note(self, raw: bytes, item: dict[str, Any]) -> bool:
        """Record one answer; True if the transaction should be sent again."""
        if "id" in item:
            self.acked[item["id"]] = raw
            return False
        err = item["error"]
        if err["code"] == "unavailable":
            self.unavailable[str(err.get("detail", {}).get("reason", err["message"]))[:120]] += 1
            return True
        if err["code"] == "replayed_tx":  # only a retry can be a replay: it was committed meanwhile
            self.replayed[err["detail"]["tx_id"]] = err["detail"]["height"]
            return False
        self.unexpected.append(f"{err['code']}: {err['message']}")
        return False

    def _batch(self, http: httpx.Client, url: str, raws: list[bytes]) -> list[bytes]:
        try:
            r = http.post(url + "/v1/txs/batch", content=b"[" + b",".join(raws) + b"]",
                          headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:
            with self._lock:
                self.transport_errors.append(f"{url}: {type(exc).__name__}: {exc}")
            return raws
        with self._lock:
            self.status_codes[r.status_code] += 1
            if r.status_code == 503:
                return self._whole_refusal(url, r, raws)
            if r.status_code != 200:
                self.unexpected.append(f"{url} batch: HTTP {r.status_code}: {r.text[:300]}")
                return []
            results = r.json()["results"]
            assert len(results) == len(raws)
            return [raw for raw, item in zip(raws, results) if self._note(raw, item)]

    def _single(self, http: httpx.Client, url: str, raw: bytes) -> list[bytes]:
        try:
            r = http.post(url + "/v1/txs", headers=JSON_POST, content=raw)
        except httpx.HTTPError as exc:
            with self._lock:
                self.transport_errors.append(f"{url}: {type(exc).__name__}: {exc}")
            return [raw]
        with self._lock:
            self.status_codes[r.status_code] += 1
            if r.status_code == 202:
                body = r.json()
                assert body["status"] == "accepted"
                return [raw] if self._note(raw, {"id": body["id"]}) else []
            if r.status_code == 503:
                return self._whole_refusal(url, r, [raw])
            if r.status_code == 409:
                return [raw] if self._note(raw, r.json()) else []
            self.unexpected.append(f"{url} single: HTTP {r.status_code}: {r.text[:300]}")
            return []

    def _whole_refusal(self, url: str, r: httpx.Response, raws: list[bytes]) -> list[bytes]:
        try:
            err = r.json()["error"]
        except (ValueError, KeyError):
            self.unexpected.append(f"{url}: HTTP 503 without an error body: {r.text[:300]}")
            return raws
        if err.get("code") != "unavailable" or r.headers.get("retry-after") is None:
            self.unexpected.append(f"{url}: HTTP 503 with code {err.get('code')!r}, Retry-After "
                                   f"{r.headers.get('retry-after')!r}")
        self.unavailable[str(err.get("detail", {}).get("reason", err.get("message")))[:120]] += 1
        return raws

    def summary(self) -> str:
        return (f"acked={len(self.acked)} replayed-on-retry={len(self.replayed)} statuses={dict(self.status_codes)} "
                f"unavailable={dict(self.unavailable)} unexpected={self.unexpected[:5]} "
                f"transport={self.transport_errors[:5]}")


# ---------------------------------------------------------------- checks


def status(node: OrgNode) -> dict[str, Any]:
    r = httpx.get(node.url + "/v1/status", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def wait_in_step(net: Net, nodes: list[OrgNode] | None = None, timeout: float = 90, *,
                 min_height: int = 0) -> dict[str, Any]:
    """Every node (of ``nodes``, all by default) healthy, connected to NATS, done with the whole
    ordering stream (its last sequence, as the operator reads it), nothing pending, and all at the
    same height, head and state root (seen twice in a row). Returns one node's status."""
    nodes = net.nodes if nodes is None else nodes
    last: dict[str, Any] = {}
    agreed: list[tuple] = []
    stream: dict[str, Any] = {}

    def check() -> bool:
        try:
            stream["last_seq"] = net.order_stream_info().state.last_seq
        except Exception as exc:  # noqa: BLE001 - no stream leader at this moment
            stream["last_seq"] = f"unknown ({type(exc).__name__})"
            return False
        for n in nodes:
            last[n.org] = node_status(n, timeout=5)
        sts = list(last.values())
        if any(s is None or not s["healthy"] or s["pending"] != 0 or not s["nats_connected"]
               or s["stream_seq"] != stream["last_seq"] for s in sts):
            agreed.clear()
            return False
        views = {(s["height"], s["head"], s["state_root"]) for s in sts}  # type: ignore[index]
        if len(views) != 1 or next(iter(views))[0] < min_height:
            agreed.clear()
            return False
        agreed.append(next(iter(views)))
        return len(agreed) >= 2 and agreed[-1] == agreed[-2]

    def describe() -> str:
        return f"ordering stream at {stream.get('last_seq')}; " + "; ".join(f"{org}: " + ("no answer" if s is None else
                                       f"height {s['height']} root {str(s['state_root'])[:12]} pending {s['pending']} "
                                       f"healthy {s['healthy']} stream_seq {s.get('stream_seq')} "
                                       f"nats {s.get('nats_connected')} error {s.get('error')} "
                                       f"nats_error {s.get('nats_error')}")
                         for org, s in last.items())

    wait_until(check, timeout, f"nodes {[n.org for n in nodes]} to agree on height, head and state root",
               every=0.5, detail=describe)
    return last[nodes[0].org]


def fetch_blocks(url: str, top: int, *, full: bool) -> dict[int, dict[str, Any]]:
    with net_http(timeout=60) as http, ThreadPoolExecutor(4) as pool:
        def one(h: int) -> tuple[int, dict[str, Any]]:
            r = http.get(f"{url}/v1/blocks/{h}", params={"full": "true" if full else "false"})
            assert r.status_code == 200, (url, h, r.status_code, r.text[:300])
            return h, r.json()

        return dict(pool.map(one, range(top + 1)))


def committed_txs(url: str, top: int, quorum: int) -> tuple[dict[str, tuple[int, int, dict[str, Any]]],
                                                             dict[int, dict[str, Any]]]:
    """Walk blocks 1..top of one node: tx id -> (height, index, receipt), asserting that each block
    links to the previous one and carries a quorum of attestations, and that no id appears twice."""
    blocks = fetch_blocks(url, top, full=True)
    where: dict[str, tuple[int, int, dict[str, Any]]] = {}
    twice: list[str] = []
    for h in range(1, top + 1):
        b = blocks[h]
        assert b["header"]["prev"] == blocks[h - 1]["hash"], f"{url}: block {h} does not link to block {h - 1}"
        assert len(b["tx_ids"]) == len(b["receipts"]) > 0, f"{url}: block {h} has no transactions or receipts"
        signers = [a["node"] for a in b["attestations"]]
        assert len(set(signers)) >= quorum, (f"{url}: block {h} is served with {len(set(signers))} attestations, "
                                             f"fewer than the quorum of {quorum}: its receipts cannot be verified")
        for i, (txid, receipt) in enumerate(zip(b["tx_ids"], b["receipts"])):
            if txid in where:
                twice.append(f"{txid} in blocks {where[txid][0]} and {h}")
            where[txid] = (h, i, receipt)
    assert not twice, f"{url}: {len(twice)} transaction ids appear in two blocks: {twice[:5]}"
    return where, blocks


def check_nothing_acknowledged_lost(net: Net, load: Load, nodes: list[OrgNode] | None = None, *,
                                    timeout: float = 120, lookups_per_node: int = 150) -> dict[str, Any]:
    """After the load stopped: the nodes (all by default) consumed the whole ordering stream and
    agree; every acknowledged id (and every id a retry was told is committed) is in exactly one
    block with a receipt on every node; GET /v1/txs/{id} on every node answers the same, with
    evidence that verifies against the genesis; clients saw no error but retryable 503s."""
    nodes = net.nodes if nodes is None else nodes
    st = wait_in_step(net, nodes, timeout)
    top = st["height"]
    must = set(load.acked) | set(load.replayed)
    assert load.acked, "the load had nothing acknowledged"

    reference: dict[str, tuple[int, int, dict[str, Any]]] | None = None
    ref_blocks: dict[int, dict[str, Any]] = {}
    # in parallel: a networked node serves block 0 only after waiting quorum_wait_ms (5 s) for a quorum
    # of attestations that genesis never gets
    with ThreadPoolExecutor(len(nodes)) as pool:
        walks = list(pool.map(lambda n: committed_txs(n.url, top, st["quorum"]), nodes))
    for n, (where, blocks) in zip(nodes, walks):
        missing = sorted(must - where.keys())
        assert not missing, (f"node {n.org}: {len(missing)} of {len(must)} acknowledged transactions are in no block "
                             f"up to height {top}, e.g. {missing[:5]}; {load.summary()}")
        for txid in must:
            receipt = where[txid][2]
            assert receipt["tx"] == txid and isinstance(receipt["ok"], bool), (n.org, txid, receipt)
            assert receipt["ok"] or receipt["code"], (n.org, txid, receipt)
        for txid, h in load.replayed.items():
            assert where[txid][0] == h, f"node {n.org}: {txid} was reported committed at {h}, is at {where[txid][0]}"
        if reference is None:
            reference, ref_blocks = where, blocks
        else:  # the same blocks, transactions and receipts as the first node
            assert where == reference, f"node {n.org} holds other transactions or receipts than node {nodes[0].org}"
            for h in range(top + 1):
                assert blocks[h]["hash"] == ref_blocks[h]["hash"], f"node {n.org}: block {h} differs"
    assert reference is not None
    ok = sum(1 for t in must if reference[t][2]["ok"])
    failed = [reference[t][2]["code"] for t in must if not reference[t][2]["ok"]]
    assert set(failed) <= {"member_exists"}, f"unexpected failed receipts: {Counter(failed)}"

    # GET /v1/txs/{id} (the tx index, not the block walk) on every node, for a spread of ids
    ordered = sorted(must, key=lambda t: reference[t][:2])  # type: ignore[index]
    sample = ordered[:: max(1, len(ordered) // lookups_per_node)] + ordered[-5:]

    genesis = load_genesis(Path(nodes[0].data))  # the trust anchor every organisation was given
    assert genesis is not None
    anchor = TrustAnchor.from_genesis(genesis)
    http = net_http(timeout=30, limits=httpx.Limits(max_connections=16))

    def lookup(args: tuple[OrgNode, str]) -> str | None:
        node, txid = args
        r = http.get(f"{node.url}/v1/txs/{txid}")
        if r.status_code != 200:
            return f"{node.org} {txid}: HTTP {r.status_code} {r.text[:200]}"
        got = r.json()
        h, i, receipt = reference[txid]  # type: ignore[index]
        if (got["height"], got["index"], got["receipt"]) != (h, i, receipt):
            return f"{node.org} {txid}: answered {got['height']}/{got['index']}, blocks say {h}/{i}"
        try:  # proofs and a quorum of valid node signatures, checked against the genesis
            verify_tx_evidence(got, anchor)
        except VerificationError as exc:
            return f"{node.org} {txid}: evidence does not verify: {exc}"
        return None

    with http, ThreadPoolExecutor(8) as pool:
        problems = [p for p in pool.map(lookup, [(n, t) for n in nodes for t in sample]) if p]
    assert not problems, f"{len(problems)} receipt look-ups failed: {problems[:5]}"

    assert not load.unexpected, f"clients saw non-retryable errors: {load.unexpected[:10]}"
    assert not load.transport_errors, f"clients could not reach a node: {load.transport_errors[:10]}"
    assert all(code in (200, 202, 409, 503) for code in load.status_codes), load.summary()
    return {"height": top, "acked": len(load.acked), "ok": ok, "failed": len(failed), "status": st}


def attestation_stream_messages(net: Net, subject: str) -> list[bytes]:
    """Every message stored on ``subject`` of the attestation stream (read as the operator, one
    sequence at a time: no consumer to set up)."""
    import nats.js.errors

    async def read(nc: Any, js: Any) -> list[bytes]:
        stream = Subjects(net.state.chain).attest_stream
        state = (await js.stream_info(stream)).state
        out: list[bytes] = []
        for seq in range(state.first_seq, state.last_seq + 1):
            for attempt in range(20):
                try:
                    msg = await js.get_msg(stream, seq)
                    break
                except nats.js.errors.NotFoundError:
                    msg = None  # removed (the stream keeps an hour)
                    break
                except (nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
                    await asyncio.sleep(0.25)  # a moment without a stream leader: ask again
            else:
                raise TimeoutError(f"could not read message {seq} of {stream}")
            if msg is not None and msg.subject == subject:
                out.append(msg.data)
        return out

    return net.admin(read, timeout=60)


def decode_attestation(data: bytes) -> Any:
    from blokauto.node.jetstream_ordering import Attestation

    return msgspec.json.decode(data, type=Attestation)
