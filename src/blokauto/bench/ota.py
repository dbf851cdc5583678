"""``blokauto bench ota``: over-the-air updates anchored on the ledger (the ``software`` module) at
fleet scale.

The data set is the ``bench history`` fleet (``fleet-<N>``, reused from the cache or built there:
N vehicles of one maker, each with a device key) plus the maker's Uptane set-up, cached as
``ota-<N>``: its image repository and director (python-tuf, on disk inside the data folder, their
role keys in ``ota-keys/`` beside what is served), both roots anchored, release 1 (a brake ECU
image and a gateway image, release counter 1) anchored, and every vehicle fitted with two ECUs
running release 1 (one ``software.fit_ecus`` by the maker per vehicle). Everything is real signed
transactions through the in-process block committer.

A run works on a copy of that data set, with a real node process (``blokauto node start``):

1. The maker signs release 2 (the brake image, release counter 2: the fix), anchors it, then
   publishes it (a release the ledger refused is never served), and opens a software recall on the
   brake ECU's hardware (``software_fix``: release counter 2 or more) whose scope, a VIN range,
   covers all N vehicles.
2. **Client verification** (``client_verify_ms``): the director assigns the fix to a few vehicles;
   a ``RepositoryServer`` serves both repositories on 127.0.0.1 and a vehicle's primary ECU
   (``Updater.check()``) runs Uptane full verification: the anchors read with their state proofs
   against a checkpoint, both repositories refreshed through python-tuf from the anchored roots,
   the director's assignment checked against the image repository. Each run has a fresh state
   folder, so nothing is trusted from an earlier run.
3. **Manifests** (``manifests_per_s``): every vehicle's install manifest
   (``software.report_manifest``: both ECUs, the brake on release 2), signed by its device key
   before the clock starts, is posted in batches of 1,000 (4 requests in flight) and committed; each
   one remedies the vehicle's recall in the same transaction. The raw verification limit of the
   same transactions is measured in the same run (``raw_verify_per_s``, PyNaCl on all cores).
4. **Campaign progress** (``campaign_progress_ms``): ``recalls/campaign`` over HTTP (affected,
   remedied, outstanding over all N vehicles), timed ``samples`` times; ``remedied`` must equal the
   manifests committed without a failure, and ``affected`` N.

Requests are signed with the chain's node key (it reads everything), the vehicle's reads with its
device key, as a car would.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

import msgspec

from ..core import crypto
from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import Message, make_body, sign
from ..keystore import KeyStore
from .dataset import CHAIN, build_fleet, db_bytes, default_cache
from .fleet import device_key, vin_of
from .harness import (BlockFeeder, NodeProcess, node_key, ordered_pool_map, raw_verify_limit,
                      signed_client)
from .throughput import BATCH, _failed_receipts, _rate, submit_and_follow

OEM = "fleet-oem-admin"  # the maker of every fleet vehicle (its admin key signs the maker's transactions)
BRAKE_HW, GATEWAY_HW = "brake-ecu-v2", "gateway-v1"
ECUS = (("brake-1", BRAKE_HW), ("gw-1", GATEWAY_HW))
BRAKE_V1, BRAKE_V2, GATEWAY_V1 = "brake/brake-1.bin", "brake/brake-2.bin", "gateway/gw-1.bin"
REPOS = "ota-repos"  # the maker's repositories, inside the data folder (copied with it); served over HTTP
KEYS = "ota-keys"  # their role keys, inside the data folder but never under what is served
CHUNK = 1_000  # vehicles signed together in a pool worker
FORMAT = 3  # 2: role keys beside the repositories (ota-keys/); 3: releases keep their targets file, installs numbered
#: A cached data set older than this is rebuilt: its anchored roots expire after 365 days.
MAX_AGE_MS = 300 * 86_400_000
#: Vehicles the director assigns the fix to for client verification.
VERIFY_VEHICLES = 5


def firmware(name: str, version: int) -> bytes:
    """A deterministic image (16 KiB)."""
    return hashlib.sha256(f"{name}-{version}".encode()).digest() * 512


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _nonce(label: str) -> str:
    return hashlib.sha256(b"blokauto/bench/ota/" + label.encode()).hexdigest()[:32]


def _tx(chain: str, sender: KeyPair, msg: Message, label: str, expires: int) -> bytes:
    return canonical(sign(make_body(chain, sender.did, msg, nonce=_nonce(label), expires=expires), sender))


def _expiry() -> int:
    return time.time_ns() // 1_000_000 + 50 * 60_000


# ---------------------------------------------------------------- signing in a process pool


_pool_state: dict[str, Any] = {}


def _init_pool(chain: str, oem_seed: bytes) -> None:
    _pool_state.update(chain=chain, oem=KeyPair(oem_seed))


def _sign_fits(args: tuple[int, int]) -> list[bytes]:
    """``software.fit_ecus`` of vehicles [start, end), by the maker, each ECU on its release-1 image."""
    from ..modules.software.messages import EcuSpec, FitEcus

    start, end = args
    chain, oem, exp = _pool_state["chain"], _pool_state["oem"], _expiry()
    factory = {BRAKE_HW: _sha(firmware("brake", 1)), GATEWAY_HW: _sha(firmware("gateway", 1))}
    return [_tx(chain, oem, FitEcus(vin=vin_of(i), ecus=[EcuSpec(ecu=e, hardware_id=hw, image=factory[hw])
                                                         for e, hw in ECUS]), f"fit-{i}", exp)
            for i in range(start, end)]


def _sign_manifests(args: tuple[int, int, int, str]) -> list[bytes]:
    """Each vehicle's install manifest (brake on release 2, gateway unchanged), signed by its device key."""
    from ..modules.software.messages import Installed, ReportManifest

    start, end, t, run = args
    chain, exp = _pool_state["chain"], _expiry()
    installed = [Installed(ecu="brake-1", path=BRAKE_V2, image=_sha(firmware("brake", 2))),
                 Installed(ecu="gw-1", path=GATEWAY_V1, image=_sha(firmware("gateway", 1)))]
    return [_tx(chain, device_key(i), ReportManifest(vin=vin_of(i), t=t, installed=installed),
                f"manifest-{run}-{i}", exp) for i in range(start, end)]


