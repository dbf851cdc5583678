"""``blokauto bench api``: reads over HTTP with signed requests and read policies, and what the
authentication path costs a node.

A fleet data set (vehicle 0 has 200 history entries and its holder is an owner key) is served by a
real node process on a copy of it. The holder grants an insurer consent to read the vehicle's
history (``consent.grant``), then the bench measures, in one run:

1. ``GET /v1/q/vehicles/history?vin=…&limit=200``, sequentially, signed by the holder (a relation
   check) and by the insurer's admin key (a consent check): p50 and p99 per caller kind, each
   request timed as the client sees it, its signing included;
2. the same query from ``threads`` clients at once: requests per second and latencies;
3. the floor of HTTP: an unsigned ``GET /v1/status`` (a public route) round trip;
4. in-process, on the same data once the node stopped: the CPU per request of the server's whole
   authentication path (``Authenticator.verify`` on pre-signed requests with fresh nonces, the
   caller lookup, the query's read policy on a view), each part on its own, and the raw limit of
   the same run: one bare libsodium Ed25519 verification.

Access control stays on throughout: the bench checks that an unsigned read is refused (401) and a
read without consent too (403) before it times anything.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import httpx

from ..core.crypto import KeyPair
from ..keystore import KeyStore
from .dataset import build_fleet, db_bytes, default_cache
from .fleet import LONG_200, owner_key, vin_of
from .harness import NodeProcess, RssSampler, signed_client

HISTORY = "/v1/q/vehicles/history"
ENTRIES = 200
INSURER = "safe-insurance"  # consented
WORKSHOP = "quick-garage"  # not consented: refused


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _progress(label: str, done: int, total: int) -> None:
    if done % 100 == 0 or done == total:
        print(f"\r{label}: {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)


def run(*, vehicles: int = 1_000, requests: int = 2_000, threads: int = 8,
        cache: Path | None = None) -> dict[str, Any]:
    if vehicles < len(LONG_200):
        raise ValueError(f"--vehicles must be at least {len(LONG_200)} (vehicles 0-9 carry 200 history entries)")
    cached = (cache or default_cache()) / f"fleet-{vehicles}"
    info = build_fleet(cached, vehicles=vehicles)
    data = cached.with_name(f"{cached.name}-api-run")
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(cached, data)  # the consent grant changes the chain: the cached data set stays as it was
    try:
        return {"bench": "api", "vehicles": vehicles, "dataset_txs": info["txs"],
                "db_bytes_per_vehicle": round(db_bytes(cached) / vehicles), "history_entries": ENTRIES,
                **_measure(data, requests, threads)}
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _measure(data: Path, requests: int, threads: int) -> dict[str, Any]:
    keys = KeyStore(data / "keys")
    vin = vin_of(LONG_200[0])
    callers = {"holder": owner_key(LONG_200[0]), "insurer": keys.load(f"{INSURER}-admin")}
    params = {"vin": vin, "limit": ENTRIES}
    node = NodeProcess(data)
    try:
        node.wait_ready(timeout=600)
        _grant_consent(node.url, data, vin, callers["holder"])
        refusals = _refusals(node.url, params, keys.load(f"{WORKSHOP}-admin"))
        sampler = RssSampler(node.pid)
        out: dict[str, Any] = {}
        for kind, key in callers.items():
            with signed_client(node.url, key) as http:
                for _ in range(20):  # warm-up: connection, caches, the caller lookup of this block
                    _history(http, params)
                lat = []
                for i in range(requests):
                    t = time.perf_counter()
                    _history(http, params)
                    lat.append((time.perf_counter() - t) * 1000)
                    _progress(f"{kind}: signed history queries", i + 1, requests)
            out[f"{kind}_p50_ms"] = round(statistics.median(lat), 2)
            out[f"{kind}_p99_ms"] = round(_percentile(lat, 0.99), 2)
        sequential_cpu = sampler.cpu_so_far()[0]
        concurrent = _concurrent(node.url, params, list(callers.values()), requests, threads)
        concurrent["concurrent_node_cpu_us_per_request"] = round(
            (sampler.cpu_so_far()[0] - sequential_cpu) / (requests + threads) * 1e6)
        with httpx.Client(base_url=node.url, timeout=30) as http:  # public: unsigned
            status = []
            for i in range(requests):
                t = time.perf_counter()
                r = http.get("/v1/status")
                status.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, r.text
                _progress("unsigned GET /v1/status", i + 1, requests)
        peak = sampler.stop()
    finally:
        node.stop()
    print("in-process: the authentication path...", file=sys.stderr, flush=True)
    auth = _auth_cpu(data, vin, callers, requests)
    return {
        "p50_ms": max(out["holder_p50_ms"], out["insurer_p50_ms"]),
        "p99_ms": max(out["holder_p99_ms"], out["insurer_p99_ms"]),
        **out,
        "requests": requests,
        "node_cpu_us_per_request": round(sequential_cpu / (2 * (requests + 20)) * 1e6),
        **concurrent,
        "status_p50_ms": round(statistics.median(status), 2),
        "status_p99_ms": round(_percentile(status, 0.99), 2),
        **auth,
        "refusals": refusals,
        "peak_rss_mb": round(peak / 2**20, 1),
    }


def _history(http: httpx.Client, params: dict[str, Any]) -> None:
    r = http.get(HISTORY, params=params)
    if r.status_code != 200 or len(r.json()["result"]["entries"]) < ENTRIES:
        raise RuntimeError(f"the history query answered HTTP {r.status_code}: {r.text[:300]}")


def _grant_consent(url: str, data: Path, vin: str, holder: KeyPair) -> None:
    """The holder lets the insurer read the vehicle's history for 30 days (requests signed by the holder)."""
    from ..client import Client
    from ..modules.consent.messages import GrantConsent

    with Client(url, trust=data / "genesis.json") as c:
        until = c.checkpoint("latest").header.time + 30 * 86_400_000
        c.send(GrantConsent(vin=vin, org=INSURER, categories=["history"], purpose="claims handling", until=until),
               holder, wait=120).raise_for_status()


