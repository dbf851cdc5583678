"""``blokauto bench recall``: resolving a recall and tracing a part at fleet scale.

A cached data set holds N vehicles, each built with K installed parts: one serialized ECU (a
digital twin minted, shipped and received before it is fitted) and K-1 units from batches of
other part numbers. A batch of each part number goes into 10,000 consecutive vehicles, so a
campaign on one batch covers 10,000 vehicles. Everything is real signed transactions through the
block committer (real execution, blocks fsynced); building is resumable and the result is cached.

A real node process then serves it. The bench opens a campaign on one batch and measures, in one
run: resolving the campaign's affected vehicles with their holders (the ``recalls.affected``
query over HTTP, all 10,000 in one page), counting them (the campaign's progress), the whole
trace of one part (``parts.trace``), streaming every owner notification, and the node's peak
resident memory (all its processes). Reads are signed with the chain's node key (it reads every
query and event); the campaign is submitted signed by the maker's admin key, its sender.
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import msgspec

from ..core.crypto import KeyPair
from ..core.encoding import canonical
from ..core.tx import Message, make_body, sign
from ..keystore import KeyStore
from ..modules.parts import messages as pm
from ..modules.recalls.messages import OpenCampaign
from ..modules.recalls.state import BatchRef, Scope
from .dataset import db_bytes, default_cache
from .fleet import ORGS, TxFactory, fleet_keys, vin_of
from .harness import BlockFeeder, NodeProcess, RssSampler, node_key, ordered_pool_map, signed_client

CHAIN = "recall-bench"
SUPPLIER = "fleet-parts"
RECALL_ORGS = ORGS + [f"{SUPPLIER}:supplier:Fleet Parts"]
PER_BATCH = 10_000  # vehicles that receive units of one batch of each part number
CHUNK = 1_000  # vehicles signed and committed together
ECU = "ECU"


def batch_part_numbers(parts_per_vehicle: int) -> list[str]:
    return [f"P{j:02d}" for j in range(1, parts_per_vehicle)]


def ecu_of(i: int) -> str:
    return f"{ECU}:E{i:09d}"


def batch_of(i: int) -> str:
    return f"B{i // PER_BATCH:04d}"


class _Signer:
    """Signs the data set's transactions (in pool workers); deterministic nonces."""

    def __init__(self, chain: str, seeds: list[bytes]) -> None:
        oem, dealer, shop, insurer, registry, supplier = [KeyPair(s) for s in seeds]
        from .fleet import FleetKeys

        self.fleet = TxFactory(chain, FleetKeys(oem, dealer, shop, insurer, registry))
        self.oem, self.supplier = oem, supplier
        self.chain = chain
        self.expires = time.time_ns() // 1_000_000 + 55 * 60_000

    def tx(self, sender: KeyPair, msg: Message, label: str) -> bytes:
        nonce = hashlib.sha256(label.encode()).hexdigest()[:32]  # deterministic, one per purpose
        return canonical(sign(make_body(self.chain, sender.did, msg, nonce=nonce, expires=self.expires), sender))

    def catalogue(self, k: int) -> list[bytes]:
        out = [self.tx(self.supplier, pm.RegisterPartType(part_number=ECU, name="Engine control unit",
                                                           category="electronics", serialized=True), "cat-ecu")]
        out += [self.tx(self.supplier, pm.RegisterPartType(part_number=pn, name=f"Component {pn}", category="chassis",
                                                            serialized=False), f"cat-{pn}")
                for pn in batch_part_numbers(k)]
        return out

    def chunk(self, start: int, end: int, k: int, vehicles: int) -> list[bytes]:
        """Vehicles [start, end): new batches when a batch range begins, the ECUs minted, shipped
        and received, the vehicles registered, then one installation of K parts per vehicle."""
        self.expires = time.time_ns() // 1_000_000 + 55 * 60_000
        to = f"org:{ORGS[1].split(':')[0]}"
        out: list[bytes] = []
        if start % PER_BATCH == 0:
            b = batch_of(start)
            size = min(PER_BATCH, vehicles - start)
            refs = []
            for pn in [ECU] + batch_part_numbers(k):
                out.append(self.tx(self.supplier, pm.MintBatch(part_number=pn, batch=b, quantity=size,
                                                               produced="2024-01-10", plant="Plant 1"), f"batch-{pn}-{b}"))
                refs.append(f"{pn}:{b}")
            refs = refs[1:]  # the ECU batch only groups the serialized ECUs; its units are never fitted
            out.append(self.tx(self.supplier, pm.Ship(items=refs, to=to), f"ship-{b}"))
            out.append(self.tx(self.oem, pm.Receive(items=refs), f"recv-{b}"))
        serials = [ecu_of(i).partition(":")[2] for i in range(start, end)]
        out.append(self.tx(self.supplier, pm.MintParts(part_number=ECU, serials=serials, produced="2024-01-11",
                                                       plant="Plant 1", batch=batch_of(start)), f"ecu-{start}"))
        ecus = [ecu_of(i) for i in range(start, end)]
        out.append(self.tx(self.supplier, pm.Ship(items=ecus, to=to), f"ship-ecu-{start}"))
        out.append(self.tx(self.oem, pm.Receive(items=ecus), f"recv-ecu-{start}"))
        out += [self.fleet.birth(i) for i in range(start, end)]
        for i in range(start, end):
            items = [pm.InstallItem(part=ecu_of(i), position="engine bay")]
            items += [pm.InstallItem(batch=f"{pn}:{batch_of(i)}") for pn in batch_part_numbers(k)]
            out.append(self.tx(self.oem, pm.Install(vin=vin_of(i), items=items), f"fit-{i}"))
        return out


