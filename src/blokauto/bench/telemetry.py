"""``blokauto bench telemetry``: samples committed per second, premium statements, crash to claim.

1. **Samples** through a real node (``blokauto node start``): ``vehicles`` cars each send ``batches``
   device-signed batches of ``samples`` samples to ``POST /v1/telemetry/batches`` (transaction and
   samples; each request's RFC 9421 signature made by the car's key before the clock starts, as
   the cars are other machines). The node verifies the transaction's signature, recomputes the
   batch's Merkle root and trip summary from the samples, stores them compressed in its sample
   store (fsynced) and commits root and summary: ``samples_per_s`` from the first request to the
   last batch committed. The raw limit of the same run is that per-batch work alone (decode, check,
   Merkle root, summary, zlib, Ed25519 verification of the transaction) on all cores, no HTTP, no
   ordering, no SQLite: ``ratio_to_raw``.
2. **Statements** in-process (``BlockCommitter``: real execution, real blocks, fsynced): ``policies``
   vehicles each with a device key, the holder's consent for driving data, a policy (1-day
   periods) and one batch of usage in its first period; then, once the period has ended in block
   time, the insurer's ``insurance.issue_statements`` transactions (1,000 policies each) are
   executed and committed: ``statements_s`` for all of them (the issue's target: 100,000 in 10 s),
   and per statement.
3. **Crash to claim** on the node of part 1: ``crashes`` insured cars each report a crash
   (``telemetry.report_crash``, signed by the device); the time from the submission to the
   committed receipt that carries the opened claim: ``claim_open_p50_ms`` (the claim opens in the
   crash's own transaction, so this is a transaction's commit latency with the node's block
   interval).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import msgspec

from ..core import crypto
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import CheckedTx, make_body, sign
from ..http_signatures import sign_request
from ..modules.telemetry import Sample, batch_root, check_samples, decode_samples, summarize
from ..node.init import OrgSpec, init_chain
from .harness import NodeProcess, RssSampler, node_key

CHAIN = "bench-telemetry"
ORGS = ["reg:regulator:Registry", "oem:manufacturer:Carmaker", "ins:insurer:Insurer"]
WMI = "WZT"
DAY_MS = 86_400_000
ROUTE = "/v1/telemetry/batches"
IN_FLIGHT = 8
STATEMENTS_PER_TX = 1_000


def _key(label: str, i: int = 0) -> KeyPair:
    return KeyPair(crypto.sha256(b"bench-telemetry-%s-%d" % (label.encode(), i)))


def vin_of(i: int) -> str:
    return f"{WMI}3E5C2{i:09d}"


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1) if v else 0.0


def _tx(chain: str, sender: KeyPair, msg: Any, *cosigners: KeyPair, nonce: str, expires: int) -> Any:
    return sign(make_body(chain, sender.did, msg, nonce=nonce, expires=expires), sender, *cosigners)


def trip(start: int, n: int, odo_m: int, seed: int) -> list[Sample]:
    """``n`` one-second samples of an ordinary drive from ``start``: speed and acceleration vary,
    a harsh brake now and then, a posted limit the car sometimes exceeds."""
    out = []
    for i in range(n):
        speed = 30 + (i * 7 + seed) % 110
        accel = -4_500 if (i + seed) % 97 == 0 else ((i * 13 + seed) % 3_000) - 1_500
        odo_m += speed * 10 // 36  # metres in one second at ``speed`` km/h
        out.append(Sample(start + i * 1_000, speed, accel, 481_370 + i % 50, 115_750 + i % 70, odo_m,
                          100 if (i // 300) % 2 else 130, 0))
    return out


def _register(vin: str, device: str) -> Any:
    from ..modules.vehicles.messages import RegisterVehicle

    return RegisterVehicle(vin=vin, make="Bench", model="T", model_year=2027, body="sedan", powertrain="bev",
                           plant="P1", build_date="2027-01-15", country="DE", device_keys=[device])


# ---------------------------------------------------------------- 1. samples through a node


def _batch_bodies(chain: str, url: str, vehicles: int, batches: int, samples: int,
                  now: int) -> tuple[list[tuple[bytes, dict[str, str]]], list[bytes]]:
    """Every request (body, signed headers), vehicle by vehicle interleaved, and the raw sample
    arrays (for the raw limit). Times end a minute before ``now``."""
    from ..modules.telemetry.messages import CommitBatch

    span = batches * samples * 1_000 + 60_000
    per_vehicle = []
    raws: list[bytes] = []
    for v in range(vehicles):
        dev = _key("device", v)
        odo = 1_000_000 + v * 1_000
        reqs = []
        for b in range(batches):
            smp = trip(now - span + b * samples * 1_000, samples, odo, v * 31 + b)
            odo = smp[-1].odometer_m + 100
            msg = CommitBatch(vin=vin_of(v), root=batch_root(smp).hex(), summary=summarize(smp, 60), utc_offset_min=60)
            tx = _tx(chain, dev, msg, nonce=f"b{v:015x}{b:016x}", expires=now + 50 * 60_000)
            raw = msgspec.json.encode(smp)
            body = b'{"tx":' + canonical(tx) + b',"samples":' + raw + b"}"
            reqs.append(body)
            raws.append(raw)
        per_vehicle.append((dev, reqs))
    out = []
    for b in range(batches):  # batch b of every car before batch b+1 of any (each car's in order)
        for dev, reqs in per_vehicle:
            headers = {"content-type": "application/json"}
            sign_request(dev, "POST", url + ROUTE, headers, reqs[b])
            out.append((reqs[b], headers))
    return out, raws


_RAW_ITEMS: list[tuple[bytes, bytes, bytes, bytes]] = []  # handed to forked workers before the clock starts


def _raw_share(args: tuple[int, int]) -> int:
    """The node's per-batch work on samples and the transaction, nothing else, on every ``step``-th batch."""
    first, step = args
    n = 0
    for raw, pub, sig, msg in _RAW_ITEMS[first::step]:
        s = decode_samples(raw)
        check_samples(s)
        batch_root(s)
        summarize(s, 60)
        zlib.compress(msgspec.json.encode(s), 1)
        n += len(s) if crypto.verify_signature(pub, sig, msg) else 0
    return n


