"""``blokauto bench payments``: what the payments module costs, against the raw limit of the same run.

1. **Vouchers** (in-process, no node): ``channels`` payment channels, each paid by its own key with
   cumulative vouchers, signed before the clock starts and sent as JSON, interleaved across
   channels like a garage's or a charging network's traffic. The merchant side of the SDK
   (``blokauto.client.payments.MerchantChannel.accept``: decode the JSON, chain and channel, not
   stale, within the deposit, the payer's Ed25519 signature through the ledger's own
   ``check_voucher``) checks every one, on one core and then with the channels sharded over one
   process per core (a merchant's gateway on this machine). The raw limit is bare libsodium
   verification of the very same signatures on all cores: ``vouchers_vs_raw``.
2. **Transfers** through a real node (``blokauto node start``): ``payments.transfer`` between
   ``accounts`` funded keys, signed before the clock, posted in batches of 1,000 signed by the node
   key, as ``bench throughput`` does; committed per second, against PyNaCl verification of the same
   transactions on all cores (``ratio_to_raw``).
3. **Disputed closes** on the same node, whose chain has ``channel_challenge_ms`` at its minimum
   (60 s): the payer closes a channel presenting an old voucher, the merchant answers with the
   newest one as soon as it sees the close (``claim_channel`` during the challenge period closes it
   at once at the higher amount): the time from the payer's submission to the merchant's committed
   claim, each transaction sent and its receipt verified with the SDK. With ``challenge``, channels
   closed with no answer are settled once their challenge period is over: the time from the close
   to the settlement, and how much of it was not the challenge period itself.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from ..core import crypto
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import make_body, sign
from ..node.init import OrgSpec, init_chain
from .harness import NodeProcess, RssSampler, node_key, post_batch, raw_verify_limit, signed_client

CHAIN = "bench-payments"
CHALLENGE_MS = 60_000  # the smallest channel_challenge_ms a chain accepts
BATCH = 1000
ORGS = ["reg:regulator:Registry", "emi:issuer:E-Money Issuer", "park:parking:Parking Operator"]


def _key(label: str, i: int) -> KeyPair:
    return KeyPair(crypto.sha256(b"bench-payments-%s-%d" % (label.encode(), i)))


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 1)


# ---------------------------------------------------------------- 1. vouchers, merchant side


def _voucher_stream(channels: int, per_channel: int, deposit: int) -> tuple[list[str], list[int], list[bytes]]:
    """Payers' dids, deposits and the JSON vouchers, round-robin over channels (voucher k of each
    channel before voucher k+1 of any)."""
    from ..modules.payments.doors import make_voucher

    payers = [_key("payer", c) for c in range(channels)]
    step = deposit // per_channel
    stream = [msgspec.json.encode(make_voucher(payers[c], CHAIN, c + 1, (k + 1) * step))
              for k in range(per_channel) for c in range(channels)]
    return [p.did for p in payers], [deposit] * channels, stream


def _book(payers: list[str], deposits: list[int], ids: list[int]) -> dict[int, Any]:
    """One MerchantChannel per channel index in ``ids`` (channel ids are index + 1)."""
    from ..client.payments import MerchantChannel

    return {c + 1: MerchantChannel(chain=CHAIN, channel=c + 1, payer=payers[c], deposit=deposits[c]) for c in ids}


def _merchant_check(book: dict[int, Any], stream: list[bytes]) -> int:
    """A merchant's gateway: every voucher decoded and accepted in the order it arrives; returns how
    many were accepted (a worthless one raises: there are none here)."""
    from ..modules.payments.doors import Voucher

    decode = msgspec.json.Decoder(Voucher).decode
    accepted = 0
    for raw in stream:
        v = decode(raw)
        book[v.channel].accept(v)
        accepted += 1
    return accepted


def _shard(book: dict[int, Any], stream: list[bytes], ready: Any, go: Any, out: Any) -> None:
    ready.put(len(stream))
    go.wait()
    out.put(_merchant_check(book, stream))


def bench_vouchers(channels: int, per_channel: int, workers: int | None) -> dict[str, Any]:
    import multiprocessing

    deposit = per_channel * 100
    t = time.perf_counter()
    payers, deposits, stream = _voucher_stream(channels, per_channel, deposit)
    sign_s = time.perf_counter() - t
    n = len(stream)

    book = _book(payers, deposits, list(range(channels)))
    t = time.perf_counter()
    assert _merchant_check(book, stream) == n
    one_core = n / (time.perf_counter() - t)

    # One process per core, each holding its share of the channels (a gateway shards by channel),
    # its vouchers handed over before the clock starts.
    cores = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("fork")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = []
    for s in range(cores):
        ids = list(range(s, channels, cores))
        mine = set(ids)
        sub = [raw for i, raw in enumerate(stream) if i % channels in mine]  # the stream is round-robin
        procs.append(ctx.Process(target=_shard, args=(_book(payers, deposits, ids), sub, ready, go, out)))
    for p in procs:
        p.start()
    assert sum(ready.get(timeout=120) for _ in procs) == n
    t = time.perf_counter()
    go.set()
    done = sum(out.get(timeout=600) for _ in procs)
    all_cores_s = time.perf_counter() - t
    for p in procs:
        p.join()
    assert done == n, f"the merchant processes checked {done} of {n} vouchers"

    raw = _raw_voucher_limit(payers, stream, cores)
    return {"vouchers": n, "channels": channels, "vouchers_per_channel": per_channel,
            "vouchers_per_s": round(n / all_cores_s), "vouchers_per_s_one_core": round(one_core),
            "merchant_processes": cores, "raw_voucher_verifies_per_s": raw,
            "vouchers_vs_raw": round(n / all_cores_s / raw, 3), "voucher_json_bytes": len(stream[0]),
            "voucher_sign_per_s": round(n / sign_s)}


def _raw_chunk(items: list[tuple[bytes, bytes, bytes]]) -> int:
    return sum(crypto.verify_signature(k, s, m) for k, s, m in items)


def _raw_voucher_limit(payers: list[str], stream: list[bytes], cores: int) -> int:
    """Bare libsodium verification of the same vouchers' signatures on all cores."""
    from ..modules.payments.doors import Voucher, voucher_digest

    decode = msgspec.json.Decoder(Voucher).decode
    items = []
    for raw in stream:
        v = decode(raw)
        items.append((crypto.public_key_from_did(payers[v.channel - 1]), bytes.fromhex(v.sig),
                      voucher_digest(v.chain, v.channel, v.amount)))
    chunks = [items[i::cores] for i in range(cores)]
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_raw_chunk, [c[:10] for c in chunks]))
        t = time.perf_counter()
        ok = sum(pool.map(_raw_chunk, chunks))
        dt = time.perf_counter() - t
    assert ok == len(items), "a benchmark voucher did not verify"
    return round(len(items) / dt)