_signer: _Signer | None = None


def _init(chain: str, seeds: list[bytes]) -> None:
    global _signer
    _signer = _Signer(chain, seeds)


def _sign_chunk(args: tuple[int, int, int, int]) -> list[bytes]:
    assert _signer is not None
    return _signer.chunk(*args)


def _signed_chunks(seeds: list[bytes], start: int, vehicles: int, k: int, ahead: int = 3) -> Iterator[list[bytes]]:
    jobs = [(s, min(s + CHUNK, vehicles), k, vehicles) for s in range(start, vehicles, CHUNK)]
    return ordered_pool_map(_sign_chunk, jobs, initializer=_init, initargs=(CHAIN, seeds), ahead=ahead)


def build_recall_fleet(path: Path, *, vehicles: int, parts: int, block_txs: int = 1_000,
                       quiet: bool = False) -> dict[str, Any]:
    """The data folder at ``path`` (reused when it matches; a build that was stopped resumes)."""
    from ..modules import default_registry
    from ..node.committer import BlockCommitter
    from ..node.init import OrgSpec, init_chain
    from ..node.node import find_node_key, load_genesis

    k = max(2, parts // vehicles)
    if vehicles % CHUNK or (vehicles > PER_BATCH and vehicles % PER_BATCH):
        raise ValueError(f"--vehicles must be a multiple of {CHUNK:,} (and of {PER_BATCH:,} above it)")
    params = {"vehicles": vehicles, "parts_per_vehicle": k, "format": 1}
    marker, progress_file = path / "dataset.json", path / "progress.json"
    if marker.exists() and msgspec.json.decode(marker.read_bytes()).get("params") == params:
        return msgspec.json.decode(marker.read_bytes())
    progress = msgspec.json.decode(progress_file.read_bytes()) if progress_file.exists() else {}
    if progress.get("params") != params:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        genesis = init_chain(path, chain=CHAIN, orgs=[OrgSpec.parse(o) for o in RECALL_ORGS], quorum=1, node_orgs=1)
        progress = {"params": params, "done": 0, "txs": 0, "failed": 0, "build_s": 0.0}
    else:
        genesis = load_genesis(path)
    registry = default_registry()
    committer = BlockCommitter(path, registry, find_node_key(path, genesis), genesis=genesis, state_writer_process=True)
    committer.recover()
    keys = fleet_keys(KeyStore(path / "keys").load)
    supplier = KeyStore(path / "keys").load(f"{SUPPLIER}-admin")
    seeds = [keys.oem.seed, keys.dealer.seed, keys.shop.seed, keys.insurer.seed, keys.registry.seed, supplier.seed]
    t0 = time.perf_counter() - progress["build_s"]
    feeder = BlockFeeder(committer, registry.codec, block_txs)
    first_errors = feeder.first_errors

    def commit(raws: list[bytes]) -> None:
        txs, failed = feeder.txs, feeder.failed
        feeder.commit(raws)
        progress["txs"] += feeder.txs - txs
        progress["failed"] += feeder.failed - failed

    try:
        if progress["done"] == 0 and progress["txs"] == 0:
            signer = _Signer(CHAIN, seeds)
            commit([TxFactory(CHAIN, keys).assign_wmi()] + signer.catalogue(k))
        for raws in _signed_chunks(seeds, progress["done"], vehicles, k):
            commit(raws)
            progress["done"] = min(vehicles, progress["done"] + CHUNK)
            progress["build_s"] = round(time.perf_counter() - t0, 1)
            committer.state.flush()
            progress_file.write_bytes(msgspec.json.encode(progress))
            if first_errors:
                raise RuntimeError(f"the data set's transactions were refused: {first_errors}")
            if not quiet:
                rate = progress["txs"] / max(1e-9, time.perf_counter() - t0)
                print(f"\rbuilding recall data set: {progress['done']:,}/{vehicles:,} vehicles, "
                      f"{progress['done'] * k:,} parts fitted, {progress['txs']:,} txs ({rate:,.0f} tx/s)",
                      end="", file=sys.stderr, flush=True)
        committer.state.flush()
        height = committer.head.height if committer.head else -1
    finally:
        committer.close()
    if not quiet:
        print(file=sys.stderr)
    info = {**progress, "height": height, "installed_parts": vehicles * k}
    marker.write_bytes(msgspec.json.encode(info))
    return info


# ---------------------------------------------------------------- the measurements


def _p50(fn: Any, n: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(n):
        t = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 2), out


def _query(http: httpx.Client, module: str, name: str, **params: Any) -> Any:
    r = http.get(f"/v1/q/{module}/{name}", params=params)
    if r.status_code != 200:
        raise RuntimeError(f"{module}.{name}: HTTP {r.status_code}: {r.text[:300]}")
    return r.json()["result"]


def _open_campaign(url: str, data: Path, batch: str, part_number: str) -> tuple[int, int, float]:
    from ..client import Client

    oem = KeyStore(data / "keys").load(f"{ORGS[1].split(':')[0]}-admin")
    number = f"BENCH-{time.time_ns() // 1_000_000 % 10**12}"
    msg = OpenCampaign(number=number, component=f"{part_number} batch {batch}", summary="Bench recall",
                       consequence="None: a benchmark", remedy="Replace the part",
                       scope=Scope(batches=[BatchRef(part_number=part_number, batch=batch)]))
    with Client(url, trust=data / "genesis.json") as c:
        submitted = time.perf_counter()
        info = c.send(msg, oem, wait=120).raise_for_status()
    (ev,) = [e for e in info.events if e["type"] == "recalls.campaign_opened"]
    return ev["campaign"], info.height, submitted


class _Notifications(threading.Thread):
    """Follows the event stream from ``height`` on (started before the campaign is submitted) and
    notes, per campaign, when its ``expected``-th owner notification arrived."""

    def __init__(self, url: str, key: KeyPair, height: int, expected: int) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.height, self.expected = url, key, height, expected
        self.counts: dict[int, int] = {}
        self.done_at: dict[int, float] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        from ..client import Client

        try:
            with Client(self.url, verify=False, key=self.key) as c:
                for ev in c.events(from_height=self.height, reconnect=False, idle_timeout=120):
                    if self._stop.is_set():
                        return
                    if ev.type != "recalls.owner_notified":
                        continue
                    n = self.counts[ev.data["campaign"]] = self.counts.get(ev.data["campaign"], 0) + 1
                    if n == self.expected:
                        self.done_at[ev.data["campaign"]] = time.perf_counter()
        except BaseException as exc:  # reported by the bench
            self.error = exc

    def wait_for(self, campaign: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while campaign not in self.done_at:
            if self.error is not None or not self.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.counts.get(campaign, 0)} of {self.expected} owner notifications "
                                   f"arrived ({self.error!r})")
            time.sleep(0.01)
        self._stop.set()
        return self.done_at[campaign]