def _raw_limit(bodies: list[tuple[bytes, dict[str, str]]], cores: int) -> int:
    import multiprocessing

    items = []
    for body, _ in bodies:
        doc = msgspec.json.decode(body, type=dict[str, msgspec.Raw])
        tx = msgspec.json.decode(bytes(doc["tx"]))
        txid = crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx["body"]))
        s = tx["sigs"][0]
        items.append((bytes(doc["samples"]), crypto.public_key_from_did(s["signer"]), bytes.fromhex(s["sig"]),
                      crypto.TAG_TX_SIG + txid))
    _RAW_ITEMS[:] = items  # forked workers inherit them: no data crosses a pipe while the clock runs
    try:
        with ProcessPoolExecutor(cores, mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_raw_share, [(i, len(items)) for i in range(cores)]))  # start every worker
            t = time.perf_counter()
            done = sum(pool.map(_raw_share, [(i, cores) for i in range(cores)]))
            dt = time.perf_counter() - t
    finally:
        _RAW_ITEMS.clear()
    assert done == sum(len(decode_samples(i[0])) for i in items), "a benchmark batch did not verify"
    return round(done / dt)


def _post_all(url: str, requests: list[tuple[bytes, dict[str, str]]], errors: list[str]) -> None:
    lock = threading.Lock()
    queue = list(reversed(requests))

    def worker() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            while True:
                with lock:
                    if not queue:
                        return
                    body, headers = queue.pop()
                r = http.post(ROUTE, content=body, headers=headers)
                if r.status_code != 202:
                    with lock:
                        errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=worker) for _ in range(IN_FLIGHT)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _wait_for(status: Any, committed: int, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        st = status()
        if st["committed_txs"] >= committed or not st["healthy"] or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def bench_samples(data: Path, genesis: Any, *, vehicles: int, batches: int, samples: int, crashes: int,
                  workers: int | None, block_txs: int) -> dict[str, Any]:
    from ..client import Client
    from ..client import now_ms as client_now
    from ..modules.insurance.messages import BindPolicy, PublishProduct
    from ..modules.insurance.pricing import Pricing
    from ..modules.telemetry.messages import ReportCrash
    from ..modules.vehicles.messages import AssignWmi

    out: dict[str, Any] = {"vehicles": vehicles, "batches_per_vehicle": batches, "samples_per_batch": samples}
    node = NodeProcess(data, workers=workers, block_txs=block_txs)
    nkey = node_key(data)
    try:
        node.wait_ready()
        with Client(node.url, trust=data / "genesis.json", key=nkey) as bc:
            reg, oem, ins = _key("reg-admin"), _key("oem-admin"), _key("ins-admin")
            bc.send(AssignWmi(wmi=WMI, org="oem"), reg).raise_for_status()
            cars = max(vehicles, crashes)
            for v in range(cars):
                bc.submit(bc.sign(bc.build(_register(vin_of(v), _key("device", v).did), oem), oem))
            _wait_for(bc.status, 1 + cars)
            print(f"samples: signing {vehicles * batches:,} batches of {samples:,} samples", file=sys.stderr)
            now = client_now()
            requests, _ = _batch_bodies(genesis.chain, node.url, vehicles, batches, samples, now)
            out["request_bytes"] = sum(len(b) for b, _ in requests) // len(requests)
            base = bc.status()
            sampler = RssSampler(node.pid)
            errors: list[str] = []
            t0 = time.perf_counter()
            _post_all(node.url, requests, errors)
            acked = time.perf_counter() - t0
            final = _wait_for(bc.status, base["committed_txs"] + len(requests) - len(errors))
            elapsed = time.perf_counter() - t0
            sampler.stop()
            done = final["committed_txs"] - base["committed_txs"]
            if elapsed > 55:
                errors.append("the run outlasted the requests' pre-made signatures (60 s); use fewer samples")
            out.update(committed_batches=done, refused=len(errors), first_errors=errors[:3],
                       samples_per_s=round(done * samples / elapsed), elapsed_s=round(elapsed, 2),
                       acked_samples_per_s=round((len(requests) - len(errors)) * samples / acked),
                       node_main_cpu_us_per_batch=round(sampler.cpu[0] / max(1, done) * 1e6),
                       node_workers_cpu_us_per_batch=round(sampler.cpu[1] / max(1, done) * 1e6),
                       samples_db_bytes=(data / "samples.db").stat().st_size if (data / "samples.db").exists() else 0)
            cores = workers or os.cpu_count() or 1
            out["raw_samples_per_s"] = _raw_limit(requests, cores)
            out["ratio_to_raw"] = round(out["samples_per_s"] / out["raw_samples_per_s"], 3)

            if crashes:
                print(f"crash to claim: {crashes} insured cars crash", file=sys.stderr)
                bc.send(PublishProduct(product="payd", currency="EUR", period_days=30,
                                       pricing=Pricing(base=2_000, per_km=5, max_premium=20_000),
                                       max_coverage=1_000_000), ins).raise_for_status()
                start = client_now() + 2_000
                binds = [bc.submit(bc.sign(bc.build(BindPolicy(product="payd", vin=vin_of(v), start=start, periods=1,
                                                                deductible=0, coverage=500_000), ins), ins, oem), key=ins)
                         for v in range(crashes)]
                for txid in binds:
                    bc.receipt(txid, wait=30, key=ins).raise_for_status()
                time.sleep(max(0.0, (start - client_now()) / 1000) + 1.5)  # crashes dated a second ago fall in it
                lat: list[float] = []
                for v in range(crashes):
                    dev = _key("device", v)
                    tx = bc.sign(bc.build(ReportCrash(vin=vin_of(v), t=client_now() - 1_000, decel_mms2=60_000,
                                                      odometer_m=2_000_000, airbag=True), dev), dev)
                    t = time.perf_counter()
                    # read as the node key: the claim's event is the insurer's and holder's, not the device's
                    info = bc.receipt(bc.submit(tx, key=dev), wait=30, key=nkey)
                    info.raise_for_status()
                    lat.append((time.perf_counter() - t) * 1000)
                    assert any(e["type"] == "insurance.claim_changed" for e in info.events), info.events
                out.update(crashes=crashes, claim_open_p50_ms=_pct(lat, 0.5), claim_open_p99_ms=_pct(lat, 0.99))
    finally:
        node.stop()
    return out


# ---------------------------------------------------------------- 2. statements in-process


def bench_statements(policies: int, *, block_txs: int = 2_000) -> dict[str, Any]:
    from ..modules import default_registry
    from ..modules.consent.messages import GrantConsent
    from ..modules.insurance.messages import BindPolicy, IssueStatements, PublishProduct
    from ..modules.insurance.pricing import Pricing
    from ..modules.telemetry.messages import CommitBatch
    from ..modules.vehicles.messages import AssignWmi
    from ..node.committer import BlockCommitter
    from ..node.node import find_node_key

    data = Path(tempfile.mkdtemp(prefix="blokauto-bench-statements-"))
    try:
        fixed = {"reg-admin": _key("reg-admin"), "oem-admin": _key("oem-admin"), "ins-admin": _key("ins-admin")}
        genesis = init_chain(data, chain=CHAIN + "-statements", orgs=[OrgSpec.parse(o) for o in ORGS], quorum=1,
                             node_orgs=1, key_factory=lambda label: fixed.get(label) or KeyPair.generate())
        reg, oem, ins = fixed["reg-admin"], fixed["oem-admin"], fixed["ins-admin"]
        registry = default_registry()
        committer = BlockCommitter(data, registry, find_node_key(data, genesis), genesis=genesis,
                                   state_writer_process=True)
        committer.recover()
        codec = registry.codec
        chain = genesis.chain
        failed: list[str] = []

        def commit(txs: list[Any], at: int, size: int = block_txs) -> float:
            t0 = time.perf_counter()
            for s in range(0, len(txs), size):
                batch = []
                for tx in txs[s:s + size]:
                    raw = canonical(tx)
                    batch.append(CheckedTx(codec.decode(raw), crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)),
                                           raw))
                outcome = committer.produce(batch, time=at)
                failed.extend(r.code for r in outcome.receipts if not r.ok)
            return time.perf_counter() - t0

        try:
            t = genesis.time + 1_000
            exp = t + 30 * 60_000
            commit([_tx(chain, reg, AssignWmi(wmi=WMI, org="oem"), nonce="a" * 32, expires=exp),
                    _tx(chain, ins, PublishProduct(product="payd", currency="EUR", period_days=1,
                                                   pricing=Pricing(base=200, per_km=5, night_factor_bps=5_000,
                                                                   per_harsh_brake=50, per_over_limit_minute=10,
                                                                   min_premium=100, max_premium=5_000),
                                                   max_coverage=1_000_000), nonce="b" * 32, expires=exp)], t)
            steps = [
                ("vehicles", lambda i: _tx(chain, oem, _register(vin_of(i), _key("device", i).did),
                                           nonce=f"1{i:031x}", expires=exp)),
                ("consents", lambda i: _tx(chain, oem, GrantConsent(vin=vin_of(i), org="ins", categories=["driving"],
                                                                    purpose="pay as you drive", until=t + 300 * DAY_MS),
                                           nonce=f"2{i:031x}", expires=exp)),
                ("policies", lambda i: _tx(chain, ins, BindPolicy(product="payd", vin=vin_of(i), start=t + 60_000,
                                                                  periods=1, deductible=0, coverage=500_000),
                                           oem, nonce=f"3{i:031x}", expires=exp)),
            ]
            for name, make in steps:
                for s in range(0, policies, 10_000):
                    commit([make(i) for i in range(s, min(policies, s + 10_000))], t)
                    print(f"\rstatements: set-up {name} {min(policies, s + 10_000):,}/{policies:,}", end="",
                          file=sys.stderr, flush=True)
            tb = t + 60_000 + 3_600_000  # an hour into the first period: one batch of usage per car
            for s in range(0, policies, 10_000):
                txs = []
                for i in range(s, min(policies, s + 10_000)):
                    smp = trip(tb - 600_000, 20, 1_000_000, i)
                    txs.append(_tx(chain, _key("device", i), CommitBatch(vin=vin_of(i), root=batch_root(smp).hex(),
                                                                         summary=summarize(smp, 60), utc_offset_min=60),
                                   nonce=f"4{i:031x}", expires=tb + 30 * 60_000))
                commit(txs, tb)
                print(f"\rstatements: set-up batches {min(policies, s + 10_000):,}/{policies:,}", end="",
                      file=sys.stderr, flush=True)
            print(file=sys.stderr)
            te = t + 60_000 + DAY_MS + 1_000  # the first period has ended
            ids = list(range(1, policies + 1))
            stmts = [_tx(chain, ins, IssueStatements(policies=ids[s:s + STATEMENTS_PER_TX]), nonce=f"5{s:031x}",
                         expires=te + 30 * 60_000) for s in range(0, policies, STATEMENTS_PER_TX)]
            before = len(failed)
            elapsed = commit(stmts, te, size=10)
            committer.state.flush()
            from ..modules.insurance.state import STATEMENTS

            first = STATEMENTS.get(committer.state, 1, 0)
            assert first is not None and first.consented and first.batches == 1, first
        finally:
            committer.close()
        return {"policies": policies, "statement_txs": len(stmts), "statements_per_tx": STATEMENTS_PER_TX,
                "statements_s": round(elapsed, 2), "statement_us": round(elapsed / policies * 1e6, 1),
                "statements_failed": len(failed) - before, "setup_failed": before,
                "premium_of_policy_1": first.premium, "distance_m_of_policy_1": first.distance_m,
                "first_failures": sorted(set(failed))[:5]}
    finally:
        shutil.rmtree(data, ignore_errors=True)


# ---------------------------------------------------------------- the run


def run(*, vehicles: int = 100, batches: int = 10, samples: int = 1_000, policies: int = 100_000, crashes: int = 50,
        workers: int | None = None, block_txs: int = 2_000, keep: Path | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"bench": "telemetry", "cores": os.cpu_count()}
    data = keep or Path(tempfile.mkdtemp(prefix="blokauto-bench-telemetry-"))
    try:
        fixed = {"reg-admin": _key("reg-admin"), "oem-admin": _key("oem-admin"), "ins-admin": _key("ins-admin")}
        genesis = init_chain(data, chain=CHAIN, orgs=[OrgSpec.parse(o) for o in ORGS], quorum=1, node_orgs=1,
                             key_factory=lambda label: fixed.get(label) or KeyPair.generate())
        result.update(bench_samples(data, genesis, vehicles=vehicles, batches=batches, samples=samples,
                                    crashes=crashes, workers=workers, block_txs=block_txs))
    finally:
        if keep is None:
            shutil.rmtree(data, ignore_errors=True)
    if policies:
        result.update(bench_statements(policies))
    return result