def _refusals(url: str, params: dict[str, Any], stranger: KeyPair) -> dict[str, str]:
    """The error codes of an unsigned read and of a read by an organisation without consent: the
    bench times nothing unless both are refused."""
    with httpx.Client(base_url=url, timeout=30) as http:
        unsigned = http.get(HISTORY, params=params)
    with signed_client(url, stranger) as http:
        unconsented = http.get(HISTORY, params=params)
    got = {"unsigned": f"{unsigned.status_code} {unsigned.json()['error']['code']}",
           "without_consent": f"{unconsented.status_code} {unconsented.json()['error']['code']}"}
    if got != {"unsigned": "401 signature_required", "without_consent": "403 consent_required"}:
        raise RuntimeError(f"access control did not refuse as it must: {got}")
    return got


def _concurrent(url: str, params: dict[str, Any], keys: list[KeyPair], requests: int,
                threads: int) -> dict[str, Any]:
    """``requests`` history queries from ``threads`` clients at once (callers taken in turn)."""
    lat: list[float] = []
    lock = threading.Lock()
    left = [requests]
    errors: list[BaseException] = []

    def client(key: KeyPair) -> None:
        try:
            with signed_client(url, key) as http:
                _history(http, params)  # connect before the clock matters
                while True:
                    with lock:
                        if left[0] == 0:
                            return
                        left[0] -= 1
                        _progress(f"{threads} clients at once", requests - left[0], requests)
                    t = time.perf_counter()
                    _history(http, params)
                    with lock:
                        lat.append((time.perf_counter() - t) * 1000)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    workers = [threading.Thread(target=client, args=(keys[i % len(keys)],)) for i in range(threads)]
    t0 = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    return {"concurrent_threads": threads, "concurrent_req_per_s": round(len(lat) / elapsed),
            "concurrent_p50_ms": round(statistics.median(lat), 2),
            "concurrent_p99_ms": round(_percentile(lat, 0.99), 2)}


# ---------------------------------------------------------------- in-process: the authentication path


def _cpu_us(fn: Callable[[int], Any], n: int) -> float:
    """CPU microseconds per call of ``fn(i)``, over ``n`` calls."""
    t = time.process_time()
    for i in range(n):
        fn(i)
    return (time.process_time() - t) / n * 1e6


def _presign(key: KeyPair, url: str, n: int) -> list[list[tuple[bytes, bytes]]]:
    """``n`` signed requests to ``url`` (fresh nonces), as the header lines a node receives from httpx."""
    from ..http_signatures import sign_request

    host = url.split("/")[2]
    out = []
    for _ in range(n):
        headers = {"Host": host, "Accept": "*/*", "Accept-Encoding": "gzip, deflate", "Connection": "keep-alive",
                   "User-Agent": f"python-httpx/{httpx.__version__}"}
        sign_request(key, "GET", url, headers)
        out.append([(k.lower().encode(), v.encode()) for k, v in headers.items()])
    return out