# ---------------------------------------------------------------- 2. transfers through a node


def _transfers(genesis: Any, accounts: int, txs: int) -> tuple[list[Any], list[Any]]:
    """Set-up (issues to every account) and the timed transfers, all signed."""
    from ..modules.payments.messages import Issue, Transfer

    emi = _key("emi", 0)
    expires = time.time_ns() // 1_000_000 + 50 * 60_000
    keys = [_key("account", i) for i in range(accounts)]
    setup = [sign(make_body(genesis.chain, emi.did, Issue(currency="EUR", to=k.did, amount=10_000_000),
                            nonce=f"1{i:031x}", expires=expires), emi) for i, k in enumerate(keys)]
    timed = []
    for j in range(txs):
        a, b = j % accounts, (j * 7 + 1) % accounts
        b = b if b != a else (a + 1) % accounts
        timed.append(sign(make_body(genesis.chain, keys[a].did,
                                    Transfer(currency="EUR", to=keys[b].did, amount=1 + j % 100),
                                    nonce=f"2{j:031x}", expires=expires), keys[a]))
    return setup, timed


def _post_all(url: str, key: KeyPair, raws: list[bytes]) -> list[str]:
    from .throughput import _submit_all

    errors: list[str] = []
    bodies = [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]
    _submit_all(url, key, bodies, errors)
    return errors