def run(*, vehicles: int = 1_000_000, parts: int = 20_000_000, samples: int = 20, cache: Path | None = None,
        workers: int | None = None) -> dict[str, Any]:
    k = max(2, parts // vehicles)
    data = (cache or default_cache()) / f"recall-{vehicles}-{k}"
    info = build_recall_fleet(data, vehicles=vehicles, parts=parts)
    part_number = batch_part_numbers(k)[len(batch_part_numbers(k)) // 2]
    target = vehicles // 2  # a batch in the middle of the fleet
    batch = batch_of(target)
    in_batch = min(PER_BATCH, vehicles)
    node = NodeProcess(data, workers=workers)
    key = node_key(data)  # reads everything: the queries, the state and every event
    try:
        node.wait_ready(timeout=600)
        sampler = RssSampler(node.pid)
        with httpx.Client(base_url=node.url, timeout=30) as http:
            now = http.get("/v1/status").json()["height"]
        notes = _Notifications(node.url, key, now + 1, in_batch)
        notes.start()
        campaign, height, submitted = _open_campaign(node.url, data, batch, part_number)
        notify_ms = round((notes.wait_for(campaign, 600) - submitted) * 1000, 1)
        with signed_client(node.url, key, timeout=120) as http:
            http.get("/v1/state/recall/next", params={"min_height": height})  # queries see the campaign
            resolve_ms, page = _p50(lambda: _query(http, "recalls", "affected", campaign=campaign, limit=in_batch),
                                    samples)
            count_ms, camp = _p50(lambda: _query(http, "recalls", "campaign", id=campaign), samples)
            ecu = ecu_of(target + 17)
            trace_ms, trace = _p50(lambda: _query(http, "parts", "trace", id=ecu), samples)
            vin_ms, of_vehicle = _p50(lambda: _query(http, "recalls", "of_vehicle", vin=vin_of(target)), samples)
        affected = camp["progress"]["affected"]
        if len(page["vehicles"]) != in_batch or affected != in_batch:
            raise RuntimeError(f"the campaign resolved to {affected} vehicles ({len(page['vehicles'])} listed), "
                               f"expected {in_batch}")
        if not trace["history"] or not any(x["campaign"] == campaign for x in of_vehicle):
            raise RuntimeError("the part's trace or the vehicle's recalls came back empty")
        peak = sampler.stop()
    finally:
        node.stop()
    return {
        "bench": "recall",
        "vehicles": vehicles,
        "installed_parts": info["installed_parts"],
        "parts_per_vehicle": k,
        "serialized_parts": vehicles,
        "dataset_txs": info["txs"],
        "dataset_build_s": info["build_s"],
        "affected": affected,
        "resolve_ms": resolve_ms,
        "count_ms": count_ms,
        "trace_ms": trace_ms,
        "trace_entries": len(trace["history"]),
        "recalls_of_vehicle_ms": vin_ms,
        "notify_all_ms": notify_ms,
        "samples": samples,
        "peak_rss_mb": round(peak / 2**20, 1),
        "db_bytes_per_vehicle": round(db_bytes(data) / vehicles),
    }