def _auth_cpu(data: Path, vin: str, callers: dict[str, KeyPair], n: int) -> dict[str, Any]:
    """CPU per request of what a node runs before a query: the signature (``api.auth``), who signed
    (``ChainReader.caller``, remembered per block by the API) and the query's read policy on the view
    the query reads; each part alone; a bare Ed25519 verification as the raw limit."""
    from http_message_signatures.signatures import HTTPSignatureHandler
    from nacl.bindings import crypto_sign_open

    from ..api.auth import Authenticator, _Headers, _Message, _Seen
    from ..core.access import check_read
    from ..core.crypto import check_did
    from ..http_signatures import LABEL, Ed25519Nacl, sign_request
    from ..modules import default_registry
    from ..node.reader import ChainReader, convert_params
    from ..store.blocks import BlockLog
    from ..store.state import StateStore

    url = f"http://127.0.0.1:8080{HISTORY}?{urlencode({'vin': vin, 'limit': ENTRIES})}"
    registry = default_registry()
    blocks, state = BlockLog(data / "chain.db"), StateStore(data / "state.db", registry)
    # The query's view stays open while the caller is looked up (in a view of its own, as the API
    # does before the query runs): a second store on the same database.
    query_state = StateStore(data / "state.db", registry)
    try:
        reader = ChainReader(registry, blocks, state)
        query_reader = ChainReader(registry, blocks, query_state)
        auth = Authenticator(reader.caller)
        spec = registry.queries[("vehicles", "history")]
        query = convert_params({"vin": vin, "limit": str(ENTRIES)}, spec.params)
        what = "the query vehicles.history"
        out: dict[str, Any] = {}
        parts: dict[str, Any] = {}
        holder = callers["holder"]
        out["client_sign_us"] = round(_cpu_us(lambda i: sign_request(holder, "GET", url, {"Host": "h"}), n), 1)
        for kind, key in callers.items():
            signed = _presign(key, url, 2 * n)
            whole, alone = signed[:n], signed[n:]
            with query_reader.view() as view:
                reader.caller(key.did)
                auth.verify("GET", url, _presign(key, url, 1)[0], b"")  # warm-up

                def path(i: int) -> None:  # what one request costs before the query runs
                    caller = reader.caller(auth.verify("GET", url, whole[i], b""))
                    check_read(spec.read, view, caller, query, what)

                out[f"{kind}_auth_cpu_us"] = round(_cpu_us(path, n), 1)
                caller = reader.caller(key.did)
                assert caller.known and not caller.reads_all, caller
                parts[kind] = {
                    "verify_us": round(_cpu_us(lambda i: auth.verify("GET", url, alone[i], b""), n), 1),
                    "caller_lookup_us": round(_cpu_us(lambda i: reader.caller(key.did), n), 1),
                    "policy_us": round(_cpu_us(lambda i: check_read(spec.read, view, caller, query, what), n), 1),
                }
            parts[kind]["check_read_us"] = round(  # the policy with a view of its own (what report routes run)
                _cpu_us(lambda i: reader.check_read(spec.read, caller, query, what), n), 1)
        # In proportion: the query itself in-process (its read policy included, no HTTP).
        holder_caller = reader.caller(holder.did)
        out["query_cpu_us"] = round(_cpu_us(lambda i: reader.query(
            "vehicles", "history", {"vin": vin, "limit": str(ENTRIES)}, holder_caller), min(n, 500)), 1)
        # Inside the signature check: the package's parsing of the two structured fields, the
        # signature base, the did:key, the Ed25519 verification, the replay cache.
        lines = _presign(holder, url, n)
        headers = _Headers(lines[0])
        sig_input, sig_value = headers.get("signature-input"), headers.get("signature")
        verifier = auth._verifier
        parsed = HTTPSignatureHandler._parse_signature_dictionary(sig_input)[LABEL]
        base, _, _ = verifier._build_signature_base(_Message("GET", url, headers), covered_component_ids=list(parsed),
                                                    signature_params=parsed.params)
        signature = HTTPSignatureHandler._parse_signature_dictionary(sig_value)[LABEL].value
        public = check_did(holder.did)
        seen = _Seen()
        now = time.time()
        inside = {
            "header_view_us": _cpu_us(lambda i: _Headers(lines[i]), n),
            "structured_fields_us": _cpu_us(lambda i: (HTTPSignatureHandler._parse_signature_dictionary(sig_input),
                                                       HTTPSignatureHandler._parse_signature_dictionary(sig_value)), n),
            "signature_base_us": _cpu_us(lambda i: verifier._build_signature_base(
                _Message("GET", url, headers), covered_component_ids=list(parsed), signature_params=parsed.params), n),
            "did_key_us": _cpu_us(lambda i: check_did(holder.did), n),
            "ed25519_us": _cpu_us(lambda i: Ed25519Nacl(public_key=public).verify(signature, base.encode()), n),
            "replay_cache_us": _cpu_us(lambda i: seen.add(holder.did, f"{i:032x}", now), n),
        }
        inside = {k: round(v, 1) for k, v in inside.items()}
        inside["rest_us"] = round(parts["holder"]["verify_us"] - sum(inside.values()), 1)
        parts["signature_check"] = inside
        signed_base = signature + base.encode()
        raw_us = _cpu_us(lambda i: crypto_sign_open(signed_base, public), n)
    finally:
        blocks.close()
        state.close()
        query_state.close()
    auth_us = max(out["holder_auth_cpu_us"], out["insurer_auth_cpu_us"])
    # What a request costs when the API's per-block cache knows the caller already (no lookup).
    cached = max(parts[k]["verify_us"] + parts[k]["policy_us"] for k in callers)
    return {"auth_cpu_us": auth_us, "auth_cpu_cached_caller_us": round(cached, 1), **out, "auth_parts_us": parts,
            "raw_ed25519_verify_us": round(raw_us, 1), "auth_vs_raw": round(auth_us / raw_us, 1)}