def _signed(fn: Any, jobs: list[Any], chain: str, oem_seed: bytes, workers: int | None = None) -> Iterator[list[bytes]]:
    """``fn(job)`` for every job, signed in a process pool holding the maker's key, in order."""
    return ordered_pool_map(fn, jobs, initializer=_init_pool, initargs=(chain, oem_seed), workers=workers)


# ---------------------------------------------------------------- the cached data set


def build_ota(path: Path, fleet: Path, fleet_info: dict[str, Any], *, vehicles: int, block_txs: int = 2_000,
              quiet: bool = False) -> dict[str, Any]:
    """The data folder at ``path``: a copy of the fleet at ``fleet`` with the maker's repositories
    anchored and every vehicle's ECUs fitted; reused when it matches (and its roots are far from expiry)."""
    from ..modules import default_registry
    from ..modules.software.messages import AnchorRelease, RegisterRepository
    from ..node.committer import BlockCommitter
    from ..node.node import find_node_key, load_genesis
    from ..ota.repository import Director, ImageRepository

    params = {"vehicles": vehicles, "fleet": fleet_info.get("params"), "format": FORMAT}
    marker = path / "dataset.json"
    if marker.exists():
        info = msgspec.json.decode(marker.read_bytes())
        if info.get("params") == params and info.get("built_ms", 0) + MAX_AGE_MS > time.time_ns() // 1_000_000:
            return info
    work = path.with_name(path.name + ".building")
    shutil.rmtree(work, ignore_errors=True)
    if not quiet:
        print(f"ota data set: copying the fleet ({db_bytes(fleet) / 2**20:,.0f} MiB)", file=sys.stderr, flush=True)
    shutil.copytree(fleet, work, ignore=shutil.ignore_patterns("node.log", "node.lock", "dataset.json"))
    genesis = load_genesis(work)
    registry = default_registry()
    committer = BlockCommitter(work, registry, find_node_key(work, genesis), genesis=genesis, state_writer_process=True)
    committer.recover()
    oem = KeyStore(work / "keys").load(OEM)
    feeder = BlockFeeder(committer, registry.codec, block_txs)
    t0 = time.perf_counter()

    def commit(raws: list[bytes]) -> None:
        feeder.commit(raws)
        if feeder.failed:
            raise RuntimeError(f"the ota data set's transactions were refused: {feeder.first_errors}")

    try:
        images = ImageRepository.create(work / REPOS / "image", keys_dir=work / KEYS / "image")
        director = Director.create(work / REPOS / "director", keys_dir=work / KEYS / "director")
        release1 = images.release([(BRAKE_V1, firmware("brake", 1), BRAKE_HW, 1, ""),
                                   (GATEWAY_V1, firmware("gateway", 1), GATEWAY_HW, 1, "")], publish=False)
        exp = _expiry()
        commit([_tx(genesis.chain, oem, RegisterRepository(kind="image", root=images.root_bytes().decode()),
                    "repo-image", exp),
                _tx(genesis.chain, oem, RegisterRepository(kind="director", root=director.root_bytes().decode()),
                    "repo-director", exp),
                _tx(genesis.chain, oem, AnchorRelease(targets=release1.decode(), notes="factory release"),
                    "release-1", exp)])
        images.publish(release1)  # anchored first, then served
        done = 0
        jobs = [(s, min(s + CHUNK, vehicles)) for s in range(0, vehicles, CHUNK)]
        for raws in _signed(_sign_fits, jobs, genesis.chain, oem.seed):
            commit(raws)
            done += len(raws)
            if not quiet:
                print(f"\rota data set: ECUs fitted on {done:,}/{vehicles:,} vehicles "
                      f"({feeder.txs / (time.perf_counter() - t0):,.0f} tx/s)", end="", file=sys.stderr, flush=True)
        committer.state.flush()
        height = committer.head.height if committer.head else -1
    finally:
        committer.close()
    if not quiet:
        print(file=sys.stderr)
    info = {"params": params, "txs": fleet_info.get("txs", 0) + feeder.txs, "fleet_txs": fleet_info.get("txs", 0),
            "software_txs": feeder.txs, "height": height, "build_s": round(fleet_info.get("build_s", 0) +
                                                                   time.perf_counter() - t0, 1),
            "software_build_s": round(time.perf_counter() - t0, 1), "built_ms": time.time_ns() // 1_000_000}
    (work / "dataset.json").write_bytes(msgspec.json.encode(info))
    shutil.rmtree(path, ignore_errors=True)
    work.rename(path)
    return info


# ---------------------------------------------------------------- the measurements


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return round(v[min(len(v) - 1, int(q * len(v)))], 2) if v else 0.0


def _manifests(chain: str, oem_seed: bytes, vehicles: int, run: str) -> list[bytes]:
    t = time.time_ns() // 1_000_000  # the vehicles' clocks: now (no later than the block time plus the skew)
    out: list[bytes] = []
    jobs = [(s, min(s + CHUNK, vehicles), t, run) for s in range(0, vehicles, CHUNK)]
    for raws in _signed(_sign_manifests, jobs, chain, oem_seed):
        out += raws
        print(f"\rsigning manifests: {len(out):,}/{vehicles:,}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def _client_verify(url: str, data: Path, nkey: KeyPair, vins: list[int], runs: int,
                   repos_url: str) -> tuple[list[float], Any]:
    """``Updater.check()`` ``runs`` times (plus one warm-up), each from a fresh state folder."""
    from ..client import Client
    from ..ota.updater import Updater

    times: list[float] = []
    plan = None
    scratch = Path(tempfile.mkdtemp(prefix="blokauto-bench-ota-vehicle-"))
    try:
        with Client(url, trust=data / "genesis.json", key=nkey) as c:
            for r in range(runs + 1):
                i = vins[r % len(vins)]
                upd = Updater(c, vin_of(i), device_key(i), director_url=f"{repos_url}/director",
                              images_url=f"{repos_url}/image", state_dir=scratch / f"run-{r}")
                t = time.perf_counter()
                plan = upd.check()
                dt = (time.perf_counter() - t) * 1000
                upd.client.close()
                if r:  # the first run warms up imports and caches of this process
                    times.append(dt)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return times, plan


def run(*, vehicles: int = 100_000, samples: int = 20, verifies: int = 20, cache: Path | None = None,
        workers: int | None = None, block_txs: int = 2_000) -> dict[str, Any]:
    root = cache or default_cache()
    fleet = root / f"fleet-{vehicles}"
    fleet_info = build_fleet(fleet, vehicles=vehicles)
    cached = root / f"ota-{vehicles}"
    info = build_ota(cached, fleet, fleet_info, vehicles=vehicles, block_txs=block_txs)
    data = cached.with_name(f"{cached.name}-run")
    shutil.rmtree(data, ignore_errors=True)
    size = db_bytes(cached)
    print(f"copying the ota data set ({size / 2**20:,.0f} MiB) so this run leaves it as it was...",
          file=sys.stderr, flush=True)
    shutil.copytree(cached, data)
    try:
        out = _run_on(data, vehicles=vehicles, samples=samples, verifies=verifies, workers=workers,
                      block_txs=block_txs)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return {"bench": "ota", "vehicles": vehicles, "ecus_per_vehicle": len(ECUS), "cores": os.cpu_count(), **out,
            "dataset_txs": info["txs"], "dataset_build_s": info["build_s"],
            "dataset_software_build_s": info["software_build_s"], "db_bytes_per_vehicle": round(size / vehicles)}


def _run_on(data: Path, *, vehicles: int, samples: int, verifies: int, workers: int | None,
            block_txs: int) -> dict[str, Any]:
    from ..client import Client
    from ..modules import default_registry
    from ..modules.recalls.messages import OpenCampaign
    from ..modules.recalls.state import Scope, SoftwareFix, VinRange
    from ..modules.software.messages import AnchorRelease
    from ..node.node import load_genesis
    from ..ota.repository import Director, ImageRepository
    from ..ota.serve import RepositoryServer

    genesis = load_genesis(data)
    assert genesis is not None and genesis.chain == CHAIN
    oem = KeyStore(data / "keys").load(OEM)
    nkey = node_key(data)
    out: dict[str, Any] = {}

    # the timed transactions, signed before anything runs, and their raw verification limit
    t = time.perf_counter()
    raws = _manifests(genesis.chain, oem.seed, vehicles, run=f"{time.time_ns()}")
    codec = default_registry().codec
    decoded = [codec.decode(r) for r in raws]
    ids = [crypto.tagged_hash(crypto.TAG_TX_ID, canonical(tx.body)) for tx in decoded]
    out["generate_s"] = round(time.perf_counter() - t, 1)
    print("raw verification limit of the same manifests on all cores", file=sys.stderr, flush=True)
    raw = raw_verify_limit(decoded, ids, workers)
    del decoded, ids
    out["tx_bytes"] = sum(len(r) for r in raws) // len(raws)
    bodies = [b"[" + b",".join(raws[i:i + BATCH]) + b"]" for i in range(0, len(raws), BATCH)]
    del raws

    images = ImageRepository(data / REPOS / "image", keys_dir=data / KEYS / "image")
    director = Director(data / REPOS / "director", keys_dir=data / KEYS / "director")
    release2 = images.release([(BRAKE_V2, firmware("brake", 2), BRAKE_HW, 2, "")], publish=False)
    step = max(1, vehicles // VERIFY_VEHICLES)
    verify_vins = list(range(0, vehicles, step))[:VERIFY_VEHICLES]

    print("starting the node", file=sys.stderr, flush=True)
    node = NodeProcess(data, workers=workers, block_txs=block_txs)
    server = RepositoryServer(data / REPOS)
    try:
        node.wait_ready(timeout=600)
        repos_url = server.start()
        with Client(node.url, trust=data / "genesis.json", key=nkey) as c:
            c.send(AnchorRelease(targets=release2.decode(), notes="brake fix"), oem, wait=120).raise_for_status()
            images.publish(release2)  # anchored first, then served; the director assigns it
            fix = images.target(BRAKE_V2)
            for i in verify_vins:
                director.assign(vin_of(i), [(["brake-1"], fix)])
            number = f"OTA-{time.time_ns() // 1_000_000 % 10**12}"
            opened = c.send(OpenCampaign(
                number=number, component="Brake ECU software", summary="Brake assist may engage late",
                consequence="Longer stopping distance", remedy=f"Over-the-air update to {BRAKE_V2}",
                scope=Scope(vin_ranges=[VinRange(first=vin_of(0), last=vin_of(vehicles - 1))]), ota_remedy=True,
                units=vehicles, software_fix=SoftwareFix(hardware_id=BRAKE_HW, min_release_counter=2)),
                oem, wait=120).raise_for_status()
            (ev,) = [e for e in opened.events if e["type"] == "recalls.campaign_opened"]
            campaign = ev["campaign"]

            print(f"client verification: {verifies} full verifications of an update", file=sys.stderr, flush=True)
            verify_ms, plan = _client_verify(node.url, data, nkey, verify_vins, verifies, repos_url)
            assert plan is not None and [a.target.path for a in plan.assignments] == [BRAKE_V2], plan
            out.update(client_verify_ms=_pct(verify_ms, 0.5), client_verify_p95_ms=_pct(verify_ms, 0.95),
                       client_verify_runs=len(verify_ms))

        with signed_client(node.url, nkey, timeout=120) as http:
            base = http.get("/v1/status").json()
            followed = submit_and_follow(http, node, nkey, bodies, vehicles, base, "manifests")
            progress, final, peak, done, errors = (followed.progress, followed.final, followed.peak_mb,
                                                   followed.committed, followed.errors)
            elapsed = followed.elapsed
            failed = _failed_receipts(http, base["height"] + 1, final["height"])
            ok = done - failed
            rate = round(ok / elapsed)
            out.update(manifests_per_s=rate, raw_verify_per_s=raw["raw_verifies_per_s"],
                       raw_limit_tx_per_s=raw["raw_limit_tx_per_s"], signatures_per_tx=raw["signatures_per_tx"],
                       verify_workers=raw["cores"], ratio=round(rate / raw["raw_limit_tx_per_s"], 3),
                       manifests=vehicles, committed=done, failed=failed, refused=len(errors),
                       first_errors=errors[:3], elapsed_s=round(elapsed, 2),
                       start_manifests_per_s=_rate(progress, 0.0, 0.2, vehicles),
                       end_manifests_per_s=_rate(progress, 0.8, 1.0, vehicles),
                       blocks=final["height"] - base["height"], peak_rss_mb=round(peak / 2**20, 1),
                       node_main_cpu_us_per_tx=round(followed.cpu[0] / max(1, done) * 1e6),
                       node_workers_cpu_us_per_tx=round(followed.cpu[1] / max(1, done) * 1e6),
                       node_writer_cpu_us_per_tx=round(followed.cpu[2] / max(1, done) * 1e6))

            print(f"campaign progress: {samples} queries over {vehicles:,} vehicles", file=sys.stderr, flush=True)
            params = {"id": campaign}
            first = http.get("/v1/q/recalls/campaign", params={**params, "min_height": final["height"]})
            if first.status_code != 200:
                raise RuntimeError(f"recalls.campaign: HTTP {first.status_code}: {first.text[:300]}")
            times: list[float] = []
            result: dict[str, Any] = {}
            for _ in range(samples):
                t = time.perf_counter()
                r = http.get("/v1/q/recalls/campaign", params=params)
                times.append((time.perf_counter() - t) * 1000)
                result = r.json()["result"]
        prog = result["progress"]
        out.update(campaign=campaign, campaign_progress_ms=_pct(times, 0.5),
                   campaign_progress_p95_ms=_pct(times, 0.95), campaign_samples=samples,
                   affected=prog["affected"], remedied=prog["remedied"], outstanding=prog["outstanding"],
                   manifests_ok=ok, counts_agree=prog["affected"] == vehicles and prog["remedied"] == ok)
        if not out["counts_agree"]:
            print(f"warning: the campaign counts {prog} do not match {ok:,} committed manifests of "
                  f"{vehicles:,} vehicles", file=sys.stderr)
    finally:
        if server._thread is not None:
            server.stop()
        else:
            server.httpd.server_close()
        node.stop()
    return out


__all__ = ["build_ota", "run"]