def _wait_for(http: Any, committed: int, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        st = http.get("/v1/status").json()
        if st["committed_txs"] >= committed or not st["healthy"] or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


# ---------------------------------------------------------------- 3. disputed closes


def _ev(info: Any, type_: str) -> dict[str, Any]:
    return next(e for e in info.events if e["type"] == type_)


def _disputes(bc: Any, disputes: int, challenge: int) -> dict[str, Any]:
    from ..client import now_ms
    from ..client.payments import MerchantChannel, PayerChannel
    from ..modules.payments.messages import OpenChannel, SettleChannel

    park = _key("park", 0)
    payer = _key("account", 0)
    times, close_ms, answer_ms = [], [], []
    for _ in range(disputes):
        opened = bc.send(OpenChannel(merchant="park", category="parking", currency="EUR", deposit=1_000), payer)
        ch = _ev(opened.raise_for_status(), "payments.channel_opened")["channel"]
        p = PayerChannel(payer, chain=bc.chain, channel=ch, deposit=1_000)
        old = p.pay(100)
        newest = p.pay(300)
        merchant = MerchantChannel(chain=bc.chain, channel=ch, payer=payer.did, deposit=1_000)
        merchant.accept(old)
        merchant.accept(newest)
        p.latest = old  # the payer closes presenting an older voucher than its last
        t0 = time.perf_counter()
        bc.send(p.close(), payer).raise_for_status()
        t1 = time.perf_counter()
        closed = bc.send(merchant.claim(), park).raise_for_status()  # the merchant answers at once
        t2 = time.perf_counter()
        assert _ev(closed, "payments.channel_closed")["paid"] == 400, closed.events
        times.append((t2 - t0) * 1000)
        close_ms.append((t1 - t0) * 1000)
        answer_ms.append((t2 - t1) * 1000)
    out: dict[str, Any] = {"disputes": disputes, "dispute_close_p50_ms": _pct(times, 0.5),
                           "dispute_close_p99_ms": _pct(times, 0.99), "payer_close_p50_ms": _pct(close_ms, 0.5),
                           "merchant_answer_p50_ms": _pct(answer_ms, 0.5)}
    if challenge:
        closing = []
        for _ in range(challenge):
            ch = bc.send(OpenChannel(merchant="park", category="parking", currency="EUR", deposit=1_000),
                         payer).raise_for_status()
            ch = _ev(ch, "payments.channel_opened")["channel"]
            p = PayerChannel(payer, chain=bc.chain, channel=ch, deposit=1_000)
            p.pay(250)
            info = bc.send(p.close(), payer).raise_for_status()
            closing.append((ch, time.perf_counter(), _ev(info, "payments.channel_closing")["until"]))
        settled = []
        for ch, t0, until in closing:  # settle each once the block time passes its challenge period
            # Block time follows the nodes' clocks, and advances only with a block: wait out the
            # period on the clock, then send the settlement (again, if its block came too early).
            time.sleep(max(0.0, (until - now_ms()) / 1000))
            while True:
                info = bc.send(SettleChannel(channel=ch), payer)
                if info.ok:
                    break
                if info.error.code != "challenge_period_running":
                    info.raise_for_status()
                time.sleep(0.05)
            assert _ev(info, "payments.channel_closed")["paid"] == 250, info.events
            settled.append((time.perf_counter() - t0) * 1000)
        out.update(challenge_ms=CHALLENGE_MS, settled_after_challenge=challenge,
                   close_to_settle_p50_ms=_pct(settled, 0.5),
                   settle_beyond_challenge_p50_ms=round(_pct(settled, 0.5) - CHALLENGE_MS, 1))
    return out


# ---------------------------------------------------------------- the run


def run(*, channels: int = 1_000, vouchers: int = 100_000, accounts: int = 1_000, transfers: int = 20_000,
        disputes: int = 20, challenge: int = 3, workers: int | None = None, block_txs: int = 2000,
        keep: Path | None = None) -> dict[str, Any]:
    from ..client import Client
    from ..modules.payments.messages import AttestReserves, RegisterCurrency

    result: dict[str, Any] = {"bench": "payments", "cores": os.cpu_count()}
    print("vouchers: signing, then the merchant's checks", file=sys.stderr)
    result.update(bench_vouchers(channels, max(1, vouchers // channels), workers))

    data = keep or Path(tempfile.mkdtemp(prefix="blokauto-bench-payments-"))
    try:
        fixed = {"emi-admin": _key("emi", 0), "park-admin": _key("park", 0)}
        genesis = init_chain(data, chain=CHAIN, orgs=[OrgSpec.parse(o) for o in ORGS], quorum=1, node_orgs=1,
                             params={"channel_challenge_ms": CHALLENGE_MS},
                             key_factory=lambda label: fixed.get(label) or KeyPair.generate())
        setup, timed = _transfers(genesis, accounts, transfers)
        ids = [crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)) for tx in timed]
        result["transfers"] = transfers
        result.update({k: v for k, v in raw_verify_limit(timed, ids, workers).items() if k != "cores"})
        raws = [canonical(tx) for tx in timed]
        result["transfer_tx_bytes"] = sum(len(r) for r in raws) // len(raws)

        node = NodeProcess(data, workers=workers, block_txs=block_txs)
        nkey = node_key(data)
        try:
            node.wait_ready()
            with Client(node.url, trust=data / "genesis.json", key=nkey) as bc:
                emi = fixed["emi-admin"]
                bc.send(RegisterCurrency(currency="EUR", exponent=2), emi).raise_for_status()
                bc.send(AttestReserves(currency="EUR", reserves=10**15, evidence="00" * 32), emi).raise_for_status()
                with signed_client(node.url, nkey, timeout=120) as http:
                    errors: list[str] = []
                    post_batch(http, b"[" + b",".join(canonical(t) for t in setup) + b"]", errors)
                    if errors:
                        raise RuntimeError(f"the set-up was refused: {errors[:3]}")
                    base = _wait_for(http, 2 + accounts)
                    print(f"transfers: {transfers} through the node", file=sys.stderr)
                    sampler = RssSampler(node.pid)
                    t0 = time.perf_counter()
                    errors = _post_all(node.url, nkey, raws)
                    final = _wait_for(http, base["committed_txs"] + transfers - len(errors))
                    elapsed = time.perf_counter() - t0
                    sampler.stop()
                    from .throughput import _failed_receipts

                    failed = _failed_receipts(http, base["height"] + 1, final["height"])
                done = final["committed_txs"] - base["committed_txs"]
                result.update(committed=done, failed=failed, refused=len(errors), first_errors=errors[:3],
                              tx_per_s=round((done - failed) / elapsed), elapsed_s=round(elapsed, 2),
                              node_main_cpu_us_per_tx=round(sampler.cpu[0] / max(1, done) * 1e6),
                              node_workers_cpu_us_per_tx=round(sampler.cpu[1] / max(1, done) * 1e6))
                result["ratio_to_raw"] = round(result["tx_per_s"] / result["raw_limit_tx_per_s"], 3)
                print(f"disputes: {disputes}, then {challenge} settled after the {CHALLENGE_MS} ms challenge",
                      file=sys.stderr)
                result.update(_disputes(bc, disputes, challenge))
        finally:
            node.stop()
        return result
    finally:
        if keep is None:
            shutil.rmtree(data, ignore_errors=True)


