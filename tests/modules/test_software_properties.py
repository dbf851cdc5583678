"""Properties of the software module's ledger side over random releases and manifests (hypothesis).

A program of steps runs on ``helpers.software``'s OtaWorld: releases (an image of the brake or the
gateway at a random release counter, sometimes bundled with one for the other hardware), manifests
(random ECUs, including one never fitted, each naming a released image, an image's path with another
image's hash, or software never released; dated now, at the last manifest, at the skew and beyond,
or at 0; signed by either current device key) and waits. A model written from ``report_manifest``'s
docstring runs beside it:

- a manifest is accepted exactly when it breaks none of the rules, and a refused one gives the code
  of one of the rules it breaks and changes nothing;
- the inventory always equals the last accepted install per ECU (the factory image before any);
- release counters per ECU never decrease, and ``last_t`` only grows;
- the vehicle's ``software_installed`` history entries are the accepted manifests' changed ECUs, in
  order, and the installs index has one row per fit and per changed ECU;
- an anchored image keeps the description it was first released with;
- replaying the same blocks on a fresh chain gives the same headers (so state roots), state and
  index rows.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blokauto.modules.software.messages import AnchorRelease, Installed, ReportManifest
from blokauto.modules.software.metadata import sha256
from blokauto.modules.software.spec import INSTALLS
from blokauto.modules.software.state import IMAGES, VEHICLES

from conftest import Chain
from helpers.insurance import DEVICE, DEVICE2, OEM, VIN, now, ok, send
from helpers.software import BRAKE_HW, GATEWAY_HW, OtaWorld, image, ota_world
from helpers.vehicles import history, snapshot

SKEW = 5 * 60_000  # manifest_future_skew_ms by default
DAY = 86_400_000
#: Where the repositories of each example are written (they fsync every file: memory, where there is some).
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
HARDWARE = {"brake": BRAKE_HW, "gw": GATEWAY_HW}
FITTED = {"brake-1": BRAKE_HW, "gw-1": GATEWAY_HW}


@dataclass(frozen=True)
class Img:
    path: str
    sha: str
    hw: str
    counter: int
    bundle: str = ""


@dataclass
class Model:
    """What the ledger should hold, from the rules."""

    images: dict[str, Img]  # by hash
    released: list[Img]  # in the order released
    bundles: dict[str, dict[str, str]] = field(default_factory=dict)  # bundle -> hardware -> hash
    inventory: dict[str, Img] = field(default_factory=dict)  # ECU -> what it runs
    last_t: int = 0
    installs: list[dict[str, Any]] = field(default_factory=list)  # history entries' data, in order
    index_rows: int = 2  # the two ECUs fitted
    refused: list[str] = field(default_factory=list)  # the codes of the manifests refused, in order


def start_model() -> Model:
    first = [Img("brake/brake-1.bin", sha256(image("brake", 1)), BRAKE_HW, 1),
             Img("gateway/gw-1.bin", sha256(image("gw", 1)), GATEWAY_HW, 1)]
    return Model({i.sha: i for i in first}, list(first), inventory={"brake-1": first[0], "gw-1": first[1]})


def expected_codes(m: Model, entries: list[Installed], t: int, at: int) -> tuple[set[str], list[tuple[str, Img]]]:
    """The codes of every rule the manifest breaks (empty: accepted) and the ECUs it changes."""
    codes: set[str] = set()
    if t <= m.last_t or t > at + SKEW:
        codes.add("manifest_out_of_order")
    ids = [e.ecu for e in entries]
    if len(set(ids)) != len(ids):
        codes.add("duplicate_ecu")
    after = dict(m.inventory)
    changed: list[tuple[str, Img]] = []
    for e in entries:
        if e.ecu not in FITTED:
            codes.add("unknown_ecu")
            continue
        img = m.images.get(e.image)
        if img is None:
            codes.add("release_not_anchored")
            continue
        broken = False
        if img.path != e.path:
            codes.add("image_mismatch")
            broken = True
        if img.hw != FITTED[e.ecu]:
            codes.add("wrong_hardware_id")
            broken = True
        if img.counter < m.inventory[e.ecu].counter:
            codes.add("software_rollback")
            broken = True
        if not broken and img.sha != m.inventory[e.ecu].sha:
            changed.append((e.ecu, img))
            after[e.ecu] = img
    if not codes and not changed:
        codes.add("manifest_unchanged")
    if not codes:
        for _, img in changed:
            members = m.bundles.get(img.bundle, {})
            for ecu, running in after.items():
                if FITTED[ecu] in members and running.sha != members[FITTED[ecu]]:
                    codes.add("partial_bundle")
    return codes, changed


# ---------------------------------------------------------------- programs


def mostly(usual: Any, *others: Any) -> Any:
    """``usual`` eight times in ten, else one of ``others``."""
    return st.tuples(st.integers(0, 9), st.sampled_from(others)).map(lambda p: usual if p[0] < 8 else p[1])


#: A release: which hardware, its counter as a step from the highest released for it (mostly newer), bundled.
releases = st.tuples(st.just("release"), st.sampled_from(["brake", "gw"]), st.sampled_from([-1, 0, 1, 1, 2, 2]),
                     st.sampled_from([False, False, True]))
entry = st.tuples(st.sampled_from(["brake-1"] * 8 + ["gw-1"] * 8 + ["ghost-1"]), st.integers(0, 40),
                  mostly("fitting", "any", "other_hw", "mixed", "unreleased"))
#: A manifest: its entries (one per ECU), when it is dated, which device key signs, whether the first
#: ECU is named twice, whether a bundle's other images are added (a whole install; else half, if any).
manifests = st.tuples(st.just("manifest"), st.lists(entry, min_size=1, max_size=3, unique_by=lambda e: e[0]),
                      mostly("now", "earlier", "last", "skew", "beyond", "zero"),
                      st.booleans(), mostly(False, True), mostly(True, False))
waits = st.tuples(st.just("wait"), st.integers(1, 3 * DAY))
#: A few releases first (else most manifests could only name what the car runs), then rounds of
#: (maybe a release, a manifest, maybe a wait).
programs = st.tuples(st.lists(releases, min_size=1, max_size=3),
                     st.lists(st.tuples(st.one_of(st.none(), releases), manifests, st.one_of(st.none(), waits)),
                              max_size=8)).map(lambda p: p[0] + [s for r in p[1] for s in r if s is not None])


def entries_for(m: Model, picks: list[tuple[str, int, str]], dup: bool, whole: bool) -> list[Installed]:
    """The manifest's entries, each breaking at most one rule on its own: ``fitting`` names the newest
    released image of the ECU's hardware (one time in four the one before), ``any`` any released
    image, ``other_hw`` the newest image of another hardware, ``mixed`` the newest fitting image's hash
    under another image's path, ``unreleased`` its path with a hash never released; with ``whole``
    every other ECU of a named bundle's hardware gets the bundle's image for it; with ``dup`` the first
    ECU is named twice."""
    out = []
    for ecu, k, how in picks:
        fitting = [i for i in m.released if i.hw == FITTED.get(ecu)] or m.released
        others = [i for i in m.released if i.hw != FITTED.get(ecu)]
        img = {"any": m.released[k % len(m.released)], "other_hw": others[-1]}.get(
            how, fitting[-1 if k % 4 or len(fitting) < 2 else -2])
        if how == "mixed":
            other = next((i for i in reversed(m.released) if i.path != img.path), img)
            out.append(Installed(ecu=ecu, path=other.path, image=img.sha))
        elif how == "unreleased":
            out.append(Installed(ecu=ecu, path=img.path, image=sha256(f"never released {k}".encode())))
        else:
            out.append(Installed(ecu=ecu, path=img.path, image=img.sha))
    if whole:
        for e in list(out):
            img = m.images.get(e.image)
            for ecu, hw in FITTED.items():
                sha = m.bundles.get(img.bundle, {}).get(hw) if img is not None and img.bundle else None
                if sha is not None and ecu not in {x.ecu for x in out}:
                    out.append(Installed(ecu=ecu, path=m.images[sha].path, image=sha))
    return out + out[:1] if dup else out


def manifest_time(m: Model, how: str, at: int) -> int:
    return {"now": at, "earlier": at - 60_000, "last": m.last_t, "skew": at + SKEW, "beyond": at + SKEW + 1,
            "zero": 0}[how]


def run(program: list, tmp: Path) -> tuple[OtaWorld, Model]:
    """Play ``program``, checking the properties after every step."""
    w = ota_world(tmp)
    m = start_model()
    for i, step in enumerate(program):
        kind = step[0]
        if kind == "wait":
            # the repository's clock follows the chain: an empty block moves it on
            w.chain.block(time=now(w.chain) + step[1])
            continue
        if kind == "release":
            _, which, delta, bundled = step
            counter = max(0, max(i.counter for i in m.released if i.hw == HARDWARE[which]) + delta)
            bundle = f"b{i}" if bundled else ""
            new = [(f"{which}/s{i}.bin", image(f"{which}-s{i}", counter), HARDWARE[which], counter, bundle)]
            if bundled:
                other = "gw" if which == "brake" else "brake"
                new.append((f"{other}/s{i}.bin", image(f"{other}-s{i}", counter), HARDWARE[other], counter, bundle))
            ok(w.chain, OEM, AnchorRelease(targets=w.images.release(new, keep=False).decode()))
            for path, data, hw, c, b in new:
                img = Img(path, sha256(data), hw, c, b)
                m.images[img.sha] = img
                m.released.append(img)
                if b:
                    m.bundles.setdefault(b, {})[hw] = img.sha
            continue
        _, picks, when, second_key, dup, whole = step
        at = now(w.chain) + 1
        entries = entries_for(m, picks, dup, whole)
        t = manifest_time(m, when, at)
        codes, changed = expected_codes(m, entries, t, at)
        before = snapshot(w.chain)
        counters = {e.ecu: e.release_counter for e in VEHICLES.get(w.chain.ledger, VIN).ecus}
        r = send(w.chain, DEVICE2 if second_key else DEVICE, ReportManifest(vin=VIN, t=t, installed=entries), at=at)
        assert r.ok is (not codes), (r, codes)
        if not r.ok:
            assert r.code in codes, (r, codes)
            assert r.events == [] and snapshot(w.chain) == before
            m.refused.append(r.code)
        else:
            for ecu, img in changed:
                m.inventory[ecu] = img
            m.last_t = t
            m.installs.append({"t": t, "installed": [{"ecu": ecu, "path": img.path, "image": img.sha,
                                                      "release_counter": img.counter} for ecu, img in changed]})
            m.index_rows += len(changed)
        check(w, m, counters)
    return w, m


def check(w: OtaWorld, m: Model, counters_before: dict[str, int] | None = None) -> None:
    sw = VEHICLES.get(w.chain.ledger, VIN)
    assert {e.ecu: (e.path, e.image, e.release_counter, e.hardware_id) for e in sw.ecus} == {
        ecu: (img.path, img.sha, img.counter, img.hw) for ecu, img in m.inventory.items()}
    for e in sw.ecus:
        assert e.release_counter >= (counters_before or {}).get(e.ecu, 0), "a release counter went down"
    assert (sw.manifests, sw.last_t) == (len(m.installs), m.last_t)
    assert [x["data"] for x in history(w.chain, VIN) if x["type"] == "software_installed"] == m.installs
    assert len([r for r in w.chain.ledger.index[INSTALLS.name].values() if r["vin"] == VIN]) == m.index_rows
    for sha, img in m.images.items():
        stored = IMAGES.get(w.chain.ledger, "oem", sha)
        assert (stored.path, stored.hardware_id, stored.release_counter, stored.bundle) == (
            img.path, img.hw, img.counter, img.bundle)


def check_replay(chain: Chain) -> None:
    """The same blocks into a fresh MemoryLedger: the same headers (so the same state roots,
    transactions and receipts), state and derived indexes."""
    fresh = Chain(chain.genesis)
    assert fresh.ledger.headers[0] == chain.ledger.headers[0]
    for outcome in chain.ledger.blocks[1:]:
        replayed = fresh.block(*outcome.txs, time=outcome.header.time)
        assert replayed.header == outcome.header
        assert replayed.receipt_bytes == outcome.receipt_bytes
    assert fresh.root == chain.root
    assert fresh.ledger.state == chain.ledger.state
    assert fresh.ledger.index == chain.ledger.index


PROPS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(programs)
def test_manifests_follow_the_rules_and_the_inventory_is_the_last_install(program: list) -> None:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        w, m = run(program, Path(tmp))
        # a last manifest of whatever the model says each ECU runs changes nothing
        at = now(w.chain) + 1
        same = [Installed(ecu=e, path=img.path, image=img.sha) for e, img in sorted(m.inventory.items())]
        r = send(w.chain, DEVICE, ReportManifest(vin=VIN, t=max(m.last_t + 1, at), installed=same), at=at)
        assert r.code == "manifest_unchanged", r


@PROPS
@given(programs)
def test_replaying_the_same_blocks_gives_the_same_state_roots(program: list) -> None:
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        w, _ = run(program, Path(tmp))
        check_replay(w.chain)


def test_the_model_and_the_ledger_agree_on_a_known_program() -> None:
    """One fixed program (``run`` checks every step against the model): half a bundle, then the whole
    bundle, two rollbacks, and a bundle completed from one named image."""
    program = [("release", "brake", 2, True),  # bundle b0: brake and gateway at counter 3
               ("manifest", [("brake-1", 2, "any")], "now", False, False, False),
               ("manifest", [("brake-1", 2, "any"), ("gw-1", 3, "any")], "now", False, False, False),
               ("release", "gw", -1, False),  # gateway at counter 2
               ("manifest", [("gw-1", 4, "any")], "now", True, False, False),
               ("manifest", [("gw-1", 1, "fitting")], "now", False, False, True),
               ("wait", 1_000),
               ("release", "brake", 1, True),  # bundle b7: brake and gateway at counter 4
               ("manifest", [("brake-1", 1, "fitting")], "now", True, False, True)]
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        _, m = run(program, Path(tmp))
    assert m.refused == ["partial_bundle", "software_rollback", "software_rollback"]
    assert [sorted(x["ecu"] for x in i["installed"]) for i in m.installs] == [["brake-1", "gw-1"]] * 2
    assert {e: (i.path, i.counter) for e, i in m.inventory.items()} == {"brake-1": ("brake/s7.bin", 4),
                                                                      "gw-1": ("gw/s7.bin", 4)}
